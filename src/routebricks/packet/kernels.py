"""numba kernels for the byte moves that numpy cannot express as one vectorized call.

Each kernel is a plain loop over packets copying whole packets (memcpy-like slices), or a
sequential scan of a file format whose record lengths chain (pcap). They compile once and are
cached on disk (``cache=True``), so only the first run on a machine pays the compile time.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from routebricks.jit import precompile, skip_blas_probe

skip_blas_probe()


@njit(cache=True, nogil=True)
def repack(
    src: np.ndarray, src_off: np.ndarray, length: np.ndarray, dst: np.ndarray, dst_off: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Copy packet i from src[src_off[i]:+length[i]] to dst[dst_off[i]:]."""
    for i in range(src_off.shape[0]):
        n = length[i]
        s = src_off[i]
        d = dst_off[i]
        dst[d : d + n] = src[s : s + n]


@njit(cache=True, nogil=True, inline="always")
def _pcap_u32(buf: np.ndarray, p: int, swapped: bool) -> np.int64:  # pragma: no cover
    if swapped:
        return (
            (np.int64(buf[p]) << 24)
            | (np.int64(buf[p + 1]) << 16)
            | (np.int64(buf[p + 2]) << 8)
            | np.int64(buf[p + 3])
        )
    return (
        (np.int64(buf[p + 3]) << 24)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 1]) << 8)
        | np.int64(buf[p])
    )


@njit(cache=True, nogil=True)
def pcap_walk(buf: np.ndarray, start: int, swapped: bool):  # pragma: no cover - compiled
    """Follow the record chain from byte ``start`` without keeping anything.

    Returns (n, bad_at, bad_need): the number of whole records, and the byte offset of a
    truncated record (-1 if none) with the bytes that record needed.
    """
    size = buf.shape[0]
    n = 0
    pos = start
    while pos < size:
        if pos + 16 > size:
            return n, pos, 16
        cl = _pcap_u32(buf, pos + 8, swapped)
        if pos + 16 + cl > size:
            return n, pos, 16 + cl
        n += 1
        pos += 16 + cl
    return n, -1, 0


@njit(cache=True, nogil=True)
def pcap_scan(
    buf: np.ndarray, start: int, end: int, swapped: bool, nano: bool, cols: np.ndarray
):  # pragma: no cover - compiled
    """Walk the whole pcap records in ``buf[start:end]``, at most ``cols.shape[1]``.

    Fills the rows of ``cols`` (data offset, caplen, origlen, timestamp in ns; ``nano``:
    the file's fractions are ns, else µs) for each record and returns (n, next_pos, need):
    the record count, where the next record starts and, when that record is not whole
    before ``end``, how many bytes it needs (else 0). The caller's column array is reused
    from chunk to chunk: fresh arrays per chunk made page faults cost more than the scan.
    """
    cap = cols.shape[1]
    n = 0
    pos = start
    need = 0
    while pos < end and n < cap:
        if pos + 16 > end:
            need = 16
            break
        cl = _pcap_u32(buf, pos + 8, swapped)
        if pos + 16 + cl > end:
            need = 16 + cl
            break
        cols[0, n] = pos + 16
        cols[1, n] = cl
        cols[2, n] = _pcap_u32(buf, pos + 12, swapped)
        frac = _pcap_u32(buf, pos + 4, swapped)
        cols[3, n] = _pcap_u32(buf, pos, swapped) * 1_000_000_000 + (
            frac if nano else frac * 1000)
        n += 1
        pos += 16 + cl
    return n, pos, need


@njit(cache=True, nogil=True)
def pcap_records(
    pool: np.ndarray,
    off: np.ndarray,
    length: np.ndarray,
    origlen: np.ndarray,
    ts_sec: np.ndarray,
    ts_frac: np.ndarray,
    snaplen: int,
    out: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Lay out little-endian pcap records for a batch into ``out``; returns bytes written."""
    pos = 0
    for i in range(off.shape[0]):
        cl = length[i]
        if cl > snaplen:
            cl = snaplen
        hdr = (ts_sec[i], ts_frac[i], cl, origlen[i])
        for f in range(4):
            v = hdr[f]
            out[pos] = v & 0xFF
            out[pos + 1] = (v >> 8) & 0xFF
            out[pos + 2] = (v >> 16) & 0xFF
            out[pos + 3] = (v >> 24) & 0xFF
            pos += 4
        s = off[i]
        out[pos : pos + cl] = pool[s : s + cl]
        pos += cl
    return pos


# ---------------------------------------------------------------------- field gathers/scatters
# numpy's fancy indexing gathers bytes one at a time and a multi-byte gather through a
# sliding-window view is ~10x slower still; these loops measure 3-5x faster than either.
@njit(cache=True, nogil=True)
def get_u16(pool: np.ndarray, pos: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    n = pos.shape[0]
    r = np.empty(n, np.uint16)
    for k in range(n):
        p = pos[k]
        r[k] = (np.uint16(pool[p]) << 8) | np.uint16(pool[p + 1])
    return r


@njit(cache=True, nogil=True)
def get_u32(pool: np.ndarray, pos: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    n = pos.shape[0]
    r = np.empty(n, np.uint32)
    for k in range(n):
        p = pos[k]
        r[k] = (
            (np.uint32(pool[p]) << 24)
            | (np.uint32(pool[p + 1]) << 16)
            | (np.uint32(pool[p + 2]) << 8)
            | np.uint32(pool[p + 3])
        )
    return r


@njit(cache=True, nogil=True)
def set_u16(pool: np.ndarray, pos: np.ndarray, v: np.ndarray) -> None:  # pragma: no cover
    for k in range(pos.shape[0]):
        p = pos[k]
        x = v[k]
        pool[p] = (x >> 8) & 0xFF
        pool[p + 1] = x & 0xFF


@njit(cache=True, nogil=True)
def set_u32(pool: np.ndarray, pos: np.ndarray, v: np.ndarray) -> None:  # pragma: no cover
    for k in range(pos.shape[0]):
        p = pos[k]
        x = v[k]
        pool[p] = (x >> 24) & 0xFF
        pool[p + 1] = (x >> 16) & 0xFF
        pool[p + 2] = (x >> 8) & 0xFF
        pool[p + 3] = x & 0xFF


@njit(cache=True, nogil=True)
def gather_bytes(pool: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:  # pragma: no cover
    n = pos.shape[0]
    r = np.empty((n, width), np.uint8)
    for k in range(n):
        p = pos[k]
        r[k, :] = pool[p : p + width]
    return r


@njit(cache=True, nogil=True)
def scatter_bytes(pool: np.ndarray, pos: np.ndarray, data: np.ndarray) -> None:  # pragma: no cover
    """Write row k of ``data`` (or its only row, for a broadcast) at pos[k]."""
    width = data.shape[1]
    one = data.shape[0] == 1
    for k in range(pos.shape[0]):
        p = pos[k]
        row = 0 if one else k
        pool[p : p + width] = data[row, :]


@njit(cache=True, nogil=True)
def inet_checksum(
    pool: np.ndarray, pos: np.ndarray, nbytes: np.ndarray
) -> np.ndarray:  # pragma: no cover
    """One's-complement checksum of ``nbytes[k]`` header bytes at ``pos[k]`` (RFC 791/1071).

    Over a header whose checksum field holds the stored value the result is 0 when valid;
    over a header whose checksum field is zeroed it is the value to store.
    """
    n = pos.shape[0]
    r = np.empty(n, np.uint16)
    for k in range(n):
        p = pos[k]
        m = nbytes[k]
        s = 0  # int64 accumulator: numba mixes uint32 and int64 into float64
        for j in range(0, m - 1, 2):
            s += (np.int64(pool[p + j]) << 8) | np.int64(pool[p + j + 1])
        if m & 1:
            s += np.int64(pool[p + m - 1]) << 8
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        r[k] = (~s) & 0xFFFF
    return r


@njit(cache=True, nogil=True)
def prepend(pool: np.ndarray, off: np.ndarray, length: np.ndarray,
            hdr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Write ``hdr`` in front of every packet (the room is there); returns the new
    (off, length) columns. One pass instead of a scatter plus two column updates."""
    n = off.shape[0]
    h = hdr.shape[0]
    new_off = np.empty(n, np.int64)
    new_len = np.empty(n, np.int64)
    for k in range(n):
        p = off[k] - h
        for j in range(h):  # a byte loop: a slice copy per packet costs ~4x more here
            pool[p + j] = hdr[j]
        new_off[k] = p
        new_len[k] = length[k] + h
    return new_off, new_len


def warmup() -> None:
    """Compile the batch accessors every router uses (see :mod:`routebricks.jit`), with
    the types :class:`~routebricks.packet.batch.PacketBatch` passes."""
    u8, i64 = np.zeros(16, np.uint8), np.zeros(1, np.int64)
    precompile(get_u16, u8, i64)
    precompile(get_u32, u8, i64)
    precompile(gather_bytes, u8, i64, 1)
    precompile(repack, u8, i64, i64, u8, i64)
    rows = np.zeros((1, 1), np.uint8)
    precompile(scatter_bytes, u8, i64, rows)  # a matrix of rows, or bytes (read-only)
    rows.flags.writeable = False
    precompile(scatter_bytes, u8, i64, rows)
    two = np.zeros(2, np.int64)
    for v in (np.uint32(1), np.zeros(2, np.uint32)):  # a scalar or a column, broadcast
        col = np.broadcast_to(np.asarray(v, np.uint32), two.shape)
        precompile(set_u16, u8, two, col)
        precompile(set_u32, u8, two, col)
