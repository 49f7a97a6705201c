"""Fig. 6: parallel vs pipeline, and forwarding paths with and without multiple queues.

Two parts. Memory to memory, :func:`routebricks.bench.pipeline.run_fig6`: one path on one
core, two paths on two cores, one path over two cores through ``ToShmQueue``/
``FromShmQueue``. On veth, :mod:`routebricks.bench.fig6dev`: the paper's scenarios (a)-(f)
between four ports and two cores (skipped with ``--memory-only`` or without root). Where a
part cannot run the report says why and gives no number for it.
"""

from __future__ import annotations

from typing import Any

from routebricks.bench import plots
from routebricks.bench.core import Context, Ratio, Result, Skip, experiment
from routebricks.bench.report import fmt_ratio

PAPER = """
§4.2, Fig. 6: toy forwarding paths between pairs of ports and cores, 64 B packets. The
parallel approach (each packet read, processed and sent by one core) beats the pipeline (a
packet handed from core to core) in every case: synchronization alone costs 29% (1.7 → 1.2
Gbit/s), with cache misses across sockets 64% (→ 0.6 Gbit/s). Multiple NIC queues let one
port be split over cores (scenario d: more than 3× scenario c) and overlapping paths keep
~1.7 Gbit/s per path instead of 0.7.
"""


@experiment("fig6", "Fig. 6 — parallel vs pipeline, multiple queues", paper=PAPER,
            paper_ratio="pipeline / parallel per path 0.71; (d)/(c) > 3×; overlapping paths "
            "with / without multiple queues 2.4×", seconds=(45, 160))
def run(ctx: Context) -> Result:
    from routebricks.bench.pipeline import format_table, run_fig6

    ctx.total(2 if ctx.memory_only else 3 + 6 * ctx.pick(1, 3))
    ctx.step("memory to memory: parallel and pipeline paths at batch 32, 256, 1024")
    d = run_fig6(ctx.quick)
    ctx.log(format_table(d))
    rows = d["rows"]
    by = {int(r["batch"]): r for r in rows}
    ratios = [Ratio(f"pipeline / parallel, per path, batch {b}", 0.71 if b == 32 else None,
                    r["pipeline_vs_parallel_per_path"],
                    "memory to memory; paper: kp 32, two cores sharing an L3" if b == 32
                    else "memory to memory")
              for b, r in by.items()]
    ratios += [Ratio(f"pipeline / parallel, per core, batch {b}", None,
                     r["pipeline_vs_parallel_per_core"], "one path on two cores vs two paths")
               for b, r in by.items()]
    body = ["Memory to memory:", "",
            "| batch | parallel, 1 core | parallel, 2 cores | pipeline, 2 cores | dropped by "
            "the queue | pipeline, 1 process | ring alone |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for b, r in by.items():
        body.append(f"| {b} | {_m(r['parallel_1core_pps'])} | {_m(r['parallel_2cores_pps'])} | "
                    f"{_m(r['pipeline_2cores_pps'])} | {r['pipeline_dropped']:.1%} | "
                    f"{_m(r['pipeline_1process_pps'])} | {_m(r['ring_only_pps'])} |")
    ctx.step("plotting")
    pngs = [plots.bars(ctx.plot_path("fig6.png"), "Parallel vs pipeline, 64 B, memory to memory",
                       [f"batch {b}" for b in by],
                       {"parallel, 1 core": [r["parallel_1core_pps"] / 1e6 for r in rows],
                        "parallel, 2 cores": [r["parallel_2cores_pps"] / 1e6 for r in rows],
                        "pipeline, 2 cores": [r["pipeline_2cores_pps"] / 1e6 for r in rows]},
                       "Mpps", log=True)]
    first = by[min(by)]
    notes = [f"Memory to memory ({d['frame_bytes']}-byte frames made by InfiniteSource), each "
             f"figure the best of {d['best_of']} runs of {d['seconds_per_run']:g} s as "
             "`routebricks run` subprocesses, rates from the Counter's own first and last "
             f"packet; the queue holds {d['queue_capacity']} packets. Pipeline: worker 0 "
             "InfiniteSource -> ToShmQueue, worker 1 FromShmQueue -> Counter -> Discard."]
    summary = (f"pipeline / parallel per path {fmt_ratio(first['pipeline_vs_parallel_per_path'])}"
               f" at batch {min(by)} in memory (paper 0.71)")
    data: dict[str, Any] = {"memory": d}
    try:
        dev = _devices(ctx)
    except Skip as e:
        notes.append(f"Scenarios (a)-(f) on veth not measured: {e}.")
    else:
        data["devices"] = dev["data"]
        body += ["", "On veth, two workers (cores), 64 B frames:", "", *dev["body"]]
        ratios += dev["ratios"]
        pngs.append(dev["png"])
        notes += dev["notes"]
        summary += "; on veth " + dev["summary"]
    return Result(summary=summary, body="\n".join(body), ratios=ratios, data=data,
                  plots=[p for p in pngs if p],
                  notes=notes + ([] if all(pngs) else [plots.MISSING]))


def _devices(ctx: Context) -> dict[str, Any]:
    """Scenarios (a)-(f) on veth: the body rows, ratios, plot and notes of that part."""
    if ctx.memory_only:
        raise Skip("--memory-only")
    from routebricks.bench.fig6dev import KP, SCENARIOS, fig6_bed, run_devices

    packets, repeat = ctx.pick(30_000, 60_000), ctx.pick(1, 3)
    ctx.step("veth: building the four-port testbed")
    with fig6_bed(ctx.tmp) as bed:
        best = run_devices(bed, packets, repeat, ctx.step)
    for k, r in best.items():
        ctx.log(f"({k}) {r.mpps:.3f} Mpps, {r.per_path:.3f} per path, forwarded by worker "
                f"{r.forwarded_by_worker}, read by worker {r.read_by_worker}, queue drops "
                f"{r.queue_drops}, ring drops {r.ring_drops}")
    pp = {k: r.per_path for k, r in best.items()}
    if not all(pp.values()):  # a scenario forwarded nothing: no ratio to give
        raise Skip("scenarios forwarded nothing: " + ", ".join(
            f"({k})" for k, v in pp.items() if not v) + " (see the log)")
    body = ["| scenario | paths | Mpps, all paths | Mpps per path | forwarded by worker 0 / 1 "
            "| read by worker 0 / 1 | dropped |", "|---|---:|---:|---:|---|---|---:|"]
    for k, s in SCENARIOS.items():
        r = best[k]
        body.append(f"| ({k}) {s.label} | {r.paths} | {r.mpps:.3f} | {r.per_path:.3f} | "
                    f"{' / '.join(map(str, r.forwarded_by_worker))} | "
                    f"{' / '.join(map(str, r.read_by_worker))} | "
                    f"{r.queue_drops + r.ring_drops} |")
    ratios = [
        Ratio("one port: two queues (d) / one queue split over cores (c)", 3.0,
              pp["d"] / pp["c"], "paper: more than 3×"),
        Ratio("overlapping paths, per path: multiple queues (f) / one queue per port (e)",
              1.7 / 0.7, pp["f"] / pp["e"], "paper: 1.7 vs 0.7 Gbit/s per path"),
        Ratio("per path: overlapping with multiple queues (f) / non-overlapping (b)", 1.0,
              pp["f"] / pp["b"], "paper: similar, about 1.7 Gbit/s per path"),
        Ratio("pipeline (a) / parallel (b), per path, on veth", 0.71, pp["a"] / pp["b"],
              "(a) uses two cores for its one path"),
        Ratio("pipeline (a) / parallel (b), per core, on veth", None,
              best["a"].mpps / best["b"].mpps, "both scenarios use both cores"),
    ]
    png = plots.bars(ctx.plot_path("fig6-devices.png"),
                     "Fig. 6 scenarios on veth, 64 B, two cores",
                     [f"({k}) {s.short}" for k, s in SCENARIOS.items()],
                     {"Mpps per path": [pp[k] for k in SCENARIOS]}, "Mpps per path")
    notes = [f"On veth: {packets:,} 64-byte frames of 4096 flows per input, queued in the "
             "router's receive rings while FromDevice is paused, then drained; each Counter "
             "times its own first and last batch in each worker, a scenario's rate is all "
             f"frames forwarded / the longest of those times; kp {KP}; best of {repeat}. "
             "One queue = a FromDevice placed on one worker; multiple queues = a socket per "
             "worker on the port (a PACKET_FANOUT group for receiving); a hand-over between "
             "cores = ToShmQueue/FromShmQueue. The receivers drop at ingress.",
             "Scenario (c) here lets the core that reads the port forward half the flows itself "
             "(with two cores, the most a port tied to one core can share) and hand only the "
             "other half over; the paper's 16-core case hands more of the stream over.",
             "A veth transmit also runs the receiving side's input path on the sending core, "
             "so sending costs more than on a NIC: a pipeline that splits receiving from "
             "sending over two cores gains more per path than on the paper's hardware; per "
             "core it still loses to the parallel layout."]
    summary = (f"(d)/(c) {fmt_ratio(pp['d'] / pp['c'])} (paper > 3×), overlapping "
               f"(f)/(e) {fmt_ratio(pp['f'] / pp['e'])} (paper 2.4×), (f)/(b) "
               f"{fmt_ratio(pp['f'] / pp['b'])} (paper ≈ 1)")
    return {"data": {k: r.as_dict() for k, r in best.items()}, "body": body,
            "ratios": ratios, "png": png, "notes": notes, "summary": summary}


def _m(pps: Any) -> str:
    return f"{float(pps) / 1e6:.2f} Mpps"
