"""Tee and PullTee: every output gets every packet, and copies are independent."""

from __future__ import annotations

import pytest
from scapy.all import Ether
from stdtest_util import batch_of, flow_packets, q, read_frames, run_elements, run_text, write_pcap

from routebricks.elements.io.fromdump import FromDump
from routebricks.elements.io.todump import ToDump
from routebricks.elements.standard.tee import Tee
from routebricks.engine.router import Router
from routebricks.errors import ConfigError

NEW_SRC, NEW_DST = "0a:0b:0c:0d:0e:0f", "01:02:03:04:05:06"


@pytest.fixture()
def trace(tmp_path):
    pkts = flow_packets(4, 6)
    return write_pcap(tmp_path / "in.pcap", pkts), [bytes(p) for p in pkts]


@pytest.mark.parametrize("modified", [0, 1, 2])
def test_copies_are_independent(tmp_path, trace, modified):
    src, frames = trace
    outs = [tmp_path / f"o{i}.pcap" for i in range(3)]
    arms = []
    for i, o in enumerate(outs):
        mid = f"EtherRewrite({NEW_SRC}, {NEW_DST}) -> Strip(6) -> " if i == modified else ""
        arms.append(f"t[{i}] -> {mid}ToDump({q(o)});")
    run_text(f"FromDump({q(src)}, BURST 5) -> t :: Tee(3);\n" + "\n".join(arms))
    for i, o in enumerate(outs):
        got = read_frames(o)
        if i == modified:
            assert len(got) == len(frames)
            for g, f in zip(got, frames, strict=True):
                assert g == bytes.fromhex(NEW_SRC.replace(":", "")) + f[12:]
        else:
            assert got == frames  # the other outputs never see the rewrite


def test_without_n_uses_connected_outputs(tmp_path, trace):
    src, frames = trace
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    run_text(f"FromDump({q(src)}) -> t :: Tee; t[0] -> ToDump({q(a)}); t[1] -> ToDump({q(b)});")
    assert read_frames(a) == frames == read_frames(b)


def test_python_api(tmp_path, trace):
    src, frames = trace
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    fd, t = FromDump(str(src)), Tee(2)
    fd >> t
    t[0] >> ToDump(str(a))
    t[1] >> ToDump(str(b))
    run_elements(fd)
    assert read_frames(a) == frames == read_frames(b)


def test_tee_copy_in_fresh_pool():
    r = Router.from_text("Idle -> t :: Tee(2); t[0] -> q0 :: Queue; t[1] -> q1 :: Queue;"
                         "q0 -> Discard; q1 -> Discard;")
    frames = [b"\x01" * 60, b"\x02" * 70]
    r.find("t").push(0, batch_of(frames))
    b0, b1 = r.find("q0").pull(0), r.find("q1").pull(0)
    assert b0.to_list() == b1.to_list() == frames
    assert b0.pool is not b1.pool
    b1.set_bytes(0, b"\xff\xff")
    assert b0.to_list() == frames


def test_n_must_match_outputs(trace):
    src, _ = trace
    with pytest.raises(ConfigError, match="output 2 is not connected"):
        Router.from_text(f"FromDump({q(src)}) -> t :: Tee(3); t[1] -> Discard; t[0] -> Discard;")
    with pytest.raises(ConfigError, match="has no output 2"):
        Router.from_text(f"FromDump({q(src)}) -> t :: Tee(2); t[1] -> Discard; t[0] -> Discard;"
                         "t[2] -> Discard;")
    with pytest.raises(ConfigError, match="N"):
        Router.from_text("Idle -> t :: Tee(0) -> Discard;")


def test_pulltee(tmp_path, trace):
    src, frames = trace
    main, side = tmp_path / "main.pcap", tmp_path / "side.pcap"
    r = run_text(f"""
        FromDump({q(src)}, BURST 7) -> Queue -> pt :: PullTee(2) -> c :: Counter
            -> ToDump({q(main)});
        pt[1] -> EtherRewrite({NEW_SRC}, {NEW_DST}) -> ToDump({q(side)});
    """)
    assert r.read_handler("c.count") == str(len(frames))
    assert read_frames(main) == frames
    side_frames = read_frames(side)
    assert [Ether(x).dst for x in side_frames] == [NEW_DST] * len(frames)
    assert [x[12:] for x in side_frames] == [f[12:] for f in frames]


def test_pulltee_output0_is_pull():
    with pytest.raises(ConfigError, match="connected to"):
        Router.from_text("InfiniteSource -> pt :: PullTee -> Discard;")
