"""How many servers an N-port RouteBricks router needs, and how to wire them (§3.3, Fig. 3).

The paper's recipe, as a model:

1. Give each server as many external ports as its processing rate allows: a port of rate R
   costs cR of processing, c = 3 for a worst-case traffic matrix (VLB's two phases plus the
   server's own R) and c = 2 for a uniform one (Direct VLB sends almost everything straight,
   §3.2). That makes M = ceil(N / s) *io servers* for s ports per server.
2. If a server's NICs, after its external ports, have room for M - 1 internal links, join
   the io servers in a full mesh. Each link then carries at most 2sR/M each way (VLB spreads
   a server's sR over M paths in each phase; the paper prints 2sR/N, which is this only for
   s = 1).
3. Otherwise use a k-ary n-fly: n = ceil(log_k M) stages of *intermediate servers* between
   the io servers, k the per-server fanout. A stage carries all N·R of traffic and an
   intermediate server forwards what an io server does (sR), so each stage is M servers
   wide -- the arithmetic behind the paper's "2 intermediate servers per port" at
   N = 1024. Each server's k links run at sR/k. As in Dally & Towles' k-ary n-fly, a
   k-degree node has k inputs and k outputs: one full-duplex NIC port counts as one of each
   (its two directions then go to different neighbours; with ordinary duplex cables a
   server would need 2k ports -- the paper's numbers count k).

A link may be a bundle of slower ports (1.25 Gbit/s over 2 x 1G), and a server mixes NIC
kinds (2x10G or 8x1G in the paper): :func:`internal_links` finds the best mix. A packet
crosses 2 or 3 servers in a mesh (3 via an intermediate) and n + 2 in an n-fly, 24 µs each
(the paper's §6.2 estimate).

The switched cluster the paper rejects: one server per s ports (each a 2R server would do;
we keep the same servers, as the paper's "using the same number of servers" does), joined
by Arista 7148S switches (48 ports of 10G) in a strictly non-blocking folded Clos, each
switch priced whole at $500 a port against $2000 a server (4 switch ports = 1 server).

The cluster file (:func:`cluster_toml`) of a mesh is the plan itself. That of an n-fly is
the butterfly the emulated data plane (:mod:`routebricks.cluster.nfly`) runs for the same
k and n: k^n io servers and n·k^(n-1) switch servers, each carrying k ports' worth (2kR),
where the count above splits each switch into k servers of R. Routing is the same. A file
the spec would refuse (M not a k^n, more servers than the cluster MAC names) is a
:class:`PlanError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache

from routebricks.errors import RouteBricksError

__all__ = [
    "FIG3_PORTS",
    "PAPER_NICS",
    "SERVER_CONFIGS",
    "SERVER_LATENCY_US",
    "VLB_FACTOR",
    "Allocation",
    "ARISTA_7148S",
    "NicKind",
    "Plan",
    "PlanError",
    "ServerConfig",
    "Switch",
    "SwitchedPlan",
    "cluster_file_ports",
    "cluster_toml",
    "emulated_radix",
    "emulation_note",
    "figure3",
    "internal_links",
    "mesh_limit",
    "plan",
    "ports_per_server",
    "switched_plan",
]

G = 10**9
#: The paper's estimate of one server's latency, µs (§6.2: 4 DMA transfers, batching, lookup).
SERVER_LATENCY_US = 24.0
#: Processing a server spends per port of rate R, in R: worst-case matrix 3, uniform 2 (§3.2).
VLB_FACTOR = {"worst": 3, "uniform": 2}
#: Fig. 3's x axis: N = 4 .. 2048 external ports.
FIG3_PORTS = tuple(2**i for i in range(2, 12))
SERVER_PRICE_USD = 2000


class PlanError(RouteBricksError):
    """A cluster that cannot be built from the servers given (says what to change)."""


@dataclass(frozen=True)
class NicKind:
    """A NIC model: ``ports`` ports of ``rate`` bits/s each."""

    ports: int
    rate: int

    def __str__(self) -> str:
        return f"{self.ports}x{_short_rate(self.rate)}"


#: "each NIC accommodates 2 10Gbps or 8 1Gbps ports" (§3.3).
PAPER_NICS = (NicKind(2, 10 * G), NicKind(8, 1 * G))


@dataclass(frozen=True)
class ServerConfig:
    """A server model: NIC slots, the NIC kinds that fit them, and its processing rate."""

    name: str
    summary: str
    nics: int
    nic_kinds: tuple[NicKind, ...]
    processing: int  # bits/s it can process (3R per 10G port in the paper's sizing)


#: The paper's three configurations (§3.3). Processing is stated as what handles their ports
#: at 3R, R = 10G: one port (30 Gbit/s) or two (60 Gbit/s).
SERVER_CONFIGS = {
    "current": ServerConfig("current", "current servers: 1 port of 10G, 5 NIC slots",
                            5, PAPER_NICS, 30 * G),
    "more-nics": ServerConfig("more-nics", "more NICs: 1 port of 10G, 20 NIC slots",
                              20, PAPER_NICS, 30 * G),
    "faster": ServerConfig("faster", "faster servers with more NICs: 2 ports of 10G, "
                           "20 NIC slots", 20, PAPER_NICS, 60 * G),
}


def ports_per_server(processing: int, rate: int, traffic: str = "worst") -> int:
    """External ports of rate ``rate`` a server of ``processing`` bits/s can handle."""
    return processing // (VLB_FACTOR[traffic] * rate)


# ---------------------------------------------------------------------- NIC allocation
@dataclass(frozen=True)
class Allocation:
    """How a server's NIC slots are used: NICs of each kind, the internal links they give
    (links of ``bundle`` ports each, per kind), and the kind holding the external ports."""

    links: int
    nics: tuple[tuple[NicKind, int], ...] = ()  # all of them, external ones included
    bundles: tuple[tuple[NicKind, int], ...] = ()
    external: NicKind | None = None
    external_nics: int = 0

    def describe(self) -> str:
        """``1 × 2x10G (external ports), 4 × 8x1G (a link = 2 ports)``."""
        parts = []
        bundle = dict(self.bundles)
        for kind, count in self.nics:
            if kind == self.external:
                parts.append(f"{self.external_nics} × {kind} (external ports)")
                count -= self.external_nics
            if count:
                many = bundle.get(kind, 1) > 1
                parts.append(f"{count} × {kind}"
                             + (f" (a link = {bundle[kind]} ports)" if many else ""))
        return ", ".join(parts) or "none"


@cache
def internal_links(nics: int, kinds: tuple[NicKind, ...], external: int, rate: int,
                   link_rate: Fraction) -> Allocation:
    """The most internal links of ``link_rate`` (each way) a server can have besides its
    ``external`` ports of ``rate``; ``links == -1`` if the external ports do not fit.

    External ports take whole NICs of a kind fast enough for R; spare ports on them serve as
    internal links. A link slower ports cannot carry alone is a bundle of them.
    """
    best = Allocation(-1)
    for ext in kinds:
        if ext.rate < rate:
            continue
        used = -(-external // ext.ports) if external else 0
        if used > nics:
            continue
        spare = {k: 0 for k in kinds}
        spare[ext] = used * ext.ports - external
        bundle = {k: max(1, math.ceil(link_rate / k.rate)) for k in kinds}
        links, counts = _fill(kinds, nics - used, spare, bundle)
        if links > best.links:
            counts[ext] += used
            best = Allocation(links, tuple(counts.items()), tuple(bundle.items()),
                              ext if external else None, used)
    return best


def _fill(kinds: Sequence[NicKind], slots: int, spare: dict[NicKind, int],
          bundle: dict[NicKind, int]) -> tuple[int, dict[NicKind, int]]:
    """Share ``slots`` among the kinds for the most links: a small exhaustive search (a
    handful of kinds, tens of slots), since bundles make the best mix uneven."""
    if not kinds:
        return 0, {}
    head, rest = kinds[0], kinds[1:]
    best_links, best_counts = -1, {}
    for x in range(slots + 1) if rest else [slots]:
        links, counts = _fill(rest, slots - x, spare, bundle)
        links += (spare[head] + x * head.ports) // bundle[head]
        if links > best_links:
            best_links, best_counts = links, {head: x, **counts}
    return best_links, best_counts


# ---------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class Plan:
    """The cheapest server cluster for ``ports`` external ports (see the module docstring)."""

    ports: int
    rate: int  # R, bits/s
    ports_per_server: int  # s
    topology: str  # "mesh" or "nfly"
    io_servers: int
    intermediate_servers: int
    k: int  # internal links per server: M - 1 in a mesh, the radix of an n-fly
    stages: int  # n: stages of intermediate servers (0 in a mesh)
    fanout: int  # the most internal links the NICs allow at this plan's link rate
    links: int
    link_kind: str  # "duplex" (a mesh's cables) or "one-way" (an n-fly's channels)
    link_rate: Fraction  # the most a link carries each way, bits/s
    allocation: Allocation
    hops: int  # servers a packet crosses, at most
    hops_min: int
    latency_us: float  # at most, SERVER_LATENCY_US per server crossed
    server: str = ""  # the configuration's name, for the record
    port_counts: tuple[int, ...] = field(default=(), repr=False)  # per io server
    nics: int = field(default=0, repr=False)  # the servers it was planned for: NIC slots
    nic_kinds: tuple[NicKind, ...] = field(default=(), repr=False)  # and NIC kinds

    @property
    def servers(self) -> int:
        return self.io_servers + self.intermediate_servers

    def as_dict(self) -> dict[str, object]:
        return {
            "topology": self.topology, "ports": self.ports, "rate_bps": self.rate,
            "server": self.server, "ports_per_server": self.ports_per_server,
            "servers": self.servers, "io_servers": self.io_servers,
            "intermediate_servers": self.intermediate_servers,
            "servers_per_port": round(self.servers / self.ports, 4),
            "k": self.k, "n": self.stages, "fanout": self.fanout,
            "links": self.links, "link_kind": self.link_kind,
            "link_rate_bps": round(float(self.link_rate), 3),
            "nics": [{"kind": str(k), "count": c} for k, c in self.allocation.nics if c],
            "hops": self.hops, "hops_min": self.hops_min, "latency_us": self.latency_us,
            "latency_min_us": self.hops_min * SERVER_LATENCY_US,
        }


def _check(ports: int, rate: int, s: int, nics: int, kinds: tuple[NicKind, ...]) -> None:
    if ports < 2:
        raise PlanError(f"{ports} ports: a router has at least 2")
    if rate <= 0:
        raise PlanError("the line rate must be positive")
    if s < 1:
        raise PlanError(f"a server with {s} ports handles no port of {_short_rate(rate)}; "
                        "it needs at least one")
    if not kinds or nics < 1:
        raise PlanError("a server needs at least one NIC")
    if not any(k.rate >= rate for k in kinds):
        raise PlanError(f"no NIC port runs at the line rate {_short_rate(rate)}")
    if internal_links(nics, kinds, s, rate, Fraction(0)).links < 0:
        raise PlanError(f"{s} external ports of {_short_rate(rate)} do not fit in {nics} "
                        f"NIC slots of {'/'.join(map(str, kinds))}")


def plan(ports: int, rate: int, s: int, nics: int, kinds: tuple[NicKind, ...],
         server: str = "") -> Plan:
    """The paper's choice for ``ports`` ports of ``rate``: a full mesh of ceil(N/s) io
    servers if their fanout allows, else a k-ary n-fly. Raises :class:`PlanError`."""
    _check(ports, rate, s, nics, kinds)
    m = -(-ports // s)
    counts = tuple([s] * (ports // s) + ([ports % s] if ports % s else []))
    if m == 1:  # one server holds every port: nothing to interconnect
        alloc = internal_links(nics, kinds, s, rate, Fraction(0))
        return Plan(ports, rate, s, "mesh", 1, 0, 0, 0, alloc.links, 0, "duplex",
                    Fraction(0), alloc, 1, 1, SERVER_LATENCY_US, server, counts, nics, kinds)
    mesh_rate = Fraction(2 * s * rate, m)
    alloc = internal_links(nics, kinds, s, rate, mesh_rate)
    if alloc.links >= m - 1:
        hops = 3 if m > 2 else 2  # via an intermediate; with 2 servers there is none
        return Plan(ports, rate, s, "mesh", m, 0, m - 1, 0, alloc.links, m * (m - 1) // 2,
                    "duplex", mesh_rate, alloc, hops, 2, hops * SERVER_LATENCY_US, server,
                    counts, nics, kinds)
    k_max = _nfly_radix(nics, kinds, s, rate)
    if k_max < 2:
        raise PlanError(f"a server's NICs leave fewer than 2 internal links: neither a mesh "
                        f"of {m} servers nor an n-fly can be built")
    n = 1
    while k_max**n < m:
        n += 1
    # The smallest radix that still gives n stages: fewer links, same servers.
    k = next(k for k in range(2, k_max + 1)
             if k**n >= m and _fits(nics, kinds, s, rate, k))
    alloc = internal_links(nics, kinds, s, rate, Fraction(s * rate, k))
    return Plan(ports, rate, s, "nfly", m, n * m, k, n, alloc.links, (n + 1) * m * k,
                "one-way", Fraction(s * rate, k), alloc, n + 2, n + 2,
                (n + 2) * SERVER_LATENCY_US, server, counts, nics, kinds)


def _fits(nics: int, kinds: tuple[NicKind, ...], s: int, rate: int, k: int) -> bool:
    return internal_links(nics, kinds, s, rate, Fraction(s * rate, k)).links >= k


@cache
def _nfly_radix(nics: int, kinds: tuple[NicKind, ...], s: int, rate: int) -> int:
    """The largest k with k links of sR/k each that the NICs hold (0 if none)."""
    most = nics * max(k.ports for k in kinds)
    return max((k for k in range(2, most + 1) if _fits(nics, kinds, s, rate, k)), default=0)


@cache
def mesh_limit(rate: int, s: int, nics: int, kinds: tuple[NicKind, ...]) -> int:
    """The most external ports these servers can take in a full mesh."""
    _check(2, rate, s, nics, kinds)
    most = nics * max(k.ports for k in kinds) + 1  # a mesh of more servers lacks ports
    best = s
    for m in range(2, most + 1):
        if internal_links(nics, kinds, s, rate, Fraction(2 * s * rate, m)).links >= m - 1:
            best = m * s
    return best


# ---------------------------------------------------------------------- switched cluster
@dataclass(frozen=True)
class Switch:
    name: str
    ports: int
    rate: int
    price_per_port_usd: int


#: "a 48-port 10Gbps/port Arista 7148S switch, which, at $500 per port, is the least
#: expensive strictly non-blocking 10Gbps switch we are aware of" (§3.3).
ARISTA_7148S = Switch("Arista 7148S", 48, 10 * G, 500)


@dataclass(frozen=True)
class SwitchedPlan:
    ports: int
    servers: int
    switches: int
    switch_hops: int  # switches a packet crosses
    server_equivalents: int  # servers plus switches priced as servers, rounded up
    cost_usd: int

    def as_dict(self) -> dict[str, object]:
        return {"ports": self.ports, "servers": self.servers, "switches": self.switches,
                "switch_hops": self.switch_hops, "hops": 2,
                "server_equivalents": self.server_equivalents, "cost_usd": self.cost_usd}


@cache
def _clos(ports: int, radix: int) -> tuple[int, int]:
    """(switches, switch hops) of the cheapest strictly non-blocking folded Clos with
    ``ports`` ports out of radix-port switches: leaves with d ports down and 2d - 1 up
    (Clos' condition), each middle switch itself such a network when it must be larger."""
    if ports <= radix:
        return 1, 1
    best = (math.inf, 0)
    for d in range(2, (radix + 1) // 3 + 1):
        leaves = -(-ports // d)
        middle, hops = _clos(leaves, radix)
        total = leaves + (2 * d - 1) * middle
        if total < best[0]:
            best = (total, hops + 2)
    return int(best[0]), best[1]


def switched_plan(ports: int, rate: int, s: int, switch: Switch = ARISTA_7148S) -> SwitchedPlan:
    """The switched cluster: ceil(N/s) servers behind a non-blocking network of switches;
    an external port of rate R takes ceil(R / switch rate) switch ports."""
    servers = -(-ports // s)
    switch_ports = ports * -(-rate // switch.rate)
    switches, hops = _clos(switch_ports, switch.ports)
    cost = servers * SERVER_PRICE_USD + switches * switch.ports * switch.price_per_port_usd
    return SwitchedPlan(ports, servers, switches, hops, -(-cost // SERVER_PRICE_USD), cost)


# ---------------------------------------------------------------------- Fig. 3
def figure3(rate: int = 10 * G, ports: Sequence[int] = FIG3_PORTS) -> dict[str, list[int]]:
    """Servers against N for the three configurations, and the switched cluster (current
    servers) in server-equivalents: Fig. 3's curves."""
    out: dict[str, list[int]] = {}
    for cfg in SERVER_CONFIGS.values():
        s = ports_per_server(cfg.processing, rate)
        out[cfg.name] = [plan(n, rate, s, cfg.nics, cfg.nic_kinds).servers for n in ports]
    s = ports_per_server(SERVER_CONFIGS["current"].processing, rate)
    out["switched"] = [switched_plan(n, rate, s).server_equivalents for n in ports]
    return out


# ---------------------------------------------------------------------- cluster file
def _port_address(port: int) -> str:
    """10.<port>.0.1/24 for ports 1..255; past that the third byte counts the 256s."""
    return f"10.{port % 256}.{port // 256}.1/24"


def emulated_radix(p: Plan) -> int | None:
    """The k of the n-fly the emulated data plane runs for an n-fly plan: the plan's n, and
    the smallest k <= its fanout with k^n io servers (the butterfly of
    :mod:`routebricks.cluster.nfly` has exactly k^n); None if there is none."""
    k = round(p.io_servers ** (1 / p.stages))
    return next((kk for kk in (k - 1, k, k + 1)
                 if 2 <= kk <= p.fanout and kk**p.stages == p.io_servers), None)


def _cluster_file_problem(p: Plan) -> str | None:
    """Why a cluster file for ``p`` would be refused (the spec's limits, the emulated
    butterfly's k^n io servers), or None."""
    from routebricks.packet.clustermac import MAX_PORTS, MAX_SERVERS

    if p.ports_per_server > MAX_PORTS:
        return (f"{p.ports_per_server} ports per server: a cluster file takes at most "
                f"{MAX_PORTS} (MAX_PORTS, what the cluster MAC's port field can name)")
    if p.io_servers > MAX_SERVERS:
        return (f"{p.io_servers} io servers: a cluster file takes at most {MAX_SERVERS} "
                "servers (MAX_SERVERS, what the cluster MAC's server byte can name)")
    if p.topology == "mesh":
        return None
    k = emulated_radix(p)
    n = p.stages
    if k is None:
        return (f"{p.io_servers} io servers: the emulated butterfly (routebricks.cluster."
                f"nfly) needs k^n io servers, and no k from 2 to {p.fanout} (the fanout) "
                f"gives k^{n} = {p.io_servers}")
    total = p.io_servers + n * k ** (n - 1)
    if total > MAX_SERVERS:
        return (f"the emulated {k}-ary {n}-fly has {p.io_servers} io and "
                f"{n * k ** (n - 1)} switch servers, {total} in all: a cluster file takes "
                f"at most {MAX_SERVERS} servers (MAX_SERVERS, what the cluster MAC's server "
                "byte can name)")
    return None


def cluster_file_ports(p: Plan) -> tuple[int | None, int | None]:
    """The nearest port counts below and above ``p.ports`` whose plan, with the same
    servers, is an n-fly that a cluster file can hold: N = s·k^n (k^n io servers, full)."""
    from routebricks.packet.clustermac import MAX_SERVERS

    s = p.ports_per_server
    below = above = None
    for k in range(2, MAX_SERVERS + 1):
        m = k
        while m <= MAX_SERVERS and s * m <= 65535:
            n_ports = s * m
            m *= k
            if n_ports == p.ports or (below is not None and below >= n_ports) \
                    or (above is not None and above <= n_ports):
                continue
            try:
                q = plan(n_ports, p.rate, s, p.nics, p.nic_kinds, p.server)
            except PlanError:
                continue
            if q.topology != "nfly" or _cluster_file_problem(q) is not None:
                continue
            if n_ports < p.ports:
                below = n_ports
            else:
                above = n_ports
    return below, above


def emulation_note(p: Plan) -> str:
    """How the cluster file of an n-fly plan differs from the plan, in a few sentences:
    the data plane's folded butterfly against the paper's count."""
    from routebricks.netns.tc import format_rate

    k = emulated_radix(p)
    assert k is not None
    n, s = p.stages, p.ports_per_server
    switches = n * k ** (n - 1)
    worth = (f"k = {k} ports' worth of traffic (2kR = {format_rate(2 * k * p.rate)} of "
             "processing)" if s == 1 else
             f"k·s = {k * s} ports' worth of traffic (2ksR = "
             f"{format_rate(2 * k * s * p.rate)} of processing)")
    carry = "R" if s == 1 else f"sR = {format_rate(s * p.rate)}"
    radix = "" if k == p.k else (f" (the plan's k = {p.k} gives {n} stages too, but the "
                                 f"data plane needs k^n = {p.io_servers} io servers)")
    return (f"The emulated data plane (routebricks.cluster.nfly) folds the butterfly: this "
            f"file is its {k}-ary {n}-fly{radix}, {p.io_servers} io servers and {n} "
            f"stage{'s' if n > 1 else ''} of {k ** (n - 1)} = {switches} switch servers, "
            f"each carrying up to {worth}, where the plan counts the paper's "
            f"{p.intermediate_servers} intermediate servers that carry {carry} each (each "
            f"switch split into k = {k} servers). Routing is the same: VLB to a top-stage "
            "path (at random; the least used one with vlb = \"direct\"), then down by the "
            "destination's digits.")


def cluster_toml(p: Plan, command: str) -> str:
    """A cluster file (see :mod:`routebricks.cluster.spec`) for the plan: the io servers
    s1..sM with their ports. A mesh is the plan as it is; an n-fly is the butterfly the
    data plane runs for the same k and n (:func:`emulation_note`), whose switch servers the
    spec adds. Raises :class:`PlanError` if the spec would refuse the file."""
    import textwrap

    from routebricks.netns.tc import format_rate  # the cluster files' own rate notation

    problem = _cluster_file_problem(p)
    if problem is not None:
        raise PlanError(problem)
    def comment(text: str) -> list[str]:  # wrapped, never inside "k = 2"
        return [line.replace("\xa0", " ") for line in textwrap.wrap(
            text.replace(" = ", "\xa0=\xa0"), 92, initial_indent="# ",
            subsequent_indent="# ", break_on_hyphens=False)]

    lines = [f"# Generated by `{command}`.", *comment(
        f"The plan: {p.ports} ports of {format_rate(p.rate)} on {p.servers} servers "
        f"({p.io_servers} io, {p.intermediate_servers} intermediate), "
        + ("a full mesh." if p.topology == "mesh"
           else f"a k-ary n-fly, k = {p.k}, n = {p.stages} stages (§3.3's count)."))]
    k = None
    if p.topology == "nfly":
        k = emulated_radix(p)
        assert k is not None
        last = f"i{p.stages}-{k ** (p.stages - 1) - 1}"
        lines += ["#", *comment(
            emulation_note(p) + " The switch servers are not listed: loading the file adds "
            f"them, named i<stage>-<w> (i1-0 .. {last}), with their links.")]
    lines += ["", "[cluster]", f'name = "rb{p.ports}"', f'rate = "{format_rate(p.rate)}"',
              f'topology = "{p.topology}"']
    if k is not None:
        lines.append(f"k = {k}")  # internal_rate: the spec's default, sR each way
    elif p.io_servers > 1:  # the spec's default 2R/N is right only for one port per server
        lines.append(f'internal_rate = "{format_rate(math.ceil(p.link_rate))}"')
    port = 0
    for i, count in enumerate(p.port_counts):
        entries = []
        for j in range(count):
            port += 1
            entries.append(f'{{ interface = "ext{j}", address = "{_port_address(port)}", '
                           f'host = "h{port}" }}')
        lines += ["", "[[servers]]", f'name = "s{i + 1}"']
        if len(entries) == 1:
            lines.append(f"ports = [{entries[0]}]")
        else:
            lines += ["ports = [", *(f"  {e}," for e in entries), "]"]
    return "\n".join(lines) + "\n"


def _short_rate(bps: int) -> str:
    """10G, 1G, 2.5G, 100M: NIC-catalogue style, for messages and tables."""
    for mult, prefix in ((10**12, "T"), (G, "G"), (10**6, "M"), (10**3, "k")):
        if bps >= mult:
            return f"{bps / mult:g}{prefix}"
    return f"{bps}"
