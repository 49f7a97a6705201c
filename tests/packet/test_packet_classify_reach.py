"""Which Classifier outputs no packet can reach (Click's "output N matches no packets"):
checked against every packet of up to two bytes run through the compiled classifier
itself, for random patterns over those bytes, and on the cases C++ Click warns about."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routebricks.packet.classify import (
    CompiledPatterns,
    Term,
    parse_click_pattern,
    unreachable_patterns,
)


def _all_short_packets() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every packet of 0, 1 and 2 bytes: (pool, offsets, lengths)."""
    two = np.arange(65536, dtype=np.uint16).astype(">u2").view(np.uint8).reshape(-1, 2)
    one = np.arange(256, dtype=np.uint8).reshape(-1, 1)
    rows = [np.zeros((1, 2), np.uint8), np.pad(one, ((0, 0), (0, 1))), two]
    pool = np.concatenate(rows).reshape(-1)
    n = pool.size // 2
    lengths = np.concatenate([[0], np.ones(256, np.int64), np.full(65536, 2)])
    return pool, np.arange(n, dtype=np.int64) * 2, lengths.astype(np.int64)


PACKETS = _all_short_packets()

byte_terms = st.builds(
    lambda off, v, m, neg, wide: Term(0, bytes([v & m, 0x5A & m]), bytes([m, m]), neg)
    if wide else Term(off, bytes([v & m]), bytes([m]), neg),
    st.integers(0, 1), st.integers(0, 255), st.sampled_from([0x01, 0x03, 0x0F, 0xF0, 0xFF, 0x81]),
    st.booleans(), st.booleans())
pattern_lists = st.lists(st.lists(byte_terms, max_size=3), min_size=1, max_size=6)


@settings(max_examples=300)
@given(pattern_lists)
def test_unreachable_means_no_packet_reaches_it(patterns: list[list[Term]]) -> None:
    out = CompiledPatterns(patterns).classify(*PACKETS)
    reached = set(np.unique(out).tolist())
    flagged = unreachable_patterns(patterns)
    for i in flagged:
        assert i not in reached, (i, patterns)  # never a false warning
    for i in range(len(patterns)):
        if i not in flagged:
            assert i in reached, (i, patterns)  # and every unreachable output is found


@pytest.mark.parametrize(("patterns", "unreachable"), [
    # The outputs C++ Click (built from kohler/click) warns about for the same patterns.
    (["12/0800", "12/0800", "12/0806 12/0800", "-", "14/45"], [1, 2, 4]),
    (["!12/0800", "12/0800", "12/0806"], [2]),
    (["12/08", "12/0800", "12/0806"], [1, 2]),
    (["12/0806 20/0001", "12/0806 20/0002", "12/0800", "-"], []),
    (["12/0800 14/45", "12/0800"], []),
    (["12/00%01", "12/01%01", "12/0800"], [2]),
    (["23/00%01", "23/01%01", "-"], []),  # packets of under 24 bytes reach "-"
    (["23/00%01", "23/01%01", "22/0000"], [2]),
    (["!14/45%ff 12/11", "23/08%01 !13/0?", "!13/0845%ffff", "12/ff 13/06"], [3]),
])
def test_the_outputs_click_warns_about(patterns: list[str], unreachable: list[int]) -> None:
    assert unreachable_patterns([parse_click_pattern(p) for p in patterns]) == unreachable


def test_a_search_too_long_says_nothing() -> None:
    # Bit 0 of byte 40 is 0 (pattern 16) or not (17): the last pattern is unreachable, but
    # only after trying the 2^16 ways of failing patterns 0-15.
    pats = [[Term(k, b"\x01", b"\x01"), Term(k + 16, b"\x01", b"\x01")] for k in range(16)]
    pats += [[Term(40, b"\x00", b"\x01")], [Term(40, b"\x00", b"\x01", negate=True)],
             [Term(50, b"\x00", b"\x00")]]
    assert unreachable_patterns(pats, budget=100) == []
    assert unreachable_patterns(pats, budget=1_000_000) == [18]


def test_many_patterns_configure_without_a_traceback() -> None:
    pats = [[Term(12, bytes([k >> 8, k & 255]), b"\xff\xff")] for k in range(1500)]
    assert unreachable_patterns(pats) == []  # all reachable (or not searched): no error
