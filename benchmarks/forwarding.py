"""Minimal forwarding, memory to memory, on one core: FromDump -> Classifier -> Counter ->
Discard over 64-byte frames streamed from a pcap (page cache), at several poll batch sizes (kp).

Prints Mpps for each kp (and the ratio to kp=1: batching on vs off); asserts nothing. The
configuration and the frames are :mod:`routebricks.bench.memory`'s, which ``routebricks bench
table1`` also measures (with several cores and on veth).

    python benchmarks/forwarding.py [--packets N] [--kp 1,32,256,1024,4096] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile

from routebricks.bench.memory import MINIMAL, make_minimal_pcap, run_router


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=4_000_000)
    ap.add_argument("--kp", default="1,32,256,1024,4096")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    kps = [int(k) for k in args.kp.split(",")]
    with tempfile.TemporaryDirectory() as d:
        pcap = os.path.join(d, "frames64.pcap")
        make_minimal_pcap(pcap, args.packets)
        run_router(MINIMAL.format(pcap=pcap, kp=256, n=10_000))  # warm up: kernels from cache
        print("FromDump -> Classifier(12/0800, -) -> Counter -> Discard, 64-byte frames, "
              "one core, memory to memory")
        print(f"{'kp':>6} {'packets':>10} {'Mpps (best of ' + str(args.repeat) + ')':>18} "
              f"{'ns/packet':>10} {'vs kp=1':>8}")
        base = None
        for kp in kps:
            n = min(args.packets, max(50_000, kp * 4000))
            text = MINIMAL.format(pcap=pcap, kp=kp, n=n)
            best = max(run_router(text, expect=n).mpps for _ in range(args.repeat))
            base = base or best
            print(f"{kp:>6} {n:>10} {best:>18.2f} {1e3 / best:>10.1f} {best / base:>7.1f}x")


if __name__ == "__main__":
    main()
