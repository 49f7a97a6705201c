"""Hot reconfiguration (Click's -R and hotconfig handler) in one process: the new
configuration replaces the old between two batches, elements of the same name and class
keep their state, and a bad configuration is refused while the old one runs on."""

from __future__ import annotations

import pytest

from routebricks.engine.router import Router
from routebricks.errors import HandlerError, NoSuchHandler

OLD = ("src :: InfiniteSource(LENGTH 60, LIMIT 40, BURST 10, STOP true) -> c :: Counter "
       "-> rt :: RadixIPLookup(0.0.0.0/0 0) -> q :: Queue(100) -> Discard")


def router(text: str = OLD) -> Router:
    r = Router.from_text(text)
    r.hotconfig_allowed = True
    return r


def test_hotconfig_needs_R() -> None:
    r = Router.from_text(OLD)
    with pytest.raises(NoSuchHandler, match="hotconfig with -R"):
        r.write_handler("hotconfig", OLD)


def test_state_of_same_name_and_class_carries_over() -> None:
    r = router()
    r.run()
    assert r.read_handler("c.count") == "40"
    r.write_handler("rt.add", "10.0.0.0/8 0")
    r.write_handler("hotconfig",
                    "src :: InfiniteSource(LENGTH 60, LIMIT 5, STOP true) -> c :: Counter "
                    "-> c2 :: Counter -> rt :: RadixIPLookup(0.0.0.0/0 0) -> Discard")
    assert sorted(r.elements) == ["Discard@5", "c", "c2", "rt", "src"]
    assert r.read_handler("c.count") == "40"  # carried over
    assert "10.0.0.0/8" in r.read_handler("rt.table")  # the running table, not the config
    r.run()
    assert (r.read_handler("c.count"), r.read_handler("c2.count")) == ("45", "5")


def test_a_changed_element_configuration_or_class_starts_anew() -> None:
    r = router()
    r.run()
    r.write_handler("rt.add", "10.0.0.0/8 0")
    r.write_handler("hotconfig", "src :: InfiniteSource(LIMIT 1, STOP true) -> c :: Null "
                    "-> rt :: RadixIPLookup(0.0.0.0/0 0, 1.0.0.0/8 0) -> Discard")
    assert "10.0.0.0/8" not in r.read_handler("rt.table")  # new routes: a new table
    assert "1.0.0.0/8" in r.read_handler("rt.table")
    with pytest.raises(NoSuchHandler):
        r.read_handler("c.count")  # a Null now


def test_queued_packets_carry_over() -> None:
    r = router("src :: InfiniteSource(LIMIT 7, STOP true) -> q :: Queue(100) -> u :: "
               "Unqueue(ACTIVE false) -> Discard")
    r.run()
    assert r.read_handler("q.length") == "7"
    r.write_handler("hotconfig", "Idle -> q :: Queue(100) -> c :: Counter -> Discard; "
                    "Script(wait 0.05, stop)")
    assert r.read_handler("q.length") == "7"
    r.write_handler("hotconfig", "Idle -> q :: Queue(100) -> Unqueue -> c :: Counter -> "
                    "Discard; Script(wait 0.2, stop)")
    r.run()
    assert (r.read_handler("q.length"), r.read_handler("c.count")) == ("0", "7")


def test_a_bad_configuration_is_refused_and_the_old_one_keeps_running() -> None:
    r = router()
    r.initialize()
    before = dict(r.elements)
    for bad, msg in (("Idle -> nope(3)", "unknown element class 'nope'"),
                     ("FromDump(/nonexistent/x.pcap) -> Discard", "cannot read"),
                     ("Idle -> c :: Counter -> ", "")):
        with pytest.raises(HandlerError, match="the old one keeps running") as e:
            r.write_handler("hotconfig", bad)
        assert msg in str(e.value)
        assert r.elements == before
    r.run()
    assert r.read_handler("c.count") == "40"
    r.cleanup()


def test_swap_happens_between_batches_while_running() -> None:
    r = router("src :: InfiniteSource(LENGTH 60, LIMIT 100, BURST 10, STOP true) -> "
               "c :: Counter -> Discard; s :: Script(wait 0, writeq hotconfig '"
               "src :: InfiniteSource(LENGTH 60, LIMIT 3, BURST 1, STOP true) -> c :: Counter "
               "-> t :: Counter -> Discard')")
    r.run()
    # The old source ran some batches first; then only the new one's 3 packets.
    assert r.read_handler("t.count") == "3"
    assert int(r.read_handler("c.count")) % 10 == 3
