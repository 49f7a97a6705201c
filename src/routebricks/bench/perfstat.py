"""Hardware counters with ``perf stat``: cycles and instructions of this process over a
stretch of code, when the machine exposes them (a virtual machine often does not)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PerfStat", "perf_unavailable"]

EVENTS = ("cycles", "instructions")


def perf_unavailable() -> str | None:
    """None when ``perf stat`` counts cycles and instructions here; else why not."""
    perf = shutil.which("perf")
    if perf is None:
        return "perf is not installed (Debian: apt install linux-perf)"
    try:
        r = subprocess.run([perf, "stat", "-x,", "-e", ",".join(EVENTS), "true"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"perf stat did not run: {e}"
    counts = _parse(r.stderr)
    missing = [e for e in EVENTS if counts.get(e) is None]
    if missing:
        return (f"perf stat reports {', '.join(missing)} as not supported here (no hardware "
                "counters exposed to this machine, as in most virtual machines)")
    return None


def _parse(text: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) < 3:
            continue
        name = parts[2].split(":")[0]
        if name in EVENTS:
            try:
                out[name] = float(parts[0])
            except ValueError:
                out[name] = None  # "<not supported>", "<not counted>"
    return out


class PerfStat:
    """``perf stat -p THIS_PID`` between :meth:`start` and :meth:`stop`; :attr:`counts`."""

    def __init__(self) -> None:
        self.counts: dict[str, float | None] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="rb-perf-")
        self._out = Path(self._dir.name) / "perf.csv"

    def start(self) -> None:
        perf = shutil.which("perf") or "perf"
        self._proc = subprocess.Popen(
            [perf, "stat", "-x,", "-e", ",".join(EVENTS), "-p", str(os.getpid()), "-o",
             str(self._out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.1)  # perf attaches to every thread before it counts

    def stop(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        with contextlib.suppress(OSError):
            self.counts = _parse(self._out.read_text())
        self._dir.cleanup()
