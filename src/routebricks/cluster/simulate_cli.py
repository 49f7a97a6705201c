"""``routebricks simulate``: VLB over a mesh or a k-ary n-fly of up to thousands of ports."""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from routebricks.cluster.rows import print_rows
from routebricks.cluster.simulate import (
    MATRICES,
    TOPOLOGIES,
    VLB_MODES,
    Routing,
    SimulationError,
    Topology,
    routing,
    topology,
    traffic_matrix,
)
from routebricks.errors import RouteBricksError

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}
_TIME = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?(?:e-?[0-9]+)?)\s*(s|ms|us|µs|ns)?\s*")
_SCALE = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, None: 1.0}
#: Loads and flowlet timeouts the plots sweep.
PLOT_LOADS = (0.2, 0.4, 0.6, 0.8, 0.9, 1.0)
PLOT_DELTAS = ("10us", "100us", "1ms", "10ms", "100ms")


def parse_seconds(text: str, option: str, zero: bool = False) -> float:
    """'100ms', '24us', '1e-3', '2s' as seconds (0 only with ``zero``); a usage error
    naming ``option``."""
    m = _TIME.fullmatch(text)
    if m is None or float(m[1]) < 0 or (float(m[1]) == 0 and not zero):
        raise click.BadParameter(f"{text!r} is not a time (e.g. 100ms, 24us, 0.5s)",
                                 param_hint=f"'{option}'")
    return float(m[1]) * _SCALE[m[2]]


@dataclass(frozen=True)
class Scenario:
    """Everything one run needs, times in seconds."""

    topo: Topology
    route: Routing
    matrix: str
    load: float
    fan_in: int
    model: str
    flowlets: bool
    delta: float
    seed: int
    rate: float  # R, bits/s
    packet_size: int  # bytes
    duration: float
    buffer: int
    flows: int
    server_latency: float
    flow_order: str = "random"

    @property
    def tau(self) -> float:
        """One packet time at R, seconds."""
        return self.packet_size * 8 / self.rate

    def matrix_array(self) -> np.ndarray:
        return traffic_matrix(self.matrix, self.topo.ports, self.load, self.seed, self.fan_in)

    def describe(self) -> str:
        text = (f"{self.model} model: {self.topo.describe()}, {self.route.describe(self.topo)}; "
                f"{self.matrix} matrix at {self.load:.0%} of R per input")
        if self.model == "packet":
            text += (f"; flowlets, δ {self.delta * 1e3:g} ms" if self.flowlets
                     else "; no flowlets")
        return text


def run(sc: Scenario) -> Any:
    """One run of the scenario's model: a FluidResult or a PacketResult."""
    if sc.model == "fluid":
        from routebricks.cluster.simulate_fluid import simulate_fluid

        return simulate_fluid(sc.matrix_array(), sc.topo, sc.route)
    from routebricks.cluster.simulate_packets import PacketOptions, simulate_packets

    opts = PacketOptions(duration=sc.duration / sc.tau, buffer=sc.buffer, flows=sc.flows,
                         flowlets=sc.flowlets, delta=sc.delta / sc.tau,
                         server_latency=sc.server_latency / sc.tau, seed=sc.seed,
                         flow_order=sc.flow_order)
    return simulate_packets(sc.matrix_array(), sc.topo, sc.route, opts)


# ---------------------------------------------------------------------- reporting
def _stats(x: np.ndarray) -> str:
    if not x.size:
        return "-"
    return f"max {x.max():.3f}, mean {x.mean():.3f}, min {x.min():.3f}"


def _active(res: Any) -> np.ndarray:
    """io servers with any traffic (a pair matrix leaves most idle)."""
    load = res.load_io
    return load[load > 0] if (load > 0).any() else load


def report_rows(sc: Scenario, res: Any) -> list[tuple[str, str]]:
    """The figures of a run as (what, value) rows."""
    rows: list[tuple[str, str]] = []
    if sc.model == "fluid":
        rows += [
            ("offered", f"{res.offered:.4g} R ({res.offered / sc.topo.ports:.1%} of R per "
                        "port on average)"),
            ("throughput", f"{res.throughput:.4%} of offered"),
            ("carried", f"{res.carried:.4%} of what max-min fair outputs admit"),
            ("dropped at outputs", f"{res.dropped_output:.4g} R (oversubscribed outputs, "
                                   "shared max-min fairly)"),
            ("lost in the cluster", f"{res.dropped_links:.4g} R (overloaded internal links)"),
        ]
    else:
        us = sc.tau * 1e6
        lat = res.latency
        rows += [
            ("offered", f"{res.offered:,} packets in {sc.duration * 1e3:g} ms"),
            ("throughput", f"{res.throughput:.4%} of offered"),
            ("dropped", f"{res.dropped:,} ({res.loss:.4%}): {res.dropped_links:,} at "
                        f"internal links, {res.dropped_ports:,} at output ports"),
            ("reordered", f"{res.reordered:.4%} of packets (overtaken by a later packet of "
                          f"their flow); {res.reordered_sequences:.4%} in sequences"),
            ("latency", f"p50 {lat['p50'] * us:.1f} µs, p99 {lat['p99'] * us:.1f} µs, max "
                        f"{lat['max'] * us:.1f} µs"),
        ]
        if sc.topo.kind == "mesh":
            rows.append(("via an intermediate", f"{res.via_intermediate:.2%} of packets"))
        if sc.flowlets:
            fs = res.flowlet_stats
            rows.append(("flowlets", f"{fs['new']:,} new, {fs['kept']:,} packets kept on "
                                     f"path, {fs['moved']:,} moved, {fs['spread']:,} spread"))
    act = _active(res)
    rows.append(("processing per io server", f"{_stats(act)} R"
                 + (f" ({act.size} of {sc.topo.ports} servers have traffic)"
                    if act.size < sc.topo.ports else "")))
    rows.append(("  by role (means)", f"input {res.load_input[res.load_io > 0].mean():.3f}, "
                 f"intermediate {res.load_intermediate[res.load_io > 0].mean():.3f}, "
                 f"output {res.load_output[res.load_io > 0].mean():.3f} R"
                 if (res.load_io > 0).any() else "-"))
    if sc.topo.kind == "nfly":
        rows.append(("processing per switch server", f"{_stats(res.load_switch)} R"))
    if sc.model == "fluid":
        ll = res.link_load
        rows.append(("internal link load", f"max {ll.max():.2%}, mean {ll.mean():.2%} of "
                                           "the link rate"))
        if res.spread_over:
            rows.append(("excess over direct", f"spread over {res.spread_over}"))
    fair = res.fair.outputs
    if not fair:
        rows.append(("fairness", "no output is oversubscribed"))
    for o in fair[:4]:
        rows.append((f"fairness, output {o['output']}",
                     f"offered {o['offered']:.3g} R by {o['inputs']} inputs over the max-min "
                     f"level {o['level']:.4g} R: they got {o['min_share']:.4g} to "
                     f"{o['max_share']:.4g} R (max/min {o['max_min_ratio']:.3f})"))
    if len(fair) > 4:
        rows.append(("fairness, worst", f"max/min {res.fair.worst_ratio:.3f} over "
                                        f"{len(fair)} oversubscribed outputs"))
    rows.append(("run time", f"{res.elapsed:.2f} s"
                 + (f" ({res.steps:,} time steps)" if sc.model == "packet" else "")))
    return rows


def as_json(sc: Scenario, res: Any) -> dict[str, Any]:
    """The run as plain JSON values (per-server and per-output arrays as lists)."""
    out: dict[str, Any] = {
        "model": sc.model, "topology": sc.topo.kind, "ports": sc.topo.ports,
        "k": sc.topo.k or None, "stages": sc.topo.stages or None, "vlb": sc.route.vlb,
        "link_rate": sc.route.link_rate, "direct_rate": sc.route.direct_rate,
        "matrix": sc.matrix, "load": sc.load, "seed": sc.seed,
        "throughput": res.throughput, "elapsed_s": res.elapsed,
        "load_io": {"max": float(res.load_io.max()), "mean": float(res.load_io.mean())},
        "per_server": {"input": res.load_input.tolist(),
                       "intermediate": res.load_intermediate.tolist(),
                       "output": res.load_output.tolist(), "switch": res.load_switch.tolist()},
        "per_output": {k: v.tolist() for k, v in res.per_output.items()},
        "fairness": {"worst_max_min_ratio": res.fair.worst_ratio, "outputs": res.fair.outputs},
    }
    if sc.model == "fluid":
        out.update(offered=res.offered, delivered=res.delivered, carried=res.carried,
                   dropped_output=res.dropped_output, dropped_links=res.dropped_links,
                   link_load={"max": float(res.link_load.max()),
                              "mean": float(res.link_load.mean())},
                   spread_over=res.spread_over)
    else:
        us = sc.tau * 1e6
        out.update(offered=res.offered, delivered=res.delivered, dropped=res.dropped,
                   dropped_links=res.dropped_links, dropped_ports=res.dropped_ports,
                   loss=res.loss, reordered=res.reordered,
                   reordered_sequences=res.reordered_sequences,
                   latency_us={k: v * us for k, v in res.latency.items()},
                   via_intermediate=res.via_intermediate, flowlets=sc.flowlets,
                   delta_s=sc.delta, flowlet_stats=res.flowlet_stats,
                   packet_time_us=us, duration_s=sc.duration, steps=res.steps)
    return out


# ---------------------------------------------------------------------- plots
def plot(sc: Scenario, res: Any, out: Path) -> list[Path]:
    """PNGs in ``out``: per-server load, throughput against load and (packet model, or N
    small enough for it) reordering with and without flowlets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    tag = f"{sc.model}-{sc.topo.kind}-{sc.topo.ports}-{sc.route.vlb}-{sc.matrix}"

    fig, ax = plt.subplots(figsize=(8, 4.2))
    roles = (("input", res.load_input), ("intermediate", res.load_intermediate),
             ("output", res.load_output))
    if sc.topo.ports <= 64:
        bottom = np.zeros(sc.topo.ports)
        for name, v in roles:
            ax.bar(np.arange(sc.topo.ports), v, bottom=bottom, label=name)
            bottom += v
        ax.axhline(3, color="grey", linestyle=":", label="3R (classic VLB's bound)")
        ax.set(xlabel="io server", ylabel="processing (units of R)",
               ylim=(0, max(3.5, float(bottom.max()) * 1.15)))
    else:
        ax.hist(res.load_io, bins=40, label="io servers, all roles")
        if res.load_switch.size:
            ax.hist(res.load_switch, bins=40, alpha=0.6, label="switch servers")
        ax.set(xlabel="processing (units of R)", ylabel="servers")
    ax.set_title("per-server processing\n" + textwrap.fill(sc.describe(), 110), fontsize=8)
    ax.legend(loc="upper right", ncol=4, fontsize=8)
    fig.tight_layout()
    written.append(out / f"load-{tag}.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    loads = list(PLOT_LOADS)
    runs = [run(replace(sc, load=x)) for x in loads]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    xs = [x * 100 for x in loads]
    ax.plot(xs, [r.throughput * 100 for r in runs], marker="o", label="of offered")
    if sc.model == "fluid":
        ax.plot(xs, [r.carried * 100 for r in runs], marker="x", linestyle="--",
                label="of the max-min fair share")
    ax.legend()
    ax.set(xlabel="offered load per input (% of R)", ylabel="delivered (%)",
           title=f"throughput: {sc.model}, {sc.matrix}, {sc.route.vlb} VLB, N={sc.topo.ports}")
    fig.tight_layout()
    written.append(out / f"throughput-{tag}.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    from routebricks.cluster.simulate import MAX_PORTS_PACKET

    if sc.topo.ports <= MAX_PORTS_PACKET:
        base = replace(sc, model="packet")
        cases = [("no flowlets", replace(base, flowlets=False))]
        cases += [(f"δ {d}", replace(base, flowlets=True, delta=parse_seconds(d, "--delta")))
                  for d in PLOT_DELTAS]
        values = [run(c).reordered * 100 for _, c in cases]
        fig, ax = plt.subplots(figsize=(7, 4.2))
        ax.bar(range(len(cases)), values)
        ax.set_xticks(range(len(cases)), [c for c, _ in cases], rotation=20, ha="right")
        ax.set(ylabel="reordered packets (%)",
               title=f"reordering (packet model): {sc.matrix} at {sc.load:.0%}, "
                     f"{sc.route.vlb} VLB, N={sc.topo.ports}")
        fig.tight_layout()
        written.append(out / f"reordering-{tag}.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


# ---------------------------------------------------------------------- the command
def _fraction(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise click.BadParameter(f"{value:g} is not a rate: a fraction of R, more than 0")
    return value


@click.command("simulate", context_settings=CONTEXT)
@click.option("--n", "ports", type=int, default=64, show_default=True, metavar="N",
              help="External ports (io servers, one port each).")
@click.option("--topology", "kind", type=click.Choice(TOPOLOGIES), default="mesh",
              show_default=True, help="A full mesh, or a folded k-ary n-fly (N = k^n).")
@click.option("--k", type=int, default=None, metavar="K",
              help="The n-fly's switch degree (--topology nfly).")
@click.option("--vlb", type=click.Choice(VLB_MODES), default="direct", show_default=True,
              help="Classic VLB (every packet through a random intermediate) or Direct VLB "
              "(straight up to the direct share).")
@click.option("--matrix", type=click.Choice(MATRICES), default="uniform", show_default=True,
              help="uniform: each input to all others; permutation: each to one (no fixed "
              "point); pair: input 0 to output 1; oversubscribed: --fan-in inputs to output 0.")
@click.option("--fan-in", type=int, default=4, show_default=True, metavar="M",
              help="Inputs of the oversubscribed matrix.")
@click.option("--load", type=float, default=1.0, show_default=True, metavar="FRACTION",
              help="What each sending input offers, as a fraction of R (0 < load ≤ 1).")
@click.option("--model", type=click.Choice(("fluid", "packet")), default="fluid",
              show_default=True, help="Rates over the traffic matrix (fast, to thousands of "
              "ports), or packets through finite queues (loss, latency, reordering).")
@click.option("--flowlets/--no-flowlets", default=True, show_default=True,
              help="Keep a flow's packets less than --delta apart on one path (packet model).")
@click.option("--delta", default="100ms", show_default=True, metavar="TIME",
              help="The flowlet timeout δ.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the permutation and the packet model's random choices.")
@click.option("--link-rate", type=float, default=None, callback=_fraction, metavar="FRACTION",
              help="Internal link rate, fraction of R [default: 2/N in a mesh, 1 in an n-fly].")
@click.option("--direct-rate", type=float, default=None, metavar="FRACTION",
              help="Direct VLB's direct share per pair, fraction of R [default: 1/N].")
@click.option("--rate", default="10Gbit", show_default=True, metavar="RATE",
              help="R, to turn packet times into seconds (packet model).")
@click.option("--packet-size", type=click.IntRange(64, 9000), default=1500, show_default=True,
              metavar="BYTES", help="Every packet's size (packet model).")
@click.option("--duration", default="5ms", show_default=True, metavar="TIME",
              help="How long inputs send (packet model); the run then drains the queues.")
@click.option("--buffer", type=click.IntRange(1), default=64, show_default=True,
              metavar="PACKETS", help="Every queue's length (packet model).")
@click.option("--flows", type=click.IntRange(1, 4096), default=16, show_default=True,
              help="Flows per input-output pair (packet model).")
@click.option("--flow-order", type=click.Choice(("random", "cycle")), default="random",
              show_default=True, help="Each packet of a pair on a random one of its flows, "
              "or on each in turn, as 'routebricks gen' sends (packet model).")
@click.option("--server-latency", default="24us", show_default=True, metavar="TIME",
              help="Added by each server a packet crosses (the paper's §6.2 estimate).")
@click.option("--json", "as_json_", is_flag=True, help="Print the results as JSON.")
@click.option("--plot", "plot_dir", default=None, metavar="DIR",
              help="Also write PNG plots to DIR: per-server load, throughput against load, "
              "reordering with and without flowlets (these rerun the model).")
def simulate(ports: int, kind: str, k: int | None, vlb: str, matrix: str, fan_in: int,
             load: float, model: str, flowlets: bool, delta: str, seed: int,
             link_rate: float | None, direct_rate: float | None, rate: str, packet_size: int,
             duration: str, buffer: int, flows: int, flow_order: str, server_latency: str,
             as_json_: bool, plot_dir: str | None) -> None:
    """Simulate a VLB cluster of N ports — classic or Direct VLB, over a full mesh or a
    k-ary n-fly — and print its throughput, per-server processing (units of R) and
    fairness (fluid model), or also its loss, latency and reordering (packet model).

    \b
    Examples:
      routebricks simulate --n 1024                               # Direct VLB, uniform, fluid
      routebricks simulate --n 1024 --vlb classic --matrix permutation
      routebricks simulate --n 1024 --topology nfly --k 4
      routebricks simulate --n 64 --matrix oversubscribed --fan-in 8 --load 0.5
      routebricks simulate --n 64 --model packet --vlb classic --load 0.8 --no-flowlets
      routebricks simulate --n 64 --model packet --matrix pair --flows 1024 --plot plots/

    The fluid model shares an oversubscribed output's R max-min fairly; the packet model's
    FIFO queues share it in proportion to what each input offers.
    """
    from routebricks.netns.tc import parse_rate

    try:
        topo = topology(kind, ports, k)
        route = routing(topo, vlb, link_rate, direct_rate)
        if model == "packet":
            from routebricks.cluster.simulate import MAX_PORTS_PACKET

            if ports > MAX_PORTS_PACKET:
                raise SimulationError("--n", f"{ports} ports is too many for the packet "
                                      f"model", f"at most {MAX_PORTS_PACKET}; --model fluid "
                                      "takes thousands")
        r_bps = float(parse_rate(rate, "--rate", maximum=0))  # nothing is shaped
        sc = Scenario(topo=topo, route=route, matrix=matrix, load=load, fan_in=fan_in,
                      model=model, flowlets=flowlets, delta=parse_seconds(delta, "--delta"),
                      seed=seed, rate=r_bps, packet_size=packet_size,
                      duration=parse_seconds(duration, "--duration"), buffer=buffer,
                      flows=flows, flow_order=flow_order, server_latency=parse_seconds(
                          server_latency, "--server-latency", zero=True))
        sc.matrix_array()  # the matrix's own checks (--load, --fan-in) before any work
    except SimulationError as e:
        raise click.BadParameter(e.problem + (f" ({e.hint})" if e.hint else ""),
                                 param_hint=f"'{e.option}'") from None
    except RouteBricksError as e:
        raise click.UsageError(str(e)) from None
    res = run(sc)
    if as_json_:
        click.echo(json.dumps(as_json(sc, res)))
    else:
        print_rows(sc.describe(), report_rows(sc, res))
    if plot_dir is not None:
        for p in plot(sc, res, Path(plot_dir)):
            click.echo(f"plot: {p}", err=True)


COMMANDS = [simulate]
