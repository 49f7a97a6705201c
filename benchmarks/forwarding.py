"""Minimal forwarding, memory to memory, on one core: FromDump -> Classifier -> Counter ->
Discard over 64-byte frames streamed from a pcap (page cache), at several poll batch sizes (kp).

Prints Mpps for each kp (and the ratio to kp=1: batching on vs off); asserts nothing.

    python benchmarks/forwarding.py [--packets N] [--kp 1,32,256,1024,4096] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from routebricks.engine.router import Router
from routebricks.packet.batch import PacketBatch
from routebricks.packet.pcap import write_pcap

CONFIG = """
src :: FromDump({pcap}, BURST {kp}, LIMIT {n})
    -> cls :: Classifier(12/0800, -)
    -> cnt :: Counter
    -> Discard;
cls [1] -> Discard;
"""


def make_pcap(path: str, n: int) -> None:
    """n 64-byte Ethernet/IPv4/UDP frames with varied destinations, written in one go."""
    rng = np.random.default_rng(1)
    frame = np.zeros((n, 64), np.uint8)
    frame[:, 0:6] = [2, 0, 0, 0, 0, 2]
    frame[:, 6:12] = [2, 0, 0, 0, 0, 1]
    frame[:, 12:14] = [0x08, 0x00]
    frame[:, 14] = 0x45
    frame[:, 16:18] = [0, 50]
    frame[:, 22] = 64
    frame[:, 23] = 17
    frame[:, 26:30] = [10, 0, 0, 1]
    frame[:, 30:34] = rng.integers(0, 256, (n, 4), dtype=np.uint8)
    write_pcap(path, PacketBatch.from_arrays(frame, np.full(n, 64)))


def run_once(pcap: str, kp: int, n: int) -> float:
    r = Router.from_text(CONFIG.format(pcap=pcap, kp=kp, n=n))
    r.initialize()
    t0 = time.perf_counter()
    r.run()
    dt = time.perf_counter() - t0
    count = int(r.read_handler("cnt.count"))
    r.cleanup()
    assert count == n, (count, n)  # a broken run, not a speed check
    return n / dt / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=4_000_000)
    ap.add_argument("--kp", default="1,32,256,1024,4096")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    kps = [int(k) for k in args.kp.split(",")]
    with tempfile.TemporaryDirectory() as d:
        pcap = os.path.join(d, "frames64.pcap")
        make_pcap(pcap, args.packets)
        run_once(pcap, 256, 10_000)  # warm up (numba kernels load from cache)
        print("FromDump -> Classifier(12/0800, -) -> Counter -> Discard, 64-byte frames, "
              "one core, memory to memory")
        print(f"{'kp':>6} {'packets':>10} {'Mpps (best of ' + str(args.repeat) + ')':>18} "
              f"{'ns/packet':>10} {'vs kp=1':>8}")
        base = None
        for kp in kps:
            n = min(args.packets, max(50_000, kp * 4000))
            best = max(run_once(pcap, kp, n) for _ in range(args.repeat))
            base = base or best
            print(f"{kp:>6} {n:>10} {best:>18.2f} {1e3 / best:>10.1f} {best / base:>7.1f}x")


if __name__ == "__main__":
    main()
