"""Packet order across branches that merge: a batch goes down one branch after another, so
packets of different outputs reach a merge point grouped by branch; at kp 1 the order is
Click's (one packet at a time, depth first)."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap, wrpcap

from routebricks.engine.router import Router

CONFIG = """
FromDump({src}, STOP true) -> c :: Classifier(23/11, -);
c[0] -> Paint(1) -> out :: ToDump({dst});
c[1] -> Paint(2) -> out;
"""


def test_kp_1_keeps_click_order_and_batches_group_by_branch(tmp_path: Path) -> None:
    pkts = [Ether() / IP(dst=f"10.0.0.{i}", proto=17 if i % 2 else 6) / UDP() for i in range(20)]
    src = tmp_path / "in.pcap"
    wrpcap(str(src), pkts)
    order = {}
    for kp in (1, 8):
        dst = tmp_path / f"out{kp}.pcap"
        r = Router.from_text(CONFIG.format(src=src, dst=dst))
        r.kp = kp
        r.run()
        r.cleanup()
        order[kp] = [p[IP].dst for p in rdpcap(str(dst))]
    assert order[1] == [p[IP].dst for p in pkts]  # Click's order
    # kp 8: within each batch of 8, the UDP (odd) packets first, then the others.
    first = [p[IP].dst for p in pkts[:8]]
    assert order[8][:8] == [d for d in first if int(d.rsplit(".", 1)[1]) % 2] + [
        d for d in first if not int(d.rsplit(".", 1)[1]) % 2]
    assert sorted(order[8]) == sorted(order[1])
