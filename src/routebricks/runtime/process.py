"""A router running as its own process: start it, talk to it, watch it, stop it.

:class:`RouterProcess` starts ``routebricks run`` (optionally in a network namespace) with a
control socket, waits until it answers, and stops it as a service manager would (SIGTERM:
it prints its summary and cleans up; SIGKILL only after a timeout). The cluster launches
each server's router with it, and the tests drive routers with it. Its stderr goes to a
file, readable at any time (:meth:`log`), so a chatty router never blocks on a full pipe.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from routebricks.closing import Closing
from routebricks.errors import RouteBricksError
from routebricks.runtime.control import ControlClient, alive


class RouterProcess(Closing):
    """``routebricks run CONFIG ...`` as a child process with a control socket."""

    def __init__(self, config: str | os.PathLike[str] | None = None, *,
                 expr: str | None = None, netns: str | None = None,
                 socket_path: str | None = None, workers: int | None = None,
                 defines: dict[str, str] | None = None, args: Sequence[str] = (),
                 log_path: str | os.PathLike[str] | None = None,
                 detach: bool = False) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="rbrouter-")
        self.socket_path = socket_path or str(Path(self._tmp.name) / "control.sock")
        self.log_path = Path(log_path) if log_path else Path(self._tmp.name) / "router.log"
        argv = [sys.executable, "-m", "routebricks.cli", "run"]
        if config is not None:
            argv.append(str(config))
        if expr is not None:
            argv += ["-e", expr]
        if netns is not None:
            argv += ["--netns", netns]
        if workers is not None:
            argv += ["--workers", str(workers)]
        # The log keeps why the router stopped and its counts (a person reads it later).
        argv += ["-u", self.socket_path, "--summary", *args]
        argv += [f"{k}={v}" for k, v in (defines or {}).items()]
        self.argv = argv
        # detach: its own session, so it outlives the command that started it (and a
        # Ctrl-C meant for that command); stopped later by pid (cluster down).
        self.detach = detach
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: float = 120.0) -> RouterProcess:
        """Start the router and wait until its control socket answers; raise with its
        messages if it exits first."""
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> RouterProcess:
        """Start the router process (see :meth:`wait_ready`)."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=log,
                                         stdin=subprocess.DEVNULL,
                                         start_new_session=self.detach)
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the control socket answers; raise with the router's messages if it
        exits first or takes longer than ``timeout``."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not alive(self.socket_path):
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise RouteBricksError(f"the router exited ({self.proc.returncode}) before "
                                       f"it was ready:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RouteBricksError(f"the router was not ready within {timeout:g} s:\n"
                                       f"{self.log()}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RouteBricksError("the router has not been started")
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """Everything the router wrote to stderr so far (messages, its summary)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; its exit status."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.returncode = self.proc.returncode
        return self.returncode

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the router's supervisor (SIGKILL by default)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
            if sig == signal.SIGKILL:
                self.proc.wait(timeout=30)

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    # ------------------------------------------------------------------ handlers
    def read(self, spec: str, each: bool = False) -> str:
        with ControlClient(self.socket_path) as c:
            return c.read(spec, each=each)

    def write(self, spec: str, value: str = "") -> None:
        with ControlClient(self.socket_path) as c:
            c.write(spec, value)

    def workers(self) -> list[dict[str, str]]:
        """The ``workers`` handler as dicts: wid, pid, cpu, state, restarts."""
        out = []
        for line in self.read("workers").splitlines():
            f = line.split("\t")
            out.append({"wid": f[0].split()[1], "pid": f[1].split()[1],
                        "cpu": f[2].split()[1], "state": f[3],
                        "restarts": f[4].split()[1]})
        return out
