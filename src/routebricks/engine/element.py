"""The element base class: ports, push and pull, arguments, handlers, drop counters.

An element is a small class. It declares, as data, how many ports it has (``port_count``, in
Click's ``"1/1-2"`` notation), whether they push or pull (``processing``, Click's ``"a/ah"``
codes: ``h`` push, ``l`` pull, ``a`` agnostic; the last code repeats), and its arguments
(``ARGS``). It then implements one of:

* ``process(batch)`` — a "simple action" (Click's ``simple_action``): one batch in, the batch to
  send on output 0 out (or None). The base class turns it into both ``push`` and ``pull``.
* ``push(port, batch)`` / ``pull(port)`` — for elements with several ports.
* ``run_task()`` — for elements that produce or move packets on their own (sources, Unqueue).

Elements talk to neighbours with :meth:`Element.emit` (push a batch out of an output) and
:meth:`Element.pull_input` (pull a batch from an input); both are bound at graph-build time
to the neighbour's method, so a hop costs one Python call.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from routebricks.engine.args import Arg, Filename, ParsedArgs, parse_args, unparse_value
from routebricks.engine.argtext import quote, split_args, split_keyword, unquote
from routebricks.errors import ConfigError, HandlerError, NoSuchHandler, Position
from routebricks.packet.batch import PacketBatch

if TYPE_CHECKING:
    from routebricks.engine.router import Router

PUSH = "h"
PULL = "l"
AGNOSTIC = "a"


# ---------------------------------------------------------------------- port counts
@dataclass(frozen=True)
class PortRange:
    lo: int
    hi: int | None  # None: unbounded

    def allows(self, n: int) -> bool:
        return n >= self.lo and (self.hi is None or n <= self.hi)

    def __str__(self) -> str:
        if self.hi is None:
            return f"at least {self.lo}" if self.lo else "any number of"
        return str(self.lo) if self.lo == self.hi else f"{self.lo} to {self.hi}"


def _parse_range(s: str) -> PortRange:
    s = s.strip()
    if s == "-":
        return PortRange(0, None)
    m = re.fullmatch(r"(\d*)(-?)(\d*)", s)
    if not m or (not m.group(1) and not m.group(3)):
        raise ValueError(f"bad port count {s!r}")
    lo = int(m.group(1)) if m.group(1) else 0
    if not m.group(2):
        return PortRange(lo, lo)
    return PortRange(lo, int(m.group(3)) if m.group(3) else None)


def parse_port_count(spec: str) -> tuple[PortRange, PortRange]:
    """Click's port-count notation: ``"1/1-2"``, ``"0/1"``, ``"1/-"``, ``"1"`` (= 1/1)."""
    if "/" in spec:
        a, b = spec.split("/", 1)
        return _parse_range(a), _parse_range(b)
    r = _parse_range(spec)
    return r, r


def processing_code(spec: str, side: int, port: int) -> str:
    """The push/pull/agnostic code of ``port`` on ``side`` (0 inputs, 1 outputs)."""
    parts = spec.split("/")
    codes = parts[min(side, len(parts) - 1)]
    return codes[min(port, len(codes) - 1)]


# ---------------------------------------------------------------------- handlers
#: How a read handler's values from several workers make one answer (``combine=``):
#: ``first`` worker 0's value (settings, and state every worker holds alike); ``sum`` and
#: ``max`` of numbers (counters; high-water marks); ``merge`` of ``COUNT<TAB>KEY`` tables
#: by key (drops by reason).
COMBINE_KINDS = ("first", "sum", "max", "merge")


@dataclass
class Handler:
    name: str
    read: Callable[[Element], str] | None = None
    write: Callable[[Element, str], Any] | None = None
    changes_shared_state: bool = False  # e.g. route updates: the runtime serializes these
    doc: str = ""
    read_param: bool = False  # the read takes a parameter (Click's READ h PARAMS)
    combine: str = "first"  # see COMBINE_KINDS
    #: Served by the control plane's copy of the element (the supervisor's), never by the
    #: data plane: the value depends only on state that handler writes change (a route
    #: table), so producing it — a million routes, say — never holds up packets.
    control: bool = False


def read_handler(name: str, *, param: bool = False, combine: str = "first",
                 control: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a method ``f(self) -> value`` as the read handler ``name``; with ``param``,
    ``f(self, param: str)`` reads with a parameter (``rt.lookup 10.0.0.1``).

    ``combine`` says how several workers' values make one (:data:`COMBINE_KINDS`);
    ``control`` that the control plane answers it from its own copy (see :class:`Handler`).
    """
    if combine not in COMBINE_KINDS:
        raise ValueError(f"combine must be one of {COMBINE_KINDS}, not {combine!r}")

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        f.__dict__.setdefault("_rb_handlers", []).append(
            ("read", name, {"read_param": param, "combine": combine, "control": control}))
        return f

    return deco


def write_handler(
    name: str, *, shared: bool = False, control: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a method ``f(self, value: str)`` as the write handler ``name``.

    ``shared`` says the handler changes state shared between workers (route tables): the
    control plane applies it to its copy first (so a bad write changes nothing anywhere),
    then hands the result to every worker. ``control``: the write only concerns the control
    plane's copy (e.g. the address a control-plane read looks up).
    """

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        f.__dict__.setdefault("_rb_handlers", []).append(
            ("write", name, {"changes_shared_state": shared, "control": control}))
        return f

    return deco


# ---------------------------------------------------------------------- registry
REGISTRY: dict[str, type[Element]] = {}


def _format_handler_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, np.integer | np.floating):
        return str(v.item())
    return str(v)


# ---------------------------------------------------------------------- the element
class Element:
    """Base class of every element (see the module docstring for the contract)."""

    #: Click port-count notation, e.g. ``"1/1-2"``.
    port_count: str = "1/1"
    #: Click processing codes, e.g. ``"a/ah"``; ``h`` push, ``l`` pull, ``a`` agnostic.
    processing: ClassVar[str] = AGNOSTIC
    #: Declared arguments (see :class:`routebricks.engine.args.Arg`).
    ARGS: ClassVar[tuple[Arg, ...]] = ()
    #: Accept surplus positional arguments into ``self.rest`` (Classifier patterns, scripts).
    REST: ClassVar[bool] = False
    #: A source: the router runs until every source is done.
    IS_SOURCE: ClassVar[bool] = False
    #: Element group (Click's: standard, ethernet, ip, ...); set from the module path.
    GROUP: ClassVar[str] = ""
    #: Not registered under its class name (abstract helpers).
    ABSTRACT: ClassVar[bool] = False
    #: Agnostic ports resolve push or pull each on their own (Idle), instead of all of an
    #: element's agnostic ports sharing one mode (Counter, Null, ...).
    INDEPENDENT_PORTS: ClassVar[bool] = False
    #: Shared-state writes are handed to workers as a copy of the state (export_state in
    #: the control plane, adopt_state in each worker) instead of being written again in
    #: every worker: a route table's new lookup arrays, swapped in between two batches.
    PUBLISHES_STATE: ClassVar[bool] = False
    #: Receives from network devices: a router with such an element runs one worker per
    #: core under a supervisor, and claims its devices.
    READS_DEVICES: ClassVar[bool] = False
    #: Runs on every worker (a device's fanout member each), not on worker 0 only.
    EVERY_WORKER: ClassVar[bool] = False
    #: A source that a restarted worker runs again because it goes on where the dead
    #: process stopped (a device's ring, a shared-memory queue); other sources (a trace
    #: file, InfiniteSource) would send their packets again from the start, so a
    #: restarted worker leaves them out.
    RESUMES: ClassVar[bool] = False
    #: The most of a packet the element reads, where declared: "ethernet" (the Ethernet
    #: header at most: a cluster's switching by MAC, which the cluster's tests check every
    #: server after the input keeps to). None: not declared (it may read any header).
    READS: ClassVar[str | None] = None
    #: Cannot run in several processes at once (one file, one ESP sequence space).
    SINGLE_PROCESS: ClassVar[bool] = False
    #: Every packet pushed in leaves by every output, and every pull pulls the input (Null,
    #: Counter, Tee): a cycle of such elements loops forever, and the router refuses it.
    PASSES_ALL: ClassVar[bool] = False
    #: Its task finds work only after a packet, a timer or a handler request (or on its
    #: first run): an idle router need not wake up for it.
    TASK_WAITS_FOR_EVENTS: ClassVar[bool] = False
    #: Functions that compile the numba kernels this element runs (see
    #: :mod:`routebricks.jit`); the router calls each once as it initializes.
    JIT_WARMUP: ClassVar[tuple[Callable[[], None], ...]] = ()

    #: Attributes a hot reconfiguration (``hotconfig``) carries from the running element to
    #: its successor of the same name and class (counts, tables, queued packets); the
    #: call, packet and drop counts always carry over. See :meth:`take_state`.
    HOT_STATE: ClassVar[tuple[str, ...]] = ()
    #: Order in which successors take state (lower first: tables others share).
    HOT_ORDER: ClassVar[int] = 0

    HANDLERS: ClassVar[dict[str, Handler]] = {}

    # Instance state (set by the router).
    name: str
    router: Router | None
    pos: Position | None
    rest: list[str]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.HANDLERS = _collect_handlers(cls)
        if "GROUP" not in cls.__dict__:
            parts = cls.__module__.split(".")
            cls.GROUP = (
                parts[2] if parts[:2] == ["routebricks", "elements"] and len(parts) > 2 else "user"
            )
        if not cls.__dict__.get("ABSTRACT", False) and not cls.__name__.startswith("_"):
            REGISTRY[cls.__name__] = cls

    # ------------------------------------------------------------------ construction
    def __init__(self, *args: Any, name: str | None = None, **kwargs: Any) -> None:
        """Python API: ``FromDump("in.pcap", STOP=True)``. Arguments are written out as a
        Click configuration string and parsed like one, so both front ends agree."""
        parts = [unparse_value(a) for a in args]
        for k, v in kwargs.items():
            parts.append(f"{k.upper()} {unparse_value(v)}")
        self.config = ", ".join(parts)
        self.name = name or ""
        self.router = None
        self.pos = None
        self.rest = []
        self.drops: collections.Counter[str] = collections.Counter()
        self.calls = 0
        self.packets = 0
        self.ninputs = 0
        self.noutputs = 0
        self._out: list[Callable[[int, PacketBatch], None] | None] = []
        self._out_port: list[int] = []
        self._in: list[Callable[[int], PacketBatch | None] | None] = []
        self._in_port: list[int] = []
        self.input_modes: list[str] = []
        self.output_modes: list[str] = []
        self._py_edges: list[tuple[int, Element, int]] = []  # Python API connections
        self._py_edges_in: list[tuple[Element, int, int]] = []
        self._configured = False

    @classmethod
    def from_config(cls, config: str, name: str, pos: Position | None = None) -> Element:
        e = cls.__new__(cls)
        Element.__init__(e)
        e.config = config
        e.name = name
        e.pos = pos
        return e

    # ------------------------------------------------------------------ configuration
    def error(self, message: str, hint: str | None = None) -> ConfigError:
        """A configuration error about this element, at its place in the configuration."""
        return ConfigError(
            f"{self.name or type(self).__name__} :: {type(self).__name__}: {message}",
            self.pos,
            hint,
        )

    def parse_config(self) -> ParsedArgs:
        parsed = parse_args(
            self.config, self.ARGS, rest=self.REST, where=lambda m, h: self.error(m, h)
        )
        for k, v in parsed.values.items():
            setattr(self, k, v)
        self.rest = parsed.rest
        return parsed

    def resolve_path(self, name: str) -> str:
        """A file name from the configuration: as given (relative to the working directory,
        as in Click), or else relative to the configuration file's directory."""
        import os

        if os.path.isabs(name) or os.path.exists(name) or self.router is None:
            return name
        base = self.router.graph.base_dir
        if base and os.path.exists(os.path.join(base, name)):
            return os.path.join(base, name)
        return name

    def configure(self) -> None:
        """Check and derive state from the parsed arguments (override; raise self.error)."""

    def initialize(self) -> None:
        """Acquire resources (files, sockets) once the graph is checked (override)."""

    def finish_initialize(self) -> None:
        """Wait for checks that initialize() started on another core (override; raise
        self.error). Called after every element has initialized and the kernels are
        compiled, before any packet moves: FromDump checks its file meanwhile."""

    def cleanup(self) -> None:
        """Release resources when the router stops (override)."""

    def take_state(self, old: Element) -> None:
        """Hot reconfiguration: take what ``old`` (the running element of this name and
        class) has built up, after this one initialized and before it runs (Click's
        ``take_state``). Override for state that needs more than :attr:`HOT_STATE`."""
        self.calls, self.packets = old.calls, old.packets
        self.drops = old.drops
        for attr in self.HOT_STATE:
            setattr(self, attr, getattr(old, attr))

    def devices_read(self) -> list[str]:
        """The network devices this element receives from (the runtime claims them)."""
        return []

    def home_worker(self, placement: dict[str, int] | None = None) -> int | None:
        """The worker that runs this element's task: StaticThreadSched's placement (or
        ``placement``) modulo the number of workers, else None for an EVERY_WORKER element
        (every worker) and worker 0 for the rest."""
        r = self.router
        if placement is None:
            placement = getattr(r, "placement", None) or {}
        if self.name in placement:
            return placement[self.name] % max(1, int(getattr(r, "nworkers", 1) or 1))
        return None if self.EVERY_WORKER else 0

    def export_state(self) -> dict[str, np.ndarray]:
        """PUBLISHES_STATE elements: the arrays the data path reads (control plane)."""
        raise NotImplementedError

    def adopt_state(self, arrays: dict[str, np.ndarray]) -> None:
        """PUBLISHES_STATE elements: use these arrays from now on (a worker, between two
        batches)."""
        raise NotImplementedError

    def refresh_counters(self) -> None:
        """Bring counters kept outside this process up to date before they are read
        (override; FromDevice folds in the kernel's receive-ring drops)."""

    # ------------------------------------------------------------------ packet flow
    def process(self, batch: PacketBatch) -> PacketBatch | None:
        """Simple action: transform a batch bound for output 0 (override)."""
        return batch

    def push(self, port: int, batch: PacketBatch) -> None:
        out = self.process(batch)
        if out is not None and len(out):
            self.emit(0, out)

    def pull(self, port: int) -> PacketBatch | None:
        batch = self.pull_input(0)
        if batch is None:
            return None
        out = self.process(batch)
        return out if out is not None and len(out) else None

    def emit(self, port: int, batch: PacketBatch) -> None:
        """Push ``batch`` out of output ``port``; dropped (and counted) if unconnected."""
        target = self._out[port] if port < len(self._out) else None
        if target is None:
            self.drop(batch, f"output {port} not connected")
            return
        target(self._out_port[port], batch)

    def emit_or_drop(self, port: int, batch: PacketBatch | None, reason: str) -> None:
        """Send ``batch`` out of ``port`` if that output exists, else drop it as ``reason``
        (Click's convention for optional error outputs such as DecIPTTL's output 1)."""
        if batch is None or not len(batch):
            return
        if port < self.noutputs and self._out[port] is not None:
            self.emit(port, batch)
        else:
            self.drop(batch, reason)

    def pull_input(self, port: int) -> PacketBatch | None:
        src = self._in[port] if port < len(self._in) else None
        if src is None:
            return None
        return src(self._in_port[port])

    def drop(self, batch: PacketBatch | int, reason: str) -> None:
        """Count dropped packets under a reason a user can read."""
        n = batch if isinstance(batch, int) else len(batch)
        if n:
            self.drops[reason] += n
            tracer = getattr(self.router, "tracer", None)
            if tracer is not None and not isinstance(batch, int):
                tracer.dropped(self, batch, reason)  # a traced packet's last step

    def tell_peers(self, handler: str, value: str) -> None:
        """Have every other worker write this element's ``handler`` with ``value``.

        For state one worker learns that the others need: an ARP reply, for instance,
        reaches one worker's receive queue only. A no-op with a single worker."""
        peer_write = getattr(self.router, "peer_write", None)
        if peer_write is not None:
            peer_write(f"{self.name}.{handler}", value)

    def require_length(
        self, batch: PacketBatch, need: int | np.ndarray, reason: str = "too short"
    ) -> PacketBatch:
        """The packets at least ``need`` bytes long; the rest dropped and counted."""
        short = batch.length < need
        if not short.any():
            return batch
        self.drop(int(np.count_nonzero(short)), reason)
        return batch.select(~short)

    def warn(self, message: str) -> None:
        """A configuration warning on stderr, at the element's place in the configuration,
        unless the router was told -w."""
        if self.router is None or getattr(self.router, "warnings", True):
            where = f"{self.pos}: " if getattr(self, "pos", None) else ""
            sys.stderr.write(f"{where}warning: {self.name} :: {type(self).__name__}: "
                             f"{message}\n")

    # ------------------------------------------------------------------ tasks
    def holds_packets(self) -> bool:
        """Whether this task holds packets it will send later on its own (DelayUnqueue):
        a run whose sources are done goes on until they are out."""
        return False

    def wants_task(self) -> bool:
        """Whether the router should schedule :meth:`run_task` (decided after push/pull
        modes are known)."""
        return type(self).run_task is not Element.run_task

    def run_task(self) -> bool:
        """Do one unit of work; return whether anything happened (override)."""
        return False

    def is_done(self) -> bool:
        """For sources: whether this source will produce no more packets."""
        return True

    # ------------------------------------------------------------------ handlers
    def handler(self, name: str) -> Handler:
        h = self.HANDLERS.get(name)
        if h is None:
            close = [n for n in self.HANDLERS if n.startswith(name[:2])][:5]
            raise NoSuchHandler(
                f"{self.name}: no handler {name!r}"
                + (
                    f" (handlers: {', '.join(sorted(self.HANDLERS))})"
                    if not close
                    else f"; did you mean {', '.join(close)}?"
                )
            )
        return h

    def read(self, name: str, param: str = "") -> str:
        """Call read handler ``name`` (with ``param`` if it takes one)."""
        h = self.handler(name)
        if h.read is None:
            raise HandlerError(f"{self.name}.{name} is not a read handler")
        if h.read_param:
            try:
                return _format_handler_value(h.read(self, param))  # type: ignore[call-arg]
            except ValueError as e:
                raise HandlerError(f"{self.name}.{name}: {e}") from None
        if param.strip():
            raise HandlerError(f"{self.name}.{name} takes no parameter")
        return _format_handler_value(h.read(self))

    def write(self, name: str, value: str = "") -> None:
        h = self.handler(name)
        if h.write is None:
            raise HandlerError(f"{self.name}.{name} is not a write handler")
        try:
            h.write(self, value)
        except ConfigError as e:
            raise HandlerError(f"{self.name}.{name}: {e.message}") from None
        except ValueError as e:
            raise HandlerError(f"{self.name}.{name}: {e}") from None

    @read_handler("name")
    def _h_name(self) -> str:
        """The element's name."""
        return self.name

    @read_handler("class")
    def _h_class(self) -> str:
        """The element's class."""
        return type(self).__name__

    @read_handler("config")
    def _h_config(self) -> str:
        """The element's configuration string (secrets redacted)."""
        return self.unparse_config()

    @read_handler("ports")
    def _h_ports(self) -> str:
        """Input and output ports with their push/pull modes and connections."""
        lines = []
        if self.router:
            for side, modes in (("input", self.input_modes), ("output", self.output_modes)):
                lines.append(f"{len(modes)} {side}{'s' if len(modes) != 1 else ''}")
                for p, m in enumerate(modes):
                    peers = self.router.peers(self, side, p)
                    lines.append(f"{'push' if m == PUSH else 'pull'}\t" + ", ".join(peers))
        return "\n".join(lines)

    @read_handler("handlers")
    def _h_handlers(self) -> str:
        """The element's handlers and whether each reads (r) or writes (w)."""
        return "\n".join(
            f"{n}\t{'r' if h.read else ''}{'w' if h.write else ''}"
            for n, h in sorted(self.HANDLERS.items())
        )

    @read_handler("drops", combine="merge")
    def _h_drops(self) -> str:
        """Dropped packets by reason, one 'count<TAB>reason' line each."""
        self.refresh_counters()
        return "\n".join(f"{n}\t{r}" for r, n in sorted(self.drops.items()))

    # ------------------------------------------------------------------ Python API
    def __getitem__(self, port: int) -> PortRef:
        return PortRef(self, port)

    def __rshift__(self, other: Element | PortRef) -> Element:
        return PortRef(self, 0) >> other

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name or '(unnamed)'}>"

    def unparse_config(self) -> str:
        """The configuration string to show (flattened output, the ``config`` handler);
        elements holding secrets override this to redact them."""
        return self.config

    def portable_config(self) -> str:
        """The configuration with its file arguments made absolute (``-o``: a flattened
        configuration that runs from any directory)."""
        text = self.unparse_config()
        files = {s.name for s in self.ARGS if s.type is Filename}
        if not files:
            return text
        by_name = {s.name for s in self.ARGS}
        positional = [s for s in self.ARGS if s.positional]
        out, pi = [], 0
        for a in split_args(text):
            kw = split_keyword(a) if "A" <= a[:1] <= "Z" else None
            if kw and kw[0] in by_name:
                out.append(f"{kw[0]} {self._absolute(kw[1])}" if kw[0] in files else a)
                continue
            if pi < len(positional):
                if positional[pi].name in files:
                    a = self._absolute(a)
                pi += 1
            out.append(a)
        return ", ".join(out)

    def _absolute(self, text: str) -> str:
        import os

        name = unquote(text)
        return text if name == "-" else quote(os.path.abspath(self.resolve_path(name)))

    def unparse(self) -> str:
        """This element's declaration in the configuration language."""
        config = self.unparse_config()
        cfg = f"({config})" if config.strip() else ""
        return f"{self.name} :: {type(self).__name__}{cfg}"

    # documentation
    @classmethod
    def doc(cls) -> str:
        return inspect.getdoc(cls) or ""


def _collect_handlers(cls: type[Element]) -> dict[str, Handler]:
    """Handlers of ``cls``: inherited ones, overridden by methods marked in ``cls`` itself."""
    handlers: dict[str, Handler] = {}
    for base in reversed(cls.__mro__[1:]):
        handlers.update(getattr(base, "HANDLERS", {}))
    for attr, f in list(cls.__dict__.items()):
        for kind, hname, flags in getattr(f, "_rb_handlers", ()):
            old = handlers.get(hname)
            h = dataclasses.replace(old) if old else Handler(hname)
            # Call through the attribute name, so a subclass that overrides the method
            # (without decorating it again) gets its own version called.
            if kind == "read":
                h.read = _call_read(attr, flags["read_param"])
                h.read_param = flags["read_param"]
                h.combine = flags["combine"]
                h.control = h.control or flags["control"]
            else:
                h.write = _call_write(attr)
                h.changes_shared_state = flags["changes_shared_state"]
                h.control = h.control or flags["control"]
            h.doc = h.doc or (inspect.getdoc(f) or "").split("\n")[0]
            handlers[hname] = h
    return handlers


def _call_read(attr: str, param: bool) -> Callable[..., Any]:
    if param:
        return lambda self, arg: getattr(self, attr)(arg)
    return lambda self: getattr(self, attr)()


def _call_write(attr: str) -> Callable[[Element, str], Any]:
    return lambda self, value: getattr(self, attr)(value)


Element.HANDLERS = _collect_handlers(Element)


class PortRef:
    """``element[n]`` in the Python API: output ``n`` on the left of ``>>``, input ``n`` on
    the right. ``a[1] >> b[2] >> c`` is Click's ``a [1] -> [2] b -> c``."""

    def __init__(self, element: Element, port: int) -> None:
        self.element = element
        self.port = port

    def __rshift__(self, other: Element | PortRef) -> Element:
        if isinstance(other, PortRef):
            dst, dport = other.element, other.port
        elif isinstance(other, Element):
            dst, dport = other, 0
        else:
            raise TypeError(f"cannot connect {self.element!r} to {other!r}: not an element")
        self.element._py_edges.append((self.port, dst, dport))
        dst._py_edges_in.append((self.element, self.port, dport))
        return dst

