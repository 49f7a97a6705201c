"""Helpers shared by the tests of every element group (not a test module).

Packets are built and checked with scapy, an implementation independent of ours. Routers are
built from Click configuration text (or the Python API) and either run for real, or left
unrun while a test pushes a batch into one element and drains the Queues on its outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scapy.all import IP, Packet, RawPcapReader, RawPcapWriter, rdpcap, wrpcap
from scapy.utils import checksum as scapy_checksum

from routebricks.engine.element import Element
from routebricks.engine.router import Router
from routebricks.packet.batch import PacketBatch


def write_pcap(path: Path, packets: Sequence[Packet | bytes], linktype: int = 1) -> Path:
    """Write scapy packets, or raw frames of any length with ``linktype``, to a pcap file."""
    if all(isinstance(p, bytes | bytearray) for p in packets):
        with RawPcapWriter(str(path), linktype=linktype) as w:
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


def q(path: Path) -> str:
    """A file name as a quoted Click configuration string."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


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


def build(text: str) -> Router:
    """A router from Click configuration text, not run."""
    return Router.from_text(text)


def batch_of(frames: Sequence[bytes | Packet], headroom: int = 64) -> PacketBatch:
    return PacketBatch.from_bytes([bytes(f) for f in frames], headroom=headroom)


def push(r: Router, name: str, frames: Sequence[bytes | Packet] | PacketBatch) -> None:
    """Push ``frames`` into input 0 of element ``name``."""
    b = frames if isinstance(frames, PacketBatch) else batch_of(frames)
    r.find(name).push(0, b)


def drain(r: Router, queue: str) -> PacketBatch:
    """Everything stored in Queue ``queue``, as one batch (empty if none)."""
    parts = []
    qu = r.find(queue)
    while (b := qu.pull(0)) is not None:
        parts.append(b)
    return PacketBatch.concat(parts) if parts else PacketBatch.empty()


def network_bytes(batch: PacketBatch, i: int) -> bytes:
    """Packet ``i`` from its network-header annotation to its end."""
    nh = int(batch.anno("nh")[i])
    assert nh >= 0
    return batch.pool[nh : int(batch.off[i] + batch.length[i])].tobytes()


def ip_checksum_ok(raw_ip: bytes) -> bool:
    """scapy as the oracle: the stored header checksum equals the one scapy recomputes, and
    the one's-complement sum over the header is 0."""
    p = IP(raw_ip)
    stored = p.chksum
    del p.chksum
    hlen = (raw_ip[0] & 0xF) * 4
    return IP(bytes(p)).chksum == stored and scapy_checksum(raw_ip[:hlen]) == 0


def drop_lines(text: str) -> dict[str, int]:
    """``COUNT<TAB>REASON`` lines (a drops handler's value) as a dict."""
    out = {}
    for line in text.splitlines():
        if line.strip():
            n, why = line.split("\t", 1)
            out[why] = int(n)
    return out
