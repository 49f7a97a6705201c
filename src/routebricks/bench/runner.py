"""Running experiments: progress bars, a one-line summary each, results.json and report.md.

Each experiment runs in turn with a scratch folder of its own and a log
(``DIR/logs/ID.log``: its progress lines, and the traceback should it fail). An experiment
that raises :class:`~routebricks.bench.core.Skip` is *skipped* with that reason; any other
exception marks it *failed* with the exception's first line (the traceback goes to the log,
not the terminal), and the run goes on with the next. Ctrl-C (or SIGTERM) stops the run:
the experiment's own ``finally`` blocks remove its namespaces and processes, and the results
so far are written. The report and results.json are rewritten after every experiment.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from routebricks.bench.core import Context, Experiment, Progress, Skip, machine_facts, registry
from routebricks.bench.report import load_results, write_report, write_results

__all__ = ["Outcome", "run_experiments"]


@dataclass
class Outcome:
    id: str
    status: str  # ok | skipped | failed | interrupted
    seconds: float
    summary: str
    reason: str = ""


class _Bars(Progress):
    """rich progress: one bar for the run, one for the experiment running now."""

    def __init__(self, bars: Any, task: Any, log: TextIO, verbose: bool) -> None:
        self.bars, self.task, self.logf, self.verbose = bars, task, log, verbose
        self.done = 0

    def total(self, steps: int) -> None:
        self.bars.update(self.task, total=max(steps, 1))

    def step(self, text: str) -> None:
        self.done += 1
        self.bars.update(self.task, completed=self.done - 1, description=f"  {text}")
        self.log(text)

    def log(self, text: str) -> None:
        self.logf.write(f"{time.strftime('%H:%M:%S')} {text}\n")
        self.logf.flush()
        if self.verbose:
            self.bars.console.print(f"    {text}", highlight=False, markup=False, soft_wrap=True)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does (so every ``finally`` cleans up)."""
    me = os.getpid()

    def on_term(signum: int, _frame: object) -> None:
        if os.getpid() != me:
            # A child forked by a library (pyroute2 makes namespaces in one) inherits this
            # handler: it must die as by default, not unwind our code.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def rerun_command(ids: Sequence[str], out: str, quick: bool, workers: list[int] | None,
                  memory_only: bool = False) -> str:
    argv = ["routebricks", "bench", *ids, "--out", out]
    if quick:
        argv.append("--quick")
    if workers is not None:
        argv += ["--workers", ",".join(map(str, workers))]
    if memory_only:
        argv.append("--memory-only")
    return shlex.join(argv)


def run_experiments(ids: Sequence[str], *, out: str, quick: bool, workers: list[int] | None,
                    memory_only: bool = False, verbose: bool = False,
                    stdout: TextIO | None = None) -> list[Outcome]:
    """Run the experiments ``ids`` (registry keys, in the paper's order) into folder ``out``;
    print one summary line each on ``stdout``; write results.json and report.md."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    stdout = stdout or sys.stdout
    exps = registry()
    folder = Path(out)
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    results = load_results(folder)
    results["machine"] = machine_facts()
    results["command"] = rerun_command(ids if len(ids) < len(exps) else [], out, quick,
                                       workers, memory_only)
    wall0 = time.perf_counter()
    console = Console(stderr=True)
    outcomes: list[Outcome] = []
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=not console.is_terminal)
    width = max(len(i) for i in ids) if ids else 6
    with _sigterm_as_interrupt(), bars:
        overall = bars.add_task("routebricks bench", total=len(ids))
        for n, key in enumerate(ids):
            exp = exps[key]
            bars.update(overall, completed=n, description=f"[bold]{key}[/] {exp.title}")
            task = bars.add_task("  starting", total=1)
            o = _run_one(exp, folder, quick, workers, memory_only, verbose, bars, task,
                         results, out)
            bars.remove_task(task)
            outcomes.append(o)
            line = f"{key:<{width}}  {o.status:<7} {o.seconds:6.1f} s  "
            line += o.summary if o.status == "ok" else o.reason.splitlines()[0][:200]
            if console.is_terminal:  # above the bars
                bars.console.print(line, highlight=False, markup=False, soft_wrap=True)
            else:
                print(line, file=stdout, flush=True)
            results["wall_s"] = time.perf_counter() - wall0
            write_results(folder, results)
            write_report(folder, results, exps)
            if o.status == "interrupted":
                break
        bars.update(overall, completed=len(outcomes))
    return outcomes


def _run_one(exp: Experiment, folder: Path, quick: bool, workers: list[int] | None,
             memory_only: bool, verbose: bool, bars: Any, task: Any, results: dict[str, Any],
             out: str) -> Outcome:
    t0 = time.perf_counter()
    entry: dict[str, Any] = {
        "title": exp.title,
        "quick": quick,
        "workers": workers or [1],
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": rerun_command([exp.id], out, quick, workers if exp.uses_workers else None,
                                 memory_only),
    }
    with (open(folder / "logs" / f"{exp.id}.log", "w") as log,
          tempfile.TemporaryDirectory(prefix=f"rb-bench-{exp.id}-") as tmp):
        progress = _Bars(bars, task, log, verbose)
        ctx = Context(quick=quick, out=folder, workers=workers or [1], progress=progress,
                      tmp=Path(tmp), memory_only=memory_only)
        status, reason, summary = "ok", "", ""
        try:
            res = exp.run(ctx)
            summary = res.summary
            entry.update(summary=res.summary, body=res.body, data=res.data, plots=res.plots,
                         notes=res.notes, ratios=[r.to_dict() for r in res.ratios])
        except Skip as e:
            status, reason = "skipped", str(e)
        except KeyboardInterrupt:
            status, reason = "interrupted", "interrupted (Ctrl-C or SIGTERM); its namespaces "\
                "and processes were removed"
        except Exception as e:  # noqa: BLE001 - reported, logged, and the run goes on
            traceback.print_exc(file=log)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            status = "failed"
            reason = f"{type(e).__name__}: {first} (traceback in logs/{exp.id}.log)"
        log.write(f"{status} {reason}\n")
    seconds = time.perf_counter() - t0
    entry.update(status=status, reason=reason, seconds=seconds)
    if status == "interrupted" and exp.id in results["experiments"]:
        pass  # keep the last complete measurement of this experiment
    else:
        results["experiments"][exp.id] = entry
    return Outcome(exp.id, status, seconds, summary, reason)
