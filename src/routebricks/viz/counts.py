"""Packets per connection of a running router, worked out from its per-element counts.

A running router counts per element, not per connection: the global ``stats`` handler (what
``routebricks top`` reads) gives each element's ``packets``, which the profiler counts where
the element is called — packets *pushed into* it, and packets *pulled out of* it — and a
source's ``count`` is what it emitted. So each element gives one equation over the
connections that meet it:

* ``packets(e) = Σ push connections into e + Σ pull connections out of e``;
* a source: its output connection carries its ``count``;
* an element that passes every packet to every output (``PASSES_ALL``: Counter, Null, Tee,
  Paint, Print) and dropped nothing: each output port carries what came in.

Solving the equations that have one unknown left, over and over, gives most connections
their number (a chain, a Tee's branches, both sides of a Queue behind a Counter or a
source). A connection the equations do not pin down stays unknown (``None``) rather than
guessed: an element with two push inputs says how many packets came in, not through which.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from routebricks.engine.element import PULL, PUSH
from routebricks.engine.router import Router
from routebricks.engine.source import Source
from routebricks.errors import RouteBricksError


@dataclass(frozen=True)
class RouterAddress:
    """How to reach a running router, as ``routebricks handler`` does: its control socket
    (``-u PATH``), its name (``--name``) or its TCP port (``-p``)."""

    socket_path: str | None = None
    name: str | None = None
    port: int | None = None

    def connect(self) -> Any:
        from routebricks.runtime.control import ControlClient

        if self.name is None and self.port is None:
            return ControlClient(self.socket_path)
        return ControlClient(self.socket_path, name=self.name, port=self.port)


@dataclass
class RouterCounts:
    """What a running router said: its ``stats`` rows by element, and its configuration."""

    rows: dict[str, dict[str, Any]]
    flat_config: str | None = None
    where: str = ""


def read_counts(router: RouterAddress, want_config: bool = False) -> RouterCounts:
    """Per-element counts (and, with ``want_config``, the flattened configuration) of a
    running router."""
    with router.connect() as c:
        where = str(c.path)  # the socket found, when none was named
        text = c.read("stats")
        config = c.read("flatconfig") if want_config else None
    try:
        rows = json.loads(text)
        by_name = {str(r["element"]): r for r in rows if isinstance(r, dict)}
        if not isinstance(rows, list) or len(by_name) != len(rows):
            raise ValueError
    except (ValueError, TypeError, KeyError):
        raise RouteBricksError(f"the router at {where} answered 'stats' with something "
                               "that is not per-element counts") from None
    return RouterCounts(by_name, config, where)


def edge_counts(router: Router, rows: Mapping[str, Mapping[str, Any]]) -> list[int | None]:
    """Packets that crossed each of ``router.connections`` (in order), ``None`` where the
    per-element counts in ``rows`` (``stats`` rows by element name) cannot tell."""
    conns = router.connections
    into: dict[str, list[int]] = {n: [] for n in router.elements}
    out_of: dict[str, list[int]] = {n: [] for n in router.elements}
    for i, c in enumerate(conns):
        if c.dst in into and c.src in out_of:
            into[c.dst].append(i)
            out_of[c.src].append(i)
    profiled = _profiled(router, rows)
    equations: list[tuple[dict[int, int], int]] = []  # {connection: coefficient}, total
    for name, e in router.elements.items():
        r = rows.get(name)
        if r is None:
            continue
        if isinstance(e, Source):
            if r.get("count") is not None:
                port0 = [i for i in out_of[name] if conns[i].sport == 0]
                equations.append(({i: 1 for i in port0}, _int(r["count"])))
        elif profiled:
            seen = [i for i in into[name] if _mode(e.input_modes, conns[i].dport) == PUSH]
            seen += [i for i in out_of[name] if _mode(e.output_modes, conns[i].sport) == PULL]
            equations.append(({i: 1 for i in seen}, _int(r.get("packets", 0))))
        if type(e).PASSES_ALL and not r.get("drops") and into[name]:
            for port in sorted({conns[i].sport for i in out_of[name]}):
                eq = {i: 1 for i in out_of[name] if conns[i].sport == port}
                for i in into[name]:
                    eq[i] = eq.get(i, 0) - 1
                equations.append((eq, 0))
    return _solve(len(conns), equations)


def _solve(n: int, equations: Iterable[tuple[dict[int, int], int]]) -> list[int | None]:
    """Repeatedly solve the equations left with one unknown. A value that comes out
    negative means the counts disagree (read while the router moved on, an element counted
    in a way we do not model): that connection stays unknown."""
    values: list[int | None] = [None] * n
    pending = [(eq, total) for eq, total in equations if eq]
    refused: set[int] = set()
    changed = True
    while changed:
        changed = False
        left = []
        for eq, total in pending:
            unknown = [i for i in eq if values[i] is None and i not in refused]
            if len(unknown) != 1:
                if unknown:
                    left.append((eq, total))
                continue
            i = unknown[0]
            if any(values[j] is None for j in eq if j != i):
                continue  # it depends on a refused value
            rest = total - sum(coef * (values[j] or 0) for j, coef in eq.items() if j != i)
            if rest % eq[i] or rest // eq[i] < 0:
                refused.add(i)
            else:
                values[i] = rest // eq[i]
            changed = True
        pending = left
    return values


def _profiled(router: Router, rows: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the router times its elements (``run -u`` does, unless ``--no-profile``):
    without the profiler, elements other than sources and devices count nothing."""
    if any(_int(r.get("self_ns", 0)) > 0 for r in rows.values()):
        return True
    moved = any(_int(r.get("count") or 0) > 0 or _int(r.get("packets", 0)) > 0
                for name, r in rows.items()
                if isinstance(router.elements.get(name), Source))
    return not moved  # nothing has moved yet: every count is 0, and rightly so


def _mode(modes: list[str], port: int) -> str | None:
    return modes[port] if port < len(modes) else None


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0
