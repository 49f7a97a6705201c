"""Truncate and Pad (Click's truncate.hh, pad.hh): lengths cut and restored, the extra-length
annotation, LENGTH 0 and huge LENGTH, the nbytes handler, bad arguments."""

from __future__ import annotations

import pytest
from scapy.all import IP, UDP, Ether
from stdtest_util import batch_of, flow_packets, q, read_frames, run_text, write_pcap
from test_std_docformat import check_doc

from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError
from routebricks.packet.batch import PacketBatch

FRAMES = [b"\x01" * 100, b"\x02" * 10, b"\x03" * 60, b"", b"\x04" * 61]


def through(conf: str, frames: list[bytes], headroom: int = 64) -> tuple[PacketBatch, Router]:
    r = Router.from_text(f"Idle -> e :: {conf} -> Discard")
    out = r.find("e").process(batch_of(frames, headroom=headroom))
    assert out is not None
    return out, r


@pytest.mark.parametrize("name", ["Truncate", "Pad"])
def test_docs(name):
    check_doc(get_class(name).doc())


def test_truncate_cuts_to_length_and_counts_extra():
    out, r = through("Truncate(60)", FRAMES)
    assert out.to_list() == [f[:60] for f in FRAMES]
    assert out.anno("extra_length").tolist() == [40, 0, 0, 0, 1]
    assert not r.find("e").drops and r.find("e").read("nbytes") == "60"


def test_truncate_extra_length_false_and_accumulates():
    out, _ = through("Truncate(60, EXTRA_LENGTH false)", FRAMES)
    assert "extra_length" not in out.annos or not out.anno("extra_length").any()
    r = Router.from_text("Idle -> a :: Truncate(50) -> b :: Truncate(20) -> Discard")
    b = r.find("b").process(r.find("a").process(batch_of(FRAMES)))
    assert b.anno("extra_length").tolist() == [80, 0, 40, 0, 41]


def test_truncate_zero_and_huge():
    out, _ = through("Truncate(0)", FRAMES)
    assert out.to_list() == [b""] * 5 and out.anno("extra_length").tolist() == [100, 10, 60, 0, 61]
    out, _ = through("Truncate(4294967295)", FRAMES)
    assert out.to_list() == FRAMES


def test_truncate_nbytes_handler():
    r = Router.from_text("Idle -> e :: Truncate(60) -> Discard")
    e = r.find("e")
    e.write("nbytes", "5")
    assert e.read("nbytes") == "5"
    assert e.process(batch_of(FRAMES)).length.tolist() == [5, 5, 5, 0, 5]
    for bad in ("-1", "x", "4294967296", ""):
        with pytest.raises(HandlerError):
            e.write("nbytes", bad)
    assert e.read("nbytes") == "5"


@pytest.mark.parametrize("conf, words", [
    ("Truncate", "missing required argument LENGTH"),
    ("Truncate(-1)", "LENGTH"),
    ("Truncate(4294967296)", "LENGTH"),
    ("Truncate(10, 20)", "too many arguments"),
    ("Truncate(10, EXTRA_LENGTH maybe)", "EXTRA_LENGTH"),
    ("Pad(65536)", "LENGTH: expected byte count from 0 to 65535"),
    ("Pad(-3)", "LENGTH"),
    ("Pad(60, ZERO perhaps)", "ZERO"),
])
def test_bad_arguments(conf, words):
    with pytest.raises(ConfigError, match=words):
        Router.from_text(f"Idle -> {conf} -> Discard")


def test_pad_to_length_with_zeros():
    frames = [b"\xff" * 10, b"\xee" * 60, b"\xdd" * 70, b""]
    out, _ = through("Pad(60)", frames)
    assert out.to_list() == [b"\xff" * 10 + b"\0" * 50, b"\xee" * 60, b"\xdd" * 70, b"\0" * 60]


def test_pad_zeroes_even_over_dirty_tailroom():
    # Bytes behind each packet are not zero (the packets were cut by Truncate).
    r = Router.from_text("Idle -> t :: Truncate(4, EXTRA_LENGTH false) -> p :: Pad(8) -> Discard")
    out = r.find("p").process(r.find("t").process(batch_of([b"abcdefgh", b"ABCDEFGHIJ"])))
    assert out.to_list() == [b"abcd\0\0\0\0", b"ABCD\0\0\0\0"]
    r = Router.from_text("Idle -> t :: Truncate(4, EXTRA_LENGTH false) -> "
                         "p :: Pad(8, ZERO false) -> Discard")
    out = r.find("p").process(r.find("t").process(batch_of([b"abcdefgh"])))
    assert out.to_list() == [b"abcdefgh"]  # "uninitialized": the old bytes are still there


def test_pad_repacks_without_tailroom():
    b = PacketBatch.from_bytes([b"ab", b"c"], headroom=0, tailroom=0)
    b.anno("paint")[:] = [3, 4]
    r = Router.from_text("Idle -> p :: Pad(1000) -> Discard")
    out = r.find("p").process(b)
    assert out.to_list() == [b"ab" + b"\0" * 998, b"c" + b"\0" * 999]
    assert out.anno("paint").tolist() == [3, 4]
    out, _ = through("Pad(65535)", [b"x"])
    assert out.length.tolist() == [65535] and out.packet(0)[1:] == b"\0" * 65534


def test_truncate_then_pad_restores_length_with_zeros():
    pkts = [bytes(Ether() / IP() / UDP() / (b"z" * k)) for k in (0, 30, 200)]
    r = Router.from_text("Idle -> t :: Truncate(42) -> p :: Pad -> Discard")
    out = r.find("p").process(r.find("t").process(batch_of(pkts)))
    assert out.length.tolist() == [len(p) for p in pkts]
    assert out.to_list() == [p[:42] + b"\0" * (len(p) - 42) for p in pkts]
    assert not out.anno("extra_length").any()
    # Pad(0) is the same as Pad: by the annotation (Click's "if (_nbytes)").
    out, _ = through("Pad(0)", [b"abc"])
    assert out.to_list() == [b"abc"]


def test_pad_extra_length_past_65535_is_dropped():
    b = batch_of([b"a", b"b"])
    b.anno("extra_length")[:] = [70000, 3]
    r = Router.from_text("Idle -> p :: Pad -> Discard")
    out = r.find("p").process(b)
    assert out.to_list() == [b"b\0\0\0"]
    assert r.find("p").drops == {"padded length over 65535": 1}


def test_truncate_in_a_running_router(tmp_path):
    pkts = flow_packets(2, 3)
    src, out = write_pcap(tmp_path / "in.pcap", pkts), tmp_path / "out.pcap"
    run_text(f"FromDump({q(src)}) -> Truncate(34) -> Pad(60) -> ToDump({q(out)});")
    got = read_frames(out)
    assert got == [bytes(p)[:34] + b"\0" * 26 for p in pkts]
    assert all(Ether(g)[IP].src == p[IP].src for g, p in zip(got, pkts, strict=True))
