"""Helpers shared by the tests of the standard elements (not a test module).

Packets are built and checked with scapy, an implementation independent of ours; routers are
built from Click configuration text or through the Python API and run for real.
"""

from __future__ import annotations

from elementtest import (
    batch_of,
    q,
    read_frames,
    read_packets,
    run_elements,
    run_text,
    write_pcap,
)
from scapy.all import IP, TCP, UDP, Ether, Packet, Raw

__all__ = ["MAC_A", "MAC_B", "batch_of", "flow_packets", "q", "read_frames", "read_packets",
           "run_elements", "run_text", "write_pcap"]

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
