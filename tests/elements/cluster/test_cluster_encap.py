"""ClusterEncap: the header scapy parses carries (server, port, next hop) as clustermac
encodes them; the next hop comes from dst_ip, else from the IP header."""

from __future__ import annotations

import numpy as np
import pytest
from clustertest_util import (
    batch_of,
    build,
    drain,
    ip_int,
    ip_packet,
    q,
    read_frames,
    run_text,
    write_pcap,
)
from hypothesis import given
from hypothesis import strategies as st
from scapy.all import IP, UDP, Ether, Raw

from routebricks.errors import ConfigError
from routebricks.packet import clustermac as cm
from routebricks.packet.batch import PacketBatch


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def encap(config: str, batch: PacketBatch):
    r = build(f"Idle -> e :: ClusterEncap({config}) -> qq :: Queue(100000) -> Discard;")
    r.find("e").push(0, batch)
    return r, drain(r, "qq")


def test_routed_packets_parsed_by_scapy(tmp_path):
    # The real input path: CheckIPHeader -> DirectIPLookup (sets dst_ip: the gateway, or
    # the destination on an attached network) -> DecIPTTL -> ClusterEncap.
    pkts = [IP(src="10.0.0.1", dst=d, ttl=9) / UDP(sport=5, dport=53) / Raw(b"q" * i)
            for i, d in enumerate(["10.5.0.7", "10.6.1.2", "10.5.9.9", "10.6.0.1"])]
    src = write_pcap(tmp_path / "in.pcap", [bytes(p) for p in pkts], linktype=101)
    out = tmp_path / "out.pcap"
    run_text(f"FromDump({q(src)}) -> CheckIPHeader"
             " -> rt :: DirectIPLookup(10.5.0.0/16 0, 10.6.0.0/16 192.168.7.1 0)"
             f" -> DecIPTTL -> ClusterEncap(SERVER 3, PORT 17) -> ToDump({q(out)});")
    got = [Ether(f) for f in read_frames(out)]
    assert len(got) == 4
    for g, p in zip(got, pkts, strict=True):
        want_nh = "192.168.7.1" if p.dst.startswith("10.6.") else p.dst
        assert cm.decode(mac_bytes(g.dst)) == (3, 17, ip_int(want_nh))
        assert g.src == "fe:00:00:03:ff:ff" and g.type == 0x0800
        assert g[IP].dst == p.dst and g[IP].ttl == 8 and bytes(g[IP].payload) == bytes(
            p.payload)


def test_next_hop_from_header_without_annotation_and_where_it_is_zero():
    pkts = [ip_packet(f"10.1.2.{i}") for i in range(4)]
    # No dst_ip column at all: the header's destination.
    _, out = encap("2, 1", batch_of(pkts))
    assert [cm.decode(out.packet(i)[:6]) for i in range(4)] == [
        (2, 1, ip_int(f"10.1.2.{i}")) for i in range(4)]
    # A column with some zeros: those from the header, the rest from the annotation.
    b = batch_of(pkts)
    b.anno("dst_ip")[:] = [ip_int("172.16.0.1"), 0, ip_int("172.16.0.3"), 0]
    _, out = encap("2, 1", b)
    assert [cm.decode(out.packet(i)[:6])[2] for i in range(4)] == [
        ip_int("172.16.0.1"), ip_int("10.1.2.1"), ip_int("172.16.0.3"), ip_int("10.1.2.3")]
    # The packets behind the header are unchanged; annotations travel along.
    assert [out.packet(i)[14:] for i in range(4)] == pkts
    assert out.anno("dst_ip")[0] == ip_int("172.16.0.1")


def test_header_found_by_network_header_annotation():
    # 4 bytes of something before the IP header, located by the nh annotation.
    pkt = ip_packet("10.7.7.7")
    b = batch_of([b"\xaa" * 4 + pkt])
    b.anno("nh")[:] = b.off + 4
    _, out = encap("SERVER 0, PORT 0", b)
    assert cm.decode(out.packet(0)[:6]) == (0, 0, ip_int("10.7.7.7"))


def test_packets_without_ip_header_dropped_unless_annotated():
    short = [b"\x45" * 12, ip_packet("10.0.0.9"), b""]
    r, out = encap("1, 2", batch_of(short))
    assert len(out) == 1 and cm.decode(out.packet(0)[:6]) == (1, 2, ip_int("10.0.0.9"))
    assert r.find("e").drops == {"no IP header": 2}
    # With the annotation the header is never read: nothing dropped.
    b = batch_of(short)
    b.anno("dst_ip")[:] = ip_int("10.0.0.1")
    r, out = encap("1, 2", b)
    assert len(out) == 3 and not r.find("e").drops


def test_no_headroom_repacks():
    pkts = [ip_packet("10.0.0.1"), ip_packet("10.0.0.2", size=300)]
    b = batch_of(pkts, headroom=0)
    b.anno("paint")[:] = [4, 5]
    _, out = encap("1, 1, SRC 02:00:00:00:00:09", b)
    assert [p[14:] for p in out.to_list()] == pkts
    assert [Ether(p).src for p in out.to_list()] == ["02:00:00:00:00:09"] * 2
    assert out.anno("paint").tolist() == [4, 5]


@given(st.integers(0, 255), st.integers(0, cm.MAX_PORTS - 1),
       st.lists(st.integers(1, 2**32 - 1), min_size=1, max_size=40))
def test_header_is_encode_many(server, port, hops):
    b = batch_of([ip_packet() for _ in hops])
    b.anno("dst_ip")[:] = hops
    _, out = encap(f"{server}, {port}", b)
    want = cm.encode_many(server, port, np.array(hops, np.uint32))
    assert out.field_bytes(0, 6).tolist() == want.tolist()


def test_handlers():
    r = build("Idle -> e :: ClusterEncap(4, 6) -> Discard;")
    assert r.read_handler("e.dst") == "server 4 port 6"
    assert r.read_handler("e.src") == "FE-00-00-04-FF-FF"


@pytest.mark.parametrize("config, match", [
    ("256, 0", "bad value '256' for SERVER"),
    ("1, 63", "bad value '63' for PORT"),
    ("1", "missing required argument PORT"),
    ("1, 2, SRC nowhere", "bad value 'nowhere' for SRC"),
])
def test_config_errors(config, match):
    with pytest.raises(ConfigError, match=match):
        build(f"Idle -> ClusterEncap({config}) -> Discard;")
