"""Many cores the paper's way: one worker process per core.

Each worker is a process pinned to its core, running its own copy of the router graph built
from the same flattened configuration. Every worker opens its own receive socket on every
input device (the sockets of one device form a PACKET_FANOUT hash group: queue i = worker i)
and its own transmit socket on every output device, and runs each packet to completion: each
queue one core, each packet one core, no locks on the data path.

Sources that are not devices (FromDump, InfiniteSource, ...) run on worker 0 unless a
StaticThreadSched places them elsewhere. Counters are per worker and summed when read.
Handler writes (route updates among them) go to every worker, between two of its batches.

The supervisor (the parent process) serves the control socket, relays handler requests to
the workers over pipes, stops them on SIGINT/SIGTERM or when the workers with sources are
done, then prints the combined counters.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from routebricks.engine.graph import Graph
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, RouteBricksError
from routebricks.runtime.requests import HANDLER_ERROR, OK, Reply, combine, serve_request


@dataclass
class WorkerOptions:
    kp: int | None = None
    limit: int | None = None
    time_limit: float | None = None
    profile: bool = False
    pin: bool = True
    placement: dict[str, int] = field(default_factory=dict)  # element -> worker


class PipeEndpoint:
    """The data-plane end of a worker's control pipe."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.exit = False  # the supervisor is shutting down: stop, answer nothing more

    def poll(self, router: Router) -> None:
        while self.conn.poll():
            msg = self.conn.recv()
            if msg[0] == "exit":
                self.exit = True
                router.request_stop("supervisor exit", force=True)
                return
            kind, spec, value = msg
            self.conn.send(serve_request(router, "read" if kind == "read_each" else kind,
                                         spec, value))


def pin_worker(wid: int) -> int:
    """Pin the calling process to the core of worker ``wid`` (the ``wid``-th core it may
    use, wrapping around); returns that core."""
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[wid % len(cpus)]
    os.sched_setaffinity(0, {cpu})
    return cpu


def reads_devices(graph: Graph) -> bool:
    """Whether the configuration receives from network devices."""
    return any(d.class_name == "FromDevice" for d in graph.elements.values())


def home_worker(e: Any, placement: dict[str, int], nworkers: int) -> int | None:
    """The worker that runs element ``e``'s task: None for every worker (devices)."""
    if e.name in placement:
        return placement[e.name] % nworkers
    if getattr(e, "EVERY_WORKER", False):
        return None
    return 0


def _worker_main(graph: Graph, wid: int, n: int, conn: Connection, opts: WorkerOptions,
                 instance: int, template: Router | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when to stop
    # SIGTERM (the supervisor's multiprocessing exiting, a service manager stopping the
    # process group) unwinds instead of killing outright, so elements still clean up: a
    # KernelFilter's nftables table must not outlive the router.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if opts.pin:
        pin_worker(wid)
    try:
        # The supervisor's configured router, inherited through fork: large read-mostly
        # state built while configuring (route tables) stays in pages shared copy-on-write
        # between workers; a route update, applied by every worker, copies only the pages
        # it changes.
        router = template if template is not None else Router(graph, profile=opts.profile)
        router.worker_id, router.nworkers, router.instance = wid, n, instance
        if opts.kp:
            router.kp = opts.kp
        mine = [t for t in router.tasks
                if home_worker(t, opts.placement, n) in (None, wid)]
        router.tasks = mine
        router.sources = [s for s in router.sources
                          if home_worker(s, opts.placement, n) in (None, wid)]
        router.hold = True
        router.control = PipeEndpoint(conn)
        router.peer_write = lambda spec, value: conn.send(("peers", spec, value))
        router.initialize()
    except RouteBricksError as e:
        conn.send(("error", str(e)))
        return
    conn.send(("ready", os.getpid(), bool(router.sources)))
    limit = None
    if opts.limit is not None:
        limit = opts.limit // n + (1 if wid < opts.limit % n else 0)
    try:
        reason = router.run(limit=limit, time_limit=opts.time_limit)
        if router.control.exit:
            return
        conn.send(("done", reason, bool(router.sources)))
        # Keep answering handler reads (final counters) until the supervisor says exit.
        while True:
            msg = conn.recv()
            if msg[0] == "exit":
                break
            kind, spec, value = msg
            conn.send(serve_request(router, "read" if kind == "read_each" else kind,
                                    spec, value))
    except (EOFError, BrokenPipeError):
        pass  # the supervisor is gone: clean up and leave
    finally:
        router.cleanup()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


class Supervisor:
    """Starts N workers, relays handler requests, stops them, combines their counters."""

    def __init__(self, graph: Graph, nworkers: int, opts: WorkerOptions,
                 template: Router | None = None) -> None:
        self.graph = graph
        self.template = template
        self.n = nworkers
        self.opts = opts
        self.ctx = mp.get_context("fork")
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        self.done: dict[int, tuple[str, bool]] = {}
        self.has_sources: dict[int, bool] = {}
        self.relays: list[tuple[int, str, str]] = []
        self.stop_reason: str | None = None
        self.instance = os.getpid() & 0xF
        self.elapsed = 0.0

    def start(self) -> None:
        if self.template is not None and self.template.freeze_gc:
            # Frozen objects are never visited by the collector, so a worker's collections
            # do not write to (and so copy) the pages it shares with its siblings.
            gc.collect()
            gc.freeze()
        for wid in range(self.n):
            parent, child = self.ctx.Pipe()
            p = self.ctx.Process(target=_worker_main, name=f"routebricks-worker-{wid}",
                                 args=(self.graph, wid, self.n, child, self.opts,
                                       self.instance, self.template), daemon=True)
            p.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(p)
        errors = []
        for wid, c in enumerate(self.conns):
            msg = self._recv(c, wid)
            if msg[0] == "error":
                errors.append(msg[1])
            else:
                self.has_sources[wid] = msg[2]
        if errors:
            self.shutdown()
            raise ConfigError(errors[0])

    def _recv(self, c: Connection, wid: int) -> Any:
        try:
            return c.recv()
        except EOFError:
            raise RouteBricksError(f"worker {wid} exited unexpectedly") from None

    def ask(self, kind: str, spec: str, value: str = "") -> Reply:
        """Send a handler request to every worker; combine the replies."""
        replies = []
        for wid, c in enumerate(self.conns):
            try:
                c.send((kind, spec, value))
                while True:
                    msg = c.recv()
                    if isinstance(msg, Reply):
                        replies.append(msg)
                        break
                    self._note(wid, msg)  # a "done" that raced with our request
            except (EOFError, BrokenPipeError, OSError):
                replies.append(Reply(HANDLER_ERROR, f"worker {wid} is not running"))
        if kind == "read_each":
            bad = [r for r in replies if not r.ok]
            return bad[0] if bad else Reply(OK, "\n".join(
                f"worker {w}: {r.text}" for w, r in enumerate(replies)))
        return combine(spec, replies) if kind == "read" else next(
            (r for r in replies if not r.ok), replies[0])

    def _note(self, wid: int, msg: Any) -> None:
        if msg[0] == "done":
            self.done[wid] = (msg[1], msg[2])
        elif msg[0] == "peers":
            self.relays.append((wid, msg[1], msg[2]))

    def _relay(self) -> None:
        """Pass state one worker learned (tell_peers) to every other worker."""
        while self.relays:
            src, spec, value = self.relays.pop(0)
            for wid, c in enumerate(self.conns):
                if wid == src or wid in self.done:
                    continue
                try:
                    c.send(("write", spec, value))
                    while not isinstance(msg := c.recv(), Reply):
                        self._note(wid, msg)
                except (EOFError, BrokenPipeError, OSError):
                    continue

    def run(self, lock: Any) -> str:
        """Wait until the workers with sources are done, or a stop request; return why."""
        t0 = time.monotonic()
        try:
            while len(self.done) < self.n:
                if self.stop_reason is not None:
                    with lock:
                        for wid, c in enumerate(self.conns):
                            if wid not in self.done:
                                self._send_stop(c)
                    self._drain(lock, timeout=30.0)  # a loaded machine stops slowly
                    break
                with lock:
                    ready = wait([c for w, c in enumerate(self.conns) if w not in self.done],
                                 timeout=0.01)
                    for c in ready:
                        wid = self.conns.index(c)
                        if c.poll():
                            self._note(wid, self._recv(c, wid))
                    self._relay()
                busy = [w for w in range(self.n) if w not in self.done]
                with_sources_done = [w for w, (_, has) in self.done.items() if has]
                if busy and with_sources_done and all(
                        not self._has_sources(w) for w in busy):
                    self.stop_reason = self.done[with_sources_done[0]][0]
        finally:
            self.elapsed = time.monotonic() - t0
        reasons = [r for r, _ in self.done.values()]
        return self.stop_reason or (reasons[0] if reasons else "stopped")

    def _has_sources(self, wid: int) -> bool:
        return self.has_sources.get(wid, False)

    def _send_stop(self, c: Connection) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            c.send(("stop", "", self.stop_reason or "stopped"))

    def _drain(self, lock: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with lock:
            while len(self.done) < self.n and time.monotonic() < deadline:
                for wid, c in enumerate(self.conns):
                    if wid in self.done:
                        continue
                    if c.poll(0.01):
                        msg = self._recv(c, wid)
                        if not isinstance(msg, Reply):
                            self._note(wid, msg)

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def shutdown(self) -> None:
        for c in self.conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                c.send(("exit",))
        for p in self.procs:
            p.join(timeout=15)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)


def default_workers(graph: Graph) -> int:
    """One per core when the configuration reads devices; one otherwise (a pcap or an
    InfiniteSource runs in one process)."""
    from routebricks.engine.registry import get_class

    classes = [get_class(d.class_name) for d in graph.elements.values()]
    if any(getattr(c, "SINGLE_PROCESS", False) for c in classes):
        return 1  # e.g. an ESP SA: its sequence numbers live in one process
    if reads_devices(graph):
        return len(os.sched_getaffinity(0))
    return 1


def check_multiworker(router: Router, nworkers: int) -> None:
    """Elements that write one file cannot run in several processes at once."""
    if nworkers <= 1:
        return
    for e in router.elements.values():
        if getattr(e, "SINGLE_PROCESS", False):
            raise e.error(f"{type(e).__name__} runs in one process only, not with "
                          f"{nworkers} workers", "use --workers 1, or send its packets "
                          "through a device instead")

