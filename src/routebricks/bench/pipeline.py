"""Fig. 6 memory to memory: parallel (each core runs the whole path) vs pipeline (one core
hands packets to another through a shared-memory queue), 64-byte frames.

The paper's toy forwarding path, without devices: a source makes the frames, a Counter and
a Discard take them. At each batch size (32, 256, 1024: InfiniteSource's BURST and
FromShmQueue's) it runs, each as ``routebricks run`` in a subprocess for a fixed time:

* **parallel, 1 core** — ``InfiniteSource -> Counter -> Discard`` in one process: one
  forwarding path, one core (scenario b of Fig. 6, per path);
* **parallel, 2 cores** — two such paths, one per worker (``-j 2``): what two cores give
  when each packet stays on one core;
* **pipeline, 2 cores** — ``InfiniteSource -> ToShmQueue`` on worker 0, ``FromShmQueue ->
  Counter -> Discard`` on worker 1: one path over two cores (scenario a); the rate is what
  reaches the Counter, and the fraction the queue dropped (the two sides' speeds differ)
  is reported beside it;
* **pipeline, 1 process** — the same configuration in one process (``-j 1``): the cost of
  the copies in and out of the ring without crossing cores;
* **ring only** — :class:`~routebricks.packet.shmring.PacketRing` alone between two pinned
  processes, one putting the same batch again and again, one taking: the queue's ceiling.

Rates are the Counter's own (first to last packet: start-up excluded), with per-element
timing off (``--no-profile``), each the best of three runs. Nothing is asserted: machines
are shared and noisy. ``routebricks bench`` calls :func:`run_fig6`;
``benchmarks/shmqueue.py`` prints its table.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

BATCHES = (32, 256, 1024)
FRAME = 64
#: Ring capacity for the pipeline runs: several of the largest batches.
CAPACITY = 8192

PARALLEL_1 = ("src :: InfiniteSource(LENGTH {frame}, BURST {b}) -> c :: Counter -> Discard;")
PARALLEL_2 = ("s0 :: InfiniteSource(LENGTH {frame}, BURST {b}) -> c0 :: Counter -> Discard;"
              "s1 :: InfiniteSource(LENGTH {frame}, BURST {b}) -> c1 :: Counter -> Discard;"
              "StaticThreadSched(s0 0, s1 1);")
PIPELINE = ("src :: InfiniteSource(LENGTH {frame}, BURST {b}) -> tq :: ToShmQueue(q, {cap});"
            "fsq :: FromShmQueue(q, {b}) -> c :: Counter -> Discard;"
            "StaticThreadSched(src 0, fsq 1);")


def _handlers(stdout: str, names: tuple[str, ...]) -> dict[str, str]:
    """The values ``routebricks run -h`` printed (a lone value, or 'NAME:' blocks)."""
    if len(names) == 1:
        return {names[0]: stdout.strip()}
    out: dict[str, list[str]] = {}
    current: list[str] = []
    for line in stdout.splitlines():
        if line.endswith(":") and line[:-1] in names:
            current = out.setdefault(line[:-1], [])
        else:
            current.append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


def run_config(config: str, workers: int, seconds: float,
               handlers: tuple[str, ...]) -> dict[str, str]:
    """Run ``config`` for ``seconds`` with ``workers`` worker processes (one: in the
    process itself); the ``handlers`` read when it ends."""
    with tempfile.TemporaryDirectory() as d:
        args = [sys.executable, "-m", "routebricks.cli", "run", "-e", config,
                "--workers", str(workers), "--duration", f"{seconds:g}", "--no-summary",
                "--no-profile"]  # no per-element clock reads: the data path alone
        if workers > 1:
            args += ["-u", os.path.join(d, "ctl.sock")]  # never the shared default name
        for h in handlers:
            args += ["-h", h]
        p = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 300)
    if p.returncode != 0:
        raise RuntimeError(f"routebricks run failed ({p.returncode}): {p.stderr.strip()}")
    return _handlers(p.stdout, handlers)


def _dropped(table: str) -> int:
    return sum(int(line.split("\t")[0]) for line in table.splitlines() if line.strip())


# ---------------------------------------------------------------------- the ring alone
def _ring_side(ring: Any, batch: int, put: bool, seconds: float, cpu: int | None,
               start: Any, conn: Any) -> None:
    from routebricks.packet.batch import PacketBatch

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    frames = PacketBatch.from_arrays(np.zeros((batch, FRAME), np.uint8),
                                     np.full(batch, FRAME))
    moved = 0
    start.wait()
    t0 = time.perf_counter()
    end = t0 + seconds
    if put:
        while time.perf_counter() < end:
            for _ in range(64):
                moved += ring.put(frames)
    else:
        while time.perf_counter() < end:
            for _ in range(64):
                b = ring.get(batch)
                if b is not None:
                    moved += len(b)
    conn.send((moved, time.perf_counter() - t0))


def ring_only(batch: int, seconds: float) -> float:
    """Packets per second through a :class:`PacketRing` between two pinned processes."""
    from routebricks.packet.shmring import PacketRing, warmup

    warmup()
    ring = PacketRing(CAPACITY)
    ctx = mp.get_context("fork")
    cpus = sorted(os.sched_getaffinity(0))
    start = ctx.Barrier(2)
    pipes = [ctx.Pipe() for _ in range(2)]
    procs = [ctx.Process(target=_ring_side,
                         args=(ring, batch, side == 0, seconds,
                               cpus[side % len(cpus)] if len(cpus) > 1 else None,
                               start, pipes[side][1]))
             for side in range(2)]
    for p in procs:
        p.start()
    try:
        (_, _), (got, dt) = (pipes[0][0].recv(), pipes[1][0].recv())
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    return got / dt


# ---------------------------------------------------------------------- the comparison
def _parallel_1(fmt: dict[str, int], seconds: float) -> float:
    return float(run_config(PARALLEL_1.format(**fmt), 1, seconds, ("c.rate",))["c.rate"])


def _parallel_2(fmt: dict[str, int], seconds: float) -> float:
    h = run_config(PARALLEL_2.format(**fmt), 2, seconds, ("c0.rate", "c1.rate"))
    return float(h["c0.rate"]) + float(h["c1.rate"])


def _pipeline_2(fmt: dict[str, int], seconds: float) -> tuple[float, float]:
    h = run_config(PIPELINE.format(**fmt), 2, seconds, ("c.rate", "tq.drops", "src.count"))
    sent = int(h["src.count"])
    return float(h["c.rate"]), (_dropped(h["tq.drops"]) / sent if sent else 0.0)


def _pipeline_1(fmt: dict[str, int], seconds: float) -> float:
    return float(run_config(PIPELINE.format(**fmt), 1, seconds, ("c.rate",))["c.rate"])


def measure(batch: int, seconds: float, repeat: int = 1) -> dict[str, float]:
    """One row of the comparison at one batch size: packets per second, each the best of
    ``repeat`` runs (a shared machine only ever makes a run slower)."""
    fmt = {"frame": FRAME, "b": batch, "cap": CAPACITY}
    row: dict[str, float] = {"batch": batch}
    row["parallel_1core_pps"] = max(_parallel_1(fmt, seconds) for _ in range(repeat))
    row["parallel_2cores_pps"] = max(_parallel_2(fmt, seconds) for _ in range(repeat))
    best = max((_pipeline_2(fmt, seconds) for _ in range(repeat)), key=lambda r: r[0])
    row["pipeline_2cores_pps"], row["pipeline_dropped"] = best
    row["pipeline_1process_pps"] = max(_pipeline_1(fmt, seconds) for _ in range(repeat))
    row["ring_only_pps"] = max(ring_only(batch, seconds) for _ in range(repeat))
    row["pipeline_vs_parallel_per_path"] = (row["pipeline_2cores_pps"]
                                            / row["parallel_1core_pps"])
    row["pipeline_vs_parallel_per_core"] = (row["pipeline_2cores_pps"]
                                            / row["parallel_2cores_pps"])
    return row


def run_fig6(quick: bool) -> dict[str, Any]:
    """Parallel vs pipeline, memory to memory, at batch sizes 32, 256 and 1024. Each
    figure is the best of 3 runs of 2 s (``quick``: one run of 0.5 s). Returns the rows
    and how they were measured (JSON-ready)."""
    seconds, repeat = (0.5, 1) if quick else (2.0, 3)
    run_config(PIPELINE.format(frame=FRAME, b=32, cap=CAPACITY), 2, 0.2,
               ("c.count",))  # warm up: kernels loaded into numba's cache first
    return {
        "experiment": "fig6-memory",
        "frame_bytes": FRAME,
        "seconds_per_run": seconds,
        "best_of": repeat,
        "cpus": len(os.sched_getaffinity(0)),
        "queue_capacity": CAPACITY,
        "rows": [measure(b, seconds, repeat) for b in BATCHES],
        "paper": "pipeline / parallel per path: 0.71 (shared L3), 0.35 (across sockets)",
    }


def format_table(result: dict[str, Any]) -> str:
    """The rows of :func:`run_fig6` as a text table (Mpps)."""
    lines = [f"Fig. 6 memory to memory: {result['frame_bytes']}-byte frames, "
             f"best of {result['best_of']} runs of {result['seconds_per_run']:g} s, "
             f"{result['cpus']} cpus, queue of "
             f"{result['queue_capacity']} packets",
             f"{'batch':>6} {'parallel':>9} {'parallel':>9} {'pipeline':>9} {'dropped':>8}"
             f" {'pipeline':>9} {'ring':>7} {'pipe/par':>9} {'pipe/par':>9}",
             f"{'':>6} {'1 core':>9} {'2 cores':>9} {'2 cores':>9} {'by queue':>8}"
             f" {'1 proc':>9} {'only':>7} {'per path':>9} {'per core':>9}"]
    for r in result["rows"]:
        lines.append(
            f"{int(r['batch']):>6} {r['parallel_1core_pps'] / 1e6:>9.2f} "
            f"{r['parallel_2cores_pps'] / 1e6:>9.2f} {r['pipeline_2cores_pps'] / 1e6:>9.2f} "
            f"{r['pipeline_dropped']:>8.1%} {r['pipeline_1process_pps'] / 1e6:>9.2f} "
            f"{r['ring_only_pps'] / 1e6:>7.2f} {r['pipeline_vs_parallel_per_path']:>9.2f} "
            f"{r['pipeline_vs_parallel_per_core']:>9.2f}")
    lines.append("(Mpps; the paper: pipeline / parallel per path = 0.71 with a shared L3, "
                 "0.35 across sockets)")
    return "\n".join(lines)
