"""Packet trace, as VPP's ``trace add``: the next N packets' path through the elements.

Writing the global ``trace`` handler (``N``; ``0`` or ``clear`` to stop) wraps every
element's push and pull. A batch that reaches an element without a ``trace`` annotation
column gets one, and its first packets, while the budget lasts, get trace numbers; the
column rides along with the packets (selected, split, concatenated like any annotation).
Every element a traced packet reaches records its port, length and first bytes; a drop
(:meth:`Element.drop` with the batch) records the reason. Reading ``trace`` renders it.

Cost: nothing while no trace was asked for; after, one dictionary lookup per element call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from routebricks.engine.element import Element
    from routebricks.engine.router import Router
    from routebricks.packet.batch import PacketBatch

#: Bytes of each packet shown per step.
HEAD = 20
#: Most packets one trace follows (a trace is for reading, not for capture).
MAX_PACKETS = 10_000
#: Steps kept per packet (a packet in a loop stops being followed after that).
MAX_STEPS = 64


@dataclass
class Step:
    t: float  # seconds since the trace started
    element: str
    klass: str
    how: str  # "in 0" (pushed to input 0), "out 1" (pulled from output 1), "drop"
    length: int
    head: bytes
    reason: str = ""


class Tracer:
    def __init__(self, router: Router, n: int) -> None:
        self.router = router
        self.budget = n
        self.asked = n
        self.next_id = 1
        self.start = time.monotonic()
        self.steps: dict[int, list[Step]] = {}
        self.origin: dict[int, str] = {}  # where a packet was first seen coming from
        self._saved: dict[str, tuple[Any, Any]] = {}

    # -- turning it on and off
    def attach(self) -> None:
        for e in self.router.elements.values():
            self._saved[e.name] = (e.push, e.pull)
            e.push = self._wrap_push(e, e.push)  # type: ignore[method-assign]
            e.pull = self._wrap_pull(e, e.pull)  # type: ignore[method-assign]
        self.router._bind()

    def detach(self) -> None:
        for e in self.router.elements.values():
            saved = self._saved.get(e.name)
            if saved is not None:
                e.push, e.pull = saved  # type: ignore[method-assign]
        self._saved.clear()
        self.router._bind()

    # -- recording
    def _ids(self, batch: PacketBatch, origin: str) -> np.ndarray:
        col = batch.annos.get("trace")
        if col is None:
            col = np.zeros(len(batch), np.int32)
            k = min(self.budget, len(batch))
            if k > 0:
                col[:k] = np.arange(self.next_id, self.next_id + k, dtype=np.int32)
                for pid in range(self.next_id, self.next_id + k):
                    self.origin[pid] = origin
                self.next_id += k
                self.budget -= k
            batch.annos["trace"] = col
        return col

    def _record(self, e: Element, batch: PacketBatch, how: str, reason: str = ""
                ) -> list[tuple[int, Step]]:
        if how.startswith("in "):
            origin = ", ".join(self.router.peers(e, "input", int(how[3:]))) or "?"
        else:
            origin = f"{e.name} [{how[4:]}]"
        ids = self._ids(batch, origin)
        if not ids.any():
            return []
        t = time.monotonic() - self.start
        out = []
        for i in np.flatnonzero(ids):
            steps = self.steps.setdefault(int(ids[i]), [])
            if len(steps) < MAX_STEPS:
                off, n = int(batch.off[i]), int(batch.length[i])
                step = Step(t, e.name, type(e).__name__, how, n,
                            bytes(batch.pool[off:off + min(n, HEAD)]), reason)
                steps.append(step)
                out.append((int(ids[i]), step))
        return out

    def _wrap_push(self, e: Element, push: Any) -> Any:
        def traced_push(port: int, batch: PacketBatch) -> None:
            if not len(batch):
                push(port, batch)
                return
            seen = self._record(e, batch, f"in {port}")
            before = dict(e.drops) if seen else None
            push(port, batch)
            if before is not None and e.drops != before:
                # Dropped here, counted without the batch: the reasons whose counts grew.
                grew = [r for r, n in e.drops.items() if n > before.get(r, 0)]
                t = time.monotonic() - self.start
                for pid, step in seen:
                    steps = self.steps[pid]
                    if steps[-1] is step:  # went no further
                        reason = grew[0] if len(grew) == 1 else "one of: " + "; ".join(grew)
                        steps.append(Step(t, e.name, step.klass, "drop", step.length, b"",
                                          reason))
        return traced_push

    def _wrap_pull(self, e: Element, pull: Any) -> Any:
        def traced_pull(port: int) -> PacketBatch | None:
            b = pull(port)
            if b is not None and len(b):
                self._record(e, b, f"out {port}")
            return b
        return traced_pull

    def dropped(self, e: Element, batch: PacketBatch, reason: str) -> None:
        if batch.annos.get("trace") is not None:
            self._record(e, batch, "drop", reason)

    # -- reading
    def render(self) -> str:
        done = self.asked - self.budget
        head = (f"trace: {done} of {self.asked} packets"
                + (" (waiting for more)" if self.budget else ""))
        lines = [head]
        for pid in sorted(self.steps):
            steps = self.steps[pid]
            lines.append(f"packet {pid} (from {self.origin.get(pid, '?')}):")
            width = max(len(f"{s.element} :: {s.klass}") for s in steps)
            for s in steps:
                what = f"{s.element} :: {s.klass}"
                if s.how == "drop":
                    lines.append(f"  {s.t * 1e3:10.3f} ms  {what:<{width}}  dropped: {s.reason}")
                    continue
                lines.append(f"  {s.t * 1e3:10.3f} ms  {what:<{width}}  {s.how:<6} "
                             f"{s.length:5d} B  {s.head.hex()}")
            last = steps[-1]
            if last.how != "drop" and len(steps) < MAX_STEPS:
                e = self.router.elements.get(last.element)
                if e is not None and e.noutputs and not getattr(e, "HOLDS_PACKETS", False):
                    lines.append(f"  {'':13}  (not seen after {last.element}: held, or "
                                 "dropped without a reason)")
        return "\n".join(lines)


def set_trace(router: Router, value: str) -> None:
    """The ``trace`` write handler: ``N`` packets from now; ``0`` or ``clear`` stops."""
    from routebricks.errors import HandlerError

    text = value.strip()
    if text in ("0", "clear", "off"):
        n = 0
    else:
        try:
            n = int(text)
        except ValueError:
            raise HandlerError(f"trace: expected a number of packets (1 to {MAX_PACKETS}) "
                               f"or 'clear', not {text[:40]!r}") from None
        if not 0 <= n <= MAX_PACKETS:
            raise HandlerError(f"trace: {n} packets: choose 1 to {MAX_PACKETS}")
    if router.tracer is not None:
        router.tracer.detach()
        router.tracer = None
    if n:
        router.tracer = Tracer(router, n)
        router.tracer.attach()


def read_trace(router: Router) -> str:
    if router.tracer is None:
        return "trace: off (write the trace handler: 'routebricks trace N')"
    return router.tracer.render()
