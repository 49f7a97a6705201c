"""`routebricks trace N` on a running router with two workers, through its control socket."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_runtime_discovery import rb, router

CONFIG = ("src :: RatedSource(DATA \\<45000014 00000000 40110000 0a000001 0a000002>, "
          "RATE 200) -> c :: Counter -> chk :: CheckIPHeader(VERBOSE false) -> Discard")


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "run"
    monkeypatch.setenv("ROUTEBRICKS_RUN_DIR", str(d))
    monkeypatch.delenv("ROUTEBRICKS_SOCKET", raising=False)
    return d


def test_trace_follows_packets_on_a_running_router(run_dir: Path) -> None:
    with router(run_dir / "tr.sock", "-j", "2", "--name", "tr", config=CONFIG):
        r = rb("trace", "3", "--wait", "30")
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert "worker 0: trace: 3 of 3 packets\n" in out
        assert "worker 1: trace: 0 of 3 packets (waiting for more)" in out  # no source there
        assert out.count("dropped: bad IP checksum") == 3
        assert out.count("c :: Counter") == 3
        assert "4500001400000000401100000a0000010a000002" in out
        assert rb("trace", "--show").stdout.startswith("worker 0: trace: 3 of 3 packets")
        assert rb("trace", "--clear").returncode == 0
        assert "trace: off" in rb("trace", "--show").stdout


def test_trace_usage_errors(run_dir: Path) -> None:
    for args, msg in ((("trace",), "give N"), (("trace", "0"), "Invalid value"),
                      (("trace", "x"), "Invalid value")):
        r = rb(*args)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    r = rb("trace", "3")
    assert r.returncode == 1 and r.stderr.startswith("no running router found")
