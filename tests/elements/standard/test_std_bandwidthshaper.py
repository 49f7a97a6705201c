"""BandwidthShaper: the rate measured over runs under simulated time (pulled directly at a
steady, an uneven and a bursty pace, and in a router with --simtime's clock), over a short
real-time run with generous bounds; order kept, the one-second catch-up cap, RATE 0,
handlers, Click's bandwidth syntax and printing."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from routebricks.elements.standard.bandwidthshaper import BandwidthShaper, click_bandwidth
from routebricks.engine import clock
from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError
from routebricks.packet.batch import PacketBatch

PULLED = "Idle -> q :: Queue(1000000) -> s :: BandwidthShaper({rate}) -> Discard"


@pytest.fixture()
def simtime() -> Iterator[None]:
    clock.simulate(start=1e9)
    try:
        yield
    finally:
        clock.simulate(False)


def sized(lengths: list[int], first: int = 0) -> PacketBatch:
    """Packets of the given lengths, each starting with its 4-byte sequence number."""
    return PacketBatch.from_bytes(
        [(first + k).to_bytes(4, "big") + bytes(max(n - 4, 0)) for k, n in enumerate(lengths)])


def shaper(rate: str, lengths: list[int], batch: int = 64) -> tuple[Router, BandwidthShaper]:
    """A shaper whose Queue holds packets of ``lengths``, pushed in batches of ``batch``."""
    r = Router.from_text(PULLED.format(rate=rate))
    r.initialize()
    for i in range(0, len(lengths), batch):
        r.find("q").push(0, sized(lengths[i : i + batch], i))
    return r, r.find("s")


def pull_for(s: BandwidthShaper, seconds: float, step: float | list[float]
             ) -> tuple[int, list[int]]:
    """Pull at every step for ``seconds`` of simulated time, as often as the shaper gives
    packets; the bytes passed and the sequence numbers seen."""
    base = clock.monotonic()
    t, nbytes, seqs, k = 0.0, 0, [], 0
    steps = step if isinstance(step, list) else [step]
    while t <= seconds:
        clock.advance_to(base + t)
        while (b := s.pull(0)) is not None:
            nbytes += b.total_bytes()
            seqs += [int.from_bytes(p[:4], "big") for p in b.to_list()]
        t += steps[k % len(steps)]
        k += 1
    return nbytes, seqs


def test_first_pull_passes_then_the_rate_decides(simtime) -> None:
    r, s = shaper("100kBps", [1000] * 100)
    base = clock.monotonic_ns()
    ms = 1_000_000

    def at(ns: int) -> None:  # exact nanoseconds: the monotonic base may be large
        clock.advance_to_ns(base + ns)

    assert len(s.pull(0)) == 1  # 1000 bytes: 10 ms at 100 kB/s
    assert s.pull(0) is None
    at(9 * ms)
    assert s.pull(0) is None
    at(10 * ms)
    assert len(s.pull(0)) == 1
    at(45 * ms)  # 35 ms on: 3.5 packets' worth; 3 start in time ...
    assert len(s.pull(0)) == 3
    assert s.pull(0) is None  # ... and the shaper is half a packet ahead
    at(49_900_000)
    assert s.pull(0) is None
    at(50 * ms)
    assert len(s.pull(0)) == 1


@pytest.mark.parametrize(("rate", "bytes_per_s"), [
    ("100kBps", 100_000), ("800kbps", 100_000), ("1Mbps", 125_000), ("250000", 250_000),
    ("2MBps", 2_000_000)])
def test_steady_pulls_measure_the_rate(simtime, rate: str, bytes_per_s: int) -> None:
    rng = random.Random(7)
    lengths = [rng.randint(60, 1500) for _ in range(int(bytes_per_s * 10.5 / 700))]
    _, s = shaper(rate, lengths)
    nbytes, seqs = pull_for(s, 10.0, 0.001)
    assert abs(nbytes - bytes_per_s * 10) <= 1500 + bytes_per_s * 0.001  # a packet, a step
    assert seqs == list(range(len(seqs)))  # every packet, in order


def test_uneven_pulls_still_measure_the_rate(simtime) -> None:
    rng = random.Random(3)
    steps = [rng.choice([0.0001, 0.003, 0.02, 0.2]) for _ in range(97)]
    _, s = shaper("400kbps", [rng.randint(60, 1500) for _ in range(2000)], batch=200)
    nbytes, seqs = pull_for(s, 20.0, steps)
    assert abs(nbytes - 50_000 * 20) <= 50_000 * 0.2 + 1500  # the longest gap, a packet
    assert seqs == list(range(len(seqs)))


def test_catch_up_after_an_idle_input_is_capped_at_one_second(simtime) -> None:
    r, s = shaper("100kBps", [])
    base = clock.monotonic()
    assert s.pull(0) is None  # empty input: nothing to pass
    clock.advance_to(base + 5)  # five seconds without packets
    r.find("q").push(0, sized([1000] * 1000))
    burst = 0
    while (b := s.pull(0)) is not None:
        burst += b.total_bytes()
    assert 100_000 <= burst <= 101_000  # one second's worth (and the packet that starts it)


def test_rate_zero_lets_nothing_through(simtime) -> None:
    r, s = shaper("0", [100] * 10)
    nbytes, _ = pull_for(s, 2.0, 0.1)
    assert nbytes == 0 and r.read_handler("q.length") == "10"
    assert not s.holds_packets()  # a run does not wait for packets that never pass


def test_router_with_simulated_time() -> None:
    """A RatedSource sends twice what the shaper passes; over 10 simulated seconds the
    counter behind it sees RATE. The shaper's wake-ups let the clock jump: it takes well
    under the 10 seconds of real time."""
    clock.simulate(start=1e9)
    try:
        r = Router.from_text(
            "RatedSource(LENGTH 1000, RATE 200) -> Queue(10000) -> s :: BandwidthShaper(800kbps)"
            " -> u :: Unqueue -> c :: Counter -> Discard")
        t0 = time.monotonic()
        r.run(time_limit=10.0)
        real = time.monotonic() - t0
        r.cleanup()
    finally:
        clock.simulate(False)
    nbytes = int(r.read_handler("c.byte_count"))
    assert 100_000 * 10 - 1000 <= nbytes <= 100_000 * 10 + 2000
    assert real < 8.0


def test_a_run_ends_once_the_packets_are_out(simtime) -> None:
    """The source is done at once; the run goes on while packets wait in the Queue before
    the shaper, and ends when the last has passed (49 x 10 ms after the first)."""
    r = Router.from_text(
        "InfiniteSource(LENGTH 1000, LIMIT 50, STOP false) -> Queue(100) "
        "-> s :: BandwidthShaper(100kBps) -> Unqueue -> c :: Counter -> Discard")
    why = r.run(time_limit=60.0)
    r.cleanup()
    assert why == "all sources done"
    assert r.read_handler("c.count") == "50"
    assert 0.485 <= r.elapsed <= 0.55


def test_rate_write_takes_effect(simtime) -> None:
    _, s = shaper("100kBps", [500] * 10000)
    first, _ = pull_for(s, 5.0, 0.002)
    s.write("rate", "50kBps")
    second, _ = pull_for(s, 5.0, 0.002)
    assert abs(first - 500_000) <= 1000 and abs(second - 250_000) <= 1000


def test_real_time_run_generous_bounds() -> None:
    """Real time, on a busy machine: at most RATE (plus a packet), at least half of it."""
    r = Router.from_text(
        "RatedSource(LENGTH 1000, RATE 500) -> Queue(10000) -> s :: BandwidthShaper(100kBps)"
        " -> Unqueue -> c :: Counter -> Discard")
    r.run(time_limit=1.0)
    r.cleanup()
    nbytes = int(r.read_handler("c.byte_count"))
    assert 0.5 * 100_000 * r.elapsed <= nbytes <= 100_000 * r.elapsed + 2000


def test_handlers() -> None:
    r = Router.from_text(PULLED.format(rate="1Mbps"))
    s = r.find("s")
    assert r.read_handler("s.rate") == "1Mbps"
    r.write_handler("s.rate", "125kBps")  # the same rate: nothing restarts
    assert r.read_handler("s.rate") == "1Mbps"
    r.write_handler("s.rate", "10Gbps")
    assert r.read_handler("s.rate") == "1250MBps" and s.rate == 1.25e9
    r.write_handler("s.rate", "12345")
    assert r.read_handler("s.rate") == "98.76kbps"
    r.write_handler("s.reset", "")
    with pytest.raises(HandlerError, match="bandwidth"):
        r.write_handler("s.rate", "fast")
    assert r.read_handler("s.rate") == "98.76kbps"


def test_reset_forgets_the_overshoot(simtime) -> None:
    r, s = shaper("1kBps", [1000] * 5)
    assert s.pull(0) is not None and s.pull(0) is None  # a second ahead now
    r.write_handler("s.reset", "")
    assert s.pull(0) is not None


@pytest.mark.parametrize(("rate", "text"), [
    (125, "1kbps"), (1, "0.008kbps"), (100_000, "800kbps"), (124_999, "999.992kbps"),
    (125_000, "1Mbps"), (1_250_000, "10Mbps"), (125_000_000, "1Gbps"),
    (1_250_000_000, "1250MBps"), (0x20000000, "536.870912MBps"), (0, "0kbps")])
def test_click_bandwidth_printing(rate: int, text: str) -> None:
    assert click_bandwidth(rate) == text


@pytest.mark.parametrize(("conf", "says"), [
    ("", "missing required argument RATE"),
    ("fast", "bad value 'fast' for RATE"),
    ("1e30bps", "RATE"),
    ("1Mbps, 2Mbps", "too many arguments"),
])
def test_bad_arguments(conf: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        Router.from_text(f"Idle -> Queue -> BandwidthShaper({conf}) -> Discard")


def test_pull_only_and_documented() -> None:
    with pytest.raises(ConfigError):
        Router.from_text("InfiniteSource -> BandwidthShaper(1Mbps) -> Discard")
    cls = get_class("BandwidthShaper")
    assert cls is BandwidthShaper and cls.GROUP == "standard"
    assert {"rate", "reset"} <= set(cls.HANDLERS)
