"""The binary IP summary dump: records laid out byte for byte as C++ Click writes them
(expected bytes taken from files it wrote), written then read back with the same fields,
and malformed files reported with the file, record and byte offset, never a traceback or a
huge allocation."""

from __future__ import annotations

import contextlib
import io
import tracemalloc
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from routebricks.packet.ipsumdump import ReadContext, finish_packet, parse_line, parse_record
from routebricks.packet.ipsumdump_binary import MAX_KEEP, WIDTH, DumpReader, unpack_record
from routebricks.packet.ipsumdump_fields import IPSumDumpError, field_list
from routebricks.packet.ipsumdump_write import summarize, summarize_binary

TS = 1_000_000_000_123_456_000  # 1000000000.123456 s


def syn(options) -> bytes:
    p = (Ether(src="00:01:02:03:04:05", dst="0a:0b:0c:0d:0e:0f")
         / IP(src="10.0.0.1", dst="10.0.0.2", id=0)
         / TCP(sport=1000, dport=80, flags="S", options=options) / b"xy")
    p.time = Decimal("1000000000.123456")
    return bytes(p)


def names(text: str) -> list[str]:
    return field_list(text)[0]


def test_records_as_click_writes_them():
    pkt = syn([("MSS", 1460)])
    rec = summarize_binary(pkt, 14, {"timestamp": TS}, names("ts sport tcp_opt ip_len"))
    # C++ Click: length 28, sec, usec, port, the options, Click's second copy, IP length
    assert rec.hex() == ("0000001c" "3b9aca00" "0001e240" "03e8" "04020405b4" "04020405b4"
                         "0000002e")
    rec = summarize_binary(pkt, 14, {"timestamp": TS},
                           names("ntimestamp ts_usec1 ip_frag ip_fragoff eth_src"))
    # nanoseconds then seconds; ts_usec1's low word first; ip_frag as its character
    assert rec.hex() == ("0000001d" "075bca00" "3b9aca00" "a4c86240" "00038d7e" "2e" "0000"
                         "000102030405")
    rec = summarize_binary(pkt, 14, {}, names("tcp_ntopt tcp_sack payload_md5"))
    assert rec[4:10].hex() == "04" "020405b4" "00"  # no second copy for these
    assert len(rec) == 4 + 5 + 1 + 16


def test_fields_without_binary_form():
    assert "payload" not in WIDTH
    # a field that does not apply is zeros (an option field: one zero byte)
    u = bytes(IP(src="1.2.3.4", dst="5.6.7.8") / UDP(sport=1, dport=2))
    rec = summarize_binary(u, 0, {}, names("tcp_seq tcp_opt sport"))
    assert rec[4:].hex() == "00000000" "00" "0001"


def test_reading_skips_clicks_second_copy_only_when_there():
    opt = bytes([2, 4, 5, 180])
    with_copy = bytes([4]) + opt + bytes([4]) + opt + (46).to_bytes(4, "big")
    without = bytes([4]) + opt + (46).to_bytes(4, "big")
    for rec in (with_copy, without):
        assert unpack_record(rec, ["tcp_opt", "ip_len"]) == [opt, 46]
    # unknown fields take no bytes; a record too short leaves the rest unread
    assert unpack_record(b"\x00\x05", [None, "sport", "dport"]) == [None, 5, None]


_ips = st.ip_addresses(v=4).map(str)
_tcp_options = st.lists(st.sampled_from([
    ("MSS", 1460), ("MSS", 536), ("WScale", 7), ("SAckOK", b""), ("NOP", None),
    ("Timestamp", (12345, 678)), ("SAck", (95, 98)), (30, b"abc")]), max_size=5).filter(
        lambda opts: len(TCP(options=opts)) <= 60)  # 40 option bytes at most: a real header
packets = st.one_of(
    st.builds(lambda s, sp, seq, fl, opts, pay: IP(src=s, dst="10.0.0.9", id=7, ttl=9)
              / TCP(sport=sp, dport=80, seq=seq, flags=fl, options=opts) / pay,
              _ips, st.integers(0, 65535), st.integers(0, 2**32 - 1), st.integers(0, 0xFF),
              _tcp_options, st.binary(max_size=30)),
    st.builds(lambda s, sp, pay: IP(src=s, dst="10.0.0.1", options=b"\x07\x07\x04"
                                    + bytes(4) + b"\x01") / UDP(sport=sp, dport=53) / pay,
              _ips, st.integers(0, 65535), st.binary(max_size=30)),
    st.builds(lambda t, c: IP(src="1.2.3.4", dst="5.6.7.8") / ICMP(type=t, code=c, id=3,
                                                                   seq=4),
              st.sampled_from([0, 3, 8, 11]), st.integers(0, 5)),
)
BIN_FIELDS = names("ts src dst proto ip_len ip_id ip_ttl ip_tos ip_fragoff ip_opt sport "
                   "dport tcp_seq tcp_ack tcp_flags tcp_window tcp_opt udp_len icmp_type "
                   "icmp_code icmp_flowid icmp_seq link count aggregate payload_len "
                   "tcp_ntopt tcp_sack ip_frag ts_usec1")  # not payload_md5: no payload


@settings(max_examples=150, deadline=None)
@given(packets, st.integers(0, 2**40), st.integers(0, 255), st.integers(1, 9),
       st.integers(0, 2**32 - 1))
def test_binary_written_then_read_is_the_same_record(pkt, usec, paint, count, agg):
    raw = bytes(pkt)
    annos = {"timestamp": usec * 1000, "paint": paint, "extra_packets": count - 1,
             "aggregate": agg}
    rec = summarize_binary(raw, 0, annos, BIN_FIELDS)
    assert int.from_bytes(rec[:4], "big") == len(rec)
    back = parse_record(rec[4:], BIN_FIELDS, ReadContext(), BIN_FIELDS)
    data = finish_packet(back)
    assert summarize_binary(data, back.nhoff, back.annos, BIN_FIELDS) == rec
    assert summarize(data, 0, back.annos, BIN_FIELDS) == summarize(raw, 0, annos, BIN_FIELDS)


TEXT_FIELDS = names("ts src dst proto ip_len sport dport tcp_seq tcp_flags tcp_opt ip_opt "
                    "udp_len icmp_type payload")


@settings(max_examples=150, deadline=None)
@given(packets, st.integers(0, 2**40))
def test_text_with_options_written_then_read_is_the_same_line(pkt, usec):
    raw = bytes(pkt)
    line = summarize(raw, 0, {"timestamp": usec * 1000}, TEXT_FIELDS)
    back = parse_line(line, TEXT_FIELDS, ReadContext())
    data = finish_packet(back)
    # NOPs are not written (a timestamp first gets two in front when read), as in Click:
    # only where that leaves the TCP header its length is the line the same
    assume(TCP not in pkt or IP(data)[TCP].dataofs == IP(raw)[TCP].dataofs)
    assert summarize(data, 0, back.annos, TEXT_FIELDS) == line
    # what scapy makes of the rebuilt options is what it made of the original's (but for
    # padding: a timestamp first gets two NOPs in front, as in Click)
    if TCP in pkt:
        assert [o for o in IP(data)[TCP].options if o[0] not in ("NOP", "EOL")] == [
            o for o in IP(raw)[TCP].options if o[0] not in ("NOP", "EOL")]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.lists(st.sampled_from(BIN_FIELDS + [None]), max_size=8))
def test_any_record_parses_or_raises_its_error(rec, fields):
    try:
        pkt = parse_record(rec, fields, ReadContext())
    except IPSumDumpError:
        return
    finish_packet(pkt)


# ---------------------------------------------------------------------- the reader
HEADER = b"!IPSummaryDump 1.3\n!data sport\n!binary\n"


def reader(data: bytes) -> DumpReader:
    r = DumpReader(io.BytesIO(data), "x.ipsum")
    for _ in range(3):
        kind, text, _ = r.next()  # type: ignore[misc]
        assert kind == "line"
    r.start_binary()
    return r


def record(body: bytes, text: bool = False) -> bytes:
    return ((4 + len(body)) | (1 << 31 if text else 0)).to_bytes(4, "big") + body


def test_records_and_text_records():
    r = reader(HEADER + record(b"\x00\x05") + record(b"!proto U\n\0\0", text=True)
               + record(b"\x00\x06"))
    assert r.next() == ("record", b"\x00\x05", "x.ipsum: record 1")
    assert r.next() == ("line", "!proto U\n", "x.ipsum: record 2")
    assert r.next() == ("record", b"\x00\x06", "x.ipsum: record 3")
    assert r.next() is None


@pytest.mark.parametrize("tail, message", [
    (record(b"\x00\x05")[:-1], "record 2 (byte offset 45): truncated: its length says 6 "
                               "bytes, the file ends 5 bytes in"),
    ((2).to_bytes(4, "big"), "record 2 (byte offset 45): binary record too short "
                             "(length 2; at least 4)"),
    (b"\x00\x00", "record 2 (byte offset 45): truncated: the file ends 2 bytes into"),
    ((0x7FFFFFFF).to_bytes(4, "big") + b"abc", "record 2 (byte offset 45): truncated: its "
                                               "length says 2147483647 bytes"),
])
def test_malformed_records_are_reported_with_file_record_and_offset(tail, message):
    r = reader(HEADER + record(b"\x00\x01") + tail)
    assert r.next() == ("record", b"\x00\x01", "x.ipsum: record 1")
    with pytest.raises(IPSumDumpError) as e:
        r.next()
    assert str(e.value).startswith("x.ipsum: " + message)


def test_huge_length_costs_no_huge_allocation(tmp_path):
    f = tmp_path / "huge.ipsum"
    f.write_bytes(HEADER + (0x7FFFFFFF).to_bytes(4, "big") + bytes(100))
    with open(f, "rb") as fh:
        r = DumpReader(fh, str(f))
        for _ in range(3):
            r.next()
        r.start_binary()
        tracemalloc.start()
        with pytest.raises(IPSumDumpError, match="record 1"):
            r.next()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 4 * MAX_KEEP


def test_a_record_longer_than_kept_is_skipped_to_its_end():
    long = record(b"\x00\x07" + bytes(MAX_KEEP + 100))
    r = reader(HEADER + long + record(b"\x00\x08"))
    kind, data, _ = r.next()  # type: ignore[misc]
    assert kind == "record" and data[:2] == b"\x00\x07" and len(data) == MAX_KEEP - 4
    assert r.next() == ("record", b"\x00\x08", "x.ipsum: record 2")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_after_binary_read_or_raise_the_error(data):
    r = reader(HEADER + data)
    try:
        while (item := r.next()) is not None:
            if item[0] == "record":
                with contextlib.suppress(IPSumDumpError):
                    parse_record(item[1], ["sport"], ReadContext())  # type: ignore[arg-type]
    except IPSumDumpError as e:
        assert "x.ipsum: record" in str(e) and "byte offset" in str(e)
