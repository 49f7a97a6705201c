"""Hot reconfiguration of a supervised router with two workers, through the control
socket as an operator does it: `routebricks handler write hotconfig "$(cat new.click)"`."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from test_runtime_discovery import rb, router

OLD = "src :: RatedSource(RATE 2000) -> c :: Counter -> rt :: RadixIPLookup(0.0.0.0/0 0) -> Discard"
NEW = ("src :: RatedSource(RATE 2000) -> c :: Counter -> c2 :: Counter -> "
       "rt :: RadixIPLookup(0.0.0.0/0 0) -> Discard")


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "run"
    monkeypatch.setenv("ROUTEBRICKS_RUN_DIR", str(d))
    monkeypatch.delenv("ROUTEBRICKS_SOCKET", raising=False)
    return d


def count(spec: str) -> int:
    r = rb("handler", "read", spec)
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


def test_hotconfig_on_every_worker_keeps_state_and_survives_restarts(run_dir: Path) -> None:
    with router(run_dir / "hs.sock", "-R", "-j", "2", "--name", "hs", config=OLD):
        assert rb("handler", "write", "rt.add", "10.0.0.0/8", "0").returncode == 0
        before = count("c.count")
        assert before > 0
        r = rb("handler", "write", "hotconfig", NEW)
        assert (r.returncode, r.stderr) == (0, "")
        assert count("c.count") >= before  # carried over, not reset
        assert "10.0.0.0/8" in rb("handler", "read", "rt.table").stdout
        deadline = time.monotonic() + 30
        while count("c2.count") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert count("c2.count") > 0
        # A worker that dies is restarted from the new configuration.
        workers = rb("handler", "read", "workers").stdout
        pid = int(re.search(r"worker 1\tpid (\d+)", workers).group(1))
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            each = rb("handler", "read", "--each", "c2.count")
            if each.returncode == 0 and "worker 1: " in each.stdout and \
                    f"pid {pid}" not in rb("handler", "read", "workers").stdout:
                break
            time.sleep(0.2)
        assert each.returncode == 0, each.stderr


def test_a_bad_hotconfig_is_refused_before_any_worker_sees_it(run_dir: Path) -> None:
    with router(run_dir / "hs.sock", "-R", "-j", "2", "--name", "hs", config=OLD):
        r = rb("handler", "write", "hotconfig",
               "src :: RatedSource(RATE 10) -> c :: Counter -> nope")
        assert r.returncode == 1
        assert r.stderr.startswith("new configuration refused; the old one keeps running:\n"
                                   "<hotconfig>:1:")
        assert "undeclared element 'nope'" in r.stderr
        r = rb("handler", "write", "hotconfig", "FromDevice(lo) -> Discard")
        assert r.returncode == 1 and "must read devices exactly when" in r.stderr
        assert rb("handler", "read", "--each", "c.count").returncode == 0
        assert "c2" not in rb("handler", "read", "list").stdout


def test_without_R_there_is_no_hotconfig_handler(run_dir: Path) -> None:
    with router(run_dir / "hs.sock", "--name", "hs", config=OLD):
        r = rb("handler", "write", "hotconfig", NEW)
        assert r.returncode == 1 and "hotconfig with -R" in r.stderr
