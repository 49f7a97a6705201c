"""AF_PACKET I/O rates for 64-byte frames over a veth pair (prints, asserts nothing).

Builds two network namespaces ``<prefix>tx`` and ``<prefix>rx`` joined by one
veth pair (with :class:`routebricks.netns.testbed.Testbed`), so all traffic
stays between the benchmark's own namespaces, and removes them on exit, even
on error or Ctrl-C.

Measured, for batch sizes 1/32/256:

* TX: ``TxRing.send_batch`` in ``ring`` / ``sendmmsg`` / ``send`` mode (and
  with ``PACKET_QDISC_BYPASS``), nobody listening on the far end.
  On veth the kernel's cost of delivering the frame to the peer is paid
  inside the sending syscall, so this is the full per-frame cost of sending.
* RX: ``RxRing.recv_batch`` draining a ring pre-filled with ``--fill`` frames,
  TPACKET_V2 vs V3 (user-space cost: walk + copy into a fresh pool + release).
* End to end: a sender thread and ``RxRing`` (V3) receiving concurrently.

Run as root::

    python benchmarks/afpacket_io.py [--packets 200000] [--fill 4000] [--repeat 5]

Each figure is the best of ``--repeat`` runs (the median follows in
parentheses); configurations are interleaved so that background load hits
them alike. Best-of estimates the uncontended rate on a shared machine.
"""

from __future__ import annotations

import argparse
import threading
import time
from statistics import median

import numpy as np

from routebricks.io.afpacket import RxRing, TxRing, frames_to_batch, warmup
from routebricks.netns.testbed import InterfaceSpec, LinkSpec, NodeSpec, Testbed, TestbedSpec

FRAME_LEN = 64
BATCHES = (1, 32, 256)


def make_frames(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` distinct 64-byte frames (experimental ethertype 0x88b5) as a pool batch."""
    hdr = bytes.fromhex("02000000000202000000000188b5")
    frames = [hdr + i.to_bytes(4, "big") * ((FRAME_LEN - 14) // 4) + b"\0\0" for i in range(n)]
    return frames_to_batch(frames, headroom=64, tailroom=64)


def bench_tx(tb: Testbed, mode: str, batch: int, total: int, bypass: bool = False) -> float:
    """Mpps pushed through ``send_batch`` in batches of ``batch``."""
    pool, offs, lens = make_frames(batch)
    with tb.inside("tx"):
        tx = TxRing("eth0", mode=mode, qdisc_bypass=bypass)  # type: ignore[arg-type]
    try:
        tx.send_batch(pool, offs, lens)  # warm-up (numba compile, ring pages)
        rounds = max(1, total // batch)
        t0 = time.perf_counter()
        for _ in range(rounds):
            tx.send_batch(pool, offs, lens)
        dt = time.perf_counter() - t0
        st = tx.stats()
        if st.busy_drops:
            print(f"    ({mode}: {st.busy_drops} busy drops)")
        return rounds * batch / dt / 1e6
    finally:
        tx.close()


def bench_rx(tb: Testbed, version: int, batch: int, total: int, fill: int) -> float:
    """Mpps drained by ``recv_batch(batch)`` from a ring pre-filled with ``fill`` frames."""
    pool, offs, lens = make_frames(fill)
    with tb.inside("rx"):
        rx = RxRing("eth0", version=version, timeout_ms=1)  # type: ignore[arg-type]
    with tb.inside("tx"):
        tx = TxRing("eth0", mode="sendmmsg")
    try:
        got = 0
        busy = 0.0
        while got < total:
            tx.send_batch(pool, offs, lens)
            time.sleep(0.003)  # let V3 retire the last, partly filled block
            t0 = time.perf_counter()
            while True:
                _, o, _, _ = rx.recv_batch(batch)
                if o.size == 0:
                    break
                got += o.size
            busy += time.perf_counter() - t0
        st = rx.stats()
        if st.tp_drops:
            print(f"    (V{version}: {st.tp_drops} ring drops)")
        return got / busy / 1e6
    finally:
        rx.close()
        tx.close()


def bench_e2e(tb: Testbed, total: int, mode: str) -> tuple[float, float]:
    """Sender thread + V3 receiver; returns (offered Mpps, received Mpps)."""
    pool, offs, lens = make_frames(256)
    with tb.inside("rx"):
        rx = RxRing("eth0", version=3, timeout_ms=1)
    with tb.inside("tx"):
        tx = TxRing("eth0", mode=mode)  # type: ignore[arg-type]
    sent = [0]
    done = threading.Event()

    def sender() -> None:
        n = 0
        while n < total:
            n += tx.send_batch(pool, offs, lens)
        sent[0] = n
        done.set()

    try:
        rx.recv_batch(1)  # warm-up
        t0 = time.perf_counter()
        th = threading.Thread(target=sender)
        th.start()
        got = 0
        while not (done.is_set() and not rx.ready()):
            if not rx.wait(0.01):
                continue
            got += rx.recv_batch(256)[1].size
        t_rx = time.perf_counter() - t0
        th.join()
        return sent[0] / t_rx / 1e6, got / t_rx / 1e6
    finally:
        rx.close()
        tx.close()


def _cell(runs: list[float]) -> str:
    return f"{max(runs):7.3f} ({median(runs):5.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=200_000, help="frames per measurement")
    ap.add_argument("--fill", type=int, default=4000, help="RX: frames per ring pre-fill")
    ap.add_argument("--repeat", type=int, default=5, help="runs per figure")
    args = ap.parse_args()
    rep = max(1, args.repeat)
    warmup()

    spec = TestbedSpec(
        hosts=[
            NodeSpec("tx", [InterfaceSpec("eth0")]),
            NodeSpec("rx", [InterfaceSpec("eth0")]),
        ],
        links=[LinkSpec("tx:eth0", "rx:eth0")],
    )
    tx_cfgs = [("ring", False), ("ring", True), ("sendmmsg", False), ("sendmmsg", True)]
    tx_cfgs.append(("send", False))
    with Testbed(spec) as tb:
        print(f"testbed {tb.prefix}: veth tx:eth0 <-> rx:eth0, {FRAME_LEN}-byte frames")
        print(f"Mpps, best of {rep} runs (median in parentheses); configurations interleaved")
        head = "".join(f"{'batch ' + str(b):>20}" for b in BATCHES)

        tx_runs: dict[tuple[str, bool, int], list[float]] = {}
        for _ in range(rep):
            for mode, bypass in tx_cfgs:
                for b in BATCHES:
                    n = args.packets if b > 1 or mode == "send" else args.packets // 4
                    r = bench_tx(tb, mode, b, n, bypass)
                    tx_runs.setdefault((mode, bypass, b), []).append(r)
        print("\nTX" + " " * 24 + head)
        for mode, bypass in tx_cfgs:
            label = mode + (" +qdisc_bypass" if bypass else "")
            cells = "".join(f"{_cell(tx_runs[mode, bypass, b]):>20}" for b in BATCHES)
            print(f"  {label:<24}{cells}")

        rx_runs: dict[tuple[int, int], list[float]] = {}
        for _ in range(rep):
            for version in (2, 3):
                for b in BATCHES:
                    n = args.packets if b > 1 else args.packets // 4
                    r = bench_rx(tb, version, b, n, args.fill)
                    rx_runs.setdefault((version, b), []).append(r)
        print("\nRX drain" + " " * 18 + head)
        for version in (2, 3):
            cells = "".join(f"{_cell(rx_runs[version, b]):>20}" for b in BATCHES)
            print(f"  {'TPACKET_V' + str(version):<24}{cells}")

        print("\nEnd to end, sender thread + V3 receiver, batch 256")
        print(" " * 26 + f"{'offered':>20}{'received':>20}")
        for mode in ("ring", "sendmmsg"):
            runs = [bench_e2e(tb, args.packets, mode) for _ in range(rep)]
            off = _cell([r[0] for r in runs])
            rcv = _cell([r[1] for r in runs])
            print(f"  {mode:<24}{off:>20}{rcv:>20}")


if __name__ == "__main__":
    main()
