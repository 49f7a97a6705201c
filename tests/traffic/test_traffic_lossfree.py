"""Loss-free rate search (routebricks.traffic.lossfree) and rate parsing, no network needed."""

from __future__ import annotations

import pytest

from routebricks.traffic.frames import TrafficError
from routebricks.traffic.gen import Rate, parse_rate
from routebricks.traffic.lossfree import (
    Trial,
    TrialResult,
    loss_free_rate,
    loss_free_rate_probed,
    trial_from_results,
)


def dut(capacity: float, sent: int = 100_000, achieved: float | None = None):  # type: ignore[no-untyped-def]
    """A device that forwards up to ``capacity`` and drops the excess."""

    def trial(rate: float) -> TrialResult:
        delivered = sent if rate <= capacity else int(sent * capacity / rate)
        got = achieved if achieved is not None else rate
        return TrialResult(sent=sent, received=delivered, achieved_rate=min(got, rate))

    return trial


@pytest.mark.parametrize("capacity", [1.0e5, 3.3e5, 7.77e5, 9.99e5])
def test_search_finds_capacity_within_precision(capacity: float) -> None:
    res = loss_free_rate(dut(capacity), 1e4, 1e6, tolerance=0.0, precision=0.02)
    assert res.rate is not None
    assert capacity / 1.02 <= res.rate <= capacity
    assert res.trials[0].rate == 1e6 and res.trials[1].rate == 1e4  # hi, then lo, then bisect
    assert all(t.passed == (t.rate <= capacity) for t in res.trials)
    assert not res.generator_limited
    assert res.to_dict()["trials"][0]["loss_fraction"] > 0


def test_tolerance_allows_small_loss() -> None:
    # 0.1 % over capacity loses ~0.1 %: passes with the default tolerance 0.001.
    res = loss_free_rate(dut(5e5), 1e5, 1e6, precision=0.001)
    assert res.rate is not None and 5e5 <= res.rate <= 5e5 * 1.0011


def test_hi_passes_and_lo_fails() -> None:
    res = loss_free_rate(dut(2e6), 1e4, 1e6)
    assert res.rate == 1e6 and len(res.trials) == 1
    res = loss_free_rate(dut(1e3), 1e4, 1e6)
    assert res.rate is None and [t.rate for t in res.trials] == [1e6, 1e4]
    assert "loss" in res.trials[-1].reason


def test_generator_limited_trials_fail() -> None:
    # The DUT could do 1 Mpps but the generator only reaches 400 kpps.
    logged: list[Trial] = []
    res = loss_free_rate(dut(1e6, achieved=4e5), 1e4, 1e6, log=logged.append)
    assert res.generator_limited and res.rate is not None and res.rate <= 4e5 / 0.95
    assert logged == res.trials
    assert any("generator-limited" in t.reason for t in res.trials)


def test_max_trials_and_bad_arguments() -> None:
    res = loss_free_rate(dut(3.3e5), 1e4, 1e6, precision=1e-9, max_trials=5)
    assert len(res.trials) == 5 and res.rate is not None
    assert TrialResult(sent=0, received=0).loss_fraction == 1.0
    for lo, hi in ((0, 1), (2, 1)):
        with pytest.raises(TrafficError):
            loss_free_rate(dut(1), lo, hi)
    with pytest.raises(TrafficError):
        loss_free_rate(dut(1), 1, 2, tolerance=1.5)
    with pytest.raises(TrafficError):
        loss_free_rate(dut(1), 1, 2, precision=0)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("1Mpps", Rate(1e6)),
        ("250kpps", Rate(2.5e5)),
        ("1.5 Mpps", Rate(1.5e6)),
        ("20000", Rate(2e4)),
        ("500Mbps", Rate(5e8, "bps")),
        ("1Gbps", Rate(1e9, "bps")),
        ("10kb/s", Rate(1e4, "bps")),
        (12345, Rate(12345.0)),
        ("max", None),
        (None, None),
    ],
)
def test_parse_rate(text: str | int | None, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


def test_rate_conversion_and_errors() -> None:
    assert Rate(512e6, "bps").pps(64) == pytest.approx(1e6)  # 64-byte frames, FCS counted
    assert str(Rate(1.5e6)) == "1.5Mpps" and str(Rate(5e8, "bps")) == "500Mbps"
    for bad in ("fast", "-5pps", "0", "1Xpps", "pps"):
        with pytest.raises(TrafficError):
            parse_rate(bad)


def test_probe_first_then_search_below_it() -> None:
    """--high max: one unpaced trial (rate None) finds what the generator offers."""
    asked: list[float | None] = []

    def trial(rate: float | None) -> TrialResult:
        asked.append(rate)
        offered = 8e5 if rate is None else rate  # the generator tops out at 800 kpps
        delivered = 1.0 if offered <= 3e5 else 3e5 / offered  # the DUT forwards 300 kpps
        return TrialResult(sent=100_000, received=int(100_000 * delivered),
                           achieved_rate=offered)

    res = loss_free_rate_probed(trial, 1e4, tolerance=0.0, precision=0.02)
    assert asked[0] is None and asked[1] == pytest.approx(0.97 * 8e5) and asked[2] == 1e4
    assert res.probe is not None and res.probe.rate == 8e5 and not res.probe.passed
    assert res.hi == pytest.approx(0.97 * 8e5)
    assert res.rate is not None and 3e5 / 1.02 <= res.rate <= 3e5
    assert not res.lower_bound and not res.generator_limited  # lost frames just above
    d = res.to_dict()
    assert d["probe"]["loss_fraction"] > 0 and d["lower_bound"] is False


def test_probe_without_loss_is_the_answer_and_a_lower_bound() -> None:
    fast = dut(1e7)  # the DUT keeps up with anything offered; the generator tops out at 1M

    res = loss_free_rate_probed(lambda rate: fast(1e6 if rate is None else rate), 1e4)
    assert res.rate == 1e6 and res.trials == [] and res.probe is not None
    assert res.generator_limited and res.lower_bound


def test_lower_bound() -> None:
    # The search stopped below rates that failed only because the generator fell short.
    res = loss_free_rate(dut(1e6, achieved=4e5), 1e4, 1e6)
    assert res.lower_bound
    # Rates above the answer lost frames: the answer is the loss-free rate.
    assert not loss_free_rate(dut(3.3e5), 1e4, 1e6).lower_bound
    assert loss_free_rate(dut(2e6), 1e4, 1e6).lower_bound  # hi passed: no more was tried
    assert not loss_free_rate(dut(1e3), 1e4, 1e6).lower_bound  # no rate at all


def test_trial_from_results_counts_refused_frames_as_offered() -> None:
    """The benchmark's convention: frames the kernel refused (busy) were offered and lost;
    the same from result objects and from the agents' dicts."""
    from routebricks.traffic.gen import GenResult
    from routebricks.traffic.sink import LatencyStats, SinkResult

    g = GenResult(interface="eth0", sent=900, attempted=1000, busy_drops=100,
                  oversize_drops=0, frame_bytes=57600, elapsed_s=0.5, pps=1800.0,
                  bps=0.0, target_pps=2000.0, batches=10, stop_reason="duration", flows=1,
                  size="64", kp=100, tx_mode="sendmmsg")
    s = SinkResult(received=895, frame_bytes=0, other=0, flows_seen=1, duplicates=5,
                   reordered=9, reordered_sequences=1, reorder_fraction=0.01, expected=900,
                   lost=10, loss_fraction=0.011, lost_seq=10, expect=None,
                   latency=LatencyStats(count=895, p50_ns=7000, p99_ns=9000), pps=0.0,
                   bps=0.0, span_s=0.5, elapsed_s=0.6, ring_drops=2)
    for r in (trial_from_results(g, s), trial_from_results(g.to_dict(), s.to_dict())):
        assert (r.sent, r.received, r.lost) == (1000, 890, 110)
        assert r.achieved_rate == 2000.0
        assert r.extra["busy_drops"] == 100 and r.extra["ring_drops"] == 2
        assert r.extra["latency_p99_ns"] == 9000 and r.extra["sent"] == 900


def test_rates_as_text_share_a_unit() -> None:
    from routebricks.traffic.units import gbps_text, mpps_text

    assert mpps_text(296e3, 5e5) == ["0.296 Mpps", "0.500 Mpps"]
    assert mpps_text(9_500, 10_000) == ["0.00950 Mpps", "0.01000 Mpps"]  # 4 digits of the top
    assert mpps_text(4.2e5, 1e9) == ["0.420 Mpps", "1000.000 Mpps"]
    assert mpps_text(0) == ["0.000 Mpps"]
    assert gbps_text(1.024e7, 1.222e9) == ["0.010 Gbps", "1.222 Gbps"]
    assert gbps_text(1.024e7) == ["0.01024 Gbps"]
