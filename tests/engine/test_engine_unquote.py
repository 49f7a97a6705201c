"""Click's cp_unquote, as its documentation states it: quotes removed from every part of a
word, escapes in double quotes, ``\\<hex>`` blocks outside single quotes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routebricks.engine.args import Bytes
from routebricks.engine.argtext import unquote


@pytest.mark.parametrize(("text", "want"), [
    ('"\\<4600 002c>"', "\x46\x00\x00\x2c"),  # the example: hex in double quotes
    ("\\<41 42>z", "ABz"),                       # and outside any quotes
    ("'\\<41>'", "\\<41>"),                      # single quotes keep everything
    ('"a"b\'c\'', "abc"),                        # a word of several quoted parts
    ('"x\\ty\\n"', "x\ty\n"),
    ('"\\x41\\101\\$\\,"', "AA$,"),
    ("plain words", "plain words"),
    ('"unterminated', "unterminated"),
    ('"\\<4"', ""),                              # half a byte is dropped, as Click does
])
def test_unquote_as_click(text: str, want: str) -> None:
    assert unquote(text) == want


def test_bytes_argument_reads_hex_inside_double_quotes() -> None:
    assert Bytes.parse('"\\<4600 002c>"') == bytes.fromhex("4600002c")
    assert Bytes.parse('"GET \\<0d0a>"') == b"GET \r\n"


@given(st.text(alphabet=st.sampled_from(list("ab \"'\\<>0f7xnt$,")), max_size=40))
def test_unquote_never_fails_and_plain_text_is_kept(text: str) -> None:
    out = unquote(text)
    assert isinstance(out, str)
    if not any(c in text for c in "\"'\\"):
        assert out == text.strip()
