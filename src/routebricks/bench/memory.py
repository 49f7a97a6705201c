"""Memory to memory: routers fed from a pcap in the page cache, timed in-process, on one or
several cores.

The applications as Click configurations (the paper's §5.1 three, as the README's
Performance section runs them):

* **minimal forwarding** -- ``FromDump -> Classifier(12/0800, -) -> Counter -> Discard``
  over 64-byte frames (the README's "Minimal forwarding" table; ``benchmarks/forwarding.py``);
* **IP routing** -- ``FromDump -> Strip(14) -> CheckIPHeader -> DirectIPLookup(the real
  2008 table) -> per port: DecIPTTL -> EtherEncap -> Discard`` (``benchmarks/iprouting.py``);
* **IPsec** -- ``FromDump(raw IPv4) -> ESPEncap(SA) -> Discard`` (``benchmarks/ipsec.py``).

:class:`Cores` runs the same configuration in W processes at once, each pinned to its own
core, started together (a barrier after initialization): the paper's "each core its own
queue and its own packets" with no sharing at all, so W x one core is the ceiling and the
measured aggregate says how far this machine is from it.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routebricks.closing import Closing
from routebricks.packet.batch import PacketBatch
from routebricks.packet.pcap import write_pcap

__all__ = ["MINIMAL", "Cores", "Run", "ipsec_config", "make_minimal_pcap", "routing_config",
           "run_router"]

MINIMAL = """
src :: FromDump({pcap}, BURST {kp}, LIMIT {n})
    -> cls :: Classifier(12/0800, -)
    -> cnt :: Counter
    -> Discard;
cls [1] -> Discard;
"""

ROUTING_PORTS = 4  # the paper's server and examples/iprouter.click have four


def make_minimal_pcap(path: Path, n: int, size: int = 64) -> None:
    """``n`` Ethernet/IPv4/UDP frames of ``size`` bytes (FCS not stored: ``size - 4`` in
    the pcap; 64 B as benchmarks/forwarding.py always wrote them) to random destinations."""
    rng = np.random.default_rng(1)
    caplen = size if size == 64 else size - 4
    frame = np.zeros((n, caplen), np.uint8)
    frame[:, 0:6] = [2, 0, 0, 0, 0, 2]
    frame[:, 6:12] = [2, 0, 0, 0, 0, 1]
    frame[:, 12:14] = [0x08, 0x00]
    frame[:, 14] = 0x45
    frame[:, 16:18] = [(caplen - 14) >> 8, (caplen - 14) & 255]
    frame[:, 22] = 64
    frame[:, 23] = 17
    frame[:, 26:30] = [10, 0, 0, 1]
    frame[:, 30:34] = rng.integers(0, 256, (n, 4), dtype=np.uint8)
    write_pcap(path, PacketBatch.from_arrays(frame, np.full(n, caplen)))


def routing_config(pcap: Path, kp: int, routes: Path, limit: int = -1) -> str:
    """The IP-routing path of benchmarks/iprouting.py over a pcap of Ethernet frames."""
    interfaces = " ".join(f"10.0.{p}.1/24" for p in range(ROUTING_PORTS))
    lines = [f"src :: FromDump({pcap}, BURST {kp}, LIMIT {limit})",
             f"  -> Strip(14) -> CheckIPHeader(INTERFACES {interfaces})",
             f"  -> rt :: DirectIPLookup(ROUTES {routes});"]
    for p in range(ROUTING_PORTS):
        lines.append(f"rt[{p}] -> DecIPTTL -> EtherEncap(0x0800, 02:00:00:00:{p:02x}:01, "
                     f"02:00:00:00:{p:02x}:02) -> out{p} :: Discard;")
    return "\n".join(lines)


def ipsec_config(pcap: Path, kp: int, alg: str, limit: int = -1) -> str:
    """ESP tunnel encapsulation of raw IPv4 packets (benchmarks/ipsec.py's SA)."""
    from routebricks.bench.ipsecdata import sa_args

    return (f'src :: FromDump("{pcap}", BURST {kp}, LIMIT {limit})\n'
            f"    -> esp :: ESPEncap({sa_args(alg)})\n    -> sink :: Discard;\n")


@dataclass
class Run:
    """One timed run: wall and CPU seconds of ``Router.run``, packets, per-element rows."""

    packets: int
    wall: float
    cpu: float
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def mpps(self) -> float:
        return self.packets / self.wall / 1e6

    def ns_per_packet(self) -> float:
        return self.wall * 1e9 / max(self.packets, 1)


def run_router(text: str, *, profile: bool = False, expect: int | None = None,
               perf: Any = None) -> Run:
    """Build ``text``, initialize it (outside the clock: parsing, tables, pcap checks), run it
    to the end, and count the packets every Discard saw (``expect``: a broken run, one that
    lost packets, raises: that is a bug, not a speed). ``perf``: a started counter group,
    read around the run."""
    from routebricks.engine.router import Router

    r = Router.from_text(text, profile=profile)
    r.initialize()
    gc.collect()
    if perf is not None:
        perf.start()
    c0, t0 = time.process_time(), time.perf_counter()
    r.run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if perf is not None:
        perf.stop()
    rows = r.stats_rows()
    r.cleanup()
    packets = sum(int(row["count"] or 0) for row in rows if row["class"] == "Discard")
    if expect is not None and packets != expect:
        drops = [(row["element"], row["drop_reasons"]) for row in rows if row["drops"]]
        raise RuntimeError(f"a broken run: {packets} of {expect} packets reached Discard; "
                           f"drops {drops}")
    return Run(packets, wall, cpu, rows)


# ---------------------------------------------------------------------- several cores
def _child(conn: Any, cpu: int, barrier: Any) -> None:
    # Ctrl-C is the parent's to handle: it closes us (no traceback from each child).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.sched_setaffinity(0, {cpu})
    from routebricks.engine.router import Router

    while True:
        msg = conn.recv()
        if msg is None:
            return
        text, expect = msg
        try:
            r = Router.from_text(text)
            r.initialize()
            gc.collect()
            barrier.wait(timeout=300)
            t0 = time.perf_counter()
            r.run()
            wall = time.perf_counter() - t0
            n = sum(int(row["count"] or 0) for row in r.stats_rows() if row["class"] == "Discard")
            r.cleanup()
            if n != expect:
                raise RuntimeError(f"a broken run: {n} of {expect} packets reached Discard")
            conn.send(("ok", wall))
        except Exception as e:  # noqa: BLE001 - sent to the parent, which raises it
            barrier.abort()
            conn.send(("error", f"{type(e).__name__}: {e}"))


class Cores(Closing):
    """W processes, worker i pinned to core i (modulo the cores there are), each running
    the same configuration at the same time."""

    def __init__(self, workers: int) -> None:
        cores = sorted(os.sched_getaffinity(0))
        ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self.workers = workers
        self.barrier = ctx.Barrier(workers)
        self.procs, self.conns = [], []
        try:
            for i in range(workers):
                parent, child = ctx.Pipe()
                p = ctx.Process(target=_child, args=(child, cores[i % len(cores)],
                                                     self.barrier), daemon=True)
                p.start()
                self.procs.append(p)
                self.conns.append(parent)
        except BaseException:
            self.close()
            raise

    def run(self, text: str, packets: int) -> float:
        """Each process forwards ``packets``; the aggregate rate in Mpps (all packets over
        the slowest process's time)."""
        self.barrier.reset()
        for c in self.conns:
            c.send((text, packets))
        walls, errors = [], []
        for c in self.conns:
            if not c.poll(600):
                raise RuntimeError("a forwarding process did not answer in 10 minutes")
            status, value = c.recv()
            (walls if status == "ok" else errors).append(value)
        if errors:
            raise RuntimeError(errors[0])
        return self.workers * packets / max(walls) / 1e6

    def close(self) -> None:
        for c in self.conns:
            with contextlib.suppress(OSError, ValueError):
                c.send(None)
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        self.procs, self.conns = [], []
