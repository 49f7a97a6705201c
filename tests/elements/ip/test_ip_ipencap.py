"""IPEncap: the header scapy reads back (checksum recomputed by scapy), DST_ANNO, the
TOS parts, errors."""

from __future__ import annotations

import pytest
from elementtest import drain
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP

from routebricks.engine.router import Router
from routebricks.errors import ConfigError
from routebricks.packet.batch import PacketBatch


def encap(conf: str, frames: list[bytes], dst_anno: list[int] | None = None) -> list[bytes]:
    r = Router.from_text(f"Idle -> e :: IPEncap({conf}) -> q :: Queue(1000) -> Discard")
    r.initialize()
    b = PacketBatch.from_bytes(frames, headroom=0)  # no room: IPEncap must make it
    if dst_anno is not None:
        b.anno("dst_ip")[:] = dst_anno
    r.elements["e"].push(0, b)
    out = drain(r, "q")
    r.cleanup()
    return out.to_list()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=8), st.integers(0, 255),
       st.booleans())
def test_scapy_reads_the_header(payloads: list[bytes], ttl: int, df: bool) -> None:
    got = encap(f"4, 18.26.4.24, 140.247.60.147, TTL {ttl}, DF {str(df).lower()}", payloads)
    assert len(got) == len(payloads)
    for k, (raw, inner) in enumerate(zip(got, payloads, strict=True)):
        ip = IP(raw)
        assert (ip.version, ip.ihl, ip.proto, ip.ttl) == (4, 5, 4, ttl)
        assert (ip.src, ip.dst) == ("18.26.4.24", "140.247.60.147")
        assert ip.len == len(raw) == len(inner) + 20 and raw[20:] == inner
        assert bool(ip.flags.DF) is df and ip.id == k
        again = IP(raw)
        del again.chksum
        assert IP(bytes(again)).chksum == ip.chksum  # scapy computes the same checksum


def test_dst_anno_and_tos_parts() -> None:
    inner = bytes(IP(dst="1.2.3.4") / UDP())
    (raw,) = encap("udp, 10.0.0.1, DST_ANNO, DSCP 10, ECT 2", [inner], [0x0A000063])
    ip = IP(raw)
    assert ip.dst == "10.0.0.99" and ip.proto == 17 and ip.tos == (10 << 2) | 2
    (raw,) = encap("4, 10.0.0.1, 10.0.0.2, CE true", [inner])
    assert IP(raw).tos == 3


@pytest.mark.parametrize(("conf", "says"), [
    ("4, 10.0.0.1, 10.0.0.2, TOS 1, DSCP 2", "TOS cannot be given"),
    ("300, 10.0.0.1, 10.0.0.2", "bad value '300' for PROTO"),
    ("4, 10.0.0.1, nowhere", "bad value 'nowhere' for DST"),
    ("4, 10.0.0.1, 10.0.0.2, ECT maybe", "bad value 'maybe' for ECT"),
])
def test_bad_arguments(conf: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        Router.from_text(f"Idle -> IPEncap({conf}) -> Discard")


def test_rangeiplookup_answers_as_directiplookup() -> None:
    text = "Idle -> rt :: {cls}(18.26.4.0/24 0, 18.26/16 2, 0.0.0.0/0 18.26.4.1 1) -> Discard;" \
           " rt[1] -> Discard; rt[2] -> Discard"
    tables = [Router.from_text(text.format(cls=c)).elements["rt"] for c in
              ("RangeIPLookup", "DirectIPLookup")]
    assert tables[0].read("table") == tables[1].read("table")
    for addr in ("18.26.4.9", "18.26.200.1", "1.2.3.4"):
        for t in tables:
            t.write("lookup", addr)
        assert tables[0].read("lookup") == tables[1].read("lookup")
