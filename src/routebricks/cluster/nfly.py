"""The k-ary n-fly: a RouteBricks cluster too large for a full mesh (§3.3).

::

    [cluster]
    topology = "nfly"
    k = 2                    # every switch's degree: k links down, k up
    rate = "20Mbit"
    # internal_rate: default R times the most ports of an io server (see below)

    [[servers]]              # k^n io servers, each with its external ports
    name = "s1"
    ports = [{ interface = "ext0", address = "10.1.0.1/24", host = "h1" }]
    # ... s2, s3, s4

    [[servers]]              # intermediate servers: optional (missing ones are added)
    name = "m1"
    role = "intermediate"    # inferred from `ports = []` (or no ports) when absent
    ports = []

**The network.** The io servers (those with external ports) are the *terminals* of a
k-ary n-fly: N = k^n of them, numbered 0..N-1 in file order. The *switches* are the
intermediate servers: n stages of k^(n-1), numbered (stage, w) with w's n-1 base-k digits.
Terminal t hangs from stage-1 switch t div k, on that switch's down port t mod k; up port
j of switch (i, w) (i < n) is a link to switch (i+1, w with digit i-1 set to j), whose
down port for it is w's digit i-1. Every link is full duplex, and traffic uses both
directions: the butterfly is *folded* (the k-ary n-tree). A 2-ary 2-fly, port numbers
beside each switch::

    stage 2 (top)      i2-0            i2-1       the top switches: k^(n-1) = 2 paths
                     0 │ ╲ 1        0 ╱ │ 1
                       │   ╲        ╱   │
                       │     ╲    ╱     │
                       │       ╲╱       │
                       │       ╱╲       │
                       │     ╱    ╲     │
                       │   ╱        ╲   │
                     2 │ ╱ 3        2 ╲ │ 3
    stage 1            i1-0            i1-1       down ports 0..k-1, up ports k..2k-1
                    0 ╱    ╲ 1      0 ╱    ╲ 1
    io servers      s1      s2      s3      s4    terminals 0..3, one link each
                    │       │       │       │
    hosts           h1      h2      h3      h4

**Routing.** The input server does what it does in a mesh — the whole IP router, once —
and VLB's first phase picks the frame's *path*: one of the k^(n-1) top-stage switches
(per flowlet with flowlets on; the budget-fullest path with ``vlb = "direct"``, one at
random with ``"classic"``: a butterfly has no direct link to the output, so Direct VLB's
direct share does not apply and ``direct_rate`` is refused). The output server travels in
the destination MAC as in a mesh (its terminal number), the path in the source MAC
(:mod:`routebricks.packet.clustermac`). Up, switch (i, w) takes up port X_(i-1), the path's
digit i-1, and reaches top switch X; down, switch (i, w) takes down port d_(i-1), the output
server's digit i-1 (destination-tag routing). So s1 -> s3 goes s1, i1-0, i2-X, i1-1, s3:
2n+1 servers, every one after s1 reading the Ethernet header only (s1 -> s2 too goes up
to the top: it is VLB's first phase, not a detour). Each link carries at
most R per direction for any matrix the outputs can take (each top switch gets 1/k^(n-1)
of every input), so the internal rate defaults to R (times the ports of the busiest io
server); io servers are never intermediates: they process 2R, the switches 2kR.

**Liveness.** One BFD session per link, as in a mesh. A switch whose up port is down
sends the frame up another live port instead (the same one for every frame of a path, so
a flow keeps its order) and rewrites the path's digit: a dead switch on the way up is
avoided, and for n = 2 (whose down path is fixed by the output server alone) that is
every dead top switch (a dead stage-1 switch cuts its k io servers off, as a dead server
of a mesh its ports). For n >= 3 a dead switch on the *down* side of a path (stages
2..n-1) is not avoided: the switch above it drops its frames ("next server down") until
it is back; avoiding it needs the input servers to know of it, which no protocol here
tells them yet.

**Names.** Intermediate servers of the file fill stage 1 (w = 0, 1, ...), then stage 2,
...; missing ones are added, named ``i<stage>-<w>`` (``i1-0``, ``i2-1``), so a file may
list none. Internal links default to one veth pair per butterfly link, each end named
``to-<peer>``; ``[[links]]`` given must be exactly the butterfly's links.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Roles a server of an n-fly has.
ROLES = ("io", "intermediate")


class ButterflyError(Exception):
    """A cluster file that does not make a butterfly (spec.py adds the file)."""

    def __init__(self, key: str, problem: str, hint: str | None = None) -> None:
        super().__init__(problem)
        self.key, self.problem, self.hint = key, problem, hint


def digit(x: int, k: int, p: int) -> int:
    """Base-k digit ``p`` of ``x``."""
    return (x // k**p) % k


def set_digit(x: int, k: int, p: int, value: int) -> int:
    return x + (value - digit(x, k, p)) * k**p


def stages_for(k: int, terminals: int) -> int | None:
    """n with k^n == terminals (n >= 1), else None."""
    n, size = 1, k
    while size < terminals:
        size *= k
        n += 1
    return n if size == terminals else None


def switch_name(stage: int, w: int) -> str:
    return f"i{stage}-{w}"


@dataclass
class Butterfly:
    """A folded k-ary n-fly over named servers: ``io[t]`` is terminal t, ``switches[(i,
    w)]`` switch w of stage i (1..n)."""

    k: int
    n: int
    io: list[str]
    switches: dict[tuple[int, int], str]
    _where: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._where = {name: (0, t) for t, name in enumerate(self.io)}
        self._where.update({name: pos for pos, name in self.switches.items()})

    @property
    def terminals(self) -> int:
        return self.k**self.n

    @property
    def per_stage(self) -> int:
        """Switches per stage, k^(n-1): also the number of paths (top-stage switches)."""
        return self.k ** (self.n - 1)

    @property
    def paths(self) -> int:
        return self.per_stage

    def position(self, name: str) -> tuple[int, int]:
        """(0, t) for terminal t, (stage, w) for a switch."""
        return self._where[name]

    def terminal(self, name: str) -> int:
        stage, t = self._where[name]
        if stage:
            raise KeyError(f"{name} is a switch, not an io server")
        return t

    def ports(self, name: str) -> list[tuple[int, str]]:
        """(port, peer) of every link of a server: an io server's port 0 goes to its
        stage-1 switch; a switch's down ports are 0..k-1, its up ports k..2k-1 (none at the
        top stage)."""
        stage, w = self._where[name]
        k = self.k
        if stage == 0:
            return [(0, self.switches[(1, w // k)])]
        out = []
        for j in range(k):
            if stage == 1:
                out.append((j, self.io[w * k + j]))
            else:
                out.append((j, self.switches[(stage - 1, set_digit(w, k, stage - 2, j))]))
        if stage < self.n:
            for j in range(k):
                out.append((k + j, self.switches[(stage + 1, set_digit(w, k, stage - 1, j))]))
        return out

    def edges(self) -> list[tuple[str, str]]:
        """Every link once, (lower, upper): io servers to stage 1, then stage by stage."""
        out = []
        for name in self.io + [self.switches[(i, w)] for i in range(1, self.n)
                               for w in range(self.per_stage)]:
            stage = self._where[name][0]
            first_up = 0 if stage == 0 else self.k
            out += [(name, peer) for port, peer in self.ports(name) if port >= first_up]
        return out

    def route(self, src: int, path: int, dst: int) -> list[str]:
        """The servers a frame from terminal ``src`` to terminal ``dst`` crosses on ``path``
        (every switch up), both io servers included."""
        k, n = self.k, self.n
        w = src // k
        out = [self.io[src], self.switches[(1, w)]]
        for i in range(1, n):
            w = set_digit(w, k, i - 1, digit(path, k, i - 1))
            out.append(self.switches[(i + 1, w)])
        for i in range(n, 1, -1):
            w = set_digit(w, k, i - 2, digit(dst, k, i - 1))
            out.append(self.switches[(i - 1, w)])
        out.append(self.io[dst])
        return out

    def describe(self) -> str:
        return (f"a {self.k}-ary {self.n}-fly: {self.terminals} io servers, {self.n} "
                f"stage{'s' if self.n > 1 else ''} of {self.per_stage} switch"
                f"{'es' if self.per_stage > 1 else ''}")


def arrange(k: object, io: list[str], intermediates: list[tuple[int, str]],
            taken: set[str], max_servers: int) -> tuple[Butterfly, list[str]]:
    """The butterfly over ``io`` (file order) and the listed intermediate servers
    (``(file index, name)``, filling stage 1, 2, ... in order); returns it and the names of
    the switches it added. Raises :class:`ButterflyError` naming the key."""
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= 255:
        raise ButterflyError("cluster.k", f"{k!r} is not a switch degree",
                             "an integer from 2 (each switch: k links down, k up)")
    if not io:
        raise ButterflyError("servers", "no io server (one with external ports)",
                             "a k-ary n-fly has k^n io servers")
    n = stages_for(k, len(io))
    if n is None:
        lo = k
        while lo * k <= len(io):
            lo *= k
        fits = [kk for kk in range(2, 17) if stages_for(kk, len(io))]
        raise ButterflyError(
            "servers", f"{len(io)} io servers: a {k}-ary n-fly has k^n of them",
            f"{lo} or {lo * k} io servers for k = {k}"
            + (f"; or k = {fits[0]}" if fits else "") + " (the full mesh takes any number)")
    per_stage = k ** (n - 1)
    need = n * per_stage
    if len(intermediates) > need:
        index, name = intermediates[need]
        raise ButterflyError(
            f"servers[{index}]",
            f"{name!r} is one intermediate server too many: a {k}-ary {n}-fly has {need} "
            f"({n} stage{'s' if n > 1 else ''} of {per_stage})",
            "remove it (intermediate servers not listed are added, named i<stage>-<w>)")
    if len(io) + need > max_servers:
        raise ButterflyError(
            "servers", f"a {k}-ary {n}-fly needs {len(io)} io and {need} intermediate "
            f"servers; at most {max_servers} in all", "a larger k needs fewer stages")
    switches: dict[tuple[int, int], str] = {}
    added = []
    listed = iter(intermediates)
    for stage in range(1, n + 1):
        for w in range(per_stage):
            item = next(listed, None)
            if item is None:
                name = switch_name(stage, w)
                if name in taken:
                    raise ButterflyError(
                        "servers", f"the intermediate server added for stage {stage}, "
                        f"switch {w}, would be named {name!r}, which a listed server has",
                        "rename that server, or list every intermediate server")
                added.append(name)
            else:
                name = item[1]
            switches[(stage, w)] = name
    return Butterfly(k, n, list(io), switches), added


def check_links(b: Butterfly, pairs: list[tuple[int, str, str]]) -> None:
    """Explicit ``[[links]]`` (index, a, b) must be exactly the butterfly's links."""
    want = {frozenset(e) for e in b.edges()}
    for i, a, z in pairs:
        if frozenset((a, z)) not in want:
            peers = ", ".join(p for _, p in b.ports(a))
            raise ButterflyError(f"links[{i}]", f"{a}-{z} is not a link of "
                                 f"{b.describe()}", f"{a}'s links go to {peers}")
    have = {frozenset((a, z)) for _, a, z in pairs}
    missing = [e for e in b.edges() if frozenset(e) not in have]
    if missing:
        raise ButterflyError(
            "links", f"{b.describe()} needs a link between {missing[0][0]} and "
            f"{missing[0][1]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                                 else ""),
            "one [[links]] table per butterfly link, or none (veth pairs for cluster up)")
