"""TCP options in the IP summary dump: the text C++ Click prints (cases taken from its
output on scapy-built packets), read back as Click reads it, and never an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from routebricks.packet.ipsumdump_tcpopt import (
    ALL,
    ALL_NOPAD,
    NTALL,
    SACK,
    c_integer,
    kept_options,
    parse_tcp_opt,
    unparse_tcp_opt,
)


def b(*xs: int) -> bytes:
    return bytes(xs)


MSS = b(2, 4, 0x05, 0xB4)
WS7 = b(3, 3, 7)
SACKOK = b(4, 2)
TS = b(8, 10, 0, 0, 0x30, 0x39, 0, 0, 0, 0)
NOP, EOL = b(1), b(0)

# option bytes -> (tcp_opt, tcp_ntopt, tcp_sack), as C++ Click printed them
CLICK_TEXT = {
    MSS: ("mss1460", "mss1460", "."),
    MSS + NOP + WS7 + SACKOK + TS: ("mss1460;wscale7;sackok;ts12345:0",
                                    "mss1460;wscale7;sackok", "sackok"),
    NOP + NOP + b(8, 10, 0x27, 0xE1, 0x1A, 0xE4, 0x02, 0x49, 0xAC, 0x8B):
        ("ts669063908:38382731", ".", "."),
    NOP + NOP + b(5, 18, 0, 0, 0, 95, 0, 0, 0, 98, 0, 0, 0, 100, 0, 0, 0, 200):
        ("sack95-98;sack100-200",) * 3,
    b(99, 5, 0, 5, 10) + b(0, 0, 0): ("99=0:5:10", "99=0:5:10", "."),
    b(98, 2) + b(0, 0): ("98", "98", "."),
    EOL * 4: (".", ".", "."),
    NOP + EOL + b(2, 4, 0, 5): (".", ".", "."),
    b(2, 4, 0, 1, 30, 8) + b"abcdef" + b(3, 3, 14): (
        "mss1;30=97:98:99:100:101:102;wscale14",) * 2 + (".",),
    b(2, 4, 5, 0): ("mss1280", "mss1280", "."),
    b(2, 3, 5, 6): ("?", "?", "?"),  # MSS of the wrong length
    b(5, 11) + bytes(9) + b(0): ("?", "?", "?"),  # SACK not 2 + 8n long
    b(3, 3, 200, 0): ("wscale200", "wscale200", "."),
    b(4, 2, 1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2): ("sackok;sack1-2",) * 3,
    b(200, 0, 0, 0): ("?", "?", "?"),  # length 0
    b(1, 1, 1, 0): (".", ".", "."),
}


def test_text_as_click_prints_it():
    for opt, texts in CLICK_TEXT.items():
        got = tuple(unparse_tcp_opt(opt, m) for m in (ALL_NOPAD, NTALL, SACK))
        assert got == texts, opt


def test_text_read_as_click_reads_it():
    assert parse_tcp_opt(".") == b""
    assert parse_tcp_opt("mss1460") == MSS
    assert parse_tcp_opt("ts12345:0") == NOP + NOP + TS  # padding put in front
    assert parse_tcp_opt("mss1460;ts12345:0") == MSS + TS
    one = parse_tcp_opt("sack1-2,sack3-4")
    assert one == b(5, 18) + b(0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4)
    assert parse_tcp_opt("sack1-2;sack3-4") == (b(5, 10, 0, 0, 0, 1, 0, 0, 0, 2)
                                                + b(5, 10, 0, 0, 0, 3, 0, 0, 0, 4))
    assert parse_tcp_opt("nop,mss0x10,wscale010") == NOP + b(2, 4, 0, 16) + b(3, 3, 8)
    assert parse_tcp_opt("99=0:5:10;98") == b(99, 5, 0, 5, 10, 98)
    assert parse_tcp_opt("mss1_000") == b(2, 4, 0x03, 0xE8)
    assert parse_tcp_opt("sackok;eol") == SACKOK + EOL
    assert parse_tcp_opt("mss1 x") == b(2, 4, 0, 1)  # a space ends the options, as Click's
    # an option without data is written as its kind alone, read back without a length
    assert parse_tcp_opt(unparse_tcp_opt(b(98, 2))) == b(98)
    for bad in ("mss70000", "wscale256", "bogus", "mss", "sack5", "ts1", "99=256",
                "sack1-2,sack3-4,sack5-6,sack7-8,sack9-10", "mss1:"):
        assert parse_tcp_opt(bad) is None, bad
    # each field reads only its kinds
    assert parse_tcp_opt("mss5", SACK) is None
    assert parse_tcp_opt("sackok", SACK) == SACKOK
    assert parse_tcp_opt("ts1:2", NTALL) is None


def test_cp_integer():
    assert c_integer("0x1fz", 0) == (31, 4)
    assert c_integer("017", 0) == (15, 3)
    assert c_integer("0b101", 0) == (5, 5)
    assert c_integer("08", 0) == (0, 1)
    assert c_integer("1_000", 0) == (1000, 5)
    assert c_integer("99999999999", 0) == (0xFFFFFFFF, 11)
    assert c_integer("x", 0) == (None, 0)


def test_binary_form_keeps_what_the_field_shows():
    opt = MSS + NOP + WS7 + SACKOK + TS + EOL + b(2, 4, 9, 9)
    assert kept_options(opt, ALL) == MSS + NOP + WS7 + SACKOK + TS + EOL
    assert kept_options(opt, NTALL) == MSS + WS7 + SACKOK
    assert kept_options(opt, SACK) == SACKOK
    assert kept_options(b(2, 9, 0, 0) + MSS, ALL) == b""  # stops at a bad length


_int32 = st.integers(0, 2**32 - 1)
_option = st.one_of(
    st.builds(lambda v: b(2, 4) + v.to_bytes(2, "big"), st.integers(0, 65535)),
    st.builds(lambda v: b(3, 3, v), st.integers(0, 255)),
    st.just(SACKOK),
    st.builds(lambda blocks: b(5, 2 + 8 * len(blocks)) + b"".join(
        x.to_bytes(4, "big") + y.to_bytes(4, "big") for x, y in blocks),
        # one block: Click writes each block as its own sackA-B, read back as its own
        # option, so a many-block option comes back longer (maybe over 40 bytes)
        st.lists(st.tuples(_int32, _int32), min_size=1, max_size=1)),
    st.builds(lambda x, y: b(8, 10) + x.to_bytes(4, "big") + y.to_bytes(4, "big"),
              _int32, _int32),
    st.builds(lambda k, data: b(k, 2 + len(data)) + data,
              st.integers(9, 255), st.binary(min_size=1, max_size=6)),
    st.just(NOP),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_option, max_size=6))
def test_text_round_trip(options):
    opt = b"".join(options)[:40]
    for mask, reads in ((ALL_NOPAD, ALL), (NTALL, NTALL), (SACK, SACK)):
        text = unparse_tcp_opt(opt, mask)
        back = parse_tcp_opt(text, reads)
        if text == "?":
            continue
        assert back is not None, text
        assert unparse_tcp_opt(back, mask) == text


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="mswcaleokt;,:-=_x0123456789nopeol ", max_size=40),
       st.sampled_from([ALL, NTALL, SACK]))
def test_parser_never_raises(text, reads):
    opt = parse_tcp_opt(text, reads)
    assert opt is None or len(opt) <= 40


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.sampled_from([ALL_NOPAD, NTALL, SACK, ALL]))
def test_unparser_never_raises(opt, mask):
    assert isinstance(unparse_tcp_opt(opt, mask), str)
    assert len(kept_options(opt, mask)) <= len(opt)
