"""The data plane never waits on the control plane: loss at a steady rate while a
million-route table is read, and while 50,000 routes are set, through the control socket
(prints a table; asserts nothing).

Topology (network namespaces, removed on exit)::

    sender s:eth0 ---- r:eth0 [routebricks, IP routing] r:eth1 ---- d:eth0 sink

The router runs ``FromDevice -> Strip -> CheckIPHeader -> DirectIPLookup(1M routes) ->
DecIPTTL -> EtherEncap -> ToDevice`` under ``routebricks run -u`` (one worker, pinned to the
first core; the supervisor is the control plane). The generator (pinned to the last core)
sends 64-byte frames of 256 flows to destinations drawn over the table at ``--rate`` for
``--seconds``; the sink counts them. Three trials, each with a fresh sink:

* quiet: no handler traffic;
* read: ``handler read rt.table`` (1M lines) starts one second into the trial;
* write: ``handler write rt.ctrl`` with 50,000 ``set`` lines starts one second in.

For each: frames offered, received, lost, the loss fraction, and how long the handler call
took. The whole command is timed too: how long ``routebricks run`` took from start to
answering on its socket (parsing, loading the 1M-route file, building DIR-24-8, forking).

    python benchmarks/control_plane.py [--routes 1000000] [--rate 300000] [--seconds 6]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _veth_topology as vt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from routebricks.lookup import synthetic_table  # noqa: E402
from routebricks.netns.testbed import Testbed  # noqa: E402
from routebricks.runtime.process import RouterProcess  # noqa: E402

FLOWS = 256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routes", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=300_000, help="offered packets/s")
    ap.add_argument("--seconds", type=float, default=6.0, help="per trial")
    ap.add_argument("--adds", type=int, default=50_000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces)")
    console = Console(stderr=True)
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="rbcp-") as tmp_s:
        tmp = Path(tmp_s)
        table = synthetic_table(args.routes, seed=3)
        routes = tmp / "routes.txt"
        vt.write_route_file(routes, table.net, table.length)
        dst = vt.destinations(table.net, table.length, 65536)
        config = tmp / "router.click"
        config.write_text(vt.click_config("iproute", "V3", routes))
        adds = "".join(f"set 223.{i >> 8 & 255}.{i & 255}.0/24 0\n" for i in range(args.adds))
        rows: list[tuple[str, dict[str, Any]]] = []
        with Testbed(vt.three_node_spec(kernel=False)) as tb:
            t0 = time.monotonic()
            with RouterProcess(config, netns=tb.ns("r"), workers=1,
                               args=["--kp", "256"]).start(timeout=300) as router:
                startup = time.monotonic() - t0
                console.print(f"router ready in {startup:.1f} s ({args.routes:,} routes)")
                with vt.Agent(tb, "s", "gen", "eth0", cpu=cpus[-1], log=tmp / "gen.log") as gen, \
                        vt.Agent(tb, "d", "sink", "eth0", cpu=None, log=tmp / "sink.log") as sink:
                    gen.configure(dst=dst, dst_mac=vt.ROUTER_MAC0, flows=FLOWS,
                                  dst_per_packet=True, pool_frames=1 << 16)
                    gen.send(rate=args.rate, duration=1.0)  # warm the path (ARP-free: static)
                    for name, work in (
                        ("quiet", None),
                        ("read rt.table", lambda: router.read("rt.table")),
                        (f"write rt.ctrl ({args.adds:,} sets)",
                         lambda: router.write("rt.ctrl", adds)),
                    ):
                        rows.append((name, trial(gen, sink, args, work)))
                        console.print(f"{name}: {rows[-1][1]}")
        show(rows, startup, args)


def trial(gen: Any, sink: Any, args: argparse.Namespace, work: Any) -> dict[str, Any]:
    box: dict[str, Any] = {}

    def control() -> None:
        time.sleep(1.0)
        t = time.monotonic()
        out = work()
        box["call_s"] = time.monotonic() - t
        box["size"] = len(out) if isinstance(out, str) else 0

    sink.start()
    th = threading.Thread(target=control) if work else None
    if th:
        th.start()
    g = gen.send(rate=args.rate, duration=args.seconds)
    if th:
        th.join()
    time.sleep(0.5)
    s = sink.stop()
    offered = int(g["attempted"])
    got = int(s["received"])
    return {"offered": offered, "received": got, "lost": max(0, offered - got),
            "loss": max(0, offered - got) / max(offered, 1),
            "call_s": box.get("call_s"), "bytes": box.get("size", 0)}


def show(rows: list[tuple[str, dict[str, Any]]], startup: float,
         args: argparse.Namespace) -> None:
    t = Table(title=f"IP routing, {args.routes:,} routes, {args.rate / 1e3:.0f} kpps offered "
                    f"for {args.seconds:g} s per trial; router start-up {startup:.1f} s")
    for col in ("handler traffic", "offered", "received", "lost", "loss", "handler call"):
        t.add_column(col, justify="left" if col == "handler traffic" else "right")
    for name, r in rows:
        call = f"{r['call_s']:.2f} s" if r["call_s"] is not None else "-"
        t.add_row(name, f"{r['offered']:,}", f"{r['received']:,}", f"{r['lost']:,}",
                  f"{r['loss']:.3%}", call)
    Console().print(t)


if __name__ == "__main__":
    main()
