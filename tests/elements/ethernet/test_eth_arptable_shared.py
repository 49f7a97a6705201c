"""ARPTable shared by two ARPQueriers (TABLE): what one learns, the other uses."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP
from scapy.layers.l2 import ARP, Ether

from routebricks.engine.router import Router
from routebricks.errors import ConfigError
from routebricks.packet.batch import PacketBatch

CONFIG = """
arpt :: ARPTable(TIMEOUT 0);
Idle -> q0 :: ARPQuerier(10.0.0.1, 02:00:00:00:00:01, TABLE arpt) -> o0 :: Counter -> Discard;
Idle -> [1] q0;
Idle -> q1 :: ARPQuerier(10.0.1.1, 02:00:00:00:00:02, TABLE arpt) -> o1 :: Counter -> Discard;
Idle -> [1] q1;
"""


def ip_to(r: Router, q: str, dst: str) -> None:
    b = PacketBatch.from_bytes([bytes(IP(src="10.0.0.1", dst=dst))])
    b.anno("dst_ip")[:] = int.from_bytes(bytes(map(int, dst.split("."))), "big")
    r.elements[q].push(0, b)


def test_what_one_querier_learns_the_other_uses() -> None:
    r = Router.from_text(CONFIG)
    r.initialize()
    reply = Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:99") / ARP(
        op=2, hwsrc="02:00:00:00:00:99", psrc="10.0.0.9", hwdst="02:00:00:00:00:01",
        pdst="10.0.0.1")
    r.elements["q0"].push(1, PacketBatch.from_bytes([bytes(reply)]))
    assert "10.0.0.9 1 02-00-00-00-00-99" in r.elements["arpt"].read("table")
    before = int(r.elements["o1"].read("count"))
    ip_to(r, "q1", "10.0.0.9")  # q1 never saw the reply: it sends at once, no query
    assert int(r.elements["o1"].read("count")) == before + 1
    assert r.elements["q1"].read("table").split()[:3] == ["10.0.0.9", "1", "02-00-00-00-00-99"]
    r.elements["arpt"].write("clear", "")
    assert r.elements["q0"].read("count") == "0"
    r.cleanup()


def test_table_must_name_an_arptable() -> None:
    with pytest.raises(ConfigError, match="TABLE 'c' is a Counter, not an ARPTable"):
        Router.from_text("c :: Counter; Idle -> ARPQuerier(10.0.0.1, 02:00:00:00:00:01, "
                         "TABLE c) -> Discard; Idle -> c -> Discard")
    with pytest.raises(ConfigError, match="is no element"):
        Router.from_text("Idle -> ARPQuerier(10.0.0.1, 02:00:00:00:00:01, TABLE nope) "
                         "-> Discard")
