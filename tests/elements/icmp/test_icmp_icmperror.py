"""ICMPError: well-formed errors (scapy as oracle), the RFC 1812 "don'ts", rate limiting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icmptest_util import (
    batch_of,
    build,
    drain,
    icmp_checksum_ok,
    ip_checksum_ok,
    network_bytes,
    push,
)
from scapy.all import ICMP, IP, TCP, UDP, Ether, IPerror, Raw

from routebricks.elements.icmp import icmperror as icmperror_mod
from routebricks.elements.ip.annotations import (
    FIX_IP_SRC,
    NEXT_MTU,
    PACKET_BROADCAST,
    PACKET_TYPE,
)
from routebricks.engine.router import Router
from routebricks.errors import ConfigError
from routebricks.packet.ip import ip_to_int

ME = "18.26.4.24"


def ttl_path(extra: str = "RATE 0") -> Router:
    return build(
        "Idle -> c :: CheckIPHeader(14) -> dt :: DecIPTTL -> out :: Queue -> Discard;"
        f"dt[1] -> e :: ICMPError({ME}, timeexceeded, {extra}) -> err :: Queue -> Discard;"
    )


def direct(args: str) -> Router:
    return build(f"Idle -> m :: MarkIPHeader -> e :: ICMPError({args}) -> err :: Queue "
                 "-> Discard;")


def frame(ttl: int = 1, n: int = 30, src: str = "10.0.0.1", dst: str = "10.9.9.9", l4=None,
          **kw) -> bytes:
    l4 = UDP(sport=7, dport=9) if l4 is None else l4
    return bytes(Ether() / IP(src=src, dst=dst, ttl=ttl, **kw) / l4 / Raw(b"q" * n))


def check_error(raw_err: bytes, orig_ip: bytes, typ: int, code: int, mtu: int = 576) -> IP:
    p = IP(raw_err)
    assert p.version == 4 and p.ihl == 5 and p.proto == 1 and p.ttl == 200 and p.tos == 0
    assert p.src == ME and p.dst == IP(orig_ip).src and p.frag == 0 and p.flags == 0
    assert p.len == len(raw_err) <= mtu
    assert ip_checksum_ok(raw_err) and icmp_checksum_ok(raw_err)
    assert p[ICMP].type == typ and p[ICMP].code == code
    quoted = raw_err[28:]
    assert quoted == orig_ip[: min(len(orig_ip), mtu - 28)]  # Click quotes what fits
    assert bytes(p[IPerror])[:20] == orig_ip[:20]  # scapy sees the original header
    return p


@pytest.mark.parametrize("n", [0, 8, 100, 520, 548, 1400])
def test_time_exceeded_is_well_formed(n):
    r = ttl_path()
    fs = [frame(1, n), frame(0, n, l4=TCP(sport=1, dport=2))]
    push(r, "c", fs)
    err = drain(r, "err")
    assert len(err) == 2 and len(drain(r, "out")) == 0
    for i, f in enumerate(fs):
        orig = bytes(Ether(f)[IP])
        raw = network_bytes(err, i)
        assert raw == err.packet(i)  # the error starts at its IP header
        check_error(raw, orig, 11, 0)
        assert int(err.anno("dst_ip")[i]) == ip_to_int("10.0.0.1")
        assert int(err.anno(FIX_IP_SRC)[i]) == 1
        assert int(err.anno("timestamp")[i]) > 0
    assert r.find("e").drops == {}


def test_ip_ids_count_up_across_instances():
    r = build(f"Idle -> m :: MarkIPHeader -> e1 :: ICMPError({ME}, 3, 1, RATE 0) -> q1 :: Queue"
              f" -> Discard; Idle -> m2 :: MarkIPHeader -> e2 :: ICMPError({ME}, 3, 3, RATE 0)"
              " -> q2 :: Queue -> Discard;")
    push(r, "m", [bytes(Ether(frame())[IP])] * 3)
    push(r, "m2", [bytes(Ether(frame())[IP])] * 2)
    ids = [IP(p).id for p in drain(r, "q1").to_list() + drain(r, "q2").to_list()]
    assert all((b - a) % 65536 == 1 for a, b in zip(ids, ids[1:], strict=False))


@pytest.mark.parametrize("pmtu,expect", [("", 576), (", PMTU 1400", 1400)])
def test_needfrag_carries_the_mtu(pmtu, expect):
    r = build("Idle -> c :: CheckIPHeader(14) -> fr :: IPFragmenter(576) -> out :: Queue -> "
              f"Discard; fr[1] -> ICMPError({ME}, unreachable, needfrag, RATE 0{pmtu}) -> "
              "err :: Queue -> Discard;")
    f = frame(30, 1200, flags="DF")
    push(r, "c", [f])
    err = drain(r, "err")
    p = check_error(err.packet(0), bytes(Ether(f)[IP]), 3, 4)
    assert p[ICMP].nexthopmtu == expect
    assert err.packet(0)[24:28] == bytes(2) + expect.to_bytes(2, "big")


def test_redirect_gateway_from_the_destination_annotation():
    r = build("Idle -> c :: CheckIPHeader(14) -> Paint(1) -> SetIPAddress(10.1.1.254) -> "
              "pt :: PaintTee(1) -> out :: Queue -> Discard;"
              f"pt[1] -> ICMPError({ME}, redirect, host, RATE 0) -> err :: Queue -> Discard;")
    f = frame(64)
    push(r, "c", [f])
    assert len(drain(r, "out")) == 1
    p = check_error(drain(r, "err").packet(0), bytes(Ether(f)[IP]), 5, 1)
    assert p[ICMP].gw == "10.1.1.254"


def test_parameter_problem_pointer_from_annotation():
    r = direct(f"{ME}, parameterproblem, RATE 0")
    b = batch_of([bytes(Ether(frame())[IP])])
    b.anno("icmp_paramprob")[:] = 9
    push(r, "m", b)
    p = IP(drain(r, "err").packet(0))
    assert p[ICMP].type == 12 and p[ICMP].ptr == 9


def udp_ip(**kw) -> bytes:
    base = {"src": "10.0.0.1", "dst": "10.9.9.9", "ttl": 1}
    base.update(kw)
    return bytes(IP(**base) / UDP() / Raw(b"r" * 12))


@pytest.mark.parametrize(
    "raw,reason",
    [
        (bytes(IP(src="10.0.0.1", dst="10.9.9.9") / ICMP(type=3, code=1) / Raw(b"x" * 28)),
         "ICMP error message"),
        (bytes(IP(src="10.0.0.1", dst="10.9.9.9") / ICMP(type=11) / Raw(b"x" * 28)),
         "ICMP error message"),
        (bytes(IP(src="10.0.0.1", dst="10.9.9.9", proto=1) / Raw(b"\x08\x00")),
         "truncated ICMP header"),
        (udp_ip(dst="255.255.255.255"), "non-unicast destination"),
        (udp_ip(dst="224.0.0.1"), "non-unicast destination"),
        (udp_ip(dst="10.255.255.255"), "non-unicast destination"),  # BADADDRS
        (udp_ip(src="0.0.0.9"), "invalid source address"),
        (udp_ip(src="127.0.0.1"), "invalid source address"),
        (udp_ip(src="230.1.1.1"), "invalid source address"),
        (udp_ip(src="240.0.0.1"), "invalid source address"),
        (udp_ip(src="255.255.255.255"), "invalid source address"),
        (udp_ip(src="10.255.255.255"), "invalid source address"),  # BADADDRS
        (udp_ip(frag=10), "non-first fragment"),
        (b"\x45\x00\x00", "no IP header"),
    ],
)
def test_never_about(raw, reason):
    r = direct(f"{ME}, unreachable, host, 10.255.255.255, RATE 0")
    push(r, "m", [raw, udp_ip()])
    assert len(drain(r, "err")) == 1
    assert dict(r.find("e").drops) == {reason: 1}


def test_answers_first_fragments_and_echo_requests():
    r = direct(f"{ME}, unreachable, port, RATE 0")
    raws = [udp_ip(flags="MF"), bytes(IP(src="10.0.0.1", dst="10.9.9.9") / ICMP(type=8))]
    push(r, "m", raws)
    assert len(drain(r, "err")) == 2


def test_link_level_broadcasts_are_not_answered():
    r = direct(f"{ME}, unreachable, net, RATE 0")
    b = batch_of([udp_ip(), udp_ip()])
    b.anno(PACKET_TYPE)[:] = [PACKET_BROADCAST, 0]
    push(r, "m", b)
    assert len(drain(r, "err")) == 1
    assert dict(r.find("e").drops) == {"link-level broadcast": 1}


def lsrr(ptr: int, addrs: list[str]) -> bytes:
    body = b"".join(bytes(int(x) for x in a.split(".")) for a in addrs)
    return bytes([0x83, 3 + len(body), ptr]) + body + b"\x00"


def test_reversed_source_route():
    opt = lsrr(12, ["1.1.1.1", "2.2.2.2", "3.3.3.3"])  # two hops recorded
    raw = bytes(IP(src="10.0.0.1", dst="10.9.9.9", options=Raw(opt)) / UDP())
    r = direct(f"{ME}, unreachable, host, RATE 0")
    push(r, "m", [raw])
    out = drain(r, "err").packet(0)
    p = IP(out)
    assert p.ihl == 8 and ip_checksum_ok(out) and icmp_checksum_ok(out)
    assert out[20:32] == bytes([0x83, 11, 4, 2, 2, 2, 2, 1, 1, 1, 1, 0])
    assert out[40:] == raw[: 576 - 40]
    # no redirect about a source-routed packet
    r = direct(f"{ME}, redirect, host, RATE 0")
    push(r, "m", [raw])
    assert len(drain(r, "err")) == 0
    assert dict(r.find("e").drops) == {"redirect for a source-routed packet": 1}


def test_rate_limiting_token_bucket():
    r = direct(f"{ME}, unreachable, host, RATE 10, BURST 3")
    e = r.find("e")
    now = [100.0]
    e.clock = lambda: now[0]
    push(r, "m", [udp_ip()] * 5)
    assert len(drain(r, "err")) == 3 and e.drops["rate limited"] == 2
    now[0] += 0.25  # 2.5 tokens
    push(r, "m", [udp_ip()] * 5)
    assert len(drain(r, "err")) == 2 and e.drops["rate limited"] == 5
    now[0] += 100.0  # refills to BURST only
    push(r, "m", [udp_ip()] * 5)
    assert len(drain(r, "err")) == 3
    e.write("rate", "0")
    push(r, "m", [udp_ip()] * 500)
    assert len(drain(r, "err")) == 500
    assert e.read("burst") == "3" and e.read("rate") == "0"


def test_default_rate_limit_applies():
    r = direct(f"{ME}, unreachable, host")
    r.find("e").clock = lambda: 5.0
    push(r, "m", [udp_ip()] * 80)
    assert len(drain(r, "err")) == 50
    assert r.find("e").drops["rate limited"] == 30


def test_handlers_and_mtu():
    r = direct(f"{ME}, unreachable, host, RATE 0, MTU 100")
    e = r.find("e")
    assert (e.read("src"), e.read("mtu"), e.read("pmtu")) == (ME, "100", "0")
    push(r, "m", [udp_ip()])
    assert len(drain(r, "err").packet(0)) == 68  # 28 + 40 bytes of the 40-byte original
    e.write("mtu", "40")
    e.write("src", "1.2.3.4")
    e.write("pmtu", "1280")
    big = bytes(IP(src="10.0.0.1", dst="10.9.9.9") / UDP() / Raw(b"w" * 100))
    push(r, "m", [big])
    out = drain(r, "err").packet(0)
    assert len(out) == 40 and IP(out).src == "1.2.3.4" and out[28:] == big[:12]


def test_next_mtu_annotation_used_only_for_needfrag_without_pmtu():
    r = direct(f"{ME}, unreachable, needfrag, RATE 0")
    b = batch_of([udp_ip()])
    b.anno(NEXT_MTU)[:] = 1492
    push(r, "m", b)
    assert IP(drain(r, "err").packet(0))[ICMP].nexthopmtu == 1492


@pytest.mark.parametrize(
    "args,match",
    [
        (f"{ME}, echo", "not an error type"),
        (f"{ME}, 300", "between 0 and 255"),
        (f"{ME}, unreachable, bogus", "ICMP code"),
        (f"{ME}, unreachable, MTU 20", "at least 28"),
        ("1.2.3, unreachable", "IPv4"),
    ],
)
def test_config_errors(args, match):
    with pytest.raises(ConfigError, match=match):
        direct(args)


def test_named_and_numeric_types_agree_and_fix_anno_off():
    r = direct(f"{ME}, 11, 1, SET_FIX_ANNO false, RATE 0")
    push(r, "m", [udp_ip()])
    err = drain(r, "err")
    p = IP(err.packet(0))
    assert (p[ICMP].type, p[ICMP].code) == (11, 1) and FIX_IP_SRC not in err.annos


def test_errors_then_fixipsrc():
    r = build(f"Idle -> m :: MarkIPHeader -> ICMPError({ME}, unreachable, RATE 0) -> "
              "FixIPSrc(192.0.2.1) -> err :: Queue -> Discard;")
    push(r, "m", [udp_ip()])
    out = drain(r, "err")
    assert IP(out.packet(0)).src == "192.0.2.1" and ip_checksum_ok(out.packet(0))
    assert icmp_checksum_ok(out.packet(0))


@settings(max_examples=30)
@given(st.lists(st.binary(min_size=0, max_size=120), max_size=12))
def test_garbage_after_markipheader_never_raises(raws):
    r = direct(f"{ME}, parameterproblem, RATE 0")
    push(r, "m", raws)
    e = r.find("e")
    out = drain(r, "err")
    assert len(out) + sum(e.drops.values()) == len(raws)
    for i in range(len(out)):
        assert ip_checksum_ok(out.packet(i)) and icmp_checksum_ok(out.packet(i))


def test_ids_wrap():
    icmperror_mod._next_id = 65535
    r = direct(f"{ME}, unreachable, RATE 0")
    push(r, "m", [udp_ip()] * 2)
    assert [IP(p).id for p in drain(r, "err").to_list()] == [65535, 0]
