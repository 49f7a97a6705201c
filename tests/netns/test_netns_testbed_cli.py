"""`routebricks testbed up/down` from the command line, and cleaning up after a run that was
killed mid-way (a router still running in the router namespace)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")


def rb(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "routebricks.cli", *args],
                          capture_output=True, text=True, timeout=timeout)


def namespaces(prefix: str) -> list[str]:
    from pyroute2 import netns

    return [n for n in netns.listnetns() if n.startswith(prefix)]


def test_up_kill_everything_then_down_leaves_nothing(tmp_path: Path) -> None:
    up = rb("testbed", "up", str(REPO / "examples" / "testbed.toml"), "--json")
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    prefix = info["prefix"]
    router = None
    try:
        assert sorted(namespaces(prefix)) == sorted(info["namespaces"].values())
        # A router runs in the router namespace; then the "test" dies without cleaning up.
        router = subprocess.Popen(
            [sys.executable, "-m", "routebricks.cli", "run",
             str(REPO / "examples" / "iprouter.click"), "--netns", info["namespaces"]["r"],
             "--workers", "2", "-u", str(tmp_path / "s.sock")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while not (tmp_path / "s.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.killpg(router.pid, signal.SIGKILL)  # the supervisor and its workers, at once
        router.wait(timeout=30)
    finally:
        down = rb("testbed", "down", prefix)
    assert down.returncode == 0, down.stderr
    assert namespaces(prefix) == []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert prefix not in links


def test_down_rejects_a_bad_prefix() -> None:
    res = rb("testbed", "down", "eth0")
    assert res.returncode == 2 and "testbed prefixes look like" in res.stderr


def test_up_reports_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[links]]\na = 'x:eth0'\nb = 'y:eth0'\n")
    res = rb("testbed", "up", str(bad))
    assert res.returncode == 1 and "bad.toml" in res.stderr


def test_up_reports_a_bad_link_rate_naming_the_link_and_the_key(tmp_path: Path) -> None:
    text = (REPO / "examples" / "testbed.toml").read_text()
    bad = tmp_path / "rate.toml"
    bad.write_text(text.replace('b = "r:eth1"', 'b = "r:eth1"\nrate = "fast"'))
    res = rb("testbed", "up", str(bad))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "rate.toml: link b:eth0 -- r:eth1: rate: bad rate 'fast'" in res.stderr


def test_up_with_a_prefix_in_use_refuses_and_leaves_the_running_testbed() -> None:
    """Reproduced on the old code: the second 'up' tore the first testbed down, then failed
    with '[Errno 17] File exists'."""
    spec = str(REPO / "examples" / "testbed.toml")
    up = rb("testbed", "up", spec, "--json")
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    prefix = info["prefix"]
    try:
        again = rb("testbed", "up", spec, "--prefix", prefix)
        assert again.returncode == 1
        assert f"testbed prefix {prefix} is in use" in again.stderr
        assert f"routebricks testbed down {prefix}" in again.stderr  # the way out
        assert "Traceback" not in again.stderr
        # The running testbed is intact: all its namespaces, and a host still has its link.
        assert sorted(namespaces(prefix)) == sorted(info["namespaces"].values())
        link = subprocess.run(["ip", "-n", info["namespaces"]["a"], "-o", "addr", "show",
                               "eth0"], capture_output=True, text=True)
        assert "10.0.0.2/24" in link.stdout
    finally:
        rb("testbed", "down", prefix)
    assert namespaces(prefix) == []


def test_down_stops_a_router_with_sigterm_first_and_says_so(tmp_path: Path) -> None:
    up = rb("testbed", "up", str(REPO / "examples" / "testbed.toml"), "--json")
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    prefix = info["prefix"]
    err = tmp_path / "router.err"
    router = None
    try:
        with open(err, "w") as f:
            router = subprocess.Popen(
                [sys.executable, "-m", "routebricks.cli", "run",
                 str(REPO / "examples" / "iprouter.click"), "--netns",
                 info["namespaces"]["r"], "--workers", "1", "-u", str(tmp_path / "s.sock"),
                 "--summary"],
                stdout=subprocess.DEVNULL, stderr=f)
        deadline = time.monotonic() + 60
        while not (tmp_path / "s.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (tmp_path / "s.sock").exists(), err.read_text()
        down = rb("testbed", "down", prefix)
        assert down.returncode == 0, down.stderr
        assert f"stopped pid {router.pid} in {info['namespaces']['r']}" in down.stdout
        assert "SIGTERM" in down.stdout and "SIGKILL" not in down.stdout
        router.wait(timeout=30)
        # Stopped as Ctrl-C stops it: the router printed its summary.
        assert "routebricks: stopped (interrupted)" in err.read_text()
    finally:
        if router is not None and router.poll() is None:
            router.kill()
            router.wait()
        rb("testbed", "down", prefix)
    assert namespaces(prefix) == []
