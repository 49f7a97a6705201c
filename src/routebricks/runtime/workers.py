"""Many cores the paper's way: one worker process per core (the worker's side).

Each worker is a process pinned to its core, running its own copy of the router graph built
from the same flattened configuration. Every worker opens its own receive socket on every
input device (the sockets of one device form a PACKET_FANOUT hash group: queue i = worker i)
and its own transmit socket on every output device, and runs each packet to completion: each
queue one core, each packet one core, no locks on the data path.

Sources that are not devices (FromDump, InfiniteSource, ...) run on worker 0 unless a
StaticThreadSched places them elsewhere. Counters are per worker and combined when read.

A worker never outlives its supervisor (:mod:`routebricks.runtime.supervisor`): the kernel
sends it SIGTERM when the supervisor dies, however it dies (``PR_SET_PDEATHSIG``), and it
then cleans up and leaves. It tells the supervisor it is alive by writing the time into its
slot of a shared array at every turn of its driver loop (the watchdog reads it), and marks
the slot while numba compiles a kernel (a long compile is progress, not a hang).

Messages on a worker's pipe, supervisor to worker::

    ("req", seq, kind, spec, value)   a handler request     -> ("reply", seq, Reply)
    ("adopt", seq, element, layout)   + a descriptor: swap that element's shared state to
                                      the arrays it holds    -> ("reply", seq, Reply)
    ("exit",)                         stop and leave

and worker to supervisor: ``("ready", pid, has_sources)``, ``("error", message)``,
``("done", reason, has_sources)``, ``("peers", spec, value)`` (state one worker learned that
the others need, e.g. an ARP reply), ``("final", stats)`` (its counters, as it leaves on
SIGTERM).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle
from typing import Any

from routebricks.engine.graph import Graph
from routebricks.engine.router import Router
from routebricks.errors import RouteBricksError
from routebricks.runtime import DEFAULT_WATCHDOG
from routebricks.runtime.requests import HANDLER_ERROR, OK, Reply, serve_request


@dataclass
class WorkerOptions:
    kp: int | None = None
    limit: int | None = None
    time_limit: float | None = None
    profile: bool = False
    pin: bool = True
    placement: dict[str, int] = field(default_factory=dict)  # element -> worker
    #: Seconds without progress after which a worker is killed and restarted (0: never).
    watchdog: float = DEFAULT_WATCHDOG
    #: Restart workers that die or hang (else the router stops).
    restart: bool = True


class WorkerBoard:
    """What the supervisor's watchdog reads of every worker, in shared memory: the time of
    its last loop turn and whether it is compiling a kernel."""

    def __init__(self, n: int, ctx: Any) -> None:
        self.beats = ctx.RawArray(ctypes.c_double, n)
        self.compiling = ctx.RawArray(ctypes.c_int, n)


class PipeEndpoint:
    """The data-plane end of a worker's pipe: requests are answered between batches."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.exit = False  # the supervisor is shutting down: stop, answer nothing more

    def fileno(self) -> int:
        """The pipe's descriptor: an idle worker sleeps on it beside its devices."""
        return self.conn.fileno()

    def poll(self, router: Router) -> None:
        while self.conn.poll():
            if not self.handle(router, self.conn.recv()):
                return

    def handle(self, router: Router, msg: Any) -> bool:
        """Act on one message; False once told to exit."""
        tag = msg[0]
        if tag == "exit":
            self.exit = True
            router.request_stop("supervisor exit", force=True)
            return False
        if tag == "req":
            _, seq, kind, spec, value = msg
            self.conn.send(("reply", seq, serve_request(router, kind, spec, value)))
        elif tag == "adopt":
            _, seq, name, layout = msg
            fd = recv_handle(self.conn)
            self.conn.send(("reply", seq, adopt(router, name, fd, layout)))
        return True


def adopt(router: Router, name: str, fd: int, layout: Any) -> Reply:
    """Map the shared arrays behind ``fd`` and hand them to element ``name``."""
    from routebricks.shm import SharedArrays

    try:
        seg = SharedArrays.attach(fd, layout)
        router.find(name).adopt_state(seg.arrays)
    except (RouteBricksError, OSError, ValueError) as e:
        return Reply(HANDLER_ERROR, f"{name}: cannot adopt the published state: {e}")
    return Reply(OK, f"{name}: adopted")


def pin_worker(wid: int) -> int:
    """Pin the calling process to the core of worker ``wid`` (the ``wid``-th core it may
    use, wrapping around); returns that core."""
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[wid % len(cpus)]
    os.sched_setaffinity(0, {cpu})
    return cpu


def worker_cpu(wid: int) -> int:
    """The core worker ``wid`` is pinned to."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[wid % len(cpus)]


def die_with_parent(parent: int) -> None:
    """Have the kernel send this process SIGTERM when ``parent`` dies, SIGKILL included;
    leave at once if it already has (the race between fork and prctl)."""
    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        raise SystemExit(128 + signal.SIGTERM)


def reads_devices(graph: Graph) -> bool:
    """Whether the configuration receives from network devices."""
    from routebricks.engine.registry import get_class

    return any(getattr(get_class(d.class_name), "READS_DEVICES", False)
               for d in graph.elements.values())


def _watch_compiles(board: WorkerBoard, slot: int) -> None:
    """Mark this worker's slot while numba compiles: the watchdog leaves it alone then."""
    from numba.core import event

    class CompileFlag(event.Listener):
        def on_start(self, ev: Any) -> None:
            board.compiling[slot] += 1

        def on_end(self, ev: Any) -> None:
            board.compiling[slot] = max(0, board.compiling[slot] - 1)
            board.beats[slot] = time.monotonic()

    # Under the compiler lock numba compiles, and also loads compiled kernels from its
    # disk cache (no "numba:compile" event for those): both can take a while at first use.
    event.register("numba:compiler_lock", CompileFlag())


def worker_main(graph: Graph, wid: int, n: int, conn: Connection, opts: WorkerOptions,
                instance: int, template: Router | None, board: WorkerBoard, parent: int,
                restarted: bool) -> None:
    """A worker process: configure (inherited), initialize, run, answer until told to exit."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when to stop
    # SIGTERM (the supervisor dying or exiting, a service manager stopping the process
    # group) unwinds instead of killing outright, so elements still clean up: a
    # KernelFilter's nftables table must not outlive the router.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if opts.pin:
        pin_worker(wid)
    _watch_compiles(board, wid)
    try:
        # The supervisor's configured router, inherited through fork: large read-mostly
        # state built while configuring (route tables) stays in pages shared copy-on-write
        # between workers.
        router = template if template is not None else Router(graph, profile=opts.profile)
        router.worker_id, router.nworkers, router.instance = wid, n, instance
        if opts.kp:
            router.kp = opts.kp
        _place(router, wid, n, router.placement)  # after a hotconfig: the new one's
        # A new configuration (hotconfig) places its tasks by its own StaticThreadSched
        # (none: the defaults), as its devices decide where to open sockets.
        router.after_swap = lambda r: _place(r, wid, n, r.placement)
        if restarted:
            # A source that does not resume (RESUMES: a device, a shared-memory queue)
            # would send its packets again from the start.
            once = [s for s in router.sources if not s.RESUMES]
            router.tasks = [t for t in router.tasks if all(t is not s for s in once)]
            router.sources = [s for s in router.sources if not any(s is o for o in once)]
            router.left_out = once
        router.hold = True
        router.control = endpoint = PipeEndpoint(conn)
        router.peer_write = lambda spec, value: conn.send(("peers", spec, value))
        router.heartbeat, router.heartbeat_slot = board.beats, wid
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
        run_ended(router)
        if endpoint.exit:
            return
        conn.send(("done", reason, bool(router.sources)))
        # Keep answering handler reads (final counters) until the supervisor says exit.
        while endpoint.handle(router, conn.recv()):
            pass
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the supervisor is gone: clean up and leave
    except SystemExit:
        # SIGTERM (a service manager stopping the whole process group, say): leave, but
        # hand the counters over first, so the summary still has them.
        with contextlib.suppress(OSError, ValueError):
            conn.send(("final", router.stats_rows()))
        raise
    finally:
        router.cleanup()


def run_ended(router: Router) -> None:
    """Tell the elements that hand packets to another worker (those with a ``run_ended``
    method: ToShmQueue) that this worker will push no more, before it reports done: the
    consumer there empties what is left and is done too, instead of waiting for ever."""
    for e in router.elements.values():
        ended = getattr(e, "run_ended", None)
        if ended is not None:
            ended()


def _place(router: Router, wid: int, n: int, placement: dict[str, int]) -> None:
    """Keep the tasks and sources that run on worker ``wid`` (StaticThreadSched; devices
    on every worker)."""
    router.tasks = [t for t in router.tasks if t.home_worker(placement) in (None, wid)]
    router.sources = [s for s in router.sources if s.home_worker(placement) in (None, wid)]


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


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


def fork_context() -> Any:
    """Workers are forked: they inherit the configured router (and its tables) as is."""
    return mp.get_context("fork")
