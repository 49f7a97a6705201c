"""pcap files (libpcap format, microsecond and nanosecond timestamps), read and written in
whole batches.

Reading scans the record chain in a compiled kernel and repacks the packets into a pool with
head- and tailroom, so the loaded packets are a :class:`PacketBatch` like any other. pcapng is
recognised and refused with a hint.
"""

from __future__ import annotations

import mmap
import os
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
        except BaseException:
            os.close(self._fd)
            raise
        self.headroom, self.tailroom, self.chunk = headroom, tailroom, max(chunk, 4096)
        self._zero_copy = headroom <= RECORD_HEADER and tailroom == 0
        self._buffers = _Buffers()
        #: Per-record columns of the current chunk (data offset, caplen, origlen, ts_sec,
        #: ts_frac), reused from chunk to chunk.
        self._cols = np.empty((5, self.chunk // 16 + 1), np.int64)
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
        if self._checking is not None:
            self._checking.join()
            self._checking = None
        if self._check_error is not None:
            raise PcapError(self._check_error)

    def _truncated(self, n: int, at: int, need: int, left: int) -> str:
        return (f"{self.name}: truncated packet record at byte offset {at} (record {n + 1} "
                f"needs {need} bytes, the file has {left} left)")

    def rewind(self) -> None:
        """Read from the first packet again."""
        self.filepos = 24  # file offset of the first byte not yet consumed
        self.records = 0  # packets handed out
        self._buf: np.ndarray | None = None
        self._pos = self._end = 0
        self._i = self._n = 0  # next record to hand out, records scanned in _cols
        self._last = (0, 0)
        self.error: str | None = None  # set when a streamed file turns out truncated

    def close(self) -> None:
        if self._checking is not None:
            self._checking.join()  # it maps the file: let it finish first
            self._checking = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # ------------------------------------------------------------------ streaming
    def _refill(self, need: int) -> bool:
        """Read the next chunk, carrying the partial record at the end of the last one."""
        carry = self._end - self._pos
        size = carry + max(self.chunk, need)
        # Buffers of one size (unless a record is huge), so that they can be reused.
        buf = self._buffers.get(max(size, 2 * self.chunk) + POOL_GUARD, self._buf)
        if carry:
            buf[:carry] = self._buf[self._pos : self._end]  # type: ignore[index]
        view = [memoryview(buf)[carry:size]]
        if self.pipe:  # read on
            got = os.readv(self._fd, view)
        else:
            # At an explicit offset: forked workers share the descriptor's file position.
            got = os.preadv(self._fd, view, self.filepos + carry)
        if got == 0:
            if carry:
                self.error = self._truncated(self.records, self.filepos, need, carry)
            return False
        self._buf, self._pos, self._end = buf, 0, carry + got
        return True

    def _scan(self) -> bool:
        """Columns for the next whole records in the current chunk; False at the end."""
        self.wait_checked()
        need = 16
        while True:
            if self._buf is not None and self._end - self._pos >= need:
                n, nxt, need = _k.pcap_scan(self._buf, self._pos, self._end, self.swapped,
                                            self._cols)
                if n:
                    self.filepos += int(nxt - self._pos)
                    self._pos = int(nxt)
                    self._n, self._i = int(n), 0
                    return True
                need = max(int(need), 16)
            if self.error is not None or not self._refill(need):
                return False

    def available(self, want: int = 0) -> int:
        """Packets that :meth:`read` can hand out in one piece now (0 at the end).

        With ``want``: when fewer than that are left in the current chunk and the file has
        more, they move to the front of the next chunk (a copy of less than a batch), so
        batches keep their size across chunk ends.
        """
        if self._i >= self._n and not self._scan():
            return 0
        left = self._n - self._i
        if left < want and not self.pipe and self.filepos + (
                self._end - self._pos) < self.size:
            start = int(self._cols[0, self._i]) - 16  # unscan what was not handed out
            self.filepos -= self._pos - start
            self._pos, self._i, self._n = start, 0, 0
            if not self._refill(16) or not self._scan():
                return 0
            left = self._n
        return left

    def timestamps(self) -> np.ndarray:
        """Timestamps (ns) of the next :meth:`available` packets."""
        if not self.available():
            return np.zeros(0, np.int64)
        return self._timestamps(self._i, self._n)

    def _timestamps(self, i: int, j: int) -> np.ndarray:
        ts = self._cols[3, i:j] * 1_000_000_000
        ts += self._cols[4, i:j] if self.nanosecond else self._cols[4, i:j] * 1000
        return ts

    def read(self, max_packets: int) -> PacketBatch | None:
        """Up to ``max_packets`` next packets (fewer at a chunk's end), None at the end."""
        if self._i >= self._n and not self._scan():
            return None
        assert self._buf is not None
        i, j = self._i, min(self._i + max_packets, self._n)
        self._i = j
        self.records += j - i
        self._last = (i, j)
        # Columns are copied out: the column array is reused by the next scan.
        b = PacketBatch(self._buf, self._cols[0, i:j].copy(), self._cols[1, i:j].copy(),
                        {"timestamp": self._timestamps(i, j)}, RECORD_HEADER, 0)
        return b if self._zero_copy else b.compact(self.headroom, self.tailroom)

    def orig_len(self) -> np.ndarray:
        """On-the-wire lengths of the packets of the last :meth:`read`."""
        i, j = self._last
        return self._cols[2, i:j].copy()


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
