"""Fig. 7: the cumulative effect of batching and multiple queues on one server."""

from __future__ import annotations

from typing import Any

from routebricks.bench import plots
from routebricks.bench.core import Context, Ratio, Result, Skip, experiment
from routebricks.bench.report import fmt_ratio

PAPER = """
§4.2, Fig. 7: minimal forwarding of 64 B packets with all eight cores and four ports, a
uniform traffic matrix, four times: a shared-bus Xeon without any of the changes, the
Nehalem without them (no multi-queue NICs, no batching), with multiple queues, and with
multiple queues and batching. The changes give 6.7× over the same server without them and
11× over the Xeon.
"""


def _steps(workers: list[int]) -> list[tuple[str, int, int, str]]:
    """(label, workers, kp, method) in the order the paper adds its changes."""
    many = [w for w in workers if w > 1]
    steps = [("no batching, one queue", 1, 1, "V2")]
    if many:
        steps.append((f"multi-queue ({many[-1]} workers), no batching", many[-1], 1, "V2"))
    steps.append(("batching (kp 256, kn on), one queue", 1, 256, "V3"))
    steps += [(f"batching + multi-queue ({w} workers)", w, 256, "V3") for w in many]
    return steps


@experiment("fig7", "Fig. 7 — batching and multiple queues, together", paper=PAPER,
            paper_ratio="all changes / none = 6.7× (11× over the shared-bus Xeon)",
            seconds=(20, 60), uses_workers=True)
def run(ctx: Context) -> Result:
    from routebricks.bench.drain import drain_bed

    if ctx.memory_only:
        raise Skip("needs veth and namespaces (--memory-only)")
    steps = _steps(ctx.workers)
    repeat = ctx.pick(2, 3)
    packets = ctx.pick(30_000, 60_000)
    ctx.total(2 + repeat * len(steps))
    ctx.step("veth: building the testbed")
    best: dict[str, Any] = {}
    with drain_bed(ctx.tmp) as bed:
        for r in range(repeat):
            for label, w, kp, m in steps:
                ctx.step(f"round {r + 1}: {label}")
                res = bed.run(workers=w, kp=kp, method=m,
                              packets=packets // 2 if kp == 1 else packets)
                ctx.log(f"{label}: {res.mpps:.3f} Mpps, split {res.split}")
                if label not in best or res.mpps > best[label].mpps:
                    best[label] = res
    ctx.step("plotting")
    labels = [s[0] for s in steps]
    mpps = [best[lb].mpps for lb in labels]
    base = mpps[0]
    all_on = mpps[-1]
    rows = ["| step | workers | kp | kn | Mpps | × the first | split |",
            "|---|---:|---:|---|---:|---:|---|"]
    for (label, w, kp, m), v in zip(steps, mpps, strict=True):
        rows.append(f"| {label} | {w} | {kp} | {'on' if m == 'V3' else 'off'} | {v:.3f} | "
                    f"{fmt_ratio(v / base)} | {best[label].split} |")
    ratios = [Ratio("all changes / none", 6.7, all_on / base,
                    f"{labels[-1]} vs {labels[0]}")]
    one = labels.index("batching (kp 256, kn on), one queue")
    if len(labels) > one + 1:
        ratios.append(Ratio("multi-queue with batching / one queue with batching", None,
                            mpps[-1] / mpps[one], "the paper shows no such step alone"))
    png = plots.bars(ctx.plot_path("fig7.png"), "Minimal forwarding on veth, 64 B: the router "
                     "draining its rings", [lb.replace(", ", ",\n") for lb in labels],
                     {"Mpps": mpps}, "Mpps (forwarded)")
    notes = ["Each step is the rate at which the router's workers drain a backlog its receive "
             f"rings hold ({packets:,} 64-byte frames of 4096 flows; half that at kp 1), "
             "measured inside the router (each worker's Counter times its own first and last "
             f"batch); best of {repeat}. Multi-queue: one PACKET_FANOUT ring per worker, "
             "each worker pinned to a core of its own -- the paper's multi-queue NIC.",
             "The paper's first bar (a shared-bus Xeon) has no counterpart here."]
    return Result(
        summary=f"all / none {fmt_ratio(all_on / base)} (paper 6.7×): "
                + " → ".join(f"{v:.3f}" for v in mpps) + " Mpps",
        body="\n".join(rows), ratios=ratios, plots=[png] if png else [],
        data={"steps": [{"label": lb, "workers": w, "kp": kp, "method": m,
                         "mpps": best[lb].mpps, "split": best[lb].split}
                        for lb, w, kp, m in steps], "repeat": repeat, "packets": packets},
        notes=notes + ([] if png else [plots.MISSING]))
