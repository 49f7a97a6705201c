"""The supervisor: the control plane of a router that runs worker processes.

It starts one worker per core (:mod:`routebricks.runtime.workers`), answers handler
requests, watches the workers, stops them and combines their counters. It keeps the
configured router it forked the workers from — the *control copy* — and uses it so that the
data plane never waits on the control plane:

* Reads declared ``control=True`` (a route table's ``table``, ``lookup``) are answered from
  the control copy, in the supervisor, at low CPU priority: a million-route read costs the
  workers nothing.
* Writes declared ``shared=True`` (route changes) are applied to the control copy first: a
  bad one is refused before any worker sees it. Elements that publish their state
  (``PUBLISHES_STATE``) then have their new lookup arrays copied into shared memory once,
  and every worker swaps to them between two batches; other shared writes are repeated in
  every worker. Other requests go to every worker, between two of its batches, and the
  answers are combined as each handler declares.

Fault policy (documented in the README):

* A worker that dies (a crash, a kill) is restarted on its core from the control copy, so
  it has the current routes; its last reported counters (at most one second old) are kept
  for the summary. The supervisor logs each restart on stderr and counts it (the global
  ``workers`` handler). Sources that are not devices (a pcap) are not started again.
* A worker that makes no progress for ``watchdog`` seconds (its heartbeat stops: SIGSTOP,
  a deadlock, an endless loop; compiling a kernel does not count) is killed and restarted.
* More than ``RESTART_LIMIT`` restarts within ``RESTART_WINDOW`` seconds stop the router,
  with the counters printed: a worker that keeps dying has a bug restarts will not fix.
* Requests a worker does not answer within ``ASK_TIMEOUT`` seconds get a clear error.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import itertools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import send_handle
from typing import Any

from routebricks.engine.element import Handler
from routebricks.engine.graph import Graph
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, NoSuchElement, NoSuchHandler, RouteBricksError
from routebricks.runtime.requests import (
    HANDLER_ERROR,
    NO_ELEMENT,
    NO_HANDLER,
    OK,
    Reply,
    combine,
    find_handler,
    merge_stats,
    serve_request,
)
from routebricks.runtime.workers import (
    WorkerBoard,
    WorkerOptions,
    fork_context,
    worker_cpu,
    worker_main,
)

#: Seconds a handler request waits for a worker's answer.
ASK_TIMEOUT = 5.0
#: Seconds a starting worker has to report ready (it opens devices, installs filters).
START_TIMEOUT = 120.0
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0
#: Seconds between the counter snapshots kept in case a worker dies.
STATS_PERIOD = 1.0
#: Nice value of the threads that serve control-plane requests (route table reads).
CONTROL_NICE = 10


@dataclass
class _Worker:
    wid: int
    proc: Any
    conn: Connection
    cpu: int
    started: float
    pid: int = 0
    ready: bool = False
    alive: bool = True
    done: tuple[str, bool] | None = None  # (reason, had sources)
    has_sources: bool = False
    error: str | None = None
    exit_note: str = ""
    restarts: int = 0
    last_stats: list[dict[str, Any]] | None = None
    final_stats: list[dict[str, Any]] | None = None  # sent as it left on SIGTERM
    send_lock: threading.Lock = field(default_factory=threading.Lock)


class _Box:
    """One worker's answer to one request, filled in by whichever thread reads the pipe."""

    def __init__(self, wid: int, on_reply: Callable[[Reply], None] | None = None) -> None:
        self.wid = wid
        self.reply: Reply | None = None
        self.on_reply = on_reply
        self.filled = threading.Event()

    def set(self, reply: Reply) -> None:
        self.reply = reply
        if self.on_reply is not None:
            self.on_reply(reply)
        self.filled.set()


def _log_stderr(message: str) -> None:
    print(f"routebricks: {message}", file=sys.stderr, flush=True)


class Supervisor:
    """Starts N workers, answers handler requests, keeps them running, stops them."""

    def __init__(self, graph: Graph, nworkers: int, opts: WorkerOptions,
                 template: Router, log: Callable[[str], None] = _log_stderr) -> None:
        self.graph = graph
        self.template = template
        self.n = nworkers
        self.opts = opts
        self.log = log
        self.ctx = fork_context()
        self.board = WorkerBoard(nworkers, self.ctx)
        self.workers: list[_Worker] = []
        self.instance = os.getpid() & 0xF
        self.elapsed = 0.0
        self.stop_reason: str | None = None
        self.failure: str | None = None  # why the router gave up (workers keep dying)
        self.retired: list[list[dict[str, Any]]] = []  # counters of workers that died
        self.replay: dict[str, str] = {}  # non-shared writes, for restarted workers
        self._lock = threading.RLock()  # the worker table and the pending requests
        self._pump_lock = threading.Lock()  # one thread at a time reads the pipes
        self._template_lock = threading.Lock()
        self._seq = itertools.count(1)
        self._pending: dict[int, _Box] = {}
        self._relays: list[tuple[int, str, str]] = []
        self._restart_times: collections.deque[float] = collections.deque()
        self._next_stats = 0.0
        self._stopping = False

    # ------------------------------------------------------------------ starting
    def start(self) -> None:
        """Fork the workers and wait until each has opened its devices (or failed)."""
        if self.template.freeze_gc:
            # Frozen objects are never visited by the collector, so a worker's collections
            # do not write to (and so copy) the pages it shares with its siblings.
            gc.collect()
            gc.freeze()
        for wid in range(self.n):
            self.workers.append(self._spawn(wid, restarted=False))
        deadline = time.monotonic() + START_TIMEOUT
        while any(w.alive and not w.ready and w.error is None for w in self.workers):
            if time.monotonic() > deadline:
                self.shutdown()
                raise RouteBricksError(f"workers did not start within {START_TIMEOUT:g} s")
            self._pump(0.05)
        errors = [w.error or f"worker {w.wid} exited while starting{w.exit_note}"
                  for w in self.workers if not w.ready]
        if errors:
            self.shutdown()
            raise ConfigError(errors[0])

    def _spawn(self, wid: int, restarted: bool) -> _Worker:
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(
            target=worker_main, name=f"routebricks-worker-{wid}",
            args=(self.graph, wid, self.n, child, self.opts, self.instance, self.template,
                  self.board, os.getpid(), restarted),
            daemon=True)
        with self._template_lock:  # never fork a control copy in the middle of a write
            p.start()
        child.close()
        now = time.monotonic()
        self.board.beats[wid] = now
        self.board.compiling[wid] = 0
        return _Worker(wid, p, parent, worker_cpu(wid) if self.opts.pin else -1, now)

    # ------------------------------------------------------------------ the pipes
    def _pump(self, timeout: float) -> None:
        """Read what the workers sent (any thread may call this); notice exits."""
        with self._pump_lock:
            self._pump_locked(timeout)

    def _pump_locked(self, timeout: float) -> None:
        with self._lock:
            live = [w for w in self.workers if w.alive]
        conns = {w.conn: w for w in live}
        sentinels = {w.proc.sentinel: w for w in live}
        try:
            ready = wait([*conns, *sentinels], timeout)
        except OSError:
            ready = []
        with self._lock:
            for r in ready:
                w = conns.get(r)  # type: ignore[call-overload]
                if w is not None:
                    self._read(w)
            for r in ready:
                w = sentinels.get(r)  # type: ignore[call-overload]
                if w is not None and w.alive:
                    self._read(w)  # what it said before it went
                    self._exited(w)

    def _await(self, boxes: list[_Box], deadline: float) -> None:
        """Until every box is filled or the deadline: read the pipes if no other thread
        is, else wait to be handed the answers by the one that is."""
        for b in boxes:
            while b.reply is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                if self._pump_lock.acquire(blocking=False):
                    try:
                        self._pump_locked(min(0.01, left))
                    finally:
                        self._pump_lock.release()
                else:
                    b.filled.wait(min(0.005, left))

    def _read(self, w: _Worker) -> None:
        try:
            while w.conn.poll():
                self._dispatch(w, w.conn.recv())
        except (EOFError, OSError):
            pass

    def _dispatch(self, w: _Worker, msg: Any) -> None:
        tag = msg[0]
        if tag == "reply":
            box = self._pending.pop(msg[1], None)
            if box is not None:
                box.set(msg[2])
        elif tag == "ready":
            w.ready, w.pid, w.has_sources = True, msg[1], msg[2]
            self.board.beats[w.wid] = time.monotonic()
        elif tag == "error":
            w.error = msg[1]
        elif tag == "done":
            w.done = (msg[1], msg[2])
        elif tag == "peers":
            self._relays.append((w.wid, msg[1], msg[2]))
        elif tag == "final":
            w.final_stats = msg[1]

    def _exited(self, w: _Worker) -> None:
        w.alive = False
        w.proc.join(timeout=1)
        code = w.proc.exitcode
        if code is not None and code < 0:
            w.exit_note = f" (killed by {signal.Signals(-code).name})"
        elif code:
            w.exit_note = f" (exit status {code})"
        for seq, box in list(self._pending.items()):
            if box.wid == w.wid:
                del self._pending[seq]
                box.set(Reply(HANDLER_ERROR, f"worker {w.wid} stopped while answering"
                                             f"{w.exit_note}"))
        if w.final_stats is not None:
            self.retired.append(w.final_stats)
        elif w.last_stats is not None and w.done is None:
            self.retired.append(w.last_stats)
        with contextlib.suppress(OSError):
            w.conn.close()

    def _send(self, w: _Worker, msg: Any, fd: int | None = None) -> bool:
        try:
            with w.send_lock:
                w.conn.send(msg)
                if fd is not None:
                    send_handle(w.conn, fd, w.pid)
            return True
        except (OSError, ValueError):
            return False

    def _request(self, w: _Worker, make: Callable[[int], Any], fd: int | None = None,
                 on_reply: Callable[[Reply], None] | None = None) -> _Box:
        box = _Box(w.wid, on_reply)
        seq = next(self._seq)
        with self._lock:
            self._pending[seq] = box
        if not self._send(w, make(seq), fd):
            with self._lock:
                self._pending.pop(seq, None)
            box.set(Reply(HANDLER_ERROR, f"worker {w.wid} is not running"))
        return box

    def _broadcast(self, make: Callable[[int], Any], fd: int | None = None,
                   timeout: float = ASK_TIMEOUT) -> list[Reply]:
        """Send a request to every running worker; their replies, in worker order."""
        with self._lock:
            targets = [w for w in self.workers if w.alive and w.ready]
        if not targets:
            return [Reply(HANDLER_ERROR, "no worker is running")]
        boxes = [self._request(w, make, fd) for w in targets]
        self._await(boxes, time.monotonic() + timeout)
        out = []
        for b in boxes:
            if b.reply is None:
                with self._lock:
                    for seq, pending in list(self._pending.items()):
                        if pending is b:
                            del self._pending[seq]
                out.append(Reply(HANDLER_ERROR, f"worker {b.wid} did not answer within "
                                                f"{timeout:g} s (is it hung? see the "
                                                "'workers' handler)"))
            else:
                out.append(b.reply)
        return out

    # ------------------------------------------------------------------ requests
    def ask(self, kind: str, spec: str, value: str = "") -> Reply:
        """Answer one handler request (from the control socket or the CLI)."""
        name = spec.strip().split(" ", 1)[0]
        if kind in ("read", "read_each") and name == "workers":
            return Reply(OK, self.workers_table())
        try:
            h = find_handler(self.template, spec) if kind != "stats" else None
        except NoSuchElement as e:
            return Reply(NO_ELEMENT, str(e))
        except NoSuchHandler as e:
            return Reply(NO_HANDLER, str(e))
        if kind in ("checkread", "checkwrite") or (h is not None and h.control):
            return self._on_control_copy(kind, spec, value)
        if kind == "write" and h is not None and h.changes_shared_state:
            return self._shared_write(spec, value)
        if kind == "write" and name == "hotconfig" and self.template.hotconfig_allowed:
            return self._hotconfig(value)
        replies = self._broadcast(lambda seq: ("req", seq, kind, spec, value))
        if kind == "read_each":
            bad = [r for r in replies if not r.ok]
            return bad[0] if bad else Reply(OK, "\n".join(
                f"worker {w}: {r.text.removeprefix('worker 0: ')}"
                for w, r in enumerate(replies)))
        if kind == "read":
            how = _combine_kind(name, h)
            if how == "stats":
                # Every worker's counters: the running ones', and what those that died
                # reported last. The summary never fails for want of a worker.
                rows = [json.loads(r.text) for r in replies if r.ok]
                return Reply(OK, json.dumps(merge_stats(rows + self.retired)))
            return combine(how, replies)
        bad = [r for r in replies if not r.ok]
        if kind == "write" and not bad and name not in ("stop",):
            self.replay[name] = value
        return bad[0] if bad else replies[0]

    def _on_control_copy(self, kind: str, spec: str, value: str) -> Reply:
        with _control_priority(), self._template_lock:
            return serve_request(self.template, "read" if kind == "read_each" else kind,
                                 spec, value)

    def _shared_write(self, spec: str, value: str) -> Reply:
        """Apply to the control copy first; then publish the element's new state (or
        repeat the write) in every worker."""
        from routebricks.shm import SharedArrays

        with _control_priority(), self._template_lock:
            r = serve_request(self.template, "write", spec, value)
            if not r.ok:
                return r  # refused: no worker saw it
            e = self.template.find(spec.split(".", 1)[0])
            if e.PUBLISHES_STATE:
                seg = SharedArrays.create(e.export_state(), name=f"rb-{e.name}")
                try:
                    replies = self._broadcast(
                        lambda seq: ("adopt", seq, e.name, seg.layout), fd=seg.fd)
                finally:
                    seg.close()
                    del seg
            else:
                replies = self._broadcast(lambda seq: ("req", seq, "write", spec, value))
        for w, rep in zip([w for w in self.workers if w.alive and w.ready], replies,
                          strict=False):
            if not rep.ok:
                # Its copy now differs from the control copy: restart it from the latter.
                self.log(f"worker {w.wid} failed to apply '{spec}' ({rep.text}); "
                         "restarting it with the current state")
                self._kill(w)
        return r

    def _hotconfig(self, text: str) -> Reply:
        """A new configuration: checked on the control copy first (a bad one is refused
        before any worker sees it), then swapped in by every worker between two batches,
        and made the control copy that restarted workers fork from."""
        from routebricks.engine import hotswap

        with _control_priority(), self._template_lock:
            try:
                new = hotswap.prepare(self.template, text)
            except RouteBricksError as e:
                return Reply(HANDLER_ERROR, str(e))
            if any(e.READS_DEVICES for e in new.elements.values()) != any(
                    e.READS_DEVICES for e in self.template.elements.values()):
                return Reply(HANDLER_ERROR, "new configuration refused; the old one keeps "
                             "running: it must read devices exactly when the old one does "
                             "(the workers were started for it)")
            replies = self._broadcast(lambda seq: ("req", seq, "write", "hotconfig", text))
            bad = [r for r in replies if not r.ok]
            if bad:
                # Some workers may run the new one already: restart the others from it too.
                for w, rep in zip([w for w in self.workers if w.alive and w.ready], replies,
                                  strict=False):
                    if rep.ok:
                        self._kill(w)
                return bad[0]
            hotswap.commit(self.template, new)
            self.graph = self.template.graph
        return Reply(OK, "Write handler 'hotconfig' OK")

    def workers_table(self) -> str:
        """The ``workers`` global handler: one line per worker."""
        with self._lock:
            lines = []
            for w in self.workers:
                state = ("running" if w.alive and w.ready else "starting" if w.alive
                         else "done" if w.done else "dead")
                cpu = f"cpu {w.cpu}" if w.cpu >= 0 else "cpu any"
                lines.append(f"worker {w.wid}\tpid {w.pid}\t{cpu}\t{state}\t"
                             f"restarts {w.restarts}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ running
    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def run(self) -> str:
        """Serve until the workers with sources are done or a stop is requested; keep the
        workers alive meanwhile. Returns why the router stopped."""
        t0 = time.monotonic()
        stop_deadline = None
        try:
            while True:
                if self.stop_reason is not None and not self._stopping:
                    self._stopping = True
                    stop_deadline = time.monotonic() + 30.0  # a loaded machine stops slowly
                    for w in self.workers:
                        if w.alive and w.done is None:
                            self._request(w, lambda seq: ("req", seq, "stop", "",
                                                          self.stop_reason or "stopped"))
                self._pump(0.02)
                if not self._stopping:
                    self._maintain()  # first: a dead worker is restarted, not "finished"
                if self._finished():
                    break
                if stop_deadline is not None and time.monotonic() > stop_deadline:
                    break
        finally:
            self.elapsed = time.monotonic() - t0
        reasons = [w.done[0] for w in self.workers if w.done]
        return self.stop_reason or (reasons[0] if reasons else "stopped")

    def _finished(self) -> bool:
        """Every worker is done (or gone); or the ones with sources are, and the others
        only wait for packets from devices."""
        with self._lock:
            running = [w for w in self.workers if w.alive and w.done is None]
            if not running:
                return True
            sources_done = [w for w in self.workers if w.done and w.done[1]]
            if sources_done and not any(w.has_sources for w in running):
                self.request_stop(sources_done[0].done[0])  # type: ignore[index]
        return False

    def _maintain(self) -> None:
        now = time.monotonic()
        self._watchdog(now)
        for w in list(self.workers):
            if not w.alive and w.done is None and self.stop_reason is None:
                self._restart(w, now)
        self._relay()
        if now >= self._next_stats:
            self._next_stats = now + STATS_PERIOD
            for w in self.workers:
                if w.alive and w.ready and w.done is None:
                    self._request(w, lambda seq: ("req", seq, "stats", "", ""),
                                  on_reply=_keeper(w))

    def _watchdog(self, now: float) -> None:
        limit = self.opts.watchdog
        if limit <= 0:
            return
        for w in self.workers:
            if not (w.alive and w.ready) or w.done is not None:
                continue
            if self.board.compiling[w.wid] > 0:
                continue  # numba is compiling a kernel: progress, if slow
            silent = now - self.board.beats[w.wid]
            if silent > limit:
                self.log(f"worker {w.wid} (pid {w.pid}, {_cpu(w)}) made no progress for "
                         f"{silent:.1f} s; killing it")
                self._kill(w)
                self.board.beats[w.wid] = now  # one message per hang

    def _kill(self, w: _Worker) -> None:
        with contextlib.suppress(ProcessLookupError, OSError):
            if w.pid:
                os.kill(w.pid, signal.SIGKILL)

    def _restart(self, w: _Worker, now: float) -> None:
        if not self.opts.restart:
            self.failure = f"worker {w.wid} died{w.exit_note}"
            self.log(f"{self.failure}; not restarting it (--no-restart): stopping the router")
            self.request_stop(self.failure)
            return
        while self._restart_times and now - self._restart_times[0] > RESTART_WINDOW:
            self._restart_times.popleft()
        if len(self._restart_times) >= RESTART_LIMIT:
            self.log(f"worker {w.wid} died{w.exit_note}; {RESTART_LIMIT} restarts within "
                     f"{RESTART_WINDOW:g} s already: stopping the router")
            self.failure = f"workers keep dying (worker {w.wid}{w.exit_note})"
            self.request_stop(self.failure)
            return
        self._restart_times.append(now)
        new = self._spawn(w.wid, restarted=True)
        new.restarts = w.restarts + 1
        with self._lock:
            self.workers[w.wid] = new
        self.log(f"worker {w.wid} (pid {w.pid}) died{w.exit_note}; restarted it on "
                 f"{_cpu(new)} (restart {new.restarts})")
        self._greet_when_ready(new)

    def _greet_when_ready(self, w: _Worker) -> None:
        """Wait (briefly) for a restarted worker, then replay the settings written since
        the start (its control copy has the shared state already)."""
        deadline = time.monotonic() + START_TIMEOUT
        while w.alive and not w.ready and w.error is None and time.monotonic() < deadline:
            self._pump(0.02)
        if w.error is not None:
            self.log(f"restarted worker {w.wid} failed to start: {w.error}")
            self._kill(w)
            return
        if w.ready:
            self.log(f"worker {w.wid} is running again (pid {w.pid})")
            for spec, value in self.replay.items():
                self._request(w, lambda seq, s=spec, v=value: ("req", seq, "write", s, v))

    def _relay(self) -> None:
        """Pass state one worker learned (tell_peers) to the others and the control copy."""
        while self._relays:
            src, spec, value = self._relays.pop(0)
            for w in self.workers:
                if w.wid != src and w.alive and w.ready and w.done is None:
                    self._request(w, lambda seq, s=spec, v=value: ("req", seq, "write", s, v))
            if self._template_lock.acquire(timeout=0.05):
                try:
                    serve_request(self.template, "write", spec, value)
                finally:
                    self._template_lock.release()

    # ------------------------------------------------------------------ stopping
    def shutdown(self) -> None:
        """Tell every worker to exit; kill those that do not within 15 s."""
        for w in self.workers:
            if w.alive:
                self._send(w, ("exit",))
        for w in self.workers:
            w.proc.join(timeout=15)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=5)
            with contextlib.suppress(OSError):
                w.conn.close()

    def restart_notes(self) -> list[str]:
        """One line per worker that was restarted (for the end-of-run summary)."""
        return [f"worker {w.wid} was restarted {w.restarts} time"
                f"{'s' if w.restarts != 1 else ''}" for w in self.workers if w.restarts]


def _keeper(w: _Worker) -> Callable[[Reply], None]:
    def keep(reply: Reply) -> None:
        if reply.ok:
            with contextlib.suppress(ValueError):
                w.last_stats = json.loads(reply.text)

    return keep


def _combine_kind(name: str, h: Handler | None) -> str:
    if h is None:  # a global handler
        return {"stats": "stats", "trace": "workers"}.get(name, "first")
    return h.combine


def _cpu(w: _Worker) -> str:
    return f"cpu {w.cpu}" if w.cpu >= 0 else "no pinned cpu"


@contextlib.contextmanager
def _control_priority() -> Iterator[None]:
    """Control-plane work (a million-route read) yields the CPU to the data plane: on
    Linux a thread's nice value is its own; it is restored afterwards (where allowed)."""
    if threading.current_thread() is threading.main_thread():
        yield
        return
    tid = threading.get_native_id()
    try:
        old = os.getpriority(os.PRIO_PROCESS, tid)
        if old < CONTROL_NICE:
            os.setpriority(os.PRIO_PROCESS, tid, CONTROL_NICE)
    except OSError:
        old = None
    try:
        yield
    finally:
        if old is not None and old < CONTROL_NICE:
            with contextlib.suppress(OSError):  # raising priority needs CAP_SYS_NICE
                os.setpriority(os.PRIO_PROCESS, tid, old)
