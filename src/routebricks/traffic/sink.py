"""The measuring sink: counts probe frames per flow -- loss, reordering, latency, rate.

A :class:`Sink` reads an interface with an :class:`~routebricks.io.afpacket.RxRing`
(``TPACKET_V3``) and feeds each batch to a :class:`FlowAccounting`, which finds the probe of
every frame (:func:`~routebricks.traffic.frames.parse_probes`) and updates per-flow state in
one numba pass per batch. Frames without a probe (ARP, IPv6, someone else's traffic) are
counted as ``other`` and otherwise ignored.

Definitions (per flow, in arrival order; the generator numbers each flow 0, 1, 2, ...):

``received``
    probe frames that arrived (duplicates included).
``duplicates``
    frames whose sequence number equals the highest one already seen for the flow.
``reordered``
    frames whose sequence number is *lower* than the highest already seen for the flow:
    they were overtaken by a later frame of the same flow. ``reorder_fraction`` =
    reordered / received. ``reordered_sequences`` counts maximal runs of consecutive
    reordered frames of a flow, the paper's unit (§6.2): flow order <p1, p4, p2, p3, p5> has
    two reordered frames (p2, p3) forming one reordered sequence.
``expected``
    ``expect`` when given (the generator's sent count), otherwise, from the sequence
    numbers, the sum over flows of (highest sequence number + 1). Sequence gaps cannot
    reveal frames lost at the very end of a flow, which is why ``expect`` is better when
    known.
``lost``
    ``max(0, expected - (received - duplicates))``; ``loss_fraction`` = lost / expected.
    ``lost_seq`` is always the sequence-gap estimate, whatever ``expect`` says.
``latency``
    kernel receive time of the frame (``tp_sec``/``tp_nsec`` of the ring, CLOCK_REALTIME)
    minus the send time in its probe (``time.time_ns()`` just before the generator's batch
    went out). Both ends use one clock because everything runs on one machine. It includes
    the time the generator's ``sendmmsg`` took to reach the frame within its batch.
    Percentiles come from a log-linear histogram (64 sub-buckets per power of two, at most
    1.6 % relative error); min, max and mean are exact.
``pps`` / ``bps``
    over the arrival span, first to last probe frame (``(received - 1) / span``); bits
    are frame bits with FCS, like the generator's.
``ring_drops``
    frames the kernel could not put in the ring (the sink was too slow); they show up as
    loss too, so a loss measurement with ``ring_drops > 0`` measured the sink.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numba
import numpy as np

from routebricks.closing import Closing
from routebricks.io.afpacket import RxRing
from routebricks.io.afpacket import warmup as _af_warmup
from routebricks.traffic import frames as _fr
from routebricks.traffic.frames import FCS_LEN, TrafficError, parse_probes
from routebricks.traffic.units import mpps_text

__all__ = ["FlowAccounting", "LatencyStats", "Sink", "SinkResult"]

#: Latency histogram: values < 128 ns exact, then 64 buckets per power of two.
HIST_SUB = 64
HIST_BUCKETS = 64 * 58
#: Flow ids at or above this are counted as ``flow_overflow`` and not tracked.
DEFAULT_MAX_FLOWS = 1 << 22


# --------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def _hist_index(v: int) -> int:  # pragma: no cover - compiled
    if v < 2 * HIST_SUB:
        return v
    shift = 0
    x = v
    while x >= 2 * HIST_SUB:
        x >>= 1
        shift += 1
    return shift * HIST_SUB + x


@numba.njit(cache=True, nogil=True)
def _account(
    ok: np.ndarray,
    flow: np.ndarray,
    seq: np.ndarray,
    txts: np.ndarray,
    rxts: np.ndarray,
    wire: np.ndarray,
    max_seq: np.ndarray,
    pkts: np.ndarray,
    nbytes: np.ndarray,
    reord: np.ndarray,
    reord_seqs: np.ndarray,
    dups: np.ndarray,
    in_run: np.ndarray,
    hist: np.ndarray,
    scal: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Update per-flow state with one batch, in arrival order.

    ``scal``: [0] probes, [1] frame bytes, [2] latency min, [3] latency max, [4] latency sum,
    [5] negative latencies, [6] first rx ns, [7] last rx ns, [8] other frames,
    [9] flow overflow, [10] duplicates.
    """
    nflows = max_seq.shape[0]
    for i in range(ok.shape[0]):
        if not ok[i]:
            scal[8] += 1
            continue
        f = flow[i]
        if f >= nflows:
            scal[9] += 1
            continue
        s = seq[i]
        m = max_seq[f]
        if s > m:
            max_seq[f] = s
            in_run[f] = 0
        elif s == m:
            dups[f] += 1
            scal[10] += 1
            in_run[f] = 0
        else:
            reord[f] += 1
            if in_run[f] == 0:
                reord_seqs[f] += 1
                in_run[f] = 1
        pkts[f] += 1
        nbytes[f] += wire[i]
        scal[0] += 1
        scal[1] += wire[i]
        r = rxts[i]
        if scal[6] == 0 or r < scal[6]:
            scal[6] = r
        if r > scal[7]:
            scal[7] = r
        lat = r - txts[i]
        if lat < 0:
            scal[5] += 1
            lat = 0
        if lat < scal[2]:
            scal[2] = lat
        if lat > scal[3]:
            scal[3] = lat
        scal[4] += lat
        hist[_hist_index(lat)] += 1


def _bucket_bounds(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower bound and width (ns) of histogram buckets."""
    idx = np.asarray(idx, np.int64)
    small = idx < 2 * HIST_SUB
    shift = np.where(small, 0, idx // HIST_SUB - 1)
    mant = np.where(small, idx, idx % HIST_SUB + HIST_SUB)
    return mant << shift, np.int64(1) << shift


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------
@dataclass
class LatencyStats:
    """One-way latency in nanoseconds over ``count`` probe frames."""

    count: int = 0
    min_ns: int = 0
    mean_ns: float = 0.0
    p50_ns: int = 0
    p99_ns: int = 0
    max_ns: int = 0
    negative: int = 0


@dataclass
class SinkResult:
    """What the sink measured (see the module docstring for every definition)."""

    received: int
    frame_bytes: int
    other: int
    flows_seen: int
    duplicates: int
    reordered: int
    reordered_sequences: int
    reorder_fraction: float
    expected: int
    lost: int
    loss_fraction: float
    lost_seq: int
    expect: int | None
    latency: LatencyStats
    pps: float
    bps: float
    span_s: float
    elapsed_s: float
    ring_drops: int = 0
    flow_overflow: int = 0
    stop_reason: str = ""
    interface: str = ""
    per_flow: list[dict[str, int]] | None = field(default=None)

    @property
    def mpps(self) -> float:
        return self.pps / 1e6

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mpps"] = self.mpps
        if d["per_flow"] is None:
            del d["per_flow"]
        return d


# --------------------------------------------------------------------------
# Accounting
# --------------------------------------------------------------------------
class FlowAccounting:
    """Per-flow counters for probe frames, updated a batch at a time.

    Feed frames with :meth:`update_frames` (a received batch) or already parsed columns
    with :meth:`update`; read the totals with :meth:`result`. Flow ids index arrays that
    grow (doubling) as larger ids appear, up to ``max_flows``.
    """

    # Per-flow state, indexed by flow id: highest sequence number seen (-1: none), frames,
    # frame bytes, reordered frames, reordered sequences, duplicates, "in a reordered run".
    max_seq: np.ndarray
    pkts: np.ndarray
    nbytes: np.ndarray
    reord: np.ndarray
    reord_seqs: np.ndarray
    dups: np.ndarray
    in_run: np.ndarray

    def __init__(self, flows_hint: int = 64, max_flows: int = DEFAULT_MAX_FLOWS) -> None:
        self.max_flows = max_flows
        self._alloc(max(1, min(flows_hint, max_flows)))
        self.hist = np.zeros(HIST_BUCKETS, np.int64)
        self.scal = np.zeros(11, np.int64)
        self.scal[2] = np.iinfo(np.int64).max

    def _alloc(self, n: int) -> None:
        """Make the per-flow arrays ``n`` long, keeping what they hold."""

        def grown(name: str, dtype: type, fill: int = 0) -> np.ndarray:
            new: np.ndarray = np.full(n, fill, dtype)
            old = self.__dict__.get(name)
            if old is not None:
                new[: old.shape[0]] = old
            return new

        self.max_seq = grown("max_seq", np.int64, -1)
        self.pkts = grown("pkts", np.int64)
        self.nbytes = grown("nbytes", np.int64)
        self.reord = grown("reord", np.int64)
        self.reord_seqs = grown("reord_seqs", np.int64)
        self.dups = grown("dups", np.int64)
        self.in_run = grown("in_run", np.uint8)

    @property
    def capacity(self) -> int:
        return int(self.max_seq.shape[0])

    def update_frames(
        self,
        pool: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        rx_ns: np.ndarray | int,
    ) -> int:
        """Account a batch of received frames (lengths without FCS); returns probes found."""
        ok, flow, seq, txts = parse_probes(pool, offsets, lengths)
        wire = np.asarray(lengths, np.int64) + FCS_LEN
        self.update(flow, seq, txts, rx_ns, wire, ok)
        return int(np.count_nonzero(ok))

    def update(
        self,
        flow: np.ndarray,
        seq: np.ndarray,
        tx_ns: np.ndarray,
        rx_ns: np.ndarray | int,
        frame_bytes: np.ndarray | int,
        ok: np.ndarray | None = None,
    ) -> None:
        """Account parsed probes in arrival order (``frame_bytes`` with FCS)."""
        flow = np.asarray(flow, np.int64)
        n = flow.shape[0]
        if n == 0:
            return
        okv = np.ones(n, np.bool_) if ok is None else np.ascontiguousarray(ok, np.bool_)
        top = int(flow[okv].max()) if okv.any() else -1
        if okv.any() and int(flow[okv].min()) < 0:
            raise ValueError("flow ids must be >= 0")
        if top >= self.capacity and self.capacity < self.max_flows:
            self._alloc(min(self.max_flows, 1 << math.ceil(math.log2(top + 1))))
        _account(
            okv,
            np.ascontiguousarray(flow),
            _column(seq, n),
            _column(tx_ns, n),
            _column(rx_ns, n),
            _column(frame_bytes, n),
            self.max_seq,
            self.pkts,
            self.nbytes,
            self.reord,
            self.reord_seqs,
            self.dups,
            self.in_run,
            self.hist,
            self.scal,
        )

    @property
    def received(self) -> int:
        return int(self.scal[0])

    def unique(self) -> int:
        """Probe frames received, not counting duplicates."""
        return int(self.scal[0] - self.scal[10])

    def so_far(self) -> tuple[int, int, int, int]:
        """Received, lost by sequence gaps, expected by sequence numbers, reordered: the
        live figures (cheaper than :meth:`result`: no latency percentiles, no per flow)."""
        seen = self.max_seq >= 0
        expected = int((self.max_seq[seen] + 1).sum())
        return self.received, max(0, expected - self.unique()), expected, int(self.reord.sum())

    def latency(self) -> LatencyStats:
        n = int(self.hist.sum())
        if n == 0:
            return LatencyStats()
        cdf = np.cumsum(self.hist)
        lo, width = _bucket_bounds(np.arange(HIST_BUCKETS))
        mn, mx = int(self.scal[2]), int(self.scal[3])

        def pct(q: float) -> int:
            k = int(np.searchsorted(cdf, math.ceil(q * n)))
            mid = int(lo[k] + (width[k] - 1) // 2)
            return min(max(mid, mn), mx)

        return LatencyStats(
            count=n,
            min_ns=mn,
            mean_ns=float(self.scal[4]) / n,
            p50_ns=pct(0.50),
            p99_ns=pct(0.99),
            max_ns=mx,
            negative=int(self.scal[5]),
        )

    def per_flow(self) -> list[dict[str, int]]:
        """One row per flow seen: flow, packets, frame_bytes, highest seq, lost, reordered."""
        seen = np.flatnonzero(self.pkts)
        rows = []
        for f in seen.tolist():
            uniq = int(self.pkts[f] - self.dups[f])
            rows.append(
                {
                    "flow": f,
                    "packets": int(self.pkts[f]),
                    "frame_bytes": int(self.nbytes[f]),
                    "max_seq": int(self.max_seq[f]),
                    "lost_seq": max(0, int(self.max_seq[f]) + 1 - uniq),
                    "reordered": int(self.reord[f]),
                    "duplicates": int(self.dups[f]),
                }
            )
        return rows

    def result(
        self,
        *,
        expect: int | None = None,
        elapsed_s: float = 0.0,
        per_flow: bool = False,
        ring_drops: int = 0,
        stop_reason: str = "",
        interface: str = "",
    ) -> SinkResult:
        received = self.received
        uniq = self.unique()
        seen = self.max_seq >= 0
        from_seq = int((self.max_seq[seen] + 1).sum())
        expected = from_seq if expect is None else int(expect)
        lost = max(0, expected - uniq)
        reord = int(self.reord.sum())
        first, last = int(self.scal[6]), int(self.scal[7])
        span = (last - first) / 1e9 if received > 1 else 0.0
        pps = (received - 1) / span if span > 0 else 0.0
        mean_bytes = self.scal[1] / received if received else 0.0
        return SinkResult(
            received=received,
            frame_bytes=int(self.scal[1]),
            other=int(self.scal[8]),
            flows_seen=int(np.count_nonzero(self.pkts)),
            duplicates=int(self.scal[10]),
            reordered=reord,
            reordered_sequences=int(self.reord_seqs.sum()),
            reorder_fraction=reord / received if received else 0.0,
            expected=expected,
            lost=lost,
            loss_fraction=lost / expected if expected > 0 else 0.0,
            lost_seq=max(0, from_seq - uniq),
            expect=expect,
            latency=self.latency(),
            pps=pps,
            bps=float(pps * mean_bytes * 8),
            span_s=span,
            elapsed_s=elapsed_s,
            ring_drops=ring_drops,
            flow_overflow=int(self.scal[9]),
            stop_reason=stop_reason,
            interface=interface,
            per_flow=self.per_flow() if per_flow else None,
        )


# --------------------------------------------------------------------------
# The sink
# --------------------------------------------------------------------------
class Sink(Closing):
    """Receive on ``ifname`` (opened in the calling thread's netns) and account probe frames.

    Args:
        ifname: the interface.
        duration: stop after this many seconds (None: no limit).
        idle: stop once no probe frame arrived for this many seconds, after the first one
            (None: never).
        expect: the number of frames the generator sent; the sink stops as soon as it has
            this many distinct probe frames, and loss is counted against it.
        kp: frames taken out of the ring per call.
        flows_hint: initial size of the per-flow tables (they grow as needed).
        max_flows: flow ids at or above this are not tracked.
        block_size, block_count, timeout_ms: ring geometry (see RxRing); the default 32 MB
            ring holds about 200k 64-byte frames.
        promisc: put the interface in promiscuous mode (frames for other MACs on a real NIC).
        latency_clock: ``"kernel"`` (ring timestamps) or ``"user"`` (``time.time_ns()`` when
            a batch is taken out of the ring; includes the sink's own delay).
        progress: show live figures on stderr while running (frames, rate, loss and
            reordering so far): a rich live line on a terminal, else one plain line a second.
    """

    def __init__(
        self,
        ifname: str,
        *,
        duration: float | None = None,
        idle: float | None = None,
        expect: int | None = None,
        kp: int = 1024,
        flows_hint: int = 64,
        max_flows: int = DEFAULT_MAX_FLOWS,
        block_size: int = 1 << 20,
        block_count: int = 32,
        timeout_ms: int = 10,
        promisc: bool = False,
        latency_clock: str = "kernel",
        per_flow: bool = False,
        progress: bool = False,
    ) -> None:
        if duration is not None and duration <= 0:
            raise TrafficError("duration must be positive")
        if idle is not None and idle <= 0:
            raise TrafficError("idle must be positive")
        if expect is not None and expect < 0:
            raise TrafficError("expect must be >= 0")
        if latency_clock not in ("kernel", "user"):
            raise TrafficError("latency_clock must be 'kernel' or 'user'")
        self.ifname = ifname
        self.duration = duration
        self.idle = idle
        self.expect = expect
        self.kp = kp
        self.latency_clock = latency_clock
        self.want_per_flow = per_flow
        self.progress = progress
        self.acct = FlowAccounting(flows_hint, max_flows)
        self._stop = False
        _af_warmup()
        _fr.warmup()
        warmup()
        try:
            self.rx = RxRing(
                ifname,
                version=3,
                block_size=block_size,
                block_count=block_count,
                timeout_ms=timeout_ms,
                promisc=promisc,
            )
        except OSError as e:
            raise TrafficError(f"cannot open {ifname!r} for receiving: {e.strerror or e}") from None
        self._drops0 = self.rx.stats().tp_drops

    def stop(self) -> None:
        """Ask :meth:`run` to return (thread/signal safe)."""
        self._stop = True

    def close(self) -> None:
        self.rx.close()


    def drain(self) -> int:
        """Account whatever is in the ring now; returns frames taken."""
        total = 0
        user = self.latency_clock == "user"
        while True:
            pool, offs, lens, ts = self.rx.recv_batch(self.kp)
            n = offs.shape[0]
            if n == 0:
                return total
            self.acct.update_frames(pool, offs, lens, time.time_ns() if user else ts)
            total += n

    def run(self) -> SinkResult:
        """Receive until the duration, idle time or expected count is reached, or stop()."""
        mono = time.monotonic
        t0 = mono()
        deadline = None if self.duration is None else t0 + self.duration
        last_probe = None
        reason = "stopped"
        acct = self.acct
        ui = _Progress(self.ifname, t0) if self.progress else None
        next_ui = t0 if ui is None else t0 + ui.period
        try:
            while not self._stop:
                now = mono()
                if ui is not None and now >= next_ui:
                    ui.update(acct, now)
                    next_ui = now + ui.period
                if deadline is not None and now >= deadline:
                    reason = "duration"
                    break
                if self.expect is not None and acct.unique() >= self.expect:
                    reason = "expect"
                    break
                if (
                    self.idle is not None
                    and last_probe is not None
                    and (now - last_probe >= self.idle)
                ):
                    reason = "idle"
                    break
                wait = 0.05 if deadline is None else max(0.0, min(0.05, deadline - now))
                self.rx.wait(wait)
                before = acct.received
                self.drain()
                if acct.received != before:
                    last_probe = mono()
        except KeyboardInterrupt:
            reason = "interrupted"
        finally:
            if ui is not None:
                ui.close()
        elapsed = mono() - t0
        # Frames in a block the kernel has not retired yet wait at most timeout_ms.
        if reason in ("duration", "idle", "stopped"):
            self.rx.wait(0.02)
            self.drain()
        drops = self.rx.stats().tp_drops - self._drops0
        return acct.result(
            expect=self.expect,
            elapsed_s=elapsed,
            per_flow=self.want_per_flow,
            ring_drops=drops,
            stop_reason=reason,
            interface=self.ifname,
        )


class _Progress:
    """Live figures on stderr: a rich line redrawn 4 times a second on a terminal, else one
    plain line a second (for a log)."""

    def __init__(self, ifname: str, t0: float) -> None:
        from rich.console import Console

        self.ifname = ifname
        self.console = Console(stderr=True, highlight=False)
        self.live: Any = None
        self.period = 1.0
        if self.console.is_terminal:
            from rich.live import Live
            from rich.text import Text

            # Refreshed by update() only: no refresh thread competing for the GIL.
            self.live = Live(Text(""), console=self.console, transient=True, auto_refresh=False)
            self.live.start()
            self.period = 0.25
        self.last = (t0, 0)

    def update(self, acct: FlowAccounting, now: float) -> None:
        received, lost, expected, reordered = acct.so_far()
        t, n = self.last
        rate = (received - n) / (now - t) if now > t else 0.0
        self.last = (now, received)
        loss = lost / expected if expected else 0.0
        reord = reordered / received if received else 0.0
        figures = (
            f"{received:,} packets  {mpps_text(rate)[0]}  lost {lost:,} ({loss:.4%})  "
            f"reordered {reordered:,} ({reord:.4%})"
        )
        if self.live is None:
            print(f"sink {self.ifname}: {figures}", file=sys.stderr, flush=True)
            return
        from rich.text import Text

        line = Text.assemble(("sink ", "bold"), (self.ifname, "bold"), ": ", figures)
        if lost:
            base = len(line.plain) - len(figures)
            line.stylize(
                "yellow", base + figures.index("lost"), base + figures.index("  reordered")
            )
        self.live.update(line, refresh=True)

    def close(self) -> None:
        if self.live is not None:
            with contextlib.suppress(Exception):
                self.live.stop()


def _column(x: np.ndarray | int, n: int) -> np.ndarray:
    """A contiguous int64 column of length n (a scalar is repeated)."""
    a = np.asarray(x, np.int64)
    if a.ndim == 0:
        return np.full(n, int(a), np.int64)
    if a.shape != (n,):
        raise ValueError(f"column of shape {a.shape}, expected ({n},)")
    return np.ascontiguousarray(a)


def warmup() -> None:
    """Compile (or load from numba's cache) the accounting kernel with the types used."""
    a = FlowAccounting(1)
    one = np.zeros(1, np.int64)
    a.update(one, one, one, one, one, np.zeros(1, np.bool_))
    a.update(one, one, one, one, one, np.ones(1, np.bool_))
