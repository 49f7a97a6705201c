"""GetIPAddress and SetIPAddress: the destination-address annotation."""

from __future__ import annotations

import pytest
from iptest_util import build, drain, push
from scapy.all import IP, UDP, Ether

from routebricks.errors import ConfigError
from routebricks.packet.ip import ip_to_int


def frames(n: int = 5) -> list[bytes]:
    return [bytes(Ether() / IP(src=f"10.0.0.{i}", dst=f"192.168.1.{i}") / UDP())
            for i in range(1, n + 1)]


def test_get_from_offset():
    r = build("Idle -> g :: GetIPAddress(30) -> out :: Queue -> Discard;")
    fs = frames()
    push(r, "g", fs + [b"\x00" * 33])
    out = drain(r, "out")
    assert [int(a) for a in out.anno("dst_ip")] == [ip_to_int(f"192.168.1.{i}") for i in
                                                    range(1, 6)]
    assert dict(r.find("g").drops) == {"packet too short": 1}


@pytest.mark.parametrize("which", ["src", "dst"])
def test_get_from_ip_header(which):
    r = build(f"Idle -> CheckIPHeader(14) -> g :: GetIPAddress(IP {which}, ANNO user) "
              "-> out :: Queue -> Discard;")
    push(r, next(n for n in r.elements if n.startswith("CheckIPHeader")), frames())
    out = drain(r, "out")
    want = [ip_to_int(Ether(f)[IP].src if which == "src" else Ether(f)[IP].dst)
            for f in frames()]
    assert [int(a) for a in out.anno("user")] == want


def test_get_needs_exactly_one_of_offset_and_ip():
    with pytest.raises(ConfigError, match="OFFSET, IP"):
        build("Idle -> GetIPAddress -> Discard;")
    with pytest.raises(ConfigError, match="OFFSET, IP"):
        build("Idle -> GetIPAddress(16, IP dst) -> Discard;")
    with pytest.raises(ConfigError, match="cannot hold"):
        build("Idle -> GetIPAddress(16, PAINT) -> Discard;")


def test_set_and_handler():
    r = build("Idle -> s :: SetIPAddress(18.26.4.1) -> out :: Queue -> Discard;")
    s = r.find("s")
    push(r, "s", frames(3))
    assert (drain(r, "out").anno("dst_ip") == ip_to_int("18.26.4.1")).all()
    assert s.read("addr") == "18.26.4.1"
    s.write("addr", "1.2.3.4")
    push(r, "s", frames(2))
    assert (drain(r, "out").anno("dst_ip") == ip_to_int("1.2.3.4")).all()
    with pytest.raises(ConfigError):
        build("Idle -> SetIPAddress(1.2.3) -> Discard;")
