"""Managed traffic agents: a generator or a sink living in its own process, in a namespace.

Each agent is a long-lived Python process (``python -m routebricks.traffic.agents gen|sink
IFNAME``) started inside a host's network namespace and driven by one JSON line per request
on its stdin, answering one JSON line on its stdout. That keeps interpreter start-up and
numba warm-up out of measurements, and the generator, the sink and whoever drives them out
of each other's GIL. Benchmarks, the cluster's tests and ``routebricks bench`` use them::

    with GenAgent("eth0", netns="rb000001-a") as gen, SinkAgent("eth0", netns="rb000001-c") as sink:
        gen.configure(dst="10.0.2.2", dst_mac="02:00:00:00:00:01", flows=64)
        sink.start()
        sent = gen.send(rate="100k", duration=2)
        got = sink.stop()          # SinkResult.to_dict(): loss, reordering, latency, rate

An agent exits when its stdin closes (its driver went away), so none outlives a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routebricks.closing import Closing
from routebricks.errors import RouteBricksError


class AgentError(RouteBricksError):
    """An agent died, hung, or refused a request."""


class Agent(Closing):
    """A traffic agent process (``role`` gen or sink) on interface ``ifname``."""

    role = ""

    def __init__(self, ifname: str, *, netns: str | None = None, cpu: int | None = None,
                 log: str | os.PathLike[str] | None = None, timeout: float = 120.0) -> None:
        from routebricks.netns.core import popen_in_netns

        argv = [sys.executable, "-m", "routebricks.traffic.agents", self.role, ifname]
        if cpu is not None:
            argv += ["--cpu", str(cpu)]
        self._tmp = None if log else tempfile.TemporaryDirectory(prefix="rbagent-")
        self.log = Path(log) if log else Path(self._tmp.name) / f"{self.role}.log"  # type: ignore[union-attr]
        self._logf = open(self.log, "ab")  # noqa: SIM115 - closed in close()
        self.timeout = timeout
        self.proc: subprocess.Popen[str] = popen_in_netns(
            netns, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._logf,
            text=True, bufsize=1)
        try:
            self._read()  # "ready" once numba kernels are loaded
        except BaseException:
            self.close()
            raise

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        box: dict[str, Any] = {}

        def get() -> None:
            box["line"] = self.proc.stdout.readline()  # type: ignore[union-attr]

        t = threading.Thread(target=get, daemon=True)
        t.start()
        t.join(self.timeout)
        line = box.get("line")
        if not line:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise AgentError(f"{self.role} agent died or hung; its log ends with:\n{tail}")
        d = json.loads(line)
        if "error" in d:
            raise AgentError(f"{self.role} agent: {d['error']}")
        return d

    def call(self, **req: Any) -> dict[str, Any]:
        """Send one request; its answer."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise AgentError(f"{self.role} agent is gone") from None
        return self._read()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=5)
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=5)
        self._logf.close()
        if self._tmp is not None:
            self._tmp.cleanup()


class GenAgent(Agent):
    """A generator agent: :meth:`configure` the frames, then :meth:`send` them."""

    role = "gen"

    def configure(self, *, dst: str | list[int], dst_mac: str, flows: int = 1,
                  size: int | str = 64, dst_per_packet: bool = False,
                  pool_frames: int | None = None, src_ip: str | None = None,
                  order: str = "cycle") -> None:
        """What to send: destination address (or a list of host-order ints), the next
        hop's MAC, flows (source ports), frame size (bytes, 'imix' or a pattern such as
        '64,1518'), source address (default: the interface's), flow order ('cycle' or
        'random')."""
        self.call(op="spec", dst=dst, dst_mac=dst_mac, flows=flows, size=size,
                  dst_per_packet=dst_per_packet, pool_frames=pool_frames, src_ip=src_ip,
                  order=order)

    def send(self, *, rate: str | float | None, duration: float, kp: int = 32,
             count: int | None = None) -> dict[str, Any]:
        """Send for ``duration`` seconds at ``rate`` (pps, or '100k', '10Mbps', None for
        as fast as possible), or until ``count`` frames if given first;
        :class:`~routebricks.traffic.gen.GenResult` as a dict."""
        return self.call(op="send", rate=rate, duration=duration, kp=kp, count=count)


class SinkAgent(Agent):
    """A sink agent: :meth:`start` counting, :meth:`stop` for what it measured."""

    role = "sink"

    def start(self) -> None:
        self.call(op="start")

    def stop(self) -> dict[str, Any]:
        """:class:`~routebricks.traffic.sink.SinkResult` as a dict."""
        return self.call(op="stop")


# --------------------------------------------------------------------------
# The agent process
# --------------------------------------------------------------------------
@dataclass
class _GenState:
    spec: Any = None
    pool_frames: int | None = None


def _gen_agent(ifname: str) -> None:
    from routebricks.traffic.frames import AddressSpec, FrameSpec
    from routebricks.traffic.gen import Generator

    st = _GenState()
    try:
        Generator(ifname, FrameSpec(), count=0).close()  # warm up
    except (RouteBricksError, OSError) as e:
        _reply({"error": str(e)})  # e.g. no such interface: the driver's AgentError says so
        return
    _reply({"ready": True})
    for line in sys.stdin:
        req = json.loads(line)
        try:
            if req["op"] == "spec":
                dst: Any = req["dst"]
                if isinstance(dst, list):
                    dst = AddressSpec("list", tuple(int(x) for x in dst))
                st.spec = FrameSpec(dst=dst, dst_mac=req["dst_mac"], flows=int(req["flows"]),
                                    size=req.get("size", 64),
                                    dst_per_packet=bool(req.get("dst_per_packet", False)),
                                    src_ip=req.get("src_ip"),
                                    order=req.get("order", "cycle"))
                st.pool_frames = req.get("pool_frames")
                _reply({"ok": True})
            elif req["op"] == "send":
                g = Generator(ifname, st.spec, rate=req.get("rate"),
                              duration=float(req["duration"]), kp=int(req.get("kp", 32)),
                              count=None if req.get("count") is None else int(req["count"]),
                              pool_frames=st.pool_frames, progress=False)
                try:
                    res = g.run()
                finally:
                    g.close()
                _reply(res.to_dict())
            else:
                _reply({"error": f"unknown op {req['op']!r}"})
        except RouteBricksError as e:  # a bad request: its message is for the user
            _reply({"error": str(e)})
        except Exception as e:  # noqa: BLE001 - reported to the driver
            _reply({"error": repr(e)})


def _sink_agent(ifname: str) -> None:
    from routebricks.traffic.sink import Sink

    try:
        Sink(ifname, duration=0.01).close()  # warm up
    except (RouteBricksError, OSError) as e:
        _reply({"error": str(e)})
        return
    _reply({"ready": True})
    sink: Sink | None = None
    thread: threading.Thread | None = None
    box: dict[str, Any] = {}
    for line in sys.stdin:
        req = json.loads(line)
        try:
            if req["op"] == "start":
                sink = Sink(ifname, kp=1024)
                box.clear()

                def run(s: Sink = sink) -> None:
                    box["res"] = s.run()

                thread = threading.Thread(target=run, daemon=True)
                thread.start()
                _reply({"ok": True})
            elif req["op"] == "stop":
                if sink is None or thread is None:
                    _reply({"error": "the sink was not started"})
                    continue
                sink.stop()
                thread.join()
                sink.close()
                d = box["res"].to_dict()
                sink = thread = None
                _reply(d)
            else:
                _reply({"error": f"unknown op {req['op']!r}"})
        except RouteBricksError as e:  # a bad request: its message is for the user
            _reply({"error": str(e)})
        except Exception as e:  # noqa: BLE001 - reported to the driver
            _reply({"error": repr(e)})


def _reply(d: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(d) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[0] not in ("gen", "sink"):
        raise SystemExit("usage: python -m routebricks.traffic.agents gen|sink IFNAME [--cpu N]")
    role, ifname = argv[0], argv[1]
    if "--cpu" in argv:
        os.sched_setaffinity(0, {int(argv[argv.index("--cpu") + 1])})
    if role == "gen":
        _gen_agent(ifname)
    else:
        _sink_agent(ifname)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        main(sys.argv[1:])
