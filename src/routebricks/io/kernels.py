"""The compiled (numba) kernels of the packet rings: walking TPACKET_V3 blocks, copying
packets out of a receive ring into a pool, filling a TX ring, and building ``sendmmsg``
iovecs. All release the GIL; :func:`warmup` compiles them before the first packet.

The ring protocol relies on the x86-64 memory model (loads are not reordered with other
loads, stores not with other stores) plus the fact that every status read/write happens in a
separate numpy/numba call from the data access it guards, which is also a compiler barrier.
"""

from __future__ import annotations

from typing import Final

import numba
import numpy as np

from routebricks.io.tpacket import (
    ETH_HLEN,
    PAGE_SIZE,
    SLL_PKTTYPE_OFFSET,
    SOCKADDR_LL_SIZE,
    TP_STATUS_SEND_REQUEST,
    TPACKET2_HDR,
    TPACKET3_HDR,
    TPACKET3_HDRLEN,
    TPACKET_BLOCK_DESC,
    TX_DATA_OFFSET,
)

# Byte offsets used inside numba kernels (module globals are compile-time constants there).
_V3_SEC: Final = TPACKET3_HDR.fields["tp_sec"][1]
_V3_NSEC: Final = TPACKET3_HDR.fields["tp_nsec"][1]
_V3_SNAPLEN: Final = TPACKET3_HDR.fields["tp_snaplen"][1]
_V3_LEN: Final = TPACKET3_HDR.fields["tp_len"][1]
_V3_MAC: Final = TPACKET3_HDR.fields["tp_mac"][1]
_V3_PKTTYPE: Final = TPACKET3_HDRLEN - SOCKADDR_LL_SIZE + SLL_PKTTYPE_OFFSET
_BD_NUM_PKTS: Final = TPACKET_BLOCK_DESC.fields["num_pkts"][1]
_BD_FIRST: Final = TPACKET_BLOCK_DESC.fields["offset_to_first_pkt"][1]
_V2_LEN: Final = TPACKET2_HDR.fields["tp_len"][1]


def pool_layout(
    lengths: np.ndarray, headroom: int = 64, tailroom: int = 64
) -> tuple[np.ndarray, int]:
    """Offsets of packets packed into one pool with head/tailroom.

    Packet ``i`` occupies ``pool[offsets[i]:offsets[i] + lengths[i]]``; the
    ``headroom`` bytes before it and ``tailroom`` bytes after it belong to it
    too (contents undefined), so slot ``i`` is ``[offsets[i] - headroom,
    offsets[i] + lengths[i] + tailroom)`` and slots are contiguous, in order::

        | headroom | pkt0 | tailroom | headroom | pkt1 | tailroom | ...

    Returns ``(offsets[int64], total_pool_size)``.
    """
    slot = lengths.astype(np.int64) + (headroom + tailroom)
    ends = np.cumsum(slot)
    offsets = ends - slot + headroom
    total = int(ends[-1]) if ends.size else 0
    return offsets, total


@numba.njit(cache=True, nogil=True)
def gather(
    src_buf: np.ndarray,
    src_off: np.ndarray,
    lengths: np.ndarray,
    dst_buf: np.ndarray,
    dst_off: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Copy ``lengths[i]`` bytes from ``src_buf[src_off[i]:]`` to ``dst_buf[dst_off[i]:]``."""
    for i in range(src_off.shape[0]):
        s = src_off[i]
        d = dst_off[i]
        n = lengths[i]
        dst_buf[d : d + n] = src_buf[s : s + n]


@numba.njit(cache=True, nogil=True)
def v3_walk(
    ring8: np.ndarray,
    ring32: np.ndarray,
    ring16: np.ndarray,
    block_size: int,
    block_nr: int,
    cur_block: int,
    n_ready: int,
    pkt_idx: int,
    pkt_off: int,
    max_packets: int,
    src: np.ndarray,
    snaplen: np.ndarray,
    wirelen: np.ndarray,
    ts: np.ndarray,
    pkttype: np.ndarray,
) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """Walk up to ``n_ready`` user-owned V3 blocks starting at ``cur_block``.

    ``(pkt_idx, pkt_off)`` is the position inside ``cur_block`` left by the
    previous call (0, 0 = start of block). Fills ``src`` (absolute ring offset
    of each packet's MAC header), ``snaplen``, ``wirelen``, ``ts`` and
    ``pkttype`` (the ``sll_pkttype`` of the ``sockaddr_ll`` after each header)
    and returns ``(n_packets, n_blocks_finished, pkt_idx, pkt_off)``. Blocks
    are *not* released here: the caller releases them after copying the data.
    """
    n = 0
    b = 0
    while b < n_ready and n < max_packets:
        blk = (cur_block + b) % block_nr
        base = blk * block_size
        num = ring32[(base + _BD_NUM_PKTS) >> 2]
        off = ring32[(base + _BD_FIRST) >> 2] if pkt_idx == 0 else pkt_off
        while pkt_idx < num and n < max_packets:
            h = base + off
            src[n] = h + ring16[(h + _V3_MAC) >> 1]
            snaplen[n] = ring32[(h + _V3_SNAPLEN) >> 2]
            wirelen[n] = ring32[(h + _V3_LEN) >> 2]
            ts[n] = np.int64(ring32[(h + _V3_SEC) >> 2]) * 1_000_000_000 + np.int64(
                ring32[(h + _V3_NSEC) >> 2]
            )
            pkttype[n] = ring8[h + _V3_PKTTYPE]
            n += 1
            pkt_idx += 1
            off += ring32[h >> 2]  # tp_next_offset
        if pkt_idx >= num:
            b += 1
            pkt_idx = 0
            off = 0
        else:
            pkt_off = off
            return n, b, pkt_idx, pkt_off
    return n, b, pkt_idx, 0


@numba.njit(cache=True, nogil=True)
def tx_fill(
    ring8: np.ndarray,
    ring32: np.ndarray,
    frame_size: int,
    frame_nr: int,
    head: int,
    pool: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    start: int,
    max_len: int,
) -> tuple[int, int, int, int, int]:  # pragma: no cover - compiled
    """Copy packets ``start..`` into free TX frames from ``head`` on, mark them SEND_REQUEST.

    Packets longer than ``max_len`` or shorter than an Ethernet header are
    skipped and counted. Stops at the first frame the kernel still owns (ring
    full). Returns ``(n_queued, next_packet, new_head, n_oversize, n_short)``.
    The status word is written last; the kernel only reads it during the
    ``send()`` that follows, which is a full barrier.
    """
    q = 0
    over = 0
    short = 0
    i = start
    npool = pool.shape[0]
    while i < offsets.shape[0]:
        n = lengths[i]
        o = offsets[i]
        if n > max_len:
            over += 1
            i += 1
            continue
        if n < ETH_HLEN:
            short += 1
            i += 1
            continue
        if o < 0 or o + n > npool:
            raise ValueError("packet extends outside the pool")
        fbase = head * frame_size
        # Low bits = SEND_REQUEST/SENDING/WRONG_FORMAT; high bits may carry TS flags.
        if ring32[fbase >> 2] & 7:
            break
        d = fbase + TX_DATA_OFFSET
        ring8[d : d + n] = pool[o : o + n]
        ring32[(fbase + _V2_LEN) >> 2] = n
        ring32[fbase >> 2] = TP_STATUS_SEND_REQUEST
        head += 1
        if head == frame_nr:
            head = 0
        q += 1
        i += 1
    return q, i, head, over, short


@numba.njit(cache=True, nogil=True)
def build_iov(
    iov: np.ndarray, pool: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, max_len: int
) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """Fill ``struct iovec`` rows (base, len) for the valid packets, compacted.

    Returns ``(n_valid, n_oversize, n_short)``. The bases point into ``pool``,
    which the caller keeps alive across the sendmmsg call.
    """
    base = np.uint64(pool.ctypes.data)
    npool = pool.shape[0]
    j = 0
    over = 0
    short = 0
    for i in range(offsets.shape[0]):
        n = lengths[i]
        o = offsets[i]
        if n > max_len:
            over += 1
            continue
        if n < ETH_HLEN:
            short += 1
            continue
        if o < 0 or o + n > npool:
            raise ValueError("packet extends outside the pool")
        iov[j, 0] = base + np.uint64(o)
        iov[j, 1] = np.uint64(n)
        j += 1
    return j, over, short


def warmup() -> None:
    """Compile (or load from numba's on-disk cache) every kernel, with the exact types used.

    Call once at start-up so the first batch does not pay JIT latency (seconds
    on a cold cache).
    """
    ring8 = np.zeros(4 * PAGE_SIZE, np.uint8)
    i64 = np.zeros(1, np.int64)
    gather(ring8, i64, np.zeros(1, np.int32), np.zeros(1, np.uint8), i64)
    u32 = np.zeros(1, np.uint32)
    v3_walk(
        ring8,
        ring8.view(np.uint32),
        ring8.view(np.uint16),
        PAGE_SIZE,
        4,
        0,
        0,
        0,
        0,
        1,
        i64,
        u32,
        u32,
        i64,
        np.zeros(1, np.uint8),
    )
    tx_fill(ring8, ring8.view(np.uint32), 2048, 2, 0, ring8, i64, i64, 1, 1514)
    build_iov(np.zeros((1, 2), np.uint64), ring8, i64, i64, 1514)
