"""The ``routebricks`` command.

``routebricks run`` takes Click's own flags where they apply (``-f``, ``-e``, ``-h
ELEMENT.HANDLER``, ``-q``, ``-o``, ``NAME=value``), so Click habits carry over. As in Click,
element messages and the run summary go to stderr and handler values to stdout; ``-h`` is the
handler flag, so help is ``--help``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import Any

import click

from routebricks.errors import RouteBricksError
from routebricks.runtime import DEFAULT_WATCHDOG

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


def _fail(e: Exception, code: int = 1) -> None:
    click.echo(str(e), err=True)
    sys.exit(code)


def _config_source(args: tuple[str, ...], file: str | None,
                   expr: str | None) -> tuple[str | None, dict[str, str]]:
    """The configuration file (CONFIG or -f) and the NAME=value definitions."""
    config, defines = _split_defines(args)
    if config and file:
        raise click.UsageError("router configuration specified twice (CONFIG and -f)")
    if (config or file) is None and expr is None:
        if not sys.stdin.isatty():
            return "-", defines  # as Click: the configuration comes on standard input
        raise click.UsageError("no configuration: give CONFIG, -f FILE or -e 'TEXT' (or "
                               "send it on standard input)")
    return config or file, defines


def _split_defines(args: tuple[str, ...]) -> tuple[str | None, dict[str, str]]:
    config = None
    defines: dict[str, str] = {}
    for a in args:
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", a, re.S)
        if m:
            defines[m.group(1)] = m.group(2)
        elif config is None:
            config = a
        else:
            raise click.UsageError(f"router configuration specified twice ({config!r} and {a!r})")
    return config, defines


#: Subcommands that live with their layer, imported when one of them runs (or --help lists
#: them): pyroute2 alone would add ~80 ms to every `routebricks run`.
PLUGINS = {
    "gen": "routebricks.traffic.cli",
    "sink": "routebricks.traffic.cli",
    "lossfree": "routebricks.traffic.lossfree_cli",
    "testbed": "routebricks.netns.cli",
    "cluster": "routebricks.cluster.cli",
    "plan": "routebricks.cluster.plan_cli",
    "simulate": "routebricks.cluster.simulate_cli",
    "bench": "routebricks.bench.cli",
    "graph": "routebricks.viz.cli",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *PLUGINS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None or name not in PLUGINS:
            return cmd
        import importlib

        try:
            m = importlib.import_module(PLUGINS[name])
        except ModuleNotFoundError as e:
            if e.name == PLUGINS[name]:
                return None
            raise
        return {c.name: c for c in getattr(m, "COMMANDS", [])}.get(name)


@click.group(cls=_LazyGroup, context_settings=CONTEXT)
@click.version_option(package_name="routebricks")
def main() -> None:
    """routebricks: a parallel software router in Python, after RouteBricks (SOSP 2009).

    Routers are written in the Click configuration language; see `routebricks elements`.
    """


@main.command(context_settings=CONTEXT)
@click.argument("args", nargs=-1, metavar="[CONFIG] [NAME=VALUE]...")
@click.option(
    "-f", "--file", "file", metavar="FILE", help="Read the configuration from FILE ('-' for stdin)."
)
@click.option(
    "-e",
    "--expression",
    "expr",
    metavar="TEXT",
    help="Configuration text; with a file, appended to it, and its declarations "
    "replace the file's elements of the same name.",
)
@click.option(
    "-h",
    "--handler",
    "handlers",
    multiple=True,
    metavar="ELEMENT.HANDLER",
    help="Print this read handler's value when the run ends (repeatable).",
)
@click.option(
    "-q",
    "--quit",
    "quit_",
    is_flag=True,
    help="Set up the router (parse, check, initialize), then quit.",
)
@click.option(
    "-o",
    "--output",
    "output",
    metavar="FILE",
    help="Write the flattened configuration to FILE ('-' for stdout).",
)
@click.option(
    "--kp",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="Packets per poll (batch size) for sources without BURST [default 1024].",
)
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=None,
    metavar="N",
    help="Stop after sources have sent N packets in all.",
)
@click.option(
    "--duration",
    "time_limit",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Stop after this many seconds.",
)
@click.option(
    "-t",
    "--time",
    "report_time",
    is_flag=True,
    help="Print the run's user and system CPU time and elapsed time on stdout when it "
    "ends, as Click's -t does ('0.123u 0.004s 0:01.52').",
)
@click.option(
    "-x",
    "--exit-handler",
    "exit_handler",
    metavar="ELEMENT.HANDLER",
    help="Exit with this read handler's value as the status when the run ends (an integer; "
    "true 0, false 1), as Click's -x.",
)
@click.option(
    "-w",
    "--no-warnings",
    "no_warnings",
    is_flag=True,
    help="Do not print configuration warnings, as Click's -w.",
)
@click.option(
    "--stats",
    is_flag=True,
    help="Profile elements and print per-element calls, packets, drops and time "
    "per packet when the run ends.",
)
@click.option(
    "--simtime",
    type=float,
    is_flag=False,
    flag_value=1e9,
    default=None,
    metavar="[SECONDS]",
    help="Simulated time, as Click's: timers and waits fire in order without real "
    "waiting; the clock starts at SECONDS since the epoch (default 1000000000, as "
    "Click) and timestamps follow it (one process; not with devices).",
)
@click.option(
    "--summary/--no-summary",
    default=None,
    help="Print why the run stopped and each element's counts and drops on stderr when it "
    "ends. Default: when stderr is a terminal (or with --stats); like Click, a run whose "
    "stderr is a file or a pipe prints nothing of its own.",
)
@click.option(
    "--load",
    "loads",
    multiple=True,
    metavar="FILE.py",
    help="Load element classes from a Python file (repeatable).",
)
@click.option(
    "-j",
    "--workers",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="Worker processes, one per core, each with its own queue on every device "
    "[default: one per core if the configuration reads devices, else 1].",
)
@click.option(
    "-u",
    "--unix-socket",
    "socket_path",
    metavar="PATH",
    default=None,
    help="Serve the control socket (Click's ControlSocket protocol; owner-only) at PATH "
    "instead of /run/routebricks/NAME.sock.",
)
@click.option(
    "--name",
    metavar="NAME",
    default=None,
    help="The router's name: its control socket is /run/routebricks/NAME.sock (for root; "
    "else under $XDG_RUNTIME_DIR) [default: the --netns name, else 'router']. A router "
    "that reads no device and has one worker serves a socket only with --name, -u or -p.",
)
@click.option(
    "-p",
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    metavar="PORT",
    help="Also serve the control protocol on TCP 127.0.0.1:PORT (Click's -p; loopback "
    "only: the protocol has no authentication).",
)
@click.option(
    "--metrics",
    metavar="ADDR:PORT",
    default=None,
    help="Serve the router's counters for Prometheus at http://ADDR:PORT/metrics (per "
    "element and worker: packets, calls, drops by reason, time per packet; ring drops; "
    "worker restarts). ':PORT' listens on 127.0.0.1. Runs the router supervised.",
)
@click.option(
    "-R",
    "--allow-reconfigure",
    "hotconfig",
    is_flag=True,
    help="Allow hot reconfiguration, as Click's -R: writing a configuration to the global "
    "'hotconfig' handler replaces the running one between two batches; elements of the "
    "same name and class keep their state; a bad one is refused and the old one runs on.",
)
@click.option("--no-pin", is_flag=True, help="Do not pin workers to cores.")
@click.option(
    "--spin",
    type=click.FloatRange(0),
    default=None,
    metavar="MS",
    help="Keep polling this many milliseconds after the last packet before sleeping "
    "(0: sleep at once, lowest CPU use; polling keeps a core that may wake late from "
    "losing packets while it sleeps) [default: 20].",
)
@click.option(
    "--no-profile",
    is_flag=True,
    help="With -u, do not time elements (saves two clock reads per element call; "
    "'routebricks top' then shows no per-element figures).",
)
@click.option(
    "--netns",
    metavar="NAME",
    default=None,
    help="Run inside this network namespace (e.g. a testbed's router, rbXXXXXX-r).",
)
@click.option(
    "--watchdog",
    type=click.FloatRange(0),
    default=DEFAULT_WATCHDOG,
    show_default=True,
    metavar="SECONDS",
    help="Restart a worker that makes no progress for this long (0: never). Compiling a "
    "kernel counts as progress.",
)
@click.option(
    "--no-restart",
    is_flag=True,
    help="Stop the router when a worker dies, instead of restarting the worker.",
)
def run(
    args: tuple[str, ...],
    file: str | None,
    expr: str | None,
    handlers: tuple[str, ...],
    quit_: bool,
    output: str | None,
    kp: int | None,
    limit: int | None,
    time_limit: float | None,
    report_time: bool,
    stats: bool,
    exit_handler: str | None,
    no_warnings: bool,
    summary: bool | None,
    simtime: float | None,
    loads: tuple[str, ...],
    workers: int | None,
    socket_path: str | None,
    name: str | None,
    port: int | None,
    metrics: str | None,
    hotconfig: bool,
    no_pin: bool,
    spin: float | None,
    no_profile: bool,
    netns: str | None,
    watchdog: float,
    no_restart: bool,
) -> None:
    """Run a router described in the Click configuration language.

    \b
    Examples:
      routebricks run examples/forward.click
      routebricks run -e 'FromDump(in.pcap) -> c :: Counter -> Discard' -h c.count
      routebricks run conf.click --kp 256 --duration 10 --stats
      routebricks run examples/iprouter.click --netns rb1-r --name edge

    A configuration that reads devices, or runs with several workers or a control socket
    (--name, -u, -p), runs under a supervisor: one worker process per core, restarted if
    it dies or hangs (--watchdog), and a control socket that 'routebricks handler' and
    'routebricks top' find.
    """
    from routebricks.runtime.launch import RunOptions, run_router

    config, defines = _config_source(args, file, expr)
    opts = RunOptions(
        config=config, expr=expr, defines=defines, loads=loads, handlers=handlers,
        quit=quit_, output=output, kp=kp, limit=limit, time_limit=time_limit, stats=stats,
        report_time=report_time, exit_handler=exit_handler, warnings=not no_warnings,
        summary=summary, simtime=simtime, workers=workers, socket_path=socket_path,
        name=name, port=port, metrics=metrics, hotconfig=hotconfig, pin=not no_pin, spin_ms=spin,
        profile=False if no_profile else None, netns=netns, watchdog=watchdog,
        restart=not no_restart)
    sys.exit(run_router(opts))


@main.command(context_settings=CONTEXT)
@click.argument("args", nargs=-1, metavar="[CONFIG] [NAME=VALUE]...")
@click.option("-f", "--file", "file", metavar="FILE", help="Configuration file.")
@click.option("-e", "--expression", "expr", metavar="TEXT", help="Configuration text.")
@click.option(
    "--load",
    "loads",
    multiple=True,
    metavar="FILE.py",
    help="Load element classes from a Python file.",
)
@click.option(
    "-o",
    "--output",
    "output",
    metavar="FILE",
    help="Write the flattened configuration to FILE ('-' for stdout).",
)
def check(
    args: tuple[str, ...],
    file: str | None,
    expr: str | None,
    loads: tuple[str, ...],
    output: str | None,
) -> None:
    """Parse and check a configuration without running it (exit 1 with file:line:column)."""
    from routebricks.engine.router import Router
    from routebricks.runtime.launch import load_graph, warn_if_empty, write_flat

    config, defines = _config_source(args, file, expr)
    try:
        graph = load_graph(config, expr, defines, loads)
        router = Router(graph)
        if output:
            write_flat(router.flat_config(portable=True), output, sys.stdout)
    except RouteBricksError as e:
        _fail(e)
        return
    if warn_if_empty(graph, running=False, err=sys.stderr):
        return
    click.echo(
        f"ok: {len(router.elements)} elements, {len(router.connections)} connections", err=True
    )


@main.command(context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option(
    "--load",
    "loads",
    multiple=True,
    metavar="FILE.py",
    help="Also list element classes from a Python file.",
)
def elements(name: str | None, loads: tuple[str, ...]) -> None:
    """List the element library, or print the documentation of element NAME."""
    from routebricks.engine.registry import class_names, get_class, load_python_file
    from routebricks.report import element_doc

    try:
        for path in loads:
            load_python_file(path)
    except RouteBricksError as e:
        _fail(e)
    if name:
        cls = get_class(name)
        if cls is None:
            import difflib

            close = difflib.get_close_matches(name, class_names(), n=3)
            _fail(
                RouteBricksError(
                    f"no element class {name!r}"
                    + (f"; did you mean {' or '.join(close)}?" if close else "")
                )
            )
            return
        click.echo(element_doc(cls))
        return
    rows = []
    for n in class_names():
        cls = get_class(n)
        assert cls is not None
        summary = cls.doc().split("\n")[0] if cls.doc() else ""
        rows.append((cls.GROUP, n, summary))
    width = max(len(n) for _, n, _ in rows)
    group = None
    for g, n, s in sorted(rows):
        if g != group:
            click.echo(f"\n{g}:" if group is not None else f"{g}:")
            group = g
        click.echo(f"  {n:<{width}}  {s}")


@main.group(context_settings=CONTEXT)
def handler() -> None:
    """Read or write a handler of a running router (found by --name, -u or -p, or the
    only one running)."""


def _socket_options(f: Any) -> Any:
    """How a client finds the router: -u PATH, --name NAME, -p PORT, or the one running."""
    f = click.option("-p", "--port", type=click.IntRange(1, 65535), default=None,
                     metavar="PORT", help="A router serving TCP 127.0.0.1:PORT (run -p).")(f)
    f = click.option("--name", metavar="NAME", default=None,
                     help="The router called NAME (run --name, or its --netns).")(f)
    return click.option(
        "-u", "--unix-socket", "socket_path", metavar="PATH", default=None,
        help="The router's control socket [default: $ROUTEBRICKS_SOCKET, else the only "
        "router running (/run/routebricks/*.sock)].")(f)


def _client(socket_path: str | None, name: str | None, port: int | None) -> Any:
    from routebricks.runtime.control import ControlClient

    return ControlClient(socket_path, name=name, port=port)


@handler.command("read", context_settings=CONTEXT)
@click.argument("spec", metavar="ELEMENT.HANDLER")
@click.argument("params", nargs=-1)
@_socket_options
@click.option("--each", is_flag=True, help="One value per worker instead of the combined one.")
def handler_read(spec: str, params: tuple[str, ...], socket_path: str | None,
                 name: str | None, port: int | None, each: bool) -> None:
    """Print a read handler's value (counters are summed over workers), e.g.
    'c.count' or, with a parameter, 'rt.lookup 10.0.2.7'."""
    try:
        with _client(socket_path, name, port) as c:
            value = c.read(" ".join((spec, *params)), each=each)
    except RouteBricksError as e:
        _fail(e)
        return
    sys.stdout.write(value + ("" if not value or value.endswith("\n") else "\n"))


# A value may start with '-' ('q.capacity -5'): unknown options are taken for words of
# the value, except ones that look like a mistyped long option ('--unix-sokcet').
@handler.command("write", context_settings={**CONTEXT, "ignore_unknown_options": True})
@click.argument("spec", metavar="ELEMENT.HANDLER")
@click.argument("value", nargs=-1, type=click.UNPROCESSED)
@_socket_options
def handler_write(spec: str, value: tuple[str, ...], socket_path: str | None,
                  name: str | None, port: int | None) -> None:
    """Call a write handler (on every worker), e.g. 'rt.add 10.9.0.0/16 2' or
    'q.capacity -5'."""
    for word in value:
        if re.fullmatch(r"--[A-Za-z][\w-]*(=.*)?", word, re.S):
            raise click.NoSuchOption(word.split("=", 1)[0], ctx=click.get_current_context())
    try:
        with _client(socket_path, name, port) as c:
            c.write(spec, " ".join(value))
    except RouteBricksError as e:
        _fail(e)


@main.command(context_settings=CONTEXT)
@_socket_options
@click.option("--interval", type=click.FloatRange(0.05), default=1.0, metavar="SECONDS",
              help="Refresh period.")
@click.option("--once", is_flag=True, help="Print one measurement and exit.")
def top(socket_path: str | None, name: str | None, port: int | None, interval: float,
        once: bool) -> None:
    """Live per-element packet rates, drops and cost per packet of a running router
    (like VPP's 'show runtime')."""
    from routebricks.runtime.top import run_top

    try:
        run_top(_client(socket_path, name, port), interval, once)
    except RouteBricksError as e:
        _fail(e)


@main.command("trace", context_settings=CONTEXT)
@click.argument("count", type=click.IntRange(1, 10_000), required=False, metavar="N")
@_socket_options
@click.option("--wait", type=click.FloatRange(0), default=10.0, show_default=True,
              metavar="SECONDS", help="How long to wait for the N packets.")
@click.option("--show", is_flag=True, help="Print the trace recorded so far; start none.")
@click.option("--clear", is_flag=True, help="Stop tracing and forget the trace.")
def trace(count: int | None, socket_path: str | None, name: str | None, port: int | None,
          wait: float, show: bool, clear: bool) -> None:
    """Follow the next N packets through a running router's elements, as VPP's
    'trace add': each element a packet reaches, with the port, its length and first
    bytes, and where and why it was dropped. With several workers, each traces its
    next N packets, and the command waits until N have come in all.

    \b
    Examples:
      routebricks trace 5
      routebricks trace 20 --name edge --wait 30
      routebricks trace --show
    """
    import time

    if count is None and not (show or clear):
        raise click.UsageError("give N (packets to trace), --show or --clear")
    try:
        with _client(socket_path, name, port) as c:
            if clear:
                c.write("trace", "clear")
                return
            if count is not None:
                c.write("trace", str(count))
                deadline = time.monotonic() + wait
                # Each worker traces its next N; wait until N have been seen in all.
                while time.monotonic() < deadline and sum(
                        int(k) for k in re.findall(r"trace: (\d+) of", c.read("trace"))
                ) < count:
                    time.sleep(0.1)
            click.echo(c.read("trace"))
    except RouteBricksError as e:
        _fail(e)


def entry() -> None:
    """The console script: Ctrl-C before a router is running exits quietly (130)."""
    try:
        main(prog_name=os.path.basename(sys.argv[0]))
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        _exit(130)
    except SystemExit as e:
        _exit(e.code)
    _exit(0)


def _exit(code: object) -> None:
    """Leave without the interpreter's teardown: with numba loaded it takes ~100 ms (LLVM's
    and every module's), more than a small run itself, and there is nothing left for it to
    do: the command has closed its files and sockets and joined its workers. atexit
    handlers (multiprocessing's, tempfile's) still run, and our output is flushed. Under a
    profiler or a coverage tracer, the normal exit (they write their results then)."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler or coverage writes its results in the normal teardown
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (`| head`) has nothing more to hear.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
