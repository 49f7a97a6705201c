"""A flattened router graph as data: element declarations and connections.

This is what the parser produces (compounds expanded, variables substituted), what the Python
API produces, what ``-o`` writes back out in the configuration language, and what worker
processes rebuild their routers from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from routebricks.errors import Position

#: Ports an element may have on each side. Port numbers in a configuration, and the ports a
#: class or its arguments ask for (route tables, IPFilter slots, Tee(N)), stay below this:
#: a larger number is a typing mistake, and the router would otherwise check (and complain
#: about) every one of the ports below it.
MAX_PORTS = 65536


@dataclass
class ElementDecl:
    name: str
    class_name: str
    config: str
    pos: Position | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Connection:
    src: str
    sport: int
    dst: str
    dport: int
    pos: Position | None = field(default=None, compare=False, hash=False)

    def __str__(self) -> str:
        return f"{self.src} [{self.sport}] -> [{self.dport}] {self.dst}"


@dataclass
class Requirement:
    kind: str  # "package", "python", ...
    value: str
    pos: Position | None = field(default=None, compare=False)


@dataclass
class Graph:
    elements: dict[str, ElementDecl] = field(default_factory=dict)
    connections: list[Connection] = field(default_factory=list)
    requirements: list[Requirement] = field(default_factory=list)
    base_dir: str | None = field(default=None, compare=False)  # for relative file names
    sources: dict[str, str] = field(default_factory=dict, compare=False)  # for error context

    def same_as(self, other: Graph) -> bool:
        """Equal elements (name, class, configuration) and the same set of connections."""
        return self.elements == other.elements and set(self.connections) == set(other.connections)

    def unparse(self, configs: Mapping[str, str] | None = None) -> str:
        """The graph in the configuration language: declarations, then connections in
        chains, as Click's flattened form.

        ``configs`` replaces elements' configuration strings (redacted secrets)."""
        lines: list[str] = []
        if self.requirements:
            # Click's Router::unparse_requirements: one require, a blank line after it.
            lines.append("require(" + ", ".join(
                r.value if r.kind == "feature" else f"{r.kind} {_click_quote(r.value)}"
                for r in self.requirements) + ");")
            lines.append("")
        # Click's element order: the top level as written, then what compounds expanded
        # to, level by level (its lexer appends a compound's elements at the end).
        decls = sorted(self.elements.values(), key=lambda d: d.name.count("/"))
        for d in decls:
            cfg = (configs or {}).get(d.name, d.config).strip()
            lines.append(f"{d.name} :: {d.class_name}" + (f"({cfg});" if cfg else ";"))
        if decls:
            lines.append("")
        lines += self._unparse_connections()
        return "\n".join(lines) + "\n"

    def _unparse_connections(self) -> list[str]:
        """Connections as Click's ``Router::unparse_connections`` writes them: chained
        through input 0 / output 0 (``a -> b`` then ``    -> c``), port numbers only where
        they are not 0, one chain a statement."""
        conns = self.connections
        nxt = [-1] * len(conns)
        starts = [True] * len(conns)
        by_source: dict[tuple[str, int], list[int]] = {}
        for d, c in enumerate(conns):
            by_source.setdefault((c.src, c.sport), []).append(d)
        for ci, c in enumerate(conns):
            if c.dport != 0:
                continue
            follow = [d for d in by_source.get((c.dst, 0), []) if d != ci]
            if follow:  # prefer one that enters an input 0, as Click does
                d = next((d for d in follow if conns[d].dport == 0), follow[-1])
                nxt[ci] = d
                starts[d] = False
        used = [False] * len(conns)
        out: list[str] = []
        while not all(used):
            for ci, c in enumerate(conns):
                if used[ci] or not starts[ci]:
                    continue
                text = c.src + (f" [{c.sport}]" if c.sport else "")
                d = ci
                while d >= 0 and not used[d]:
                    text += " -> " if d == ci else "\n    -> "
                    text += (f"[{conns[d].dport}] " if conns[d].dport else "") + conns[d].dst
                    used[d] = True
                    d = nxt[d]
                out.append(text + ";")
            for ci in range(len(conns)):  # cycles: start anywhere not yet written
                if not used[ci]:
                    starts[ci] = True
                    break
        return out


def _click_quote(value: str) -> str:
    """A requirement's value as Click's cp_quote writes it: bare when it is a plain word."""
    if value and all(c.isalnum() or c in "_.-/:@" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
