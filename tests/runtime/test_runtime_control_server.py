"""The control socket server in this process with a fake ``ask``: order of replies, a
failing ``ask``, messages of several lines, the cap on sessions, and closing."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from controltest import connect, parse_replies, read_to_end, session

from routebricks.errors import HandlerError
from routebricks.runtime.control import ControlClient, ControlServer
from routebricks.runtime.framing import GREETING
from routebricks.runtime.requests import OK, Reply


def fake_ask(kind: str, spec: str, value: str) -> Reply:
    time.sleep(random.uniform(0, 0.003))  # answers come back out of order between clients
    if spec.startswith("boom."):
        raise RuntimeError("a bug in ask")
    if spec.startswith("two."):
        return Reply(520, "first line\nsecond \x00 line")
    return Reply(OK, f"{kind}|{spec}|{value}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ControlServer]:
    srv = ControlServer(str(tmp_path / "ctl.sock"), fake_ask).start()
    try:
        yield srv
    finally:
        srv.close()
    assert not (tmp_path / "ctl.sock").exists()


def test_pipelined_commands_are_answered_in_order(server: ControlServer) -> None:
    def client(k: int, out: list[bool]) -> None:
        cmds = b"".join(b"READ e%d.h%d\r\nWRITE e%d.h%d v\r\n" % (k, i, k, i)
                        for i in range(50))
        replies = parse_replies(session(server.path, cmds))
        want = [f"read|e{k}.h{i}|" for i in range(50)]
        out.append([r.data.decode() for r in replies if r.data is not None] == want)

    results: list[bool] = []
    threads = [threading.Thread(target=client, args=(k, results)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 8


def test_a_failing_ask_is_an_answer_and_one_line_on_stderr(
        server: ControlServer, capfd: pytest.CaptureFixture[str]) -> None:
    with ControlClient(server.path) as c:
        with pytest.raises(HandlerError, match=r"internal error \(RuntimeError\)"):
            c.read("boom.x")
        assert c.read("e.h") == "read|e.h|"  # the server goes on
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "internal error answering read boom.x (RuntimeError: a bug in ask)" in err


def test_multi_line_error_reaches_the_client(server: ControlServer) -> None:
    with ControlClient(server.path) as c, pytest.raises(HandlerError) as e:
        c.write("two.x", "1")
    assert str(e.value) == "first line\nsecond \\x00 line"


def test_sessions_past_the_cap_wait_in_the_backlog(tmp_path: Path) -> None:
    srv = ControlServer(str(tmp_path / "ctl.sock"), fake_ask, max_sessions=2).start()
    try:
        first, second = connect(srv.path), connect(srv.path)
        third = connect(srv.path)  # queued by the kernel, not yet accepted
        for s in (first, second):
            assert s.recv(100) == f"{GREETING}\r\n".encode()
        third.settimeout(0.3)
        with pytest.raises(TimeoutError):
            third.recv(100)
        first.sendall(b"QUIT\r\n")
        assert read_to_end(first) == b"200 Goodbye!\r\n"
        third.settimeout(10)
        assert third.recv(100) == f"{GREETING}\r\n".encode()  # its turn came
        for s in (first, second, third):
            s.close()
    finally:
        srv.close()


def test_close_does_not_wait_for_clients(tmp_path: Path) -> None:
    stuck = threading.Event()

    def slow_ask(kind: str, spec: str, value: str) -> Reply:
        stuck.wait(30)
        return Reply(OK, "late")

    srv = ControlServer(str(tmp_path / "ctl.sock"), slow_ask).start()
    idle, waiting = connect(srv.path), connect(srv.path)
    waiting.sendall(b"READ a.b\r\n")
    time.sleep(0.1)
    srv.close()  # (would hang on a client if it waited for them)
    assert not Path(srv.path).exists()
    for s in (idle, waiting):
        assert read_to_end(s).startswith(f"{GREETING}\r\n".encode())
        s.close()
    stuck.set()


def test_greeting_even_to_a_client_that_sends_first(server: ControlServer) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(server.path)
    s.sendall(b"READ a.b\r\nQUIT\r\n")
    replies = parse_replies(read_to_end(s))
    assert [r.code for r in replies] == [200, 200]
    s.close()
