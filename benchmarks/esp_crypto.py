"""ESP tunnel-mode throughput per core (prints, asserts nothing).

Measures, single-threaded (so the numbers are per core), for batch sizes 32/256/1024:

* AES-128-GCM encapsulation and decapsulation, batched path and per-packet reference path;
* AES-128-CBC + HMAC-SHA1-96 encapsulation and decapsulation, batched and reference;

on two packet mixes:

* ``64B``: 64-byte inner IPv4/UDP packets (a 64-byte *IP packet*, heavier than the 46-byte IP
  packet inside a minimum 64-byte Ethernet frame);
* ``IMIX``: a synthetic IMIX, 7:4:1 of 64/594/1518-byte Ethernet frames, i.e. inner IPv4
  packets of 46/576/1500 bytes (frame minus 14-byte header and 4-byte FCS), shuffled.

Rates are Mpps and Gbps of inner IPv4 bytes (what the tunnel carries), from the median of
``--repeat`` runs of about ``--seconds`` each. Input batches are prepared (copied, or
encapsulated for decapsulation) outside the timed region; the timed region is the library
call only. ``--profile`` runs pyinstrument (``pip install pyinstrument``) over batched GCM
encapsulation of 64-byte packets in batches of 1024 and prints its call tree.

    python benchmarks/esp_crypto.py [--seconds 0.3] [--repeat 3] [--batches 32,256,1024]
                                    [--mix 64B,IMIX] [--profile]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import struct
import time
from collections.abc import Callable

import numpy as np

from routebricks.ipsec import (
    ALG_CBC,
    ALG_GCM,
    SecurityAssociation,
    decapsulate,
    decapsulate_reference,
    encapsulate,
    encapsulate_reference,
)
from routebricks.ipsec import kernels as ipsec_kernels
from routebricks.packet.batch import PacketBatch
from routebricks.packet.checksum import inet_checksum

GCM_KEY = bytes(range(1, 21))
CBC_KEY = bytes(range(1, 17))
AUTH_KEY = bytes(range(100, 120))
IMIX_FRAMES = [64] * 7 + [594] * 4 + [1518]  # 7:4:1
ETH_OVERHEAD = 18  # Ethernet header + FCS


def make_sa(alg: str) -> SecurityAssociation:
    if alg == ALG_GCM:
        return SecurityAssociation(0x1001, alg, GCM_KEY, "192.0.2.1", "192.0.2.2")
    return SecurityAssociation(0x2002, alg, CBC_KEY, "192.0.2.1", "192.0.2.2",
                               auth_key=AUTH_KEY)


def ip_packet(i: int, size: int) -> bytes:
    """An IPv4/UDP packet of ``size`` bytes."""
    h = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, size, i & 0xFFFF, 0x4000, 64, 17, 0,
                              0x0A000001 + (i & 0xFF), 0x0A010002))
    h[10:12] = struct.pack("!H", inet_checksum(bytes(h)))
    udp = struct.pack("!HHHH", 40000, 40001, size - 20, 0)
    return bytes(h) + udp + bytes((i + k) & 0xFF for k in range(size - 28))


def sizes_for(mix: str, n: int) -> list[int]:
    if mix == "64B":
        return [64] * n
    rng = np.random.default_rng(12)
    frames = (IMIX_FRAMES * (n // len(IMIX_FRAMES) + 1))[:n]
    rng.shuffle(frames)
    return [f - ETH_OVERHEAD for f in frames]


def template(mix: str, n: int) -> PacketBatch:
    return PacketBatch.from_bytes([ip_packet(i, s) for i, s in enumerate(sizes_for(mix, n))])


def timed(run: Callable[[PacketBatch], object], inputs: list[PacketBatch]) -> float:
    t0 = time.perf_counter()
    for b in inputs:
        run(b)
    return time.perf_counter() - t0


def measure(alg: str, op: str, impl: str, mix: str, n: int, seconds: float,
            repeat: int) -> tuple[float, float]:
    """(Mpps, Gbps of inner bytes), median of ``repeat`` runs."""
    tmpl = template(mix, n)
    inner_bytes = tmpl.total_bytes()
    enc = encapsulate if impl == "batched" else encapsulate_reference
    dec = decapsulate if impl == "batched" else decapsulate_reference
    tx = make_sa(alg)
    rx_holder = [make_sa(alg)]

    def prepare(count: int) -> list[PacketBatch]:
        if op == "encap":
            return [tmpl.copy() for _ in range(count)]
        rx_holder[0] = make_sa(alg)  # fresh window: the new batches continue tx's numbering
        return [encapsulate(tmpl.copy(), tx)[0] for _ in range(count)]

    def run(b: PacketBatch) -> object:
        return enc(b, tx) if op == "encap" else dec(b, rx_holder[0])

    # Warm up (numba cache load, crypto contexts) and size the runs to ~``seconds``.
    dt1 = timed(run, prepare(2)) / 2
    count = max(3, min(20000, int(seconds / max(dt1, 1e-7))))
    rates = []
    for _ in range(repeat):
        inputs = prepare(count)
        dt = timed(run, inputs)
        rates.append(count * n / dt)
    pps = statistics.median(rates)
    return pps / 1e6, pps * inner_bytes / n * 8 / 1e9


def profile_gcm_encap(seconds: float) -> None:
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("\n--profile needs pyinstrument: pip install pyinstrument")
        return
    tmpl = template("64B", 1024)
    sa = make_sa(ALG_GCM)
    encapsulate(tmpl.copy(), sa)
    inputs = [tmpl.copy() for _ in range(max(10, int(seconds * 4000)))]
    prof = Profiler(interval=0.0001)
    prof.start()
    t0 = time.perf_counter()
    for b in inputs:
        encapsulate(b, sa)
    dt = time.perf_counter() - t0
    prof.stop()
    print(f"\npyinstrument: batched GCM encap, 64B, batch 1024: {len(inputs) * 1024 / dt / 1e6:.2f}"
          " Mpps while profiling")
    print(prof.output_text(unicode=False, color=False, show_all=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=0.3, help="approx. length of one run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration (median)")
    ap.add_argument("--batches", default="32,256,1024")
    ap.add_argument("--mix", default="64B,IMIX")
    ap.add_argument("--algs", default=f"{ALG_GCM},{ALG_CBC}")
    ap.add_argument("--profile", action="store_true", help="pyinstrument GCM encap profile")
    args = ap.parse_args()
    batches = [int(x) for x in args.batches.split(",")]
    mixes = args.mix.split(",")
    import cryptography
    import numba
    from cryptography.hazmat.backends.openssl.backend import backend

    print(f"CPU: {platform.processor() or platform.machine()}; python {platform.python_version()}"
          f"; numpy {np.__version__}; numba {numba.__version__}; cryptography "
          f"{cryptography.__version__} ({backend.openssl_version_text()})")
    print(f"GHASH: {'PCLMULQDQ' if ipsec_kernels.HAVE_CLMUL else '8-bit tables'}; "
          "single thread; Gbps counts inner IPv4 bytes")
    print(f"{'alg':15} {'op':6} {'impl':9} {'mix':5} {'batch':>5} {'Mpps':>7} {'Gbps':>7} "
          f"{'ns/pkt':>8}")
    results: dict[tuple[str, str, str, str, int], float] = {}
    for alg in args.algs.split(","):
        for op in ("encap", "decap"):
            for impl in ("batched", "reference"):
                for mix in mixes:
                    for n in batches:
                        mpps, gbps = measure(alg, op, impl, mix, n, args.seconds, args.repeat)
                        results[(alg, op, impl, mix, n)] = mpps
                        print(f"{alg:15} {op:6} {impl:9} {mix:5} {n:>5} {mpps:7.3f} {gbps:7.2f}"
                              f" {1e3 / mpps:8.0f}", flush=True)
    key = (ALG_GCM, "encap", "batched", "64B")
    best = [(n, results[(*key, n)]) for n in batches if (*key, n) in results]
    if best:
        print("\nGCM encap, 64B, batched: " + ", ".join(f"batch {n}: {m:.2f} Mpps"
                                                      for n, m in best)
              + " (target: >= 1.7 Mpps per core)")
    if args.profile:
        profile_gcm_encap(args.seconds)


if __name__ == "__main__":
    main()
