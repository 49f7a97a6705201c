"""CheckIPHeader: Click's checks in Click's order, marking, trimming, reasons, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from iptest_util import (
    build,
    drain,
    drop_lines,
    network_bytes,
    push,
    q,
    read_frames,
    run_text,
    write_pcap,
)
from scapy.all import IP, UDP, Ether, Raw

from routebricks.engine.router import Router
from routebricks.errors import ConfigError
from routebricks.packet.ip import ip_to_int

CONF = """Idle -> c :: CheckIPHeader({args}) -> good :: Queue(100000) -> Discard;
{bad}"""


def make(args: str = "", bad_port: bool = True) -> Router:
    bad = "c[1] -> bad :: Queue(100000) -> Discard;" if bad_port else ""
    return build(CONF.format(args=args, bad=bad))


def udp(src: str = "10.0.0.1", dst: str = "10.0.0.2", n: int = 10, **kw) -> bytes:
    return bytes(IP(src=src, dst=dst, **kw) / UDP(sport=1, dport=2) / Raw(b"p" * n))


def test_good_packets_are_marked_trimmed_and_annotated():
    r = make("14")
    frames = [bytes(Ether() / IP(src="10.0.0.1", dst=f"10.1.2.{i}") / UDP() / Raw(b"x" * i))
              + b"\xee" * (i % 3) * 5  # Ethernet trailer beyond the IP length
              for i in range(1, 12)]
    push(r, "c", frames)
    out = drain(r, "good")
    assert len(out) == len(frames)
    for i, f in enumerate(frames):
        ip = Ether(f)[IP]
        assert out.packet(i) == f[: 14 + ip.len]  # trimmed to the IP total length
        assert int(out.anno("nh")[i]) == int(out.off[i]) + 14
        assert network_bytes(out, i) == bytes(ip)[: ip.len]
        assert int(out.anno("dst_ip")[i]) == ip_to_int(ip.dst)
    assert out.tailroom >= 0 and len(drain(r, "bad")) == 0
    assert r.find("c").read("drops") == "0"


@pytest.mark.parametrize(
    "raw,reason",
    [
        (udp()[:19], "tiny packet"),
        (b"", "tiny packet"),
        (bytes([0x65]) + udp()[1:], "bad IP version"),
        (bytes([0x44]) + udp()[1:], "bad IP header length"),
        (udp()[:2] + (500).to_bytes(2, "big") + udp()[4:], "bad IP length"),
        (udp()[:2] + (10).to_bytes(2, "big") + udp()[4:], "bad IP length"),
        (udp()[:10] + b"\x12\x34" + udp()[12:], "bad IP checksum"),
        (udp(src="0.0.0.0"), "bad source address"),
        (udp(src="0.1.2.3"), "bad source address"),
        (udp(src="127.0.0.1"), "bad source address"),
        (udp(src="224.0.0.5"), "bad source address"),
        (udp(src="239.255.255.250"), "bad source address"),
        (udp(src="255.255.255.255"), "bad source address"),
    ],
)
def test_each_reason(raw, reason):
    r = make()
    push(r, "c", [raw, udp()])
    assert len(drain(r, "good")) == 1
    bad = drain(r, "bad")
    assert bad.to_list() == [raw]  # unchanged, on output 1
    c = r.find("c")
    assert drop_lines(c.read("drop_details"))[reason] == 1
    assert c.read("drops") == "1"
    assert not c.drops  # sent to output 1: nothing dropped


def test_without_output_1_failures_are_dropped_by_reason():
    r = make(bad_port=False)
    frames = [udp(), udp()[:12], bytes([0x55]) + udp()[1:], udp(src="127.1.1.1"),
              udp(src="127.1.1.2")]
    push(r, "c", frames)
    assert len(drain(r, "good")) == 1
    c = r.find("c")
    assert dict(c.drops) == {"tiny packet": 1, "bad IP version": 1, "bad source address": 2}
    assert c.read("drops") == "4"


def test_interfaces_badsrc_gooddst():
    r = make("INTERFACES 18.26.4.1/24 18.26.7.1/255.255.255.0")
    frames = [
        udp(src="18.26.4.255"),  # subnet broadcast: bad
        udp(src="18.26.7.255"),
        udp(src="18.26.4.9"),  # ordinary: good
        udp(src="0.0.0.0", dst="18.26.4.1"),  # bad source, but to an interface: good
        udp(src="0.0.0.0", dst="18.26.4.2"),  # bad
    ]
    push(r, "c", frames)
    assert drain(r, "good").to_list() == [frames[2], frames[3]]
    assert drain(r, "bad").to_list() == [frames[0], frames[1], frames[4]]


def test_badsrc_gooddst_keywords_and_old_form():
    r = make("BADSRC 10.9.9.9 10.9.9.8, GOODDST 10.0.0.7")
    frames = [udp(src="10.9.9.9"), udp(src="10.9.9.8", dst="10.0.0.7"), udp(src="10.9.9.7")]
    push(r, "c", frames)
    assert drain(r, "good").to_list() == frames[1:]
    # Click's old form: CheckIPHeader(BADSRC, OFFSET)
    r = make("10.9.9.9, 14")
    eth = [bytes(Ether() / IP(f)) for f in frames]
    push(r, "c", eth)
    assert drain(r, "good").to_list() == eth[1:]


def test_offset_forms_and_errors():
    for args in ("14", "OFFSET 14"):
        r = make(args)
        push(r, "c", [bytes(Ether() / IP(udp()))])
        assert len(drain(r, "good")) == 1
    with pytest.raises(ConfigError):
        make("14, OFFSET 14")
    with pytest.raises(ConfigError):
        make("INTERFACES 1.2.3")
    with pytest.raises(ConfigError):
        make("1.2.3.4, 14, 7")


def test_checksum_false_skips_the_sum():
    raw = udp()[:10] + b"\x00\x00" + udp()[12:]
    r = make("CHECKSUM false")
    push(r, "c", [raw])
    assert drain(r, "good").to_list() == [raw]


def test_first_failure_is_reported(capsys):
    r = make()
    push(r, "c", [b"\x45" * 10, b"\x45" * 10])
    err = capsys.readouterr().err
    assert err.count("c: IP header check failed: tiny packet") == 1
    r = make("VERBOSE true")
    push(r, "c", [b"\x45" * 10, b"\x45" * 10])
    assert capsys.readouterr().err.count("IP header check failed") == 2


def test_pcap_pipeline(tmp_path):
    pkts = [Ether() / IP(src="10.0.0.1", dst="10.0.0.2", ttl=9) / UDP() / Raw(b"a" * i)
            for i in range(30)]
    frames = [bytes(p) for p in pkts]
    frames[3] = frames[3][:14] + bytes([0x46]) + frames[3][15:]  # IHL 6: bad checksum/length
    frames[7] = frames[7][:30]  # truncated below the IP length
    src = write_pcap(tmp_path / "in.pcap", frames)
    good, bad = tmp_path / "good.pcap", tmp_path / "bad.pcap"
    r = run_text(f"FromDump({q(src)}) -> Strip(14) -> c :: CheckIPHeader -> ToDump({q(good)}, "
                 f"ENCAP IP); c[1] -> ToDump({q(bad)}, ENCAP IP);")
    got = read_frames(good)
    assert len(got) == 28 and len(read_frames(bad)) == 2
    for g in got:
        assert IP(g).ttl == 9 and IP(g).len == len(g)
    assert sum(drop_lines(r.find("c").read("drop_details")).values()) == 2


# ---------------------------------------------------------------------- properties
addresses = st.integers(0x01000000, 0xDFFFFFFF).filter(lambda a: a >> 24 != 127)
valid_headers = st.builds(
    lambda src, dst, ttl, proto, ident, tos, opts, plen: bytes(
        IP(src=str(src_ip(src)), dst=str(src_ip(dst)), ttl=ttl, proto=proto, id=ident, tos=tos,
           options=b"\x01" * opts) / Raw(b"z" * plen)),
    addresses, st.integers(0, 0xFFFFFFFF), st.integers(0, 255), st.integers(0, 255),
    st.integers(0, 0xFFFF), st.integers(0, 255), st.sampled_from([0, 4, 8, 40]),
    st.integers(0, 64),
)


def src_ip(v: int) -> str:
    return ".".join(str((v >> s) & 0xFF) for s in (24, 16, 8, 0))


@given(st.lists(valid_headers, min_size=1, max_size=30))
def test_random_valid_headers_pass(packets):
    r = make()
    push(r, "c", packets)
    out = drain(r, "good")
    assert out.to_list() == packets
    assert (out.anno("nh") == out.off).all()


@given(valid_headers, st.data())
def test_single_byte_corruption_is_caught_or_harmless(raw, data):
    at = data.draw(st.integers(0, len(raw) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != raw[at]))
    bad = bytearray(raw)
    bad[at] = value
    r = make()
    push(r, "c", [bytes(bad)])
    good_out, bad_out = drain(r, "good"), drain(r, "bad")
    assert len(good_out) + len(bad_out) == 1
    hlen = (raw[0] & 0xF) * 4
    if at < hlen:
        assert len(bad_out) == 1  # every header byte is covered by a check
    else:
        assert good_out.to_list() == [bytes(bad)]  # payload bytes are not CheckIPHeader's


@given(st.lists(st.binary(max_size=80), max_size=20), st.integers(0, 20))
def test_garbage_never_raises_and_counts_add_up(frames, offset):
    r = make(str(offset))
    push(r, "c", frames)
    good, bad = drain(r, "good"), drain(r, "bad")
    assert len(good) + len(bad) == len(frames)
    assert int(r.find("c").read("drops")) == len(bad)
    assert np.all(good.length <= np.array([len(f) for f in frames]).max(initial=0))
