"""The traffic generator: probe-carrying frames out of one interface at a target rate.

A :class:`Generator` builds a *schedule* of frames once (``pool_frames`` frames from
:func:`~routebricks.traffic.frames.build_frames`, packed in one pool) and then sends it over
and over with :class:`~routebricks.io.afpacket.TxRing` (``sendmmsg``: one system call per batch
of ``kp`` frames, zero copy from the pool). Before each batch goes out, one numba call writes
each frame's sequence number (the schedule's number plus the pass count times the flow's
frames per pass, so every flow counts 0, 1, 2, ... without gaps) and the send time
(``time.time_ns()``, the clock the sink compares kernel receive times with).

Pacing is a token bucket on ``time.monotonic_ns``: tokens (frames) accrue at the target rate,
up to a depth of ``max(2 * kp, 2 ms of traffic)``, so a short scheduling hiccup is caught up in
back-to-back batches but a long one is not turned into a burst. A batch goes out once enough
tokens for ``min(kp, 100 µs of traffic)`` frames are there, which keeps low rates smooth
(single frames) and high rates batched. Waits longer than 250 µs sleep; shorter ones spin.
Without a rate (``rate=None``, ``"max"``) batches go out back to back.

What is measured (:class:`GenResult`): frames handed to the kernel (``sent``), frames
refused because the device or socket was full (``busy_drops``: ENOBUFS/EAGAIN -- on a veth
that is the peer's backlog overflowing, so those frames are lost), the achieved rate over the
sending time, and the bit rate in frame bytes with FCS (see :mod:`~routebricks.traffic.frames`
for the size convention).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import re
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

from routebricks.closing import Closing
from routebricks.io.afpacket import TxMode, TxRing
from routebricks.io.afpacket import warmup as _af_warmup
from routebricks.traffic import frames as _fr
from routebricks.traffic.frames import (
    FrameSpec,
    TrafficError,
    build_frames,
    mean_frame_size,
    parse_size,
    stamp,
)

__all__ = ["GenResult", "Generator", "Rate", "interface_ipv4", "interface_mac", "parse_rate"]

SIOCGIFADDR = 0x8915
SIOCGIFHWADDR = 0x8927

#: Pacing quantum: a paced batch waits for at most this much traffic (then kp caps it).
PACING_QUANTUM_NS = 100_000
#: Waits longer than this sleep (the rest is spun, since sleep overshoots by ~50-100 µs).
SLEEP_THRESHOLD_NS = 250_000
SLEEP_MARGIN_NS = 150_000
#: Schedule pool limits.
#: Token bucket depth: this much traffic (or 2 batches, if more).
DEPTH_NS = 2_000_000
MAX_POOL_FRAMES = 1 << 22
MAX_POOL_BYTES = 256 << 20
#: A paced run that sent less than this fraction of its target rate fell short of it
#: (:attr:`GenResult.generator_limited`).
LIMITED_BELOW = 0.95


# --------------------------------------------------------------------------
# Rates
# --------------------------------------------------------------------------
_RATE_RE = re.compile(
    r"^\s*(?P<num>[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*(?P<mult>[kmgt]?)\s*"
    r"(?P<unit>pps|p/s|bps|b/s)?\s*$",
    re.IGNORECASE,
)
_MULT = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


@dataclass(frozen=True)
class Rate:
    """A target rate in packets (``unit="pps"``) or frame bits (``"bps"``) per second.

    Bits are frame bits with FCS, without preamble and gap (the traffic layer's convention).
    """

    value: float
    unit: Literal["pps", "bps"] = "pps"

    def pps(self, mean_size: float) -> float:
        """Frames per second for frames of ``mean_size`` bytes (FCS included) on average."""
        return self.value if self.unit == "pps" else self.value / (8.0 * mean_size)

    def __str__(self) -> str:
        for mult, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if self.value >= mult:
                return f"{self.value / mult:g}{prefix}{self.unit}"
        return f"{self.value:g}{self.unit}"


def parse_rate(text: str | float | Rate | None) -> Rate | None:
    """``"1Mpps"``, ``"250kpps"``, ``"500Mbps"``, ``"1.5Gbps"``, ``"20000"`` (pps) or a
    number (pps) -> :class:`Rate`; ``"max"``/None -> None (as fast as possible)."""
    if text is None or isinstance(text, Rate):
        return text
    if isinstance(text, int | float):
        if text <= 0:
            raise TrafficError(f"rate must be positive, not {text}")
        return Rate(float(text))
    if text.strip().lower() in ("max", "maximum", "inf"):
        return None
    m = _RATE_RE.match(text)
    if not m:
        raise TrafficError(
            f"bad rate {text!r} (want e.g. 1Mpps, 250kpps, 500Mbps, 2Gbps, 20000 or max)"
        )
    value = float(m["num"]) * _MULT[m["mult"].lower()]
    unit = (m["unit"] or "pps").lower()
    if value <= 0:
        raise TrafficError(f"rate must be positive, not {text!r}")
    return Rate(value, "bps" if unit in ("bps", "b/s") else "pps")


# --------------------------------------------------------------------------
# Interface addresses (ioctl in the calling thread's network namespace)
# --------------------------------------------------------------------------
def _ifreq(ifname: str, request: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        return fcntl.ioctl(s.fileno(), request, struct.pack("16s16s", ifname.encode(), b""))


def interface_mac(ifname: str) -> str:
    """The interface's MAC address (SIOCGIFHWADDR)."""
    raw = _ifreq(ifname, SIOCGIFHWADDR)[18:24]
    return ":".join(f"{b:02x}" for b in raw)


def interface_ipv4(ifname: str) -> str | None:
    """The interface's (primary) IPv4 address, or None if it has none (SIOCGIFADDR)."""
    try:
        raw = _ifreq(ifname, SIOCGIFADDR)[20:24]
    except OSError as e:
        if e.errno == errno.EADDRNOTAVAIL:
            return None
        raise
    return socket.inet_ntoa(raw)


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------
@dataclass
class GenResult:
    """What a generator run did (rates over ``elapsed_s``, the sending time)."""

    interface: str
    sent: int
    attempted: int
    busy_drops: int
    oversize_drops: int
    frame_bytes: int
    elapsed_s: float
    pps: float
    bps: float
    target_pps: float | None
    batches: int
    stop_reason: str
    flows: int
    size: str
    kp: int
    tx_mode: str

    @property
    def mpps(self) -> float:
        return self.pps / 1e6

    @property
    def attempted_pps(self) -> float:
        """Frames handed to the kernel per second, refused ones (``busy_drops``) included:
        the pace the send loop kept."""
        return self.attempted / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def generator_limited(self) -> bool:
        """A target was set and less than :data:`LIMITED_BELOW` of it went out: the send loop
        could not keep pace (its CPU), or the device refused frames (``busy_drops``)."""
        return (
            self.target_pps is not None
            and self.attempted > 0
            and self.pps < LIMITED_BELOW * self.target_pps
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mpps"] = self.mpps
        d["generator_limited"] = self.generator_limited
        return d


# --------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------
class Generator(Closing):
    """Send probe frames of ``spec`` out of ``ifname`` (opened in the calling thread's netns).

    Args:
        ifname: the interface.
        spec: what to send (:class:`~routebricks.traffic.frames.FrameSpec`). ``src_mac``
            and ``src_ip`` left None become the interface's own (or 198.18.0.1 if it has
            no IPv4 address).
        rate: target rate (:class:`Rate`, ``"1Mpps"``, ``"500Mbps"``, a number in pps), or
            None/``"max"`` for as fast as possible.
        count: frames to send (None: no limit).
        duration: seconds to send (None: no limit). With neither, :meth:`run` sends until
            :meth:`stop` or Ctrl-C.
        kp: frames per batch (one ``sendmmsg`` call).
        tx_mode: :class:`~routebricks.io.afpacket.TxRing` mode (None: its default).
        pool_frames: frames in the schedule (None: chosen from flows, sizes and kp).
        progress: show a rich progress bar on stderr (None: when stderr is a terminal).
    """

    def __init__(
        self,
        ifname: str,
        spec: FrameSpec | None = None,
        *,
        rate: Rate | str | float | None = None,
        count: int | None = None,
        duration: float | None = None,
        kp: int = 32,
        tx_mode: TxMode | None = None,
        pool_frames: int | None = None,
        progress: bool | None = None,
    ) -> None:
        if kp < 1:
            raise TrafficError("kp (frames per batch) must be >= 1")
        if count is not None and count < 0:
            raise TrafficError("count must be >= 0")
        if duration is not None and duration <= 0:
            raise TrafficError("duration must be positive")
        spec = spec or FrameSpec()
        self.ifname = ifname
        self.rate = parse_rate(rate)
        self.count = count
        self.duration = duration
        self.kp = kp
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._stop = False
        try:
            self.tx = TxRing(ifname, mode=tx_mode)
        except OSError as e:
            raise TrafficError(f"cannot open {ifname!r} for sending: {e.strerror or e}") from None
        try:
            self.spec = self._resolve(spec)
            longest = max(parse_size(self.spec.size)) - _fr.FCS_LEN
            if longest > self.tx.max_frame_len:
                raise TrafficError(
                    f"{longest + _fr.FCS_LEN}-byte frames do not fit the MTU of {ifname} "
                    f"({self.tx.mtu}: at most {self.tx.max_frame_len + _fr.FCS_LEN}-byte frames)"
                )
            self.mean_size = mean_frame_size(self.spec.size)
            self.target_pps = None if self.rate is None else self.rate.pps(self.mean_size)
            self._build(pool_frames)
            _af_warmup()
            _fr.warmup()
        except BaseException:
            self.tx.close()
            raise

    def _resolve(self, spec: FrameSpec) -> FrameSpec:
        changes: dict[str, Any] = {}
        if spec.src_mac is None:
            changes["src_mac"] = interface_mac(self.ifname)
        if spec.src_ip is None:
            changes["src_ip"] = interface_ipv4(self.ifname) or "198.18.0.1"
        return replace(spec, **changes) if changes else spec

    def _build(self, pool_frames: int | None) -> None:
        spec = self.spec
        period = math.lcm(spec.flows, len(parse_size(spec.size)))
        if pool_frames is None:
            # Whole periods (flows x size pattern) of at least 4 batches, if they fit; else
            # whole flow rounds (the size mix then restarts at each pass, off by < 1 pattern).
            m = period * -(-4 * self.kp // period)
            if m > MAX_POOL_FRAMES or m * self.mean_size > MAX_POOL_BYTES:
                m = spec.flows * -(-4 * self.kp // spec.flows)
            pool_frames = m
        if pool_frames < 1 or pool_frames * self.mean_size > 4 * MAX_POOL_BYTES:
            raise TrafficError(
                f"schedule of {pool_frames} frames does not fit in memory; use fewer flows"
            )
        fr = build_frames(spec, pool_frames)
        self.frames = fr
        self._pool = fr.batch.pool
        self._off = np.ascontiguousarray(fr.batch.off, np.int64)
        self._len = np.ascontiguousarray(fr.batch.length, np.int64)
        self._pos = self._off + _fr.PROBE_OFFSET
        self._seq0 = fr.seq.astype(np.uint32)
        self._step = fr.per_flow[fr.flow].astype(np.uint32)
        self._cum = np.concatenate(([0], np.cumsum(fr.size))).astype(np.int64)

    # -- control ------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to return after the current batch (thread/signal safe)."""
        self._stop = True

    def close(self) -> None:
        self.tx.close()


    # -- the send loop ------------------------------------------------------
    def run(self) -> GenResult:
        """Send until the count or duration is reached, :meth:`stop`, or Ctrl-C."""
        pool, off, lens, pos = self._pool, self._off, self._len, self._pos
        seq0, step, cum = self._seq0, self._step, self._cum
        m = int(off.shape[0])
        kp = self.kp
        count = self.count
        send = self.tx.send_batch
        mono = time.monotonic_ns
        wall = time.time_ns
        stamp_ = stamp
        paced = self.target_pps is not None
        rate_ns = (self.target_pps or 0.0) / 1e9
        min_batch = max(1, min(kp, int(rate_ns * PACING_QUANTUM_NS)))
        depth = max(2.0 * kp, rate_ns * DEPTH_NS)
        before = self.tx.stats()

        ui = _Progress(self) if self.progress else None
        j = npass = attempted = sent = batches = 0
        abytes = 0
        reason = "stopped"
        t0 = mono()
        deadline = None if self.duration is None else t0 + int(self.duration * 1e9)
        next_ui = t0
        tokens = float(min_batch)
        last = t0
        try:
            while not self._stop:
                want = kp if count is None else min(kp, count - attempted)
                if want <= 0:
                    reason = "count"
                    break
                now = mono()
                if deadline is not None and now >= deadline:
                    reason = "duration"
                    break
                if ui is not None and now >= next_ui:
                    ui.update(attempted, sent, now - t0)
                    next_ui = now + 200_000_000
                if paced:
                    tokens = min(depth, tokens + (now - last) * rate_ns)
                    last = now
                    need = min(want, min_batch)
                    if tokens < need:
                        wait = (need - tokens) / rate_ns
                        if deadline is not None:
                            wait = min(wait, deadline - now)
                        if wait > SLEEP_THRESHOLD_NS:
                            time.sleep((wait - SLEEP_MARGIN_NS) / 1e9)
                        continue
                    n = min(want, int(tokens), m - j)
                    tokens -= n
                else:
                    n = min(want, m - j)
                e = j + n
                stamp_(pool, pos[j:e], seq0[j:e], step[j:e], npass, wall())
                sent += send(pool, off[j:e], lens[j:e])
                attempted += n
                abytes += int(cum[e] - cum[j])
                batches += 1
                j = e
                if j == m:
                    j = 0
                    npass += 1
        except KeyboardInterrupt:
            reason = "interrupted"
        t1 = mono()
        if ui is not None:
            ui.close()
        after = self.tx.stats()
        elapsed = (t1 - t0) / 1e9
        frame_bytes = abytes if attempted == sent else int(abytes * sent / max(attempted, 1))
        return GenResult(
            interface=self.ifname,
            sent=sent,
            attempted=attempted,
            busy_drops=after.busy_drops - before.busy_drops,
            oversize_drops=after.oversize_drops - before.oversize_drops,
            frame_bytes=frame_bytes,
            elapsed_s=elapsed,
            pps=sent / elapsed if elapsed > 0 else 0.0,
            bps=frame_bytes * 8 / elapsed if elapsed > 0 else 0.0,
            target_pps=self.target_pps,
            batches=batches,
            stop_reason=reason,
            flows=self.spec.flows,
            size=str(self.spec.size),
            kp=kp,
            tx_mode=self.tx.mode,
        )


class _Progress:
    """A rich progress bar on stderr (by count, by duration, or open-ended)."""

    def __init__(self, gen: Generator) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.gen = gen
        self.by_count = gen.count is not None
        total: float | None = gen.count if self.by_count else gen.duration
        self.p = Progress(
            TextColumn("[bold]gen[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            auto_refresh=False,  # no refresh thread competing for the GIL; we refresh
        )
        self.task = self.p.add_task(gen.ifname, total=total, info="")
        self.p.start()

    def update(self, attempted: int, sent: int, elapsed_ns: int) -> None:
        secs = elapsed_ns / 1e9
        rate = sent / secs / 1e6 if secs > 0 else 0.0
        done = attempted if self.by_count else secs
        self.p.update(self.task, completed=done, info=f"{sent} sent  {rate:.3f} Mpps")
        self.p.refresh()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.p.stop()
