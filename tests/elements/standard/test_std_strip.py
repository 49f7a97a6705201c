"""Strip and Unstrip: remove and restore header bytes; short packets counted."""

from __future__ import annotations

import pytest
from scapy.all import IP, Ether
from stdtest_util import batch_of, flow_packets, q, read_frames, run_elements, run_text, write_pcap

from routebricks.elements.io.fromdump import FromDump
from routebricks.elements.io.todump import ToDump
from routebricks.elements.standard.strip import Strip, Unstrip
from routebricks.engine.router import Router
from routebricks.errors import ConfigError


@pytest.fixture()
def trace(tmp_path):
    pkts = flow_packets(3, 4)
    return write_pcap(tmp_path / "in.pcap", pkts), [bytes(p) for p in pkts]


def test_strip_ethernet_gives_ip(tmp_path, trace):
    src, frames = trace
    out = tmp_path / "ip.pcap"
    r = run_text(f"FromDump({q(src)}) -> s :: Strip(14) -> ToDump({q(out)}, ENCAP IP);")
    got = read_frames(out)
    assert got == [f[14:] for f in frames]
    for g, f in zip(got, frames, strict=True):
        assert IP(g).src == Ether(f)[IP].src
    assert not r.find("s").drops
    assert r.read_handler("s.length") == "14"


def test_short_packets_dropped_and_counted(tmp_path):
    frames = [b"\x01" * 20, b"\x02" * 10, b"\x03" * 14, b"\x04" * 13, b"\x05" * 60]
    src, out = write_pcap(tmp_path / "in.pcap", frames), tmp_path / "out.pcap"
    r = run_text(f"FromDump({q(src)}) -> s :: Strip(14) -> ToDump({q(out)}, ENCAP IP);")
    assert read_frames(out) == [b"\x01" * 6, b"", b"\x05" * 46]
    assert r.find("s").drops == {"shorter than Strip length": 2}
    assert "2\tshorter than Strip length" in r.read_handler("s.drops")


def test_strip_then_unstrip_restores(tmp_path, trace):
    src, frames = trace
    out = tmp_path / "out.pcap"
    fd = FromDump(str(src), BURST=5)
    fd >> Strip(14) >> Strip(20) >> Unstrip(34) >> ToDump(str(out))
    run_elements(fd)
    assert read_frames(out) == frames


def test_unstrip_without_headroom_repacks():
    r = Router.from_text("Idle -> u :: Unstrip(4) -> qq :: Queue -> Discard;")
    frames = [b"abcdefgh", b"0123456789"]
    b = batch_of(frames, headroom=0)
    b.anno("paint")[:] = [7, 9]
    r.find("u").push(0, b)
    out = r.find("qq").pull(0)
    assert out.to_list() == [b"\0\0\0\0abcdefgh", b"\0\0\0\x000123456789"]
    assert out.anno("paint").tolist() == [7, 9]


def test_unstrip_zero_and_strip_zero():
    r = Router.from_text("Idle -> Strip(0) -> Unstrip(0) -> qq :: Queue -> Discard;")
    strip = next(e for e in r.elements.values() if type(e).__name__ == "Strip")
    strip.push(0, batch_of([b"", b"x"]))
    assert r.find("qq").pull(0).to_list() == [b"", b"x"]


def test_pull_context(tmp_path, trace):
    src, frames = trace
    out = tmp_path / "out.pcap"
    run_text(f"FromDump({q(src)}) -> Queue -> Strip(14) -> Unstrip(2) -> ToDump({q(out)});")
    assert read_frames(out) == [f[12:] for f in frames]


def test_config_errors():
    with pytest.raises(ConfigError, match="LENGTH"):
        Router.from_text("Idle -> Strip -> Discard;")
    with pytest.raises(ConfigError, match="LENGTH"):
        Router.from_text("Idle -> Unstrip(-1) -> Discard;")
