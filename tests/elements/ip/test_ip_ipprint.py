"""IPPrint (Click's ipprint.hh/.cc): one line per packet in Click's exact text — UDP, TCP
flags and sequence numbers, ICMP echo and unreachable, fragments, truncated headers, label,
timestamp, contents dumps — and its arguments."""

from __future__ import annotations

import re

import pytest
from elementtest import batch_of, q, run_text, write_pcap
from scapy.all import ICMP, IP, TCP, UDP, Ether

from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError

A, B = "10.0.0.1", "10.0.0.2"


def lines(conf: str, pkts, capsys, *, ts=None) -> list[str]:
    r = Router.from_text(f"Idle -> p :: IPPrint({conf}) -> Discard")
    b = batch_of([bytes(p) for p in pkts])
    if ts is not None:
        b.anno("timestamp")[:] = ts
    out = r.find("p").process(b)
    assert out.to_list() == [bytes(p) for p in pkts]  # unchanged
    return capsys.readouterr().err.splitlines()


def test_docs():
    doc = get_class("IPPrint").doc()
    heads = re.findall(r"^(Ports|Arguments|Behaviour|Handlers|Example|See also):", doc, re.M)
    assert heads == ["Ports", "Arguments", "Behaviour", "Handlers", "Example", "See also"]


@pytest.mark.parametrize("pkt, text", [
    (IP(src=A, dst=B) / UDP(sport=1024, dport=53) / b"abcd", f"{A}.1024 > {B}.53: udp 12"),
    (IP(src=A, dst=B) / TCP(sport=80, dport=999, flags="S", seq=1000, window=512),
     f"{A}.80 > {B}.999: S 1000:1001(1,40,40) win 512"),
    (IP(src=A, dst=B) / TCP(flags="PA", seq=5, ack=77, window=9) / b"hello",
     f"{A}.20 > {B}.80: P 5:10(5,45,45) ack 77 win 9"),
    (IP(src=A, dst=B) / TCP(flags="A", seq=4294967295, ack=1, window=1) / b"xy",
     f"{A}.20 > {B}.80: . 4294967295:1(2,42,42) ack 1 win 1"),
    (IP(src=A, dst=B) / TCP(flags="FR", seq=1), f"{A}.20 > {B}.80: FR 1:2(1,40,40) win 8192"),
    (IP(src=A, dst=B) / ICMP(type=8, id=0x1234, seq=3), f"{A} > {B}: icmp echo (4660, 3)"),
    (IP(src=A, dst=B) / ICMP(type=0, id=1, seq=256), f"{A} > {B}: icmp echo-reply (1, 256)"),
    (IP(src=A, dst=B) / ICMP(type=3, code=3) / IP(src=B, dst="9.9.9.9") / UDP(dport=53),
     f"{A} > {B}: icmp 9.9.9.9 unreachable port udp/53"),
    (IP(src=A, dst=B) / ICMP(type=3, code=4, nexthopmtu=1400) / IP(dst="9.9.9.9") / UDP(),
     f"{A} > {B}: icmp 9.9.9.9 unreachable needfrag (mtu 1400)"),
    (IP(src=A, dst=B) / ICMP(type=3, code=1) / b"short",
     f"{A} > {B}: icmp unreachable host truncated-icmp"),
    (IP(src=A, dst=B) / ICMP(type=11, code=0) / IP() / UDP(),
     f"{A} > {B}: icmp timeexceeded transit"),
    (IP(src=A, dst=B) / ICMP(type=77, code=5), f"{A} > {B}: icmp type 77 code 5"),
    (IP(src=A, dst=B, proto=47), f"{A} > {B}: ip-proto-47"),
    (IP(src=A, dst=B, flags="MF", id=7) / UDP(sport=1, dport=2) / (b"u" * 16),
     f"{A}.1 > {B}.2: udp 24 (frag 7:24@0+)"),
    (IP(src=A, dst=B, frag=3, id=7, proto=17) / (b"u" * 16),
     f"{A} > {B}: udp (frag 7:16@24)"),
    (IP(src=A, dst=B, frag=1, proto=6) / b"tt", f"{A} > {B}: tcp (frag 1:2@8)"),
    (IP(src=A, dst=B, frag=1, proto=1) / b"ii", f"{A} > {B}: icmp (frag 1:2@8)"),
])
def test_click_lines(pkt, text, capsys):
    assert lines("TIMESTAMP false", [pkt], capsys) == [text]


def test_truncated_headers(capsys):
    udp = bytes(IP(src=A, dst=B) / UDP(sport=5, dport=6))
    tcp = bytes(IP(src=A, dst=B) / TCP(sport=5, dport=6, flags="A", ack=9))
    echo = bytes(IP(src=A, dst=B) / ICMP(type=8))
    got = lines("TIMESTAMP false", [udp[:23], udp[:26], tcp[:22], tcp[:30], tcp[:35],
                                    echo[:21], echo[:25], udp[:19], b""], capsys)
    assert got == [f"{A} > {B}: truncated-udp", f"{A}.5 > {B}.6: truncated-udp",
                   f"{A} > {B}: truncated-tcp", f"{A}.5 > {B}.6: truncated-tcp",
                   f"{A}.5 > {B}.6: . 0:0(0,35,40) ack 9truncated-tcp",
                   f"{A} > {B}: truncated-icmp", f"{A} > {B}: icmp echo truncated-icmp",
                   "truncated-ip", "truncated-ip"]


def test_label_timestamp_fields_and_annotations(capsys):
    pkt = IP(src=A, dst=B, id=513, ttl=9, tos=16) / UDP(sport=1, dport=2)
    got = lines("lbl", [pkt], capsys, ts=1_000_000_000_500_000_000)
    assert got == [f"lbl: 1000000000.500000: {A}.1 > {B}.2: udp 8"]
    got = lines("lbl, TIMESTAMP false, ID true, TTL true, TOS true, LENGTH true, PAINT true",
                [pkt], capsys)
    assert got == [f"lbl: paint 0: id 513 ttl 9 tos 16 length 28 {A}.1 > {B}.2: udp 8"]
    got = lines("TIMESTAMP false, AGGREGATE true, PAINT true", [pkt], capsys)
    assert got == [f"#0.0: {A}.1 > {B}.2: udp 8"]


def test_swap_false_prints_host_order(capsys):
    pkt = IP(src=A, dst=B) / ICMP(type=8, id=1, seq=2)
    assert lines("TIMESTAMP false, SWAP false", [pkt], capsys) == \
        [f"{A} > {B}: icmp echo (256, 512)"]


def test_contents_and_payload_dumps(capsys):
    pkt = IP(src=A, dst=B) / UDP(sport=1, dport=2) / bytes(range(65, 65 + 30))
    raw = bytes(pkt)
    got = lines("TIMESTAMP false, CONTENTS hex, MAXLENGTH 30", [pkt], capsys)
    h = raw[:30].hex()
    groups = [h[i : i + 8] for i in range(0, 60, 8)]
    assert got == [f"{A}.1 > {B}.2: udp 38", "  " + " ".join(groups[:6]), "  " + groups[6]
                   + " " + groups[7]]
    got = lines("TIMESTAMP false, PAYLOAD ascii, MAXLENGTH -1", [pkt], capsys)
    text = bytes(range(65, 95)).decode()
    assert got == [f"{A}.1 > {B}.2: udp 38", "  " + " ".join(
        text[i : i + 8] for i in range(0, 30, 8))]
    got = lines("TIMESTAMP false, PAYLOAD true, MAXLENGTH 0", [pkt], capsys)
    assert got == [f"{A}.1 > {B}.2: udp 38"]


def test_network_header_annotation_is_used(capsys):
    frame = bytes(Ether() / IP(src=A, dst=B) / UDP(sport=7, dport=8))
    r = Router.from_text("Idle -> p :: IPPrint(TIMESTAMP false) -> Discard")
    b = batch_of([frame])
    b.anno("nh")[:] = b.off + 14
    r.find("p").process(b)
    assert capsys.readouterr().err == f"{A}.7 > {B}.8: udp 8\n"


def test_active_handler_and_outfile(tmp_path, capsys):
    pcap = write_pcap(tmp_path / "in.pcap", [Ether() / IP(src=A, dst=B) / UDP()] * 2)
    out = tmp_path / "lines.txt"
    r = run_text(f"FromDump({q(pcap)}) -> Strip(14) -> CheckIPHeader -> "
                 f"p :: IPPrint(x, TIMESTAMP false, OUTFILE {q(out)}) -> Discard;")
    assert out.read_text() == f"x: {A}.53 > {B}.53: udp 8\n" * 2
    assert capsys.readouterr().err == ""
    p = r.find("p")
    p.write("active", "false")
    assert p.read("active") == "false"


@pytest.mark.parametrize("conf, words", [
    ("CONTENTS purple", "bad contents value 'purple'"),
    ("PAYLOAD purple", "bad payload value 'purple'"),
    ("CONTENTS hex, PAYLOAD hex", "at most one of PAYLOAD and CONTENTS"),
    ("MAXLENGTH lots", "MAXLENGTH"),
    ("TTL maybe", "TTL"),
    ("a, b", "too many arguments"),
])
def test_bad_arguments(conf, words):
    with pytest.raises(ConfigError, match=words):
        Router.from_text(f"Idle -> IPPrint({conf}) -> Discard")
