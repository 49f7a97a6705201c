"""IPsec ESP gateway throughput per core: routebricks' ESPEncap/ESPDecap elements in a
memory-to-memory router, and the Linux kernel's xfrm side by side (prints, asserts nothing).

routebricks, one process, one core (so the figures are per core)::

    FromDump(pcap) -> ESPEncap(SA) -> Discard      (encap)
    FromDump(pcap) -> ESPDecap(SA) -> Discard      (decap)

over two packet mixes:

* ``64B``: 64-byte inner IPv4/UDP packets (a 64-byte *IP packet*: heavier than the 46-byte
  packet inside a minimum 64-byte Ethernet frame, so a conservative figure);
* ``IMIX``: a synthetic IMIX, 7:4:1 of 64/594/1518-byte Ethernet frames, i.e. inner IPv4
  packets of 46/576/1500 bytes (frame minus 14-byte header and 4-byte FCS), shuffled.

The pcap (raw IPv4; for decap, ESP packets made beforehand with a twin SA, sequence numbers
1..N) is checked before the clock starts and read within it (FromDump streams it from the
page cache); the timed region is ``Router.run``
until FromDump is done. "Mpps" is the router's end-to-end rate (source, ESP element,
Discard); "elem Mpps" counts the ESP element's own time only (the router's per-element
profile: push time minus time spent downstream). Gbps count inner IPv4 bytes (what the
tunnel carries). Each figure is the best of ``--repeat`` runs. Target: >= 1.7 Mpps per core
for 64-byte packets with AES-128-GCM.

Linux kernel xfrm, where the kernel has ESP (CONFIG_INET_ESP and the ciphers): three
namespaces ``gen -> k1 -> sink``; k1 is an xfrm tunnel gateway (``ip xfrm state``/``policy``,
the same algorithms and packet mixes) that encrypts what gen sends to the sink's side. gen
sends with routebricks' AF_PACKET transmitter (``sendmmsg``, one call per 1024 frames) from
one thread pinned to one core; on veth the receiving side's processing (k1's forwarding and
ESP encapsulation) runs inside that sending call, on that core, so the rate of ESP packets
arriving at the sink is what one core does: send + forward + encapsulate. Where the kernel
lacks ESP the benchmark says so and why (what it detected); ``--kernel-baseline`` then still
measures k1 forwarding without xfrm on the same topology (the harness, and the forwarding
share of the kernel's figure). Needs root for the kernel part.

    python benchmarks/ipsec.py [--packets 1000000] [--kp 1024] [--repeat 3]
        [--mix 64B,IMIX] [--algs aes128gcm,aes128cbc-sha1] [--ops encap,decap]
        [--seconds 3] [--no-kernel] [--kernel-baseline]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from routebricks.bench.ipsecdata import (  # the packets and the SA live there
    TUN_DST,
    TUN_SRC,
    kernel_esp_unavailable,
    sa_args,
    template_batch,
    write_esp_pcap,
    write_inner_pcap,
    xfrm_state,
)
from routebricks.engine.router import Router
from routebricks.ipsec import ALG_CBC, ALG_GCM

# ---------------------------------------------------------------------- routebricks
CONFIG = """
src :: FromDump("{pcap}", BURST {kp}, STOP true)
    -> esp :: {cls}({sa})
    -> sink :: Discard;
"""


def run_router(pcap: Path, cls: str, alg: str, kp: int, n: int) -> tuple[float, float]:
    """(seconds for the whole run, seconds inside the ESP element)."""
    r = Router.from_text(CONFIG.format(pcap=pcap, kp=kp, cls=cls, sa=sa_args(alg)),
                         profile=True)
    r.initialize()  # checks the pcap: outside the timed region (reading it is inside)
    t0 = time.perf_counter()
    r.run()
    dt = time.perf_counter() - t0
    esp = r.find("esp")
    count = int(r.find("sink").read("count"))
    self_ns = int(getattr(esp, "self_ns", 0))
    drops = dict(esp.drops)
    r.cleanup()
    assert count == n and not drops, (count, n, drops)  # a broken run, not a speed check
    return dt, self_ns / 1e9


def bench_routebricks(args: argparse.Namespace, tmp: Path) -> dict[tuple[str, str, str], float]:
    print("routebricks, memory to memory, one core: FromDump(pcap) -> ESPEncap|ESPDecap "
          "-> Discard")
    print(f"{'alg':15} {'op':6} {'mix':5} {'kp':>5} {'packets':>9} {'Mpps':>7} {'Gbps':>7} "
          f"{'ns/pkt':>7} {'elem Mpps':>10} {'elem Gbps':>10}")
    best: dict[tuple[str, str, str], float] = {}
    for mix in args.mix.split(","):
        n = args.packets
        inner = tmp / f"inner-{mix}.pcap"
        inner_bytes = write_inner_pcap(inner, mix, n)
        for alg in args.algs.split(","):
            esp = tmp / f"esp-{mix}-{alg}.pcap"
            if "decap" in args.ops:
                write_esp_pcap(inner, esp, alg)
            for op in args.ops.split(","):
                pcap, cls = (inner, "ESPEncap") if op == "encap" else (esp, "ESPDecap")
                run_router(pcap, cls, alg, args.kp, n)  # warm-up (numba cache, page cache)
                runs = [run_router(pcap, cls, alg, args.kp, n) for _ in range(args.repeat)]
                dt = min(r[0] for r in runs)
                el = min(r[1] for r in runs)
                mpps = n / dt / 1e6
                best[(alg, op, mix)] = mpps
                print(f"{alg:15} {op:6} {mix:5} {args.kp:>5} {n:>9} {mpps:7.3f} "
                      f"{inner_bytes * 8 / dt / 1e9:7.2f} {dt / n * 1e9:7.0f} "
                      f"{n / el / 1e6:10.3f} {inner_bytes * 8 / el / 1e9:10.2f}", flush=True)
    return best


# ---------------------------------------------------------------------- the Linux kernel
TOPOLOGY = """
[[hosts]]
name = "gen"
interfaces = [{ name = "eth0", mac = "02:00:00:00:00:01" }]

[[hosts]]
name = "k1"
ip_forward = true
routes = [{ dst = "10.2.0.0/16", gateway = "192.0.2.2" }]
interfaces = [
  { name = "eth0", addresses = ["10.1.0.1/24"], mac = "02:00:00:00:01:01" },
  { name = "eth1", addresses = ["192.0.2.1/24"], mac = "02:00:00:00:01:02", mtu = 9000 },
]

[[hosts]]
name = "sink"
interfaces = [{ name = "eth1", mac = "02:00:00:00:02:01", mtu = 9000 }]

[[links]]
a = "gen:eth0"
b = "k1:eth0"

[[links]]
a = "k1:eth1"
b = "sink:eth1"
"""


def kernel_frames(mix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Ethernet frames gen -> k1 (the template's packets); (pool, offs, lens, IP bytes)."""
    from routebricks.io.afpacket import frames_to_batch

    eth = bytes.fromhex("020000000101" "020000000001" "0800")
    tmpl = template_batch(mix)
    pkts = tmpl.to_list()[:1024]
    pool, offs, lens = frames_to_batch([eth + p for p in pkts])
    return pool, offs, lens, sum(map(len, pkts))


def sink_rx(tb: object) -> int:
    from pyroute2 import NetNS

    with NetNS(tb.ns("sink"), flags=0) as ipr:  # type: ignore[attr-defined]
        link = ipr.get_links(ipr.link_lookup(ifname="eth1")[0])[0]
        return int(link.get_attr("IFLA_STATS64")["rx_packets"])


def kernel_rate(tb: object, mix: str, seconds: float, cpu: int) -> tuple[float, float]:
    """(Mpps, Gbps of inner bytes) arriving at the sink while gen sends for ``seconds``."""
    from routebricks.io.afpacket import TxRing, warmup

    pool, offs, lens, ip_bytes = kernel_frames(mix)
    avg = ip_bytes / len(lens)

    def send() -> tuple[int, float]:
        os.sched_setaffinity(0, {cpu})  # this thread only
        with TxRing("eth0", mode="sendmmsg") as tx:
            tx.send_batch(pool, offs, lens)  # warm-up
            before = sink_rx(tb)
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                tx.send_batch(pool, offs, lens)
            dt = time.perf_counter() - t0
        time.sleep(0.2)
        return sink_rx(tb) - before, dt

    warmup()
    got, dt = tb.call("gen", send)  # type: ignore[attr-defined]
    pps = got / dt
    return pps / 1e6, pps * avg * 8 / 1e9


def bench_kernel(args: argparse.Namespace, best: dict[tuple[str, str, str], float]) -> None:
    algs = args.algs.split(",")
    why = {alg: kernel_esp_unavailable(alg) for alg in algs}
    usable = [alg for alg in algs if why[alg] is None]
    print()
    for alg in algs:
        if why[alg] is not None:
            print(f"Linux kernel xfrm ({alg}): unavailable on {platform.release()}: {why[alg]}")
    if not usable and not args.kernel_baseline:
        return
    from routebricks.netns.testbed import Testbed, TestbedSpec

    cpu = sorted(os.sched_getaffinity(0))[0]
    print(f"Linux kernel, namespaces gen -> k1 -> sink, sender and kernel path on CPU {cpu}")
    print(f"{'what':32} {'mix':5} {'Mpps':>7} {'Gbps':>7} {'routebricks encap Mpps':>23}")
    with Testbed(TestbedSpec.from_toml(TOPOLOGY)) as tb:
        tb.run("k1", ["ip", "neigh", "replace", "192.0.2.2", "lladdr", "02:00:00:00:02:01",
                      "dev", "eth1", "nud", "permanent"], check=True)
        if args.kernel_baseline:
            for mix in args.mix.split(","):
                mpps, gbps = kernel_rate(tb, mix, args.seconds, cpu)
                print(f"{'forward, no xfrm (baseline)':32} {mix:5} {mpps:7.3f} {gbps:7.2f}",
                      flush=True)
        for alg in usable:
            tb.run("k1", ["ip", "xfrm", "state", "flush"], check=True)
            tb.run("k1", ["ip", "xfrm", "policy", "flush"], check=True)
            tb.run("k1", ["ip", "xfrm", "state", "add", *xfrm_state(alg, TUN_SRC, TUN_DST)],
                   check=True)
            tb.run("k1", ["ip", "xfrm", "policy", "add", "src", "10.1.0.0/16", "dst",
                          "10.2.0.0/16", "dir", "out", "tmpl", "src", TUN_SRC, "dst", TUN_DST,
                          "proto", "esp", "reqid", "1", "mode", "tunnel"], check=True)
            for mix in args.mix.split(","):
                mpps, gbps = kernel_rate(tb, mix, args.seconds, cpu)
                ours = best.get((alg, "encap", mix))
                col = f"{ours:23.3f}" if ours is not None else f"{'-':>23}"
                print(f"{'xfrm encap ' + alg + ' (+fwd, send)':32} {mix:5} {mpps:7.3f} "
                      f"{gbps:7.2f} {col}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=1_000_000, help="packets per run")
    ap.add_argument("--kp", type=int, default=1024, help="FromDump batch size")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (best)")
    ap.add_argument("--mix", default="64B,IMIX")
    ap.add_argument("--algs", default=f"{ALG_GCM},{ALG_CBC}")
    ap.add_argument("--ops", default="encap,decap")
    ap.add_argument("--seconds", type=float, default=3.0, help="kernel: seconds per figure")
    ap.add_argument("--no-kernel", action="store_true", help="skip the kernel part")
    ap.add_argument("--kernel-baseline", action="store_true",
                    help="kernel: also measure plain forwarding (works without ESP)")
    args = ap.parse_args()
    import cryptography
    import numba

    from routebricks.ipsec import kernels as ipsec_kernels

    print(f"CPU: {platform.processor() or platform.machine()}; python "
          f"{platform.python_version()}; numpy {np.__version__}; numba {numba.__version__}; "
          f"cryptography {cryptography.__version__}; GHASH "
          f"{'PCLMULQDQ' if ipsec_kernels.HAVE_CLMUL else '8-bit tables'}")
    with tempfile.TemporaryDirectory() as d:
        best = bench_routebricks(args, Path(d))
    key = (ALG_GCM, "encap", "64B")
    if key in best:
        verdict = "met" if best[key] >= 1.7 else "NOT met"
        print(f"\nGCM encap, 64B: {best[key]:.2f} Mpps per core (target >= 1.7: {verdict})")
    if not args.no_kernel:
        bench_kernel(args, best)


if __name__ == "__main__":
    main()
