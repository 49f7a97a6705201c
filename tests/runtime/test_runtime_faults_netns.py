"""Faults, as an operator meets them: the supervisor SIGKILLed, a second router on the same
interfaces, a worker that hangs (SIGSTOP) or dies mid-transfer. Real namespaces, the Linux
kernel as the hosts, examples/iprouter.click as the router."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nstest import (
    PACED_CLIENT,
    SENDER,
    SERVER,
    UDP_RECEIVER,
    can_make_namespaces,
    check_transfer,
    example_testbed,
    when_ready,
)

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "examples" / "iprouter.click"

SKIP = can_make_namespaces()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


@pytest.fixture
def tb() -> Iterator[object]:
    with example_testbed() as bed:
        yield bed


def router(tb: object, *args: str, workers: int = 2) -> object:
    from routebricks.runtime.process import RouterProcess

    return RouterProcess(CONFIG, netns=tb.ns("r"), workers=workers,  # type: ignore[attr-defined]
                         args=["--kp", "64", *args])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def udp_through(tb: object, n: int = 100, flows: int = 16) -> tuple[int, int]:
    """Send n numbered datagrams from host a to host d through the router: (received,
    distinct) at d's kernel."""
    recv = tb.popen("d", [sys.executable, "-c", UDP_RECEIVER, "2"],  # type: ignore[attr-defined]
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert recv.stdout is not None and recv.stdout.readline().strip() == "ready"
        res = tb.run("a", [sys.executable, "-c", SENDER, "10.0.3.2", str(n), str(flows)],  # type: ignore[attr-defined]
                     timeout=60)
        assert res.returncode == 0, res.stderr
        out, err = recv.communicate(timeout=90)
        total, distinct = map(int, out.split())
        return total, distinct
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.communicate()


def ping_ok(tb: object, dst: str = "10.0.3.2") -> bool:
    res = tb.run("a", ["ping", "-c", "2", "-i", "0.2", "-W", "2", dst], timeout=60)  # type: ignore[attr-defined]
    return res.returncode == 0


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "routebricks.cli", *args],
                          capture_output=True, text=True, timeout=60)


def test_sigkill_of_the_supervisor_takes_its_workers_down(tb: object) -> None:
    """Reproduced on the old code: both workers kept forwarding after their supervisor was
    SIGKILLed, and a router started beside them delivered every datagram twice."""
    first = router(tb).start()
    try:
        pids = [int(w["pid"]) for w in first.workers()]
        assert len(pids) == 2 and ping_ok(tb)
        first.kill(signal.SIGKILL)
        wait_for(lambda: not any(alive(p) for p in pids), 15, "the workers to exit")
    finally:
        first.close()
    with router(tb).start():  # the devices are free again
        assert ping_ok(tb)
        total, distinct = udp_through(tb)
        assert (total, distinct) == (100, 100)  # every datagram once: nobody else forwards


def test_a_second_router_on_the_same_interfaces_is_refused(tb: object) -> None:
    from routebricks.errors import RouteBricksError

    with router(tb).start() as first:
        second = router(tb, workers=1)
        with pytest.raises(RouteBricksError) as e:
            second.start()
        second.close()
        assert f"is already driven by routebricks pid {first.pid}" in str(e.value)
        assert "Traceback" not in str(e.value)
        assert second.returncode == 1
        assert first.running() and ping_ok(tb)  # the first one is untouched


def test_a_hung_worker_is_noticed_restarted_and_has_the_current_routes(tb: object) -> None:
    with router(tb, "--watchdog", "1").start() as r:
        assert ping_ok(tb)
        # A route added now must be in the restarted worker too (it forks from the
        # control plane's copy, which every route change reaches first).
        r.write("rt.add", "10.0.9.0/24 10.0.3.2 3")
        hung = r.workers()[1]
        os.kill(int(hung["pid"]), signal.SIGSTOP)
        # While it is hung, a read gets an answer or a clear error, never a traceback.
        res = cli("handler", "read", "p3/out.count", "-u", r.socket_path)
        assert "Traceback" not in res.stderr
        assert res.returncode == 0 or "worker 1" in res.stderr, res.stderr
        wait_for(lambda: "restarted it on cpu" in r.log(), 30, "the restart")
        assert re.search(rf"worker 1 \(pid {hung['pid']}, cpu \d+\) made no progress for "
                         r"\d+\.\d s; killing it", r.log()), r.log()
        wait_for(lambda: r.workers()[1]["state"] == "running", 30, "worker 1 to run again")
        again = r.workers()[1]
        assert again["restarts"] == "1" and again["pid"] != hung["pid"]
        assert not alive(int(hung["pid"]))
        total, distinct = udp_through(tb, n=200, flows=32)  # flows on both workers again
        assert (total, distinct) == (200, 200)
        assert "10.0.9.0/24" in r.read("rt.table")
        assert r.read("rt.lookup 10.0.9.1") == "3 10.0.3.2"
        assert r.stop() == 0
        assert "worker 1 was restarted 1 time" in r.log()  # in the summary


def test_a_worker_killed_mid_transfer_is_restarted_and_tcp_completes(tb: object) -> None:
    data = secrets.token_bytes(12 * 1024 * 1024)  # sent at 1 MB/s: about 12 s
    with router(tb).start() as r:
        assert ping_ok(tb)
        with when_ready(tb.popen("d", [sys.executable, "-c", SERVER],  # type: ignore[attr-defined]
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)) as server:
            result: dict[str, subprocess.CompletedProcess[str]] = {}

            def send() -> None:
                result["client"] = tb.run(  # type: ignore[attr-defined]
                    "a", [sys.executable, "-c", PACED_CLIENT, "10.0.3.2", "1000000"],
                    input=data.hex(), timeout=240)

            t = threading.Thread(target=send)
            t.start()
            # Kill each worker in turn while the transfer runs: whichever carries the
            # connection dies under it at least once.
            for wid in (0, 1):
                time.sleep(2)
                assert t.is_alive()  # still transferring
                pid = int(r.workers()[wid]["pid"])
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda w=wid, p=pid: r.workers()[w]["state"] == "running"
                         and int(r.workers()[w]["pid"]) != p, 60, f"worker {wid} back")
            t.join(timeout=240)
            check_transfer(result["client"], server, data)
        log = r.log()
        assert re.search(r"worker 0 \(pid \d+\) died \(killed by SIGKILL\); restarted it", log)
        assert re.search(r"worker 1 \(pid \d+\) died \(killed by SIGKILL\); restarted it", log)
        assert [w["restarts"] for w in r.workers()] == ["1", "1"]


def test_without_restarts_a_dead_worker_stops_the_router_with_its_counters(tb: object) -> None:
    r = router(tb, "--no-restart").start()
    try:
        assert ping_ok(tb)
        os.kill(int(r.workers()[1]["pid"]), signal.SIGKILL)
        r.proc.wait(timeout=60)  # type: ignore[union-attr]
        log = r.log()
        assert r.proc.returncode == 1, log  # type: ignore[union-attr]
        assert "worker 1 died (killed by SIGKILL); not restarting it" in log
        assert "routebricks: stopped (worker 1 died (killed by SIGKILL))" in log
        assert re.search(r"p3/out\s+ToDevice\s+\d+", log)  # the counters were printed
        assert "Traceback" not in log
    finally:
        r.close()
