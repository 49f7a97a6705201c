"""Start-up as an operator sees it: how long ``routebricks run examples/iprouter.click`` takes
to say ``routebricks: ready``, and what the first packets through it cost right after that
line (prints a table; asserts nothing).

Topology: ``examples/testbed.toml`` (hosts a..d, a router namespace with four interfaces),
built under a fresh prefix for each trial and removed on exit, even on failure.

Each trial starts the router as a user would (``routebricks run ... --netns P-r``, the whole
process timed from fork to the ready line on its stderr), then pings host c from host a at
once: the first reply includes ARP on both sides (host a for the router, the router for host
c) and whatever the router had left to do; the later replies are the steady latency. The
same pings through the Linux kernel forwarding in the same namespace (addresses on the
router's interfaces, ``ip_forward=1``) are the peer. The first trial runs on whatever numba
cache the machine has (``--cold`` empties the project's cache first); later trials are warm.
``run -q`` (check, initialize, quit) is timed too: the floor of any run.

    python benchmarks/startup.py [--repeat 3] [--cold] [--method V3,V2] [--spin MS]

Goals (issue 13): ready < 2 s with a warm cache; first packet < 5 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "examples" / "iprouter.click"
TESTBED = REPO / "examples" / "testbed.toml"
RB = [sys.executable, "-m", "routebricks.cli"]
PING = re.compile(r"icmp_seq=(\d+) ttl=\d+ time=([0-9.]+) ms")
ROUTER_ADDRS = ("10.0.0.1/24", "10.0.1.1/24", "10.0.2.1/24", "10.0.3.1/24")


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and res.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return res


def pings(prefix: str, count: int = 6) -> tuple[list[float], list[float]]:
    """RTTs (ms) of pings from host a to host c, sent 50 ms apart (a lost one is absent),
    and the one-way latency (ms) of each echo request through the router: its time on
    c's eth0 less its time on a's eth0, both from tcpdump (nanosecond timestamps)."""
    caps = {h: Path(tempfile.mkstemp(suffix=f"-{h}.pcap")[1]) for h in "ac"}
    dumps = []
    try:
        for h, f in caps.items():
            d = subprocess.Popen(["ip", "netns", "exec", f"{prefix}{h}", "tcpdump", "-i",
                                  "eth0", "-nn", "-U", "--immediate-mode", "-Z", "root",
                                  "--time-stamp-precision=nano", "-w", str(f),
                                  "icmp[icmptype] == icmp-echo"],
                                 stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
            assert d.stderr is not None
            d.stderr.readline()  # "listening on eth0 ...": capturing from here on
            dumps.append(d)
        res = sh("ip", "netns", "exec", f"{prefix}a", "ping", "-n", "-c", str(count), "-i",
                 "0.05", "-W", "1", "10.0.2.2", check=False)
        time.sleep(0.1)
    finally:
        for d in dumps:
            d.terminate()
            d.wait(timeout=10)
    seen = {h: _echo_times(f) for h, f in caps.items()}
    for f in caps.values():
        f.unlink()
    one_way = [(seen["c"][q] - t) * 1e3 for q, t in sorted(seen["a"].items()) if q in seen["c"]]
    return [float(m.group(2)) for m in PING.finditer(res.stdout)], one_way


def _echo_times(pcap: Path) -> dict[int, float]:
    """icmp_seq -> capture time (s) of the echo requests in a pcap."""
    res = sh("tcpdump", "-r", str(pcap), "-nn", "-tt", "--time-stamp-precision=nano")
    return {int(m.group(2)): float(m.group(1)) for m in
            re.finditer(r"^(\d+\.\d+) .*echo request, id \d+, seq (\d+)", res.stdout, re.M)}


def testbed(prefix: str) -> None:
    sh(*RB, "testbed", "up", str(TESTBED), "--prefix", prefix)


def down(prefix: str) -> None:
    sh(*RB, "testbed", "down", prefix, "--timeout", "5", check=False)


def routebricks_trial(prefix: str, method: str = "V3", spin: str | None = None
                      ) -> dict[str, Any]:
    testbed(prefix)
    proc = None
    try:
        t0 = time.monotonic()
        extra = ["--spin", spin] if spin is not None else []
        proc = subprocess.Popen([*RB, "run", str(CONFIG), "--netns", f"{prefix}r", *extra,
                                 f"METHOD={method}"],
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        assert proc.stderr is not None
        ready = None
        for line in proc.stderr:
            if "routebricks: ready" in line:
                ready = time.monotonic() - t0
                break
        if ready is None:
            raise RuntimeError(f"the router exited before it was ready ({proc.wait()})")
        rtts, one_way = pings(prefix)
        return {"ready": ready, "rtts": rtts, "one_way": one_way}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        down(prefix)


def quit_trial(prefix: str) -> float:
    testbed(prefix)
    try:
        t0 = time.monotonic()
        sh(*RB, "run", "-q", str(CONFIG), "--netns", f"{prefix}r")
        return time.monotonic() - t0
    finally:
        down(prefix)


def kernel_trial(prefix: str) -> tuple[list[float], list[float]]:
    testbed(prefix)
    try:
        ns = f"{prefix}r"
        for i, addr in enumerate(ROUTER_ADDRS):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", f"eth{i}")
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        return pings(prefix)
    finally:
        down(prefix)


def first_and_rest(ms: list[float]) -> tuple[str, str]:
    if not ms:
        return "lost", "lost"
    rest = f"{statistics.median(ms[1:]):.3f}" if len(ms) > 1 else "-"
    return f"{ms[0]:.3f}", rest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="router trials (default 3)")
    ap.add_argument("--cold", action="store_true",
                    help="empty numba's cache of the project first (the first trial compiles)")
    ap.add_argument("--method", default="V3",
                    help="receive ring layouts to try, e.g. V3,V2 (iprouter.click's METHOD; "
                         "default V3)")
    ap.add_argument("--spin", default=None,
                    help="the router's --spin (ms of polling after the last packet before it "
                         "sleeps; the router's default otherwise)")
    args = ap.parse_args()
    methods = [m.strip().upper() for m in args.method.split(",") if m.strip()]
    if not methods or any(m not in ("V3", "V2") for m in methods):
        sys.exit(f"--method: want V3, V2 or both, not {args.method!r}")
    if os.geteuid() != 0 or shutil.which("ping") is None:
        sys.exit("needs root (network namespaces) and ping")
    if args.cold:
        for d in (REPO / "src" / "routebricks").rglob("__pycache__"):
            for f in d.glob("*.nb[ci]"):
                f.unlink()
    base = os.getpid() & 0xFFFF  # testbed prefixes: rb + six hex digits + '-'

    def prefix(k: int) -> str:
        return f"rb{base:04x}{k:02x}-"

    console = Console()
    table = Table(title="routebricks run examples/iprouter.click: ready, then ping a -> c")
    for col in ("trial", "METHOD", "ready (s)", "RTT: first (ms)", "next 5, median",
                "a -> c one way: first (ms)", "next 5, median", "replies"):
        table.add_column(col, justify="right")
    readies = []
    for k in range(args.repeat * len(methods)):
        method = methods[k % len(methods)]
        r = routebricks_trial(prefix(k), method, args.spin)
        readies.append(r["ready"])
        label = ("cold" if args.cold else "first") if k == 0 else "warm"
        table.add_row(f"{k + 1} ({label})", method, f"{r['ready']:.2f}",
                      *first_and_rest(r["rtts"]), *first_and_rest(r["one_way"]),
                      f"{len(r['rtts'])}/6")
    krtts, kway = kernel_trial(prefix(0xfe))
    table.add_row("Linux kernel", "-", "-", *first_and_rest(krtts), *first_and_rest(kway),
                  f"{len(krtts)}/6")
    q = quit_trial(prefix(0xff))
    console.print(table)
    warm = readies[1:] or readies
    console.print(f"ready, warm: median {statistics.median(warm):.2f} s "
                  f"(goal < 2 s); run -q whole process: {q:.2f} s")


if __name__ == "__main__":
    main()
