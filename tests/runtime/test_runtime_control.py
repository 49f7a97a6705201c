"""The control socket (Click's ControlSocket protocol), `routebricks handler`, `routebricks
top`, and workers' placement and counters, against routers running in subprocesses."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nstest import stop_router

from routebricks.runtime.control import ControlClient, wait_for_socket


def rb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "routebricks.cli", *args],
                          capture_output=True, text=True, timeout=120)


def start(tmp_path: Path, config: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    sock = str(tmp_path / "ctl.sock")
    p = subprocess.Popen([sys.executable, "-m", "routebricks.cli", "run", "-e", config,
                          "-u", sock, *extra], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        wait_for_socket(sock, timeout=180)
        with ControlClient(sock) as c:
            c.read("stats")  # answered: the router runs (and will take SIGINT cleanly)
    except Exception:
        p.kill()
        _, err = p.communicate()
        pytest.fail(f"router did not start: {err}")
    return p, sock


def stop(p: subprocess.Popen[str]) -> tuple[str, str]:
    return stop_router(p, timeout=120)


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def router(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int]]:
    workers = request.param
    p, sock = start(tmp_path, "src :: InfiniteSource(LENGTH 64, BURST 64) -> "
                    "c :: Counter -> cls :: Classifier(0/52, -) -> Discard; "
                    "cls [1] -> Discard", "--workers", str(workers))
    try:
        yield sock, workers
    finally:
        _, err = stop(p)
    assert p.returncode == 0, err  # a clean stop on SIGINT ...
    assert not Path(sock).exists()  # ... removes the socket


def test_socket_is_owner_only(router: tuple[str, int]) -> None:
    sock, _ = router
    mode = os.stat(sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600


def test_click_protocol_on_the_wire(router: tuple[str, int]) -> None:
    sock, _ = router
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    f = s.makefile("rwb")
    assert f.readline() == b"Click::ControlSocket/1.3\r\n"
    f.write(b"READ c.count\r\n")
    f.flush()
    assert f.readline() == b"200 Read handler 'c.count' OK\r\n"
    n = int(f.readline().split()[1])
    assert int(f.read(n)) > 0
    f.write(b"READ nosuch.count\r\n")
    f.flush()
    assert f.readline().startswith(b"510 ")
    f.write(b"READ c.nosuch\r\n")
    f.flush()
    assert f.readline().startswith(b"511 ")
    f.write(b"WRITE c.count 3\r\n")
    f.flush()
    assert f.readline().startswith(b"520 ")
    f.write(b"FROB x\r\n")
    f.flush()
    assert f.readline().startswith(b"501 ")
    f.write(b"WRITEDATA src.active 5\r\nfalse")
    f.flush()
    assert f.readline().startswith(b"200 ")
    f.write(b"READ cls.program\r\n")  # (a handler without a parameter still reads)
    f.flush()
    assert f.readline().startswith(b"200 ")
    f.read(int(f.readline().split()[1]))
    f.write(b"QUIT\r\n")
    f.flush()
    assert f.readline().startswith(b"200 ")
    s.close()


def test_handler_writes_reach_every_worker(router: tuple[str, int]) -> None:
    sock, workers = router
    with ControlClient(sock) as c:
        c.write("src.active", "false")
        time.sleep(0.2)
        c.write("c.reset")
        time.sleep(0.2)
        assert c.read("c.count") == "0"  # no worker is sending any more
        each = c.read("c.count", each=True).splitlines()
        assert each == [f"worker {w}: 0" for w in range(workers)]
        c.write("src.active", "true")
        time.sleep(0.3)
        assert int(c.read("c.count")) > 0



def test_placement_and_sums(tmp_path: Path) -> None:
    p, sock = start(tmp_path, "a :: InfiniteSource(BURST 16) -> ca :: Counter -> Discard; "
                    "b :: InfiniteSource(BURST 16) -> cb :: Counter -> Discard; "
                    "StaticThreadSched(a 0, b 1)", "--workers", "2")
    try:
        time.sleep(0.5)
        with ControlClient(sock) as c:
            a = [int(x.split(": ")[1]) for x in c.read("ca.count", each=True).splitlines()]
            b = [int(x.split(": ")[1]) for x in c.read("cb.count", each=True).splitlines()]
        assert a[0] > 0 and a[1] == 0  # a runs on worker 0 only
        assert b[0] == 0 and b[1] > 0  # b on worker 1 only
    finally:
        stop(p)


def test_handler_and_top_commands(router: tuple[str, int]) -> None:
    sock, _ = router
    res = rb("handler", "read", "c.count", "-u", sock)
    assert res.returncode == 0 and int(res.stdout) > 0
    res = rb("handler", "write", "c.reset", "-u", sock)
    assert res.returncode == 0, res.stderr
    res = rb("handler", "read", "cc.count", "-u", sock)
    assert res.returncode == 1 and "no element named 'cc'" in res.stderr
    top = rb("top", "--once", "--interval", "0.3", "-u", sock)
    assert top.returncode == 0, top.stderr
    assert "cls" in top.stdout and "Classifier" in top.stdout and "ns/pkt" in top.stdout


def test_client_without_router_explains(tmp_path: Path) -> None:
    res = rb("handler", "read", "c.count", "-u", str(tmp_path / "none.sock"))
    assert res.returncode == 1
    assert "is a router running" in res.stderr


def test_stale_socket_file_is_replaced_and_live_one_refused(tmp_path: Path) -> None:
    sock = tmp_path / "ctl.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(sock))  # a socket file nobody listens on: stale
    s.close()
    p, path = start(tmp_path, "InfiniteSource -> Discard")
    try:
        res = rb("run", "-e", "InfiniteSource -> Discard", "-u", path, "--duration", "5")
        assert res.returncode == 1 and "in use by another router" in res.stderr
    finally:
        stop(p)
