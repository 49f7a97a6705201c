"""Handler requests between the control plane and the data plane, and how the answers of
several workers combine into one.

The data plane never blocks on the control plane: a router polls its control endpoint
between batches and answers the requests waiting there (:func:`serve_request`), so a
handler write takes effect between two batches. The control socket's thread reaches a
router running in the same process through a :class:`ThreadEndpoint`. With several workers
the supervisor sends each request to every worker and :func:`combine` makes one answer of
theirs: counters are summed, drop tables merged by reason, other values taken from worker 0.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from routebricks.errors import NoSuchElement, NoSuchHandler, RouteBricksError

if TYPE_CHECKING:
    from routebricks.engine.element import Handler
    from routebricks.engine.router import Router

OK, SYNTAX, UNIMPLEMENTED, NO_ELEMENT, NO_HANDLER, HANDLER_ERROR = 200, 500, 501, 510, 511, 520


# ---------------------------------------------------------------------- requests
@dataclass
class Reply:
    code: int
    text: str  # a value for reads, a message otherwise

    @property
    def ok(self) -> bool:
        return self.code == OK


def serve_request(router: Router, kind: str, spec: str, value: str = "") -> Reply:
    """Answer one handler request in the router's own process (between batches)."""
    try:
        if kind in ("read", "read_each"):
            value = router.read_handler(spec)
            return Reply(OK, value if kind == "read" else f"worker 0: {value}")
        if kind == "write":
            router.write_handler(spec, value)
            return Reply(OK, f"Write handler '{spec}' OK")
        if kind == "checkread":
            h = find_handler(router, spec)
            return Reply(OK if h is None or h.read else NO_HANDLER, f"Read handler '{spec}'")
        if kind == "checkwrite":
            h = find_handler(router, spec)
            return Reply(OK if h is None or h.write else NO_HANDLER, f"Write handler '{spec}'")
        if kind == "stats":
            return Reply(OK, json.dumps(router.stats_rows()))
        if kind == "stop":
            router.request_stop(value or "stopped by the supervisor", force=True)
            return Reply(OK, "stopping")
    except NoSuchElement as e:
        return Reply(NO_ELEMENT, str(e))
    except NoSuchHandler as e:
        return Reply(NO_HANDLER, str(e))
    except RouteBricksError as e:
        return Reply(HANDLER_ERROR, str(e))
    return Reply(UNIMPLEMENTED, f"unknown request {kind!r}")


def find_handler(router: Router, spec: str) -> Handler | None:
    """The element handler ``spec`` (``element.handler``, parameters ignored) names; None
    for a global handler. Raises NoSuchElement / NoSuchHandler."""
    name = spec.strip().split(" ", 1)[0]
    if "." not in name:
        return None
    e, h = name.split(".", 1)
    return router.find(e).handler(h)


# ---------------------------------------------------------------------- combining workers
def combine(how: str, replies: Sequence[Reply]) -> Reply:
    """One answer from every worker's answer to a read, as the handler declares
    (``read_handler(..., combine=...)``): ``first`` worker 0's value, ``sum``/``max`` of
    numbers, ``merge`` of ``COUNT<TAB>KEY`` tables, ``stats`` the global stats rows."""
    bad = [r for r in replies if not r.ok]
    if bad:
        return bad[0]
    if len(replies) == 1 or how == "first":
        return replies[0]
    values = [r.text for r in replies]
    if how == "stats":
        return Reply(OK, json.dumps(merge_stats([json.loads(v) for v in values])))
    if how == "workers":  # each worker's own text, one after the other
        return Reply(OK, "\n".join(f"worker {w}: {v}" for w, v in enumerate(values)))
    if how in ("sum", "max"):
        nums = [_number(v) for v in values]
        if all(n is not None for n in nums):
            total = sum(nums) if how == "sum" else max(nums)  # type: ignore[type-var,arg-type]
            return Reply(OK, str(total) if isinstance(total, int) else f"{total:g}")
    if how == "merge":
        tables = [_count_table(v) for v in values]
        if all(t is not None for t in tables):
            merged: dict[str, int] = {}
            for t in tables:
                for key, n in t.items():  # type: ignore[union-attr]
                    merged[key] = merged.get(key, 0) + n
            return Reply(OK, "\n".join(f"{n}\t{k}" for k, n in sorted(merged.items())))
    return replies[0]


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def _count_table(text: str) -> dict[str, int] | None:
    out: dict[str, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        n, sep, key = line.partition("\t")
        if not sep or not n.isdigit():
            return None
        out[key] = out.get(key, 0) + int(n)
    return out


def merge_stats(per_worker: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The ``stats`` rows of several workers (or worker lifetimes) as one set of rows."""
    rows: dict[str, dict[str, Any]] = {}
    for worker in per_worker:
        for r in worker:
            t = rows.get(r["element"])
            if t is None:
                rows[r["element"]] = dict(r, drop_reasons=dict(r["drop_reasons"]))
                continue
            for k in ("calls", "packets", "drops", "self_ns"):
                t[k] = t.get(k, 0) + r.get(k, 0)
            if r.get("count") is not None:
                t["count"] = (t.get("count") or 0) + r["count"]
            for why, n in r["drop_reasons"].items():
                t["drop_reasons"][why] = t["drop_reasons"].get(why, 0) + n
    out = list(rows.values())
    for r in out:
        r["ns_per_packet"] = r["self_ns"] / r["packets"] if r["packets"] else 0.0
    return out
