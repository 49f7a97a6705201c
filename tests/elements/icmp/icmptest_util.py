"""Helpers shared by the tests of the ICMP elements (not a test module).

scapy builds the packets and is the oracle for what comes out; routers are built from Click
configuration text, a test pushes a batch into one element and drains the Queues on the
outputs.
"""

from __future__ import annotations

from elementtest import batch_of, build, drain, ip_checksum_ok, network_bytes, push
from scapy.all import ICMP, IP
from scapy.utils import checksum as scapy_checksum

__all__ = ["batch_of", "build", "drain", "icmp_checksum_ok", "ip_checksum_ok",
           "network_bytes", "push"]


def icmp_checksum_ok(raw_ip: bytes) -> bool:
    """The ICMP checksum equals scapy's recomputation over the whole ICMP message."""
    hlen = (raw_ip[0] & 0xF) * 4
    total = int.from_bytes(raw_ip[2:4], "big")
    msg = raw_ip[hlen:total]
    stored = int.from_bytes(msg[2:4], "big")
    zeroed = msg[:2] + b"\0\0" + msg[4:]
    return scapy_checksum(zeroed) == stored and IP(raw_ip)[ICMP].chksum == stored
