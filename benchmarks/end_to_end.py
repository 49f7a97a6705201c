"""Whole-process timing, as a user times it: routebricks beside C++ Click and FastClick.

Prints, asserts nothing.  Each router runs the same Click configuration as a fresh process,
timed from exec to exit (start-up, parsing, table build, file loading and the data path):

    FromDump(PCAP, STOP true) -> Strip(14) -> CheckIPHeader
      -> rt :: DirectIPLookup(<the real 2008 table written inline, ~270K routes>);
    rt[p] -> DecIPTTL -> Unstrip(14) -> Discard;        // p = 0 .. 3

over a small pcap (1,000 64-byte frames: start-up, mostly) and a big one (1,000,000 frames).
The net rate (N_big - N_small) / (t_big - t_small) takes start-up out of the comparison;
t_small is the start-up a user waits for.  A second configuration, FromDump -> Discard,
measures pcap ingest the same way.  Frames are Ethernet/IPv4/UDP to random destinations
that the table routes (benchmarks/_iprouting_data.py).

The C++ peers are found by --click/--fastclick, $CLICK/$FASTCLICK, or under
/work/scratch/{click,fastclick}/bin/click; a missing one is a column of "not built" (see the
README for building them from their public repositories).  Each time is the median of
--repeat runs, small and big alternating; the net rate uses the median of the differences
of each pair (the machine is shared).  routebricks runs at its defaults (kp, one worker);
--kp adds rows at other batch sizes.

    python benchmarks/end_to_end.py [--packets 1000000] [--repeat 7] [--kp 1024,...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _iprouting_data as data

NPORTS = 4
SMALL = 1000
SCRATCH = Path("/work/scratch")


def find_peer(name: str, flag: str | None) -> str | None:
    cands = [flag, os.environ.get(name.upper()), str(SCRATCH / name / "bin" / "click")]
    for c in cands:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    return None


def routing_config(pcap: Path, routes: data.RouteArrays, extra: str = "") -> str:
    net = routes.net
    octets = [((net >> s) & 255).tolist() for s in (24, 16, 8, 0)]
    lines = [
        f"  {a}.{b}.{c}.{d}/{n} {p}"
        for a, b, c, d, n, p in zip(*octets, routes.length.tolist(), routes.port.tolist(),
                                    strict=True)
    ]
    out = "".join(f"rt[{p}] -> DecIPTTL -> Unstrip(14) -> Discard;\n" for p in range(NPORTS))
    return (f"FromDump({pcap}, STOP true{extra}) -> Strip(14) -> CheckIPHeader\n"
            f"  -> rt :: DirectIPLookup(\n" + ",\n".join(lines) + ");\n" + out)


def ingest_config(pcap: Path, extra: str = "") -> str:
    return f"FromDump({pcap}, STOP true{extra}) -> Discard;\n"


def time_run(cmd: list[str], repeat: int) -> tuple[float, str]:
    """Median wall-clock seconds of ``repeat`` runs of ``cmd``; the last run's stderr.
    (The median, not the best: the net rate is a difference of two times, and the best of
    each is more often an outlier.)"""
    times, err = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            return float("nan"), (p.stderr or p.stdout)[-600:]
        times.append(dt)
        err = p.stderr
    return statistics.median(times), err


def startup_floor(work: Path, repeat: int, rb: list[str]) -> None:
    """Where the start-up of the small routing run goes, each step a whole process."""
    py = sys.executable
    conf = str(work / f"routing-{SMALL}-routebricks.click")
    steps = [
        ("python -c pass", [py, "-c", "pass"]),
        ("import routebricks.cli", [py, "-c", "import routebricks.cli"]),
        ("+ numba: load the common kernels", [py, "-c", "import routebricks.cli; "
                                              "from routebricks.packet import kernels as k; "
                                              "k.warmup()"]),
        ("routebricks check (parse, 270K routes)", rb[:1] + ["check", conf]),
        ("routebricks run, 1,000 packets", rb + [conf]),
    ]
    print("\nstart-up, step by step (each a whole process, median of --repeat):")
    for label, cmd in steps:
        t, err = time_run(cmd, repeat)
        print(f"  {label:<42}{t:>7.3f} s" if t == t else f"  {label}: failed: {err}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--kp", default="", help="extra routebricks rows at these kp (comma list)")
    ap.add_argument("--click", help="C++ Click's userlevel `click` binary")
    ap.add_argument("--fastclick", help="FastClick's userlevel `click` binary")
    ap.add_argument("--keep", help="write the inputs here and keep them")
    a = ap.parse_args()

    table_file = data.data_file()
    if table_file is None:
        print("the 2008 table (ipasn_20080501_v12.dat.gz) is missing: see benchmarks/README")
        return 1
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="rb-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        routes, _ = data.real_table(table_file, NPORTS)
        dst, _ = data.destinations(routes, a.packets, routed=True)
        pcaps = {SMALL: work / "small.pcap", a.packets: work / "big.pcap"}
        for n, path in pcaps.items():
            data.write_frames(path, dst[:n], data.frame_sizes("64", n))
        os.sync()  # write the new pcaps back now, not under the first runs' feet
        print(f"inputs in {work}: {len(routes):,} routes inline, {a.packets:,} 64-byte frames "
              f"({pcaps[a.packets].stat().st_size / 1e6:.0f} MB pcap)")

        # The command users type: the script pip installed next to this interpreter (not a
        # version manager's shim in front of it, which adds its own start-up and jitter).
        script = Path(sys.executable).with_name("routebricks")
        rb = [str(script) if script.is_file() else shutil.which("routebricks") or "routebricks",
              "run"]
        # Byte-compile our modules, as `pip install` does (this machine sets
        # PYTHONDONTWRITEBYTECODE, which would recompile every module on every run).
        import routebricks

        subprocess.run([sys.executable, "-m", "compileall", "-q",
                        str(Path(routebricks.__file__).parent)], check=False,
                       capture_output=True)
        peers: list[tuple[str, list[str], str]] = [("routebricks", rb, "")]
        for kp in [int(k) for k in a.kp.split(",") if k]:
            peers.append((f"routebricks kp {kp}", rb + ["--kp", str(kp)], ""))
        for name, flag, burst in (("click", a.click, ""), ("fastclick", a.fastclick,
                                                            ", BURST 32")):
            exe = find_peer(name, flag)
            label = "C++ Click" if name == "click" else "FastClick (BURST 32)"
            peers.append((label, [exe] if exe else [], burst))

        for job, make in (("routing", lambda p, x: routing_config(p, routes, x)),
                          ("ingest", ingest_config)):
            print(f"\n{job}: " + ("FromDump -> Strip -> CheckIPHeader -> DirectIPLookup "
                                  "(270K inline) -> 4 x (DecIPTTL -> Unstrip -> Discard)"
                                  if job == "routing" else "FromDump -> Discard"))
            print(f"{'whole process':<26}{'1,000 packets':>15}{f'{a.packets:,} packets':>20}"
                  f"{'net rate':>14}")
            for label, cmd, extra in peers:
                if not cmd:
                    print(f"{label:<26}{'not built':>15}")
                    continue
                confs = {}
                for n, pcap in pcaps.items():
                    confs[n] = work / f"{job}-{n}-{label.split()[0]}.click"
                    confs[n].write_text(make(pcap, extra))
                # Small and big runs alternate, and the net rate comes from the median of
                # the pairs' differences: drifts of a shared machine hit both sides.
                small, big, err = [], [], ""
                for _ in range(a.repeat):
                    for n, into in ((SMALL, small), (a.packets, big)):
                        t, err = time_run(cmd + [str(confs[n])], 1)
                        into.append(t)
                    if small[-1] != small[-1] or big[-1] != big[-1]:
                        break
                if any(t != t for t in small + big):
                    print(f"{label}: failed: {err.strip()}")
                    continue
                dt = statistics.median(b - s for s, b in zip(small, big, strict=True))
                rate = (a.packets - SMALL) / dt / 1e6 if dt > 0 else float("inf")
                print(f"{label:<26}{statistics.median(small):>14.2f}s"
                      f"{statistics.median(big):>19.2f}s{rate:>9.1f} Mpps")
        startup_floor(work, a.repeat, rb)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
