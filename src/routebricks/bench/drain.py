"""The router's own forwarding rate on veth: it drains a backlog its receive rings hold.

On a 2-core machine a live generator shares a core with the router, so the loss-free rate
measures the sender as much as the router. Here the sender goes first: with FromDevice
paused (``ACTIVE false``) its receive rings (one per worker, a PACKET_FANOUT hash group)
fill with the frames; then FromDevice is switched on through the control socket and the
workers forward the backlog to the receiver while nothing else runs. Each worker's Counter
(just before ToDevice) times its own first and last batch, so the rate is measured inside
the router: all frames forwarded / the longest worker's busy time.

This is the real-I/O half of Table 1 (kp, and kn as TPACKET_V3 blocks vs V2 slots) and the
steps of Fig. 7 (one worker vs several: one receive queue per core). ``benchmarks/
veth_workers.py`` runs it from the command line.

    sender s:eth0 ---- r:eth0 [routebricks] r:eth1 ---- d:eth0 receiver
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from routebricks.bench import topology as topo
from routebricks.bench.core import Skip, need_root, need_tool

__all__ = ["DrainBed", "DrainResult", "Drained", "drain_backlog", "drain_bed", "per_worker",
           "routebricks_argv", "stop_router", "wait_started"]

FLOWS = 4096  # the fanout hash spreads flows, not packets: 4096 split ~51/49

MINIMAL = f"""
KernelFilter(drop dev eth0, drop dev eth1);
fd :: FromDevice(eth0, ACTIVE false, TIMEOUT 4, BLOCKS 512, METHOD {{method}})
    -> EtherRewrite(SRC {topo.ROUTER_MAC1}, DST {topo.RECEIVER_MAC})
    -> c :: Counter -> td :: ToDevice(eth1);
"""

ROUTING = f"""
KernelFilter(drop dev eth0, drop dev eth1);
fd :: FromDevice(eth0, ACTIVE false, TIMEOUT 4, BLOCKS 512, METHOD {{method}})
    -> Strip(14) -> CheckIPHeader -> rt :: DirectIPLookup(ROUTES {{routes}}, 0.0.0.0/0 0)
    -> DecIPTTL -> EtherEncap(0x0800, {topo.ROUTER_MAC1}, {topo.RECEIVER_MAC})
    -> c :: Counter -> td :: ToDevice(eth1);
"""


def routebricks_argv() -> list[str]:
    """How to start ``routebricks``: as the user would (the installed command), else
    through this interpreter."""
    exe = shutil.which("routebricks")
    return [exe] if exe else [sys.executable, "-m", "routebricks.cli"]


@dataclass
class DrainResult:
    mpps: float
    forwarded: int
    offered: int
    ring_drops: int
    per_worker: list[int] = field(default_factory=list)

    @property
    def split(self) -> str:
        total = max(sum(self.per_worker), 1)
        return "/".join(f"{100 * x / total:.0f}" for x in self.per_worker)


class DrainBed:
    """The three-node testbed with a generator agent on the sender, for drain runs."""

    def __init__(self, tb: object, gen: object, tmp: Path, routes: Path | None) -> None:
        self.tb, self.gen, self.tmp, self.routes = tb, gen, tmp, routes
        self.runs = 0

    def run(self, *, workers: int, kp: int, method: str = "V3", packets: int = 50_000,
            app: str = "minimal") -> DrainResult:
        """One drain: start the router (paused), fill its rings with ``packets`` 64-byte
        frames, switch it on, time it; the router is stopped before this returns."""
        from routebricks.runtime.control import ControlClient, wait_for_socket

        self.runs += 1
        tag = f"d{self.runs}"
        conf = self.tmp / f"{tag}.click"
        if app == "minimal":
            conf.write_text(MINIMAL.format(method=method))
        else:
            conf.write_text(ROUTING.format(method=method, routes=self.routes))
        sock = self.tmp / f"{tag}.sock"
        log = open(self.tmp / f"{tag}.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [*routebricks_argv(), "run", str(conf), "--netns", self.tb.ns("r"),  # type: ignore[attr-defined]
             "--workers", str(workers), "--kp", str(kp), "-u", str(sock), "--no-profile"],
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        try:
            wait_started(proc, sock, self.tmp / f"{tag}.log", wait_for_socket)
            with ControlClient(str(sock), timeout=30) as c:
                # Paced so the rings take it all (V2: 65,536 slots per worker).
                d = drain_backlog(c, lambda: int(self.gen.send(  # type: ignore[attr-defined]
                    rate=400_000, duration=packets / 400_000, kp=64)["attempted"]),
                    ("fd",), ("c",))
            counts, dropped = d.counts["c"], d.ring_drops
            busy = d.busy()
            mpps = sum(counts) / busy / 1e6 if busy > 0 else 0.0
            done, offered = d.done, d.offered
            return DrainResult(mpps, done, offered, dropped, [int(x) for x in counts])
        finally:
            stop_router(proc)
            log.close()


@dataclass
class Drained:
    """What :func:`drain_backlog` saw: frames offered, lost at the rings, forwarded, and
    each counter's per-worker counts and rates."""

    offered: int
    ring_drops: int
    done: int
    counts: dict[str, list[float]]
    rates: dict[str, list[float]]

    def busy(self) -> float:
        """The longest time any counter in any worker spent (first to last batch)."""
        return max((n / r for k in self.counts
                    for n, r in zip(self.counts[k], self.rates[k], strict=True) if r > 0),
                   default=0.0)


def drain_backlog(c: object, fill: Callable[[], int], inputs: tuple[str, ...],
                  counters: tuple[str, ...]) -> Drained:
    """With the FromDevice ``inputs`` paused: ``fill()`` the rings (it returns the frames
    offered), switch the inputs on, wait until the ``counters`` have them all (or stop
    moving for a second), and read the counters per worker."""
    c.read(f"{counters[0]}.count")  # type: ignore[attr-defined]  # every worker runs its loop
    offered = fill()
    time.sleep(0.3)  # let the kernel finish queueing into the rings
    ring_drops = sum(int(c.read(f"{fd}.kernel_drops")) for fd in inputs)  # type: ignore[attr-defined]
    want = offered - ring_drops
    for name in counters:
        c.write(f"{name}.reset", "")  # type: ignore[attr-defined]
    for fd in inputs:
        c.write(f"{fd}.active", "true")  # type: ignore[attr-defined]
    done, last, t_last = 0, -1, time.perf_counter()
    while done < want and time.perf_counter() - t_last < 1.0:
        time.sleep(0.05)  # light polling: the benchmark shares the cores
        done = sum(int(c.read(f"{n}.count")) for n in counters)  # type: ignore[attr-defined]
        if done != last:
            last, t_last = done, time.perf_counter()
    return Drained(offered, ring_drops, done,
                   {n: per_worker(c, f"{n}.count") for n in counters},
                   {n: per_worker(c, f"{n}.rate") for n in counters})


def per_worker(c: object, spec: str) -> list[float]:
    """One value per worker (READEACH: ``worker N: value`` lines)."""
    text = c.read(spec, each=True)  # type: ignore[attr-defined]
    return [float(line.split(":", 1)[1]) for line in text.splitlines()]


def wait_started(proc: subprocess.Popen[bytes], sock: Path, log: Path, wait: object) -> None:
    deadline = time.monotonic() + 120
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("routebricks run did not start: "
                               + log.read_text(errors="replace")[-1500:])
        time.sleep(0.05)
    wait(str(sock), timeout=60)  # type: ignore[operator]


def stop_router(proc: subprocess.Popen[bytes]) -> None:
    import signal

    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextlib.contextmanager
def drain_bed(tmp: Path, routes: Path | None = None,
              receiver_drops: bool = False) -> Iterator[DrainBed]:
    """The testbed, up for the block and removed after it (also on error or Ctrl-C)."""
    from routebricks.netns.testbed import Testbed

    need_root("the veth testbed")
    need_tool("nft", "nftables")  # KernelFilter
    tb = Testbed(topo.three_node_spec(kernel=False))
    gen = None
    try:
        tb.up()
        if receiver_drops and not topo.drop_at_ingress(tb.ns("d"), "eth0"):
            raise Skip("dropping at the receiver's ingress needs nft")
        cpus = sorted(os.sched_getaffinity(0))
        gen = topo.Agent(tb, "s", "gen", "eth0", cpu=cpus[-1], log=tmp / "drain-gen.log")
        gen.configure(dst=topo.RECEIVER_IP, dst_mac=topo.ROUTER_MAC0, flows=FLOWS, size=64)
        bed = DrainBed(tb, gen, tmp, routes)
        bed.run(workers=1, kp=256, packets=5000)  # warm up (page faults, ARP, caches)
        yield bed
    finally:
        if gen is not None:
            gen.close()
        tb.down()
