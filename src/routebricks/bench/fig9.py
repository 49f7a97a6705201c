"""Fig. 9 / Table 3: what a packet costs the CPU, per application and per element."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routebricks.bench import plots
from routebricks.bench.core import Context, Ratio, Result, data_file, experiment
from routebricks.bench.memory import (
    MINIMAL,
    ipsec_config,
    make_minimal_pcap,
    routing_config,
    run_router,
)
from routebricks.bench.report import fmt_ratio

PAPER = """
§5.3, Fig. 9 and Table 3: the CPU load per packet (64 B) stays constant as the input rate
grows, and reaches the cycles available: the CPUs are the bottleneck. Instructions per
packet and cycles per instruction: minimal forwarding 1,033 and 1.19, IP routing 1,512 and
1.23, IPsec 14,221 and 0.55 -- i.e. about 1,230, 1,860 and 7,820 cycles per packet.
"""

#: Table 3: (instructions per packet, cycles per instruction).
TABLE3 = {"fwd": (1033, 1.19), "rtr": (1512, 1.23), "ipsec": (14221, 0.55)}
KP = 1024  # routebricks' default batch on devices (--kp)


@dataclass
class App:
    key: str
    name: str
    config: Callable[[int], str]  # the configuration for a run of N packets
    packets: int
    runs: list[Any] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.config(self.packets)


def cycles(key: str) -> float:
    ipp, cpi = TABLE3[key]
    return ipp * cpi


def _apps(ctx: Context, notes: list[str]) -> list[App]:
    from routebricks.bench import frames
    from routebricks.bench.ipsecdata import write_inner_pcap
    from routebricks.ipsec import ALG_CBC, ALG_GCM

    n_fwd, n_rtr, n_esp = ctx.pick((2_000_000, 1_000_000, 100_000), (6_000_000, 3_000_000, 500_000))
    tmp = ctx.tmp
    make_minimal_pcap(tmp / "fwd.pcap", n_fwd)
    apps = [App("fwd", "minimal forwarding",
                lambda n: MINIMAL.format(pcap=tmp / "fwd.pcap", kp=KP, n=n), n_fwd)]
    table = data_file()
    if table is None:
        notes.append(f"IP routing not measured: {frames.IPASN_NAME} not found (set "
                     "ROUTEBRICKS_DATA to its folder)")
    else:
        routes, _ = frames.real_table(table, 4)
        frames.write_route_file(routes, tmp / "real.routes")
        dst, _ = frames.destinations(routes, n_rtr, routed=True)
        frames.write_frames(tmp / "rtr.pcap", dst, frames.frame_sizes("64", n_rtr))
        apps.append(App("rtr", f"IP routing ({len(routes):,} routes)",
                        lambda n: routing_config(tmp / "rtr.pcap", KP, tmp / "real.routes", n),
                        n_rtr))
    write_inner_pcap(tmp / "inner.pcap", "64B", n_esp)
    apps.append(App("ipsec-cbc", "IPsec AES-128-CBC + HMAC-SHA1",
                    lambda n: ipsec_config(tmp / "inner.pcap", KP, ALG_CBC, n), n_esp))
    apps.append(App("ipsec-gcm", "IPsec AES-128-GCM",
                    lambda n: ipsec_config(tmp / "inner.pcap", KP, ALG_GCM, n), n_esp))
    return apps


def _elements(run: Any, packets: int) -> list[tuple[str, float]]:
    """(element class, ns per input packet), per-port copies summed, sources apart."""
    groups: dict[str, tuple[int, float]] = {}
    for row in run.rows:
        if row["source"]:
            continue
        n, ns = groups.get(row["class"], (0, 0.0))
        groups[row["class"]] = (n + 1, ns + row["self_ns"])
    out = [(c if n == 1 else f"{c} ×{n}", ns / packets) for c, (n, ns) in groups.items()]
    attributed = sum(v for _, v in out)
    out.append(("FromDump + scheduler (the rest)", max(run.ns_per_packet() - attributed, 0.0)))
    return out


@experiment("fig9", "Fig. 9 / Table 3 — cost per packet", paper=PAPER,
            paper_ratio="cycles per packet, IP routing / minimal forwarding = 1.51×, "
            "IPsec / minimal forwarding = 6.4× (Table 3)", seconds=(25, 90))
def run(ctx: Context) -> Result:
    from routebricks.bench.perfstat import PerfStat, perf_unavailable

    notes: list[str] = []
    repeat = ctx.pick(2, 5)
    ctx.total(2 + 4 * (repeat + 1) + 1)
    ctx.step("making the pcaps and the route table")
    apps = _apps(ctx, notes)
    no_perf = perf_unavailable()
    mhz = _mhz()
    data: dict[str, Any] = {"kp": KP, "repeat": repeat, "mhz": mhz, "perf": no_perf or "ok",
                            "apps": {}}
    for app in apps:
        run_router(app.config(min(app.packets, 20_000)))  # warm up: kernels, page cache
        for i in range(repeat):
            ctx.step(f"{app.name}: run {i + 1} of {repeat}")
            app.runs.append(run_router(app.text, expect=app.packets))
        best = min(app.runs, key=lambda r: r.wall)
        ctx.step(f"{app.name}: per-element profile")
        prof = run_router(app.text, profile=True, expect=app.packets)
        counters: dict[str, float | None] = {}
        if no_perf is None:
            perf = PerfStat()
            run_router(app.text, expect=app.packets, perf=perf)
            counters = {k: (v / app.packets if v else None) for k, v in perf.counts.items()}
        ns = best.ns_per_packet()
        data["apps"][app.key] = {
            "name": app.name, "packets": app.packets, "mpps": best.mpps, "ns_per_packet": ns,
            "cpu_share": best.cpu / best.wall,
            "cycles_per_packet_est": ns * mhz / 1e3 if mhz else None,
            "cycles_per_packet": counters.get("cycles"),
            "instructions_per_packet": counters.get("instructions"),
            "elements": dict(_elements(prof, app.packets)),
            "profiled_ns_per_packet": prof.ns_per_packet(),
        }
        ctx.log(f"{app.name}: {best.mpps:.3f} Mpps, {ns:.0f} ns/packet")
    ctx.step("plotting")
    a = data["apps"]

    def ratio(k: str) -> float | None:
        if k not in a or "fwd" not in a:
            return None
        x = a[k]["cycles_per_packet"] or a[k]["ns_per_packet"]
        y = a["fwd"]["cycles_per_packet"] or a["fwd"]["ns_per_packet"]
        return x / y

    basis = "cycles (perf)" if no_perf is None else "ns (time per packet; no perf counters)"
    ratios = [Ratio("IP routing / minimal forwarding, per packet", cycles("rtr") / cycles("fwd"),
                    ratio("rtr"), basis),
              Ratio("IPsec (AES-128-CBC + HMAC-SHA1) / minimal forwarding", cycles("ipsec")
                    / cycles("fwd"), ratio("ipsec-cbc"), basis),
              Ratio("IPsec (AES-128-GCM) / minimal forwarding", None, ratio("ipsec-gcm"),
                    basis + "; the paper measured one IPsec")]
    body = [_apps_table(data, no_perf), *(_element_table(a[k]) for k in a)]
    if no_perf is not None:
        notes.append(f"Cycles and instructions per packet not measured: {no_perf}. 'cycles "
                     f"(est.)' is ns per packet × the clock /proc/cpuinfo reports ({mhz:.0f} "
                     "MHz), an estimate that counts time waiting for memory and for the "
                     "hypervisor as cycles." if mhz else f"No perf counters: {no_perf}.")
    notes += [f"Memory to memory, one core, kp {KP} (routebricks' default on devices), 64 B "
              "packets from a pcap in the page cache (IPsec: 64-byte inner IPv4 packets); ns "
              f"per packet: wall time of the run / packets, best of {repeat}.",
              "Per element: each element's own time (the profiler's self_ns: push time minus "
              "time spent downstream) per input packet, from one run with profiling on, "
              "which costs some time of its own; the rest is FromDump and the scheduler.",
              "Memory to memory leaves out the I/O -- descriptors, socket buffers, the copy "
              "into and out of rings -- which is most of the paper's minimal-forwarding cost, "
              "so the ratios to minimal forwarding come out larger here; fig8 measures the "
              "applications with the I/O (on veth).",
              "Fig. 9's other claim, a constant cost per packet as the input rate grows, needs "
              "a paced input; memory to memory there is none (fig8 measures rates on veth)."]
    plot = _plot(ctx, data)
    summary = ", ".join(f"{v['name'].split(' (')[0]} {v['ns_per_packet']:.0f} ns"
                        for v in a.values())
    summary += (f"; routing/fwd {fmt_ratio(ratios[0].ours)} (paper 1.51×), IPsec-CBC/fwd "
                f"{fmt_ratio(ratios[1].ours)} (paper 6.36×)")
    return Result(summary=summary, body="\n\n".join(body), ratios=ratios, data=data,
                  plots=[plot] if plot else [], notes=notes + ([] if plot else [plots.MISSING]))


def _mhz() -> float | None:
    from routebricks.bench.core import machine_facts

    return machine_facts().get("cpu_mhz")


def _apps_table(data: dict[str, Any], no_perf: str | None) -> str:
    lines = ["Per application (one core, 64 B):", "",
             "| application | Mpps | ns/packet | cycles/packet | instructions/packet | "
             "paper cycles/packet | paper instructions/packet |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for key, v in data["apps"].items():
        if v["cycles_per_packet"]:
            cyc = f"{v['cycles_per_packet']:,.0f}"
        elif v["cycles_per_packet_est"]:
            cyc = f"~{v['cycles_per_packet_est']:,.0f} (est.)"
        else:
            cyc = "–"
        ins = f"{v['instructions_per_packet']:,.0f}" if v["instructions_per_packet"] else "–"
        pk = {"fwd": "fwd", "rtr": "rtr", "ipsec-cbc": "ipsec"}.get(key)
        pc = f"{cycles(pk):,.0f}" if pk else "–"
        pi = f"{TABLE3[pk][0]:,}" if pk else "–"
        lines.append(f"| {v['name']} | {v['mpps']:.3f} | {v['ns_per_packet']:.0f} | {cyc} | "
                     f"{ins} | {pc} | {pi} |")
    return "\n".join(lines)


def _element_table(v: dict[str, Any]) -> str:
    total = sum(v["elements"].values())
    lines = [f"{v['name']}, per element (ns per packet; profiled run "
             f"{v['profiled_ns_per_packet']:.0f} ns/packet):", "",
             "| element | ns/packet | share |", "|---|---:|---:|"]
    for name, ns in v["elements"].items():
        lines.append(f"| {name} | {ns:.1f} | {ns / total:.0%} |" if total else f"| {name} | "
                     f"{ns:.1f} | – |")
    return "\n".join(lines)


def _plot(ctx: Context, data: dict[str, Any]) -> str | None:
    if not plots.available():
        return None
    from matplotlib.figure import Figure

    apps = data["apps"]
    fig = Figure(figsize=(11, 4.5))
    ax0, ax1 = fig.subplots(1, 2)
    names = [v["name"].split(" (")[0] for v in apps.values()]
    ns = [v["ns_per_packet"] for v in apps.values()]
    rects = ax0.bar(range(len(ns)), ns, color="tab:blue")
    ax0.bar_label(rects, fmt="%.0f", fontsize=8)
    ax0.set_yscale("log")
    ax0.set_xticks(range(len(ns)), [n.replace(" + ", "\n+ ") for n in names], fontsize=7)
    ax0.set(ylabel="ns per packet, one core (log)",
            title="cost per packet, 64 B, memory to memory")
    ax0.grid(True, axis="y", alpha=0.3)
    # Each application's time split by element, as shares (100% stacked).
    classes: list[str] = []
    for v in apps.values():
        for name in v["elements"]:
            base = name.split(" ×")[0]
            if base not in classes:
                classes.append(base)
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    color = {c: cmap(i % 20) for i, c in enumerate(classes)}
    bottoms = [0.0] * len(apps)
    labelled: set[str] = set()
    for i, v in enumerate(apps.values()):
        total = sum(v["elements"].values()) or 1.0
        for name, val in v["elements"].items():
            base = name.split(" ×")[0]
            share = 100 * val / total
            ax1.bar(i, share, bottom=bottoms[i], color=color[base],
                    label=None if base in labelled else base)
            if share >= 8:
                ax1.text(i, bottoms[i] + share / 2, base.split(" ")[0], ha="center",
                         va="center", fontsize=6)
            labelled.add(base)
            bottoms[i] += share
    ax1.set_xticks(range(len(apps)), [n.replace(" + ", "\n+ ") for n in names], fontsize=7)
    ax1.set(ylabel="share of the time per packet (%)", ylim=(0, 100),
            title="where it goes: each element's own time")
    ax1.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    path = ctx.plot_path("fig9.png")
    fig.savefig(path, dpi=100)
    return Path(path).name
