"""Every supervised router serves a control socket at a predictable path, and clients find
it: by name, as the only router running, or on Click's TCP port (``-p``). Real routers in
subprocesses; each test has its own socket directory (``$ROUTEBRICKS_RUN_DIR``)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nstest import stop_router

from routebricks.runtime.discovery import alive

SOURCE = "RatedSource(RATE 2000) -> c :: Counter -> Discard"


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "run"
    monkeypatch.setenv("ROUTEBRICKS_RUN_DIR", str(d))
    monkeypatch.delenv("ROUTEBRICKS_SOCKET", raising=False)
    return d


def rb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "routebricks.cli", *args],
                          capture_output=True, text=True, timeout=60, env=os.environ.copy())


@contextlib.contextmanager
def router(sock: Path, *args: str, config: str = SOURCE) -> Iterator[subprocess.Popen[str]]:
    p = subprocess.Popen([sys.executable, "-m", "routebricks.cli", "run", "-e", config,
                          *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while not alive(str(sock)):
            if p.poll() is not None or time.monotonic() > deadline:
                p.kill()
                raise AssertionError(f"router did not start: {p.communicate()[1]}")
            time.sleep(0.05)
        yield p
    finally:
        stop_router(p, timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_named_router_is_found_by_name_or_as_the_only_one(run_dir: Path) -> None:
    with router(run_dir / "edge.sock", "--name", "edge"):
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE((run_dir / "edge.sock").stat().st_mode) == 0o600
        assert int(rb("handler", "read", "c.count").stdout) > 0  # the only one: found
        assert int(rb("handler", "read", "--name", "edge", "c.count").stdout) > 0
        top = rb("top", "--once", "--interval", "0.2")
        assert top.returncode == 0 and "Counter" in top.stdout
        with router(run_dir / "core.sock", "--name", "core"):
            r = rb("handler", "read", "c.count")
            assert r.returncode == 1
            assert r.stderr == ("several routers are running: core, edge; choose one with "
                                "--name NAME (or -u PATH)\n")
            assert int(rb("handler", "read", "--name", "core", "c.count").stdout) > 0
        assert int(rb("handler", "read", "c.count").stdout) > 0  # edge alone again
    assert not (run_dir / "edge.sock").exists()  # removed when the router stops


def test_an_unnamed_supervised_router_is_router_then_router_pid(run_dir: Path) -> None:
    with router(run_dir / "router.sock", "-j", "2") as first:
        err_line = first.stderr.readline()
        assert err_line == ("routebricks: ready: 2 workers (cores 0, 1), control socket "
                            f"{run_dir}/router.sock\n")
        p = subprocess.Popen([sys.executable, "-m", "routebricks.cli", "run", "-e", SOURCE,
                              "-j", "2"], stderr=subprocess.PIPE, text=True)
        try:
            line = p.stderr.readline()
            assert line == ("routebricks: ready: 2 workers (cores 0, 1), control socket "
                            f"{run_dir}/router-{p.pid}.sock\n")
        finally:
            stop_router(p, timeout=60)


def test_a_name_in_use_is_refused_before_the_router_starts(run_dir: Path) -> None:
    with router(run_dir / "edge.sock", "--name", "edge"):
        r = rb("run", "-e", SOURCE, "--name", "edge", "--duration", "5")
        assert r.returncode == 1 and "ready" not in r.stderr
        assert r.stderr == (f"control socket '{run_dir}/edge.sock' is in use by another "
                            "router (give this one another --name or -u PATH)\n")
        assert int(rb("handler", "read", "c.count").stdout) > 0  # the first one unharmed


def test_a_killed_routers_socket_is_replaced(run_dir: Path) -> None:
    with router(run_dir / "edge.sock", "--name", "edge", "--no-restart") as p:
        p.send_signal(signal.SIGKILL)  # the supervisor: its workers follow (PDEATHSIG)
        p.wait(timeout=30)
        assert stat.S_ISSOCK((run_dir / "edge.sock").lstat().st_mode)  # left behind
        r = rb("handler", "read", "c.count")
        assert r.returncode == 1 and r.stderr.startswith("no running router found")
    with router(run_dir / "edge.sock", "--name", "edge"):
        assert int(rb("handler", "read", "--name", "edge", "c.count").stdout) > 0


def test_tcp_port_speaks_clicks_protocol_on_loopback_only(run_dir: Path) -> None:
    port = free_port()
    with router(run_dir / "edge.sock", "--name", "edge", "-p", str(port)):
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                                   text=True, check=True).stdout.split()
        assert f"127.0.0.1:{port}" in listening, listening
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"READ c.count\r\nQUIT\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        lines = data.decode().split("\r\n")
        assert lines[0] == "Click::ControlSocket/1.3"
        assert lines[1] == "200 Read handler 'c.count' OK"
        assert lines[2].startswith("DATA ")
        assert int(rb("handler", "read", "-p", str(port), "c.count").stdout) > 0


def test_a_run_over_files_serves_no_socket_unless_asked(run_dir: Path) -> None:
    r = rb("run", "-e", "InfiniteSource(LIMIT 10, STOP true) -> Discard")
    assert r.returncode == 0 and r.stderr == ""
    assert not run_dir.exists() or not list(run_dir.iterdir())
    r = rb("handler", "read", "c.count")
    assert r.returncode == 1 and r.stderr == (
        f"no running router found (no live control socket in {run_dir}): start one with "
        "'routebricks run' (a run that reads no device serves a socket with --name or -u), "
        "or give its socket with -u PATH\n")


@pytest.mark.parametrize("name", ["../x", "", "a b", "-x", "x" * 65])
def test_bad_names_are_refused(run_dir: Path, name: str) -> None:
    for args in (("run", "-e", SOURCE, "--name", name, "--duration", "1"),
                 ("handler", "read", "--name", name, "c.count")):
        r = rb(*args)
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert "bad router name" in r.stderr or "Error" in r.stderr, r.stderr
