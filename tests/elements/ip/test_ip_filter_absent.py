"""A field test on bytes a packet does not have is false, `!=` and `<=` included; only an
explicit `not` makes it true (Click's IPFilter semantics)."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP

from routebricks.engine.router import Router
from routebricks.packet.batch import PacketBatch

SHORT = bytes(IP(src="1.1.1.1", dst="2.2.2.2", proto=6))  # TCP, but no TCP header bytes
FULL = bytes(IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=1000, dport=80))


def matches(pattern: str, frame: bytes) -> bool:
    r = Router.from_text(f"f :: IPFilter(allow {pattern}, deny all); "
                         "Idle -> f -> c :: Counter -> Discard")
    r.initialize()
    r.elements["f"].push(0, PacketBatch.from_bytes([frame]))
    hit = r.elements["c"].read("count") == "1"
    r.cleanup()
    return hit


@pytest.mark.parametrize(("pattern", "short", "full"), [
    ("dst port 80", False, True),
    ("dst port != 80", False, False),       # absent: false, not "not equal"
    ("dst port != 81", False, True),
    ("not dst port 80", True, False),       # only an explicit not turns absence true
    ("not (dst port 80)", True, False),
    ("dst port <= 80", False, True),
    ("dst port > 80", False, False),
    ("port != 80", False, False),           # src or dst: neither is 80 -- sport 1000 is not
    ("port != 1000", False, False),
    ("port != 1234", False, True),
    ("ip[40] != 1", False, False),          # byte 40: past both packets' ends
    ("not ip[40] == 1", True, True),
    ("src host != 1.1.1.1", False, False),
    ("src host != 9.9.9.9", True, True),    # the IP header is there: an ordinary test
])
def test_missing_fields(pattern: str, short: bool, full: bool) -> None:
    assert matches(pattern, SHORT) is short
    assert matches(pattern, FULL) is full
