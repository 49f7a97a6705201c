"""AverageCounter: counts, the average rate over the first-to-last interval, IGNORE; and
every element's "See also" names an element that exists."""

from __future__ import annotations

import re

from routebricks.engine import clock
from routebricks.engine.registry import class_names, get_class
from routebricks.engine.router import Router
from routebricks.packet.batch import PacketBatch


def test_rates_and_ignore() -> None:
    clock.simulate(start=1e9)
    try:
        r = Router.from_text("Idle -> a :: AverageCounter -> Discard; "
                             "Idle -> b :: AverageCounter(1s) -> Discard")
        base = clock.monotonic()
        for t in (0.0, 0.5, 2.0):
            clock.advance_to(base + t)
            for name in ("a", "b"):
                r.elements[name].push(0, PacketBatch.from_bytes([b"x" * 100] * 10))
        a, b = r.elements["a"], r.elements["b"]
        assert a.read("count") == "30" and a.read("byte_count") == "3000"
        assert float(a.read("rate")) == 15.0  # 30 packets over the 2 s first-to-last
        assert float(a.read("byte_rate")) == 1500.0
        assert b.read("count") == "10"  # the first second ignored
        a.write("reset", "")
        assert a.read("count") == "0" and float(a.read("rate")) == 0.0
    finally:
        clock.simulate(False)


def test_every_see_also_names_an_element() -> None:
    names = set(class_names())
    for n in names:
        m = re.search(r"See also:(.*?)(?:\n\s*\n|\Z)", get_class(n).__doc__ or "", re.S)
        for w in re.split(r"[,\s]+", m.group(1).strip()) if m else []:
            w = w.strip(".;()")
            if w and w[0].isupper():
                assert w in names, f"{n}: 'See also' names {w}, which is not an element"
