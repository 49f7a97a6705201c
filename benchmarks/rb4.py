"""RB4 in network namespaces (RouteBricks §6): what the cluster does with real traffic.

Prints tables and writes a PNG; asserts nothing. Every run brings a cluster up from
``examples/rb4.toml`` (four servers, a full mesh of 2R/N links, R = 20 Mbit/s, tbf on
every link), sends with the traffic agents (gen on the hosts' interfaces, the sink on the
receiving hosts), reads the servers' counters, and takes the cluster down again:

* **start-up**: ``routebricks cluster up`` and ``down`` timed as a user runs them (the
  whole command: namespaces, links, tc, four routers compiled and ready, BFD up).
* **matrices**: the uniform matrix (every port sends to the three others) at fractions of
  R, and the single-pair matrix (one port to one other, more than the direct link
  carries); loss, and per server the packets processed (input + intermediate + output
  roles) per packet delivered out of its port (VLB's theory: 2 when all goes direct, up
  to 3).
* **reordering** under the single-pair matrix, the paper's metric (reordered sequences /
  packets received, §6.2), without flowlets and with δ = 1, 10, 100 ms.
* **latency** (one-way, the sink's clock) at a low rate, per hop count: two servers
  (direct) and three (``direct_rate`` at its minimum sends all through intermediates).
* **loss-free rate**: the highest offered load per port (fractions of R) with at most 0.1%
  loss under the uniform matrix, for RB4 and for one server that has all four ports.
* **role cost**: ``benchmarks/cluster_roles.py --quick`` (memory to memory, one core).

Frames are 1400 bytes so that the links, not this machine's two cores, are the limit (see
the README's cluster section).

    python benchmarks/rb4.py [--seconds 8] [--quick] [--png rb4.png]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RB4 = REPO / "examples" / "rb4.toml"
FRAME = 1400
LOSS_FREE = 0.001


def progress(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def variant(tmp: Path, name: str, **cluster: str) -> Path:
    """examples/rb4.toml with some [cluster] keys set (TOML values)."""
    lines = []
    for line in RB4.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(f"{key} = {cluster.pop(key)}" if key in cluster else line)
    text = "\n".join(lines) + "\n"
    extra = "".join(f"{k} = {v}\n" for k, v in cluster.items())
    text = text.replace("[cluster]\n", "[cluster]\n" + extra, 1)
    out = tmp / f"{name}.toml"
    out.write_text(text)
    return out


def one_server(tmp: Path) -> Path:
    """One server with the four ports (and hosts) of RB4: the cluster's baseline."""
    ports = ",\n  ".join(
        f'{{ interface = "ext{i}", address = "10.{i + 1}.0.1/24", host = "h{i + 1}" }}'
        for i in range(4))
    out = tmp / "one.toml"
    out.write_text(f'[cluster]\nname = "one"\nrate = "20Mbit"\nworkers = 1\n\n'
                   f'[[servers]]\nname = "s1"\nports = [\n  {ports}\n]\n')
    return out


class Cluster:
    """A cluster up for a ``with`` block (and the time ``up``/``down`` took)."""

    def __init__(self, file: Path) -> None:
        from routebricks.cluster.spec import load_cluster

        self.spec = load_cluster(file)
        self.file = file

    def __enter__(self) -> Cluster:
        from routebricks.cluster.launch import up

        t = time.perf_counter()
        self.state = up(self.spec)
        self.wait_bfd()
        self.up_s = time.perf_counter() - t
        return self

    def __exit__(self, *exc: object) -> None:
        from routebricks.cluster.launch import down

        down(self.state.prefix)

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


def _ip(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


def matrix(c: Cluster, pairs: dict[str, list[str]], rate: float, seconds: float,
           flows: int = 48) -> dict[str, Any]:
    """Each source host sends ``rate`` bit/s for ``seconds`` to its destination hosts (in
    turn, packet by packet); totals, per-server role counts and the sinks' results."""
    from routebricks.traffic.agents import GenAgent, SinkAgent

    hosts = c.hosts()
    dsts = sorted({d for ds in pairs.values() for d in ds})
    gens = {h: GenAgent("eth0", netns=c.state.host_netns(h)) for h in pairs}
    sinks = {h: SinkAgent("eth0", netns=c.state.host_netns(h)) for h in dsts}
    try:
        for h, ds in pairs.items():
            gens[h].configure(dst=[_ip(hosts[d]) for d in ds], dst_mac=c.port_mac(h),
                              flows=flows, size=FRAME, dst_per_packet=True)
        for g in gens.values():  # ARP resolved at every output port before we measure
            g.send(rate=f"{rate:.0f}bps", duration=0.3)
        time.sleep(1.0)
        before = c.roles()
        for s in sinks.values():
            s.start()
        sent: dict[str, Any] = {}
        threads = [threading.Thread(target=lambda h=h: sent.setdefault(
            h, gens[h].send(rate=f"{rate:.0f}bps", duration=seconds))) for h in gens]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(1.5)
        got = {h: s.stop() for h, s in sinks.items()}
        after = c.roles()
    finally:
        for a in [*gens.values(), *sinks.values()]:
            a.close()
    n_sent = sum(int(g["sent"]) for g in sent.values())
    n_recv = sum(int(s["received"]) for s in got.values())
    roles = {s: tuple(a - b for a, b in zip(after[s], before[s], strict=True)) for s in after}
    return {"sent": n_sent, "received": n_recv, "loss": (n_sent - n_recv) / max(n_sent, 1),
            "roles": roles, "sinks": got}


def uniform(c: Cluster) -> dict[str, list[str]]:
    hosts = list(c.hosts())
    return {h: [d for d in hosts if d != h] for h in hosts}


def processed_per_delivered(res: dict[str, Any]) -> str:
    """Per server, the packets it processed in any role per packet the cluster delivered;
    their sum is the cluster's (2 when everything goes direct, up to 3)."""
    delivered = sum(r[2] for r in res["roles"].values())
    if not delivered:
        return "-"
    cells = [f"{s} {sum(r) / delivered:.2f}" for s, r in sorted(res["roles"].items())]
    total = sum(sum(r) for r in res["roles"].values())
    return ", ".join(cells) + f"; all {total / delivered:.2f}"


def main() -> None:
    started = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds of traffic per run")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 3 s per run, fewer loads")
    ap.add_argument("--png", default="rb4.png", help="where to write the plots")
    args = ap.parse_args()
    secs = 3.0 if args.quick else args.seconds
    loads = [0.5, 0.9] if args.quick else [0.5, 0.8, 0.9, 1.0]
    deltas = [1, 100] if args.quick else [1, 10, 100]
    tmp = Path(tempfile.mkdtemp(prefix="rb4-bench-"))

    progress("start-up: routebricks cluster up / down (whole commands)")
    cli = [sys.executable, "-m", "routebricks.cli", "cluster"]
    t = time.perf_counter()
    res = subprocess.run([*cli, "up", str(RB4), "--json"], capture_output=True, text=True)
    up_s = time.perf_counter() - t
    prefix = json.loads(res.stdout)["prefix"] if res.returncode == 0 else ""
    t = time.perf_counter()
    subprocess.run([*cli, "down", prefix], capture_output=True, text=True)
    down_s = time.perf_counter() - t
    up_note = "" if res.returncode == 0 else f" (failed: {res.stderr.strip()[:200]})"

    rate = 20e6
    rows: list[tuple[str, str, str, str]] = []
    uniform_loss: dict[str, dict[float, float]] = {"RB4": {}, "one server": {}}
    for label, file in (("RB4", RB4), ("one server", one_server(tmp))):
        for f in loads:
            progress(f"uniform matrix, {label}, {f:.0%} of R")
            with Cluster(file) as c:
                r = matrix(c, uniform(c), f * rate, secs)
            uniform_loss[label][f] = r["loss"]
            rows.append((f"uniform, {label}", f"{f:.0%} R", f"{r['loss']:.3%}",
                         processed_per_delivered(r) if label == "RB4" else "-"))
    single_rate = 12e6  # more than the 10 Mbit/s direct link
    progress("single-pair matrix, 12 Mbit/s")
    with Cluster(RB4) as c:
        r = matrix(c, {"h1": ["h2"]}, single_rate, secs, flows=16)
    rows.append(("single pair h1 -> h2", "12 Mbit/s", f"{r['loss']:.3%}",
                 processed_per_delivered(r)))

    reorder: dict[str, float] = {}
    for label, keys in ([("no flowlets", {"flowlets": "false"})]
                        + [(f"flowlets, δ {d} ms", {"delta": f'"{d}ms"'}) for d in deltas]):
        progress(f"reordering, {label}")
        with Cluster(variant(tmp, label.split(",")[0].replace(" ", "") + str(len(reorder)),
                             **keys)) as c:
            r = matrix(c, {"h1": ["h2"]}, single_rate, secs, flows=16)
        s = r["sinks"]["h2"]
        reorder[label] = s["reordered_sequences"] / max(1, s["received"])

    latency: dict[str, dict[str, float]] = {}
    for label, keys in (("2 servers (direct)", {}),
                        ("3 servers (via an intermediate)", {"direct_rate": '"8kbit"'})):
        progress(f"latency, {label}")
        with Cluster(variant(tmp, f"lat{len(latency)}", **keys)) as c:
            r = matrix(c, {"h1": ["h2"]}, 2e6, secs, flows=4)
        lat = r["sinks"]["h2"]["latency"]
        latency[label] = {k: lat[k] / 1e6 for k in ("p50_ns", "p99_ns", "max_ns")}

    progress("role cost: benchmarks/cluster_roles.py --quick")
    roles = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cluster_roles.py"),
                            "--quick"], capture_output=True, text=True)

    print("RB4 in network namespaces: 4 servers, full mesh, R = 20 Mbit/s, internal links "
          f"10 Mbit/s, {FRAME}-byte frames, {secs:g} s per run")
    print()
    print(f"start-up (whole command): cluster up {up_s:.1f} s{up_note}, cluster down "
          f"{down_s:.1f} s")
    print()
    print("| matrix | offered per port | loss | packets processed per packet delivered "
          "(per server; all) |")
    print("|---|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print("| loss-free rate (≤ 0.1% loss), uniform | per port | whole router |")
    print("|---|---:|---:|")
    for label, by in uniform_loss.items():
        ok = [f for f, loss in sorted(by.items()) if loss <= LOSS_FREE]
        best = max(ok) if ok else 0.0
        print(f"| {label} | {best:.0%} R = {best * rate / 1e6:.0f} Mbit/s | "
              f"{4 * best * rate / 1e6:.0f} Mbit/s |")
    print(f"(loads tried: {', '.join(f'{f:.0%}' for f in loads)} of R)")
    print()
    print("| reordering, single pair at 12 Mbit/s | reordered sequences / received |")
    print("|---|---:|")
    for label, v in reorder.items():
        print(f"| {label} | {v:.3%} |")
    print()
    print("| one-way latency at 2 Mbit/s | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|")
    for label, v in latency.items():
        print(f"| {label} | {v['p50_ns']:.2f} | {v['p99_ns']:.2f} | {v['max_ns']:.2f} |")
    print()
    print("role cost (benchmarks/cluster_roles.py --quick):")
    print(roles.stdout if roles.returncode == 0 else roles.stderr[-2000:])
    print(f"benchmark wall time {time.perf_counter() - started:.0f} s")
    plot(Path(args.png), uniform_loss, reorder, latency)
    print(f"plots: {args.png}")


def plot(out: Path, uniform_loss: dict[str, dict[float, float]], reorder: dict[str, float],
         latency: dict[str, dict[str, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for label, by in uniform_loss.items():
        xs = sorted(by)
        ax[0].plot([x * 100 for x in xs], [by[x] * 100 for x in xs], marker="o", label=label)
    ax[0].axhline(LOSS_FREE * 100, color="grey", linestyle=":", label="0.1%")
    ax[0].set(title="uniform matrix: loss", xlabel="offered load per port (% of R)",
              ylabel="loss (%)")
    ax[0].legend()
    ax[1].bar(range(len(reorder)), [v * 100 for v in reorder.values()])
    ax[1].set_xticks(range(len(reorder)), list(reorder), rotation=20, ha="right")
    ax[1].set(title="single pair at 12 Mbit/s: reordering",
              ylabel="reordered sequences / received (%)")
    labels = list(latency)
    for i, key in enumerate(("p50_ns", "p99_ns")):
        ax[2].bar([x + 0.4 * i for x in range(len(labels))],
                  [latency[lb][key] for lb in labels], width=0.4, label=key[:3])
    ax[2].set_xticks([x + 0.2 for x in range(len(labels))], labels)
    ax[2].set(title="one-way latency at 2 Mbit/s", ylabel="ms")
    ax[2].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
