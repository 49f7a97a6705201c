"""The IP summary dump library: a packet written as a line and read back has the same
fields; any line either parses or raises IPSumDumpError; options as Click writes them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP

from routebricks.errors import RouteBricksError
from routebricks.packet.ipsumdump import ReadContext, finish_packet, parse_line
from routebricks.packet.ipsumdump_fields import (
    IPSumDumpError,
    field_list,
    find_field,
    quote,
    unquote_bytes,
)
from routebricks.packet.ipsumdump_ipopt import parse_ip_opt, unparse_ip_opt
from routebricks.packet.ipsumdump_write import summarize

FIELDS = ("ts src dst proto ip_len ip_id ip_ttl ip_tos ip_fragoff sport dport tcp_seq "
          "tcp_ack tcp_flags tcp_window udp_len icmp_type icmp_code payload link count")
NAMES = field_list(FIELDS)[0]


def test_field_names_follow_click():
    assert find_field("ts") == "timestamp"
    assert find_field("src") == "ip_src"
    assert find_field("tcp flags") == "tcp_flags"
    assert find_field("len") == "ip_len"
    assert find_field("ts sec") == "ts_sec"
    assert find_field("bogus_name") is None
    assert field_list('src "tcp seq" nonsense_x') == (["ip_src", "tcp_seq"], ["nonsense_x"])


def test_quote_round_trip():
    data = bytes(range(256))
    assert unquote_bytes(quote(data)) == data
    assert quote(b'hi "x"\n$') == '"hi \\"x\\"\\n\\$"'


packets = st.one_of(
    st.builds(lambda s, d, sp, dp, seq, ack, fl, win, pay: IP(src=s, dst=d, ttl=9, id=3)
              / TCP(sport=sp, dport=dp, seq=seq, ack=ack, flags=fl, window=win) / pay,
              st.ip_addresses(v=4).map(str), st.ip_addresses(v=4).map(str),
              st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 2**32 - 1),
              st.integers(0, 2**32 - 1), st.integers(0, 0x1FF), st.integers(0, 65535),
              st.binary(max_size=40)),
    st.builds(lambda s, sp, dp, tos, pay: IP(src=s, dst="10.0.0.1", tos=tos)
              / UDP(sport=sp, dport=dp) / pay,
              st.ip_addresses(v=4).map(str), st.integers(0, 65535), st.integers(0, 65535),
              st.integers(0, 255), st.binary(max_size=40)),
    st.builds(lambda t, c, pay: IP(src="1.2.3.4", dst="5.6.7.8") / ICMP(type=t, code=c) / pay,
              st.sampled_from([0, 3, 4, 5, 11, 12]), st.integers(0, 15),
              st.binary(max_size=20)),
)


@settings(max_examples=150, deadline=None)
@given(packets, st.integers(0, 2**40), st.integers(0, 255), st.integers(1, 9))
def test_written_then_read_has_the_same_fields(pkt, usec, paint, count):
    raw = bytes(pkt)
    annos = {"timestamp": usec * 1000, "paint": paint, "extra_packets": count - 1}
    line = summarize(raw, 0, annos, NAMES)
    back = parse_line(line, NAMES, ReadContext())
    data = finish_packet(back)
    assert summarize(data, 0, back.annos, NAMES) == line
    assert back.annos["timestamp"] == usec * 1000 and back.annos.get("paint", 0) == paint
    # the rebuilt packet is valid IPv4 with correct checksums, scapy says
    rebuilt = IP(data)
    del rebuilt.chksum
    assert IP(bytes(rebuilt)).chksum == IP(data).chksum
    assert len(data) == IP(data).len


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.lists(st.sampled_from(NAMES + [None]), max_size=8))
def test_parser_raises_only_its_error(line, fields):
    try:
        pkt = parse_line(line, fields, ReadContext())
    except IPSumDumpError as e:
        assert isinstance(e, RouteBricksError)
        return
    data = finish_packet(pkt)
    if "nh" in pkt.annos:  # an IP field was given: an IPv4 header
        assert data[pkt.nhoff] >> 4 == 4
    else:  # only annotations or Ethernet fields: no IP header, as in Click
        assert len(data) == pkt.nhoff
    assert isinstance(summarize(data, pkt.annos.get("nh"), pkt.annos, NAMES), str)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="rstlp{}^,;.+!=?:0123456789eonip", max_size=40))
def test_option_parser_never_raises(text):
    opt = parse_ip_opt(text)
    assert opt is None or len(opt) <= 40


def test_options_as_click_writes_them():
    # FromIPSummaryDump-ipopt-01.clicktest: input text, and what Click writes back
    cases = {
        ".": ".", "nop;nop;eol": ".",
        "ssrr{128.4.45.60,128.4.49.61^1.1.1.1,2.2.2.2}":
            "ssrr{128.4.45.60,128.4.49.61^1.1.1.1,2.2.2.2}",
        "rr{2.3.4.5}+3": "rr{2.3.4.5}+3", "rr{}+1": "rr{}+1",
        "ts{1.0.0.1=!8320,1.0.0.2=8321}++5": "ts.ip{1.0.0.1=!8320,1.0.0.2=8321^}++5",
        "ts.3{1.0.0.1=1,^1.0.0.3,1.0.0.4=?}+1": "ts.preip{1.0.0.1=1^1.0.0.3,1.0.0.4,0.0.0.0}",
        "ts{1,10000,!45}+2": "ts{1,10000,!45}+2",
        "ts{1,10000,!45^0,0};rr{}+1": "ts{1,10000,!45}+2;rr{}+1",
        "99=0:5:10": "99=0:5:10",
    }
    for text, want in cases.items():
        opt = parse_ip_opt(text)
        assert opt is not None, text
        assert unparse_ip_opt(opt + bytes(-len(opt) % 4)) == want, text
    assert parse_ip_opt("rr{1.2.3}") is None
    assert unparse_ip_opt(bytes([7, 40, 4])) == "?"


def test_fields_not_given_are_zero_with_click_defaults():
    pkt = parse_line("1.0.0.1", ["ip_src"], ReadContext())
    data = finish_packet(pkt)
    ip = IP(data)
    assert (ip.src, ip.dst, ip.ttl, ip.proto, ip.len) == ("1.0.0.1", "0.0.0.0", 100, 6, 40)
    assert TCP(bytes(ip.payload)).dataofs == 5
