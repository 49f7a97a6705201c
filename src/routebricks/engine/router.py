"""The router: elements instantiated from a graph, checked, bound, and driven.

Building a router goes through fixed steps, and every configuration error surfaces before any
packet moves: instantiate the classes; parse each element's arguments; check port numbers and
that every port is connected; decide push or pull for agnostic ports and reject push/pull
mismatches; bind each connection to the neighbour's method; initialize elements (open files,
sockets). Then :meth:`Router.run` drives the task elements round-robin.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import os
import select
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from routebricks.engine import addresses, clock
from routebricks.engine.argtext import split_args
from routebricks.engine.element import PUSH, Element
from routebricks.engine.graph import Connection, ElementDecl, Graph
from routebricks.engine.loops import check_calls
from routebricks.engine.ports import check_ports, resolve_modes
from routebricks.engine.profiling import instrument, stats_rows
from routebricks.engine.registry import class_exists, class_names, get_class
from routebricks.engine.source import DEFAULT_KP
from routebricks.errors import (
    ConfigError,
    NoSuchElement,
    NoSuchHandler,
)
from routebricks.packet import kernels as _packet_kernels

VERSION = "0.1.0"
CONTROL_POLL_INTERVAL = 0.0005  # seconds; handler requests wait at most this long
#: Seconds a router with nothing to do keeps polling before it sleeps (``run --spin``).
DEFAULT_IDLE_SPIN = 0.02
#: The longest an idle router sleeps when only devices (and handler requests) can wake it:
#: each wake-up costs a pass over every task, so waking every ms keeps an idle router busy.
DEVICE_IDLE_WAIT = 0.01


class Router:
    """A running (or runnable) router built from a flattened :class:`Graph`."""

    def __init__(
        self, graph: Graph, elements: dict[str, Element] | None = None, profile: bool = False,
        warnings: bool = True,
    ) -> None:
        self.graph = graph
        self.elements: dict[str, Element] = {}
        self.connections: list[Connection] = list(graph.connections)
        self.profile = profile
        self.budget: int | None = None  # packets sources may still emit (--limit)
        self.stop_reason: str | None = None
        self._running = False
        self._pending_stop: str | None = None
        self.started_at = 0.0
        self._kp = DEFAULT_KP
        #: Whether kp was set (--kp, or ``router.kp = N``): it then applies to every source
        #: without a BURST, memory sources included (see Source.MEMORY_KP).
        self.kp_set = False
        self.warnings = warnings  # -w turns configuration warnings off
        # Poll without sleeping this long after a device's last packet (--spin): a sleeping core
        # may wake late (a virtual CPU waits for its host; tens of ms seen here), and
        # while it sleeps the receive rings fill. Poll-mode drivers never sleep at all.
        self.idle_spin: float = DEFAULT_IDLE_SPIN
        # Freeze everything made so far out of the garbage collector when run() starts.
        # For a process that is the router (routebricks run, its workers); off for library
        # use, where frozen cycles of routers run earlier would never be collected.
        self.freeze_gc = False
        self.worker_id = 0  # this process's worker number (runtime.workers)
        self.nworkers = 1
        self.instance = 0  # distinguishes routers on one machine (fanout group ids)
        self.control: Any = None  # endpoint polled between batches (runtime.requests)
        # Shared array the supervisor's watchdog reads: slot ``heartbeat_slot`` gets the
        # monotonic time at every turn of the driver loop (a worker making progress).
        self.heartbeat: Any = None
        self.heartbeat_slot = 0
        self.peer_write: Callable[[str, str], None] | None = None  # set in workers
        self.placement: dict[str, int] = {}  # element -> worker (StaticThreadSched)
        # Sources a restarted worker does not run again (they would repeat their packets).
        self.left_out: list[Element] = []
        self.hold = False  # without sources of its own, run until told to stop (workers)
        self.elapsed = 0.0
        self.stop_listener: Callable[[str], bool] | None = None  # DriverManager
        self.hotconfig_allowed = False  # Click's -R: the hotconfig write handler
        self._pending_swap: Router | None = None  # a new configuration, swapped in next turn
        self.after_swap: Callable[[Router], None] | None = None  # (workers: placement)
        self.tracer: Any = None  # a packet trace being recorded (engine.trace)
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._child_ns = 0
        self.tasks: list[Element] = []
        self.sources: list[Element] = []
        self._initialized = False
        self._build(elements or {})

    @property
    def kp(self) -> int:
        """Packets per poll for sources without a BURST (--kp; the paper's kp)."""
        return self._kp

    @kp.setter
    def kp(self, value: int) -> None:
        self._kp = int(value)
        self.kp_set = True

    # ------------------------------------------------------------------ building
    @classmethod
    def from_text(
        cls,
        text: str,
        filename: str = "<config>",
        *,
        extra: str | None = None,
        profile: bool = False,
        base_dir: str | Path | None = None,
    ) -> Router:
        return cls(parse_text(text, filename, extra=extra, base_dir=base_dir), profile=profile)

    @classmethod
    def from_file(
        cls, path: str | Path, *, extra: str | None = None, profile: bool = False
    ) -> Router:
        return cls(parse_file(path, extra=extra), profile=profile)

    @classmethod
    def from_elements(cls, *elements: Element, profile: bool = False) -> Router:
        """Python API: the router made of ``elements`` and everything connected to them."""
        seen: dict[int, Element] = {}
        order: list[Element] = []
        todo = list(elements)
        while todo:
            e = todo.pop(0)
            if id(e) in seen:
                continue
            seen[id(e)] = e
            order.append(e)
            todo.extend(dst for _, dst, _ in e._py_edges)
            todo.extend(src for src, _, _ in e._py_edges_in)
        counter = itertools.count(1)
        names: set[str] = {e.name for e in order if e.name}
        for e in order:
            if not e.name:
                n = f"{type(e).__name__}@{next(counter)}"
                while n in names:
                    n = f"{type(e).__name__}@{next(counter)}"
                e.name = n
                names.add(n)
        g = Graph()
        inst: dict[str, Element] = {}
        for e in order:
            if e.name in g.elements:
                raise ConfigError(
                    f"two elements are named {e.name!r}", hint="give each element a unique name="
                )
            g.elements[e.name] = ElementDecl(e.name, type(e).__name__, e.config)
            inst[e.name] = e
        for e in order:
            for sport, dst, dport in e._py_edges:
                g.connections.append(Connection(e.name, sport, dst.name, dport))
        return cls(g, inst, profile=profile)

    def _build(self, given: dict[str, Element]) -> None:
        errors: list[ConfigError] = []
        for name, d in self.graph.elements.items():
            e = given.get(name)
            if e is None:
                klass = get_class(d.class_name)
                if klass is None:
                    errors.append(ConfigError(f"unknown element class {d.class_name!r}", d.pos))
                    continue
                e = klass.from_config(d.config, name, d.pos)
            e.pos = e.pos or d.pos
            e.router = self
            self.elements[name] = e
        if errors:
            raise _combine(errors, self.graph.sources)
        names = self._address_names(errors)
        if errors:  # a bad AddressInfo: the names other elements use are not known
            raise _combine(errors, self.graph.sources)
        for e in self.elements.values():
            try:
                # AddressInfo names visible from this element, while it reads addresses.
                with addresses.names_for(addresses.visible(names, e.name) if names else {}):
                    e.parse_config()
                    e.configure()
            except ConfigError as err:
                errors.append(err)
        if errors:
            raise _combine(errors, self.graph.sources)
        check_ports(self.elements, self.connections, errors)
        if errors:
            raise _combine(errors, self.graph.sources)
        resolve_modes(self.elements, self.connections, errors)
        if errors:
            raise _combine(errors, self.graph.sources)
        if self.profile:
            for e in self.elements.values():
                instrument(self, e)
        # Cycles of push/pull calls: refused if packets can only loop, else guarded.
        errors.extend(check_calls(self))
        if errors:
            raise _combine(errors, self.graph.sources)
        self._bind()
        self.tasks = [e for e in self.elements.values() if e.wants_task()]
        self.sources = [e for e in self.elements.values() if e.IS_SOURCE]

    def _address_names(self, errors: list[ConfigError]) -> dict[str, dict[str, Any]]:
        """Every AddressInfo's names, by compound level, read before any element is
        configured: a name may be used before its AddressInfo is declared."""
        tables: dict[str, dict[str, Any]] = {}
        for e in self.elements.values():
            if not getattr(e, "DEFINES_ADDRESS_NAMES", False):
                continue
            entries = [(e.name, a) for a in split_args(e.config) if a.strip()]
            try:
                for scope, names in addresses.scoped_tables(entries).items():
                    tables.setdefault(scope, {}).update(names)
            except ValueError as err:
                errors.append(e.error(str(err), "write NAME ADDRESS [ADDRESS...]"))
        return tables


    def _bind(self) -> None:
        for e in self.elements.values():
            e._out = [None] * e.noutputs
            e._out_port = [0] * e.noutputs
            e._in = [None] * e.ninputs
            e._in_port = [0] * e.ninputs
        for c in self.connections:
            s, d = self.elements[c.src], self.elements[c.dst]
            if s.output_modes[c.sport] == PUSH:
                s._out[c.sport] = d.push
                s._out_port[c.sport] = c.dport
            else:
                d._in[c.dport] = s.pull
                d._in_port[c.dport] = c.sport

    def initialize(self) -> None:
        if self._initialized:
            return
        done: list[Element] = []
        try:
            for e in self.elements.values():
                e.initialize()
                done.append(e)
            # Compile the kernels now, not on the first batch (seconds on a cold cache).
            warmups = [_packet_kernels.warmup] if done else []
            warmups += [w for e in done for w in e.JIT_WARMUP]
            for warm in dict.fromkeys(warmups):
                warm()
            for e in done:
                e.finish_initialize()
        except BaseException:
            # Undo what the others set up (sockets, KernelFilter's nftables table), whatever
            # stopped us: a configuration error, Ctrl-C, a failing system call.
            for e in reversed(done):
                e.cleanup()
            raise
        self._initialized = True

    def cleanup(self) -> None:
        if not self._initialized:
            return
        for e in reversed(list(self.elements.values())):
            e.cleanup()
        self._initialized = False

    # ------------------------------------------------------------------ queries
    def find(self, name: str) -> Element:
        e = self.elements.get(name)
        if e is None:
            import difflib

            close = difflib.get_close_matches(name, list(self.elements), n=3)
            raise NoSuchElement(
                f"no element named {name!r}"
                + (f"; did you mean {' or '.join(close)}?" if close else "")
            )
        return e

    def peers(self, e: Element, side: str, port: int) -> list[str]:
        if side == "input":
            return [
                f"{c.src} [{c.sport}]"
                for c in self.connections
                if c.dst == e.name and c.dport == port
            ]
        return [
            f"[{c.dport}] {c.dst}" for c in self.connections if c.src == e.name and c.sport == port
        ]

    def flat_config(self, portable: bool = False) -> str:
        """The flattened configuration, with secrets (keys) redacted by their elements;
        ``portable``: file arguments absolute, so that it runs from any directory (-o)."""
        return self.graph.unparse({n: e.portable_config() if portable else e.unparse_config()
                                   for n, e in self.elements.items()})

    # ------------------------------------------------------------------ handlers
    def read_handler(self, spec: str) -> str:
        """Read ``element.handler`` (or a global handler), optionally followed by a
        parameter: ``rt.lookup 10.0.0.1``."""
        spec, _, param = spec.strip().partition(" ")
        ename, hname = _split_handler(spec)
        if ename is None:
            return self._global_read(hname)
        return self.find(ename).read(hname, param.strip())

    def write_handler(self, spec: str, value: str = "") -> None:
        ename, hname = _split_handler(spec)
        if ename is None:
            if hname == "stop":
                self.request_stop("stop handler", force=True)
                return
            if hname == "hotconfig" and self.hotconfig_allowed:
                self._hotconfig(value)
                return
            if hname == "trace":
                from routebricks.engine.trace import set_trace

                set_trace(self, value)
                return
            raise NoSuchHandler(
                f"no global write handler {hname!r} (write handlers: stop, trace"
                + (", hotconfig)" if self.hotconfig_allowed else
                   "; hotconfig with -R)"))
        self.find(ename).write(hname, value)

    def _hotconfig(self, text: str) -> None:
        """Replace the configuration with ``text`` (Click's hotconfig): refused, with the
        old one still running, unless it parses, checks and initializes; swapped in
        between two batches."""
        from routebricks.engine import hotswap

        new = hotswap.prepare(self, text)
        if self._initialized:
            hotswap.initialize(new)
        if self._pending_swap is not None:
            self._pending_swap.cleanup()  # an earlier one not yet swapped in
            self._pending_swap = None
        if self._running:
            self._pending_swap = new
        else:
            hotswap.commit(self, new)

    def _global_read(self, name: str) -> str:
        table: dict[str, Callable[[], str]] = {
            "version": lambda: VERSION,
            "list": lambda: "\n".join([str(len(self.elements)), *self.elements]),
            "classes": lambda: "\n".join(class_names()),
            "config": lambda: self.flat_config(),
            "flatconfig": lambda: self.flat_config(),
            "stats": lambda: __import__("json").dumps(self.stats_rows()),
            "placement": self._placement,
            "trace": lambda: __import__("routebricks.engine.trace",
                                        fromlist=["read_trace"]).read_trace(self),
            "requirements": lambda: "\n".join(
                f"{r.kind} {r.value}" for r in self.graph.requirements
            ),
        }
        f = table.get(name)
        if f is None:
            raise NoSuchHandler(
                f"no global handler {name!r} (global read handlers: " + ", ".join(table) + ")"
            )
        return f()

    def _placement(self) -> str:
        """This process and the cores it may run on: ``pid 1234 on cpus 0``."""
        cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
        return f"pid {os.getpid()} on cpus {cpus}"

    # ------------------------------------------------------------------ driving
    def take(self, n: int) -> int:
        """How many of ``n`` packets a source may emit under the packet limit."""
        if self.budget is None:
            return n
        k = min(n, self.budget)
        self.budget -= k
        return k

    def exhausted(self) -> bool:
        return self.budget is not None and self.budget <= 0

    def schedule(self, delay: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (clock.monotonic() + delay, next(self._seq), callback))

    def request_stop(self, reason: str, force: bool = False) -> None:
        """Ask the driver to stop (Click's ``please_stop_driver``). A DriverManager, if any,
        decides what a stop request means unless ``force`` is set."""
        if not force and self.stop_listener is not None and not self.stop_listener(reason):
            return
        if self.stop_reason is None:
            self.stop_reason = reason
        if not self._running and self._pending_stop is None:
            self._pending_stop = reason  # asked before run() began (a signal): honour it

    def run(
        self,
        *,
        limit: int | None = None,
        time_limit: float | None = None,
        idle_sleep: float = 0.0002,
    ) -> str:
        """Run until every source is done (and the graph is drained), a limit is reached, or
        something requests a stop. Returns the reason for stopping."""
        self.initialize()
        if self.freeze_gc:
            # What configuring made lives as long as the router: freeze it out of the cyclic
            # collector. A full collection otherwise walks every object numba and the
            # element library made (~120K, ~20 ms): a pause longer than a receive ring holds
            # at a steady rate, i.e. lost packets. The collector still runs for what the
            # data path makes from here on. No collection first: it alone costs ~45 ms of
            # start-up, and the little garbage there is stays frozen.
            gc.freeze()
        self.budget = limit
        self.stop_reason, self._pending_stop = self._pending_stop, None
        self._running = True
        start = self.started_at = clock.monotonic()
        deadline = start + time_limit if time_limit else None
        idle_reported = False
        next_control = 0.0
        last_work = -float("inf")  # no packet from a device yet: nothing to poll on for
        tasks, is_device, poll_fds, wait_fds, longest = self._loop_plan(idle_sleep)
        beat, slot = self.heartbeat, self.heartbeat_slot
        try:
            while self.stop_reason is None:
                if self._pending_swap is not None:  # hotconfig: between two batches
                    from routebricks.engine import hotswap

                    new, self._pending_swap = self._pending_swap, None
                    hotswap.commit(self, new)
                    tasks, is_device, poll_fds, wait_fds, longest = self._loop_plan(
                        idle_sleep)
                    idle_reported = False
                worked = received = False
                now = clock.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, cb = heapq.heappop(self._timers)
                    cb()
                    worked = True
                for t, device in zip(tasks, is_device, strict=True):
                    if t.run_task():
                        worked = True
                        received = received or device
                now = clock.monotonic()
                if beat is not None:
                    beat[slot] = now
                if self.control is not None and now >= next_control:
                    self.control.poll(self)  # handler requests, between batches
                    next_control = now + CONTROL_POLL_INTERVAL
                if deadline is not None and now >= deadline:
                    self.stop_reason = self.stop_reason or f"time limit ({time_limit:g} s)"
                    break
                if worked:
                    idle_reported = False
                    if received:
                        last_work = now  # packets from a device: poll on for a while
                    continue
                if (
                    not idle_reported
                    and (self.sources or not self.hold)
                    and all(s.is_done() for s in self.sources)
                    and not any(t.holds_packets() for t in tasks)
                ):
                    idle_reported = True
                    why = "packet limit reached" if self.exhausted() else "all sources done"
                    self.request_stop(why)
                    continue
                if (not tasks and not self._timers and self.stop_listener is None
                        and self.control is None):
                    self.stop_reason = "nothing to run"
                    break
                if poll_fds and now - last_work < self.idle_spin:
                    # Keep polling the devices (traffic was here a moment ago), but hand
                    # the core to anything else runnable on it: polling must not starve a
                    # process that shares the core (a traffic generator, a second router).
                    os.sched_yield()
                    continue
                wait = longest
                if self._timers:
                    wait = min(wait, max(0.0, self._timers[0][0] - now))
                if clock.simulated():
                    # Simulated time (--simtime): jump to the next timer, or by the idle
                    # wait, instead of waiting for it.
                    clock.advance_to(now + max(wait, 1e-6))
                    continue
                if poll_fds:
                    # Devices: sleep until a packet arrives (low latency at low rates).
                    select.select(wait_fds, [], [], max(wait, 0.001))
                else:
                    time.sleep(wait)
        except KeyboardInterrupt:
            self.stop_reason = "interrupted"
        finally:
            self.elapsed = clock.monotonic() - start
            self._running = False
        return self.stop_reason or "stopped"

    def _loop_plan(self, idle_sleep: float) -> tuple[list[Element], list[bool], list[int],
                                                    list[int], float]:
        """What the driver loop polls: tasks, which are devices, their descriptors, what
        to sleep on, and the longest sleep."""
        tasks = self.tasks
        fds = [getattr(t, "poll_fd", lambda: None)() for t in tasks]
        poll_fds = [fd for fd in fds if fd is not None]
        is_device = [fd is not None for fd in fds]
        # Only devices, timers and handler requests bring work: sleep until one does.
        ctl_fd = getattr(self.control, "fileno", lambda: None)()
        devices_only = bool(poll_fds) and all(
            d or t.TASK_WAITS_FOR_EVENTS for t, d in zip(tasks, is_device, strict=True)) and (
            self.control is None or ctl_fd is not None)
        wait_fds = poll_fds + ([ctl_fd] if devices_only and ctl_fd is not None else [])
        longest = DEVICE_IDLE_WAIT if devices_only else idle_sleep
        return tasks, is_device, poll_fds, wait_fds, longest

    # ------------------------------------------------------------------ reporting
    def stats_rows(self) -> list[dict[str, Any]]:
        return stats_rows(self.elements.values())




def _split_handler(spec: str) -> tuple[str | None, str]:
    if "." not in spec:
        return None, spec
    e, h = spec.split(".", 1)
    return e, h


def _combine(errors: Iterable[ConfigError], sources: dict[str, str] | None = None) -> ConfigError:
    errs = list(errors)
    for e in errs:
        if e.pos is not None and e.source_line is None and sources and e.pos.file in sources:
            lines = sources[e.pos.file].split("\n")
            if 0 < e.pos.line <= len(lines):
                e.source_line = lines[e.pos.line - 1]
                e.args = (e.render(),)
    if len(errs) == 1:
        return errs[0]
    text = "\n".join(e.render() for e in errs[:20])
    more = f"\n({len(errs) - 20} more errors)" if len(errs) > 20 else ""
    combined = ConfigError(f"{len(errs)} errors in the configuration:\n{text}{more}")
    combined.errors = errs  # type: ignore[attr-defined]
    return combined



# ---------------------------------------------------------------------- parsing helpers
def parse_text(
    text: str,
    filename: str = "<config>",
    *,
    extra: str | None = None,
    base_dir: str | Path | None = None,
    defines: dict[str, str] | None = None,
) -> Graph:
    from routebricks.engine.parser import parse_config
    from routebricks.engine.registry import make_requirement_loader

    g = parse_config(
        text,
        filename,
        class_exists=class_exists,
        class_names=class_names,
        extra=extra,
        load_requirement=make_requirement_loader(base_dir),
        defines=defines,
    )
    g.base_dir = str(base_dir) if base_dir is not None else None
    g.sources[filename] = text
    if extra:
        g.sources["<-e>"] = extra
    return g


def parse_file(path: str | Path, *, extra: str | None = None,
               defines: dict[str, str] | None = None) -> Graph:
    """Parse a configuration file (``-`` reads standard input)."""
    from routebricks.engine.parser import decode_config

    if str(path) == "-":
        text = decode_config(sys.stdin.buffer.read(), "<stdin>")
        return parse_text(text, "<stdin>", extra=extra, defines=defines)
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read configuration {str(path)!r}: {e.strerror}") from None
    text = decode_config(data, str(path))
    return parse_text(text, str(path), extra=extra, base_dir=p.parent, defines=defines)
