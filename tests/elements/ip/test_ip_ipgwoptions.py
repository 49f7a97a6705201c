"""IPGWOptions: Record Route and Timestamp processing; bad options to output 1."""

from __future__ import annotations

import time

import pytest
from iptest_util import batch_of, build, drain, header_checksum_ok, network_bytes, push
from scapy.all import ICMP, IP, UDP, IPerror, Raw

from routebricks.elements.ip.annotations import ICMP_PARAMPROB
from routebricks.engine.router import Router
from routebricks.packet.batch import PacketBatch

MY = "18.26.4.24"
MY_B = bytes([18, 26, 4, 24])
OTHER = "18.26.7.1"


def make(with_port: bool = True) -> Router:
    tail = ("g[1] -> ICMPError(18.26.4.24, parameterproblem, RATE 0) -> err :: Queue -> Discard;"
            if with_port else "")
    return build(f"Idle -> c :: CheckIPHeader -> g :: IPGWOptions({MY}, {OTHER}) "
                 "-> out :: Queue -> Discard;" + tail)


def with_options(opts: bytes, src: str = "10.0.0.1") -> bytes:
    opts = opts + bytes(-len(opts) % 4)
    return bytes(IP(src=src, dst="10.0.0.2", options=[]) / UDP() / Raw(b"o" * 9)) if not opts \
        else bytes(IP(src=src, dst="10.0.0.2", options=Raw(opts)) / UDP() / Raw(b"o" * 9))


def ms_now() -> int:
    t = time.time()
    return int((t % 86400) * 1000)


def run(raws: list[bytes], with_port: bool = True) -> tuple[Router, PacketBatch]:
    r = make(with_port)
    push(r, "c", raws)
    return r, drain(r, "out")


def test_packets_without_options_pass_untouched():
    raws = [bytes(IP(src="10.0.0.1", dst="10.0.0.2", id=i) / UDP()) for i in range(10)]
    r, out = run(raws)
    assert out.to_list() == raws and r.find("g").read("drops") == "0"


def test_record_route():
    rr = bytes([7, 11, 4]) + bytes(8)
    full = bytes([7, 7, 8]) + bytes([1, 2, 3, 4])  # pointer past the end: nothing to do
    raws = [with_options(rr), with_options(full), with_options(b"\x01" + rr)]
    _, out = run(raws)
    assert len(out) == 3
    h0 = network_bytes(out, 0)
    assert h0[20:23] == bytes([7, 11, 8]) and h0[23:27] == MY_B and h0[27:31] == bytes(4)
    assert IP(h0).options[0].routers == [MY, "0.0.0.0"]
    assert network_bytes(out, 1) == raws[1]
    h2 = network_bytes(out, 2)
    assert h2[21:24] == bytes([7, 11, 8]) and h2[24:28] == MY_B
    for i in range(3):
        assert header_checksum_ok(network_bytes(out, i))


def test_timestamps():
    before = ms_now()
    ts0 = bytes([68, 12, 5, 0x00]) + bytes(8)
    ts1 = bytes([68, 12, 5, 0x01]) + bytes(8)
    ts3_mine = bytes([68, 12, 5, 0x03]) + bytes([18, 26, 7, 1]) + bytes(4)
    ts3_other = bytes([68, 12, 5, 0x03]) + bytes([9, 9, 9, 9]) + bytes(4)
    ts0_full = bytes([68, 12, 13, 0x20]) + bytes(8)
    _, out = run([with_options(o) for o in (ts0, ts1, ts3_mine, ts3_other, ts0_full)])
    after = ms_now()
    h = [network_bytes(out, i) for i in range(len(out))]
    assert len(h) == 5 and all(header_checksum_ok(x) for x in h)
    t0 = int.from_bytes(h[0][24:28], "big")
    assert h[0][22] == 9 and (before <= t0 <= after or after < before)
    assert h[1][22] == 13 and h[1][24:28] == MY_B
    assert h[2][22] == 13 and int.from_bytes(h[2][28:32], "big") >= 0 and h[2][28:32] != bytes(4)
    assert h[3][20:32] == ts3_other  # not our address: untouched
    assert h[4][23] == 0x30  # overflow counter 2 -> 3


@pytest.mark.parametrize(
    "opts,pointer",
    [
        (bytes([7, 11, 2]) + bytes(8), 22),  # RR pointer inside the option header
        (bytes([68, 12, 3, 0]) + bytes(8), 22),  # TS pointer < 5
        (bytes([68, 12, 5, 2]) + bytes(8), 23),  # TS flag 2 does not exist
        (bytes([68, 12, 13, 0xF0]) + bytes(8), 23),  # TS overflow counter already 15
        (bytes([1, 68, 1]), 22),  # option length < 2 (after a NOP)
        (bytes([0x94, 40, 0, 0]), 21),  # option longer than the header
    ],
)
def test_bad_options_to_parameter_problem(opts, pointer):
    raw = with_options(opts)
    r, out = run([raw, bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP())])
    assert len(out) == 1
    err = drain(r, "err")
    assert len(err) == 1
    icmp = IP(err.packet(0))
    assert icmp[ICMP].type == 12 and icmp[ICMP].code == 0 and icmp[ICMP].ptr == pointer
    assert bytes(icmp[IPerror])[: len(raw)] == raw  # the quoted header is the original
    assert r.find("g").read("drops") == "1"


def test_bad_option_without_output_1_is_dropped_and_annotated():
    r = build(f"Idle -> g :: IPGWOptions({MY}) -> out :: Queue -> Discard;")
    raw = with_options(bytes([7, 11, 2]) + bytes(8))
    push(r, "g", [raw])
    assert len(drain(r, "out")) == 0 and dict(r.find("g").drops) == {"bad IP option": 1}
    r = build(f"Idle -> g :: IPGWOptions({MY}) -> out :: Queue -> Discard; g[1] -> bad :: Queue"
              " -> Discard;")
    push(r, "g", batch_of([raw]))
    bad = drain(r, "bad")
    assert bad.to_list() == [raw] and int(bad.anno(ICMP_PARAMPROB)[0]) == 22


def test_unknown_options_are_skipped():
    ra = bytes([0x94, 4, 0, 0])  # router alert: not IPGWOptions' business
    raw = with_options(ra + bytes([7, 7, 4]) + bytes(4))
    _, out = run([raw])
    h = network_bytes(out, 0)
    assert h[20:24] == ra and h[24:27] == bytes([7, 7, 8]) and h[27:31] == MY_B
