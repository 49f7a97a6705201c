"""VLB clusters simulated, up to thousands of ports (RouteBricks §3, §6).

The emulation (``routebricks cluster up``) runs real routers on a handful of namespaces;
this module answers the paper's questions for clusters no machine could emulate: does VLB
carry 100% of R, how much does each server process, is an oversubscribed output shared
fairly, how much do flowlets help against reordering. Two models, one vocabulary:

* :mod:`.simulate_fluid` — rates over the N×N traffic matrix (numpy, no packets):
  throughput, per-server processing and fairness at N = 1,024 in about a second.
* :mod:`.simulate_packets` — packets through FIFO queues of finite length, in time steps:
  queueing, loss, latency and reordering, with and without flowlets, at N of 64 or so.

This module holds what both share: the topology, the routing parameters, the traffic
matrices (rates in units of R, the external line rate), max-min fair sharing, what both
results derive alike (:class:`ModelResult`), and the k-ary n-fly's wiring as index
arithmetic.

**Topologies.** ``mesh``: N servers, one external port each, a directed link of
``link_rate`` (default 2R/N, §3.2) from every server to every other. ``nfly``: the folded
k-ary n-fly of :mod:`routebricks.cluster.nfly` — N = k^n io servers, n stages of k^(n-1)
switch servers; VLB's first phase picks a *path*, one of the k^(n-1) top-stage switches,
the frame climbs to it and descends to its output by destination-tag routing (2n + 1
servers). Every link carries at most R each way for any matrix the outputs can take, so
``link_rate`` defaults to R there; io servers are never intermediates.

**Routing.** ``classic`` VLB: a mesh frame goes through a server chosen uniformly among
all N (its own input or output server meaning straight to the output); an n-fly frame
through a path chosen uniformly. ``direct`` VLB (mesh): up to ``direct_rate`` (default
R/N, the paper's rule; the cluster file's ``direct_rate``) of each input-output pair goes
straight, the rest through intermediates. An n-fly has no direct path: there Direct VLB
picks the path with the most budget (:mod:`.simulate_packets`), which the fluid model
reads as an even spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routebricks.errors import RouteBricksError

TOPOLOGIES = ("mesh", "nfly")
VLB_MODES = ("classic", "direct")
MATRICES = ("uniform", "permutation", "pair", "oversubscribed")
#: Largest clusters each model takes: the fluid model holds a few N×N float arrays (N =
#: 4,096: 128 MiB each); the packet model is a Python loop over time steps.
MAX_PORTS_FLUID = 4096
MAX_PORTS_PACKET = 256


class SimulationError(RouteBricksError):
    """A simulation asked for something that cannot be: names the option and a fix."""

    def __init__(self, option: str, problem: str, hint: str | None = None) -> None:
        self.option, self.problem, self.hint = option, problem, hint
        super().__init__(f"{option}: {problem}" + (f" ({hint})" if hint else ""))


@dataclass(frozen=True)
class Topology:
    """A cluster's servers and internal links: ``ports`` (N) io servers with one external
    port each, a full mesh of them or a folded k-ary n-fly (``k``, ``stages`` = n)."""

    kind: str
    ports: int
    k: int = 0
    stages: int = 0

    @property
    def paths(self) -> int:
        """Phase-1 choices: N servers (mesh), k^(n-1) top-stage switches (nfly)."""
        return self.ports if self.kind == "mesh" else self.k ** (self.stages - 1)

    @property
    def switches(self) -> int:
        """Switch (intermediate-only) servers: none in a mesh, n·k^(n-1) in an n-fly."""
        return 0 if self.kind == "mesh" else self.stages * self.paths

    @property
    def servers(self) -> int:
        return self.ports + self.switches

    def describe(self) -> str:
        if self.kind == "mesh":
            return f"full mesh of {self.ports} servers"
        return (f"{self.k}-ary {self.stages}-fly: {self.ports} io servers, {self.stages} "
                f"stage{'s' if self.stages > 1 else ''} of {self.paths} switch servers")


def topology(kind: str, ports: int, k: int | None = None) -> Topology:
    """A checked :class:`Topology`; raises :class:`SimulationError` naming the option."""
    if kind not in TOPOLOGIES:
        raise SimulationError("--topology", f"{kind!r} is not a topology", "mesh or nfly")
    if ports < 2:
        raise SimulationError("--n", f"{ports} ports: a cluster has at least 2")
    if ports > MAX_PORTS_FLUID:
        raise SimulationError("--n", f"{ports} ports is more than this simulator takes",
                              f"at most {MAX_PORTS_FLUID}")
    if kind == "mesh":
        if k is not None:
            raise SimulationError("--k", "k is the switch degree of a k-ary n-fly",
                                  "--topology nfly, or no --k for a mesh")
        return Topology("mesh", ports)
    if k is None:
        raise SimulationError("--k", "missing", "a k-ary n-fly's switch degree, e.g. --k 2")
    if k < 2:
        raise SimulationError("--k", f"{k} is not a switch degree", "2 or more")
    n, size = 1, k
    while size < ports:
        n, size = n + 1, size * k
    if size != ports:
        lower = size // k
        raise SimulationError("--n", f"{ports} ports: a {k}-ary n-fly has k^n of them",
                              f"--n {lower} or --n {size} for --k {k}"
                              if lower >= k else f"--n {size} for --k {k}")
    return Topology("nfly", ports, k, n)


@dataclass(frozen=True)
class Routing:
    """How frames cross the cluster. Rates in units of R: ``link_rate`` per internal link
    (each direction), ``direct_rate`` the most of one input-output pair sent straight
    (Direct VLB, mesh only)."""

    vlb: str
    link_rate: float
    direct_rate: float = 0.0

    def describe(self, topo: Topology) -> str:
        n = topo.ports
        text = f"{self.vlb} VLB, internal links {_fraction(self.link_rate, n)}"
        if self.vlb == "direct" and topo.kind == "mesh":
            text += f", direct share {_fraction(self.direct_rate, n)} per pair"
        return text


def _fraction(rate: float, n: int) -> str:
    """A rate in units of R, as the paper writes it when it is one (2R/N, R/N, R)."""
    for mult, name in ((2.0, "2R/N"), (1.0, "R/N")):
        if abs(rate - mult / n) < 1e-12:
            return f"{name} ({rate:.4g} R)"
    return "R" if rate == 1.0 else f"{rate:.4g} R"


def routing(topo: Topology, vlb: str = "classic", link_rate: float | None = None,
            direct_rate: float | None = None) -> Routing:
    """A checked :class:`Routing` with the paper's defaults: links 2R/N in a mesh and R in
    an n-fly, Direct VLB's direct share R/N per pair."""
    if vlb not in VLB_MODES:
        raise SimulationError("--vlb", f"{vlb!r} is not a VLB mode", "classic or direct")
    n = topo.ports
    if link_rate is None:
        link_rate = 2.0 / n if topo.kind == "mesh" else 1.0
    if not link_rate > 0:
        raise SimulationError("--link-rate", f"{link_rate} is not a rate", "more than 0")
    if topo.kind == "nfly":
        if direct_rate is not None:
            raise SimulationError("--direct-rate", "a k-ary n-fly has no direct path",
                                  "every frame goes through a top-stage switch")
        return Routing(vlb, link_rate, 0.0)
    if direct_rate is None:
        direct_rate = min(1.0 / n, link_rate)
    if not 0 <= direct_rate <= link_rate:
        raise SimulationError("--direct-rate", f"{direct_rate:g} R is not a direct share",
                              f"from 0 to the link rate, {link_rate:g} R")
    return Routing(vlb, link_rate, direct_rate if vlb == "direct" else 0.0)


# ---------------------------------------------------------------------- traffic matrices
def traffic_matrix(kind: str, ports: int, load: float, seed: int = 0,
                   fan_in: int = 4) -> np.ndarray:
    """The N×N matrix of offered rates (row: input port, column: output), units of R.

    ``uniform``: every input sends ``load`` spread evenly over the N-1 other outputs.
    ``permutation``: every input sends ``load`` to one output, a random permutation
    without fixed points (all of it crosses the cluster). ``pair``: input 0 sends ``load``
    to output 1, nothing else (the RB4 reordering test). ``oversubscribed``: inputs
    1..``fan_in`` each send ``load`` to output 0 (fan_in × load > 1 oversubscribes it).
    """
    if not 0 < load <= 1:
        raise SimulationError("--load", f"{load:g} is not a load",
                              "a fraction of R per input port, more than 0, at most 1")
    n = ports
    t = np.zeros((n, n))
    if kind == "uniform":
        t[:] = load / (n - 1)
        np.fill_diagonal(t, 0.0)
    elif kind == "permutation":
        rng = np.random.default_rng(seed)
        # A random cyclic order is a permutation with no fixed point, uniform among cycles.
        order = rng.permutation(n)
        t[order, np.roll(order, -1)] = load
    elif kind == "pair":
        t[0, 1] = load
    elif kind == "oversubscribed":
        if not 1 <= fan_in <= n - 1:
            raise SimulationError("--fan-in", f"{fan_in} inputs toward output 0",
                                  f"1 to {n - 1} for {n} ports")
        t[1:fan_in + 1, 0] = load
    else:
        raise SimulationError("--matrix", f"{kind!r} is not a traffic matrix",
                              ", ".join(MATRICES))
    return t


def check_matrix(t: np.ndarray) -> np.ndarray:
    """``t`` as a float N×N matrix an input can offer (no input over R), else an error."""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] < 2:
        raise SimulationError("matrix", f"shape {t.shape} is not N×N with N ≥ 2")
    if not np.all(np.isfinite(t)) or (t < 0).any():
        raise SimulationError("matrix", "rates must be finite and not negative")
    rows = t.sum(axis=1)
    if (rows > 1 + 1e-9).any():
        i = int(np.argmax(rows))
        raise SimulationError("matrix", f"input {i} offers {rows[i]:.4g} R, more than its "
                              "line carries", "each row sums to at most 1 (R)")
    return t


# ---------------------------------------------------------------------- fairness
def maxmin_share(demand: np.ndarray, capacity: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Max-min fair allocation of each output's ``capacity`` among its inputs (water-filling,
    every column at once): returns the allocation and each output's level (``inf`` where
    the output is not oversubscribed). An input asking less than the level gets what it
    asks; every other input of that output gets the level."""
    n = demand.shape[0]
    d = np.sort(demand, axis=0)
    before = np.cumsum(d, axis=0) - d  # what the smaller demands take
    sharing = (n - np.arange(n))[:, None]  # demands from this one up share the rest
    level_at = (capacity - before) / sharing
    # The level is set by the first demand (smallest up) that the rest cannot satisfy.
    over = d > level_at * (1 + 1e-12)
    first = np.argmax(over, axis=0)
    level = np.where(over.any(axis=0), level_at[first, np.arange(n)], np.inf)
    return np.minimum(demand, level[None, :]), level


@dataclass
class Fairness:
    """How oversubscribed outputs were shared: for each, the inputs whose demand exceeds
    the max-min level (the ones fairness is about) and their delivered rates."""

    outputs: list[dict[str, float | int]]

    @property
    def worst_ratio(self) -> float:
        """The largest max/min delivered share among bottlenecked inputs of one output
        (1.0: perfectly fair; 1.0 also when no output is oversubscribed)."""
        return max((float(o["max_min_ratio"]) for o in self.outputs), default=1.0)


def fairness(offered: np.ndarray, delivered: np.ndarray, capacity: float = 1.0,
             limit: int = 16) -> Fairness:
    """Per oversubscribed output (at most ``limit``, the most oversubscribed first): its
    max-min level, and the min and max delivered among inputs that asked more than it."""
    _, level = maxmin_share(offered, capacity)
    cols = np.flatnonzero(np.isfinite(level))
    cols = cols[np.argsort(-offered[:, cols].sum(axis=0), kind="stable")][:limit]
    out: list[dict[str, float | int]] = []
    for j in cols:
        bottled = np.flatnonzero(offered[:, j] >= level[j] * (1 - 1e-9))
        got = delivered[bottled, j]
        lo, hi = float(got.min()), float(got.max())
        out.append({"output": int(j), "offered": float(offered[:, j].sum()),
                    "level": float(level[j]), "inputs": int(bottled.size),
                    "min_share": lo, "max_share": hi,
                    "max_min_ratio": hi / lo if lo > 0 else float("inf")})
    return Fairness(out)


class ModelResult:
    """What both models' results derive alike: the base of FluidResult and PacketResult,
    dataclasses with these fields (loads in units of R)."""

    offered: float
    delivered: float
    load_input: np.ndarray  # per io server, by role
    load_intermediate: np.ndarray
    load_output: np.ndarray

    @property
    def throughput(self) -> float:
        """Delivered over offered."""
        return self.delivered / self.offered if self.offered else 1.0

    @property
    def load_io(self) -> np.ndarray:
        """Per io server, all roles."""
        return self.load_input + self.load_intermediate + self.load_output


# ---------------------------------------------------------------------- k-ary n-fly wiring
# Directed links of a folded n-fly, numbered: up links of level i (0..n-1) are i·N + l,
# down links (nN) + i·N + l, where level 0 joins the io servers to stage 1 (l = the io
# server) and level i ≥ 1 joins stage i to stage i+1 (l = w·k + j: the lower switch w's up
# port j, the same number both ways). Then one queue per external output port. Switch
# servers are numbered N + (stage - 1)·k^(n-1) + w. This is the wiring of
# routebricks.cluster.nfly (``Butterfly.route``), as arithmetic over arrays.


def fly_up_links(topo: Topology, src: np.ndarray, path: np.ndarray) -> list[np.ndarray]:
    """The up links (global numbers) a frame from io server ``src`` on ``path`` crosses,
    level 0 to n-1."""
    n, k, nn = topo.stages, topo.k, topo.ports
    out = [np.asarray(src, dtype=np.int64)]
    for i in range(1, n):
        low = k ** (i - 1)
        # Climbing replaces the lower switch's digits 0..i-2 with the path's.
        w = (src // (k * low)) * low + path % low
        out.append(i * nn + w * k + (path // low) % k)
    return out


def fly_down_links(topo: Topology, dst: np.ndarray, path: np.ndarray) -> list[np.ndarray]:
    """The down links (global numbers) a frame on ``path`` to io server ``dst`` crosses,
    from level n-1 to level 0."""
    n, k, nn = topo.stages, topo.k, topo.ports
    base = n * nn
    out = []
    for i in range(n - 1, 0, -1):
        low = k ** (i - 1)
        # Descending writes the output's digits from the top: the switch of stage i keeps
        # the path's digits 0..i-2 and has the output's digits i.. above them.
        w = (dst // (k * low)) * low + path % low
        out.append(base + i * nn + w * k + (path // low) % k)
    out.append(base + np.asarray(dst, dtype=np.int64))
    return out


def fly_link_ends(topo: Topology) -> tuple[np.ndarray, np.ndarray]:
    """For every directed link of the n-fly (global numbers), its sending and receiving
    server."""
    n, k, nn, per = topo.stages, topo.k, topo.ports, topo.paths
    l = np.arange(nn)
    send = np.empty(2 * n * nn, np.int64)
    recv = np.empty(2 * n * nn, np.int64)

    def switch(stage: int, w: np.ndarray) -> np.ndarray:
        return nn + (stage - 1) * per + w

    up_to = switch(1, l // k)
    send[:nn], recv[:nn] = l, up_to
    send[n * nn:n * nn + nn], recv[n * nn:n * nn + nn] = up_to, l
    w, j = l // k, l % k
    for i in range(1, n):
        low = k ** (i - 1)
        upper = w + (j - (w // low) % k) * low  # w with digit i-1 set to j
        lo_id, hi_id = switch(i, w), switch(i + 1, upper)
        send[i * nn:(i + 1) * nn], recv[i * nn:(i + 1) * nn] = lo_id, hi_id
        d0 = n * nn + i * nn
        send[d0:d0 + nn], recv[d0:d0 + nn] = hi_id, lo_id
    return send, recv
