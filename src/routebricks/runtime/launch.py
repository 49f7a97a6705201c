"""One router, from configuration to summary, as a library call.

``routebricks run`` is :func:`run_router` with the command line's options; the cluster runs
each server's share with it, and the tests use it too. Two shapes:

* **in this process** — a run over files (a pcap in, a pcap out): parse, check, run, print
  the counters. Nothing else to supervise.
* **supervised** — a configuration that reads devices, asks for a control socket or for
  several workers: this process becomes the control plane (:class:`Supervisor`) and forks
  one worker per core. The devices it reads are claimed first, so a second router on the
  same interfaces is refused before any packet moves.

Either way every configuration error is reported before any packet moves, the counters are
printed when the run ends (also on SIGINT/SIGTERM), and nothing the router set up outlives
it.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import json
import re
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from routebricks.engine.graph import Graph
from routebricks.errors import RouteBricksError
from routebricks.runtime import DEFAULT_WATCHDOG


@dataclass
class RunOptions:
    """What ``routebricks run`` takes (see its --help for each)."""

    config: str | None = None  # a file ('-': stdin)
    expr: str | None = None  # -e text
    defines: dict[str, str] = field(default_factory=dict)
    loads: tuple[str, ...] = ()
    handlers: tuple[str, ...] = ()  # -h, printed when the run ends
    exit_handler: str | None = None  # -x: the exit status is this handler's value
    warnings: bool = True  # -w: no warnings
    quit: bool = False  # -q
    output: str | None = None  # -o
    kp: int | None = None
    limit: int | None = None
    time_limit: float | None = None
    stats: bool = False
    #: Print the end-of-run summary on stderr: None = with --stats or on a terminal.
    summary: bool | None = None
    #: Click's --simtime: simulated time from this wall time (seconds; one process only).
    simtime: float | None = None
    #: Click's -t: print CPU and elapsed time on stdout when the run ends.
    report_time: bool = False
    workers: int | None = None
    socket_path: str | None = None  # -u; else a supervised router serves one by its name
    name: str | None = None  # --name: the router's name (its control socket's)
    port: int | None = None  # -p: also serve the control protocol on 127.0.0.1:PORT
    metrics: str | None = None  # --metrics ADDR:PORT: serve /metrics for Prometheus there
    hotconfig: bool = False  # -R: the hotconfig write handler replaces the configuration
    pin: bool = True
    spin_ms: float | None = None
    profile: bool | None = None  # None: when supervised (top shows time per packet)
    netns: str | None = None
    watchdog: float = DEFAULT_WATCHDOG
    restart: bool = True


def load_graph(config: str | None, expr: str | None, defines: dict[str, str],
               loads: tuple[str, ...] = ()) -> Graph:
    """Parse a configuration file (or ``-e`` text, or both)."""
    from routebricks.engine.registry import load_python_file
    from routebricks.engine.router import parse_file, parse_text

    for path in loads:
        load_python_file(path)
    if config is not None:
        return parse_file(config, extra=expr, defines=defines)
    if expr is None:
        raise RouteBricksError("no configuration: give CONFIG, -f FILE or -e 'TEXT'")
    return parse_text(expr, "<-e>", base_dir=Path.cwd(), defines=defines)


def warn_if_empty(graph: Graph, running: bool, err: TextIO) -> bool:
    """Click's warning for a configuration without elements (not an error: Click runs
    nothing and exits 0). Whether there was nothing."""
    if graph.elements:
        return False
    name = next(iter(graph.sources), "configuration")
    print(f"warning: {name}: configuration has no elements" + (", exiting" if running else ""),
          file=err)
    return True


def write_flat(text: str, output: str, out: TextIO) -> None:
    """-o: the flattened configuration to a file, or to ``out`` for '-'."""
    if output == "-":
        out.write(text)
        return
    try:
        Path(output).write_text(text)
    except OSError as e:
        raise RouteBricksError(f"cannot write {output!r}: {e.strerror}") from None


def run_router(opts: RunOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one router; returns the exit status (0, or 1 after an error, which is printed).
    Handler values (-h) go to ``out``, the summary and messages to ``err``."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        return _run(opts, out, err)
    except RouteBricksError as e:
        print(str(e), file=err, flush=True)
        return 1


def _run(opts: RunOptions, out: TextIO, err: TextIO) -> int:
    from routebricks.engine.router import Router
    from routebricks.runtime.workers import (
        check_multiworker,
        default_workers,
        reads_devices,
    )

    if opts.netns:
        from routebricks.netns.core import enter_netns

        enter_netns(opts.netns)  # devices are opened there
    graph = load_graph(opts.config, opts.expr, opts.defines, opts.loads)
    if warn_if_empty(graph, running=not opts.quit, err=err if opts.warnings else io.StringIO()):
        # As Click: nothing runs, but -h still answers (global handlers such as version).
        empty = Router(graph)
        return _print_handlers(opts.handlers, empty.read_handler, out, err)
    nworkers = opts.workers or default_workers(graph)
    # Asking for a control socket (by path, name or port) or for metrics runs the router
    # supervised: the supervisor answers handlers while the workers move packets.
    supervised = (nworkers > 1 or reads_devices(graph)
                  or any(x is not None for x in (opts.socket_path, opts.name, opts.port,
                                                 opts.metrics)))
    profile = opts.stats or (supervised if opts.profile is None else opts.profile)
    router = Router(graph, profile=profile, warnings=opts.warnings)  # checks it all first
    if opts.kp is not None:
        router.kp = opts.kp
    if opts.spin_ms is not None:
        router.idle_spin = opts.spin_ms / 1000  # workers inherit it with the router
    router.freeze_gc = True  # this process (and each worker) is the router
    router.hotconfig_allowed = opts.hotconfig
    if opts.output:
        write_flat(router.flat_config(portable=True), opts.output, out)
    check_multiworker(router, nworkers)
    if opts.quit:
        router.initialize()  # -q: set up (files, sockets) and quit
        router.cleanup()
        return _finish(opts, router, router.read_handler, out, err)
    if opts.simtime is not None and supervised:
        raise RouteBricksError("--simtime runs the router in one process: not with devices, "
                               "a control socket (-u, --name, -p), --metrics or several "
                               "workers")
    if supervised:
        return _run_supervised(router, graph, nworkers, opts, out, err)
    if opts.simtime is not None:
        from routebricks.engine import clock

        clock.simulate(start=opts.simtime)
    return _run_here(router, opts, out, err)


@contextlib.contextmanager
def _stop_on_signals(stop: Any) -> Iterator[None]:
    """SIGINT and SIGTERM stop the router cleanly (the counters still print)."""
    def on_signal(signum: int, _frame: object) -> None:
        stop("interrupted")

    old_int = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def _run_here(router: Any, opts: RunOptions, out: TextIO, err: TextIO) -> int:
    from routebricks.report import render_stats

    router.initialize()
    before = _times()
    try:
        with _stop_on_signals(lambda why: router.request_stop(why, force=True)):
            reason = router.run(limit=opts.limit, time_limit=opts.time_limit)
    finally:
        router.cleanup()  # whatever happened, no element's setup outlives the run
    if opts.report_time:
        print(_time_report(before, _times()), file=out, flush=True)
    if _show_summary(opts, err):
        render_stats(router.stats_rows(), reason, router.elapsed, detailed=opts.stats,
                     file=err)
    return _finish(opts, router, router.read_handler, out, err)


def _times() -> tuple[float, float, float]:
    """(user CPU, system CPU, elapsed) seconds so far: this process and its children."""
    import resource
    import time

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime, time.monotonic())


def _time_report(before: tuple[float, float, float],
                 after: tuple[float, float, float]) -> str:
    """Click's -t line: ``0.123u 0.004s 0:01.52`` (user, system, elapsed m:ss.cc)."""
    user, system, elapsed = (a - b for a, b in zip(after, before, strict=True))
    cs = round(elapsed * 100)
    return f"{user:.3f}u {system:.3f}s {cs // 6000}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _show_summary(opts: RunOptions, err: TextIO, failed: bool = False) -> bool:
    """Click prints nothing of its own when a run ends, and scripts compare stderr: the
    summary is for a person at a terminal, for --stats and --summary, and after a
    failure (a worker that died)."""
    if opts.summary is not None:
        return opts.summary or failed
    isatty = getattr(err, "isatty", None)
    return opts.stats or failed or bool(isatty is not None and isatty())


def _run_supervised(router: Any, graph: Graph, nworkers: int, opts: RunOptions,
                    out: TextIO, err: TextIO) -> int:
    from routebricks.report import render_stats
    from routebricks.runtime.claims import claim_devices
    from routebricks.runtime.control import ControlServer, check_socket_path
    from routebricks.runtime.discovery import server_path
    from routebricks.runtime.metrics import (
        MetricsServer,
        RouterCollector,
        check_listen_address,
        parse_listen_address,
    )
    from routebricks.runtime.supervisor import Supervisor
    from routebricks.runtime.workers import WorkerOptions

    wopts = WorkerOptions(kp=opts.kp, limit=opts.limit, time_limit=opts.time_limit,
                          profile=router.profile, pin=opts.pin,
                          placement=getattr(router, "placement", {}),
                          watchdog=opts.watchdog, restart=opts.restart)
    devices = [d for e in router.elements.values() for d in e.devices_read()]

    def log(message: str) -> None:
        print(f"routebricks: {message}", file=err, flush=True)

    def read(spec: str) -> str:
        r = sup.ask("read", spec)
        if not r.ok:
            raise RouteBricksError(r.text)
        return r.text

    # A name in use is refused before any worker starts; the sockets are made after the
    # workers fork, so that no worker holds a listener.
    path = opts.socket_path or server_path(opts.name, opts.netns)
    check_socket_path(path)
    # So is a metrics address this process cannot listen on (a port in use).
    listen = parse_listen_address(opts.metrics) if opts.metrics is not None else None
    if listen is not None:
        check_listen_address(*listen)
    servers: list[ControlServer] = []
    metrics: MetricsServer | None = None
    where = f"control socket {path}" + (f" and 127.0.0.1:{opts.port}"
                                        if opts.port is not None else "")
    with claim_devices(devices):
        sup = Supervisor(graph, nworkers, wopts, template=router, log=log)
        try:
            before = _times()
            with _stop_on_signals(sup.request_stop):
                sup.start()  # inside: an interrupt while workers start still stops them
                servers.append(ControlServer(path, sup.ask).start())
                if opts.port is not None:
                    servers.append(ControlServer(path, sup.ask, port=opts.port).start())
                if listen is not None:
                    from routebricks import __version__

                    collector = RouterCollector(sup, name=Path(path).stem,
                                                config=opts.config or "<-e>",
                                                version=__version__)
                    metrics = MetricsServer(*listen, collector).start()
                    where += f", metrics {metrics.url}"
                # One line when packets can flow: workers up, devices open, kernels loaded.
                cores = (", ".join(str(w.cpu) for w in sup.workers) if opts.pin
                         else "any core")
                log(f"ready: {nworkers} worker{'s' if nworkers > 1 else ''} "
                    f"(cores {cores}), {where}")
                reason = sup.run()
            if _show_summary(opts, err, failed=bool(sup.failure)):
                rows = json.loads(read("stats"))
                render_stats(rows, reason, sup.elapsed, detailed=opts.stats, file=err,
                             workers=nworkers)
            for note in sup.restart_notes():
                print(f"  {note}", file=err)
            if opts.report_time:
                print(_time_report(before, _times()), file=out, flush=True)
            code = _finish(opts, router, read, out, err)
            return 1 if sup.failure else code
        finally:
            if metrics is not None:
                metrics.close()
            for server in servers:
                server.close()  # before the workers go: no request waits on a dead one
            sup.shutdown()


def expand_handlers(specs: tuple[str, ...], elements: dict[str, str]) -> tuple[str, ...]:
    """Click's -h forms: ``ELEMENT.HANDLER``, ``CLASS.HANDLER`` (every element of that
    class) and globs (``'c*.count'``), in configuration order. ``elements``: name -> class.
    A spec that names nothing stays as it is (its read then says what is wrong)."""
    out: list[str] = []
    for spec in specs:
        name, dot, handler = spec.rpartition(".")
        if not dot or not name or name in elements:
            out.append(spec)
            continue
        if any(c in name for c in "*?["):
            hits = [e for e in elements if fnmatch.fnmatchcase(e, name)]
        else:
            hits = [e for e, cls in elements.items() if cls == name]
        out += [f"{e}.{handler}" for e in hits] or [spec]
    return tuple(out)


def _finish(opts: RunOptions, router: Any, read: Any, out: TextIO, err: TextIO) -> int:
    """-h handlers, then -x: the exit status."""
    classes = {n: type(e).__name__ for n, e in router.elements.items()}
    code = _print_handlers(expand_handlers(opts.handlers, classes), read, out, err)
    if not opts.exit_handler:
        return code
    try:
        value = read(opts.exit_handler).strip()
    except RouteBricksError as e:
        print(str(e), file=err)
        return 255  # Click's -1
    if re.fullmatch(r"[+-]?\d+", value):
        return int(value) & 0xFF
    if value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return 0 if value.lower() in ("true", "yes", "1") else 1
    print(f"exit handler value should be integer: {opts.exit_handler} is {value!r}", file=err)
    return 255


def _print_handlers(handlers: tuple[str, ...], read: Any, out: TextIO, err: TextIO) -> int:
    """Print -h handlers as Click does: a lone value, or name-labelled blocks. Exit code."""
    code = 0
    for h in handlers:
        try:
            value = read(h)
        except RouteBricksError as e:
            print(str(e), file=err)
            code = 1
            continue
        if len(handlers) > 1:
            out.write(f"{h}:\n{value}{'' if value.endswith(chr(10)) else chr(10)}\n")
        else:
            out.write(value + ("" if not value or value.endswith("\n") else "\n"))
    out.flush()
    return code
