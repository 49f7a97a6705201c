"""Helpers shared by the tests of the IP elements (not a test module).

Packets are built and checked with scapy, an implementation independent of ours. Routers are
built from Click configuration text; a test pushes a batch into one element and drains the
Queues placed on its outputs (the router is not run, so nothing else moves the packets).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scapy.all import IP, Packet, RawPcapReader, RawPcapWriter, wrpcap
from scapy.utils import checksum as scapy_checksum

from routebricks.engine.router import Router
from routebricks.packet.batch import PacketBatch


def build(text: str) -> Router:
    return Router.from_text(text)


def batch_of(frames: Sequence[bytes | Packet], headroom: int = 64) -> PacketBatch:
    return PacketBatch.from_bytes([bytes(f) for f in frames], headroom=headroom)


def push(r: Router, name: str, frames: Sequence[bytes | Packet] | PacketBatch) -> None:
    b = frames if isinstance(frames, PacketBatch) else batch_of(frames)
    r.find(name).push(0, b)


def drain(r: Router, queue: str) -> PacketBatch:
    """Everything stored in Queue ``queue``, as one batch (empty if none)."""
    parts = []
    q = r.find(queue)
    while (b := q.pull(0)) is not None:
        parts.append(b)
    return PacketBatch.concat(parts) if parts else PacketBatch.empty()


def network_bytes(batch: PacketBatch, i: int) -> bytes:
    """Packet ``i`` from its network-header annotation to its end."""
    nh = int(batch.anno("nh")[i])
    assert nh >= 0
    return batch.pool[nh : int(batch.off[i] + batch.length[i])].tobytes()


def header_checksum_ok(raw_ip: bytes) -> bool:
    """scapy as the oracle: the stored checksum equals the one scapy recomputes, and the
    one's-complement sum over the header is 0."""
    p = IP(raw_ip)
    stored = p.chksum
    del p.chksum
    again = IP(bytes(p)).chksum
    hlen = (raw_ip[0] & 0xF) * 4
    return stored == again and scapy_checksum(raw_ip[:hlen]) == 0


def write_pcap(path: Path, packets: Sequence[Packet | bytes], linktype: int = 1) -> Path:
    if all(isinstance(p, bytes | bytearray) for p in packets):
        with RawPcapWriter(str(path), linktype=linktype) as w:
            for p in packets:
                w.write(bytes(p))
    else:
        wrpcap(str(path), list(packets))
    return path


def read_frames(path: Path) -> list[bytes]:
    with RawPcapReader(str(path)) as rd:
        return [bytes(data) for data, _meta in rd]


def run_text(text: str, *, time_limit: float = 10.0) -> Router:
    r = Router.from_text(text)
    try:
        r.run(time_limit=time_limit)
    finally:
        r.cleanup()
    return r


def q(path: Path) -> str:
    """A file name as a quoted Click configuration string."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def drop_lines(text: str) -> dict[str, int]:
    """``COUNT<TAB>REASON`` lines as a dict."""
    out = {}
    for line in text.splitlines():
        if line.strip():
            n, why = line.split("\t", 1)
            out[why] = int(n)
    return out
