"""The paper's metric: the maximum loss-free forwarding rate, by binary search.

:func:`loss_free_rate` runs *trials* -- offer traffic at a rate, count what came out -- and
searches (as RFC 2544's throughput test does) for the highest offered rate whose loss
fraction stays within ``tolerance``. The caller supplies the trial as a function of the rate,
so the same search drives a veth pair, a router in namespaces or a simulator.

Search
    1. Try ``hi``; if it passes, the answer is ``hi`` (the DUT keeps up with all we offer).
    2. Try ``lo``; if it fails, there is no loss-free rate in the range (``rate=None``).
    3. Bisect between the highest passing and lowest failing rate until they are within
       ``precision`` of each other (relative: ``bad <= good * (1 + precision)``), or
       ``max_trials`` trials ran. The answer is the highest passing rate, so it
       underestimates the true loss-free rate by at most ``precision`` (assuming loss grows
       with the offered rate).

A trial passes when ``loss_fraction <= tolerance`` **and** the generator really offered the
rate (``achieved_rate >= min_offered * rate`` when the trial reports an achieved rate); a trial
the generator could not keep up with fails and sets ``generator_limited`` on the result, since
a loss-free claim at a rate that was never offered would be wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from routebricks.traffic.frames import TrafficError

__all__ = ["LossFreeResult", "Trial", "TrialResult", "loss_free_rate", "trial_from_results"]


@dataclass
class TrialResult:
    """One trial's outcome: frames offered (``sent``) and delivered (``received``).

    ``achieved_rate`` is the rate the generator actually sent at (same unit as the offered
    rate), if known. ``extra`` carries anything else worth logging (latency, reordering).
    """

    sent: int
    received: int
    achieved_rate: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return max(0, self.sent - self.received)

    @property
    def loss_fraction(self) -> float:
        """Lost / sent; a trial that sent nothing counts as total loss."""
        return self.lost / self.sent if self.sent > 0 else 1.0


@dataclass
class Trial:
    """A log entry: the offered rate, its result, and whether it passed (and why not)."""

    rate: float
    result: TrialResult
    passed: bool
    reason: str


@dataclass
class LossFreeResult:
    """The highest passing rate (None if even ``lo`` failed) and every trial, in order."""

    rate: float | None
    trials: list[Trial]
    lo: float
    hi: float
    tolerance: float
    precision: float
    generator_limited: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for t, src in zip(d["trials"], self.trials, strict=True):
            t["loss_fraction"] = src.result.loss_fraction
        return d


def loss_free_rate(
    trial: Callable[[float], TrialResult],
    lo: float,
    hi: float,
    *,
    tolerance: float = 0.001,
    precision: float = 0.02,
    min_offered: float = 0.95,
    max_trials: int = 40,
    log: Callable[[Trial], None] | None = None,
) -> LossFreeResult:
    """Binary-search the highest rate in ``[lo, hi]`` whose loss fraction is <= ``tolerance``.

    Args:
        trial: runs one trial at the given offered rate and reports what happened.
        lo, hi: the search range (any rate unit the trial understands; 0 < lo <= hi).
        tolerance: largest acceptable loss fraction (0.001 = 0.1 %; 0 = strictly no loss).
        precision: stop when failing and passing rates are within this relative distance.
        min_offered: a trial whose achieved rate is below ``min_offered * rate`` fails as
            generator-limited.
        max_trials: upper bound on the number of trials.
        log: called with each :class:`Trial` as soon as it is done (progress output).
    """
    if not 0 < lo <= hi:
        raise TrafficError(f"need 0 < lo <= hi, got lo={lo}, hi={hi}")
    if not 0 <= tolerance < 1:
        raise TrafficError("tolerance is a loss fraction in [0, 1)")
    if precision <= 0:
        raise TrafficError("precision must be positive")
    if max_trials < 1:
        raise TrafficError("max_trials must be >= 1")
    out = LossFreeResult(None, [], lo, hi, tolerance, precision)

    def run(rate: float) -> bool:
        res = trial(rate)
        reason = ""
        if res.loss_fraction > tolerance:
            reason = f"loss {res.loss_fraction:.3%} > {tolerance:.3%}"
        if res.achieved_rate is not None and res.achieved_rate < min_offered * rate:
            out.generator_limited = True
            reason = (reason + "; " if reason else "") + (
                f"generator-limited (achieved {res.achieved_rate:.6g} < "
                f"{min_offered:g} x {rate:.6g})"
            )
        t = Trial(rate, res, not reason, reason)
        out.trials.append(t)
        if log is not None:
            log(t)
        return t.passed

    if run(hi):
        out.rate = hi
        return out
    if lo == hi or len(out.trials) >= max_trials or not run(lo):
        return out
    good, bad = lo, hi
    while bad > good * (1 + precision) and len(out.trials) < max_trials:
        mid = (good + bad) / 2
        if run(mid):
            good = mid
        else:
            bad = mid
    out.rate = good
    return out


def trial_from_results(gen: Any, sink: Any) -> TrialResult:
    """A :class:`TrialResult` from a :class:`~routebricks.traffic.gen.GenResult` and the
    :class:`~routebricks.traffic.sink.SinkResult` of the same trial (rates in pps).

    Offered = frames the generator handed to the device; delivered = distinct probe frames
    the sink saw (duplicates not counted). Frames the generator's own device refused
    (``busy_drops``) lower the achieved rate instead of counting as loss.
    """
    return TrialResult(
        sent=int(gen.sent),
        received=int(sink.received - sink.duplicates),
        achieved_rate=float(gen.pps),
        extra={
            "busy_drops": int(gen.busy_drops),
            "ring_drops": int(sink.ring_drops),
            "reorder_fraction": float(sink.reorder_fraction),
            "latency_p50_ns": int(sink.latency.p50_ns),
            "latency_p99_ns": int(sink.latency.p99_ns),
        },
    )
