"""§6.2: RB4 in network namespaces -- what the cluster does with real traffic.

Every measurement brings a cluster up (``routebricks.cluster.launch.up``: four servers, a
full mesh of 2R/N links, R = 20 Mbit/s, tbf on every link, BFD up), starts a generator and
a sink agent on every external host, sends, reads the servers' role counters, and takes
the cluster down again (also on error or Ctrl-C):

* **matrices**: the uniform matrix (every port to the three others) at fractions of R, and
  the single-pair matrix (one port to one other, more than the direct link carries): loss,
  and per server the packets processed in any role (input, intermediate, output) per packet
  delivered -- VLB's theory: 2 when everything goes direct, up to 3;
* **loss-free rate**: the highest offered load per port with at most 0.1% loss under the
  uniform matrix, RB4 against one server that has all four ports;
* **reordering** under the single-pair matrix, the paper's metric (reordered sequences /
  packets received), without flowlets and with δ = 1, 10, 100 ms;
* **latency** (one-way, the sink's clock) at a low rate, two servers (direct) and three
  (``direct_rate`` at its minimum sends everything through an intermediate);
* **start-up**: ``routebricks cluster up`` and ``down`` timed as a user runs them.

Frames are 1400 bytes so that the links, not this machine's cores, are the limit (see the
README's cluster section). ``benchmarks/rb4.py`` runs this from the command line.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from routebricks.bench import plots
from routebricks.bench.core import Context, Ratio, Result, experiment, need_root, need_tool
from routebricks.bench.report import fmt_ratio

__all__ = ["Cluster", "measure", "tables"]

FRAME = 1400
RATE = 20e6  # R
SINGLE_RATE = 12e6  # the single pair: more than the 10 Mbit/s direct link
LOSS_FREE = 0.001

PAPER = """
§6.2: RB4 (four servers, a full mesh, one 10G port each, Direct VLB with flowlets) routes
64 B packets at 12 Gbit/s -- 1.24× one server's minimal forwarding (9.7), within the 2R..3R
per-server load VLB predicts (every 64 B packet went direct: 2R) -- and the Abilene trace at
35 Gbit/s. Reordering under a single-pair matrix: 5.5% of same-flow sequences without the
flowlet extension, 0.15% with it (δ = 100 ms). Latency, estimated: 24 µs per server,
47.6-66.4 µs through RB4 (2-3 servers).
"""


def rb4_toml(name: str = "rb4", **cluster: str) -> str:
    """RB4 as examples/rb4.toml describes it, with some [cluster] keys set (TOML values)."""
    keys = {"name": f'"{name}"', "rate": '"20Mbit"', "vlb": '"direct"', "flowlets": "true",
            "delta": '"100ms"', "topology": '"mesh"', "workers": "1", **cluster}
    text = "[cluster]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
    for i in range(1, 5):
        text += (f'\n[[servers]]\nname = "s{i}"\nports = [{{ interface = "ext0", address = '
                 f'"10.{i}.0.1/24", host = "h{i}", prefixes = ["10.10{i}.0.0/16"] }}]\n')
    return text


def one_server_toml() -> str:
    """One server with the four ports (and hosts) of RB4: the cluster's baseline."""
    ports = ",\n  ".join(f'{{ interface = "ext{i}", address = "10.{i + 1}.0.1/24", host = '
                         f'"h{i + 1}" }}' for i in range(4))
    return (f'[cluster]\nname = "one"\nrate = "20Mbit"\nworkers = 1\n\n[[servers]]\n'
            f'name = "s1"\nports = [\n  {ports}\n]\n')


class Cluster:
    """A cluster up for a ``with`` block, with a generator and a sink on every host."""

    def __init__(self, file: Path, quick: bool = False) -> None:
        from routebricks.cluster.spec import load_cluster

        self.spec = load_cluster(file)
        self.quick = quick
        self.state: Any = None
        self.gens: dict[str, Any] = {}
        self.sinks: dict[str, Any] = {}

    def __enter__(self) -> Cluster:
        from routebricks.cluster.launch import up

        t = time.perf_counter()
        self.state = up(self.spec)
        try:
            self.wait_bfd()
            self.up_s = time.perf_counter() - t
            self._start_agents()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        from routebricks.cluster.launch import down

        for a in [*self.gens.values(), *self.sinks.values()]:
            a.close()
        if self.state is not None:
            down(self.state.prefix)
            self.state = None

    def _start_agents(self) -> None:
        """All agents at once (each loads its compiled kernels: ~1 s)."""
        from routebricks.traffic.agents import GenAgent, SinkAgent

        errors: list[BaseException] = []

        def start(kind: type, h: str, into: dict[str, Any]) -> None:
            try:
                into[h] = kind("eth0", netns=self.state.host_netns(h))
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors.append(e)

        threads = [threading.Thread(target=start, args=(k, h, d)) for h in self.hosts()
                   for k, d in ((GenAgent, self.gens), (SinkAgent, self.sinks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def read(self, server: str, spec: str) -> str:
        from routebricks.runtime.control import ControlClient

        with ControlClient(self.state.servers[server]["socket"], timeout=10) as c:
            return c.read(spec)

    def wait_bfd(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = [s for s in self.state.servers
                       for n in self.read(s, "list").splitlines()[1:] if n.startswith("bfd")
                       and self.read(s, f"{n}.state").strip() != "Up"]
            if not pending:
                return
            time.sleep(0.2)

    def roles(self) -> dict[str, tuple[int, int, int]]:
        from routebricks.cluster.status import snapshot

        return {n: (s.input, s.intermediate, s.output)
                for n, s in snapshot(self.state).items()}

    def port_mac(self, host: str) -> str:
        from routebricks.cluster.config import port_mac

        port = next(p for p in self.spec.ports if p.host == host)
        return port_mac(self.spec, port)

    def hosts(self) -> dict[str, str]:
        return {p.host: str(p.host_address.ip) for p in self.spec.ports
                if p.host and p.host_address}

    def matrix(self, pairs: dict[str, list[str]], rate: float, seconds: float,
               flows: int = 48) -> dict[str, Any]:
        """Each source host sends ``rate`` bit/s for ``seconds`` to its destination hosts
        (in turn, packet by packet); totals, per-server role counts and the sinks' results."""
        hosts = self.hosts()
        dsts = sorted({d for ds in pairs.values() for d in ds})
        for h, ds in pairs.items():
            self.gens[h].configure(dst=[int(ipaddress.IPv4Address(hosts[d])) for d in ds],
                                   dst_mac=self.port_mac(h), flows=flows, size=FRAME,
                                   dst_per_packet=True)
        for h in pairs:  # ARP resolved at every output port before we measure
            self.gens[h].send(rate=f"{rate:.0f}bps", duration=0.3)
        time.sleep(0.5 if self.quick else 1.0)
        before = self.roles()
        for d in dsts:
            self.sinks[d].start()
        sent: dict[str, Any] = {}
        threads = [threading.Thread(target=lambda h=h: sent.setdefault(
            h, self.gens[h].send(rate=f"{rate:.0f}bps", duration=seconds))) for h in pairs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(1.0 if self.quick else 1.5)  # the tbf queues drain (50 ms each)
        got = {d: self.sinks[d].stop() for d in dsts}
        after = self.roles()
        n_sent = sum(int(g["sent"]) for g in sent.values())
        n_recv = sum(int(s["received"]) for s in got.values())
        roles = {s: tuple(a - b for a, b in zip(after[s], before[s], strict=True))
                 for s in after}
        return {"sent": n_sent, "received": n_recv, "loss": (n_sent - n_recv) / max(n_sent, 1),
                "roles": roles, "sinks": got}


def uniform(c: Cluster) -> dict[str, list[str]]:
    hosts = list(c.hosts())
    return {h: [d for d in hosts if d != h] for h in hosts}


def load_per_delivered(res: dict[str, Any]) -> dict[str, float] | None:
    """Per server, the packets it processed in any role per packet the cluster delivered;
    "all" is their sum (2 when everything goes direct, up to 3)."""
    delivered = sum(r[2] for r in res["roles"].values())
    if not delivered:
        return None
    out = {s: sum(r) / delivered for s, r in sorted(res["roles"].items())}
    out["all"] = sum(sum(r) for r in res["roles"].values()) / delivered
    return out


def _startup(tmp: Path) -> dict[str, Any]:
    """``routebricks cluster up FILE --json`` and ``down PREFIX`` as a user runs them."""
    from routebricks.bench.drain import routebricks_argv

    file = tmp / "rb4-startup.toml"
    file.write_text(rb4_toml())
    cli = [*routebricks_argv(), "cluster"]
    t = time.perf_counter()
    res = subprocess.run([*cli, "up", str(file), "--json"], capture_output=True, text=True)
    up_s = time.perf_counter() - t
    prefix = json.loads(res.stdout)["prefix"] if res.returncode == 0 else ""
    t = time.perf_counter()
    if prefix:
        subprocess.run([*cli, "down", prefix], capture_output=True, text=True)
    down_s = time.perf_counter() - t
    return {"up_s": up_s, "down_s": down_s,
            "error": None if res.returncode == 0 else res.stderr.strip()[:300]}


def measure(tmp: Path, quick: bool, seconds: float, step: Callable[[str], None]) -> dict[str, Any]:
    """Every RB4 measurement (fewer under ``quick``); returns the numbers."""
    loads = [0.9] if quick else [0.5, 0.8, 0.9, 1.0]
    deltas = [] if quick else [1, 10]
    out: dict[str, Any] = {"frame": FRAME, "rate": RATE, "seconds": seconds, "loads": loads,
                           "uniform": {}, "uniform_load": {}, "reorder": {}, "latency": {}}
    if not quick:
        step("start-up: routebricks cluster up / down, as a user runs them")
        out["startup"] = _startup(tmp)
    rb4 = tmp / "rb4.toml"
    rb4.write_text(rb4_toml())
    step("RB4 (flowlets, δ 100 ms): up, BFD, agents")
    with Cluster(rb4, quick) as c:
        out["up_s"] = c.up_s
        for f in loads:
            step(f"RB4: uniform matrix at {f:.0%} of R")
            r = c.matrix(uniform(c), f * RATE, seconds)
            out["uniform"].setdefault("RB4", {})[str(f)] = r["loss"]
            out["uniform_load"][str(f)] = load_per_delivered(r)
        step("RB4: single pair h1 -> h2 at 12 Mbit/s")
        r = c.matrix({"h1": ["h2"]}, SINGLE_RATE, seconds, flows=16)
        out["single_pair"] = {"loss": r["loss"], "load": load_per_delivered(r)}
        s = r["sinks"]["h2"]
        out["reorder"]["flowlets, δ 100 ms"] = s["reordered_sequences"] / max(1, s["received"])
        step("RB4: latency at 2 Mbit/s, two servers")
        r = c.matrix({"h1": ["h2"]}, 2e6, seconds, flows=4)
        out["latency"]["2 servers (direct)"] = _lat(r)
    variants: list[tuple[str, dict[str, str]]] = [("no flowlets", {"flowlets": "false"})]
    variants += [(f"flowlets, δ {d} ms", {"delta": f'"{d}ms"'}) for d in deltas]
    for i, (label, keys) in enumerate(variants):
        f = tmp / f"variant{i}.toml"
        f.write_text(rb4_toml(f"rb4v{i}", **keys))
        step(f"reordering, {label}: up, single pair")
        with Cluster(f, quick) as c:
            r = c.matrix({"h1": ["h2"]}, SINGLE_RATE, seconds, flows=16)
        s = r["sinks"]["h2"]
        out["reorder"][label] = s["reordered_sequences"] / max(1, s["received"])
    if not quick:
        f = tmp / "lat3.toml"
        f.write_text(rb4_toml("rb4lat", direct_rate='"8kbit"'))
        step("latency, three servers (via an intermediate)")
        with Cluster(f) as c:
            out["latency"]["3 servers (via an intermediate)"] = _lat(
                c.matrix({"h1": ["h2"]}, 2e6, seconds, flows=4))
        f = tmp / "one.toml"
        f.write_text(one_server_toml())
        step("one server with the four ports: up")
        with Cluster(f) as c:
            for ld in loads:
                step(f"one server: uniform matrix at {ld:.0%} of R")
                out["uniform"].setdefault("one server", {})[str(ld)] = \
                    c.matrix(uniform(c), ld * RATE, seconds)["loss"]
    out["loss_free"] = {k: max([float(f) for f, loss in v.items() if loss <= LOSS_FREE],
                               default=0.0) for k, v in out["uniform"].items()}
    return out


def _lat(r: dict[str, Any]) -> dict[str, float]:
    lat = r["sinks"]["h2"]["latency"]
    return {k: lat[k] / 1e6 for k in ("p50_ns", "p99_ns", "max_ns")}


def _steps(quick: bool) -> int:
    return 5 if quick else 17


@experiment("rb4", "§6.2 — RB4, a router made of four servers", paper=PAPER,
            paper_ratio="RB4 / one server = 1.24× (64 B); 2R per server when all goes direct; "
            "reordering 5.5% → 0.15% with flowlets (37×); latency 3 / 2 servers = 1.39×",
            seconds=(45, 300))
def run(ctx: Context) -> Result:
    from routebricks.bench.core import Skip

    if ctx.memory_only:
        raise Skip("needs namespaces (--memory-only)")
    need_root("RB4")
    need_tool("tc", "iproute2")
    ctx.total(_steps(ctx.quick) + 1)
    d = measure(ctx.tmp, ctx.quick, ctx.pick(2.0, 8.0), ctx.step)
    ctx.step("plotting")
    rf = d["reorder"]
    no, yes = rf.get("no flowlets"), rf.get("flowlets, δ 100 ms")
    lat = d["latency"]
    lf = d["loss_free"]
    ul = d["uniform_load"].get("0.9") or {}
    ratios = [
        Ratio("RB4 / one server, loss-free aggregate rate", 12 / 9.7,
              lf["RB4"] / lf["one server"] if lf.get("one server") else None,
              "here both are limited by the emulated 20 Mbit/s links, by design"),
        Ratio("packets processed per packet delivered, uniform matrix", 2.0, ul.get("all"),
              "2 = every packet direct (2R per server), 3 = all through an intermediate"),
        Ratio("… single pair above the direct link", None,
              (d["single_pair"]["load"] or {}).get("all"), "between 2 and 3"),
        Ratio("reordering without flowlets / with (δ 100 ms)", 5.5 / 0.15,
              no / yes if no is not None and yes else None),
        Ratio("reordered sequences, no flowlets", 5.5, 100 * no if no is not None else None,
              unit="%"),
        Ratio("reordered sequences, flowlets δ 100 ms", 0.15,
              100 * yes if yes is not None else None, unit="%"),
        Ratio("latency, 3 servers / 2 servers (p50)", 66.4 / 47.6,
              lat["3 servers (via an intermediate)"]["p50_ns"]
              / lat["2 servers (direct)"]["p50_ns"]
              if "3 servers (via an intermediate)" in lat else None,
              "the paper's is an estimate (24 µs per server)"),
    ]
    png = _plot(ctx, d)
    summary = (f"processed/delivered {fmt_ratio(ul.get('all'))} uniform (paper 2); "
               f"reordering {_pct(no)} → {_pct(yes)} with flowlets (paper 5.5% → 0.15%); "
               f"latency p50 {lat['2 servers (direct)']['p50_ns']:.1f} ms direct")
    notes = [f"Emulated: R = 20 Mbit/s, internal links 10 Mbit/s, {FRAME}-byte frames, "
             f"{d['seconds']:g} s of traffic per run, tbf on every link: the shaped links are "
             "the bottleneck, as intended, so rates are not comparable with the paper's, the "
             "ratios and the load per server are."]
    if "startup" in d:
        st = d["startup"]
        notes.append(f"`routebricks cluster up` took {st['up_s']:.1f} s and `down` "
                     f"{st['down_s']:.1f} s as a user runs them"
                     + (f" (up failed: {st['error']})" if st["error"] else "") + ".")
    notes.append("The roles' CPU cost (memory to memory): benchmarks/cluster_roles.py.")
    return Result(summary=summary, body=tables(d), ratios=ratios, data=d,
                  plots=[png] if png else [], notes=notes + ([] if png else [plots.MISSING]))


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}%"


def tables(d: dict[str, Any]) -> str:
    """Markdown tables of :func:`measure`'s numbers."""
    lines = ["| matrix | offered per port | loss | packets processed per packet delivered |",
             "|---|---:|---:|---|"]
    for label, by in d["uniform"].items():
        for f, loss in by.items():
            load = d["uniform_load"].get(f) if label == "RB4" else None
            lines.append(f"| uniform, {label} | {float(f):.0%} of R | {loss:.3%} | "
                         f"{_load(load)} |")
    sp = d["single_pair"]
    lines.append(f"| single pair h1 → h2 | 12 Mbit/s | {sp['loss']:.3%} | {_load(sp['load'])} |")
    lines += ["", "| loss-free (≤ 0.1%), uniform | per port | whole router |", "|---|---:|---:|"]
    for label, f in d["loss_free"].items():
        lines.append(f"| {label} | {f:.0%} of R | {4 * f * RATE / 1e6:.0f} Mbit/s |")
    lines += ["", "| reordering, single pair at 12 Mbit/s | reordered sequences / received |",
              "|---|---:|"]
    lines += [f"| {k} | {v:.3%} |" for k, v in d["reorder"].items()]
    lines += ["", "| one-way latency at 2 Mbit/s | p50 | p99 | max |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {v['p50_ns']:.2f} ms | {v['p99_ns']:.2f} ms | {v['max_ns']:.2f} ms |"
              for k, v in d["latency"].items()]
    return "\n".join(lines)


def _load(load: dict[str, float] | None) -> str:
    if not load:
        return "–"
    return ", ".join(f"{k} {v:.2f}" for k, v in load.items() if k != "all") + \
        f"; all {load['all']:.2f}"


def _plot(ctx: Context, d: dict[str, Any]) -> str | None:
    if not plots.available():
        return None
    return plot(ctx.plot_path("rb4.png"), d)


def plot(out: Path, d: dict[str, Any]) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.2))
    ax = fig.subplots(1, 3)
    for label, by in d["uniform"].items():
        xs = sorted(by, key=float)
        ax[0].plot([float(x) * 100 for x in xs], [by[x] * 100 for x in xs], marker="o",
                   label=label)
    ax[0].axhline(LOSS_FREE * 100, color="grey", linestyle=":", label="0.1%")
    ax[0].set(title="uniform matrix: loss", xlabel="offered load per port (% of R)",
              ylabel="loss (%)")
    ax[0].legend()
    reorder = d["reorder"]
    ax[1].bar(range(len(reorder)), [v * 100 for v in reorder.values()])
    ax[1].set_xticks(range(len(reorder)), list(reorder), rotation=20, ha="right")
    ax[1].set(title="single pair at 12 Mbit/s: reordering",
              ylabel="reordered sequences / received (%)")
    latency = d["latency"]
    labels = list(latency)
    for i, key in enumerate(("p50_ns", "p99_ns")):
        ax[2].bar([x + 0.4 * i for x in range(len(labels))],
                  [latency[lb][key] for lb in labels], width=0.4, label=key[:3])
    ax[2].set_xticks([x + 0.2 for x in range(len(labels))], labels)
    ax[2].set(title="one-way latency at 2 Mbit/s", ylabel="ms")
    ax[2].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return out.name
