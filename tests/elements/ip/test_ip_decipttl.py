"""DecIPTTL: TTL-1 with a checksum that scapy agrees with; expiry; MULTICAST; ACTIVE."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from iptest_util import build, drain, header_checksum_ok, network_bytes, push
from scapy.all import IP, TCP, UDP, Ether, Raw

from routebricks.engine.router import Router
from routebricks.errors import ConfigError


def make(args: str = "", expired_port: bool = True) -> Router:
    tail = "dt[1] -> exp :: Queue(100000) -> Discard;" if expired_port else ""
    return build("Idle -> c :: CheckIPHeader(14) -> dt :: DecIPTTL(" + args + ") "
                 "-> out :: Queue(100000) -> Discard;" + tail)


def frame(ttl: int, dst: str = "10.0.0.2", **kw) -> bytes:
    return bytes(Ether() / IP(src="10.0.0.1", dst=dst, ttl=ttl, **kw) / UDP() / Raw(b"d" * 7))


def test_decrements_and_checksum_is_valid():
    r = make()
    frames = [frame(t, tos=t, id=t * 77) for t in range(2, 256)]
    push(r, "c", frames)
    out = drain(r, "out")
    assert len(out) == len(frames)
    for i, f in enumerate(frames):
        ip = network_bytes(out, i)
        assert IP(ip).ttl == Ether(f)[IP].ttl - 1
        assert header_checksum_ok(ip)
        assert ip[:8] == bytes(Ether(f)[IP])[:8] and ip[9] == bytes(Ether(f)[IP])[9]
        assert out.packet(i)[:14] == f[:14]
    assert r.find("dt").read("drops") == "0"


@pytest.mark.parametrize("with_port", [True, False])
def test_ttl_0_and_1_expire(with_port):
    r = make(expired_port=with_port)
    frames = [frame(0), frame(1), frame(2), frame(64)]
    push(r, "c", frames)
    out = drain(r, "out")
    assert [IP(network_bytes(out, i)).ttl for i in range(len(out))] == [1, 63]
    dt = r.find("dt")
    assert dt.read("drops") == "2"
    if with_port:
        assert drain(r, "exp").to_list() == frames[:2]  # unchanged
        assert not dt.drops
    else:
        assert dict(dt.drops) == {"TTL expired": 2}


def test_multicast_false_leaves_multicast_alone():
    r = make("MULTICAST false")
    frames = [frame(5, dst="224.0.0.9"), frame(5), frame(1, dst="239.1.1.1"), frame(1)]
    push(r, "c", frames)
    out = drain(r, "out")
    assert [IP(network_bytes(out, i)).ttl for i in range(len(out))] == [5, 4, 1]
    assert out.packet(0) == frames[0] and out.packet(2) == frames[2]
    assert len(drain(r, "exp")) == 1


def test_active_handler():
    r = make("ACTIVE false")
    dt = r.find("dt")
    assert dt.read("active") == "false"
    push(r, "c", [frame(1), frame(9)])
    assert drain(r, "out").to_list() == [frame(1), frame(9)]
    dt.write("active", "true")
    push(r, "c", [frame(9)])
    assert IP(network_bytes(drain(r, "out"), 0)).ttl == 8
    with pytest.raises(ConfigError):
        make("MULTICAST maybe")


def test_without_network_header_uses_data_start_and_drops_short():
    r = build("Idle -> dt :: DecIPTTL -> out :: Queue -> Discard;")
    raw = bytes(IP(ttl=3) / TCP())
    push(r, "dt", [raw, b"\x45\x00"])
    out = drain(r, "out")
    assert IP(out.packet(0)).ttl == 2 and header_checksum_ok(out.packet(0))
    assert dict(r.find("dt").drops) == {"no IP header": 1}


@given(st.lists(st.tuples(st.integers(2, 255), st.integers(0, 0xFFFF), st.integers(0, 255),
                          st.sampled_from([0, 4, 12])), min_size=1, max_size=40))
def test_checksum_property(specs):
    frames = [frame(t, id=i, tos=tos, options=b"\x01" * o) for t, i, tos, o in specs]
    r = make()
    push(r, "c", frames)
    out = drain(r, "out")
    assert len(out) == len(frames)
    for i in range(len(out)):
        assert header_checksum_ok(network_bytes(out, i))


def test_fused_kernel_matches_the_numpy_reference() -> None:
    """DecIPTTL's one-pass kernel against its column-by-column reference, on random headers
    (TTL 0-255, multicast and unicast, short packets), with and without MULTICAST."""
    import numpy as np
    from scapy.layers.inet import IP

    from routebricks.elements.ip.decipttl import DecIPTTL
    from routebricks.packet.batch import PacketBatch

    rng = np.random.default_rng(5)
    pkts = []
    for i in range(400):
        dst = "224.1.2.3" if i % 7 == 0 else f"10.{i % 250}.0.1"
        raw = bytes(IP(ttl=int(rng.integers(0, 256)), dst=dst, id=i) / (b"x" * (i % 30)))
        pkts.append(raw if i % 53 else raw[:12])  # a few too short for a header
    for multicast in (True, False):
        outs = []
        for fn in ("process", "_process_reference"):
            e = DecIPTTL(MULTICAST=multicast)
            e.parse_config()
            e.configure()
            e.noutputs = 1
            e._out = [None]
            out = getattr(e, fn)(PacketBatch.from_bytes(pkts))
            outs.append((out.to_list() if out is not None else [], e.expired, dict(e.drops)))
        assert outs[0] == outs[1]
