"""FromIPSummaryDump and ToIPSummaryDump, run as Click's tests run them: a configuration,
its output text compared with what Click writes; packets checked with scapy; and, where the
C++ Click binary is present, the same configuration run by both."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError
from tests.elements.elementtest import q, read_packets, run_text, write_pcap
from tests.elements.standard.test_std_docformat import check_doc

CLICK = Path("/work/scratch/click/bin/click")

IN_ICMP = """!data src dst icmp_type
!proto I
18.26.4.44 10.0.0.4 echo
10.0.0.4 18.26.4.44 echo-reply
"""


def dump(tmp_path: Path, text: str, name: str = "in.ipsum") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def body(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if not ln.startswith("!")]


def test_docstrings():
    for name in ("FromIPSummaryDump", "ToIPSummaryDump"):
        cls = get_class(name)
        check_doc(cls.doc())
        assert all(h.doc for h in cls.HANDLERS.values())


def test_click_fromipsummarydump_01(tmp_path, capsys):
    # Click's test/analysis/FromIPSummaryDump-01.clicktest
    src = dump(tmp_path, IN_ICMP)
    run_text(f"FromIPSummaryDump({q(src)}, STOP true, CHECKSUM true) -> CheckIPHeader"
             " -> ToIPSummaryDump(-, FIELDS src dst icmp_type_name)")
    assert body(capsys.readouterr().out) == ["18.26.4.44 10.0.0.4 echo",
                                            "10.0.0.4 18.26.4.44 echo-reply"]


def test_click_fromipsummarydump_02_data(capsys):
    # FromIPSummaryDump-02.clicktest: the dump in DATA
    run_text('FromIPSummaryDump(STOP true, DATA "' + IN_ICMP + '")'
             " -> ToIPSummaryDump(-, FIELDS src dst icmp_type_name)")
    out = capsys.readouterr()
    assert body(out.out) == ["18.26.4.44 10.0.0.4 echo", "10.0.0.4 18.26.4.44 echo-reply"]


def test_header_and_fields(tmp_path, capsys):
    src = dump(tmp_path, "!data ts src dst proto sport dport tcp_flags ip_len\n"
                         "1000000000 1.0.0.1 2.0.0.2 T 1 2 S 40\n")
    run_text(f"FromIPSummaryDump({q(src)}, STOP true) -> ToIPSummaryDump(-, "
             'CONTENTS ts "ip src" dst proto sport dport "tcp flags" len, BANNER "me")')
    assert capsys.readouterr().out == (
        "!IPSummaryDump 1.3\n!creator \"me\"\n"
        "!data timestamp ip_src ip_dst ip_proto sport dport tcp_flags ip_len\n"
        "1000000000.000000 1.0.0.1 2.0.0.2 T 1 2 S 40\n")


def test_packets_are_valid_ipv4_for_scapy(tmp_path):
    src = dump(tmp_path, "!data ts src dst proto sport dport ip_id ip_ttl tcp_seq payload\n"
                         '1.5 1.0.0.1 2.0.0.2 U 53 9 7 64 - "abc"\n'
                         '2.25 1.0.0.1 2.0.0.2 T 80 1024 8 3 99 "hello"\n')
    out = tmp_path / "out.pcap"
    r = run_text(f"FromIPSummaryDump({q(src)}, STOP true, CHECKSUM true) -> c :: CheckIPHeader"
                 f" -> ToDump({q(out)}, ENCAP IP)")
    assert r.find("c").drops == {} or not sum(r.find("c").drops.values())
    a, b = read_packets(out)
    assert float(a.time) == 1.5 and float(b.time) == 2.25
    for p in (a, b):
        again = IP(bytes(p))
        del again.chksum
        del again.payload.chksum
        assert bytes(IP(bytes(again))) == bytes(p)  # scapy computes the same checksums
    assert (a[UDP].sport, a[UDP].dport, a[UDP].len, bytes(a[UDP].payload)) == (53, 9, 11,
                                                                                b"abc")
    assert (b[TCP].seq, b.ttl, b.id, bytes(b[TCP].payload)) == (99, 3, 8, b"hello")


def test_scapy_packets_dumped(tmp_path, capsys):
    pkts = [Ether(src="00:01:02:03:04:05") / IP(src="10.0.0.1", dst="10.0.0.2", id=5, tos=4)
            / TCP(sport=1000, dport=80, flags="PA", seq=1, ack=2, window=3) / b"xy",
            Ether() / IP(src="10.0.0.3", dst="10.0.0.4", flags="MF") / UDP(sport=7, dport=8),
            Ether() / IP(src="10.0.0.5", dst="10.0.0.6") / ICMP(type=3, code=4, nexthopmtu=1400)]
    for i, p in enumerate(pkts):
        p.time = Decimal(1000000000 + i)
    pcap = write_pcap(tmp_path / "in.pcap", pkts)
    run_text(f"FromDump({q(pcap)}, STOP true) -> ToIPSummaryDump(-, CONTENTS ts src dst "
             "proto ip_id ip_tos ip_frag ip_fragoff sport dport tcp_flags tcp_seq tcp_ack "
             "tcp_window udp_len icmp_type icmp_code icmp_nextmtu payload_len eth_src)")
    assert body(capsys.readouterr().out) == [
        "1000000000.000000 10.0.0.1 10.0.0.2 T 5 4 . 0 1000 80 PA 1 2 3 - - - - 2 "
        "00-01-02-03-04-05",
        "1000000001.000000 10.0.0.3 10.0.0.4 U 1 0 F 0+ 7 8 - - - - 8 - - - 0 "
        + "-".join(f"{x:02X}" for x in bytes(pkts[1])[6:12]),
        "1000000002.000000 10.0.0.5 10.0.0.6 I 1 0 . 0 - - - - - - - 3 4 1400 8 "
        + "-".join(f"{x:02X}" for x in bytes(pkts[2])[6:12]),
    ]


def test_bad_lines_are_skipped_with_file_and_line(tmp_path, capsys):
    src = dump(tmp_path, "!data src dst\n1.0.0.1 2.0.0.2\nnot an address\n\n3.0.0.3 -\n"
                         "still bad\n")
    r = run_text(f"f :: FromIPSummaryDump({q(src)}, STOP true) -> ToIPSummaryDump(-, "
                 "CONTENTS src dst)")
    out = capsys.readouterr()
    assert body(out.out) == ["1.0.0.1 2.0.0.2", "3.0.0.3 0.0.0.0"]
    assert f"{src}:3: packet parse error" in out.err
    assert "Traceback" not in out.err
    assert r.find("f").drops["bad line"] == 2


def test_missing_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="nope.ipsum"):
        r = Router.from_text(f"FromIPSummaryDump({q(tmp_path / 'nope.ipsum')}) -> Discard")
        try:
            r.run(time_limit=1)
        finally:
            r.cleanup()


def test_unknown_field_in_toipsummarydump_is_an_error():
    with pytest.raises(ConfigError, match="unknown content type 'bogus_x'"):
        Router.from_text("InfiniteSource(LIMIT 1) -> ToIPSummaryDump(-, CONTENTS src bogus_x)")


def test_limit_sample_multipacket(tmp_path, capsys):
    src = dump(tmp_path, "!data ts first_ts count src\n10 4 4 1.0.0.1\n20 - 1 1.0.0.2\n")
    run_text(f"FromIPSummaryDump({q(src)}, STOP true, MULTIPACKET true) -> "
             "ToIPSummaryDump(-, CONTENTS ts src count)")
    assert body(capsys.readouterr().out) == [
        "4.000000 1.0.0.1 1", "6.000000 1.0.0.1 1", "8.000000 1.0.0.1 1",
        "10.000000 1.0.0.1 1", "20.000000 1.0.0.2 1"]
    run_text(f"FromIPSummaryDump({q(src)}, STOP true, LIMIT 1) -> "
             "ToIPSummaryDump(-, CONTENTS src count)")
    assert body(capsys.readouterr().out) == ["1.0.0.1 4"]
    run_text(f"FromIPSummaryDump({q(src)}, STOP true, SAMPLE 0) -> "
             "ToIPSummaryDump(-, CONTENTS src)")
    assert body(capsys.readouterr().out) == []


def test_round_trip_through_a_file(tmp_path):
    fields = "ts src dst proto sport dport ip_len ip_id ip_ttl tcp_flags payload"
    src = dump(tmp_path, f"!data {fields}\n"
                         '1.000001 1.0.0.1 2.0.0.2 T 1 2 48 3 4 SA "hi there"\n'
                         '2.500000 1.0.0.1 2.0.0.2 U 1 2 31 3 4 - "abc"\n')
    out1, out2 = tmp_path / "a.ipsum", tmp_path / "b.ipsum"
    run_text(f"FromIPSummaryDump({q(src)}, STOP true) -> ToIPSummaryDump({q(out1)}, "
             f'CONTENTS {fields})')
    run_text(f"FromIPSummaryDump({q(out1)}, STOP true) -> ToIPSummaryDump({q(out2)}, "
             f'CONTENTS {fields})')
    assert out1.read_text() == out2.read_text()
    assert body(out1.read_text()) == body(src.read_text())


IPOPT_IN = """!data src sport dst dport proto ip_opt
18.26.4.44 30 10.0.0.4 40 T .
18.26.4.44 30 10.0.0.4 40 T nop;nop;eol
18.26.4.44 20 10.0.0.8 80 T ssrr{128.4.45.60,128.4.49.61^1.1.1.1,2.2.2.2}
18.26.4.44 10 10.0.0.8 80 T rr{2.3.4.5}+3
18.26.4.44 12 10.0.0.1 80 T ts{1.0.0.1=!8320,1.0.0.2=8321}++5
18.26.4.44 13 10.0.0.1 80 T ts.3{1.0.0.1=1,^1.0.0.3,1.0.0.4=?}+1
18.26.4.44 15 10.0.0.1 80 T ts{1,10000,!45^0,0};rr{}+1
"""


def test_click_ipopt_01(tmp_path, capsys):
    # FromIPSummaryDump-ipopt-01.clicktest: options in, through a pcap, and out again
    src, pcap = dump(tmp_path, IPOPT_IN), tmp_path / "o.pcap"
    run_text(f"FromIPSummaryDump({q(src)}, STOP true, CHECKSUM true) -> CheckIPHeader"
             f" -> ToDump({q(pcap)}, ENCAP IP)")
    run_text(f"FromDump({q(pcap)}, STOP true) -> ToIPSummaryDump(-, FIELDS src sport dst "
             "dport proto ip_opt)")
    assert body(capsys.readouterr().out) == [
        "18.26.4.44 30 10.0.0.4 40 T .",
        "18.26.4.44 30 10.0.0.4 40 T .",
        "18.26.4.44 20 10.0.0.8 80 T ssrr{128.4.45.60,128.4.49.61^1.1.1.1,2.2.2.2}",
        "18.26.4.44 10 10.0.0.8 80 T rr{2.3.4.5}+3",
        "18.26.4.44 12 10.0.0.1 80 T ts.ip{1.0.0.1=!8320,1.0.0.2=8321^}++5",
        "18.26.4.44 13 10.0.0.1 80 T ts.preip{1.0.0.1=1^1.0.0.3,1.0.0.4,0.0.0.0}",
        "18.26.4.44 15 10.0.0.1 80 T ts{1,10000,!45}+2;rr{}+1",
    ]


@pytest.mark.skipif(not CLICK.exists() or shutil.which("true") is None,
                    reason="no C++ Click binary")
@pytest.mark.parametrize("fields", [
    "ts src dst proto sport dport ip_len payload payload_len tcp_flags eth_src link "
    "direction count ip_frag ip_fragoff udp_len icmp_type icmp_code ip_opt ip_id ip_ttl "
    "tcp_seq tcp_ack tcp_window payload_md5 payload_md5_hex ip_hl tcp_off ip_sum",
])
def test_same_output_as_click(tmp_path, capsys, fields):
    src = dump(tmp_path, IPOPT_IN)
    conf = (f"FromIPSummaryDump({src}, STOP true, CHECKSUM true) -> "
            f"ToIPSummaryDump(-, CONTENTS {fields})")
    click = subprocess.run([str(CLICK), "-e", conf], capture_output=True, text=True,
                           timeout=30)
    run_text(conf)
    assert capsys.readouterr().out == click.stdout


# ---------------------------------------------------------------------- TCP options
TCP_OPTIONS = [
    [("MSS", 1460)],
    [("MSS", 1460), ("NOP", None), ("WScale", 7), ("SAckOK", b""), ("Timestamp", (12345, 0))],
    [("NOP", None), ("NOP", None), ("Timestamp", (669063908, 38382731))],
    [("NOP", None), ("NOP", None), ("SAck", (95, 98, 100, 200))],
    [("NOP", None), ("NOP", None), ("Timestamp", (1, 2)), ("NOP", None), ("NOP", None),
     ("SAck", (5, 6))],
    [(99, b"\x00\x05\x0a")],
    [(98, b"")],
    [("EOL", None)],
    [("NOP", None), ("EOL", None), ("MSS", 5)],
    [("MSS", 1), (30, b"abcdef"), ("WScale", 14)],
]
RAW_TCP_OPTIONS = [  # malformed and odd ones, as bytes
    bytes([2, 3, 5, 6]),  # MSS of the wrong length
    bytes([5, 11, 0, 0, 0, 1, 0, 0, 0, 2, 0]),  # SACK not 2 + 8n long
    bytes([8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1]),  # a timestamp without NOPs in front
    bytes([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]),  # NOP NOP timestamp: tcp_ntopt is "."
    bytes([200, 0]),  # a length under 2
    bytes([2, 4, 5]),  # cut by the header's end (then an EOL)
]
# C++ Click's text for them: sport tcp_off tcp_opt tcp_ntopt tcp_sack
CLICK_TCP_OPT_TEXT = [
    "1000 24 mss1460 mss1460 .",
    "1001 40 mss1460;wscale7;sackok;ts12345:0 mss1460;wscale7;sackok sackok",
    "1002 32 ts669063908:38382731 . .",
    "1003 40 sack95-98;sack100-200 sack95-98;sack100-200 sack95-98;sack100-200",
    "1004 44 ts1:2;sack5-6 sack5-6 sack5-6",
    "1005 28 99=0:5:10 99=0:5:10 .",
    "1006 24 98 98 .",
    "1007 24 . . .",
    "1008 28 . . .",
    "1009 36 mss1;30=97:98:99:100:101:102;wscale14 mss1;30=97:98:99:100:101:102;wscale14 .",
    "2000 24 ? ? ?",
    "2001 32 ? ? ?",
    "2002 32 ts1:2 . .",
    "2003 32 ts1:2 . .",
    "2004 24 ? ? ?",
    "2005 24 mss1280 mss1280 .",
]


def options_pcap(path: Path) -> Path:
    pkts = []
    for i, opts in enumerate(TCP_OPTIONS):
        p = (Ether(src="00:01:02:03:04:05", dst="0a:0b:0c:0d:0e:0f")
             / IP(src="10.0.0.1", dst="10.0.0.2", id=i)
             / TCP(sport=1000 + i, dport=80, flags="S", options=opts) / b"xy")
        p.time = Decimal("1000000000.123456") + i
        pkts.append(p)
    for i, opt in enumerate(RAW_TCP_OPTIONS):
        opt += bytes(-len(opt) % 4)
        tcp = bytearray(bytes(TCP(sport=2000 + i, dport=80, flags="A")))
        tcp[12] = (20 + len(opt)) // 4 << 4
        p = Ether() / IP(src="10.0.0.3", dst="10.0.0.4", proto=6) / (bytes(tcp) + opt)
        p.time = Decimal(1000000100 + i)
        pkts.append(p)
    udp = Ether() / IP(src="1.1.1.1", dst="2.2.2.2", flags="MF") / UDP(sport=5, dport=6) / b"a"
    icmp = Ether() / IP(src="1.1.1.1", dst="2.2.2.2", options=b"\x07\x07\x04" + bytes(5)) \
        / ICMP(type=8, id=3, seq=4) / b"ping"
    for i, p in enumerate((udp, icmp)):
        p.time = Decimal(1000000200 + i)
        pkts.append(p)
    return write_pcap(path, pkts)


def test_tcp_options_written_as_click_writes_them(tmp_path, capsys):
    pcap = options_pcap(tmp_path / "opts.pcap")
    run_text(f"FromDump({q(pcap)}, STOP true) -> ToIPSummaryDump(-, CONTENTS sport tcp_off "
             "tcp_opt tcp_ntopt tcp_sack)")
    assert body(capsys.readouterr().out) == CLICK_TCP_OPT_TEXT + ["5 - - - -", "- - - - -"]


def test_tcp_options_read_into_packets(tmp_path):
    src = dump(tmp_path, "!data src dst sport dport tcp_flags tcp_opt\n"
                         "1.0.0.1 2.0.0.2 1 2 S mss1460;wscale7;sackok;ts5:6\n"
                         "1.0.0.1 2.0.0.2 1 2 A nop;nop;sack95-98,sack100-200\n"
                         "1.0.0.1 2.0.0.2 1 2 A 99=1:2;eol\n"
                         "1.0.0.1 2.0.0.2 1 2 A mss70000\n")
    out = tmp_path / "o.pcap"
    run_text(f"FromIPSummaryDump({q(src)}, STOP true) -> ToDump({q(out)}, ENCAP IP)")
    a, b, c, d = (p[TCP] for p in read_packets(out))
    assert a.options == [("MSS", 1460), ("WScale", 7), ("SAckOK", b""),
                         ("Timestamp", (5, 6)), ("EOL", None)]
    assert a.dataofs == 10
    assert b.options == [("NOP", None), ("NOP", None), ("SAck", (95, 98, 100, 200))]
    assert c.options[0] == (99, b"\x01\x02") and c.dataofs == 7
    assert d.dataofs == 5 and d.options == []  # a bad option field is not used


# ---------------------------------------------------------------------- binary
FIELDS_ALL = ("ts ntimestamp ts_sec ts_usec ts_usec1 first_timestamp count link direction "
              "aggregate wire_len eth_src eth_type ip_src ip_dst ip_tos ip_ecn ip_ttl ip_frag "
              "ip_fragoff ip_id ip_sum ip_proto ip_hl ip_len ip_capture_len ip_opt sport dport "
              "tcp_seq tcp_ack tcp_off tcp_flags tcp_window tcp_urp tcp_opt tcp_ntopt "
              "tcp_sack udp_len icmp_type icmp_code icmp_type_name icmp_code_name icmp_flowid "
              "icmp_seq icmp_nextmtu payload_len payload_md5 payload_md5_hex")


def test_binary_written_and_read_back(tmp_path, capsys):
    pcap = options_pcap(tmp_path / "opts.pcap")
    binary = tmp_path / "o.bin"
    fields = FIELDS_ALL.replace("payload_md5 payload_md5_hex", "")
    run_text(f"FromDump({q(pcap)}, STOP true) -> ToIPSummaryDump({q(binary)}, "
             f"CONTENTS {FIELDS_ALL}, BINARY true)")
    data = binary.read_bytes()
    head = data[:data.index(b"!binary\n") + 8].decode()
    assert head.startswith("!IPSummaryDump 1.3\n!data timestamp ntimestamp ts_sec")
    run_text(f"FromDump({q(pcap)}, STOP true) -> ToIPSummaryDump(-, CONTENTS {fields})")
    want = body(capsys.readouterr().out)
    r = run_text(f"f :: FromIPSummaryDump({q(binary)}, STOP true, CHECKSUM true) -> "
                 f"ToIPSummaryDump(-, CONTENTS {fields})")
    out = capsys.readouterr()
    assert body(out.out) == want
    assert r.find("f").emitted == len(want) == 18
    assert "payload_md5' ignored on input" in out.err  # output-only, and skipped


def test_binary_rejects_payload():
    with pytest.raises(ConfigError, match="cannot use field payload with BINARY"):
        Router.from_text("InfiniteSource(LIMIT 1) -> ToIPSummaryDump(-, CONTENTS src "
                         "payload, BINARY true)")


def binary_dump(path: Path, records: bytes) -> Path:
    path.write_bytes(b"!IPSummaryDump 1.3\n!data ip_src sport\n!binary\n" + records)
    return path


def rec(src: str, sport: int) -> bytes:
    return (10).to_bytes(4, "big") + bytes(map(int, src.split("."))) + sport.to_bytes(2, "big")


@pytest.mark.parametrize("tail, says", [
    (rec("3.0.0.3", 3)[:-1], "truncated: its length says 10 bytes, the file ends 9 bytes in"),
    ((3).to_bytes(4, "big") + rec("3.0.0.3", 3), "binary record too short (length 3; at "
                                                 "least 4)"),
    ((0x7FFFFFFF).to_bytes(4, "big") + rec("3.0.0.3", 3), "truncated: its length says "
                                                          "2147483647 bytes"),
])
def test_malformed_binary_is_reported_with_file_record_and_offset(tmp_path, capsys, tail,
                                                                  says):
    text = b"#a note\n\0\0"  # a text record, NUL-padded
    note = (len(text) + 4 | 1 << 31).to_bytes(4, "big") + text
    good = rec("1.0.0.1", 1) + note + rec("2.0.0.2", 2)
    src = binary_dump(tmp_path / "bad.ipsum", good + tail)
    offset = src.stat().st_size - len(tail)
    r = run_text(f"f :: FromIPSummaryDump({q(src)}, STOP true) -> ToIPSummaryDump(-, "
                 "CONTENTS src sport)")
    out = capsys.readouterr()
    assert body(out.out) == ["1.0.0.1 1", "2.0.0.2 2"]  # the rest of the file is lost
    assert f"{src}: record 4 (byte offset {offset}): {says}" in out.err
    assert "the rest of the file is not read" in out.err
    assert "Traceback" not in out.err
    assert r.find("f").drops == {"bad record": 1}


def test_lines_without_ip_fields_and_extra_length(tmp_path, capsys):
    # As Click's: no IP header for a line of annotations; wire_len beyond the bytes made
    # is the extra-length annotation, which ip_len counts with EXTRA_LENGTH true
    src = dump(tmp_path, "!data ts wire_len link\n1 100 2\n2 14 -\n")
    for extra, ip_len in (("true", (100, 14)), ("false", (0, 0))):
        run_text(f"FromIPSummaryDump({q(src)}, STOP true) -> ToIPSummaryDump(-, CONTENTS ts "
                 f"ip_len payload_len wire_len link ip_src, EXTRA_LENGTH {extra})")
        assert body(capsys.readouterr().out) == [
            f"1.000000 {ip_len[0]} 100 0 2 -", f"2.000000 {ip_len[1]} 14 0 0 -"]


def test_multipacket_steps_timestamps_as_click(tmp_path, capsys):
    src = dump(tmp_path, "!data ts first_ts count src ip_len\n10.5 4.25 4 1.0.0.1 100\n"
                         "20 - 3 1.0.0.2 40\n30 29 1 1.0.0.3 40\n")
    run_text(f"FromIPSummaryDump({q(src)}, STOP true) -> ToIPSummaryDump(-, CONTENTS ts src "
             "ip_len, MULTIPACKET true)")
    assert body(capsys.readouterr().out) == [  # C++ Click's lines
        "4.250000 1.0.0.1 100", "6.333333333 1.0.0.1 100", "8.416666666 1.0.0.1 100",
        "10.499999999 1.0.0.1 100", "20.000000 1.0.0.2 40", "20.000000 1.0.0.2 40",
        "20.000000 1.0.0.2 40", "30.000000 1.0.0.3 40"]


# ---------------------------------------------------------------------- against C++ Click
needs_click = pytest.mark.skipif(not CLICK.exists(), reason="no C++ Click binary")


def click(conf: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLICK), "-e", conf], capture_output=True, timeout=60)


@needs_click
@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("before", ["", "-> Truncate(50)"])
def test_same_dump_of_a_pcap_as_click(tmp_path, capsys, binary, before):
    pcap = options_pcap(tmp_path / "opts.pcap")
    # Click's text ts_usec1 swaps its 32-bit halves; its payload past a truncated packet's
    # end is bytes past the buffer's
    fields = FIELDS_ALL if binary else FIELDS_ALL.replace("ts_usec1 ", "")
    if not binary and not before:
        fields += " payload"
    out = {}
    for who in ("click", "ours"):
        out[who] = tmp_path / f"{who}.out"
        conf = (f"FromDump({pcap}, STOP true, FORCE_IP true) {before} -> ToIPSummaryDump("
                f"{out[who]}, "
                f"CONTENTS {fields}, BINARY {str(binary).lower()})")
        if who == "click":
            assert click(conf).returncode == 0
        else:
            run_text(conf)
    assert out["ours"].read_bytes() == out["click"].read_bytes()


@needs_click
def test_click_binary_read_as_click_reads_it(tmp_path, capsys):
    pcap = options_pcap(tmp_path / "opts.pcap")
    binary = tmp_path / "click.bin"
    fields = ("ts src dst ip_len proto ip_id ip_ttl ip_tos ip_fragoff ip_opt sport dport "
              "tcp_seq tcp_ack tcp_flags tcp_window udp_len icmp_type icmp_code icmp_flowid "
              "payload_len tcp_sack tcp_ntopt tcp_opt")
    assert click(f"FromDump({pcap}, STOP true, FORCE_IP true) -> ToIPSummaryDump({binary}, "
                 f"CONTENTS {fields}, BINARY true)").returncode == 0
    # ip_opt is not last: C++ Click misreads what follows its second copy; we do not
    conf = (f"FromIPSummaryDump({binary}, STOP true, CHECKSUM true) -> "
            f"ToIPSummaryDump(-, CONTENTS {fields})")
    run_text(conf)
    ours = capsys.readouterr().out
    theirs = click(f"FromDump({pcap}, STOP true, FORCE_IP true) -> "
                   f"ToIPSummaryDump(-, CONTENTS {fields})")
    assert ours == theirs.stdout.decode()


@needs_click
def test_text_options_read_as_click_reads_them(tmp_path):
    src = dump(tmp_path, "!data ts src sport dst dport tcp_opt tcp_ntopt payload_len\n"
                         "1 1.0.0.1 30 2.0.0.2 40 mss1460;wscale7;sackok;ts12345:0 . 0\n"
                         "2 1.0.0.1 30 2.0.0.2 40 sack95-98,sack100-200 - 10\n"
                         "3 1.0.0.1 30 2.0.0.2 40 nop;nop;ts1:2;nop;nop;sack5-6 - 3\n"
                         "4 1.0.0.1 30 2.0.0.2 40 99=0:5:10;98 - 0\n"
                         "5 1.0.0.1 30 2.0.0.2 40 - sackok;sackok;mss0x370c 0\n"
                         "6 1.0.0.1 30 2.0.0.2 40 sackok sackok;sackok;mss0x370c 0\n"
                         "7 1.0.0.1 30 2.0.0.2 40 mss70000 wscale3 0\n")
    out = {}
    for who in ("click", "ours"):
        out[who] = tmp_path / f"{who}.bin"
        conf = (f"FromIPSummaryDump({src}, STOP true, CHECKSUM true) -> ToIPSummaryDump("
                f"{out[who]}, CONTENTS ts tcp_off tcp_opt ip_len tcp_sack ip_sum payload_len, "
                "BINARY true)")
        if who == "click":
            assert click(conf).returncode == 0
        else:
            run_text(conf)
    assert out["ours"].read_bytes() == out["click"].read_bytes()


def test_checksums_are_left_alone_by_default_as_click(tmp_path, capsys):
    # C++ Click prints exactly this for the same configuration: CHECKSUM defaults to false
    src = dump(tmp_path, "!data ip_src ip_dst\n1.0.0.1 2.0.0.2\n")
    run_text(f"FromIPSummaryDump({q(src)}, STOP true) -> Print(foo) -> Discard")
    run_text(f"FromIPSummaryDump({q(src)}, STOP true, CHECKSUM true) -> Print(bar) -> Discard")
    assert capsys.readouterr().err.splitlines() == [
        "foo:   40 | 45000028 00000000 64060000 01000001 02000002 00000000",
        "bar:   40 | 45000028 00000000 640653ce 01000001 02000002 00000000"]
