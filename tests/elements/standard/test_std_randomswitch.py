"""RandomSwitch: every packet goes to exactly one output, spread roughly evenly."""

from __future__ import annotations

from stdtest_util import run_text


def test_spreads_all_packets():
    r = run_text("""
        InfiniteSource(LIMIT 4000, BURST 500) -> rs :: RandomSwitch;
        rs[0] -> c0 :: Counter -> Discard;
        rs[1] -> c1 :: Counter -> Discard;
        rs[2] -> c2 :: Counter -> Discard;
        rs[3] -> c3 :: Counter -> Discard;
    """)
    counts = [int(r.read_handler(f"c{i}.count")) for i in range(4)]
    assert sum(counts) == 4000
    assert all(700 <= c <= 1300 for c in counts), counts  # expected 1000 each
    assert not r.find("rs").drops


def test_single_output():
    r = run_text("InfiniteSource(LIMIT 10) -> RandomSwitch -> c :: Counter -> Discard;")
    assert r.read_handler("c.count") == "10"
