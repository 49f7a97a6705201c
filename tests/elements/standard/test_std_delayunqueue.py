"""DelayUnqueue: packets leave DELAY after their timestamps, in order."""

from __future__ import annotations

import time

from routebricks.engine.router import Router

CONFIG = ("s :: InfiniteSource(LIMIT 20, BURST 5, STOP false) -> Queue(100) "
          "-> d :: DelayUnqueue(150ms) -> c :: Counter -> Discard")


def test_packets_wait_for_their_delay() -> None:
    r = Router.from_text(CONFIG)
    t0 = time.time_ns()
    r.run(time_limit=0.08)
    assert r.elements["c"].read("count") == "0"  # none due yet
    r2 = Router.from_text(CONFIG)
    r2.run(time_limit=0.6)
    assert r2.elements["c"].read("count") == "20"
    assert r2.elements["d"].read("count") == "20"
    assert time.time_ns() - t0 >= 150_000_000
    r.cleanup()
    r2.cleanup()


def test_delay_handler() -> None:
    r = Router.from_text(CONFIG)
    d = r.elements["d"]
    assert d.read("delay") == "0.15"
    d.write("delay", "2ms")
    assert d.read("delay") == "0.002"
