"""Handler access to a running router: Click's ControlSocket line protocol on a Unix socket,
its client, and the requests that travel between the control plane and the data plane.

The data plane never blocks on the control plane: a router polls its control endpoint
between batches (at most every ``POLL_INTERVAL`` seconds) and answers the requests waiting
there, so a handler write takes effect between two batches. With several workers the
supervisor sends each request to every worker and combines the answers: counters are summed,
drop tables merged by reason, other values taken from worker 0.

Protocol (Click's ControlSocket, version 1.3): the server greets with
``Click::ControlSocket/1.3``; commands are lines ``READ handler``, ``WRITE handler value``,
``WRITEDATA handler N`` followed by N bytes, ``CHECKREAD handler``, ``CHECKWRITE handler``,
``QUIT`` (and our ``READEACH handler``: one value per worker); replies are ``200 ...``
(a read adds ``DATA n`` and n bytes), or an error code:
500 syntax, 501 unimplemented, 510 no such element, 511 no such handler, 520 handler error.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import socket
import socketserver
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from routebricks.closing import Closing
from routebricks.errors import HandlerError, RouteBricksError

if TYPE_CHECKING:
    from routebricks.engine.router import Router

GREETING = "Click::ControlSocket/1.3"
POLL_INTERVAL = 0.0005  # seconds between control polls in a busy data plane

OK, SYNTAX, UNIMPLEMENTED, NO_ELEMENT, NO_HANDLER, HANDLER_ERROR = 200, 500, 501, 510, 511, 520


def default_socket_path() -> str:
    """Where ``run -u`` listens and the client connects when no path is given."""
    env = os.environ.get("ROUTEBRICKS_SOCKET")
    if env:
        return env
    return f"/tmp/routebricks-{os.getuid()}.sock"


# ---------------------------------------------------------------------- requests
@dataclass
class Reply:
    code: int
    text: str  # a value for reads, a message otherwise

    @property
    def ok(self) -> bool:
        return self.code == OK


def serve_request(router: Router, kind: str, spec: str, value: str = "") -> Reply:
    """Answer one handler request in the data-plane process (between batches)."""
    try:
        if kind in ("read", "read_each"):
            value = router.read_handler(spec)
            return Reply(OK, value if kind == "read" else f"worker 0: {value}")
        if kind == "write":
            router.write_handler(spec, value)
            return Reply(OK, f"Write handler '{spec}' OK")
        if kind == "checkread":
            h = _find_handler(router, spec)
            return Reply(OK if h is None or h.read else NO_HANDLER, f"Read handler '{spec}'")
        if kind == "checkwrite":
            h = _find_handler(router, spec)
            return Reply(OK if h is None or h.write else NO_HANDLER, f"Write handler '{spec}'")
        if kind == "stats":
            return Reply(OK, json.dumps(router.stats_rows()))
        if kind == "stop":
            router.request_stop(value or "stopped by the supervisor", force=True)
            return Reply(OK, "stopping")
    except HandlerError as e:
        msg = str(e)
        if "no element named" in msg:
            return Reply(NO_ELEMENT, msg)
        if "no handler" in msg or "no global" in msg:
            return Reply(NO_HANDLER, msg)
        return Reply(HANDLER_ERROR, msg)
    except RouteBricksError as e:
        return Reply(HANDLER_ERROR, str(e))
    return Reply(UNIMPLEMENTED, f"unknown request {kind!r}")


def _find_handler(router: Router, spec: str) -> Any:
    if "." not in spec:
        return None
    e, h = spec.split(".", 1)
    return router.find(e).handler(h)


# ---------------------------------------------------------------------- combining workers
_SUMMED = re.compile(r"(^|_)(count|drops|packets|calls|bytes|rate|queries|responses)$|"
                     r"^(length|highwater_length|byte_count|bit_rate|kernel_drops)$")


def combine(spec: str, replies: Sequence[Reply]) -> Reply:
    """One answer from every worker's answer to a read: counters summed, drop tables
    (``count<TAB>reason`` lines) merged, other values from worker 0."""
    spec = spec.split(" ", 1)[0]
    bad = [r for r in replies if not r.ok]
    if bad:
        return bad[0]
    if len(replies) == 1:
        return replies[0]
    name = spec.rsplit(".", 1)[-1]
    values = [r.text for r in replies]
    if name == "stats":
        return Reply(OK, json.dumps(merge_stats([json.loads(v) for v in values])))
    if _SUMMED.search(name):
        nums = [_number(v) for v in values]
        if all(n is not None for n in nums):
            total = sum(nums)  # type: ignore[arg-type]
            return Reply(OK, str(total) if isinstance(total, int) else f"{total:g}")
        tables = [_count_table(v) for v in values]
        if all(t is not None for t in tables):
            merged: dict[str, int] = {}
            for t in tables:
                for reason, n in t.items():  # type: ignore[union-attr]
                    merged[reason] = merged.get(reason, 0) + n
            return Reply(OK, "\n".join(f"{n}\t{r}" for r, n in sorted(merged.items())))
    return replies[0]


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def _count_table(text: str) -> dict[str, int] | None:
    out: dict[str, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        n, sep, reason = line.partition("\t")
        if not sep or not n.isdigit():
            return None
        out[reason] = out.get(reason, 0) + int(n)
    return out


def merge_stats(per_worker: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for worker in per_worker:
        for r in worker:
            t = rows.get(r["element"])
            if t is None:
                rows[r["element"]] = dict(r, drop_reasons=dict(r["drop_reasons"]))
                continue
            for k in ("calls", "packets", "drops", "self_ns"):
                t[k] = t.get(k, 0) + r.get(k, 0)
            if r.get("count") is not None:
                t["count"] = (t.get("count") or 0) + r["count"]
            for why, n in r["drop_reasons"].items():
                t["drop_reasons"][why] = t["drop_reasons"].get(why, 0) + n
    out = list(rows.values())
    for r in out:
        r["ns_per_packet"] = r["self_ns"] / r["packets"] if r["packets"] else 0.0
    return out


# ---------------------------------------------------------------------- data-plane endpoint
class ThreadEndpoint:
    """Requests from the control-socket thread to a router running in this process."""

    def __init__(self) -> None:
        self.requests: queue.Queue[tuple[str, str, str, queue.Queue[Reply]]] = queue.Queue()

    def ask(self, kind: str, spec: str, value: str = "", timeout: float = 10.0) -> Reply:
        box: queue.Queue[Reply] = queue.Queue(1)
        self.requests.put((kind, spec, value, box))
        try:
            return box.get(timeout=timeout)
        except queue.Empty:
            return Reply(HANDLER_ERROR, "the router did not answer (is it running?)")

    def poll(self, router: Router) -> None:
        while True:
            try:
                kind, spec, value, box = self.requests.get_nowait()
            except queue.Empty:
                return
            box.put(serve_request(router, kind, spec, value))


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
            if _alive(path):
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


def _alive(path: str) -> bool:
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
        if _alive(path):
            return
        time.sleep(0.05)
    raise RouteBricksError(f"no control socket at {path} after {timeout:g} s")
