"""The control socket's limits and robustness against one running router: WRITEDATA is
all or nothing, lengths and lines are bounded, replies quote only short excerpts, many
clients at once are served, and no client — however broken — makes the router print a
traceback or stop answering the others."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from controltest import (
    TABLE,
    RunningRouter,
    connect,
    parse_replies,
    raise_fd_limit,
    rb,
    read_to_end,
    running_router,
    session,
)

from routebricks.runtime.control import ControlClient
from routebricks.runtime.framing import GREETING, MAX_DATA, MAX_LINE


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    raise_fd_limit()  # (before the router starts: it inherits the limit)
    with running_router(tmp_path_factory.mktemp("control")) as r:
        yield r


@pytest.fixture(autouse=True)
def quiet_router(router: RunningRouter) -> Iterator[None]:
    """After every test: the router is quiet on stderr and still answers."""
    yield
    router.assert_quiet()
    with ControlClient(router.sock) as c:
        assert int(c.read("c.count")) > 0
        assert c.read("rt.table") == TABLE


# ---------------------------------------------------------------------- WRITEDATA
@pytest.mark.parametrize("ending", ["half-close", "close", "reset"])
def test_truncated_writedata_writes_nothing(router: RunningRouter, ending: str) -> None:
    data = b"add 12.0.0.0/8 1\nremove 10.0.0.0/8\n"
    with connect(router.sock) as s:
        if ending != "reset":  # (closing with the greeting unread resets the connection)
            assert s.recv(100) == f"{GREETING}\r\n".encode()
        s.sendall(b"WRITEDATA rt.ctrl %d\r\n" % (len(data) + 10) + data)
        if ending == "half-close":
            s.shutdown(socket.SHUT_WR)
            reply = read_to_end(s)
            assert reply.startswith(b"500 ") and b"10 bytes short" in reply, reply
            assert b"nothing was written" in reply
    time.sleep(0.3)
    with ControlClient(router.sock) as c:
        assert c.read("rt.table") == TABLE  # (quiet_router checks it again)


@pytest.mark.parametrize("length", [b"-1", b"-5", b"abc", b"0x10", b"", b"1 2", b"+5",
                                    b"9" * 5000])
def test_bad_writedata_length_is_a_syntax_error(router: RunningRouter, length: bytes) -> None:
    # No length may make the router read to the end of the connection and apply that.
    out = session(router.sock, b"WRITEDATA rt.ctrl " + length + b"\r\nadd 12.0.0.0/8 1\n"
                  b"READ c.count\r\n")
    replies = parse_replies(out)
    assert [r.code for r in replies] == [500], replies  # and the connection is closed
    assert "closing the connection" in replies[0].text


def test_writedata_over_the_maximum_is_refused_before_reading(router: RunningRouter) -> None:
    with connect(router.sock, timeout=10) as s:
        s.recv(100)
        s.sendall(b"WRITEDATA rt.ctrl %d\r\n" % (MAX_DATA + 1))  # and no data at all
        reply = read_to_end(s)
    assert reply.startswith(b"500 ") and str(MAX_DATA).encode() in reply, reply


def test_complete_writedata_is_applied_whole(router: RunningRouter) -> None:
    with ControlClient(router.sock) as c:
        c.write("rt.ctrl", "add 12.0.0.0/8 1\nadd 13.0.0.0/8 1\n")
        assert "12.0.0.0/8" in c.read("rt.table") and "13.0.0.0/8" in c.read("rt.table")
        c.write("rt.ctrl", "remove 12.0.0.0/8\nremove 13.0.0.0/8\n")


def test_invalid_utf8_data_writes_nothing(router: RunningRouter) -> None:
    data = b"add 12.0.0.0/8 1 \xff\n"
    out = session(router.sock, b"WRITEDATA rt.ctrl %d\r\n%sREAD c.count\r\n" % (len(data),
                                                                                    data))
    replies = parse_replies(out)
    assert replies[0].code == 500 and "not UTF-8" in replies[0].text
    assert replies[1].code == 200 and int(replies[1].data or b"") > 0  # the session goes on


# ---------------------------------------------------------------------- lines and echoes
def test_long_command_line_is_refused_and_not_echoed(router: RunningRouter) -> None:
    out = session(router.sock, b"FROB " + b"x" * (4 * MAX_LINE) + b"\r\nREAD c.count\r\n")
    replies = parse_replies(out)
    assert [r.code for r in replies] == [500], replies
    assert f"longer than {MAX_LINE} bytes" in replies[0].text
    assert len(out) < 300


def test_replies_quote_short_printable_excerpts(router: RunningRouter) -> None:
    junk = "\x00\x1b[31m\r" + "y" * 50_000
    out = session(router.sock, (f"FROB{junk}\r\nREAD {junk}\r\nREAD c.{junk}\r\n"
                                f"WRITE c.{junk} 1\r\nCHECKREAD nosuch.{junk}\r\n").encode())
    replies = parse_replies(out)  # (every line printable, at most 400 bytes)
    assert [r.code for r in replies] == [501, 511, 511, 511, 510], replies
    assert len(out) < 2000
    assert "\\x00\\x1b[31m" in replies[0].text  # escaped, not passed through


def test_binary_garbage_and_invalid_utf8_get_error_replies(router: RunningRouter) -> None:
    out = session(router.sock, b"\xff\xfe\x00garbage\r\n\x00\x00\x00\nREAD c.count\xc3\r\n"
                  b"READ \x00\r\nREAD c.count\r\nQUIT\r\nREAD c.count\r\n")
    replies = parse_replies(out)
    assert [r.code for r in replies] == [500, 501, 500, 511, 200, 200], replies
    assert replies[-1].text == "Goodbye!"  # and nothing after QUIT is read


# ---------------------------------------------------------------------- many clients
def test_many_concurrent_clients_are_all_served(router: RunningRouter) -> None:
    # 20 threads x 20 connections each: the old backlog of 5 refused most of them.
    failures: list[str] = []

    def reader() -> None:
        for _ in range(20):
            try:
                with ControlClient(router.sock) as c:
                    int(c.read("c.count"))
            except Exception as e:  # noqa: BLE001 - collected, then asserted on
                failures.append(str(e))

    threads = [threading.Thread(target=reader) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, f"{len(failures)} of 400 failed: {failures[:3]}"


def test_thousands_of_open_connections(router: RunningRouter) -> None:
    n = 2000
    if raise_fd_limit() < n + 200:
        pytest.skip("needs a descriptor limit above 2200")
    conns: list[socket.socket] = []
    try:
        for i in range(n):
            s = connect(router.sock, timeout=30)
            conns.append(s)
            if i % 2:  # half send a request and never read the answer
                s.sendall(b"READ c.count\r\n")
        # ... while a new client is answered as usual,
        with ControlClient(router.sock) as c:
            assert int(c.read("c.count")) > 0
        for s in conns[:40]:  # ... and the early ones were served too
            s.sendall(b"QUIT\r\n")
            s.shutdown(socket.SHUT_WR)
            assert parse_replies(read_to_end(s))[-1].text == "Goodbye!"
    finally:
        for s in conns:
            s.close()


def test_clients_that_vanish_at_any_point(router: RunningRouter) -> None:
    def vanish(data: bytes, read_greeting: bool, half_close: bool) -> None:
        s = connect(router.sock)
        if read_greeting:  # (else it closes with data unread: a reset for the router)
            s.recv(100)
        with contextlib.suppress(OSError):
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        s.close()

    big = b"READ rt.table\r\n" * 5000  # answers it will never read
    for data in (b"", b"READ c.count\r\n", b"REA", b"WRITEDATA rt.ctrl 50\r\nadd", big,
                 b"WRITEDATA rt.ctrl 99999999999999\r\n", b"\x00" * 70_000):
        for read_greeting in (False, True):
            for half_close in (False, True):
                vanish(data, read_greeting, half_close)
    time.sleep(0.5)
    router.assert_quiet()  # (the old server printed a MemoryError traceback here)


# ---------------------------------------------------------------------- the command line
def test_negative_values_need_no_double_dash(router: RunningRouter) -> None:
    res = rb("handler", "write", "src.limit", "-1", "-u", router.sock)
    assert res.returncode == 0, res.stderr
    res = rb("handler", "write", "-u", router.sock, "q.capacity", "-5")
    assert res.returncode == 1 and "No such option" not in res.stderr
    assert "q.capacity" in res.stderr and "from 0 to" in res.stderr, res.stderr
    res = rb("handler", "write", "q.capacity", "--unix-sokcet", router.sock)
    assert res.returncode == 2 and "No such option" in res.stderr  # a typo is not a value
    res = rb("handler", "write", "--help")
    assert res.returncode == 0 and "ELEMENT.HANDLER" in res.stdout


def test_non_utf8_argument_is_a_one_line_error(router: RunningRouter) -> None:
    undecodable = os.fsdecode(b"\xff")  # what Python makes of the argv byte 0xff
    for args in (["write", "c.x", undecodable], ["write", "c" + undecodable, "1"],
                 ["read", "c." + undecodable]):
        res = rb("handler", *args, "-u", router.sock)
        assert res.returncode == 1, res.stderr
        assert res.stderr.count("\n") == 1 and "not UTF-8 text" in res.stderr, res.stderr
        assert "byte 0xff" in res.stderr


def test_handler_names_cannot_smuggle_commands(router: RunningRouter) -> None:
    res = rb("handler", "read", "c.count\r\nWRITE rt.flush", "-u", router.sock)
    assert res.returncode == 1 and "not a handler name" in res.stderr, res.stderr
    res = rb("handler", "write", "rt.flush 1\r\nREAD c.count", "-u", router.sock)
    assert res.returncode == 1 and "not a handler name" in res.stderr, res.stderr


def test_router_answers_while_its_control_socket_is_hammered(router: RunningRouter,
                                                             tmp_path: Path) -> None:
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                session(router.sock, os.urandom(2048) + b"\nREAD c.count\r\n", timeout=5)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        with ControlClient(router.sock) as c:
            first = int(c.read("c.count"))
            time.sleep(0.3)
            assert int(c.read("c.count")) > first  # still forwarding
    finally:
        stop.set()
        for t in threads:
            t.join()
