"""pcap files (libpcap format, microsecond and nanosecond timestamps), read and written in
whole batches.

Reading scans the record chain in a compiled kernel and repacks the packets into a pool with
head- and tailroom, so the loaded packets are a :class:`PacketBatch` like any other. pcapng is
recognised and refused with a hint.
"""

from __future__ import annotations

import os
import struct
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


@dataclass
class PcapFile:
    """The contents of a pcap file: its packets as one batch, plus the file's metadata."""

    batch: PacketBatch  # with a "timestamp" annotation (ns)
    linktype: int
    snaplen: int
    nanosecond: bool
    orig_len: np.ndarray  # original (on-the-wire) length of each packet


def read_pcap(
    path: str | os.PathLike[str], headroom: int = DEFAULT_HEADROOM, tailroom: int = DEFAULT_TAILROOM
) -> PcapFile:
    """Load a whole pcap file. Errors name the file and the byte offset of the problem."""
    name = str(path)
    try:
        raw = np.fromfile(name, dtype=np.uint8)
    except OSError as e:
        raise PcapError(f"{name}: cannot read: {e.strerror or e}") from None
    if raw.shape[0] < 24:
        raise PcapError(
            f"{name}: truncated file header at byte offset 0 "
            f"(a pcap file header needs 24 bytes, the file has {raw.shape[0]})"
        )
    magic_le = int.from_bytes(raw[:4].tobytes(), "little")
    magic_be = int.from_bytes(raw[:4].tobytes(), "big")
    if magic_le in (MAGIC_USEC, MAGIC_NSEC):
        swapped, magic = False, magic_le
    elif magic_be in (MAGIC_USEC, MAGIC_NSEC):
        swapped, magic = True, magic_be
    elif magic_le == MAGIC_PCAPNG:
        raise PcapError(
            f"{name}: bad magic number 0x{magic_be:08x} at byte offset 0: this is a pcapng "
            f"file; convert it with `editcap -F pcap {name} out.pcap` or `tcpdump -r {name} -w "
            f"out.pcap`"
        )
    else:
        raise PcapError(
            f"{name}: bad magic number 0x{magic_be:08x} at byte offset 0 "
            f"(expected 0xa1b2c3d4 or 0xa1b23c4d: not a pcap file)"
        )
    fmt = ">IHHiIII" if swapped else "<IHHiIII"
    _, _, _, _, _, snaplen, linktype = struct.unpack(fmt, raw[:24].tobytes())
    estimate = max(16, raw.shape[0] // 80)
    n, data_off, caplen, origlen, ts_sec, ts_frac, bad_at, bad_need = _k.pcap_scan(
        raw, 24, swapped, estimate
    )
    if bad_at >= 0:
        raise PcapError(
            f"{name}: truncated packet record at byte offset {bad_at} (record {n + 1} needs "
            f"{bad_need} bytes, the file has {raw.shape[0] - bad_at} left)"
        )
    nanosecond = magic == MAGIC_NSEC
    slot = caplen + (headroom + tailroom)
    starts = np.zeros(n, np.int64)
    if n:
        np.cumsum(slot[:-1], out=starts[1:])
    pool = np.zeros(int(slot.sum()) + POOL_GUARD, np.uint8)
    off = starts + headroom
    _k.repack(raw, data_off, caplen, pool, off)
    ts = ts_sec * 1_000_000_000 + ts_frac * (1 if nanosecond else 1000)
    batch = PacketBatch(pool, off, caplen.copy(), {"timestamp": ts}, headroom, tailroom)
    return PcapFile(batch, int(linktype), int(snaplen), nanosecond, origlen)


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
        caplen = np.minimum(batch.length, self.snaplen)
        out = np.empty(int(caplen.sum()) + 16 * n, np.uint8)
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
