"""pcap files (libpcap format, microsecond and nanosecond timestamps), read and written in
whole batches.

Reading scans the record chain in a compiled kernel and repacks the packets into a pool with
head- and tailroom, so the loaded packets are a :class:`PacketBatch` like any other. pcapng is
recognised and refused with a hint.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import queue
import stat
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from routebricks.closing import Closing
from routebricks.errors import PcapError
from routebricks.packet import kernels as _k
from routebricks.packet.batch import (
    DEFAULT_HEADROOM,
    DEFAULT_TAILROOM,
    POOL_GUARD,
    PacketBatch,
)

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
MAGIC_PCAPNG = 0x0A0D0D0A
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4/IPv6, as tcpdump writes it
LINKTYPE_IPV4 = 228
LINK_NAMES = {
    "ETHER": LINKTYPE_ETHERNET,
    "IP": LINKTYPE_RAW,
    "RAW": LINKTYPE_RAW,
    "IPV4": LINKTYPE_IPV4,
}
FILE_HEADER = struct.Struct("<IHHiIII")


#: Bytes in front of each packet of a pcap file that a reader may reuse as headroom: the
#: packet's own record header, which has been read by the time the packet is handed out.
RECORD_HEADER = 16


@dataclass
class PcapFile:
    """The contents of a pcap file: its packets as one batch, plus the file's metadata."""

    batch: PacketBatch  # with a "timestamp" annotation (ns)
    linktype: int
    snaplen: int
    nanosecond: bool
    orig_len: np.ndarray  # original (on-the-wire) length of each packet


class _Buffers:
    """Read buffers handed out again once no batch refers to them any more.

    A fresh buffer costs a page fault per 4 KiB on first touch (about as much as reading the
    file); packets handed downstream keep their buffer alive (a Queue may hold them for a
    while), so a buffer is reused only when this list holds the last reference to it.
    """

    def __init__(self) -> None:
        self._free: list[np.ndarray] = []

    def get(self, size: int, keep: np.ndarray | None) -> np.ndarray:
        for i in range(len(self._free)):
            b = self._free[i]
            # References: the list, ``b`` and getrefcount's argument: no batch's.
            if b.shape[0] >= size and b is not keep and sys.getrefcount(b) <= 3:
                del self._free[i]
                self._free.append(b)
                return b
        b = np.empty(size, np.uint8)
        self._free.append(b)
        del self._free[:-4]  # at most a few idle buffers stay mapped
        return b


@dataclass
class _Chunk:
    """A chunk of the file, scanned: ``n`` whole records, their columns (data offset,
    caplen, origlen, timestamp in ns) in ``cols``; ``buf[0]`` is at ``file_off``."""

    buf: np.ndarray
    cols: np.ndarray
    n: int
    file_off: int


class PcapReader(Closing):
    """Streams the packets of a pcap file as batches, a chunk of the file at a time.

    Opening checks the file header and follows the whole record chain (on a read-only map
    of the file: no copy), so a truncated or corrupt file is an error before any packet
    moves. :meth:`read` then reads the file in chunks of ``chunk`` bytes and hands out
    packets where they lie in the chunk: each has its 16-byte record header in front of it
    as headroom, and no tailroom. Asking for more room copies each chunk once into slots
    with that room.
    """

    CHUNK = 1 << 20
    AHEAD = 1  # chunks read ahead (each costs fresh pages: page faults)

    def __init__(
        self,
        path: str | os.PathLike[str],
        headroom: int = RECORD_HEADER,
        tailroom: int = 0,
        chunk: int = CHUNK,
        background: bool = False,
    ) -> None:
        self.name = name = str(path)
        try:
            self._fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise PcapError(f"{name}: cannot read: {e.strerror or e}") from None
        self._checking: threading.Thread | None = None
        self._check_error: str | None = None
        try:
            self._open(name, background)
        except OSError as e:  # a directory, a device that cannot be read, ...
            os.close(self._fd)
            raise PcapError(f"{name}: cannot read: {e.strerror or e}") from None
        except BaseException:
            os.close(self._fd)
            raise
        self.headroom, self.tailroom, self.chunk = headroom, tailroom, max(chunk, 4096)
        self._zero_copy = headroom <= RECORD_HEADER and tailroom == 0
        self._buffers = _Buffers()
        self._read_from_pipe = False
        self.records_scanned = 0
        self.rewind()

    def _open(self, name: str, background: bool) -> None:
        self.pipe = not stat.S_ISREG(os.fstat(self._fd).st_mode)
        head = os.read(self._fd, 24) if self.pipe else os.pread(self._fd, 24, 0)
        if len(head) < 24:
            raise PcapError(
                f"{name}: truncated file header at byte offset 0 "
                f"(a pcap file header needs 24 bytes, the file has {len(head)})"
            )
        magic_le = int.from_bytes(head[:4], "little")
        magic_be = int.from_bytes(head[:4], "big")
        if magic_le in (MAGIC_USEC, MAGIC_NSEC):
            swapped, magic = False, magic_le
        elif magic_be in (MAGIC_USEC, MAGIC_NSEC):
            swapped, magic = True, magic_be
        elif magic_le == MAGIC_PCAPNG:
            raise PcapError(
                f"{name}: bad magic number 0x{magic_be:08x} at byte offset 0: this is a pcapng "
                f"file; convert it with `editcap -F pcap {name} out.pcap` or `tcpdump -r "
                f"{name} -w out.pcap`"
            )
        else:
            raise PcapError(
                f"{name}: bad magic number 0x{magic_be:08x} at byte offset 0 "
                f"(expected 0xa1b2c3d4 or 0xa1b23c4d: not a pcap file)"
            )
        fmt = ">IHHiIII" if swapped else "<IHHiIII"
        _, _, _, _, _, snaplen, linktype = struct.unpack(fmt, head)
        self.swapped, self.nanosecond = swapped, magic == MAGIC_NSEC
        self.snaplen, self.linktype = int(snaplen), int(linktype)
        self.size = os.fstat(self._fd).st_size
        #: Records in the file; None when the file cannot be mapped (a pipe: it is then
        #: checked as it is read) or is still being checked.
        self.count: int | None = None
        if self.pipe:
            return
        if self.size <= 24:
            self.count = 0
            return
        try:
            m = mmap.mmap(self._fd, self.size, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return
        if background:
            # The walk is memory-bound (~17 ns a record, each record's length names the
            # next) and releases the GIL: on another core it overlaps the kernels' loading.
            self._checking = threading.Thread(target=self._check, args=(m,), daemon=True,
                                              name=f"pcap check {name}")
            self._checking.start()
        else:
            self._check(m)
            self.wait_checked()

    def _check(self, m: mmap.mmap) -> None:
        try:
            n, bad_at, bad_need = _k.pcap_walk(np.frombuffer(m, np.uint8), 24, self.swapped)
        finally:
            m.close()  # no views remain: pcap_walk returns numbers only
        if bad_at >= 0:
            self._check_error = self._truncated(n, bad_at, bad_need, self.size - bad_at)
        else:
            self.count = int(n)

    def wait_checked(self) -> None:
        """Wait for the check of the record chain; PcapError if the file is truncated."""
        t = self._checking  # the reader thread may wait here too
        if t is not None:
            t.join()
            self._checking = None
        if self._check_error is not None:
            raise PcapError(self._check_error)

    def _truncated(self, n: int, at: int, need: int, left: int) -> str:
        return (f"{self.name}: truncated packet record at byte offset {at} (record {n + 1} "
                f"needs {need} bytes, the file has {left} left)")

    def rewind(self) -> None:
        """Read from the first packet again."""
        self._stop_reading()
        self.filepos = 24  # file offset just past the last packet handed out
        self.records = 0  # packets handed out
        self._chunk: _Chunk | None = None
        self._i = 0  # next record of the chunk to hand out
        self._last = (0, 0)
        self._ended = False
        self.records_scanned = 0
        #: Why the stream ended early (a drop reason: "truncated record", "read error")
        #: and the message saying where; None while all is well.
        self.error_reason: str | None = None
        self.error: str | None = None
        if self.pipe and self._fd >= 0 and self._read_from_pipe:
            self._ended = True  # what a pipe sent is gone
        self._queue: queue.Queue[_Chunk | tuple[str, str] | None] | None = None
        self._stop = threading.Event()

    def close(self) -> None:
        self._stop_reading()
        if self._checking is not None:
            self._checking.join()  # it maps the file: let it finish first
            self._checking = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # ------------------------------------------------------------------ streaming
    # A reader thread reads chunks ahead and scans them (both release the GIL), so that
    # reading the file overlaps the data path on another core; the data path takes
    # scanned chunks from a short queue.

    def _start_reading(self, want: int) -> None:
        self._queue = queue.Queue(self.AHEAD)
        self._reader = threading.Thread(target=self._read_ahead, args=(max(want, 1),),
                                        daemon=True, name=f"pcap read {self.name}")
        self._read_from_pipe = self.pipe
        self._reader.start()

    def _stop_reading(self) -> None:
        q = getattr(self, "_queue", None)
        if q is None:
            return
        self._stop.set()
        while self._reader.is_alive():  # unblock a put(), then let it see the flag
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)
        self._reader.join()
        self._queue = None

    def _put(self, item: _Chunk | tuple[str, str] | None) -> bool:
        assert self._queue is not None
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read_ahead(self, want: int) -> None:
        """The reader thread: chunks whose records make whole batches of ``want``; the
        records left over at a chunk's end (and a partial record) start the next chunk."""
        # Column arrays, reused: the data path copies a batch's columns out of one before
        # the queue lets this thread come round to it again.
        ring = [np.empty((4, 0), np.int64) for _ in range(self.AHEAD + 2)]
        prev: np.ndarray | None = None
        carry = (0, 0)  # bytes of ``prev`` that start the next chunk
        file_off, need, k, last_n = 24, 16, 0, 0
        try:
            while not self._stop.is_set():
                held = carry[1] - carry[0]
                size = held + max(self.chunk, need)
                buf = self._buffers.get(max(size, self.chunk * 3 // 2) + POOL_GUARD, prev)
                if held:
                    buf[:held] = prev[carry[0] : carry[1]]  # type: ignore[index]
                view = [memoryview(buf)[held:size]]
                try:
                    if self.pipe:
                        got = os.readv(self._fd, view)
                    else:  # at an explicit offset: forked workers share the file position
                        got = os.preadv(self._fd, view, file_off + held)
                except OSError as e:  # an I/O error, the file removed from under us, ...
                    self._put(("read error", f"{self.name}: cannot read at byte offset "
                                             f"{file_off + held}: {e.strerror or e}"))
                    break
                end = held + got
                # Columns for as many records as the last chunk had (a fresh page costs a
                # fault: sizing for a record per 16 bytes cost more than the scan); more
                # records than that, and the scan is done again with room for all.
                cols = ring[k % len(ring)]
                if cols.shape[1] < min(2 * last_n + 64, end // 16 + 1):
                    cols = ring[k % len(ring)] = np.empty(
                        (4, min(2 * last_n + 64, end // 16 + 1)), np.int64)
                n, nxt, need = _k.pcap_scan(buf, 0, end, self.swapped, self.nanosecond, cols)
                if n == cols.shape[1] and nxt < end:
                    cols = ring[k % len(ring)] = np.empty((4, end // 16 + 1), np.int64)
                    n, nxt, need = _k.pcap_scan(buf, 0, end, self.swapped, self.nanosecond,
                                                cols)
                last_n = max(last_n, int(n))
                n, nxt, need = int(n), int(nxt), max(int(need), 16)
                if got == 0:  # the end: hand out what is whole, then say why we stopped
                    if n:
                        self._put(_Chunk(buf, cols, n, file_off))
                    if nxt < end:
                        msg = self._truncated(self.records_scanned + n, file_off + nxt, need,
                                              end - nxt)
                        self._put(("truncated record", msg))
                    break
                if n >= want:  # whole batches only; the rest starts the next chunk
                    n -= n % want
                    nxt = int(cols[0, n - 1] + cols[1, n - 1]) if n else 0
                if n and not self._put(_Chunk(buf, cols, n, file_off)):
                    break
                self.records_scanned += n
                k += 1
                prev, carry = buf, (nxt, end)
                file_off += nxt
        finally:
            self._put(None)

    def _next_chunk(self, want: int) -> bool:
        """Take the next scanned chunk; False at the end, or, from a pipe, while none has
        come yet (the data path does not wait for a pipe)."""
        if self._ended:
            return False
        if self._queue is None:
            self.wait_checked()  # a bad file raises here, before any packet
            self._start_reading(want)
        assert self._queue is not None
        try:
            item = self._queue.get(block=not self.pipe, timeout=None)
        except queue.Empty:
            return False
        if isinstance(item, _Chunk):
            self._chunk, self._i = item, 0
            return True
        self._ended = True
        if isinstance(item, tuple):
            self.error_reason, self.error = item
        self._chunk = None
        return False

    @property
    def ended(self) -> bool:
        """Whether every packet has been handed out (or the rest of the file is bad)."""
        return self._ended and (self._chunk is None or self._i >= self._chunk.n)

    def available(self, want: int = 0) -> int:
        """Packets that :meth:`read` can hand out in one piece now (0 at the end, or from
        a pipe while nothing has come). The first call's ``want`` (the batch size) shapes
        the chunks: each holds whole batches, so that batches keep their size."""
        c = self._chunk
        if (c is None or self._i >= c.n) and not self._next_chunk(want):
            return 0
        assert self._chunk is not None
        return self._chunk.n - self._i

    def timestamps(self) -> np.ndarray:
        """Timestamps (ns) of the next :meth:`available` packets."""
        if not self.available():
            return np.zeros(0, np.int64)
        assert self._chunk is not None
        return self._timestamps(self._i, self._chunk.n)

    def _timestamps(self, i: int, j: int) -> np.ndarray:
        return self._chunk.cols[3, i:j].copy()  # type: ignore[union-attr]

    def read(self, max_packets: int) -> PacketBatch | None:
        """Up to ``max_packets`` next packets (fewer at a chunk's end), None at the end."""
        if not self.available(max_packets):
            return None
        c = self._chunk
        assert c is not None
        i, j = self._i, min(self._i + max_packets, c.n)
        self._i = j
        self.records += j - i
        self._last = (i, j)
        self.filepos = c.file_off + int(c.cols[0, j - 1] + c.cols[1, j - 1])
        # Columns are copied out: the reader thread reuses the column arrays.
        b = PacketBatch(c.buf, c.cols[0, i:j].copy(), c.cols[1, i:j].copy(),
                        {"timestamp": self._timestamps(i, j)}, RECORD_HEADER, 0)
        return b if self._zero_copy else b.compact(self.headroom, self.tailroom)

    def orig_len(self) -> np.ndarray:
        """On-the-wire lengths of the packets of the last :meth:`read`."""
        i, j = self._last
        if self._chunk is None:
            return np.zeros(0, np.int64)
        return self._chunk.cols[2, i:j].copy()


def read_pcap(
    path: str | os.PathLike[str], headroom: int = DEFAULT_HEADROOM, tailroom: int = DEFAULT_TAILROOM
) -> PcapFile:
    """Load a whole pcap file. Errors name the file and the byte offset of the problem."""
    with PcapReader(path, RECORD_HEADER, 0, chunk=os.path.getsize(path) + 16) as r:
        parts, orig = [], []
        while (b := r.read(1 << 62)) is not None:
            parts.append(b)
            orig.append(r.orig_len())
        if r.error:
            raise PcapError(r.error)
        batch = PacketBatch.concat(parts) if parts else PacketBatch.empty()
        if "timestamp" not in batch.annos:
            batch.annos["timestamp"] = np.zeros(0, np.int64)
        return PcapFile(batch.compact(headroom, tailroom), r.linktype, r.snaplen,
                        r.nanosecond, np.concatenate(orig) if orig else np.zeros(0, np.int64))


class PcapWriter(Closing):
    """Writes batches to a pcap file (little-endian, as libpcap writes on x86)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        linktype: int = LINKTYPE_ETHERNET,
        snaplen: int = 65535,
        nanosecond: bool = False,
    ) -> None:
        self.path = Path(path)
        self.snaplen = snaplen
        self.nanosecond = nanosecond
        self.count = 0
        try:
            self._f: BinaryIO = open(self.path, "wb")  # noqa: SIM115 - lives with the writer
        except OSError as e:
            raise PcapError(f"{path}: cannot write: {e.strerror or e}") from None
        magic = MAGIC_NSEC if nanosecond else MAGIC_USEC
        self._f.write(FILE_HEADER.pack(magic, 2, 4, 0, 0, snaplen, linktype))
        self._out = np.empty(0, np.uint8)

    def write(self, batch: PacketBatch) -> None:
        n = len(batch)
        if n == 0:
            return
        ts = batch.anno_or_none("timestamp")
        if ts is None:
            ts = np.full(n, time.time_ns(), np.int64)
        unit = 1 if self.nanosecond else 1000
        ts_sec = ts // 1_000_000_000
        ts_frac = (ts % 1_000_000_000) // unit
        need = int(np.minimum(batch.length, self.snaplen).sum()) + 16 * n
        if self._out.shape[0] < need:
            # Reused from batch to batch: a fresh buffer per batch costs a page fault per
            # 4 KiB written, more than the copy into it.
            self._out = np.empty(max(need, 2 * self._out.shape[0]), np.uint8)
        out = self._out
        size = _k.pcap_records(
            batch.pool, batch.off, batch.length, batch.length, ts_sec, ts_frac, self.snaplen, out
        )
        self._f.write(out[:size].data)
        self.count += n

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()



def write_pcap(
    path: str | os.PathLike[str],
    batch: PacketBatch,
    linktype: int = LINKTYPE_ETHERNET,
    nanosecond: bool = False,
) -> None:
    """Write one batch as a whole pcap file."""
    with PcapWriter(path, linktype, nanosecond=nanosecond) as w:
        w.write(batch)


def warmup() -> None:
    """Compile the pcap kernels before the first packet (see :mod:`routebricks.jit`): the
    reader thread would otherwise compile pcap_scan while the first batch waits."""
    from routebricks.jit import precompile

    buf, i64 = np.zeros(1, np.uint8), np.zeros(1, np.int64)
    mapped = np.zeros(1, np.uint8)
    mapped.flags.writeable = False  # the walk reads a read-only map of the file
    precompile(_k.pcap_walk, mapped, 24, False)
    precompile(_k.pcap_scan, buf, 0, 1, False, False, np.zeros((4, 1), np.int64))
    precompile(_k.pcap_records, buf, i64, i64, i64, i64, i64, 1, buf)
