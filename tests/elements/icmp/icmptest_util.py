"""Helpers shared by the tests of the ICMP elements (not a test module).

scapy builds the packets and is the oracle for what comes out; routers are built from Click
configuration text, a test pushes a batch into one element and drains the Queues on the
outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

from scapy.all import ICMP, IP, Packet
from scapy.utils import checksum as scapy_checksum

from routebricks.engine.router import Router
from routebricks.packet.batch import PacketBatch


def build(text: str) -> Router:
    return Router.from_text(text)


def batch_of(frames: Sequence[bytes | Packet]) -> PacketBatch:
    return PacketBatch.from_bytes([bytes(f) for f in frames])


def push(r: Router, name: str, frames: Sequence[bytes | Packet] | PacketBatch) -> None:
    b = frames if isinstance(frames, PacketBatch) else batch_of(frames)
    r.find(name).push(0, b)


def drain(r: Router, queue: str) -> PacketBatch:
    parts = []
    q = r.find(queue)
    while (b := q.pull(0)) is not None:
        parts.append(b)
    return PacketBatch.concat(parts) if parts else PacketBatch.empty()


def network_bytes(batch: PacketBatch, i: int) -> bytes:
    nh = int(batch.anno("nh")[i])
    assert nh >= 0
    return batch.pool[nh : int(batch.off[i] + batch.length[i])].tobytes()


def ip_checksum_ok(raw_ip: bytes) -> bool:
    """The stored header checksum equals scapy's recomputation (and sums to zero)."""
    p = IP(raw_ip)
    stored = p.chksum
    del p.chksum
    hlen = (raw_ip[0] & 0xF) * 4
    return IP(bytes(p)).chksum == stored and scapy_checksum(raw_ip[:hlen]) == 0


def icmp_checksum_ok(raw_ip: bytes) -> bool:
    """The ICMP checksum equals scapy's recomputation over the whole ICMP message."""
    hlen = (raw_ip[0] & 0xF) * 4
    total = int.from_bytes(raw_ip[2:4], "big")
    msg = raw_ip[hlen:total]
    stored = int.from_bytes(msg[2:4], "big")
    zeroed = msg[:2] + b"\0\0" + msg[4:]
    return scapy_checksum(zeroed) == stored and IP(raw_ip)[ICMP].chksum == stored
