"""Handler access to a running router: Click's ControlSocket line protocol on a Unix socket,
and its client. What a request does once it reaches the router is
:mod:`routebricks.runtime.requests`.

Protocol (Click's ControlSocket, version 1.3): the server greets with
``Click::ControlSocket/1.3``; commands are lines ``READ handler``, ``WRITE handler value``,
``WRITEDATA handler N`` followed by N bytes, ``CHECKREAD handler``, ``CHECKWRITE handler``,
``QUIT`` (and our ``READEACH handler``: one value per worker); replies are ``200 ...``
(a read adds ``DATA n`` and n bytes), or an error code:
500 syntax, 501 unimplemented, 510 no such element, 511 no such handler, 520 handler error.
How bytes become requests, the limits on them and how replies are made safe is
:mod:`routebricks.runtime.framing`.

One thread serves every connection (as Click's ControlSocket does) and hands complete
requests to a few asker threads, so an idle or slow client costs a descriptor, not a
thread; past :data:`MAX_SESSIONS` connections (or half the descriptor limit) new ones wait
in the kernel's backlog. The client retries a full backlog briefly and turns every failure
into a one-line :class:`RouteBricksError`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import random
import re
import resource
import selectors
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from routebricks.closing import Closing
from routebricks.errors import HandlerError, RouteBricksError
from routebricks.runtime.discovery import alive, default_socket_path, socket_dir
from routebricks.runtime.framing import (
    EXCERPT,
    GREETING,
    MAX_DATA,
    MAX_LINE,
    CommandReader,
    Request,
    message,
    printable,
)
from routebricks.runtime.requests import HANDLER_ERROR, OK, SYNTAX, Reply

MAX_SESSIONS = 4096  # connections served at once (fewer if descriptors are scarce)
BACKLOG = socket.SOMAXCONN  # connections waiting to be accepted (the kernel may cap it)
ASKERS = 4  # threads that carry requests to the router
CONNECT_RETRY = 5.0  # seconds the client retries a router whose backlog is full
REFUSED_RETRY = 0.5  # ... and a socket nobody listens on yet


# ---------------------------------------------------------------------- the socket server
def check_socket_path(path: str) -> None:
    """Refuse a control socket path that is not a socket or that a live router serves."""
    p = Path(path)
    if p.exists() or p.is_symlink():
        if not stat.S_ISSOCK(p.lstat().st_mode):
            raise RouteBricksError(f"control socket path {path!r} exists and is not a "
                                   "socket")
        if alive(path):
            raise RouteBricksError(f"control socket {path!r} is in use by another router "
                                   "(give this one another --name or -u PATH)")


Asker = Callable[[str, str, str], Reply]


class _Session:
    """One client connection, as the server's thread sees it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = CommandReader()
        self.out = bytearray()
        self.busy = False  # a request is with an asker; later commands wait (order)
        self.eof = False  # the client sent all it will send
        self.closing = False  # answer what is pending, then close
        self.dead = False
        self.events = 0  # what the selector watches for


class ControlServer:
    """A ControlSocket server on a Unix socket at ``path`` or, with ``port``, on TCP
    ``127.0.0.1:port`` (Click's ``-p``; loopback only: the protocol has no
    authentication); ``ask(kind, spec, value)`` answers requests.

    One thread does all the socket work; ``ask`` runs on :data:`ASKERS` other threads (it
    may wait for the data plane). Nothing a client sends or fails to send makes it print
    a traceback or stop serving the others.
    """

    def __init__(self, path: str, ask: Asker, max_sessions: int | None = None,
                 askers: int = ASKERS, port: int | None = None) -> None:
        self.path = path
        self.port = port
        self.ask = ask
        self.max_sessions = max_sessions or _default_max_sessions()
        p = Path(path)
        if port is not None:
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        else:
            check_socket_path(path)
            if p.exists() or p.is_symlink():
                p.unlink()  # a stale socket: nobody listens
            p.parent.mkdir(parents=True, exist_ok=True)
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._jobs: queue.SimpleQueue[tuple[_Session, Request] | None] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[tuple[_Session, bytes]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self.sessions: set[_Session] = set()
        self._sel = selectors.DefaultSelector()
        self._bound = False  # the socket file exists and is ours to remove
        self._closed = False
        self._listening = False  # ... and the socket thread may accept
        self._accepting = False
        self._paused_until = 0.0
        self.thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._askers = [threading.Thread(target=self._asker, name=f"control-ask-{i}",
                                         daemon=True) for i in range(askers)]

    def start(self) -> ControlServer:
        # Threads first, the socket last: from the moment the socket exists a client (or
        # a script waiting for it) finds the router ready, not still starting threads.
        for t in (*self._askers, self.thread):
            t.start()
        old = os.umask(0o177)  # owner-only from the moment the socket exists
        try:
            if self.port is not None:
                self.listener.bind(("127.0.0.1", self.port))
            else:
                self.listener.bind(self.path)
                self._bound = True
                os.chmod(self.path, 0o600)
            self.listener.listen(BACKLOG)
        except OSError as e:
            self.close()
            where = f"TCP port {self.port}" if self.port is not None else self.path
            raise RouteBricksError(f"cannot serve the control socket on {where}: "
                                   f"{e.strerror or e}") from None
        finally:
            os.umask(old)
        self.listener.setblocking(False)
        self._listening = True
        self._wake()
        return self

    def close(self) -> None:
        if self._closed:  # (idempotent: never unlink a socket a later router made)
            return
        self._closed = True
        self._stopping.set()
        self._wake()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        for _ in self._askers:
            self._jobs.put(None)
        for s in list(self.sessions):
            self._drop(s)
        self._sel.close()
        for sock in (self.listener, self._wake_r, self._wake_w):
            sock.close()
        if self._bound:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    # -- the socket thread
    def _serve(self) -> None:
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        while not self._stopping.is_set():
            self._watch_listener()
            timeout = None  # (woken by a client, an asker, start() or close())
            if self._listening and not self._accepting and len(self.sessions) < \
                    self.max_sessions:
                timeout = max(self._paused_until - time.monotonic(), 0.0)
            for key, events in self._sel.select(timeout):
                try:
                    if key.fileobj is self.listener:
                        self._accept()
                    elif key.data is None:
                        self._collect()
                    else:
                        self._service(key.data, events)
                except Exception as e:  # noqa: BLE001 - our bug; the server keeps serving
                    _note(f"internal error serving a client ({type(e).__name__}: {e})")
                    if isinstance(key.data, _Session):
                        self._drop(key.data)

    def _watch_listener(self) -> None:
        # Past max_sessions (or out of descriptors) new clients wait in the backlog.
        want = (self._listening and len(self.sessions) < self.max_sessions
                and time.monotonic() >= self._paused_until)
        if want and not self._accepting:
            self._sel.register(self.listener, selectors.EVENT_READ, None)
        elif not want and self._accepting:
            self._sel.unregister(self.listener)
        self._accepting = want

    def _accept(self) -> None:
        for _ in range(64):  # then serve the others before accepting more
            if len(self.sessions) >= self.max_sessions:
                return
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self._paused_until = time.monotonic() + 0.1
                return
            conn.setblocking(False)
            s = _Session(conn)
            self.sessions.add(s)
            s.out += f"{GREETING}\r\n".encode()
            self._flush(s)
            self._update(s)

    def _service(self, s: _Session, events: int) -> None:
        if events & selectors.EVENT_WRITE:
            self._flush(s)
        if s.dead or not events & selectors.EVENT_READ:
            self._update(s)
            return
        try:
            data = s.sock.recv(256 * 1024)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset by the client: nothing to answer
            self._drop(s)
            return
        if data:
            s.reader.feed(data)
        else:
            s.eof = True
        self._advance(s)

    def _advance(self, s: _Session) -> None:
        """Hand the next complete request to an asker, answer what the protocol answers by
        itself; one request at a time per client, so replies keep the order of commands."""
        while not (s.busy or s.closing):
            item = s.reader.next()
            if item is None:
                break
            if isinstance(item, Request):
                s.busy = True
                self._jobs.put((s, item))
            else:
                s.out += message(item.code, item.text)
                s.closing = item.close
        if s.eof and not (s.busy or s.closing):
            left = s.reader.leftover()
            if left:  # a half-closed client may still read this
                s.out += message(SYNTAX, left)
            s.closing = True
        self._flush(s)
        self._update(s)

    def _flush(self, s: _Session) -> None:
        while s.out and not s.dead:
            try:
                n = s.sock.send(s.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the client left without reading its answers
                self._drop(s)
                return
            del s.out[:n]

    def _update(self, s: _Session) -> None:
        if s.dead:
            return
        if s.closing and not s.busy and not s.out:
            self._drop(s)
            return
        events = 0
        if not (s.busy or s.closing or s.eof) and len(s.out) < 1 << 20:
            events |= selectors.EVENT_READ
        if s.out:
            events |= selectors.EVENT_WRITE
        if events == s.events:
            return
        if not s.events:
            self._sel.register(s.sock, events, s)
        elif not events:
            self._sel.unregister(s.sock)
        else:
            self._sel.modify(s.sock, events, s)
        s.events = events

    def _drop(self, s: _Session) -> None:
        if s.dead:
            return
        s.dead = True
        if s.events:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(s.sock)
        s.sock.close()
        self.sessions.discard(s)

    def _collect(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wake_r.recv(4096):
                pass
        while True:
            try:
                s, out = self._results.get_nowait()
            except queue.Empty:
                return
            s.busy = False
            if s.dead:
                continue
            s.out += out
            try:
                self._advance(s)
            except Exception as e:  # noqa: BLE001 - our bug; the others are still served
                _note(f"internal error serving a client ({type(e).__name__}: {e})")
                self._drop(s)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            self._wake_w.send(b"\0")

    # -- the asker threads
    def _asker(self) -> None:
        while (job := self._jobs.get()) is not None:
            s, req = job
            try:
                r = self.ask(req.kind, req.spec, req.value)
            except Exception as e:  # noqa: BLE001 - our bug: the client gets an answer
                _note(f"internal error answering {req.kind} {printable(req.spec)} "
                      f"({type(e).__name__}: {e})")
                r = Reply(HANDLER_ERROR, f"internal error ({type(e).__name__})")
            if r.ok and req.kind in ("read", "read_each"):
                data = r.text.encode(errors="replace")
                name = printable(req.spec.split(" ", 1)[0])
                out = (message(OK, f"Read handler '{name}' OK")
                       + f"DATA {len(data)}\r\n".encode() + data)
            else:
                out = message(r.code, r.text)
            self._results.put((s, out))
            self._wake()


def _default_max_sessions() -> int:
    """Half the descriptors this process may open: the data plane keeps the rest."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_SESSIONS
    return max(16, min(MAX_SESSIONS, soft // 2))


def _note(text: str) -> None:
    with contextlib.suppress(Exception):
        print(f"routebricks: control socket: {text}", file=sys.stderr, flush=True)


def wait_for_socket(path: str, timeout: float = 30.0) -> None:
    """Block until a control socket at ``path`` accepts connections (tests, scripts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive(path):
            return
        time.sleep(0.05)
    raise RouteBricksError(f"no control socket at {path} after {timeout:g} s")


# ---------------------------------------------------------------------- the client
_REPLY = re.compile(r"([1-9][0-9]{2})([ -])(.*)", re.S)
_DATA = re.compile(r"DATA ([0-9]{1,12})")
MAX_REPLY_LINE = 1 << 20
MAX_READ = 1 << 30  # a DATA length past this is taken for garbage, not a handler value


class ControlClient(Closing):
    """Talks to a running router's control socket. Every failure — no router, a router
    that does not answer or hangs up, something that is not a control socket, a name or
    value that cannot be sent — is a :class:`RouteBricksError` with a one-line message;
    a handler's own refusal is a :class:`HandlerError`."""

    def __init__(self, path: str | None = None, timeout: float = 10.0,
                 name: str | None = None, port: int | None = None) -> None:
        self.timeout = timeout
        self.broken = False
        if port is not None:  # a router serving -p PORT (loopback)
            self.path = f"127.0.0.1:{port}"
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout)
            except OSError as e:
                raise RouteBricksError(f"cannot connect to the router at {self.path}: "
                                       f"{e.strerror or e} (is one running with "
                                       f"'routebricks run -p {port}'?)") from None
        else:
            self.path = path or default_socket_path(name)
            self.sock = _connect(self.path, timeout)
        self.f = self.sock.makefile("rwb")
        try:
            greeting = self._line("its greeting")
            if not greeting.startswith("Click::ControlSocket/"):
                raise RouteBricksError(f"{self.path} is not a control socket (it greeted "
                                       f"with '{printable(greeting)}')")
        except RouteBricksError:
            self._close_quietly()
            raise

    def read(self, spec: str, each: bool = False) -> str:
        """A read handler's value; with ``each``, one ``worker N: value`` line per worker
        (READEACH, our extension of the protocol) instead of the combined value."""
        _check_name(spec, params=True)
        cmd = "READEACH" if each else "READ"
        self._send(f"{cmd} {spec}\r\n".encode())
        code, text = self._reply(f"the answer to {cmd}")
        if code != OK:
            raise HandlerError(text)
        line = self._line("the DATA line")
        m = _DATA.fullmatch(line)
        if not m or int(m.group(1)) > MAX_READ:
            raise self._malformed(line, "a DATA line")
        return self._read_exact(int(m.group(1))).decode(errors="replace")

    def write(self, spec: str, value: str = "") -> None:
        _check_name(spec)
        data = _utf8(value, f"the value for {spec}")
        if len(data) > MAX_DATA:
            raise HandlerError(f"the value for {spec} is {len(data)} bytes; the control "
                               f"socket takes at most {MAX_DATA} ({MAX_DATA >> 20} MiB)")
        self._send(f"WRITEDATA {spec} {len(data)}\r\n".encode(), data)
        code, text = self._reply("the answer to WRITEDATA")
        if code != OK:
            raise HandlerError(text)

    def close(self) -> None:
        if not self.broken:
            with contextlib.suppress(OSError, RouteBricksError):
                self._send(b"QUIT\r\n")
                self._reply("the answer to QUIT")
        self._close_quietly()

    # -- the wire
    def _close_quietly(self) -> None:
        with contextlib.suppress(OSError):
            self.f.close()  # (flushing what a gone router did not take may fail)
        self.sock.close()

    def _send(self, *parts: bytes) -> None:
        try:
            for p in parts:
                self.f.write(p)
            self.f.flush()
        except TimeoutError:
            raise self._lost(f"took no request for {self.timeout:g} s") from None
        except OSError:
            # It hung up (perhaps refusing the request): its last words, if any, are read
            # next, and otherwise the reply says it closed the connection.
            pass

    def _line(self, what: str) -> str:
        try:
            raw = self.f.readline(MAX_REPLY_LINE + 2)
        except TimeoutError:
            raise self._lost(f"did not answer within {self.timeout:g} s (waiting for "
                             f"{what})") from None
        except OSError as e:
            raise self._lost(f"broke the connection ({e.strerror or e}) before {what}") from None
        if not raw.endswith(b"\n"):
            if len(raw) > MAX_REPLY_LINE:
                raise self._malformed(raw[:EXCERPT].decode(errors="replace"),
                                      "a line that does not end")
            raise self._lost(f"closed the connection before {what}")
        return raw.decode(errors="replace").rstrip("\r\n")

    def _reply(self, what: str) -> tuple[int, str]:
        """One reply's code and message (a message of several lines joined by newlines)."""
        lines: list[str] = []
        while len(lines) < 1000:
            line = self._line(what)
            m = _REPLY.fullmatch(line)
            if not m:
                raise self._malformed(line, what)
            lines.append(m.group(3))
            if m.group(2) == " ":
                return int(m.group(1)), "\n".join(lines)
        raise self._malformed(line, f"{what} (more than 1000 lines)")

    def _read_exact(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            try:
                b = self.f.read1(min(n - got, 1 << 20))
            except TimeoutError:
                raise self._lost(f"stopped sending after {got} of {n} bytes of data") from None
            except OSError as e:
                raise self._lost(f"broke the connection ({e.strerror or e}) after {got} of "
                                 f"{n} bytes of data") from None
            if not b:
                raise self._lost(f"closed the connection after {got} of {n} bytes of data")
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)

    def _lost(self, what: str) -> RouteBricksError:
        """The connection is beyond use (close() will not wait for an answer to QUIT)."""
        self.broken = True
        return RouteBricksError(f"the router at {self.path} {what}")

    def _malformed(self, line: str, what: str) -> RouteBricksError:
        self.broken = True
        return RouteBricksError(f"{self.path} answered '{printable(line)}' where {what} was "
                                "expected (is it a routebricks control socket?)")


def _check_name(spec: str, params: bool = False) -> None:
    """A handler name (with a read's parameters) that fits on one command line."""
    _utf8(spec, "the handler name")
    name = spec.split(" ", 1)[0] if params else spec
    if not name:
        raise HandlerError("no handler name given (ELEMENT.HANDLER)")
    if not spec.isprintable() or any(c.isspace() for c in name):
        raise HandlerError(f"'{printable(spec)}' is not a handler name (ELEMENT.HANDLER, no "
                           "spaces or control characters)")
    if len(spec.encode()) > MAX_LINE - 16:
        raise HandlerError(f"the handler name '{printable(spec)}' is over {MAX_LINE - 16} "
                           "bytes")


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError as e:
        c = ord(text[e.start])
        # An undecodable byte of argv arrives as a lone surrogate (surrogateescape).
        bad = f"byte 0x{c - 0xDC00:02x}" if 0xDC80 <= c <= 0xDCFF else f"character U+{c:04X}"
        raise HandlerError(f"{what} is not UTF-8 text (it holds the {bad} at position "
                           f"{e.start}); handlers take UTF-8 text") from None


def _connect(path: str, timeout: float) -> socket.socket:
    """A connected socket, retrying briefly while the router's backlog is full (EAGAIN)
    or its socket exists but is not listening yet (ECONNREFUSED)."""
    start = time.monotonic()
    delay = 0.005
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
            return s
        except OSError as e:
            s.close()
            err = e
        waited = time.monotonic() - start
        busy = isinstance(err, TimeoutError) or err.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
        refused = err.errno == errno.ECONNREFUSED and _is_socket(path)
        if (busy and waited < min(timeout, CONNECT_RETRY)) or (refused
                                                               and waited < REFUSED_RETRY):
            time.sleep(delay * random.uniform(0.5, 1.5))  # spread out a crowd of clients
            delay = min(delay * 2, 0.1)
            continue
        raise RouteBricksError(_connect_failure(path, err, busy, waited)) from None


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _connect_failure(path: str, err: OSError, busy: bool, waited: float) -> str:
    hint = ("is a router running there? 'run --name NAME' serves "
            f"{socket_dir()}/NAME.sock, 'run -u PATH' serves PATH")
    if busy:
        return (f"the router at {path} is not accepting connections (backlog full?); "
                f"gave up after {waited:.1f} s")
    if err.errno == errno.ENOENT:
        return f"no router at {path}: no such socket ({hint})"
    if err.errno in (errno.EACCES, errno.EPERM):
        return (f"cannot connect to {path}: permission denied (the control socket is "
                "owner-only: run as the router's user)")
    if err.errno == errno.ECONNREFUSED:
        if not _is_socket(path):
            return f"{path} is not a socket ({hint})"
        return f"no router at {path}: nothing listens on that socket (stale? {hint})"
    return f"cannot connect to {path}: {err.strerror or err} ({hint})"
