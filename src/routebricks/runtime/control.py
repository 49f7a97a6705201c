"""Handler access to a running router: Click's ControlSocket line protocol on a Unix socket,
and its client. What a request does once it reaches the router is
:mod:`routebricks.runtime.requests`.

Protocol (Click's ControlSocket, version 1.3): the server greets with
``Click::ControlSocket/1.3``; commands are lines ``READ handler``, ``WRITE handler value``,
``WRITEDATA handler N`` followed by N bytes, ``CHECKREAD handler``, ``CHECKWRITE handler``,
``QUIT`` (and our ``READEACH handler``: one value per worker); replies are ``200 ...``
(a read adds ``DATA n`` and n bytes), or an error code:
500 syntax, 501 unimplemented, 510 no such element, 511 no such handler, 520 handler error.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from routebricks.closing import Closing
from routebricks.errors import HandlerError, RouteBricksError
from routebricks.runtime.requests import OK, SYNTAX, UNIMPLEMENTED, Reply

GREETING = "Click::ControlSocket/1.3"


def default_socket_path() -> str:
    """Where ``run -u`` listens and the client connects when no path is given."""
    env = os.environ.get("ROUTEBRICKS_SOCKET")
    if env:
        return env
    return f"/tmp/routebricks-{os.getuid()}.sock"


# ---------------------------------------------------------------------- the socket server
Asker = Callable[[str, str, str], Reply]


class ControlServer:
    """A Unix-socket ControlSocket server; ``ask(kind, spec, value)`` answers requests."""

    def __init__(self, path: str, ask: Asker) -> None:
        self.path = path
        self.ask = ask
        p = Path(path)
        if p.exists() or p.is_symlink():
            if not stat.S_ISSOCK(p.lstat().st_mode):
                raise RouteBricksError(f"control socket path {path!r} exists and is not a "
                                       "socket")
            if alive(path):
                raise RouteBricksError(f"control socket {path!r} is in use by another router",
                                       )
            p.unlink()
        p.parent.mkdir(parents=True, exist_ok=True)
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                # A client that hangs up (e.g. a liveness probe) is not an error.
                with contextlib.suppress(ConnectionError, BrokenPipeError):
                    outer._session(self.rfile, self.wfile)

        old = os.umask(0o177)  # owner-only from the moment the socket exists
        try:
            self.server = socketserver.ThreadingUnixStreamServer(path, Handler)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="control",
                                       daemon=True)

    def start(self) -> ControlServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _session(self, rfile: Any, wfile: Any) -> None:
        def send(line: str, data: bytes | None = None) -> None:
            wfile.write(line.encode() + b"\r\n")
            if data is not None:
                wfile.write(data)
            wfile.flush()

        send(GREETING)
        while True:
            raw = rfile.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            if not line.strip():
                continue
            word, _, rest = line.strip().partition(" ")
            cmd = word.upper()
            rest = rest.strip()
            if cmd == "QUIT":
                send("200 Goodbye!")
                return
            if cmd in ("READ", "READDATA", "READEACH"):
                spec = rest.split(" ", 1)[0]
                # the whole rest: a handler may take a parameter (READ rt.lookup 10.0.0.1)
                r = self.ask("read_each" if cmd == "READEACH" else "read", rest, "")
                if r.ok:
                    data = r.text.encode()
                    send(f"200 Read handler '{spec}' OK")
                    send(f"DATA {len(data)}", data)
                else:
                    send(f"{r.code} {r.text}")
            elif cmd in ("WRITE", "WRITEDATA"):
                spec, _, value = rest.partition(" ")
                if cmd == "WRITEDATA":
                    try:
                        n = int(value)
                    except ValueError:
                        send(f"{SYNTAX} Syntax error: WRITEDATA handler LENGTH")
                        continue
                    value = rfile.read(n).decode(errors="replace")
                if not spec:
                    send(f"{SYNTAX} Syntax error: missing handler name")
                    continue
                r = self.ask("write", spec, value)
                send(f"{r.code} {r.text}")
            elif cmd in ("CHECKREAD", "CHECKWRITE"):
                r = self.ask(cmd.lower(), rest, "")
                send(f"{r.code} {r.text}")
            else:
                send(f"{UNIMPLEMENTED} Unimplemented command '{word}'")


def alive(path: str) -> bool:
    """Whether something accepts connections on the control socket at ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(0.5)
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---------------------------------------------------------------------- the client
class ControlClient(Closing):
    """Talks to a running router's control socket."""

    def __init__(self, path: str | None = None, timeout: float = 10.0) -> None:
        self.path = path or default_socket_path()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(self.path)
        except OSError as e:
            self.sock.close()
            raise RouteBricksError(
                f"cannot connect to {self.path}: {e.strerror or e} (is a router running with "
                f"'routebricks run -u {self.path}'?)") from None
        self.f = self.sock.makefile("rwb")
        greeting = self.f.readline().decode().strip()
        if not greeting.startswith("Click::ControlSocket/"):
            raise RouteBricksError(f"{self.path}: not a control socket ({greeting!r})")

    def _reply(self) -> tuple[int, str]:
        line = self.f.readline().decode().rstrip("\r\n")
        if not line:
            raise RouteBricksError("the router closed the control connection")
        code, _, text = line.partition(" ")
        return int(code), text

    def read(self, spec: str, each: bool = False) -> str:
        """A read handler's value; with ``each``, one ``worker N: value`` line per worker
        (READEACH, our extension of the protocol) instead of the combined value."""
        self.f.write(f"{'READEACH' if each else 'READ'} {spec}\r\n".encode())
        self.f.flush()
        code, text = self._reply()
        if code != OK:
            raise HandlerError(text)
        data_line = self.f.readline().decode().strip()
        n = int(data_line.split()[1])
        return self.f.read(n).decode()

    def write(self, spec: str, value: str = "") -> None:
        data = value.encode()
        self.f.write(f"WRITEDATA {spec} {len(data)}\r\n".encode() + data)
        self.f.flush()
        code, text = self._reply()
        if code != OK:
            raise HandlerError(text)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.f.write(b"QUIT\r\n")
            self.f.flush()
            self._reply()
        self.f.close()
        self.sock.close()



def wait_for_socket(path: str, timeout: float = 30.0) -> None:
    """Block until a control socket at ``path`` accepts connections (tests, scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive(path):
            return
        time.sleep(0.05)
    raise RouteBricksError(f"no control socket at {path} after {timeout:g} s")
