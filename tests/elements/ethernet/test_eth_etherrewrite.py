"""EtherRewrite: addresses replaced, type and payload kept, short packets counted."""

from __future__ import annotations

import pytest
from ethtest_util import batch_of, q, read_frames, run_elements, run_text, write_pcap
from scapy.all import IP, TCP, Ether, Raw

from routebricks.elements.ethernet.etherrewrite import EtherRewrite
from routebricks.elements.io.fromdump import FromDump
from routebricks.elements.io.todump import ToDump
from routebricks.elements.standard.simplequeue import Queue
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError

SRC, DST = "02:aa:bb:cc:dd:01", "02:aa:bb:cc:dd:02"


@pytest.fixture()
def trace(tmp_path):
    pkts = [Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02") / IP(dst=f"10.0.0.{i}")
            / TCP(dport=80 + i) / Raw(b"p" * i) for i in range(10)]
    return write_pcap(tmp_path / "in.pcap", pkts), pkts


def test_rewrite_parsed_by_scapy(tmp_path, trace):
    src, pkts = trace
    out = tmp_path / "out.pcap"
    r = run_text(f"FromDump({q(src)}, BURST 4) -> e :: EtherRewrite({SRC}, {DST})"
                 f" -> ToDump({q(out)});")
    got = [Ether(f) for f in read_frames(out)]
    assert len(got) == len(pkts)
    for g, p in zip(got, pkts, strict=True):
        assert (g.src, g.dst, g.type) == (SRC, DST, p.type)
        assert bytes(g[IP]) == bytes(p[IP])
    assert not r.find("e").drops


def test_short_packets_dropped_and_counted(tmp_path):
    frames = [bytes(range(14)), bytes(13), b"", bytes(range(60))]
    src, out = write_pcap(tmp_path / "in.pcap", frames), tmp_path / "out.pcap"
    r = run_text(f"FromDump({q(src)}) -> e :: EtherRewrite({SRC}, {DST}) -> ToDump({q(out)});")
    got = read_frames(out)
    want_head = bytes.fromhex(DST.replace(":", "") + SRC.replace(":", ""))
    assert got == [want_head + frames[0][12:], want_head + frames[3][12:]]
    assert r.find("e").drops == {"shorter than an Ethernet header": 2}
    assert "2\tshorter than an Ethernet header" in r.read_handler("e.drops")


def test_python_api_pull_context(tmp_path, trace):
    src, pkts = trace
    out = tmp_path / "out.pcap"
    fd = FromDump(str(src), BURST=3)
    fd >> Queue() >> EtherRewrite(SRC, DST) >> ToDump(str(out))
    run_elements(fd)
    assert [Ether(f).dst for f in read_frames(out)] == [DST] * len(pkts)


def test_handlers():
    r = Router.from_text(f"Idle -> e :: EtherRewrite({SRC}, {DST}) -> qq :: Queue -> Discard;")
    assert r.read_handler("e.src") == "02-AA-BB-CC-DD-01"
    assert r.read_handler("e.dst") == "02-AA-BB-CC-DD-02"
    r.write_handler("e.src", "00:00:00:00:00:0a")
    r.write_handler("e.dst", "00-00-00-00-00-0B")
    r.find("e").push(0, batch_of([bytes(range(20))]))
    frame = r.find("qq").pull(0).packet(0)
    assert frame == bytes.fromhex("00000000000b00000000000a") + bytes(range(12, 20))
    with pytest.raises(HandlerError):
        r.write_handler("e.dst", "zz:00:00:00:00:00")


def test_config_errors():
    with pytest.raises(ConfigError, match="DST"):
        Router.from_text(f"Idle -> EtherRewrite({SRC}) -> Discard;")
