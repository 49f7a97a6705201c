"""Shared pieces of the control socket tests: a router in a subprocess whose stderr goes to
a file (read at any time: no traceback may ever appear there), raw protocol sessions, and a
strict parser of what a control socket sends."""

from __future__ import annotations

import contextlib
import re
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nstest import stop_router

from routebricks.runtime.control import ControlClient, wait_for_socket
from routebricks.runtime.framing import GREETING

# A source that never stops (its counter must keep growing), a route table for
# all-or-nothing writes, a queue whose capacity refuses negative numbers.
ROUTER = ("src :: InfiniteSource(LENGTH 64, BURST 16, LIMIT -1) -> c :: Counter -> Discard; "
          "Idle -> rt :: RadixIPLookup(0.0.0.0/0 0, 10.0.0.0/8 1) -> Discard; "
          "rt[1] -> Discard; Idle -> q :: SimpleQueue -> Unqueue -> Discard")
TABLE = "0.0.0.0/0\t\t-\t\t0\n10.0.0.0/8\t\t-\t\t1\n"  # rt.table of ROUTER


def raise_fd_limit(want: int = 8192) -> int:
    """Raise this process's descriptor limit towards ``want`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def rb(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "routebricks.cli", *args],
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class RunningRouter:
    proc: subprocess.Popen[str]
    sock: str
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def assert_quiet(self) -> None:
        """Nothing a client did made the router print a traceback or an internal error."""
        err = self.stderr()
        assert "Traceback" not in err and "internal error" not in err, err


@contextlib.contextmanager
def running_router(directory: Path, config: str = ROUTER,
                   *extra: str) -> Iterator[RunningRouter]:
    sock = str(directory / "ctl.sock")
    errfile = directory / "router.stderr"
    with errfile.open("w") as err:
        p = subprocess.Popen([sys.executable, "-m", "routebricks.cli", "run", "-e", config,
                              "-u", sock, *extra], stdout=subprocess.PIPE, stderr=err,
                             text=True)
    r = RunningRouter(p, sock, errfile)
    try:
        try:
            wait_for_socket(sock, timeout=180)
            with ControlClient(sock) as c:
                c.read("stats")  # answered: the router runs (and will take SIGINT cleanly)
        except Exception:
            p.kill()
            p.wait()
            raise AssertionError(f"router did not start: {r.stderr()}") from None
        yield r
    finally:
        stop_router(p, timeout=60)


def connect(path: str, timeout: float = 10) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def session(path: str, data: bytes, timeout: float = 10) -> bytes:
    """Everything the server sends on a connection that sends ``data`` and then ends its
    side (a half-close: the server answers what came and then closes)."""
    with connect(path, timeout) as s:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(data)  # (the server may close early: a line too long)
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_WR)
        return read_to_end(s)


def read_to_end(s: socket.socket) -> bytes:
    out = bytearray()
    with contextlib.suppress(ConnectionResetError):  # a close with our data unread
        while chunk := s.recv(65536):
            out += chunk
    return bytes(out)


@dataclass
class Reply:
    code: int
    text: str  # lines of a multi-line message joined by newlines
    data: bytes | None = None  # a read's DATA


_LINE = re.compile(rb"([1-9][0-9]{2})([ -])([^\r\n]*)\r\n")
_DATA = re.compile(rb"DATA ([0-9]+)\r\n")


def parse_replies(stream: bytes, max_line: int = 400) -> list[Reply]:
    """The greeting then well-formed replies only, each line printable and short; fails
    (AssertionError) on anything else, a reply cut short included."""
    greeting = f"{GREETING}\r\n".encode()
    assert stream.startswith(greeting), stream[:200]
    pos, replies, lines = len(greeting), [], []
    while pos < len(stream):
        m = _LINE.match(stream, pos)
        assert m, f"malformed reply at {pos}: {stream[pos:pos + 200]!r}"
        text = m.group(3).decode()
        assert text.isprintable() and len(m.group(0)) <= max_line, m.group(0)[:200]
        pos = m.end()
        lines.append(text)
        if m.group(2) == b"-":
            continue
        reply = Reply(int(m.group(1)), "\n".join(lines))
        lines = []
        d = _DATA.match(stream, pos)
        if d:
            n = int(d.group(1))
            reply.data = stream[d.end():d.end() + n]
            assert len(reply.data) == n, "DATA cut short"
            pos = d.end() + n
        replies.append(reply)
    assert not lines, "a continued reply without its last line"
    return replies
