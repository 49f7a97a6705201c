"""Helpers shared by the tests of the standard elements (not a test module).

Packets are built and checked with scapy, an implementation independent of ours; routers are
built from Click configuration text or through the Python API and run for real.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scapy.all import (
    IP,
    TCP,
    UDP,
    Ether,
    Packet,
    Raw,
    RawPcapReader,
    RawPcapWriter,
    rdpcap,
    wrpcap,
)

from routebricks.engine.element import Element
from routebricks.engine.router import Router
from routebricks.packet.batch import PacketBatch

MAC_A = "02:00:00:00:00:0a"
MAC_B = "02:00:00:00:00:0b"


def flow_packets(nflows: int = 6, per_flow: int = 5, *, t0: float = 1000.0) -> list[Packet]:
    """Interleaved packets of ``nflows`` UDP/TCP flows (distinct addresses and ports)."""
    pkts: list[Packet] = []
    for k in range(per_flow):
        for f in range(nflows):
            l4 = (UDP if f % 2 else TCP)(sport=1000 + f, dport=2000 + 7 * f)
            p = (Ether(src=MAC_A, dst=MAC_B) / IP(src=f"10.0.{f}.1", dst=f"192.168.{f}.{f + 2}")
                 / l4 / Raw(bytes([k]) * (10 + f)))
            p.time = t0 + len(pkts) * 0.001
            pkts.append(p)
    return pkts


def write_pcap(path: Path, packets: Sequence[Packet | bytes]) -> Path:
    """Write ``packets`` (scapy packets, or raw frames of any length) to an Ethernet pcap."""
    if all(isinstance(p, bytes | bytearray) for p in packets):
        with RawPcapWriter(str(path), linktype=1) as w:
            for p in packets:
                w.write(bytes(p))
    else:
        wrpcap(str(path), list(packets))
    return path


def read_frames(path: Path) -> list[bytes]:
    """The frames of a pcap file, as bytes, read by scapy (without dissecting them)."""
    with RawPcapReader(str(path)) as rd:
        return [bytes(data) for data, _meta in rd]


def read_packets(path: Path) -> list[Packet]:
    """The packets of a pcap file, dissected by scapy (with their pcap timestamps)."""
    return list(rdpcap(str(path)))


def run_text(text: str, *, time_limit: float = 5.0, limit: int | None = None) -> Router:
    """Build a router from Click configuration text, run it, clean it up; return it."""
    r = Router.from_text(text)
    try:
        r.run(time_limit=time_limit, limit=limit)
    finally:
        r.cleanup()
    return r


def run_elements(*elements: Element, time_limit: float = 5.0) -> Router:
    """Build a router from Python-API elements, run it, clean it up; return it."""
    r = Router.from_elements(*elements)
    try:
        r.run(time_limit=time_limit)
    finally:
        r.cleanup()
    return r


def batch_of(frames: Sequence[bytes], headroom: int = 64) -> PacketBatch:
    return PacketBatch.from_bytes(frames, headroom=headroom)


def q(path: Path) -> str:
    """A file name as a quoted Click configuration string."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'
