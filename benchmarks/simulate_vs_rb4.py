"""The simulator beside RB4: what ``routebricks simulate`` predicts for what
``benchmarks/rb4.py`` measures in network namespaces. Prints tables; asserts nothing.

The simulator is given RB4's cluster file (``examples/rb4.toml``: N, R, the internal and
direct rates, Direct VLB, flowlets, δ) and rb4.py's traffic: 1400-byte frames; the uniform
matrix (every port to the three others, 16 flows per pair) at 50-100% of R; the single
pair h1 -> h2 at 12 Mbit/s (more than the 10 Mbit/s direct link, 16 flows), for loss and
processing and, without flowlets and with δ = 1, 10, 100 ms, for reordering; the pair at
2 Mbit/s (4 flows) for latency, direct and with ``direct_rate`` at 8 kbit (all through an
intermediate). Figures: loss and packets processed per packet delivered (per server and
in all: 2 when everything goes direct, up to 3) from the fluid model and the packet
model; reordering (reordered sequences per packet received, the paper's §6.2 unit, as
rb4.py) and latency from the packet model, with a server's latency set to half the
receive-ring block timeout the emulated servers use (``RX_TIMEOUT_MS``), its budgets'
burst the DirectVLB element's, and flows visited in turn as rb4.py's generator does.

Measurements, beside the prediction, come from one of:

* ``--measured FILE``: rb4.py's printed output saved to a file (``python
  benchmarks/rb4.py > rb4.txt``), or a JSON file of the form :func:`parse_rb4_output`
  returns (rb4.py writes no JSON of its own);
* ``--run``: run rb4.py now (root, network namespaces, ~5 min; ``--quick`` passed on);
* neither: the run the README publishes (RB4 section; 2-core development machine).

    python benchmarks/simulate_vs_rb4.py [--measured FILE | --run [--quick]] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RB4 = REPO / "examples" / "rb4.toml"
FRAME = 1400  # rb4.py's frame size
UNIFORM_LOADS = (0.5, 0.8, 0.9, 1.0)
PAIR_RATE = 12e6  # rb4.py's single pair, bits/s
LATENCY_RATE = 2e6
DELTAS_MS = (1, 10, 100)

#: The run the README publishes ("A router made of servers: RB4", benchmark table): one
#: run on the 2-core development machine, 8 s per measurement.
PUBLISHED: dict[str, Any] = {
    "source": "README.md, RB4 benchmark (2-core development machine, 8 s per run)",
    "uniform": {f"{load:g}": {"loss": loss, "processed": {"s1": 0.50, "s2": 0.50, "s3": 0.50,
                                                          "s4": 0.50, "all": 2.00}}
                for load, loss in ((0.5, 0.00007), (0.9, 0.0), (1.0, 0.00072))},
    "pair": {"loss": 0.0, "processed": {"s1": 1.00, "s2": 1.00, "s3": 0.12, "s4": 0.12,
                                        "all": 2.24}},
    "reordering": {"no flowlets": 0.155, "δ 1 ms": 0.144, "δ 10 ms": 0.156,
                   "δ 100 ms": 0.00047},
    "latency_ms": {"direct": {"p50": 4.9, "p99": 6.6, "max": 7.3},
                   "via an intermediate": {"p50": 8.2, "p99": 10.0, "max": 10.5}},
}


def parse_rb4_output(text: str) -> dict[str, Any]:
    """rb4.py's printed tables as a dict (the JSON form ``--measured`` also takes)."""
    out: dict[str, Any] = {"source": "rb4.py output", "uniform": {}, "reordering": {},
                           "latency_ms": {}}

    def processed(cell: str) -> dict[str, float]:
        got = {m[1]: float(m[2]) for m in re.finditer(r"(s\d+) ([0-9.]+)", cell)}
        total = re.search(r"all ([0-9.]+)", cell)
        if total:
            got["all"] = float(total[1])
        return got

    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] == "uniform, RB4":
            load = float(cells[1].split("%")[0]) / 100
            out["uniform"][f"{load:g}"] = {"loss": float(cells[2].rstrip("%")) / 100,
                                           "processed": processed(cells[3])}
        elif len(cells) == 4 and cells[0].startswith("single pair"):
            out["pair"] = {"loss": float(cells[2].rstrip("%")) / 100,
                           "processed": processed(cells[3])}
        elif len(cells) == 2 and (cells[0] == "no flowlets" or cells[0].startswith("flowlets,")):
            label = "no flowlets" if cells[0] == "no flowlets" else \
                cells[0].removeprefix("flowlets, ")
            out["reordering"][label] = float(cells[1].rstrip("%")) / 100
        elif len(cells) == 4 and "servers (" in cells[0]:
            label = "direct" if "direct" in cells[0] else "via an intermediate"
            out["latency_ms"][label] = dict(zip(("p50", "p99", "max"),
                                                map(float, cells[1:]), strict=True))
    if not out["uniform"] and "pair" not in out:
        raise SystemExit("no rb4.py tables found in the measured output")
    return out


def load_measured(path: Path) -> dict[str, Any]:
    text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return parse_rb4_output(text)
    data.setdefault("source", str(path))
    return data


def run_rb4(quick: bool) -> dict[str, Any]:
    import tempfile

    png = Path(tempfile.mkdtemp(prefix="rb4-vs-sim-")) / "rb4.png"
    cmd = [sys.executable, str(REPO / "benchmarks" / "rb4.py"), "--png", str(png)]
    if quick:
        cmd.append("--quick")
    sys.stderr.write(f"running {' '.join(cmd)} (network namespaces; minutes)\n")
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"rb4.py failed ({res.returncode}):\n{res.stderr[-3000:]}")
    data = parse_rb4_output(res.stdout)
    data["source"] = "rb4.py, run now" + (" (--quick)" if quick else "")
    return data


# ---------------------------------------------------------------------- predictions
@dataclass
class Setup:
    """RB4's cluster file read for the simulator."""

    ports: int
    names: list[str]
    rate: float  # R, bits/s
    link_rate: float  # units of R
    direct_rate: float
    vlb: str
    flowlets: bool
    delta: float  # seconds

    @property
    def tau(self) -> float:
        return FRAME * 8 / self.rate


def setup() -> Setup:
    from routebricks.cluster.spec import load_cluster

    spec = load_cluster(RB4)
    if any(len(s.ports) != 1 for s in spec.servers) or spec.topology != "mesh":
        raise SystemExit("the simulator models one external port per server, in a mesh")
    direct = spec.direct_rate if spec.direct_rate is not None else spec.internal_rate
    return Setup(ports=len(spec.ports), names=[s.name for s in spec.servers],
                 rate=spec.rate, link_rate=spec.internal_rate / spec.rate,
                 direct_rate=direct / spec.rate, vlb=spec.vlb, flowlets=spec.flowlets,
                 delta=spec.delta)


def processed(res: Any, names: list[str]) -> dict[str, float]:
    """Per server, packets processed in any role per packet the cluster delivered (rb4.py's
    figure); "all" is their sum."""
    load = res.load_io
    delivered = float(res.load_output.sum())
    got = {n: float(v / delivered) for n, v in zip(names, load, strict=True)}
    got["all"] = float(load.sum() / delivered)
    return got


def predict(st: Setup, seconds: float) -> dict[str, Any]:
    import numpy as np

    from routebricks.cluster.config import RX_TIMEOUT_MS
    from routebricks.cluster.simulate import routing, topology, traffic_matrix
    from routebricks.cluster.simulate_fluid import simulate_fluid
    from routebricks.cluster.simulate_packets import PacketOptions, simulate_packets
    from routebricks.elements.cluster.flowletvlb import DEFAULT_BURST_TIME, MIN_DEFAULT_BURST

    topo = topology("mesh", st.ports)
    route = routing(topo, st.vlb, st.link_rate, st.direct_rate)
    # A frame waits for its receive ring's block on every server: half the timeout on
    # average at these rates (blocks time out long before they fill).
    # The DirectVLB element's buckets reach one burst (20 ms of the link) either way; that
    # is how long a queue its budget lets a path keep. 44 frames: the 50 ms tc queue of a
    # 10 Mbit/s internal link.
    burst = max(MIN_DEFAULT_BURST, st.link_rate * st.rate / 8 * DEFAULT_BURST_TIME) / FRAME
    base = PacketOptions(duration=seconds / st.tau, buffer=44, flows=16,
                         flowlets=st.flowlets, delta=st.delta / st.tau,
                         server_latency=RX_TIMEOUT_MS / 2e3 / st.tau, seed=1,
                         budget_burst=burst, flow_order="cycle")
    out: dict[str, Any] = {"uniform": {}, "reordering": {}, "latency_ms": {}}
    for load in UNIFORM_LOADS:
        t = traffic_matrix("uniform", st.ports, load)
        fl = simulate_fluid(t, topo, route)
        pk = simulate_packets(t, topo, route, base)
        out["uniform"][f"{load:g}"] = {
            "fluid": {"loss": 1 - fl.throughput, "processed": processed(fl, st.names)},
            "packet": {"loss": pk.loss, "processed": processed(pk, st.names)}}
    pair = np.zeros((st.ports, st.ports))
    pair[0, 1] = PAIR_RATE / st.rate
    fl = simulate_fluid(pair, topo, route)
    pk = simulate_packets(pair, topo, route, base)
    out["pair"] = {"fluid": {"loss": 1 - fl.throughput, "processed": processed(fl, st.names)},
                   "packet": {"loss": pk.loss, "processed": processed(pk, st.names)}}
    cases = [("no flowlets", PacketOptions(**{**base.__dict__, "flowlets": False}))]
    cases += [(f"δ {d} ms", PacketOptions(**{**base.__dict__, "flowlets": True,
                                             "delta": d / 1e3 / st.tau})) for d in DELTAS_MS]
    for label, opts in cases:
        pk = simulate_packets(pair, topo, route, opts)
        out["reordering"][label] = pk.reordered_sequences
    slow = np.zeros((st.ports, st.ports))
    slow[0, 1] = LATENCY_RATE / st.rate
    ms = st.tau * 1e3
    for label, r in (("direct", route),
                     ("via an intermediate",
                      routing(topo, st.vlb, st.link_rate, 8e3 / st.rate))):
        pk = simulate_packets(slow, topo, r, PacketOptions(**{**base.__dict__, "flows": 4}))
        out["latency_ms"][label] = {k: pk.latency[k] * ms for k in ("p50", "p99", "max")}
    return out


# ---------------------------------------------------------------------- printing
def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.3%}"


def _proc(d: dict[str, float] | None, names: list[str]) -> str:
    if not d:
        return "-"
    cells = [f"{n} {d[n]:.2f}" for n in names if n in d]
    return ", ".join(cells) + ("; " if cells else "") + f"all {d['all']:.2f}"


def show(st: Setup, pred: dict[str, Any], meas: dict[str, Any]) -> None:
    names = st.names
    print(f"simulator vs RB4: {st.ports} servers, full mesh, R = {st.rate / 1e6:g} Mbit/s, "
          f"internal links {st.link_rate:g} R, direct share {st.direct_rate:g} R, "
          f"{st.vlb} VLB, δ {st.delta * 1e3:g} ms, {FRAME}-byte frames")
    print(f"measured: {meas.get('source', '?')}")
    print()
    print("| matrix | offered per port | loss: fluid / packet / measured | processed per "
          "delivered: fluid | packet | measured |")
    print("|---|---:|---|---|---|---|")
    for load in UNIFORM_LOADS:
        key = f"{load:g}"
        p, m = pred["uniform"][key], meas.get("uniform", {}).get(key, {})
        print(f"| uniform | {load:.0%} R | {_pct(p['fluid']['loss'])} / "
              f"{_pct(p['packet']['loss'])} / {_pct(m.get('loss'))} | "
              f"{_proc(p['fluid']['processed'], names)} | "
              f"{_proc(p['packet']['processed'], names)} | "
              f"{_proc(m.get('processed'), names)} |")
    p, m = pred["pair"], meas.get("pair", {})
    print(f"| single pair h1 -> h2 | {PAIR_RATE / 1e6:g} Mbit/s | {_pct(p['fluid']['loss'])} "
          f"/ {_pct(p['packet']['loss'])} / {_pct(m.get('loss'))} | "
          f"{_proc(p['fluid']['processed'], names)} | "
          f"{_proc(p['packet']['processed'], names)} | {_proc(m.get('processed'), names)} |")
    print()
    print(f"| reordering, single pair at {PAIR_RATE / 1e6:g} Mbit/s (reordered sequences / "
          "received) | packet model | measured |")
    print("|---|---:|---:|")
    for label, v in pred["reordering"].items():
        print(f"| {label} | {v:.3%} | {_pct(meas.get('reordering', {}).get(label))} |")
    print()
    print(f"| one-way latency at {LATENCY_RATE / 1e6:g} Mbit/s, ms | packet model p50 / p99 / "
          "max | measured p50 / p99 / max |")
    print("|---|---|---|")
    for label, v in pred["latency_ms"].items():
        mv = meas.get("latency_ms", {}).get(label)
        mtext = " / ".join(f"{mv[k]:.2f}" for k in ("p50", "p99", "max")) if mv else "-"
        print(f"| {label} | {v['p50']:.2f} / {v['p99']:.2f} / {v['max']:.2f} | {mtext} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--measured", type=Path, metavar="FILE",
                     help="rb4.py's output saved to a file, or JSON as parse_rb4_output makes")
    src.add_argument("--run", action="store_true", help="run benchmarks/rb4.py now (root)")
    ap.add_argument("--quick", action="store_true", help="with --run: rb4.py --quick")
    ap.add_argument("--seconds", type=float, default=8.0,
                    help="simulated seconds of traffic per run (rb4.py's default: 8)")
    ap.add_argument("--json", action="store_true", help="print prediction and measurement "
                    "as JSON instead of tables")
    args = ap.parse_args()
    started = time.perf_counter()
    st = setup()
    pred = predict(st, 3.0 if args.quick else args.seconds)
    took = time.perf_counter() - started
    meas = (load_measured(args.measured) if args.measured else run_rb4(args.quick)
            if args.run else PUBLISHED)
    if args.json:
        print(json.dumps({"predicted": pred, "measured": meas}))
        return
    show(st, pred, meas)
    print(f"\nsimulation time {took:.1f} s")


if __name__ == "__main__":
    main()
