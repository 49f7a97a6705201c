"""FixIPSrc: rewrites the source of packets flagged by the fix_ip_src annotation."""

from __future__ import annotations

from iptest_util import batch_of, build, drain, header_checksum_ok, push
from scapy.all import IP, UDP

from routebricks.elements.ip.annotations import FIX_IP_SRC


def test_only_flagged_packets_are_fixed():
    r = build("Idle -> m :: MarkIPHeader -> f :: FixIPSrc(18.26.4.24) -> out :: Queue -> Discard;")
    raws = [bytes(IP(src="1.1.1.1", dst="2.2.2.2", options=b"\x01" * 4 * (i % 2)) / UDP())
            for i in range(6)]
    b = batch_of(raws)
    b.anno(FIX_IP_SRC)[:] = [1, 0, 1, 1, 0, 0]
    push(r, "m", b)
    out = drain(r, "out")
    for i in range(6):
        p = IP(out.packet(i))
        assert p.src == ("18.26.4.24" if i in (0, 2, 3) else "1.1.1.1")
        assert p.dst == "2.2.2.2" and header_checksum_ok(out.packet(i))
    assert not out.anno(FIX_IP_SRC).any()  # cleared
    assert r.find("f").read("addr") == "18.26.4.24"


def test_unflagged_batch_passes_untouched_and_short_packets_survive():
    r = build("Idle -> f :: FixIPSrc(18.26.4.24) -> out :: Queue -> Discard;")
    raws = [bytes(IP() / UDP()), b"\x45\x00\x00"]
    push(r, "f", raws)
    assert drain(r, "out").to_list() == raws
    b = batch_of(raws)
    b.anno(FIX_IP_SRC)[:] = 1
    push(r, "f", b)
    out = drain(r, "out")
    assert IP(out.packet(0)).src == "18.26.4.24" and out.packet(1) == raws[1]
