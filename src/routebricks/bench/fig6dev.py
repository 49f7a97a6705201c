"""Fig. 6 on devices: the paper's toy forwarding paths (FPs) on veth, scenarios (a)-(f),
with and without multiple queues.

Two workers (the paper's cores; each pinned to a CPU of its own) and four router ports::

    s:eth0 ---- r:eth0  [routebricks]  r:eth1 ---- d:eth0
    s:eth1 ---- r:eth2                 r:eth3 ---- d:eth1

Path A runs r:eth0 -> r:eth1; path B r:eth2 -> r:eth3, or r:eth2 -> r:eth1 where the paths
overlap (share an output port). Each path rewrites the Ethernet header and counts (the
paper's minimal forwarding). Which core touches a packet is set by StaticThreadSched (a
FromDevice placed on one worker is a port with one queue; unplaced, every worker has its
own queue through PACKET_FANOUT, the multi-queue NIC) and by ToShmQueue/FromShmQueue (a
hand-over between cores):

* (a) pipeline: worker 0 reads eth0 and hands every packet to worker 1, which forwards it;
* (b) parallel: path A on worker 0, path B on worker 1, each packet on one core;
* (c) one port, one queue, split over two cores: worker 0 reads eth0 and forwards half the
  flows itself, handing the other half to worker 1;
* (d) one port, two queues: both workers read eth0 (one queue each) and forward;
* (e) overlapping paths, a port tied to one core: worker 0 owns eth0 and eth1; worker 1
  reads eth2 and hands its packets to worker 0, which sends them on eth1;
* (f) overlapping paths with multiple queues: each worker reads its input and sends on
  eth1 through a transmit queue (socket) of its own.

Rates are measured as in :mod:`routebricks.bench.drain`: with FromDevice paused the
generators fill the router's receive rings (``packets`` frames of 64 bytes, 4096 flows,
per input), FromDevice is switched on, and each Counter times its own first and last batch
in every worker; a scenario's rate is all frames forwarded / the longest of those times,
per path that divided by its paths. Nothing here is asserted.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routebricks.bench import topology as topo
from routebricks.bench.core import Skip, need_root, need_tool
from routebricks.bench.drain import (
    drain_backlog,
    per_worker,
    routebricks_argv,
    stop_router,
    wait_started,
)

__all__ = ["SCENARIOS", "Fig6Bed", "Scenario", "ScenarioResult", "fig6_bed", "run_devices"]

# Addresses of the second input and output (the first are the three-node bed's).
SENDER_MAC1, ROUTER_MAC2 = "02:00:00:00:03:02", "02:00:00:00:03:01"
ROUTER_MAC3, RECEIVER_MAC1 = "02:00:00:00:04:01", "02:00:00:00:04:02"
SENDER_IP1, RECEIVER_IP1 = "10.0.3.2", "10.0.4.2"
FLOWS = 4096
#: Queue between the cores: room for a whole backlog, so that a slower second stage shows
#: as a lower rate, not as drops (any drop is counted and reported).
QUEUE = 262_144
KP = 256

_FD = "FromDevice({dev}, ACTIVE false, TIMEOUT 4, BLOCKS 512)"
_HEAD = "KernelFilter(drop dev eth0, drop dev eth1, drop dev eth2, drop dev eth3);\n"
_OUT_A = (f"outa :: EtherRewrite(SRC {topo.ROUTER_MAC1}, DST {topo.RECEIVER_MAC}) "
          "-> ca :: Counter -> ToDevice(eth1);\n")
_OUT_B = (f"outb :: EtherRewrite(SRC {ROUTER_MAC3}, DST {RECEIVER_MAC1}) "
          "-> cb :: Counter -> ToDevice(eth3);\n")
_FA = "fa :: " + _FD.format(dev="eth0")
_FB = "fb :: " + _FD.format(dev="eth2")
_TO_Q = f"tq :: ToShmQueue(hand, {QUEUE}, SLOT 256)"
_FROM_Q = "fsq :: FromShmQueue(hand)"


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    config: str
    inputs: tuple[str, ...]  # the FromDevice elements filled and switched on
    counters: tuple[str, ...]
    paths: int
    handover: bool = False  # has the shared-memory queue ``tq``
    short: str = ""  # the plot's label


SCENARIOS: dict[str, Scenario] = {s.key: s for s in (
    Scenario("a", "pipeline: one path, read on core 0, forwarded on core 1",
             _HEAD + _OUT_A + f"{_FA} -> {_TO_Q};\n{_FROM_Q} -> outa;\n"
             "StaticThreadSched(fa 0, fsq 1);\n", ("fa",), ("ca",), 1, handover=True,
             short="pipeline"),
    Scenario("b", "parallel: two paths, one core each",
             _HEAD + _OUT_A + _OUT_B + f"{_FA} -> outa;\n{_FB} -> outb;\n"
             "StaticThreadSched(fa 0, fb 1);\n", ("fa", "fb"), ("ca", "cb"), 2, short="parallel"),
    Scenario("c", "one port, one queue: core 0 reads it and hands half the flows to core 1",
             _HEAD + _OUT_A + f"{_FA} -> hs :: HashSwitch(26, 12);\nhs[0] -> outa;\n"
             f"hs[1] -> {_TO_Q};\n{_FROM_Q} -> outa;\n"
             "StaticThreadSched(fa 0, fsq 1);\n", ("fa",), ("ca",), 1, handover=True,
             short="one port,\none queue"),
    Scenario("d", "one port, two queues: each core reads and forwards its own",
             _HEAD + _OUT_A + f"{_FA} -> outa;\n", ("fa",), ("ca",), 1,
             short="one port,\ntwo queues"),
    Scenario("e", "overlapping paths, one queue per port: core 1 hands its path to core 0",
             _HEAD + _OUT_A + f"{_FA} -> outa;\n{_FB} -> {_TO_Q};\n"
             f"{_FROM_Q} -> outa;\nStaticThreadSched(fa 0, fb 1, fsq 0);\n",
             ("fa", "fb"), ("ca",), 2, handover=True, short="overlapping,\none queue per port"),
    Scenario("f", "overlapping paths, a transmit queue per core",
             _HEAD + _OUT_A + f"{_FA} -> outa;\n{_FB} -> outa;\n"
             "StaticThreadSched(fa 0, fb 1);\n", ("fa", "fb"), ("ca",), 2,
             short="overlapping,\nqueues per core"),
)}


@dataclass
class ScenarioResult:
    key: str
    mpps: float  # all paths
    forwarded: int
    offered: int
    ring_drops: int
    queue_drops: int
    paths: int
    #: Packets each worker forwarded, and each worker read from the devices.
    forwarded_by_worker: list[int] = field(default_factory=list)
    read_by_worker: list[int] = field(default_factory=list)

    @property
    def per_path(self) -> float:
        return self.mpps / self.paths

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.key, "mpps": self.mpps, "mpps_per_path": self.per_path,
                "forwarded": self.forwarded, "offered": self.offered,
                "ring_drops": self.ring_drops, "queue_drops": self.queue_drops,
                "paths": self.paths, "forwarded_by_worker": self.forwarded_by_worker,
                "read_by_worker": self.read_by_worker}


def _spec() -> Any:
    from routebricks.netns.testbed import TestbedSpec

    def iface(name: str, mac: str, addr: str | None = None) -> dict[str, Any]:
        return {"name": name, "mac": mac, "addresses": [f"{addr}/24"] if addr else []}

    return TestbedSpec.from_dict({
        "router": {"name": "r", "interfaces": [
            iface("eth0", topo.ROUTER_MAC0), iface("eth1", topo.ROUTER_MAC1),
            iface("eth2", ROUTER_MAC2), iface("eth3", ROUTER_MAC3)]},
        "hosts": [
            {"name": "s", "interfaces": [iface("eth0", topo.SENDER_MAC, topo.SENDER_IP),
                                         iface("eth1", SENDER_MAC1, SENDER_IP1)]},
            {"name": "d", "interfaces": [iface("eth0", topo.RECEIVER_MAC, topo.RECEIVER_IP),
                                         iface("eth1", RECEIVER_MAC1, RECEIVER_IP1)]},
        ],
        "links": [["s:eth0", "r:eth0"], ["r:eth1", "d:eth0"],
                  ["s:eth1", "r:eth2"], ["r:eth3", "d:eth1"]],
    })


class Fig6Bed:
    """The four-port testbed with a generator agent on each sender interface."""

    def __init__(self, tb: Any, gens: dict[str, Any], tmp: Path) -> None:
        self.tb, self.gens, self.tmp = tb, gens, tmp
        self.runs = 0

    def run(self, scenario: Scenario, packets: int) -> ScenarioResult:
        """One drain of ``scenario`` with ``packets`` frames per input; the router is
        stopped before this returns."""
        from routebricks.runtime.control import ControlClient, wait_for_socket

        self.runs += 1
        tag = f"f6-{scenario.key}{self.runs}"
        conf = self.tmp / f"{tag}.click"
        conf.write_text(scenario.config)
        sock = self.tmp / f"{tag}.sock"
        log = open(self.tmp / f"{tag}.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [*routebricks_argv(), "run", str(conf), "--netns", self.tb.ns("r"),
             "--workers", "2", "--kp", str(KP), "-u", str(sock), "--no-profile"],
            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        try:
            wait_started(proc, sock, self.tmp / f"{tag}.log", wait_for_socket)
            with ControlClient(str(sock), timeout=30) as c:
                gens = [self.gens[fd] for fd in scenario.inputs]
                d = drain_backlog(c, lambda: sum(  # paced so that the rings take it all
                    int(g.send(rate=200_000, duration=4 * packets / 200_000, kp=64,
                               count=packets)["attempted"]) for g in gens),
                    scenario.inputs, scenario.counters)
                read = [0, 0]
                for fd in scenario.inputs:
                    for w, n in enumerate(per_worker(c, f"{fd}.count")):
                        read[w] += int(n)
                queue_drops = _dropped(c.read("tq.drops")) if scenario.handover else 0
            by_worker = [sum(int(d.counts[k][w]) for k in scenario.counters) for w in range(2)]
            offered, ring_drops, busy = d.offered, d.ring_drops, d.busy()
            forwarded = sum(by_worker)
            mpps = forwarded / busy / 1e6 if busy > 0 else 0.0
            return ScenarioResult(scenario.key, mpps, forwarded, offered, ring_drops,
                                  queue_drops, scenario.paths, by_worker, read)
        finally:
            stop_router(proc)
            log.close()


def _dropped(table: str) -> int:
    return sum(int(line.split("\t")[0]) for line in table.splitlines() if line.strip())


@contextlib.contextmanager
def fig6_bed(tmp: Path) -> Iterator[Fig6Bed]:
    """The testbed, up for the block and removed after it (also on error or Ctrl-C)."""
    from routebricks.netns.testbed import Testbed

    need_root("the veth testbed")
    need_tool("nft", "nftables")  # KernelFilter, and the receivers' ingress drop
    if len(os.sched_getaffinity(0)) < 2:
        raise Skip("the scenarios need two cores")
    tb = Testbed(_spec())
    gens: dict[str, Any] = {}
    try:
        tb.up()
        for ifname in ("eth0", "eth1"):
            if not topo.drop_at_ingress(tb.ns("d"), ifname):
                raise Skip("dropping at the receiver's ingress needs nft")
        cpus = sorted(os.sched_getaffinity(0))
        for fd, ifname, dst, mac in (("fa", "eth0", topo.RECEIVER_IP, topo.ROUTER_MAC0),
                                     ("fb", "eth1", RECEIVER_IP1, ROUTER_MAC2)):
            gens[fd] = topo.Agent(tb, "s", "gen", ifname, cpu=cpus[-1],
                                  log=tmp / f"fig6-gen-{ifname}.log")
            gens[fd].configure(dst=dst, dst_mac=mac, flows=FLOWS, size=64)
        bed = Fig6Bed(tb, gens, tmp)
        bed.run(SCENARIOS["f"], 5000)  # warm up (page faults, caches, numba's disk cache)
        yield bed
    finally:
        for g in gens.values():
            g.close()
        tb.down()


def run_devices(bed: Fig6Bed, packets: int, repeat: int,
                step: Any = None) -> dict[str, ScenarioResult]:
    """Each scenario ``repeat`` times, in rounds (a shared machine only ever makes a run
    slower: the best of each is kept); ``step(label)`` is called before each run."""
    best: dict[str, ScenarioResult] = {}
    for r in range(repeat):
        for s in SCENARIOS.values():
            if step is not None:
                step(f"round {r + 1}: ({s.key}) {s.label}")
            res = bed.run(s, packets)
            if s.key not in best or res.mpps > best[s.key].mpps:
                best[s.key] = res
    return best
