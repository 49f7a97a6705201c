"""The profiler: push, pull and task calls wrapped to count calls, packets and self time
(time less the downstream calls), like VPP's ``show runtime``; and the per-element rows
that the summary, ``top`` and the metrics read."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from routebricks.engine.element import Element
from routebricks.errors import RouteBricksError

if TYPE_CHECKING:
    from routebricks.engine.router import Router


def instrument(router: Router, e: Element) -> None:
    """Wrap push/pull to count calls, packets and self time (time minus downstream calls),
    like VPP's ``show runtime``. Only when profiling; costs two clock reads per call."""
    e.self_ns = 0  # type: ignore[attr-defined]
    clock = time.perf_counter_ns
    orig_push, orig_pull = e.push, e.pull

    def push(port: int, batch: Any) -> None:
        saved = router._child_ns
        router._child_ns = 0
        t0 = clock()
        e.calls += 1
        e.packets += len(batch)
        try:
            orig_push(port, batch)
        finally:
            dt = clock() - t0
            e.self_ns += dt - router._child_ns  # type: ignore[attr-defined]
            router._child_ns = saved + dt

    def pull(port: int) -> Any:
        saved = router._child_ns
        router._child_ns = 0
        t0 = clock()
        try:
            b = orig_pull(port)
        finally:
            dt = clock() - t0
            e.self_ns += dt - router._child_ns  # type: ignore[attr-defined]
            router._child_ns = saved + dt
        if b is not None:
            e.calls += 1
            e.packets += len(b)
        return b

    e.push = push  # type: ignore[method-assign]
    e.pull = pull  # type: ignore[method-assign]
    if type(e).run_task is not Element.run_task:
        _instrument_task(router, e)


def _instrument_task(router: Router, e: Element) -> None:
    """A task that emits packets (a source, Unqueue) is never pushed to: count the
    batches its run_task sends out as its calls and packets (for FromDevice, the batches
    the ring hands over: the paper's kn), and its time less the downstream calls."""
    orig_task, orig_emit = e.run_task, e.emit
    clock = time.perf_counter_ns
    sent = [0]

    def emit(port: int, batch: Any) -> None:
        sent[0] += len(batch)
        orig_emit(port, batch)

    def run_task() -> bool:
        saved = router._child_ns
        router._child_ns = 0
        before = sent[0]
        t0 = clock()
        try:
            return orig_task()
        finally:
            dt = clock() - t0
            n = sent[0] - before
            if n:  # an idle poll is not a call: VPP counts the calls that had vectors
                e.calls += 1
                e.packets += n
                e.self_ns += dt - router._child_ns  # type: ignore[attr-defined]
            router._child_ns = saved + dt

    e.emit = emit  # type: ignore[method-assign]
    e.run_task = run_task  # type: ignore[method-assign]


def stats_rows(elements: Iterable[Element]) -> list[dict[str, Any]]:
    """One row per element: its profiler counters, drops by reason and count handler."""
    rows = []
    for e in elements:
        e.refresh_counters()
        rows.append(
            {
                "element": e.name,
                "class": type(e).__name__,
                "calls": e.calls,
                "packets": e.packets,
                "drops": sum(e.drops.values()),
                "self_ns": getattr(e, "self_ns", 0),
                "ns_per_packet": (getattr(e, "self_ns", 0) / e.packets) if e.packets else 0.0,
                "drop_reasons": dict(e.drops),
                "count": _count_of(e),
                "source": e.IS_SOURCE,
            }
        )
    return rows


def _count_of(e: Element) -> int | None:
    """The element's ``count`` read handler as a number, if it has one."""
    h = e.HANDLERS.get("count")
    if h is None or h.read is None:
        return None
    try:
        return int(e.read("count"))
    except (ValueError, RouteBricksError):
        return None
