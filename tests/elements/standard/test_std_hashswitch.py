"""HashSwitch: Click's byte-sum hash; one flow stays on one output; short packets counted."""

from __future__ import annotations

import pytest
from scapy.all import IP, Ether
from stdtest_util import flow_packets, q, read_frames, run_text, write_pcap

from routebricks.engine.router import Router
from routebricks.errors import ConfigError


def click_hash(data: bytes, n: int) -> int:
    """Click's HashSwitch::push, written out independently."""
    d = sum(data)
    return (d ^ (d >> 4)) & (n - 1) if n in (2, 4, 8) else d % n


@pytest.mark.parametrize("nout", [2, 3, 4, 5, 8])
def test_outputs_follow_click_hash_and_flows_stay_together(tmp_path, nout):
    pkts = flow_packets(12, 4)
    src = write_pcap(tmp_path / "in.pcap", pkts)
    outs = [tmp_path / f"o{i}.pcap" for i in range(nout)]
    arms = "\n".join(f"hs[{i}] -> ToDump({q(o)});" for i, o in enumerate(outs))
    # bytes 26..33 of an IPv4/Ethernet frame: source and destination address
    r = run_text(f"FromDump({q(src)}, BURST 7) -> hs :: HashSwitch(26, 8);\n{arms}")
    got = [read_frames(o) for o in outs]
    assert sum(len(g) for g in got) == len(pkts)
    flow_port: dict[tuple[str, str], int] = {}
    for port, frames in enumerate(got):
        for f in frames:
            ip = Ether(f)[IP]
            assert click_hash(f[26:34], nout) == port
            assert flow_port.setdefault((ip.src, ip.dst), port) == port
    # each output keeps the input order
    order = {bytes(p): i for i, p in enumerate(pkts)}
    for frames in got:
        idx = [order[f] for f in frames]
        assert idx == sorted(idx)
    assert not r.find("hs").drops
    assert r.read_handler("hs.offset") == "26" and r.read_handler("hs.length") == "8"


def test_short_packets_dropped_and_counted(tmp_path):
    frames = [bytes(range(40)), bytes(range(33)), bytes(range(34)), b"\x01" * 5]
    src = write_pcap(tmp_path / "in.pcap", frames)
    o0, o1 = tmp_path / "o0.pcap", tmp_path / "o1.pcap"
    r = run_text(f"FromDump({q(src)}) -> hs :: HashSwitch(26, 8);"
                 f"hs[0] -> ToDump({q(o0)}); hs[1] -> ToDump({q(o1)});")
    assert sorted(read_frames(o0) + read_frames(o1)) == sorted([frames[0], frames[2]])
    assert r.find("hs").drops == {"too short to hash": 2}


def test_single_output(tmp_path):
    pkts = flow_packets(3, 2)
    src, out = write_pcap(tmp_path / "in.pcap", pkts), tmp_path / "o.pcap"
    run_text(f"FromDump({q(src)}) -> HashSwitch(0, 6) -> ToDump({q(out)});")
    assert read_frames(out) == [bytes(p) for p in pkts]


def test_config_errors():
    with pytest.raises(ConfigError, match="LENGTH: expected byte count from 1 to 65535"):
        Router.from_text("Idle -> HashSwitch(0, 0) -> Discard;")
    with pytest.raises(ConfigError, match="LENGTH"):
        Router.from_text("Idle -> HashSwitch(0) -> Discard;")
