"""Numeric arguments have real bounds, declared in the elements' ARGS: absurd values (huge
capacities, lengths and rates, negative lengths, NaN) are configuration errors naming the
argument, not silent accepts, MemoryErrors or struct errors at run time."""

from __future__ import annotations

from pathlib import Path

import pytest

from routebricks.elements.standard.ratedsource import RATE_ZERO_HINT
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError

PCAP = Path(__file__).resolve().parents[2] / "examples" / "data" / "sample.pcap"
HUGE = "9" * 100_000


@pytest.mark.parametrize("text, words", [
    ("Idle -> Queue(99999999999999999999999) -> Discard",
     "CAPACITY: expected packet count from 0 to 4294967295"),
    ("Idle -> Queue(4294967296) -> Discard", "CAPACITY"),
    ("Idle -> Strip(100000000000000000000) -> Discard",
     "LENGTH: expected byte count from 0 to 65535"),
    ("Idle -> Unstrip(65536) -> Discard", "LENGTH: expected byte count from 0 to 65535"),
    ("RatedSource(RATE 1e300) -> Discard",
     "RATE: expected rate in packets per second from 0 to 4.29497e+09"),
    ("RatedSource(RATE nan) -> Discard", "RATE: expected a finite rate"),
    ("RatedSource(RATE -5) -> Discard", "RATE"),
    ("RatedSource(BANDWIDTH 1e30bps) -> Discard", "BANDWIDTH"),
    ("RatedSource(BANDWIDTH 1Tbps, LENGTH 1) -> Discard",
     "BANDWIDTH is 1.25e+11 packets per second"),
    ("Idle -> HashSwitch(0, 99999999999) -> Discard",
     "LENGTH: expected byte count from 1 to 65535"),
    ("Idle -> HashSwitch(70000, 2) -> Discard", "OFFSET: expected byte count from 0 to 65535"),
    ("InfiniteSource(LENGTH -5) -> Discard", "LENGTH: expected length from -1 to 65535"),
    ("InfiniteSource(LENGTH 1000000000) -> Discard", "LENGTH"),
    ("InfiniteSource(BURST 0) -> Discard", "BURST: expected packet count from 1 to 1048576"),
    ("InfiniteSource(BURST 1000000000000) -> Discard", "BURST"),
    (f"InfiniteSource(DATA \"{'x' * 70000}\") -> Discard",
     "DATA is 70000 bytes; a packet is at most 65535"),
    ("TimedSource(HEADROOM 1000000000000) -> Discard", "HEADROOM"),
    ("TimedSource(1e400) -> Discard", "INTERVAL: expected a time of at most"),
    ("Idle -> Tee(1000000000) -> Discard", "N: expected output count from 1 to 65536"),
    (f"StaticThreadSched(Idle@1 {HUGE}); Idle -> Discard", "bad worker '9999"),
    (f"Idle -> Classifier(12/0800, {HUGE}/00) -> Discard", "offset '99999999999999999999'"),
    ("Idle -> Classifier(99999999999999999999999/00) -> Discard", "larger than 65535"),
    # Elements of the other groups, found by the survey of numeric arguments.
    (f"FromDump({PCAP}, HEADROOM 4294967296) -> Discard", "HEADROOM: expected byte count"),
    (f"FromDump({PCAP}, TAILROOM 1000000000000) -> Discard", "TAILROOM"),
    (f"FromDump({PCAP}) -> ToDump(/dev/null, SNAPLEN 4294967296)",
     "SNAPLEN: expected byte count from 0 to 4294967295"),
    ("FromDevice(lo, BLOCK_SIZE 1099511627776) -> Discard", "BLOCK_SIZE: expected block size"),
    ("FromDevice(lo, BLOCKS 1000000000000) -> Discard", "BLOCKS"),
    ("FromDevice(lo, TIMEOUT 4294967296) -> Discard", "TIMEOUT: expected milliseconds"),
    ("Idle -> f :: IPFragmenter(1500, HEADROOM 1000000000000) -> Discard; f[1] -> Discard",
     "HEADROOM"),
    ("Idle -> CheckIPHeader(1000000000000000000000000000000) -> Discard",
     "OFFSET must be from 0 to 65535"),
])
def test_absurd_values_are_refused_naming_the_argument(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as ei:
        Router.from_text(text)
    assert words in str(ei.value)
    assert len(ei.value.message) < 400


def test_rated_source_refuses_rate_zero() -> None:
    # Click's RatedSource reads RATE 0 as "no limit" (its token bucket's unlimited rate):
    # neither "send nothing" nor "send as fast as possible" can be meant for sure.
    with pytest.raises(ConfigError) as ei:
        Router.from_text("RatedSource(RATE 0, LIMIT 5) -> Discard")
    assert "RATE 0 would send nothing" in str(ei.value) and RATE_ZERO_HINT in str(ei.value)
    with pytest.raises(ConfigError, match="BANDWIDTH 0 would send nothing"):
        Router.from_text("RatedSource(BANDWIDTH 0bps) -> Discard")
    r = Router.from_text("rs :: RatedSource(RATE 10) -> Discard")
    with pytest.raises(HandlerError, match="rate 0 would send nothing"):
        r.write_handler("rs.rate", "0")
    with pytest.raises(HandlerError, match="rate in packets per second"):
        r.write_handler("rs.rate", "1e300")
    assert r.read_handler("rs.rate") == "10"


@pytest.mark.parametrize("element, handler, value, words", [
    ("q :: Queue", "q.capacity", "4294967296", "expected packet count"),
    ("i :: InfiniteSource", "i.burst", HUGE, "not a 100000-character number"),
    ("i :: RatedSource", "i.length", "-2", "expected length from -1 to 65535"),
    ("i :: TimedSource", "i.headroom", "70000", "expected byte count"),
    ("i :: TimedSource", "i.interval", "1e400", "at most"),
])
def test_handler_writes_are_bounded_too(element: str, handler: str, value: str,
                                        words: str) -> None:
    src = "Idle -> " if element.startswith("q") else ""
    tail = " -> Unqueue -> Discard" if element.startswith("q") else " -> Discard"
    r = Router.from_text(f"{src}{element}{tail}")
    with pytest.raises(HandlerError) as ei:
        r.write_handler(handler, value)
    assert words in str(ei.value) and len(str(ei.value)) < 300
