"""Cycles of push and pull calls: refused when packets would certainly go round forever,
guarded at run time otherwise.

Pushing a batch calls the next element's ``push``, which may push on, and pulling calls the
previous element's ``pull``: the router runs on Python's stack. A cycle of such calls (a
push cycle with no Queue in it, a pull cycle, or both through an element such as PullTee)
recurses for as long as packets go round it. Click allows such cycles — its
``iprouter.click`` sends ICMP errors from after the route lookup back into it — because the
elements on them send most packets elsewhere. So:

* a cycle of elements that all pass every packet on (``PASSES_ALL``: Null, Counter, Tee,
  Paint, Print) can only loop: the router refuses it, naming the elements;
* any other cycle is allowed, and guarded: an element on it entered more than
  :data:`MAX_ROUNDS` times within one call (or a stack overflow on the way) stops the run
  with an error naming the cycle, instead of a 2000-line ``RecursionError``;
* a chain of calls longer than :data:`MAX_CHAIN` elements is refused (Python's stack would
  not hold it), and a long one raises Python's recursion limit as far as it needs.

A Queue breaks every cycle: it is pushed into and pulled from, and calls nothing itself
(except its optional drop output).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routebricks.engine.element import PUSH, Element
from routebricks.engine.graph import Connection
from routebricks.errors import ConfigError

if TYPE_CHECKING:
    from routebricks.engine.router import Router

#: How often one element may be re-entered within a single push or pull before the run is
#: stopped as a loop. Click's ICMP-error cycle re-enters the route table once or twice.
MAX_ROUNDS = 32
#: The longest chain of elements calling one another the router accepts.
MAX_CHAIN = 1000
#: Python frames one element adds to the stack in a chain (push, emit, a wrapper).
FRAMES_PER_ELEMENT = 4

Edge = tuple[str, Connection]  # (element called, the connection it is called through)


def call_graph(router: Router) -> dict[str, list[Edge]]:
    """Who calls whom: a push connection lets its source call its destination, a pull
    connection lets its destination call its source. An element called in any way may
    make any of its own calls (a pull on PullTee pushes a copy out of its output 1)."""
    calls: dict[str, list[Edge]] = {name: [] for name in router.elements}
    for c in router.connections:
        if router.elements[c.src].output_modes[c.sport] == PUSH:
            calls[c.src].append((c.dst, c))
        else:
            calls[c.dst].append((c.src, c))
    return calls


def components(nodes: list[str], calls: dict[str, list[Edge]]) -> list[list[str]]:
    """Strongly connected components (Tarjan's algorithm, without recursion: graphs may be
    large), in reverse topological order: a component's callees come before it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            succ = calls[v]
            if i < len(succ):
                work.append((v, i + 1))
                w = succ[i][0]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return out


def _has_cycle(comp: list[str], calls: dict[str, list[Edge]]) -> bool:
    return len(comp) > 1 or any(w == comp[0] for w, _ in calls[comp[0]])


def _cycle_from(start: str, members: set[str], calls: dict[str, list[Edge]]) -> list[Edge]:
    """A shortest cycle through ``start`` inside ``members``: the edges, in call order."""
    parent: dict[str, Edge | None] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        nxt = []
        for v in frontier:
            for w, c in calls[v]:
                if w not in members:
                    continue
                if w == start:
                    path = [(w, c)]
                    while v != start:
                        edge = parent[v]
                        assert edge is not None
                        path.append((v, edge[1]))
                        v = edge[0]
                    return path[::-1]
                if w not in seen:
                    seen.add(w)
                    parent[w] = (v, c)
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("no cycle in a strongly connected component")


def _describe(router: Router, start: str, path: list[Edge]) -> tuple[str, str]:
    """``("push cycle", "a -> b -> a")`` for a cycle found by :func:`_cycle_from`, from
    its element that comes first in the configuration."""
    modes = {router.elements[c.src].output_modes[c.sport] == PUSH for _, c in path}
    kind = ("push cycle" if modes == {True} else "pull cycle" if modes == {False}
            else "cycle of push and pull connections")
    names = [start] + [w for w, _ in path[:-1]]
    first = min(range(len(names)), key=lambda i: _order(router.elements[names[i]]))
    names = names[first:] + names[:first]
    return kind, " -> ".join([*names, names[0]])


def _order(e: Element) -> tuple[bool, str, int, int, str]:
    """Sort key: elements in configuration order, unplaced ones last."""
    p = e.pos
    return (p is None, p.file if p else "", p.line if p else 0, p.column if p else 0, e.name)


def _where(e: Element) -> str:
    return f"{e.name} ({e.pos})" if e.pos is not None else e.name


def certain_loops(router: Router, calls: dict[str, list[Edge]],
                  comps: list[list[str]]) -> list[ConfigError]:
    """Errors for the cycles made only of elements that pass every packet on."""
    errors = []
    for comp in comps:
        if not _has_cycle(comp, calls):
            continue
        passing = [n for n in comp if type(router.elements[n]).PASSES_ALL]
        if not passing:
            continue
        sub = {n: [(w, c) for w, c in calls[n] if w in passing] for n in passing}
        for inner in components(passing, sub):
            if not _has_cycle(inner, sub):
                continue
            start = min(inner, key=lambda n: _order(router.elements[n]))
            path = _cycle_from(start, set(inner), sub)
            kind, text = _describe(router, start, path)
            where = ", ".join(_where(router.elements[w]) for w, _ in path)
            what = "pull" if kind == "pull cycle" else "packet"
            errors.append(ConfigError(
                f"{kind} {text}: every {what} would go round it forever",
                path[-1][1].pos or router.elements[start].pos,
                f"on it: {where}; break it with a Queue, or with an element that sends "
                "packets elsewhere (a Classifier, a TTL check)",
            ))
    return errors


def guard_cycles(router: Router, calls: dict[str, list[Edge]], comps: list[list[str]]) -> None:
    """Install a re-entry guard on enough elements of each remaining cycle that every cycle
    has one: the targets of the back edges of a depth-first walk."""
    for comp in comps:
        if not _has_cycle(comp, calls):
            continue
        members = set(comp)
        for target in sorted(_back_edge_targets(comp, members, calls)):
            path = _cycle_from(target, members, calls)
            kind, text = _describe(router, target, path)
            _guard(router, router.elements[target], f"{kind} {text}")


def _back_edge_targets(comp: list[str], members: set[str],
                       calls: dict[str, list[Edge]]) -> set[str]:
    """Every cycle holds a back edge of a depth-first walk (without recursion)."""
    state: dict[str, int] = {}  # 1: on the walk's path, 2: finished
    targets: set[str] = set()
    for root in comp:
        if root in state:
            continue
        work = [(root, 0)]
        state[root] = 1
        while work:
            v, i = work.pop()
            succ = [w for w, _ in calls[v] if w in members]
            if i < len(succ):
                work.append((v, i + 1))
                w = succ[i]
                if state.get(w) == 1:
                    targets.add(w)
                elif w not in state:
                    state[w] = 1
                    work.append((w, 0))
            else:
                state[v] = 2
    return targets


def _guard(router: Router, e: Element, cycle: str) -> None:
    depth = [0]

    def loop_error() -> ConfigError:
        src = None
        if e.pos is not None and e.pos.file in router.graph.sources:
            lines = router.graph.sources[e.pos.file].split("\n")
            src = lines[e.pos.line - 1] if 0 < e.pos.line <= len(lines) else None
        return ConfigError(
            f"packets went round the {cycle} more than {MAX_ROUNDS} times in one call "
            f"(at {e.name}): a loop",
            e.pos,
            "packets that come back to where they were are sent round again: send them out "
            "of the cycle (e.g. a TTL check), or put a Queue in it",
            src,
        )

    def wrap(call: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any) -> Any:
            depth[0] += 1
            try:
                if depth[0] > MAX_ROUNDS:
                    raise loop_error()
                return call(*args)
            except RecursionError:
                if depth[0] == 1:  # the stack has unwound to the first entry: report there
                    raise loop_error() from None
                raise
            finally:
                depth[0] -= 1

        guarded.__self__ = e  # type: ignore[attr-defined] # Unqueue finds Queue.pull_upto by it
        return guarded

    e.push = wrap(e.push)  # type: ignore[method-assign]
    e.pull = wrap(e.pull)  # type: ignore[method-assign]


def longest_chain(calls: dict[str, list[Edge]], comps: list[list[str]]) -> int:
    """Elements on the longest chain of calls, a cycle counting as its elements."""
    comp_of = {n: i for i, comp in enumerate(comps) for n in comp}
    longest = [0] * len(comps)
    for i, comp in enumerate(comps):  # callees first
        below = max((longest[comp_of[w]] for n in comp for w, _ in calls[n]
                     if comp_of[w] != i), default=0)
        longest[i] = below + len(comp)
    return max(longest, default=0)


def check_calls(router: Router) -> list[ConfigError]:
    """Refuse certain loops and over-long call chains; guard the other cycles. Run once
    push and pull are decided, before the connections are bound."""
    calls = call_graph(router)
    comps = components(list(router.elements), calls)
    errors = certain_loops(router, calls, comps)
    if errors:
        return errors
    chain = longest_chain(calls, comps)
    if chain > MAX_CHAIN:
        return [ConfigError(
            f"a chain of {chain} elements that push to (or pull from) one another: more than "
            f"{MAX_CHAIN}, too deep for Python's stack",
            hint="put Queues in the chain (each one starts a new chain)",
        )]
    need = FRAMES_PER_ELEMENT * (chain + MAX_ROUNDS) + 200
    if sys.getrecursionlimit() < need:
        sys.setrecursionlimit(need)
    guard_cycles(router, calls, comps)
    return []
