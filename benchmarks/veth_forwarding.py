"""The paper's Table 1 / Fig. 6 on this machine: maximum loss-free forwarding rate between
veth links, Linux kernel vs routebricks (prints tables, asserts nothing).

Topology (network namespaces made by routebricks.netns.testbed, offloads off, removed on
exit, also on error or Ctrl-C)::

    sender s:eth0 ---- r:eth0 [router r] r:eth1 ---- d:eth0 receiver

The generator (routebricks.traffic Generator over a TxRing, pinned to the last core) sends
64-byte frames of 256 UDP flows from ``s``, each frame to its own destination drawn over the
2008 table's routed space (a route uniformly, then an address in it; 65,536 of them); the
sink (routebricks.traffic Sink) counts them on ``d``. Both run as long-lived agent processes
inside their namespaces (benchmarks/_veth_topology.py). The metric is the highest offered
rate whose loss is at most ``--tolerance`` (0.1 %), by binary search
(routebricks.traffic.lossfree).

Rows:
  * sender -> receiver: the generator straight into the sink on one veth pair: the ceiling
    of this machine's traffic tools (no router can be measured above it).
  * Linux kernel: the router namespace with addresses, ``ip_forward=1`` and static
    neighbours, with a small table (connected routes + default) and with the real 2008
    table (about 270K routes via the receiver, loaded over netlink in batches). Twice:
    as veth does it by default, where a transmit runs the peer's receive path inside the
    sender's system call, so the kernel forwards in softirq on the *sender's* core and the
    rate is that core's (generator + forwarding); and with receive packet steering (RPS) on
    the router's eth0 to core 0, so the kernel forwards on a core of its own, as behind a
    NIC interrupting core 0 -- the per-core figure routebricks is compared with.
  * routebricks minimal: ``FromDevice(eth0) -> EtherRewrite -> ToDevice(eth1)``.
  * routebricks IP routing: ``FromDevice -> Strip(14) -> CheckIPHeader ->
    DirectIPLookup(ROUTES file: every 2008 prefix + default, all to port 0) -> DecIPTTL ->
    EtherEncap -> ToDevice``,
  each with 1 and 2 workers (pinned by routebricks from core 0 on) over a grid of kp
  (packets per poll: 1, 32, 256) and kn (FromDevice METHOD V2: per-frame ring slots, NIC
  batching off; V3: blocks, on) -- see routebricks_configs(). Each runs as ``routebricks run
  CONFIG --netns NS --workers N --kp K -u SOCKET`` (the control socket also turns
  per-element profiling on); its counters, read over the control socket, tell where frames
  were lost. The kernel writes frames into FromDevice's ring on the sender's core (veth
  default, like a NIC writing into the ring); the router's cores run routebricks. Both
  configurations start with ``KernelFilter(drop dev eth0, drop dev eth1)`` (when nft is
  installed), as a Click user-level router does: without it the router namespace's own
  kernel also takes every frame and looks its destination up before dropping it -- work
  done on the sender's core, which lowers the rate the sender can offer.

Trials: the sink is started, the generator sends for ``--trial-seconds`` at the offered rate,
the sink keeps counting for ``--settle`` seconds more, and the router is let drain before the
next trial. Lost = offered - received, where offered includes frames the next hop's input
queue refused (ENOBUFS on the veth: its backlog was full) -- with RPS that is where the
kernel drops. A frame still queued after the settle time counts as lost, so a router whose
queues only grow cannot pass by holding the excess in its rings (a trial of T seconds can
still hide an overload of about settle/T). A search starts with one unpaced trial (the
generator as fast as it can): if nothing is lost there, the router kept up with the sender
and the row says ``>=`` (sender-limited). Shared, noisy machine: every failing rate is tried
up to ``--repeat`` times and passes if any attempt does (best of N), which forgives a trial
that another process's burst of work spoiled but cannot make a router pass whose queues
overflow at that rate.

    python benchmarks/veth_forwarding.py [--quick] [--trial-seconds S] [--repeat N] [-v]

Run as root (network namespaces); about 5-6 minutes (--quick: about 1.5). The generator
busy-waits between paced batches, so it keeps its core busy at any rate: with 2 workers on
2 cores, worker 1 shares the generator's core.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from routebricks.bench import topology as vt
from routebricks.bench.core import IPASN_NAME, data_file
from routebricks.bench.veth import Config, LossFree, Outcome, RouterProc, Settings, testbed
from routebricks.errors import RouteBricksError

FLOWS = 256
POOL_FRAMES = 65536  # distinct destinations per pass of the generator's schedule


def data_path() -> Path:
    path = data_file(IPASN_NAME)
    if path is None:
        raise SystemExit(f"{IPASN_NAME} not found (set ROUTEBRICKS_DATA to its directory)")
    return path


def routebricks_configs(quick: bool) -> list[Config]:
    """Per application: 1 worker with kp x kn = {1, 32} x {V2, V3} and kp=256 V3; 2 workers
    with kp=1 V2 (all batching off), kp=32 V3 and kp=256 V3. --quick: kp=1 V2 and kp=256 V3
    with 1 worker, kp=256 V3 with 2."""
    if quick:
        grids = {1: [(1, "V2"), (256, "V3")], 2: [(256, "V3")]}
    else:
        grids = {
            1: [(1, "V2"), (1, "V3"), (32, "V2"), (32, "V3"), (256, "V3")],
            2: [(1, "V2"), (32, "V3"), (256, "V3")],
        }
    out = []
    for kind in ("minimal", "iproute"):
        for w, grid in grids.items():
            for kp, m in grid:
                out.append(Config(kind, "270K" if kind == "iproute" else "-", w, kp, m))
    return out


def run(args: argparse.Namespace, results: list[Outcome]) -> None:
    from routebricks.lookup import load_ipasn

    t_start = time.monotonic()
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="veth-fwd-") as tmpdir:
        tmp = Path(tmpdir)
        settings = Settings(trial_seconds=args.trial_seconds, repeat=args.repeat,
                            settle=args.settle, tolerance=args.tolerance,
                            precision=args.precision, verbose=args.verbose)
        bench = LossFree(settings, tmp, log=lambda t: print(t, file=sys.stderr, flush=True))
        routes = load_ipasn(data_path(), nports=1)
        net, length = routes.net, routes.length
        bench.dst = vt.destinations(net, length, POOL_FRAMES)
        route_file = tmp / "routes.txt"
        vt.write_route_file(route_file, net, length)
        bench.log(
            f"{len(net):,} prefixes from {IPASN_NAME}; {POOL_FRAMES:,} destinations; "
            f"{FLOWS} flows; 64-byte frames; trials of {args.trial_seconds:g} s; best of "
            f"{args.repeat}; {len(cpus)} cores, load average "
            f"{os.getloadavg()[0]:.2f}"
        )

        def report(o: Outcome) -> None:
            results.append(o)
            c = o.config
            r = "none" if o.mpps is None else f"{'>=' if o.sender_limited else ''}{o.mpps:.3f}"
            bench.log(
                f"  {c.name} {c.table} {c.cores} {c.batching}: {r} Mpps; limit "
                f"{o.limit} [{o.trials} trials, {o.seconds:.0f} s]"
            )

        # 1. The ceiling: the generator straight into the sink.
        bench.log("sender -> receiver on one veth pair")
        with testbed(vt.pair_spec()) as tb, bench.agents(tb) as (gen, sink):
            report(bench.measure(Config("ceiling"), gen, sink, vt.RECEIVER_MAC))

        # 2. The Linux kernel between the same veth links: small table, then 270K routes.
        with testbed(vt.three_node_spec(kernel=True)) as tb:
            vt.kernel_router_setup(tb)
            with bench.agents(tb) as (gen, sink):
                for table in ("small", "270K"):
                    if table == "270K":
                        t = time.monotonic()
                        n = vt.install_kernel_routes(tb.ns("r"), net, length, vt.RECEIVER_IP)
                        bench.log(
                            f"Linux kernel: {n:,} routes installed in "
                            f"{time.monotonic() - t:.1f} s (main table: "
                            f"{vt.kernel_route_count(tb.ns('r')):,} prefixes)"
                        )
                    for rps in (False, True):
                        if rps and not vt.set_rps(tb.ns("r"), "eth0", {cpus[0]}):
                            bench.log("  (RPS not available here: row skipped)")
                            continue
                        bench.log(
                            f"Linux kernel, {table} table, {'RPS -> core 0' if rps else 'no RPS'}"
                        )
                        report(bench.measure(Config("kernel", table, rps=rps), gen, sink,
                                             vt.ROUTER_MAC0))
                        if rps:
                            vt.set_rps(tb.ns("r"), "eth0", set())

        # 3. routebricks.
        with (
            testbed(vt.three_node_spec(kernel=False)) as tb,
            bench.agents(tb) as (gen, sink),
        ):
            for i, cfg in enumerate(routebricks_configs(args.quick)):
                bench.log(
                    f"{cfg.name}, {cfg.workers} worker(s), {cfg.batching} (METHOD {cfg.method})"
                )
                text = vt.click_config(cfg.kind, cfg.method, route_file,
                                       kernel_filter=shutil.which("nft") is not None)
                router = None
                try:
                    router = RouterProc(tb.ns("r"), text, cfg.workers, cfg.kp, tmp, f"rb{i}")
                    o = bench.measure(cfg, gen, sink, vt.ROUTER_MAC0, router)
                    o.profile = router.profile()
                    report(o)
                except (RuntimeError, OSError, RouteBricksError) as e:
                    # A router that failed is a row of the table, not the end of the run.
                    bench.log(f"  failed: {e}")
                    report(Outcome(cfg, limit=f"error: {str(e).splitlines()[0][:60]}"))
                finally:
                    if router is not None:
                        router.stop()
    bench.log(f"total {time.monotonic() - t_start:.0f} s")


# --------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------
def render(results: list[Outcome], args: argparse.Namespace) -> str:
    def find(**kw: Any) -> Outcome | None:
        for o in results:
            if all(getattr(o.config, k) == v for k, v in kw.items()):
                return o
        return None

    def ratio(a: Outcome | None, b: Outcome | None) -> str:
        if a is None or b is None or not a.mpps or not b.mpps:
            return "-"
        mark = "~" if (a.sender_limited or b.sender_limited) else ""
        return f"{mark}{a.mpps / b.mpps:.2f}"

    def fmt(o: Outcome) -> str:
        return "none" if o.mpps is None else f"{'>=' if o.sender_limited else ''}{o.mpps:.3f}"

    hdr = (
        f"{'configuration':<30} {'table':>5} {'cores':>5} {'batching':<13} {'Mpps':>8} "
        f"{'/k-rps':>6} {'/k-snd':>6} {'2w/1w':>6} {'on/off':>6} {'Mpps/core':>9}  "
        "limit: first loss"
    )
    rule = "-" * (len(hdr) + 20)
    lines = [
        f"Maximum loss-free forwarding rate (loss <= {args.tolerance:.1%}), 64-byte frames, "
        f"{FLOWS} flows, veth links, {len(os.sched_getaffinity(0))} shared cores",
        f"best of {args.repeat} per offered rate; trials {args.trial_seconds:g} s + "
        f"{args.settle * 1e3:.0f} ms settle; search precision {args.precision:.0%}",
        hdr,
        rule,
    ]
    for o in results:
        c = o.config
        vs_rps = vs_snd = on_off = two_one = per_core = "-"
        if c.kind == "kernel" and c.rps and o.mpps:
            per_core = f"{o.mpps:.3f}"
        elif c.routebricks:
            table = "270K" if c.kind == "iproute" else "small"
            vs_rps = ratio(o, find(kind="kernel", table=table, rps=True))
            vs_snd = ratio(o, find(kind="kernel", table=table, rps=False))
            if c.workers == 2:
                two_one = ratio(o, find(kind=c.kind, workers=1, kp=c.kp, method=c.method))
            off = find(kind=c.kind, workers=c.workers, kp=1, method="V2")
            on_off = "1" if off is o else ratio(o, off)
            per_core = "-" if o.mpps is None else f"{o.mpps / c.workers:.3f}"
        lines.append(
            f"{c.name:<30} {c.table:>5} {c.cores:>5} {c.batching:<13} {fmt(o):>8} "
            f"{vs_rps:>6} {vs_snd:>6} {two_one:>6} {on_off:>6} {per_core:>9}  {o.limit}"
        )
    lines += [
        rule,
        ">= : no loss at the sender's own maximum (or within 10 % of it): the sender is the "
        "limit, the router may do more; ~ : a ratio involving such a figure.",
        "cores: router cores (s = in softirq on the sender's core; RPS rows on core 0, "
        "routebricks worker i pinned to core i, the generator pinned to the last core).",
        "/k-rps, /k-snd: vs the kernel with the same table (minimal vs small, IP routing vs "
        "270K) on its own core (RPS) / in the sender's softirq;",
        "2w/1w: vs 1 worker, same batching; on/off: vs kp=1 kn=off (V2), same workers; "
        "Mpps/core: Mpps / router cores.",
    ]
    ceiling = find(kind="ceiling")
    if ceiling is not None and ceiling.mpps:
        lines.append(
            f"ceiling: the generator reaches {ceiling.gen_max_mpps:.3f} Mpps unpaced into a plain "
            f"receiver ({fmt(ceiling)} Mpps loss-free)."
        )
    for table in ("small", "270K"):
        k, c = find(kind="kernel", table=table, rps=False), ceiling
        if k and c and k.mpps and c.mpps and k.mpps < c.mpps:
            ns = 1e3 / k.mpps - 1e3 / c.mpps
            lines.append(
                f"kernel, {table} table, in the sender's softirq: {1e3 / k.mpps:.0f} ns of "
                f"sender core per frame vs {1e3 / c.mpps:.0f} ns without a router: forwarding "
                f"costs ~{ns:.0f} ns/frame (~{1e3 / ns:.2f} Mpps per core; a difference of two "
                "noisy figures)."
            )
        elif k and c and k.mpps and c.mpps:
            lines.append(
                f"kernel, {table} table, in the sender's softirq: as fast as the sender alone "
                "(noise): its forwarding cost is below what this run can resolve."
            )
    lines += [
        "",
        "CPU in use at the reported rate (cores busy during the trial's sending "
        "time; softirq: machine-wide; others: the rest of the machine's busy time)",
    ]
    chdr = (
        f"{'configuration':<30} {'table':>5} {'cores':>5} {'batching':<13} {'Mpps':>8} "
        f"{'sender':>6} {'router':>6} {'sink':>6} {'softirq':>7} {'others':>6}"
    )
    lines += [chdr, "-" * len(chdr)]
    for o in results:
        c, u = o.config, o.cpu
        if not u:
            continue
        ours = u.get("sender", 0) + u.get("router", 0) + u.get("sink", 0) + u.get("softirq", 0)
        others = max(u.get("machine", 0) - ours, 0.0)
        router = f"{u['router']:.2f}" if c.routebricks else "-"
        lines.append(
            f"{c.name:<30} {c.table:>5} {c.cores:>5} {c.batching:<13} {fmt(o):>8} "
            f"{u.get('sender', 0):>6.2f} {router:>6} {u.get('sink', 0):>6.2f} "
            f"{u.get('softirq', 0):>7.2f} {others:>6.2f}"
        )
    prof = [o for o in results if o.profile]
    if prof:
        lines += [
            "",
            "routebricks' own profile (-u turns it on): each element's time per packet "
            "in ns, averaged over the run (batches are smaller at low rates);",
            "sum: all elements; FromDevice's ring reads are not profiled; ToDevice includes "
            "the veth transmit, i.e. the delivery into the sink's ring",
        ]
        for o in prof:
            c = o.config
            total = sum(o.profile.values())
            elems = ", ".join(f"{k} {v:.0f}" for k, v in o.profile.items())
            lines.append(f"{c.name:<23} {c.cores}w {c.batching:<13} sum {total:6.0f}: {elems}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="fewer routebricks configurations (kp=1 V2, kp=256 V3) and shorter trials",
    )
    ap.add_argument(
        "--trial-seconds",
        type=float,
        default=None,
        help="seconds per trial [default 0.8, --quick 0.5]",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="attempts per failing offered rate (best of N) [default 2]",
    )
    ap.add_argument(
        "--settle",
        type=float,
        default=0.03,
        help="seconds the sink keeps counting after the generator stops [default 0.03]",
    )
    ap.add_argument(
        "--tolerance", type=float, default=0.001, help="loss fraction allowed [default 0.001]"
    )
    ap.add_argument(
        "--precision",
        type=float,
        default=None,
        help="relative precision of the search [default 0.05, --quick 0.1]",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="print every trial")
    args = ap.parse_args()
    if args.trial_seconds is None:
        args.trial_seconds = 0.5 if args.quick else 0.8
    if args.precision is None:
        args.precision = 0.1 if args.quick else 0.05
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    main_pid = os.getpid()

    def on_term(signum: int, _frame: object) -> None:
        if os.getpid() != main_pid:
            # A child forked by a library (pyroute2 creates namespaces in one) inherits this
            # handler: it must die as by default, not unwind our code and tear down.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    results: list[Outcome] = []
    try:
        run(args, results)
    except KeyboardInterrupt:
        print("interrupted: namespaces removed; partial results:", file=sys.stderr)
        print(render(results, args))
        sys.exit(130)
    print(render(results, args))


if __name__ == "__main__":
    main()
