"""ICMPPingResponder: echo requests become valid echo replies (scapy as the oracle)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from icmptest_util import batch_of, build, drain, icmp_checksum_ok, ip_checksum_ok, push
from scapy.all import ICMP, IP, UDP, Ether, Raw

from routebricks.engine.router import Router
from routebricks.packet.ip import ip_to_int


def make(with_port: bool = True) -> Router:
    tail = "p[1] -> other :: Queue -> Discard;" if with_port else ""
    return build("Idle -> c :: CheckIPHeader(14) -> p :: ICMPPingResponder -> out :: Queue "
                 "-> Discard;" + tail)


def echo(ident: int = 1, seq: int = 1, payload: bytes = b"ping", **kw) -> bytes:
    return bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.99", **kw)
                 / ICMP(type=8, id=ident, seq=seq) / Raw(payload))


def check_reply(reply_frame: bytes, request_frame: bytes) -> None:
    req = Ether(request_frame)[IP]
    ip = reply_frame[14:]
    rep = IP(ip)
    assert ip_checksum_ok(ip) and icmp_checksum_ok(ip)
    assert rep.src == req.dst and rep.dst == req.src
    assert rep.ttl == 255 and rep.frag == 0 and rep.flags == 0
    assert rep[ICMP].type == 0 and rep[ICMP].code == 0
    assert rep[ICMP].id == req[ICMP].id and rep[ICMP].seq == req[ICMP].seq
    assert bytes(rep[ICMP].payload) == bytes(req[ICMP].payload)
    assert rep.id == req.id and rep.tos == req.tos


def test_replies():
    reqs = [echo(i, i * 3, bytes(range(i % 50)), ttl=i % 255 + 1, flags="DF" if i % 2 else 0)
            for i in range(1, 40)]
    r = make()
    b = batch_of(reqs)
    b.anno("paint")[:] = 4
    push(r, "c", b)
    out = drain(r, "out")
    assert len(out) == len(reqs) and len(drain(r, "other")) == 0
    for i, f in enumerate(reqs):
        check_reply(out.packet(i), f)
    assert (out.anno("dst_ip") == ip_to_int("10.0.0.1")).all()
    assert (out.anno("paint") == 0).all() and (out.anno("timestamp") > 0).all()


@pytest.mark.parametrize("with_port", [True, False])
def test_other_packets(with_port):
    others = [
        bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP() / Raw(b"u")),
        bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=0)),
        bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2", proto=1) / Raw(b"\x08\x00\x00")),
    ]
    r = make(with_port)
    push(r, "c", others + [echo()])
    assert len(drain(r, "out")) == 1
    p = r.find("p")
    if with_port:
        assert drain(r, "other").to_list() == others
    else:
        assert dict(p.drops) == {"not an ICMP echo request": 3}


def test_all_zero_reply_gets_0xffff():
    # the reply's ICMP message is all zeros but its checksum: RFC 1624 would give 0
    zero = echo(0, 0, b"")
    udp = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP())
    r = make()
    push(r, "c", [udp, zero, echo(0, 0, b"\0" * 10)])
    out = drain(r, "out")
    assert len(out) == 2
    check_reply(out.packet(0), zero)
    assert out.packet(0)[36:38] == b"\xff\xff"
    check_reply(out.packet(1), echo(0, 0, b"\0" * 10))


@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
                          st.binary(max_size=200), st.integers(1, 255), st.booleans()),
                min_size=1, max_size=20))
def test_reply_property(specs):
    reqs = [echo(i, s, pl, ttl=t, flags="DF" if df else 0) for i, s, pl, t, df in specs]
    r = make()
    push(r, "c", reqs)
    out = drain(r, "out")
    assert len(out) == len(reqs)
    for i, f in enumerate(reqs):
        check_reply(out.packet(i), f)
