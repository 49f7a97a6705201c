"""CheckICMPHeader (Click's checkicmpheader.hh): lengths by type and checksums checked as
Click does, bad packets to output 1 or dropped by reason, drops/drop_details; a property
test against an independent reference built on scapy's checksum."""

from __future__ import annotations

import re

import pytest
from elementtest import drop_lines
from hypothesis import given, settings
from hypothesis import strategies as st
from icmptest_util import batch_of, build, drain, push
from scapy.all import ICMP, IP, TCP, Raw
from scapy.utils import checksum as scapy_checksum

from routebricks.elements.icmp.checkicmpheader import REASONS, icmp_failures
from routebricks.engine.registry import get_class
from routebricks.errors import ConfigError
from routebricks.packet.batch import PacketBatch

ONE = "Idle -> CheckIPHeader -> c :: CheckICMPHeader -> good :: Queue -> Discard;"
TWO = ONE + " c[1] -> bad :: Queue -> Discard;"


def ip(icmp, **kw) -> bytes:
    return bytes(IP(src="10.0.0.1", dst="10.0.0.2", **kw) / icmp)


def marked(frames: list[bytes]) -> PacketBatch:
    """A batch with the network header at each packet's start (as CheckIPHeader marks)."""
    b = batch_of(frames)
    b.anno("nh")[:] = b.off
    return b


def test_docs():
    doc = get_class("CheckICMPHeader").doc()
    heads = re.findall(r"^(Ports|Arguments|Behaviour|Handlers|Example|See also):", doc, re.M)
    assert heads == ["Ports", "Arguments", "Behaviour", "Handlers", "Example", "See also"]
    assert get_class("CheckICMPHeader").GROUP == "icmp"


GOOD = [
    ip(ICMP(type=8, id=1, seq=2) / b"ping"),
    ip(ICMP(type=0)),  # echo reply, bare header
    ip(ICMP(type=3, code=1) / bytes(IP() / TCP())[:28]),  # error quoting 28 bytes
    ip(ICMP(type=13)),  # timestamp: exactly 20 (scapy adds the three times)
    ip(ICMP(type=15)),  # information request: exactly 8
    ip(ICMP(type=42) / b"anything"),  # unknown types: no length rule
    ip(ICMP(type=8) / b"odd"),  # odd length summed with a zero pad byte
]
BAD = [  # (packet, reason)
    (bytes(IP() / TCP()), "not ICMP"),
    (ip(Raw(b"\x08\0\0"), proto=1), "bad packet length"),  # 3 bytes of ICMP
    (ip(ICMP(type=11) / (b"\0" * 27)), "bad packet length"),  # error quoting 27 bytes
    (ip(ICMP(type=14) / b"\0"), "bad packet length"),  # timestamp reply: 21
    (ip(ICMP(type=16) / b"x"), "bad packet length"),  # info reply: 9
    (ip(ICMP(type=8, chksum=0x1234) / b"ping"), "bad ICMP checksum"),
]


def test_good_pass_bad_to_output_1():
    r = build(TWO)
    frames = GOOD + [p for p, _ in BAD]
    push(r, "c", marked(frames))
    assert drain(r, "good").to_list() == GOOD
    assert drain(r, "bad").to_list() == [p for p, _ in BAD]
    c = r.find("c")
    assert not c.drops and c.read("drops") == str(len(BAD))
    assert drop_lines(c.read("drop_details")) == {
        "not ICMP": 1, "bad packet length": 4, "bad ICMP checksum": 1}


def test_without_output_1_dropped_by_reason(capsys):
    r = build(ONE)
    push(r, "c", marked(GOOD + [p for p, _ in BAD]))
    assert len(drain(r, "good")) == len(GOOD)
    assert r.find("c").drops == {"not ICMP": 1, "bad packet length": 4, "bad ICMP checksum": 1}
    assert capsys.readouterr().err == "c: ICMP header check failed: not ICMP\n"


def test_verbose_prints_every_failure(capsys):
    r = build(ONE.replace("CheckICMPHeader", "CheckICMPHeader(VERBOSE true, DETAILS true)"))
    push(r, "c", marked([p for p, _ in BAD]))
    err = capsys.readouterr().err.splitlines()
    assert err == [f"c: ICMP header check failed: {why}" for _, why in BAD]


def test_unmarked_short_and_odd_packets():
    r = build(ONE)
    c = r.find("c")
    b = batch_of([ip(ICMP()), b"", b"\x45", ip(ICMP())[:22]])
    nh = b.anno("nh")  # -1: unset for the first; the others marked
    nh[1:] = b.off[1:]
    push(r, "c", b)
    assert c.drops == {"not ICMP": 3, "bad packet length": 1}
    # IP header length field below 5 with protocol 1: a bad length, never a crash.
    bad_hl = bytearray(ip(ICMP()))
    bad_hl[0] = 0x43
    push(r, "c", marked([bytes(bad_hl), b"\x45" + b"\0" * 8 + b"\x01"]))
    assert c.drops["bad packet length"] == 3


def test_ip_options_and_trailing_bytes_count_as_icmp():
    # Options move the ICMP header; bytes after the IP length (not trimmed) are summed, as
    # Click sums to the packet end: a trailing zero pair keeps the sum, junk breaks it.
    with_opts = ip(ICMP(type=8) / b"hi", options=b"\x01\x01\x01\x00")
    r = build(TWO)
    push(r, "c", marked([with_opts, ip(ICMP()) + b"\0\0", ip(ICMP()) + b"\x01"]))
    assert len(drain(r, "good")) == 2 and len(drain(r, "bad")) == 1


@pytest.mark.parametrize("conf", ["CheckICMPHeader(1)", "CheckICMPHeader(VERBOSE maybe)",
                                  "CheckICMPHeader(FOO true)"])
def test_bad_arguments(conf):
    with pytest.raises(ConfigError):
        build(f"Idle -> {conf} -> Discard")


def reference(pkt: bytes, nh: int) -> str | None:
    """Click's checks, written plainly per packet; the checksum by scapy."""
    if nh < 0 or len(pkt) - nh < 10 or pkt[nh + 9] != 1:
        return "not ICMP"
    hl = (pkt[nh] & 0xF) * 4
    msg = pkt[nh + hl :]
    if hl < 20 or len(msg) < 8:
        return "bad packet length"
    t, n = msg[0], len(msg)
    if (t in (3, 4, 5, 11, 12) and n < 36) or (t in (13, 14) and n != 20) or (
            t in (15, 16) and n != 8):
        return "bad packet length"
    return None if scapy_checksum(msg) == 0 else "bad ICMP checksum"


packets = st.one_of(
    st.binary(max_size=80),
    st.builds(lambda t, c, data, fix: (lambda raw: raw if fix else raw[:-1] + b"\x5a")(
        ip(ICMP(type=t, code=c) / data)),
        st.sampled_from([0, 3, 4, 5, 8, 11, 12, 13, 14, 15, 16, 99]), st.integers(0, 255),
        st.binary(max_size=48), st.booleans()),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(packets, st.integers(-1, 30)), min_size=1, max_size=12))
def test_property_matches_reference(cases):
    frames = [p for p, _ in cases]
    b = batch_of(frames)
    rel = [min(k, len(p) + 1) if k >= 0 else -1 for p, k in cases]
    b.anno("nh")[:] = [o + k if k >= 0 else -1 for o, k in zip(b.off.tolist(), rel, strict=True)]
    codes = icmp_failures(b.pool, b.anno("nh"), b.off + b.length)
    got = [REASONS.get(int(c)) for c in codes]
    want = [reference(p, k) if k <= len(p) else "not ICMP" for p, k in zip(frames, rel,
                                                                           strict=True)]
    assert got == want
