"""One worker vs two, where the sender is not the limit: the router drains a backlog.

On a 2-core machine a live generator always shares a core with one of two workers, so
``veth_forwarding.py`` cannot show how routebricks scales from 1 to 2 workers. Here the
sender runs first: with the router's FromDevice paused (``ACTIVE false``) its receive rings
(one per worker, a PACKET_FANOUT hash group; 256 blocks of 256 KB each) fill with N frames
of 4096 flows; then the benchmark switches FromDevice on through the control socket and the
workers forward the backlog to the receiver. Each worker's Counter (just before ToDevice)
times its own first and last batch, so the rate is measured inside the router, not by
polling it: all frames forwarded / the longest worker's busy time (a worker that got more
of the flows than the other makes the pair slower, as it would under live traffic).
Nothing else runs meanwhile, so each worker has a core. The router starts with
KernelFilter (so needs nft, Debian's nftables), as a Click user-level router does. Prints,
asserts nothing.

    python benchmarks/veth_workers.py [--packets 100000] [--repeat 3] [--kp 256] [--routes]
        [--flows 4096]

``--routes`` runs the IP-routing path with the real 2008 table instead of minimal forwarding.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _veth_topology as topo

from routebricks.netns.testbed import Testbed
from routebricks.runtime.control import ControlClient, wait_for_socket

MINIMAL = f"""
KernelFilter(drop dev eth0, drop dev eth1);
fd :: FromDevice(eth0, ACTIVE false, TIMEOUT 4, BLOCKS 512)
    -> EtherRewrite(SRC {topo.ROUTER_MAC1}, DST {topo.RECEIVER_MAC})
    -> c :: Counter -> td :: ToDevice(eth1);
"""

ROUTING = f"""
KernelFilter(drop dev eth0, drop dev eth1);
fd :: FromDevice(eth0, ACTIVE false, TIMEOUT 4, BLOCKS 512)
    -> Strip(14) -> CheckIPHeader -> rt :: DirectIPLookup(ROUTES {{routes}}, 0.0.0.0/0 0)
    -> DecIPTTL -> EtherEncap(0x0800, {topo.ROUTER_MAC1}, {topo.RECEIVER_MAC})
    -> c :: Counter -> td :: ToDevice(eth1);
"""


def per_worker(c: ControlClient, spec: str) -> list[float]:
    """One value per worker (READEACH: ``worker N: value`` lines)."""
    return [float(line.split(":", 1)[1]) for line in c.read(spec, each=True).splitlines()]


def run_case(tb: Testbed, config: Path, workers: int, kp: int, n: int, flows: int, dst: str,
             sock: Path) -> tuple[float, int, int, list[int]]:
    """(Mpps while draining, frames forwarded, frames the kernel dropped at the rings,
    frames per worker)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "routebricks.cli", "run", str(config), "--netns", tb.ns("r"),
         "--workers", str(workers), "--kp", str(kp), "-u", str(sock), "--no-profile"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_socket(str(sock), timeout=120)
        gen = tb.run("s", [sys.executable, "-m", "routebricks.cli", "gen", "eth0",
                           "--dst", dst, "--dst-mac", topo.ROUTER_MAC0, "--size", "64",
                           "--flows", str(flows), "--rate", "max", "--count", str(n),
                           "--kp", "256", "--json"], timeout=120)
        if gen.returncode != 0:
            raise RuntimeError(f"generator failed: {gen.stderr}")
        sent = json.loads(gen.stdout)["sent"]
        time.sleep(0.3)  # let the kernel finish queueing into the rings
        with ControlClient(str(sock)) as c:
            dropped = int(c.read("fd.kernel_drops"))
            want = sent - dropped
            c.write("c.reset", "")
            c.write("fd.active", "true")
            done, last, t_last = 0, -1, time.perf_counter()
            while done < want and time.perf_counter() - t_last < 0.5:
                time.sleep(0.05)  # light polling: the benchmark shares the cores
                done = int(c.read("c.count"))
                if done != last:
                    last, t_last = done, time.perf_counter()
            counts = per_worker(c, "c.count")
            rates = per_worker(c, "c.rate")
        # Each worker's Counter timed its first and last batch: its busy time.
        busy = max(n / r for n, r in zip(counts, rates, strict=True) if r > 0)
        return sum(counts) / busy / 1e6, done, dropped, [int(x) for x in counts]
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=300_000)
    ap.add_argument("--flows", type=int, default=4096,
                    help="UDP flows (the fanout hash spreads flows, not packets)")
    ap.add_argument("--repeat", type=int, default=7, help="rounds (1 and 2 workers each)")
    ap.add_argument("--kp", type=int, default=256)
    ap.add_argument("--routes", action="store_true", help="IP routing with the real table")
    ap.add_argument("--receiver-drops", action="store_true",
                    help="drop every frame at the receiver's ingress (nftables) instead of "
                    "letting its IP stack take it: see _veth_topology.drop_at_ingress")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        config = tmp / "router.click"
        dst = topo.RECEIVER_IP
        if args.routes:
            from routebricks.lookup import load_ipasn

            data = Path(__file__).resolve().parents[2] / "shared" / "data"
            table = load_ipasn(data / "ipasn_20080501_v12.dat.gz", nports=1)
            routes = tmp / "routes.txt"
            topo.write_route_file(routes, table.net, table.length)
            config.write_text(ROUTING.format(routes=routes))
        else:
            config.write_text(MINIMAL)
        tb = Testbed(topo.three_node_spec(kernel=False))
        try:
            tb.up()
            sink = "the receiver's IP stack takes every frame"
            if args.receiver_drops:
                if not topo.drop_at_ingress(tb.ns("d"), "eth0"):
                    raise SystemExit("--receiver-drops needs nft (Debian: apt install nftables)")
                sink = "the receiver drops every frame at ingress"
            print(f"draining a backlog of {args.packets:,} 64-byte frames ({args.flows} flows), "
                  f"kp {args.kp}, {'IP routing, 270K routes' if args.routes else 'minimal'}"
                  f" forwarding; {sink}; best of {args.repeat}")
            print(f"{'workers':>7} {'Mpps':>7} {'forwarded':>10} {'ring drops':>10} "
                  f"{'vs 1 worker':>11}  {'split':>9}  all runs (Mpps)")
            # 1 and 2 workers take turns, so a slow spell of the (shared, virtual) machine
            # hits both alike; noise only ever slows a run down, hence the best of each.
            runs: dict[int, list[tuple[float, int, int, list[int]]]] = {1: [], 2: []}
            for i in range(args.repeat):
                for workers in (1, 2):
                    runs[workers].append(run_case(tb, config, workers, args.kp, args.packets,
                                                  args.flows, dst, tmp / f"s{workers}{i}.sock"))
            base = max(runs[1])[0]
            for workers in (1, 2):
                best = max(runs[workers])
                split = "/".join(f"{100 * x / max(sum(best[3]), 1):.0f}" for x in best[3])
                print(f"{workers:>7} {best[0]:>7.3f} {best[1]:>10,} {best[2]:>10,} "
                      f"{best[0] / base:>10.2f}x  {split:>9}  "
                      f"{' '.join(f'{r[0]:.3f}' for r in runs[workers])}")
            pairs = sorted(b[0] / a[0] for a, b in zip(runs[1], runs[2], strict=True))
            print(f"2 / 1 worker, run by run: {' '.join(f'{x:.2f}' for x in pairs)} "
                  f"(median {pairs[len(pairs) // 2]:.2f})")
        finally:
            tb.down()


if __name__ == "__main__":
    main()
