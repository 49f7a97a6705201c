"""RB4 in network namespaces (RouteBricks §6): what the cluster does with real traffic.

Prints tables and writes a PNG; asserts nothing. The measurements live in
:mod:`routebricks.bench.rb4` (``routebricks bench rb4`` runs the same and writes them into
its report): start-up as a user times it, the uniform and single-pair matrices with the
packets each server processed per packet delivered, the loss-free rate of RB4 and of one
server with its four ports, reordering with and without flowlets, latency per hop count.
This script adds the roles' CPU cost (``benchmarks/cluster_roles.py --quick``).

    python benchmarks/rb4.py [--seconds 8] [--quick] [--png rb4.png]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from routebricks.bench.rb4 import FRAME, measure, plot, tables

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    started = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="seconds of traffic per run")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 s per run, fewer loads")
    ap.add_argument("--png", default="rb4.png", help="where to write the plots")
    args = ap.parse_args()
    secs = 2.0 if args.quick else args.seconds
    with tempfile.TemporaryDirectory(prefix="rb4-bench-") as tmp:
        d = measure(Path(tmp), args.quick, secs,
                    lambda s: print(s, file=sys.stderr, flush=True))
    roles = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cluster_roles.py"),
                            "--quick"], capture_output=True, text=True)
    print("RB4 in network namespaces: 4 servers, full mesh, R = 20 Mbit/s, internal links "
          f"10 Mbit/s, {FRAME}-byte frames, {secs:g} s per run")
    if "startup" in d:
        st = d["startup"]
        print(f"\nstart-up (whole command): cluster up {st['up_s']:.1f} s"
              f"{' (failed: ' + st['error'] + ')' if st['error'] else ''}, cluster down "
              f"{st['down_s']:.1f} s")
    print()
    print(tables(d))
    print()
    print("role cost (benchmarks/cluster_roles.py --quick):")
    print(roles.stdout if roles.returncode == 0 else roles.stderr[-2000:])
    print(f"benchmark wall time {time.perf_counter() - started:.0f} s")
    try:
        plot(Path(args.png), d)
        print(f"plots: {args.png}")
    except ImportError:
        print("no plots: matplotlib is not installed (pip install 'routebricks[bench]')")


if __name__ == "__main__":
    main()
