"""ARPResponder's lookup read handler (with a parameter) and config write handler (Click's
live reconfiguration: all or nothing)."""

from __future__ import annotations

import pytest
from scapy.layers.l2 import ARP, Ether

from routebricks.engine.router import Router
from routebricks.errors import HandlerError
from routebricks.packet.batch import PacketBatch


def answer(r: Router, ip: str) -> str | None:
    """The MAC the router's ARPResponder puts in its reply to a who-has for ``ip``."""
    q = Ether(src="02:00:00:00:00:aa", dst="ff:ff:ff:ff:ff:ff") / ARP(
        op=1, hwsrc="02:00:00:00:00:aa", psrc="10.9.9.9", pdst=ip)
    before = int(r.elements["out"].read("count"))
    r.elements["a"].push(0, PacketBatch.from_bytes([bytes(q)]))
    if int(r.elements["out"].read("count")) == before:
        return None
    return r.elements["a"].lookup(ip)


def test_lookup_and_config_write() -> None:
    r = Router.from_text("Idle -> a :: ARPResponder(10.0.0.1/24 02:00:00:00:00:01) "
                         "-> out :: Counter -> Discard")
    r.initialize()
    a = r.elements["a"]
    assert a.read("lookup", "10.0.0.77") == "02-00-00-00-00-01"
    with pytest.raises(HandlerError, match="no entry for 10.1.0.1"):
        a.read("lookup", "10.1.0.1")
    with pytest.raises(HandlerError, match="expected an IPv4 address"):
        a.read("lookup", "nonsense")
    a.write("config", "10.1.0.1 02:00:00:00:00:02, 10.2.0.0/16 02:00:00:00:00:03")
    assert a.read("config") == "10.1.0.1 02:00:00:00:00:02, 10.2.0.0/16 02:00:00:00:00:03"
    assert answer(r, "10.1.0.1") == "02-00-00-00-00-02"
    assert answer(r, "10.0.0.77") is None  # the old entry is gone
    for bad in ("zz", "", "10.3.0.1"):
        with pytest.raises(HandlerError):
            a.write("config", bad)
    assert a.read("table") == "10.1.0.1/32 02-00-00-00-00-02\n10.2.0.0/16 02-00-00-00-00-03\n"
    r.cleanup()
