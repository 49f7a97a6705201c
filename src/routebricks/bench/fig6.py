"""Fig. 6: parallel vs pipeline, memory to memory.

The measurement is :func:`routebricks.bench.pipeline.run_fig6` (the shared-memory queue's
comparison: one path on one core, two paths on two cores, one path over two cores through
``ToShmQueue``/``FromShmQueue``); this module puts it into the report. Where the queue is
not available the experiment is skipped with that reason -- it reports no number, so none
can be mistaken for a measurement. Not measured yet: the paper's multi-queue scenarios
(c)-(f) on devices.
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


@experiment("fig6", "Fig. 6 — parallel vs pipeline", paper=PAPER,
            paper_ratio="pipeline / parallel per path = 0.71 (shared L3), 0.35 (across "
            "sockets)", seconds=(20, 140))
def run(ctx: Context) -> Result:
    try:
        from routebricks.bench.pipeline import format_table, run_fig6
    except ImportError as e:
        raise Skip("not yet measured: the pipeline needs the shared-memory queue element "
                   f"({e})") from None
    ctx.total(2)
    ctx.step("parallel and pipeline paths at batch 32, 256, 1024 (routebricks run)")
    d = run_fig6(ctx.quick)
    ctx.log(format_table(d))
    ctx.step("plotting")
    rows = d["rows"]
    by = {int(r["batch"]): r for r in rows}
    ratios = [Ratio(f"pipeline / parallel, per path, batch {b}", 0.71 if b == 32 else None,
                    r["pipeline_vs_parallel_per_path"],
                    "paper: kp 32, two cores sharing an L3" if b == 32 else "")
              for b, r in by.items()]
    ratios += [Ratio(f"pipeline / parallel, per core, batch {b}", None,
                     r["pipeline_vs_parallel_per_core"], "one path on two cores vs two paths")
               for b, r in by.items()]
    body = ["| batch | parallel, 1 core | parallel, 2 cores | pipeline, 2 cores | dropped by "
            "the queue | pipeline, 1 process | ring alone |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for b, r in by.items():
        body.append(f"| {b} | {_m(r['parallel_1core_pps'])} | {_m(r['parallel_2cores_pps'])} | "
                    f"{_m(r['pipeline_2cores_pps'])} | {r['pipeline_dropped']:.1%} | "
                    f"{_m(r['pipeline_1process_pps'])} | {_m(r['ring_only_pps'])} |")
    png = plots.bars(ctx.plot_path("fig6.png"), "Parallel vs pipeline, 64 B, memory to memory",
                     [f"batch {b}" for b in by],
                     {"parallel, 1 core": [r["parallel_1core_pps"] / 1e6 for r in rows],
                      "parallel, 2 cores": [r["parallel_2cores_pps"] / 1e6 for r in rows],
                      "pipeline, 2 cores": [r["pipeline_2cores_pps"] / 1e6 for r in rows]},
                     "Mpps", log=True)
    first = by[min(by)]
    notes = [f"Memory to memory ({d['frame_bytes']}-byte frames made by InfiniteSource), each "
             f"figure the best of {d['best_of']} runs of {d['seconds_per_run']:g} s as "
             "`routebricks run` subprocesses, rates from the Counter's own first and last "
             f"packet; the queue holds {d['queue_capacity']} packets. Pipeline: worker 0 "
             "InfiniteSource -> ToShmQueue, worker 1 FromShmQueue -> Counter -> Discard.",
             "Not measured: the paper's scenarios (c)-(f), one port split over cores with and "
             "without multiple queues (fig7 measures multiple receive queues on veth)."]
    return Result(
        summary=f"pipeline / parallel per path {fmt_ratio(first['pipeline_vs_parallel_per_path'])}"
                f" at batch {min(by)} (paper 0.71), per core "
                f"{fmt_ratio(first['pipeline_vs_parallel_per_core'])}",
        body="\n".join(body), ratios=ratios, data=d, plots=[png] if png else [],
        notes=notes + ([] if png else [plots.MISSING]))


def _m(pps: Any) -> str:
    return f"{float(pps) / 1e6:.2f} Mpps"
