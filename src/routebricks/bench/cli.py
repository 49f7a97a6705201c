"""``routebricks bench``: run the paper's experiments here and write a report with plots."""

from __future__ import annotations

import difflib
import os
import sys

import click

__all__ = ["COMMANDS", "bench"]

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


def _workers(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        out = sorted({int(w) for w in value.split(",") if w.strip()})
    except ValueError:
        raise click.BadParameter(f"{value!r}: want worker counts such as 1,2", ctx,
                                 param) from None
    if not out or out[0] < 1:
        raise click.BadParameter(f"{value!r}: worker counts start at 1", ctx, param)
    return out


@click.command("bench", context_settings=CONTEXT)
@click.argument("experiments", nargs=-1, metavar="[EXPERIMENT]...")
@click.option("--quick", is_flag=True,
              help="Fewer points and shorter trials: every experiment in about 3 minutes.")
@click.option("--out", "out", default="bench-results", show_default=True, metavar="DIR",
              help="Where report.md, results.json, the plots and logs/ go.")
@click.option("--workers", callback=_workers, metavar="N[,N...]", default=None,
              help="Worker counts for the experiments that scale with cores [default: 1 and "
              "2, at most this machine's cores].")
@click.option("--memory-only", is_flag=True,
              help="Only the memory-to-memory parts (no namespaces, no root needed).")
@click.option("--list", "list_", is_flag=True, help="List the experiments and exit.")
@click.option("-v", "--verbose", is_flag=True, help="Print each step's progress lines.")
def bench(experiments: tuple[str, ...], quick: bool, out: str, workers: list[int] | None,
          memory_only: bool, list_: bool, verbose: bool) -> None:
    """Run RouteBricks' experiments (SOSP 2009) on this machine and write DIR/report.md:
    per experiment what the paper measured, what we measured, the ratio that can be
    compared, a plot and the command that reruns it; and DIR/results.json.

    \b
    Experiments (the paper's numbering; all by default):
      fig3    servers vs ports, from the planner (§3.3)
      table1  batching: kp 1/32/256 and kn, memory to memory and on veth (§4.2)
      fig6    parallel vs pipeline, memory to memory (§4.2)
      fig7    no batching, one queue -> batching -> multi-queue (§4.2)
      fig8    loss-free rate vs packet size and application, the Linux kernel beside (§5.2)
      fig9    cost per packet per application and element (Fig. 9, Table 3)
      rb4     RB4 in namespaces: rate, load per server, reordering, latency (§6.2)

    \b
    Examples:
      routebricks bench --quick                  # all of them, about 3 minutes
      routebricks bench table1 fig3 --out /tmp/r # two of them
      routebricks bench fig8 --workers 1,2       # per-core scaling where it applies
    The parts in namespaces need root; without it they are skipped with the reason.
    """
    from routebricks.bench.core import registry
    from routebricks.bench.runner import run_experiments

    exps = registry()
    if list_:
        for key, e in exps.items():
            q, f = e.seconds
            click.echo(f"{key:<7} {e.title}  (~{_dur(q)} quick, ~{_dur(f)} full)")
            click.echo(f"        paper: {e.paper_ratio}")
        return
    unknown = [x for x in experiments if x not in exps]
    if unknown:
        hints = [f"{x!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(
            x, list(exps), 1)) else repr(x) for x in unknown]
        raise click.UsageError(f"unknown experiment {', '.join(hints)}; the experiments are "
                               f"{', '.join(exps)} (routebricks bench --list)")
    ids = [k for k in exps if not experiments or k in experiments]
    if workers is None:
        workers = [w for w in (1, 2) if w <= len(os.sched_getaffinity(0))]
    outcomes = run_experiments(ids, out=out, quick=quick, workers=workers,
                               memory_only=memory_only, verbose=verbose)
    ok = sum(o.status == "ok" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    failed = [o.id for o in outcomes if o.status == "failed"]
    total = sum(o.seconds for o in outcomes)
    click.echo(f"{ok} measured, {skipped} skipped, {len(failed)} failed in {_dur(total)}: "
               f"{os.path.join(out, 'report.md')}, {os.path.join(out, 'results.json')}")
    if any(o.status == "interrupted" for o in outcomes):
        sys.exit(130)
    if failed:
        sys.exit(1)


def _dur(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


COMMANDS = [bench]
