"""``routebricks cluster status``: what every server of a running cluster is doing.

Per server, from its control socket: packets it took in on its external ports (its *input*
role), frames it passed on between two other servers (*intermediate*), frames it put out of
its own ports for the cluster (*output*), and its drops by reason; per internal and external
link, the packets per second the kernel counted on each end. Rates are differences between
two snapshots.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from routebricks.cluster.config import is_external_input
from routebricks.cluster.launch import ClusterState
from routebricks.errors import RouteBricksError


@dataclass
class ServerSnapshot:
    name: str
    up: bool
    error: str = ""
    input: int = 0  # packets in on external ports
    intermediate: int = 0  # frames switched on to another server
    output: int = 0  # frames out of an own port for the cluster
    forwarded_local: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    links: dict[str, tuple[int, int]] = field(default_factory=dict)  # ifname -> (rx, tx)


def snapshot_server(state: ClusterState, name: str) -> ServerSnapshot:
    from routebricks.runtime.control import ControlClient

    info = state.servers[name]
    snap = ServerSnapshot(name, up=False)
    try:
        with ControlClient(info["socket"], timeout=5) as c:
            rows = json.loads(c.read("stats"))
    except (RouteBricksError, OSError, ValueError) as e:
        snap.error = str(e).splitlines()[0]
    else:
        from routebricks.engine.registry import get_class

        snap.up = True
        switched = 0  # by a mesh's switch: intermediate, or to this server's output
        for r in rows:
            el, cls = r["element"], r["class"]
            role = getattr(get_class(cls), "CLUSTER_ROLE", None)
            if is_external_input(el, cls):
                snap.input += int(r.get("count") or r["packets"])
            elif role == "switch":
                switched += int(r["packets"])
            elif role == "intermediate":
                snap.intermediate += int(r["packets"])
            elif role == "output":
                snap.output += int(r["packets"])
            for why, n in r["drop_reasons"].items():
                key = f"{el}: {why}"
                snap.drops[key] = snap.drops.get(key, 0) + int(n)
        snap.intermediate += max(0, switched - snap.output)
    snap.links = _link_counters(info["netns"])
    return snap


def _link_counters(ns: str) -> dict[str, tuple[int, int]]:
    try:
        from routebricks.netns.tc import link_stats
    except ImportError:  # pragma: no cover - the tc module is part of the package
        return {}
    try:
        return {s.interface: (s.rx_packets, s.tx_packets) for s in link_stats(ns)
                if s.interface != "lo"}
    except RouteBricksError:
        return {}


def snapshot(state: ClusterState) -> dict[str, ServerSnapshot]:
    return {name: snapshot_server(state, name) for name in state.servers}


def render(state: ClusterState, prev: dict[str, ServerSnapshot],
           cur: dict[str, ServerSnapshot], dt: float) -> Any:
    from rich.console import Group
    from rich.table import Table

    servers = Table(title=f"cluster {state.name} ({state.prefix}) — rates over {dt:.1f} s")
    for col in ("server", "state", "input/s", "intermediate/s", "output/s", "drops/s",
                "input", "intermediate", "output", "drops"):
        servers.add_column(col, justify="left" if col in ("server", "state") else "right")
    links = Table(title="links (kernel counters, packets/s)")
    for col in ("server", "interface", "rx/s", "tx/s"):
        links.add_column(col, justify="left" if col in ("server", "interface") else "right")
    drops = Table(title="drops by reason (since start)")
    for col in ("server", "where: reason", "packets"):
        drops.add_column(col, justify="right" if col == "packets" else "left")
    for name, c in cur.items():
        p = prev.get(name, c)
        rate = (lambda a, b: f"{(a - b) / dt:,.0f}") if dt > 0 else (lambda a, b: "-")
        if not c.up:
            servers.add_row(name, f"[red]down[/red] ({c.error[:40]})", *["-"] * 8)
        else:
            servers.add_row(name, "up", rate(c.input, p.input),
                            rate(c.intermediate, p.intermediate), rate(c.output, p.output),
                            rate(sum(c.drops.values()), sum(p.drops.values())),
                            f"{c.input:,}", f"{c.intermediate:,}", f"{c.output:,}",
                            f"{sum(c.drops.values()):,}")
        for ifname, (rx, tx) in sorted(c.links.items()):
            prx, ptx = p.links.get(ifname, (rx, tx))
            links.add_row(name, ifname, rate(rx, prx), rate(tx, ptx))
        for why, n in sorted(c.drops.items()):
            drops.add_row(name, why, f"{n:,}")
    return Group(servers, links, drops)


def run_status(prefix: str | None, interval: float, once: bool, as_json: bool) -> None:
    from rich.console import Console
    from rich.live import Live

    state = ClusterState.load(prefix)
    prev = snapshot(state)
    t0 = time.monotonic()
    if once or as_json:
        time.sleep(interval)
        cur = snapshot(state)
        dt = time.monotonic() - t0
        if as_json:
            print(json.dumps({"prefix": state.prefix, "interval": dt,
                              "servers": {n: s.__dict__ for n, s in cur.items()}}))
            return
        console = Console() if Console().is_terminal else Console(width=200)
        console.print(render(state, prev, cur, dt))
        return
    with Live(refresh_per_second=4, screen=False) as live:
        try:
            while True:
                time.sleep(interval)
                cur = snapshot(state)
                t1 = time.monotonic()
                live.update(render(state, prev, cur, t1 - t0))
                prev, t0 = cur, t1
        except KeyboardInterrupt:
            pass
