"""The packet model of a VLB cluster: packets through finite FIFO queues, in time steps.

**Time** is counted in *packet times* (τ): the time a port of rate R takes to send one
packet (1500 bytes at 10 Gbit/s: 1.2 µs). Every packet has the same size.

**Queues.** Each directed internal link is a FIFO of ``buffer`` packets served at its
rate (a packet takes 1/link_rate τ: N/2 τ on a 2R/N mesh link); each external output port
is one at R. A packet that finds its queue full is dropped there (tail drop). A queue
holds no list of packets: its state is the time its last packet leaves (``busy``), which
gives every arriving packet its departure time and the backlog it sees (Lindley's
recursion). Each server adds ``server_latency`` before the packet reaches its next queue
(the paper's §6.2 estimate: 24 µs). So an oversubscribed output sheds load where its
queues overflow, in proportion to what each input offers (FIFO tail drop, no per-input
fair queueing): equal inputs get equal shares; the fluid model is the max-min one.

**Steps.** Time advances in steps of the shortest service time, so a packet never has
two hops in one step; the arrivals of a step are taken queue by queue in time order
(vectorized across queues: the first arrival at every queue, then the second, ...).
Steps with nothing to do are skipped. Offered traffic stops after ``duration``; the run
goes on until every packet is delivered or dropped, so that delivered + dropped =
offered, per output.

**Traffic.** Each input sends one packet per τ with probability its row sum (Bernoulli),
to an output drawn from its row, on one of ``flows`` flows of that pair: uniformly at
random (``flow_order`` "random": a flow's gaps vary, some short, as in bursty real
traffic), or in turn, as ``routebricks gen`` sends ("cycle": a flow's packets come
``flows`` packets of its pair apart, and reorder only when paths differ by that much).

**Paths, at the input server** (RouteBricks' DirectVLB element, §6.1): classic VLB picks a
server uniformly among the N (input or output: straight); Direct VLB goes straight while
the pair's direct budget (a token bucket at ``direct_rate``) is positive and the direct
link's backlog is under a burst, else through the intermediate whose link from the input
has the shortest backlog (ties at random). An n-fly picks a path (top-stage switch):
uniformly (classic) or the one whose budget — a token bucket per path at link_rate/P, the
NflyVLB element's — is fullest (direct). **Flowlets** (Flare, §6.1): a packet less than
δ after its flow's previous one takes the flowlet's path unless that path is *full* (a
mesh link backlog over two bursts, an n-fly path bucket below minus a burst); a full
flowlet moves whole to a fresh choice that has room, else that packet alone goes its own
way. A burst is a quarter of ``buffer`` unless ``budget_burst`` says otherwise.

**Reordering** is the fraction of delivered packets that arrive after a packet of the
same flow sent later (the sink's ``reorder_fraction``); ``reordered_sequences`` counts
maximal runs of such packets within a flow (the paper's §6.2 unit, what
``benchmarks/rb4.py`` reports), also per delivered packet.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routebricks.cluster.simulate import (
    MAX_PORTS_PACKET,
    Fairness,
    ModelResult,
    Routing,
    SimulationError,
    Topology,
    check_matrix,
    fairness,
    fly_down_links,
    fly_link_ends,
    fly_up_links,
)

#: A backlog is compared with the buffer with this slack: float times are not exact.
_EPS = 1e-9
#: The flowlet table's size limit (two arrays of this many entries).
MAX_FLOWS = 1 << 24


@dataclass(frozen=True)
class PacketOptions:
    """Parameters of a packet run; times in packet times (τ)."""

    duration: float = 4000.0  # offered traffic, τ
    buffer: int = 64  # packets per queue
    flows: int = 16  # flows per input-output pair
    flowlets: bool = True
    delta: float = 83_333.0  # flowlet timeout δ: 100 ms at 10 Gbit/s, 1500 B
    server_latency: float = 20.0  # per server crossed: 24 µs at 10 Gbit/s, 1500 B
    seed: int = 0
    flow_order: str = "random"  # a pair's flows drawn per packet, or "cycle" (in turn)
    budget_burst: float | None = None  # packets; default a quarter of the buffer

    @property
    def burst(self) -> float:
        """The token buckets' burst (packets): how far a path's budget reaches."""
        return self.budget_burst if self.budget_burst else max(2.0, self.buffer / 4)


@dataclass
class PacketResult(ModelResult):
    """What the packet model found. Counts are packets; times τ; loads units of R."""

    offered: int
    delivered: int
    dropped: int
    dropped_links: int  # at internal link queues
    dropped_ports: int  # at external output port queues
    per_output: dict[str, np.ndarray]  # offered, delivered, dropped per output port
    reordered: float  # fraction of delivered packets
    reordered_sequences: float  # runs of reordered packets, per delivered packet
    latency: dict[str, float]  # p50, p99, max, mean (τ)
    load_input: np.ndarray
    load_intermediate: np.ndarray
    load_output: np.ndarray
    load_switch: np.ndarray
    flowlet_stats: dict[str, int]  # new, kept, moved, spread
    via_intermediate: float  # fraction of packets relayed (mesh) / n-fly: 1
    fair: Fairness
    duration: float
    elapsed: float
    steps: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return self.dropped / self.offered if self.offered else 0.0


class _Net:
    """Queues of a topology: service time, owner (the server that sends on it) and which
    are external ports. Mesh link s→x is s·N + x; an n-fly's links are numbered as in
    :mod:`.simulate`; output ports come last."""

    def __init__(self, topo: Topology, route: Routing, buffer: int) -> None:
        n = topo.ports
        self.topo, self.n = topo, n
        if topo.kind == "mesh":
            nlinks = n * n
            owner = np.repeat(np.arange(n), n)
            self.hops = 3
        else:
            nlinks = 2 * topo.stages * n
            owner, _ = fly_link_ends(topo)
            self.hops = 2 * topo.stages + 1
        self.port0 = nlinks
        self.svc = np.concatenate([np.full(nlinks, 1.0 / route.link_rate), np.ones(n)])
        self.owner = np.concatenate([owner, np.arange(n)])
        self.is_port = np.zeros(nlinks + n, bool)
        self.is_port[nlinks:] = True
        self.buffer = buffer
        self.busy = np.zeros(nlinks + n)

    def backlog(self, q: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Packets in queue ``q`` (the one being sent included, in part) at time ``t``."""
        return np.maximum(self.busy[q] - t, 0.0) / self.svc[q]


def simulate_packets(offered: np.ndarray, topo: Topology, route: Routing,
                     opts: PacketOptions | None = None) -> PacketResult:
    """Run the packet model on the N×N matrix ``offered`` (rates, units of R)."""
    started = time.perf_counter()
    opts = opts or PacketOptions()
    t = check_matrix(offered)
    n = topo.ports
    if t.shape[0] != n:
        raise ValueError(f"a {t.shape[0]}-port matrix for a {n}-port topology")
    if n > MAX_PORTS_PACKET:
        raise SimulationError("--n", f"{n} ports is too many for the packet model",
                              f"at most {MAX_PORTS_PACKET}; --model fluid takes "
                              "thousands")
    if opts.buffer < 1 or opts.flows < 1 or opts.duration <= 0:
        raise SimulationError("options", "buffer, flows and duration must be positive")
    if opts.flow_order not in ("cycle", "random"):
        raise SimulationError("--flow-order", f"{opts.flow_order!r}", "cycle or random")
    rng = np.random.default_rng(opts.seed)
    src, dst, flow, t_ext, nflows = _arrivals(t, opts, rng)
    net = _Net(topo, route, opts.buffer)
    sim = _Run(net, route, opts, rng, src, dst, flow, nflows)
    sim.run(t_ext + opts.server_latency)
    return _result(sim, t, topo, opts, t_ext, started)


def _arrivals(t: np.ndarray, opts: PacketOptions, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Every offered packet, in time order: input, output, flow and time; and the number
    of flows."""
    n = t.shape[0]
    rows = t.sum(axis=1)
    ticks = int(np.ceil(opts.duration))
    tick, src = np.nonzero(rng.random((ticks, n)) < rows)
    # Inputs are not clocked together: each line has its own phase within τ.
    t_ext = tick + rng.random(n)[src]
    order = np.argsort(t_ext, kind="stable")
    src, t_ext = src[order], t_ext[order]
    # The output, from the input's row: one search in the rows' CDFs laid end to end.
    with np.errstate(invalid="ignore", divide="ignore"):
        cdf = np.cumsum(t / np.where(rows > 0, rows, 1.0)[:, None], axis=1)
    for s in np.flatnonzero(rows > 0):
        cdf[s, int(np.flatnonzero(t[s] > 0)[-1]):] = 1.0  # no rounding past the last
    flat = (cdf + np.arange(n)[:, None]).ravel()
    pick = np.searchsorted(flat, src + rng.random(src.size), side="right")
    dst = np.minimum(pick - src * n, n - 1)
    # Flows are numbered over the pairs that send (a table of every pair's flows would
    # not fit for N = 256 and thousands of flows per pair).
    pairs, pair = np.unique(src * n + dst, return_inverse=True)
    if pairs.size * opts.flows > MAX_FLOWS:
        raise SimulationError("--flows", f"{pairs.size:,} pairs send, {opts.flows} flows "
                              f"each: more than {MAX_FLOWS:,} flows", "fewer flows per pair")
    if opts.flow_order == "cycle":
        # The k-th packet of a pair is on its flow k mod flows.
        by_pair = np.argsort(pair, kind="stable")
        k = np.arange(src.size)
        first = np.r_[True, pair[by_pair][1:] != pair[by_pair][:-1]]
        rank = np.empty(src.size, np.int64)
        rank[by_pair] = k - np.maximum.accumulate(np.where(first, k, 0))
        lane = rank % opts.flows
    else:
        lane = rng.integers(0, opts.flows, src.size)
    return src, dst, pair * opts.flows + lane, t_ext, pairs.size * opts.flows


class _Run:
    """The state of one run and its time loop."""

    def __init__(self, net: _Net, route: Routing, opts: PacketOptions,
                 rng: np.random.Generator, src: np.ndarray, dst: np.ndarray,
                 flow: np.ndarray, nflows: int) -> None:
        n, topo = net.n, net.topo
        self.net, self.route, self.opts, self.rng = net, route, opts, rng
        self.src, self.dst, self.flow = src, dst, flow
        m = src.size
        self.path = np.full((m, net.hops), -1, np.int64)
        self.via = np.full(m, -1, np.int64)  # intermediate (mesh) or path (n-fly)
        self.reached = np.full(m, -1, np.int64)  # last hop that received the packet
        self.exit = np.full(m, np.nan)
        self.drop_q = np.full(m, -1, np.int64)
        self.last_seen = np.full(nflows, -np.inf)
        self.flow_via = np.full(nflows, -1, np.int64)
        self.stats = {"new": 0, "kept": 0, "moved": 0, "spread": 0}
        burst = opts.burst
        # Token buckets, refilled lazily when read: the direct budget per pair (mesh) or
        # the budget per path at each input (n-fly).
        width = n if topo.kind == "mesh" else topo.paths
        self.tokens = np.full((n, width), burst)
        self.tokens_at = np.zeros((n, width))
        self.token_rate = (route.direct_rate if topo.kind == "mesh"
                           else route.link_rate / topo.paths)
        self.steps = 0

    # -------------------------------------------------------------- buckets
    def _bucket(self, s: np.ndarray, x: np.ndarray, now: np.ndarray) -> np.ndarray:
        return np.minimum(self.opts.burst,
                          self.tokens[s, x] + self.token_rate * (now - self.tokens_at[s, x]))

    def _charge(self, s: np.ndarray, x: np.ndarray, now: np.ndarray) -> None:
        self.tokens[s, x] = np.maximum(self._bucket(s, x, now) - 1.0, -self.opts.burst)
        self.tokens_at[s, x] = now

    # -------------------------------------------------------------- path choice
    def _fresh(self, s: np.ndarray, d: np.ndarray, now: np.ndarray) -> np.ndarray:
        """A new choice for each packet: the intermediate (d: straight) or the path."""
        net, n, rng = self.net, self.net.n, self.rng
        if net.topo.kind == "nfly":
            p = net.topo.paths
            if self.route.vlb == "classic":
                return rng.integers(0, p, s.size)
            budget = self._bucket(s[:, None], np.arange(p)[None, :], now[:, None])
            return np.argmax(budget + rng.random(budget.shape) * 1e-6, axis=1)
        if self.route.vlb == "classic":
            x = rng.integers(0, n, s.size)
            return np.where((x == s) | (x == d), d, x)
        straight = ((self._bucket(s, d, now) > 0)
                    & (net.backlog(s * n + d, now) < self.opts.burst))
        if n == 2:
            return d.copy()
        backlog = np.maximum(net.busy[s[:, None] * n + np.arange(n)[None, :]]
                             - now[:, None], 0.0) + rng.random((s.size, n)) * 1e-6
        rows = np.arange(s.size)
        backlog[rows, s] = np.inf
        backlog[rows, d] = np.inf
        return np.where(straight, d, np.argmin(backlog, axis=1))

    def _room(self, s: np.ndarray, d: np.ndarray, x: np.ndarray, now: np.ndarray,
              debt: float) -> np.ndarray:
        """Whether path ``x`` can take one more packet and stay within ``debt`` bursts of
        its budget: a flowlet's own path may run one burst into debt (``debt`` 1), a
        fresh choice must have budget (``debt`` 0). A mesh link's budget is the burst
        minus its backlog (what the DirectVLB element's link bucket stands for)."""
        burst = self.opts.burst
        if self.net.topo.kind == "nfly":
            return self._bucket(s, x, now) - (1.0 if debt else 0.0) >= -debt * burst
        left = burst - self.net.backlog(s * self.net.n + x, now)
        ok = left - (1.0 if debt else 0.0) >= -debt * burst
        if self.route.vlb == "direct":
            ok &= (x != d) | (self._bucket(s, d, now) - (1.0 if debt else 0.0)
                              >= -debt * burst)
        return ok

    def decide(self, pid: np.ndarray, now: np.ndarray) -> None:
        """Paths of new packets (at most one per input: inputs send one per τ)."""
        s, d = self.src[pid], self.dst[pid]
        x = self._fresh(s, d, now)
        if self.opts.flowlets:
            f = self.flow[pid]
            cur = self.flow_via[f]
            fresh = (cur < 0) | (now - self.last_seen[f] > self.opts.delta)
            keep = ~fresh & self._room(s, d, np.maximum(cur, 0), now, 1.0)
            full = ~fresh & ~keep
            moved = full & self._room(s, d, x, now, 0.0)
            x = np.where(keep, cur, x)
            renew = fresh | moved
            self.flow_via[f[renew]] = x[renew]
            self.last_seen[f] = now
            st = self.stats
            st["new"] += int(fresh.sum())
            st["kept"] += int(keep.sum())
            st["moved"] += int(moved.sum())
            st["spread"] += int((full & ~moved).sum())
        local = s == d
        x = np.where(local, d, x)
        self.via[pid] = x
        net, n = self.net, self.net.n
        if net.topo.kind == "mesh":
            if self.route.vlb == "direct":
                sd = ~local & (x == d)
                self._charge(s[sd], d[sd], now[sd])
            relay = x != d
            path = np.full((pid.size, 3), -1, np.int64)
            path[:, 0] = np.where(local, net.port0 + d, s * n + x)
            path[:, 1] = np.where(relay, x * n + d, np.where(local, -1, net.port0 + d))
            path[:, 2] = np.where(relay, net.port0 + d, -1)
        else:
            self._charge(s[~local], x[~local], now[~local])
            hops = [*fly_up_links(net.topo, s, x), *fly_down_links(net.topo, d, x),
                    net.port0 + d]
            path = np.stack(hops, axis=1)
            path[local, 0] = net.port0 + d[local]
            path[local, 1:] = -1
        self.path[pid] = path

    # -------------------------------------------------------------- the time loop
    def run(self, t_first: np.ndarray) -> None:
        """Every packet from its first queue (``t_first``: arrival there) to its end."""
        net = self.net
        step = float(net.svc.min())
        lat = self.opts.server_latency
        calendar: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        keys: list[int] = []
        new_step = np.floor(t_first / step).astype(np.int64)
        i_new, m = 0, t_first.size
        while i_new < m or keys:
            b = min(keys[0] if keys else np.iinfo(np.int64).max,
                    int(new_step[i_new]) if i_new < m else np.iinfo(np.int64).max)
            parts = []
            if keys and keys[0] == b:
                parts = calendar.pop(heapq.heappop(keys))
            if i_new < m and new_step[i_new] == b:
                j = int(np.searchsorted(new_step, b, side="right"))
                pid = np.arange(i_new, j)
                self.decide(pid, t_first[i_new:j])
                parts.append((pid, t_first[i_new:j], np.zeros(j - i_new, np.int64)))
                i_new = j
            self.steps += 1
            pid = np.concatenate([p[0] for p in parts])
            at = np.concatenate([p[1] for p in parts])
            hop = np.concatenate([p[2] for p in parts])
            nxt = self._serve(pid, at, hop)
            if nxt is None:
                continue
            npid, nat, nhop = nxt
            nat = nat + lat
            nb = np.floor(nat / step).astype(np.int64)
            order = np.argsort(nb, kind="stable")
            nb, npid, nat, nhop = nb[order], npid[order], nat[order], nhop[order]
            cuts = np.flatnonzero(np.diff(nb)) + 1
            for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, nb.size], strict=True):
                key = int(nb[lo])
                if key not in calendar:
                    calendar[key] = []
                    heapq.heappush(keys, key)
                calendar[key].append((npid[lo:hi], nat[lo:hi], nhop[lo:hi]))

    def _serve(self, pid: np.ndarray, at: np.ndarray, hop: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Enqueue this step's arrivals, queue by queue in time order; return the packets
        that go on (id, departure time, next hop)."""
        net = self.net
        q = self.path[pid, hop]
        order = np.lexsort((at, q))
        pid, at, hop, q = pid[order], at[order], hop[order], q[order]
        k = np.arange(q.size)
        first = np.r_[True, q[1:] != q[:-1]]
        rank = k - np.maximum.accumulate(np.where(first, k, 0))
        self.reached[pid] = hop
        dep = np.empty(q.size)
        ok = np.empty(q.size, bool)
        for r in range(int(rank.max()) + 1):
            sel = np.flatnonzero(rank == r) if r else np.flatnonzero(first)
            qq, tt = q[sel], at[sel]
            wait = np.maximum(net.busy[qq] - tt, 0.0)
            svc = net.svc[qq]
            good = np.ceil(wait / svc - _EPS) < net.buffer
            done = tt + wait + svc
            net.busy[qq[good]] = done[good]
            dep[sel], ok[sel] = done, good
        self.drop_q[pid[~ok]] = q[~ok]
        out = ok & net.is_port[q]
        self.exit[pid[out]] = dep[out]
        on = ok & ~net.is_port[q]
        if not on.any():
            return None
        return pid[on], dep[on], hop[on] + 1


def _result(sim: _Run, t: np.ndarray, topo: Topology, opts: PacketOptions,
            t_ext: np.ndarray, started: float) -> PacketResult:
    n = topo.ports
    net = sim.net
    src, dst = sim.src, sim.dst
    delivered = ~np.isnan(sim.exit)
    dropped = sim.drop_q >= 0
    assert not (delivered & dropped).any() and (delivered | dropped).all()
    per_output = {"offered": np.bincount(dst, minlength=n),
                  "delivered": np.bincount(dst[delivered], minlength=n),
                  "dropped": np.bincount(dst[dropped], minlength=n)}
    at_port = dropped & net.is_port[np.maximum(sim.drop_q, 0)]
    reordered, sequences = _reordering(sim.flow[delivered], np.flatnonzero(delivered),
                                       sim.exit[delivered])
    lat = sim.exit[delivered] - t_ext[delivered]
    latency = ({"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                "max": float(lat.max()), "mean": float(lat.mean())} if lat.size
               else {"p50": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0})
    # Processing: every arrival at a queue, counted at the server that sends on it (it
    # received the packet, even if the queue then dropped it).
    dur = opts.duration
    roles = np.zeros((4, topo.servers))  # input, intermediate, output, switch
    for h in range(net.hops):
        pid = np.flatnonzero(sim.reached >= h)
        q = sim.path[pid, h]
        pid, q = pid[q >= 0], q[q >= 0]
        owner = net.owner[q]
        role = np.where(h == 0, 0, np.where(net.is_port[q], 2, np.where(owner >= n, 3, 1)))
        np.add.at(roles, (role, owner), 1.0)
    roles /= dur
    # Delivered rates over the time packets were leaving (queues drain after the inputs
    # stop): an output's rate stays within its R.
    span = max(dur, float(sim.exit[delivered].max())) if delivered.any() else dur
    pair_got = np.bincount(src[delivered] * n + dst[delivered],
                           minlength=n * n).reshape(n, n) / span
    crossing = src != dst
    relayed = crossing & (sim.via != dst) if topo.kind == "mesh" else crossing
    return PacketResult(
        offered=int(src.size), delivered=int(delivered.sum()), dropped=int(dropped.sum()),
        dropped_links=int((dropped & ~at_port).sum()), dropped_ports=int(at_port.sum()),
        per_output=per_output, reordered=reordered, reordered_sequences=sequences,
        latency=latency, load_input=roles[0, :n], load_intermediate=roles[1, :n],
        load_output=roles[2, :n], load_switch=roles[3, n:], flowlet_stats=dict(sim.stats),
        via_intermediate=float(relayed.sum() / max(1, crossing.sum())),
        fair=fairness(t, pair_got), duration=dur,
        elapsed=time.perf_counter() - started, steps=sim.steps)


def _reordering(flow: np.ndarray, sent: np.ndarray, exit_time: np.ndarray
                ) -> tuple[float, float]:
    """Fraction of packets overtaken by a later packet of their flow, and maximal runs of
    such packets per packet (``sent``: sending order, the packet ids)."""
    if not flow.size:
        return 0.0, 0.0
    order = np.lexsort((exit_time, flow))
    f, seq = flow[order], sent[order]
    # The highest sequence number seen so far in the flow: a running maximum that an
    # offset per flow keeps from leaking between flows.
    offset = (np.r_[0, np.cumsum(f[1:] != f[:-1])]).astype(np.int64) * (int(seq.max()) + 1)
    best = np.maximum.accumulate(seq + offset) - offset
    same = np.r_[False, f[1:] == f[:-1]]
    late = same & (seq < np.r_[0, best[:-1]])
    starts = late & ~np.r_[False, late[:-1] & same[1:]]
    return float(late.mean()), float(starts.mean())
