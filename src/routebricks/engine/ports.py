"""Ports of a configuration: every connection checked against the classes' port counts,
and push or pull decided for agnostic ports (Click's processing codes), before anything
is bound."""

from __future__ import annotations

from routebricks.engine.element import (
    AGNOSTIC,
    PUSH,
    Element,
    parse_port_count,
    processing_code,
)
from routebricks.engine.graph import Connection
from routebricks.errors import ConfigError


def check_ports(elements: dict[str, Element], connections: list[Connection],
                errors: list[ConfigError]) -> None:
    """Every connection names elements and ports that exist; every port a class needs is
    connected; sets each element's ninputs/noutputs."""
    used_in: dict[str, dict[int, list[Connection]]] = {n: {} for n in elements}
    used_out: dict[str, dict[int, list[Connection]]] = {n: {} for n in elements}
    for c in connections:
        for end in (c.src, c.dst):
            if end not in elements:
                errors.append(
                    ConfigError(f"connection {c} names unknown element {end!r}", c.pos)
                )
        if c.src in used_out and c.dst in used_in:
            used_out[c.src].setdefault(c.sport, []).append(c)
            used_in[c.dst].setdefault(c.dport, []).append(c)
    for name, e in elements.items():
        cls_name = type(e).__name__
        try:
            rin, rout = parse_port_count(e.port_count)
        except ValueError as err:
            errors.append(e.error(f"bad port_count in class: {err}"))
            continue
        for side, used, r in (("input", used_in[name], rin), ("output", used_out[name], rout)):
            top = max(used) + 1 if used else 0
            n = max(r.lo, top)
            if r.hi is not None and top > r.hi:
                bad = max(used)
                conn = used[bad][0]
                errors.append(
                    ConfigError(
                        f"{name} :: {cls_name} has no {side} {bad} ({cls_name} has {r} "
                        f"{side}{'' if r.hi == 1 and r.lo == 1 else 's'})",
                        conn.pos,
                        f"use {side} port{'s' if r.hi != 1 else ''} 0"
                        + (f" to {r.hi - 1}" if r.hi and r.hi > 1 else "")
                        if r.hi
                        else f"{cls_name} has no {side}s",
                    )
                )
                continue
            for p in range(n):
                if p not in used:
                    errors.append(
                        e.error(
                            f"{side} {p} is not connected",
                            f"connect it ('{name} [{p}] -> ...')"
                            if side == "output"
                            else f"connect it ('... -> [{p}] {name}')"
                            + ("; or connect it to Discard" if side == "output" else ""),
                        )
                    )
            if side == "input":
                e.ninputs = n
            else:
                e.noutputs = n

def resolve_modes(elements: dict[str, Element], connections: list[Connection],
                  errors: list[ConfigError]) -> None:
    """Decide push or pull for agnostic ports, then check every connection.

    All agnostic ports of an element share one mode (as Click's agnostic elements are
    used: Counter pushes or pulls as a whole), unless its class has independent ports."""
    group: dict[tuple[str, str, int], str | None] = {}

    def key(e: Element, side: str, port: int) -> tuple[str, str, int]:
        return (e.name, side, port) if e.INDEPENDENT_PORTS else (e.name, "", 0)

    for e in elements.values():
        e.input_modes = [processing_code(e.processing, 0, p) for p in range(e.ninputs)]
        e.output_modes = [processing_code(e.processing, 1, p) for p in range(e.noutputs)]
    changed = True
    while changed:
        changed = False
        for c in connections:
            s, d = elements[c.src], elements[c.dst]
            ks, kd = key(s, "o", c.sport), key(d, "i", c.dport)
            ms = _mode(s.output_modes[c.sport], group.get(ks))
            md = _mode(d.input_modes[c.dport], group.get(kd))
            if ms != AGNOSTIC and md == AGNOSTIC:
                group[kd] = ms
                changed = True
            elif md != AGNOSTIC and ms == AGNOSTIC:
                group[ks] = md
                changed = True
    for e in elements.values():
        # unconstrained agnostic ports push, as in Click
        e.input_modes = [group.get(key(e, "i", p)) or PUSH if m == AGNOSTIC else m
                         for p, m in enumerate(e.input_modes)]
        e.output_modes = [group.get(key(e, "o", p)) or PUSH if m == AGNOSTIC else m
                          for p, m in enumerate(e.output_modes)]
    out_count: dict[tuple[str, int], int] = {}
    in_count: dict[tuple[str, int], int] = {}
    for c in connections:
        s, d = elements[c.src], elements[c.dst]
        ms, md = s.output_modes[c.sport], d.input_modes[c.dport]
        if ms != md:
            errors.append(
                ConfigError(
                    f"{'push' if ms == PUSH else 'pull'} output {c.sport} of {c.src} "
                    f"({type(s).__name__}) connected to {'push' if md == PUSH else 'pull'} "
                    f"input {c.dport} of {c.dst} ({type(d).__name__})",
                    c.pos,
                    "put a Queue between a push output and a pull input; "
                    "an Unqueue between a pull output and a push input",
                )
            )
            continue
        if ms == PUSH:
            out_count[(c.src, c.sport)] = out_count.get((c.src, c.sport), 0) + 1
            if out_count[(c.src, c.sport)] == 2:
                errors.append(
                    ConfigError(
                        f"push output {c.sport} of {c.src} is connected more than once",
                        c.pos,
                        "use a Tee to send packets to several places",
                    )
                )
        else:
            in_count[(c.dst, c.dport)] = in_count.get((c.dst, c.dport), 0) + 1
            if in_count[(c.dst, c.dport)] == 2:
                errors.append(
                    ConfigError(
                        f"pull input {c.dport} of {c.dst} is connected more than once",
                        c.pos,
                        "pull from one place per input; merge with a RoundRobinSched or Queue",
                    )
                )


def _mode(declared: str, group: str | None) -> str:
    return group if declared == AGNOSTIC and group is not None else declared
