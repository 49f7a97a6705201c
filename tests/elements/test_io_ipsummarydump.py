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
    r = run_text(f"FromIPSummaryDump({q(src)}, STOP true) -> c :: CheckIPHeader"
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
    run_text(f"FromIPSummaryDump({q(src)}, STOP true) -> CheckIPHeader"
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
