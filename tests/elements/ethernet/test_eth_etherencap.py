"""EtherEncap: the header scapy parses is the one configured; room is made when needed."""

from __future__ import annotations

import pytest
from ethtest_util import batch_of, q, read_frames, run_elements, run_text, write_pcap
from scapy.all import ARP, IP, UDP, Ether, Raw

from routebricks.elements.ethernet.etherencap import EtherEncap
from routebricks.elements.io.fromdump import FromDump
from routebricks.elements.io.todump import ToDump
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError

SRC, DST = "00:11:22:33:44:55", "66:77:88:99:aa:bb"


@pytest.fixture()
def ip_trace(tmp_path):
    pkts = [IP(src=f"10.0.0.{i}", dst="10.9.9.9", ttl=3 + i) / UDP(sport=i, dport=53)
            / Raw(b"q" * i) for i in range(1, 9)]
    return write_pcap(tmp_path / "ip.pcap", [bytes(p) for p in pkts], linktype=101), pkts


def test_encap_ip_parsed_by_scapy(tmp_path, ip_trace):
    src, pkts = ip_trace
    out = tmp_path / "ether.pcap"
    r = run_text(f"FromDump({q(src)}, BURST 3) -> e :: EtherEncap(0x0800, {SRC}, {DST})"
                 f" -> ToDump({q(out)});")
    got = [Ether(f) for f in read_frames(out)]
    assert len(got) == len(pkts)
    for g, p in zip(got, pkts, strict=True):
        assert (g.src, g.dst, g.type) == (SRC, DST, 0x0800)
        assert bytes(g[IP]) == bytes(p)
        assert g[IP].ttl == p.ttl
    assert not r.find("e").drops


def test_python_api(tmp_path, ip_trace):
    src, pkts = ip_trace
    out = tmp_path / "ether.pcap"
    fd = FromDump(str(src))
    fd >> EtherEncap(0x0806, "02:00:00:00:00:01", "ff:ff:ff:ff:ff:ff") >> ToDump(str(out))
    run_elements(fd)
    got = read_frames(out)
    assert [f[:14] for f in got] == [bytes.fromhex("ffffffffffff0200000000010806")] * len(pkts)
    assert [f[14:] for f in got] == [bytes(p) for p in pkts]


def test_arp_payload():
    r = Router.from_text(f"Idle -> e :: EtherEncap(0x0806, {SRC}, ff:ff:ff:ff:ff:ff)"
                         " -> qq :: Queue -> Discard;")
    arp = bytes(ARP(psrc="10.0.0.1", pdst="10.0.0.2"))
    r.find("e").push(0, batch_of([arp]))
    frame = Ether(r.find("qq").pull(0).packet(0))
    assert ARP in frame and frame[ARP].pdst == "10.0.0.2" and frame.dst == "ff:ff:ff:ff:ff:ff"


def test_no_headroom_repacks_and_keeps_annotations():
    r = Router.from_text(f"Idle -> e :: EtherEncap(2048, {SRC}, {DST}) -> qq :: Queue "
                         "-> Discard;")
    payloads = [b"\x45" + bytes(19), b"\x45" + bytes(39), b""]
    b = batch_of(payloads, headroom=0)
    b.anno("paint")[:] = [1, 2, 3]
    r.find("e").push(0, b)
    out = r.find("qq").pull(0)
    assert [p[14:] for p in out.to_list()] == payloads
    assert all(Ether(p).src == SRC for p in out.to_list())
    assert out.anno("paint").tolist() == [1, 2, 3]


def test_repeated_encap_uses_headroom(tmp_path, ip_trace):
    # 64 bytes of headroom from FromDump: four headers fit, the fifth repacks.
    src, pkts = ip_trace
    out = tmp_path / "out.pcap"
    chain = " -> ".join(f"EtherEncap({0x0800 + i}, {SRC}, {DST})" for i in range(5))
    run_text(f"FromDump({q(src)}) -> {chain} -> ToDump({q(out)});")
    for f, p in zip(read_frames(out), pkts, strict=True):
        assert len(f) == 70 + len(bytes(p))
        types = [int.from_bytes(f[14 * k + 12 : 14 * k + 14], "big") for k in range(5)]
        assert types == [0x0804, 0x0803, 0x0802, 0x0801, 0x0800]
        assert f[70:] == bytes(p)


def test_handlers(tmp_path):
    r = Router.from_text(f"Idle -> e :: EtherEncap(0x0800, {SRC}, {DST}) -> qq :: Queue "
                         "-> Discard;")
    assert r.read_handler("e.src") == "00-11-22-33-44-55"
    assert r.read_handler("e.dst") == "66-77-88-99-AA-BB"
    assert r.read_handler("e.ethertype") == "2048"
    assert r.read_handler("e.etht") == "2048"
    r.write_handler("e.dst", "ff-ff-ff-ff-ff-ff")
    r.write_handler("e.src", "2:0:0:0:0:9")
    r.write_handler("e.ethertype", "0x86dd")
    assert r.read_handler("e.ethertype") == "34525"
    r.find("e").push(0, batch_of([b"\x60" + bytes(39)]))
    frame = Ether(r.find("qq").pull(0).packet(0))
    assert (frame.dst, frame.src, frame.type) == ("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:09",
                                                  0x86DD)
    r.write_handler("e.etht", "0x0806")
    assert r.read_handler("e.ethertype") == "2054"
    with pytest.raises(HandlerError):
        r.write_handler("e.src", "not-an-address")
    with pytest.raises(HandlerError):
        r.write_handler("e.ethertype", "0x10000")
    assert r.read_handler("e.ethertype") == "2054"


def test_config_errors():
    with pytest.raises(ConfigError, match="must be <= 0xFFFF"):
        Router.from_text(f"Idle -> EtherEncap(0x10000, {SRC}, {DST}) -> Discard;")
    with pytest.raises(ConfigError, match="DST"):
        Router.from_text(f"Idle -> EtherEncap(0x0800, {SRC}) -> Discard;")
    with pytest.raises(ConfigError, match="SRC"):
        Router.from_text(f"Idle -> EtherEncap(0x0800, 00:11:22, {DST}) -> Discard;")
