"""The fluid (flow-level) model of a VLB cluster: rates, no packets.

Steps, each a few numpy passes over N×N arrays (N = 1,024: about a second):

1. **Outputs.** Each output's R is shared among its inputs *max-min fairly*
   (water-filling, :func:`~.simulate.maxmin_share`): what an oversubscribed output cannot
   take is dropped, fairly, and the rest — the *admitted* matrix — is routed. The paper's
   claim (§3.2) is that VLB's intermediates, each seeing a uniform sample of the traffic,
   can make this decision locally; the model makes it exactly.
2. **Routing.** Classic VLB splits each pair evenly over its N phase-1 choices (mesh:
   the N servers, input and output meaning straight; n-fly: the k^(n-1) paths). Direct
   VLB (mesh) sends min(T_ij, direct_rate) straight and spreads the rest evenly: over the
   N-1 servers other than the input (the output's share going straight) when the direct
   share leaves room on the link, else over the N-2 intermediates — so that a
   permutation at R fits 2R/N links exactly. An n-fly has no direct path: both modes
   spread evenly over the paths.
3. **Links.** Each internal link's load against its rate; an overloaded link delivers
   the fraction rate/load of what it carries, on every path through it (upstream drops
   are not subtracted downstream: a pessimistic first-order estimate). Admissible
   matrices overload nothing under classic VLB; Direct VLB's oblivious spread can
   overload links for adversarial matrices (the paper's Direct VLB relies on adaptive
   choices for its guarantee), and the model shows that as loss.
4. **Servers.** A server's processing load is the traffic it receives: from its external
   port (input role), as an intermediate (phase 1 for another output), for its own port
   (output role); n-fly switch servers receive from their links. Units of R.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from routebricks.cluster.simulate import (
    Fairness,
    ModelResult,
    Routing,
    Topology,
    check_matrix,
    fairness,
    fly_down_links,
    fly_link_ends,
    fly_up_links,
    maxmin_share,
)


@dataclass
class FluidResult(ModelResult):
    """What the fluid model found (rates in units of R)."""

    offered: float  # total offered
    delivered: float
    dropped_output: float  # max-min fair drops at oversubscribed outputs
    dropped_links: float  # lost on overloaded internal links
    per_output: dict[str, np.ndarray]  # offered, delivered, dropped per output port
    load_input: np.ndarray  # per io server, by role
    load_intermediate: np.ndarray
    load_output: np.ndarray
    load_switch: np.ndarray  # per n-fly switch server (empty for a mesh)
    link_load: np.ndarray  # per used internal link, fraction of its rate
    fair: Fairness
    elapsed: float
    spread_over: str = ""  # how Direct VLB spread its excess (mesh)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def carried(self) -> float:
        """Delivered over the max-min fair share of the outputs (1: the fabric lost
        nothing an ideal output-queued router would have delivered)."""
        admitted = self.offered - self.dropped_output
        return self.delivered / admitted if admitted else 1.0


def simulate_fluid(offered: np.ndarray, topo: Topology, route: Routing) -> FluidResult:
    """Run the fluid model on the N×N matrix ``offered`` (units of R)."""
    started = time.perf_counter()
    t = check_matrix(offered)
    n = topo.ports
    if t.shape[0] != n:
        raise ValueError(f"a {t.shape[0]}-port matrix for a {n}-port topology")
    admitted, _ = maxmin_share(t)
    # A port's traffic to itself never enters the fabric.
    local = np.diag(admitted).copy()
    a = admitted.copy()
    np.fill_diagonal(a, 0.0)
    if topo.kind == "mesh":
        frac, relay, link_load, spread, load_switch = _mesh(a, n, route)
    else:
        frac, relay, link_load, load_switch = _fly(a, topo, route)
        spread = ""
    delivered = a * frac
    np.fill_diagonal(delivered, local)
    col_offered = t.sum(axis=0)
    col_delivered = delivered.sum(axis=0)
    col_admitted = admitted.sum(axis=0)
    per_output = {"offered": col_offered, "delivered": col_delivered,
                  "dropped": col_offered - col_delivered}
    total = float(t.sum())
    got = float(col_delivered.sum())
    return FluidResult(
        offered=total, delivered=got,
        dropped_output=float((col_offered - col_admitted).sum()),
        dropped_links=float((col_admitted - col_delivered).sum()),
        per_output=per_output, load_input=t.sum(axis=1), load_intermediate=relay,
        load_output=col_delivered, load_switch=load_switch, link_load=link_load,
        fair=fairness(t, delivered), elapsed=time.perf_counter() - started,
        spread_over=spread)


def _delivered_fraction(link_load: np.ndarray, capacity: float) -> np.ndarray:
    """Fraction of what each link carries that it delivers."""
    out = np.ones_like(link_load, dtype=float)
    over = link_load > capacity  # only there: dividing by a tiny load would overflow
    out[over] = capacity / link_load[over]
    return out


def _mesh(a: np.ndarray, n: int, route: Routing
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, np.ndarray]:
    """Link loads, per-pair delivered fraction and intermediate loads over a full mesh.

    ``p1[s, x]`` is what s sends x to relay, ``p2[x, d]`` what x relays to d, ``straight``
    what goes from s to d on their own link; link s→x carries straight + p1 + p2."""
    if route.vlb == "classic" or n == 2:
        # Intermediate x uniform over N; x = s or x = d is the straight link, which these
        # sums count once each (they are different frames).
        straight = np.zeros_like(a)
        excess, ways, via_output = a, n, True
        spread = ""
    else:
        straight = np.minimum(a, route.direct_rate)
        excess = a - straight
        via_output = route.direct_rate < route.link_rate
        ways = n - 1 if via_output else n - 2
        spread = ("the N-1 other servers (the output's share straight)" if via_output
                  else "the N-2 intermediates")
    erows, ecols = excess.sum(axis=1), excess.sum(axis=0)
    # Phase 1: s→x carries excess from s to every output d ≠ x (and d = x itself, straight,
    # when the output is one of the choices); phase 2: x→d carries d's excess from every
    # input s ≠ x (and s = x when the input is one of the choices: classic only).
    if route.vlb == "classic" or n == 2:
        p1 = np.broadcast_to(erows[:, None] / ways, a.shape)
        p2 = np.broadcast_to(ecols[None, :] / ways, a.shape)
    elif via_output:
        p1 = np.broadcast_to(erows[:, None] / ways, a.shape)
        p2 = (ecols[None, :] - excess) / ways
    else:
        p1 = (erows[:, None] - excess) / ways
        p2 = (ecols[None, :] - excess) / ways
    load = straight + p1 + p2
    np.fill_diagonal(load, 0.0)
    f = _delivered_fraction(load, route.link_rate)
    np.fill_diagonal(f, 1.0)
    # Σ_x f[s,x]·f[x,d] over every x; with f's diagonal 1, x = s and x = d both give the
    # straight link's f[s,d].
    two_hop = f @ f
    if route.vlb == "classic" or n == 2:
        frac = two_hop / ways
    else:
        via = two_hop - (1.0 if via_output else 2.0) * f  # drop x = s (and x = d)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(a > 0, (straight * f + excess * via / ways) / a, 1.0)
    # An intermediate relays what it receives for other outputs: the pairs (s, d) with
    # s ≠ x ≠ d, each 1/ways of its excess.
    relay = (float(excess.sum()) - erows - ecols + np.diag(excess)) / ways
    used = ~np.eye(n, dtype=bool)
    return frac, relay, load[used] / route.link_rate, spread, np.zeros(0)


def _fly(a: np.ndarray, topo: Topology, route: Routing
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The same over a folded k-ary n-fly: an even spread over the P paths makes up-link
    loads depend on the inputs' rates only and down-link loads on the outputs'."""
    n, p = topo.ports, topo.paths
    rows, cols = a.sum(axis=1), a.sum(axis=0)
    nlinks = 2 * topo.stages * n
    load = np.zeros(nlinks)
    src = np.repeat(np.arange(n), p)
    path = np.tile(np.arange(p), n)
    ups = fly_up_links(topo, src, path)
    downs = fly_down_links(topo, src, path)  # src read as the output here
    for links, w in ((ups, rows[src] / p), (downs, cols[src] / p)):
        for ln in links:
            load += np.bincount(ln, weights=w, minlength=nlinks)
    f = _delivered_fraction(load, route.link_rate)
    up_f = np.ones(n * p)
    for ln in ups:
        up_f *= f[ln]
    down_f = np.ones(n * p)
    for ln in downs:
        down_f *= f[ln]
    # Pair (s, d) on path X passes s's up links and d's down links.
    frac = (up_f.reshape(n, p) @ down_f.reshape(n, p).T) / p
    # Processing counts what arrives: a switch, each of its links' load.
    _, recv = fly_link_ends(topo)
    switch = np.bincount(recv, weights=load, minlength=topo.servers)[n:]
    return frac, np.zeros(n), load / route.link_rate, switch
