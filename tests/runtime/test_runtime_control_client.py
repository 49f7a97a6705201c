"""The control socket client against servers that misbehave (in-process fakes): each failure
is a one-line RouteBricksError — and `routebricks handler` prints it and exits 1 — never a
traceback; a full backlog is retried, then named as such."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from controltest import rb

from routebricks.errors import HandlerError, RouteBricksError
from routebricks.runtime.control import ControlClient
from routebricks.runtime.framing import GREETING

HELLO = f"{GREETING}\r\n".encode()
Behaviour = Callable[[socket.socket], None]


@contextlib.contextmanager
def fake_router(path: Path, behave: Behaviour, backlog: int = 16) -> Iterator[str]:
    """A Unix socket at ``path`` that treats each connection with ``behave``."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(backlog)
    listener.settimeout(0.1)
    stop = threading.Event()

    def one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            behave(conn)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield str(path)
    finally:
        stop.set()
        t.join()
        listener.close()


def until_closed(conn: socket.socket) -> None:
    while conn.recv(65536):
        pass


def wait_readable(conn: socket.socket) -> None:
    select.select([conn], [], [], 10)


def silent(conn: socket.socket) -> None:  # greets, then never answers
    conn.sendall(HELLO)
    until_closed(conn)


def mute(conn: socket.socket) -> None:  # does not even greet
    until_closed(conn)


def not_control(conn: socket.socket) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
    until_closed(conn)


def binary(conn: socket.socket) -> None:
    conn.sendall(b"\x00\xff\xfe\x16\x03\x01\x02\x00\n")
    until_closed(conn)


def reset_mid_data(conn: socket.socket) -> None:
    conn.sendall(HELLO)
    wait_readable(conn)  # the request arrives and stays unread: closing resets
    conn.sendall(b"200 Read handler 'c.count' OK\r\nDATA 100\r\n12345")


def short_data(conn: socket.socket) -> None:
    conn.sendall(HELLO)
    conn.recv(65536)
    conn.sendall(b"200 Read handler 'c.count' OK\r\nDATA 100\r\n12345")


def hang_up(conn: socket.socket) -> None:  # greets, reads the request, closes
    conn.sendall(HELLO)
    conn.recv(65536)


def bad_reply(conn: socket.socket) -> None:
    conn.sendall(HELLO)
    conn.recv(65536)
    conn.sendall(b"hello there\r\n")
    until_closed(conn)


def bad_data_line(conn: socket.socket) -> None:
    conn.sendall(HELLO)
    conn.recv(65536)
    conn.sendall(b"200 Read handler 'c.count' OK\r\nDATA lots\r\n")
    until_closed(conn)


def huge_data(conn: socket.socket) -> None:
    conn.sendall(HELLO)
    conn.recv(65536)
    conn.sendall(b"200 Read handler 'c.count' OK\r\nDATA 999999999999\r\n")
    until_closed(conn)


def endless_line(conn: socket.socket) -> None:
    conn.sendall(HELLO)
    conn.recv(65536)
    conn.sendall(b"2" * (3 << 20))
    until_closed(conn)


CASES: dict[str, tuple[Behaviour, str]] = {
    "silent": (silent, "did not answer within 0.5 s"),
    "mute": (mute, "did not answer within 0.5 s (waiting for its greeting)"),
    "not-control": (not_control, "is not a control socket (it greeted with 'SSH-2.0"),
    "binary": (binary, "is not a control socket (it greeted with '\\x00"),
    "reset": (reset_mid_data, "broke the connection (Connection reset by peer) after 5 "
              "of 100 bytes"),
    "short-data": (short_data, "closed the connection after 5 of 100 bytes of data"),
    "hang-up": (hang_up, "closed the connection before the answer to READ"),
    "bad-reply": (bad_reply, "answered 'hello there' where the answer to READ was expected"),
    "bad-data-line": (bad_data_line, "answered 'DATA lots' where a DATA line was expected"),
    "huge-data": (huge_data, "where a DATA line was expected"),
    "endless-line": (endless_line, "a line that does not end was expected"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_misbehaving_router_is_a_one_line_error(tmp_path: Path, case: str) -> None:
    behave, expected = CASES[case]
    with (fake_router(tmp_path / "fake.sock", behave) as path,
          pytest.raises(RouteBricksError) as e,
          ControlClient(path, timeout=0.5) as c):
        c.read("c.count")
    assert expected in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_router_that_hangs_up_on_a_write(tmp_path: Path) -> None:
    with (fake_router(tmp_path / "fake.sock", hang_up) as path,
          pytest.raises(RouteBricksError, match="(closed|broke) the connection .*before "
                                                "the answer to WRITEDATA"),
          ControlClient(path, timeout=2) as c):
        c.write("rt.ctrl", "add 10.0.0.0/8 1\n" * 100_000)  # more than it reads


@pytest.mark.parametrize("case", ["reset", "short-data", "not-control", "bad-data-line",
                                  "endless-line"])
def test_handler_command_prints_one_line(tmp_path: Path, case: str) -> None:
    behave, expected = CASES[case]
    with fake_router(tmp_path / "fake.sock", behave) as path:
        res = rb("handler", "read", "c.count", "-u", path, timeout=60)
    assert res.returncode == 1, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr


def test_continued_error_lines_make_one_message(tmp_path: Path) -> None:
    def two_lines(conn: socket.socket) -> None:
        conn.sendall(HELLO)
        conn.recv(65536)
        conn.sendall(b"520-rt.ctrl: line 2: bad route\r\n520   add 10.0.0.0/33 1\r\n")
        until_closed(conn)

    with (fake_router(tmp_path / "fake.sock", two_lines) as path,
          pytest.raises(HandlerError) as e, ControlClient(path, timeout=0.5) as c):
        c.write("rt.ctrl", "add 10.0.0.0/33 1")
    assert str(e.value) == "rt.ctrl: line 2: bad route\n  add 10.0.0.0/33 1"


# ---------------------------------------------------------------------- connecting
def fill_backlog(path: str) -> list[socket.socket]:
    """Connections that fill the backlog of a listener that does not accept."""
    conns = []
    for _ in range(64):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except BlockingIOError:
            s.close()
            return conns
        conns.append(s)
    raise AssertionError("the backlog never filled")


def test_full_backlog_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "busy.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(0)  # and never accepts
    conns = fill_backlog(path)
    try:
        with pytest.raises(RouteBricksError) as e:
            ControlClient(path, timeout=0.5)
        assert "is not accepting connections (backlog full?)" in str(e.value), str(e.value)
    finally:
        for s in conns:
            s.close()
        listener.close()


def test_full_backlog_is_retried(tmp_path: Path) -> None:
    path = str(tmp_path / "busy.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(0)
    conns = fill_backlog(path)

    def late_server() -> None:
        time.sleep(0.3)  # the client meets EAGAIN meanwhile
        listener.settimeout(5)
        for _ in range(len(conns) + 1):
            conn, _ = listener.accept()
            conn.sendall(HELLO + b"200 Goodbye!\r\n")  # (answers QUIT before it is sent)
            conns.append(conn)

    t = threading.Thread(target=late_server)
    t.start()
    try:
        ControlClient(path, timeout=5).close()
    finally:
        t.join()
        for s in conns:
            s.close()
        listener.close()


def test_no_router_messages(tmp_path: Path) -> None:
    missing = tmp_path / "none.sock"
    with pytest.raises(RouteBricksError, match="no router at .*: no such socket .*is a "
                                               "router running"):
        ControlClient(str(missing))
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))  # a socket file nobody listens on
    s.close()
    with pytest.raises(RouteBricksError, match="nothing listens on that socket"):
        ControlClient(str(stale))
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(RouteBricksError, match="is not a socket"):
        ControlClient(str(plain))
