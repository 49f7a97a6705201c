"""Print: Click's line format (label, timestamp, length, contents), one write per batch."""

from __future__ import annotations

import io
import sys
from decimal import Decimal

import pytest
from scapy.all import Ether
from stdtest_util import batch_of, q, read_frames, run_text, write_pcap

from routebricks.elements.standard.printer import format_timestamp
from routebricks.engine.router import Router
from routebricks.errors import ConfigError

# Click's documented example: Print(ok) on InfiniteSource's default 69-byte packet.
CLICK_EXAMPLE = "ok:   69 | 52616e64 6f6d2062 756c6c73 68697420 696e2061 20706163"
DEFAULT = b"Random bullshit in a packet, at least 64 bytes long. Well, now it is."


def lines_of(config: str, capsys) -> list[str]:
    run_text(config)
    return capsys.readouterr().err.splitlines()


def test_click_documented_example(capsys):
    assert lines_of("InfiniteSource(LIMIT 2) -> Print(ok) -> Discard;", capsys) == \
        [CLICK_EXAMPLE] * 2


def test_unlabeled(capsys):
    assert lines_of("InfiniteSource(LIMIT 1) -> Print -> Discard;", capsys) == \
        [CLICK_EXAMPLE.removeprefix("ok: ")]


@pytest.mark.parametrize("config, expected", [
    ("ok, 5", "ok:   69 | 52616e64 6f"),
    ("ok, MAXLENGTH 4", "ok:   69 | 52616e64"),
    ("ok, 0", "ok:   69"),
    ("ok, -1", "ok:   69 | " + " ".join(DEFAULT.hex()[i:i + 8] for i in range(0, 138, 8))),
    ("ok, 1000", "ok:   69 | " + " ".join(DEFAULT.hex()[i:i + 8] for i in range(0, 138, 8))),
    ("ok, NBYTES 2", "ok:   69 | 5261"),
    ("ok, CONTENTS NONE", "ok:   69"),
    ("ok, CONTENTS none", "ok:   69"),
    ("ok, CONTENTS false", "ok:   69"),
    ("ok, CONTENTS true", CLICK_EXAMPLE),
    ("ok, CONTENTS ASCII", "ok:   69 |  Random b ullshit  in a pac"),
    ("ok, 10, CONTENTS ascii", "ok:   69 |  Random b ul"),
    ('"two words"', "two words" + CLICK_EXAMPLE.removeprefix("ok")),
    ("ok, 4, HEADROOM true", "ok:   69 (h64 t64) | 52616e64"),
])
def test_formats(capsys, config, expected):
    assert lines_of(f"InfiniteSource(LIMIT 1) -> Print({config}) -> Discard;", capsys) == \
        [expected]


def test_length_is_right_aligned_in_four_columns(capsys):
    got = lines_of("InfiniteSource(LIMIT 1, LENGTH 5) -> Print(a, 0) -> Discard;"
                   "InfiniteSource(LIMIT 1, LENGTH 12345) -> Print(b, 0) -> Discard;", capsys)
    assert sorted(got) == ["a:    5", "b: 12345"]


def test_ascii_nonprintable_and_short_packets(capsys):
    r = Router.from_text("Idle -> p :: Print(x, CONTENTS ASCII) -> Discard;"
                         "Idle -> h :: Print(y) -> Discard;")
    r.find("p").push(0, batch_of([b"ab\x00\x1f~\x7f\xffcdefghij"]))
    r.find("h").push(0, batch_of([b"\x01\x02\x03", b""]))
    assert capsys.readouterr().err.splitlines() == [
        "x:   15 |  ab..~..c defghij",
        "y:    3 | 010203",
        "y:    0",
    ]


def test_timestamps_from_pcap(tmp_path, capsys):
    pkts = [Ether(bytes(range(20))), Ether(b"\xaa" * 30)]
    pkts[0].time, pkts[1].time = Decimal("1000.25"), Decimal("1234567890.000001")
    src = write_pcap(tmp_path / "in.pcap", pkts)
    got = lines_of(f"FromDump({q(src)}) -> Print(ts, 4, TIMESTAMP true) -> Discard;"
                   f"FromDump({q(src)}) -> Print(TIMESTAMP true, CONTENTS NONE) -> Discard;",
                   capsys)
    assert sorted(got) == sorted([
        "ts: 1000.250000:   20 | 00010203",
        "ts: 1234567890.000001:   30 | aaaaaaaa",
        "1000.250000:   20",
        "1234567890.000001:   30",
    ])


def test_timestamp_format():
    assert format_timestamp(0) == "0.000000"
    assert format_timestamp(1_500_000_000) == "1.500000"
    assert format_timestamp(1_000_000_001) == "1.000000001"  # Click's nanosecond build
    assert format_timestamp(-500_000_000) == "-0.500000"


def test_printanno(capsys):
    got = lines_of("InfiniteSource(LIMIT 1, TIMESTAMP false) -> Paint(5) "
                   "-> Print(PRINTANNO true, CONTENTS NONE) -> Discard;", capsys)
    assert got == ["  69 | 05"]


def test_passes_packets_unchanged(tmp_path, capsys):
    frames = [bytes([i]) * (20 + i) for i in range(10)]
    src, out = write_pcap(tmp_path / "in.pcap", frames), tmp_path / "out.pcap"
    run_text(f"FromDump({q(src)}, BURST 3) -> Print(p) -> ToDump({q(out)});")
    assert read_frames(out) == frames
    err = capsys.readouterr().err.splitlines()
    hexes = [f[:24].hex() for f in frames]
    assert err == [f"p: {len(f):4d} | " + " ".join(h[j:j + 8] for j in range(0, len(h), 8))
                   for f, h in zip(frames, hexes, strict=True)]


def test_active_handler(capsys):
    r = Router.from_text("Idle -> p :: Print(z, ACTIVE false) -> qq :: Queue -> Discard;")
    p = r.find("p")
    p.push(0, batch_of([b"\x01" * 4]))
    assert capsys.readouterr().err == ""
    assert r.read_handler("p.active") == "false"
    r.write_handler("p.active", "true")
    p.push(0, batch_of([b"\x01" * 4]))
    assert capsys.readouterr().err == "z:    4 | 01010101\n"
    assert r.read_handler("qq.length") == "2"


def test_one_write_per_batch(monkeypatch):
    class Counting(io.StringIO):
        writes = 0

        def write(self, s: str) -> int:
            Counting.writes += 1
            return super().write(s)

    buf = Counting()
    monkeypatch.setattr(sys, "stderr", buf)
    r = Router.from_text("Idle -> p :: Print(w) -> Discard;")
    r.find("p").push(0, batch_of([b"\x00" * 8] * 50))
    assert Counting.writes == 1
    assert buf.getvalue().count("\n") == 50


def test_bad_contents():
    with pytest.raises(ConfigError, match="bad contents value 'BINARY'"):
        Router.from_text("Idle -> Print(CONTENTS BINARY) -> Discard;")
