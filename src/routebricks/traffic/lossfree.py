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

Without a known upper end, :func:`loss_free_rate_probed` first runs one *unpaced* trial (the
generator as fast as it can): if nothing is lost there the device under test kept up with
everything the generator could offer, and that rate is the answer, a lower bound; otherwise
the search runs up to ``headroom`` (97 %) of it, the highest rate the generator paces
reliably.

Trials on real traffic: :func:`agents_trial` runs each one on a generator and a sink agent
(:mod:`~routebricks.traffic.agents`, processes in any namespace) the way
``benchmarks/veth_forwarding.py`` does -- start the sink, send for a fixed time at the rate,
let the sink count ``settle`` seconds more, stop it -- and :func:`trial_from_results` turns
the two reports into a :class:`TrialResult`. ``routebricks lossfree`` is the command.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from routebricks.traffic.frames import TrafficError

if TYPE_CHECKING:
    from routebricks.traffic.agents import GenAgent, SinkAgent

__all__ = [
    "LossFreeResult",
    "Trial",
    "TrialResult",
    "agents_trial",
    "loss_free_rate",
    "loss_free_rate_probed",
    "trial_from_results",
]


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
    """The highest passing rate (None if even ``lo`` failed) and every trial, in order.

    ``probe`` is the unpaced trial of :func:`loss_free_rate_probed` (its ``rate`` is what
    the generator reached), None for a plain search.
    """

    rate: float | None
    trials: list[Trial]
    lo: float
    hi: float
    tolerance: float
    precision: float
    generator_limited: bool = False
    probe: Trial | None = None

    @property
    def lower_bound(self) -> bool:
        """Whether ``rate`` only bounds the loss-free rate from below: nothing above it
        failed for loss -- the top of the range passed, or the lowest failing trial above it
        failed only because the generator could not offer its rate."""
        if self.rate is None:
            return False
        above = [t for t in self.trials if not t.passed and t.rate > self.rate]
        if not above:
            return True
        return min(above, key=lambda t: t.rate).result.loss_fraction <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for t, src in zip(d["trials"], self.trials, strict=True):
            t["loss_fraction"] = src.result.loss_fraction
        if self.probe is not None:
            d["probe"]["loss_fraction"] = self.probe.result.loss_fraction
        d["lower_bound"] = self.lower_bound
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


def loss_free_rate_probed(
    trial: Callable[[float | None], TrialResult],
    lo: float,
    *,
    headroom: float = 0.97,
    tolerance: float = 0.001,
    precision: float = 0.02,
    min_offered: float = 0.95,
    max_trials: int = 40,
    log: Callable[[Trial], None] | None = None,
) -> LossFreeResult:
    """:func:`loss_free_rate` up to what the generator can offer, found by one unpaced trial.

    ``trial(None)`` sends as fast as the generator can. If that lost at most ``tolerance``,
    the answer is the rate it reached (``generator_limited``: a lower bound) and no search
    runs; otherwise the search covers ``[min(lo, hi), hi]`` with ``hi = headroom x`` that
    rate. The probe is logged (``log``) first and kept as ``probe``; it counts towards
    ``max_trials``.
    """
    if not 0 < headroom <= 1:
        raise TrafficError("headroom must be in (0, 1]")
    if lo <= 0:
        raise TrafficError(f"need lo > 0, got lo={lo}")
    if not 0 <= tolerance < 1:
        raise TrafficError("tolerance is a loss fraction in [0, 1)")
    res = trial(None)
    top = res.achieved_rate or 0.0
    if top <= 0:
        reason = "nothing was sent"
    elif res.loss_fraction > tolerance:
        reason = f"loss {res.loss_fraction:.3%} > {tolerance:.3%}"
    else:
        reason = ""
    ok = not reason
    probe = Trial(top, res, ok, reason)
    if log is not None:
        log(probe)
    if ok or max_trials < 2 or top <= 0:
        return LossFreeResult(top if ok else None, [], lo, top, tolerance, precision,
                              generator_limited=ok, probe=probe)
    hi = headroom * top
    out = loss_free_rate(trial, min(lo, hi), hi, tolerance=tolerance, precision=precision,
                         min_offered=min_offered, max_trials=max_trials - 1, log=log)
    out.probe = probe
    return out


def _field(x: Any, name: str) -> Any:
    return x[name] if isinstance(x, Mapping) else getattr(x, name)


def trial_from_results(gen: Any, sink: Any) -> TrialResult:
    """A :class:`TrialResult` from a :class:`~routebricks.traffic.gen.GenResult` and the
    :class:`~routebricks.traffic.sink.SinkResult` of the same trial, or their ``to_dict()``
    (what the agents answer); rates in pps.

    Offered = every frame the generator handed to its device, refused ones included
    (``busy_drops``: ENOBUFS/EAGAIN; on a veth that is the next hop's input backlog being
    full, i.e. the frame was dropped there), over the sending time: the achieved rate is the
    pace the generator kept. Delivered = distinct probe frames the sink saw (duplicates not
    counted). This is how ``benchmarks/veth_forwarding.py`` counts.
    """
    attempted = int(_field(gen, "attempted"))
    elapsed = float(_field(gen, "elapsed_s"))
    lat = _field(sink, "latency")
    return TrialResult(
        sent=attempted,
        received=int(_field(sink, "received")) - int(_field(sink, "duplicates")),
        achieved_rate=attempted / elapsed if elapsed > 0 else 0.0,
        extra={
            "sent": int(_field(gen, "sent")),
            "busy_drops": int(_field(gen, "busy_drops")),
            "ring_drops": int(_field(sink, "ring_drops")),
            "reorder_fraction": float(_field(sink, "reorder_fraction")),
            "latency_p50_ns": int(_field(lat, "p50_ns")),
            "latency_p99_ns": int(_field(lat, "p99_ns")),
        },
    )


def agents_trial(
    gen: GenAgent,
    sink: SinkAgent,
    *,
    seconds: float,
    kp: int = 64,
    settle: float = 0.1,
    before: Callable[[float | None], None] | None = None,
) -> Callable[[float | None], TrialResult]:
    """A trial function on two agents (the generator already configured): start the sink,
    send ``seconds`` at the rate (pps; None: as fast as possible) in batches of ``kp``, let
    the sink count ``settle`` seconds more (frames later than that count as lost), stop it.
    ``before(rate)`` is called as each trial starts (progress output)."""
    if seconds <= 0:
        raise TrafficError("trial seconds must be positive")

    def trial(rate: float | None) -> TrialResult:
        if before is not None:
            before(rate)
        sink.start()
        try:
            g = gen.send(rate=rate, duration=seconds, kp=kp)
        except BaseException:
            with contextlib.suppress(Exception):
                sink.stop()
            raise
        time.sleep(settle)
        return trial_from_results(g, sink.stop())

    return trial
