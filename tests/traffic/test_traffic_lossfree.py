"""Loss-free rate search (routebricks.traffic.lossfree) and rate parsing, no network needed."""

from __future__ import annotations

import pytest

from routebricks.traffic.frames import TrafficError
from routebricks.traffic.gen import Rate, parse_rate
from routebricks.traffic.lossfree import Trial, TrialResult, loss_free_rate


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
