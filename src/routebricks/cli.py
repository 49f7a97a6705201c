"""The ``routebricks`` command.

``routebricks run`` takes Click's own flags where they apply (``-f``, ``-e``, ``-h
ELEMENT.HANDLER``, ``-q``, ``-o``, ``NAME=value``), so Click habits carry over. As in Click,
element messages and the run summary go to stderr and handler values to stdout; ``-h`` is the
handler flag, so help is ``--help``.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import click

from routebricks.engine.graph import Graph
from routebricks.errors import RouteBricksError

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


def _fail(e: Exception, code: int = 1) -> None:
    click.echo(str(e), err=True)
    sys.exit(code)


def _load_graph(
    config: str | None,
    file: str | None,
    expr: str | None,
    defines: dict[str, str],
    loads: tuple[str, ...],
) -> Graph:
    from routebricks.engine.registry import load_python_file
    from routebricks.engine.router import parse_text

    for path in loads:
        load_python_file(path)
    if config and file:
        raise click.UsageError("router configuration specified twice (CONFIG and -f)")
    path = config or file
    if path is None and expr is None:
        raise click.UsageError("no configuration: give CONFIG, -f FILE or -e 'TEXT'")
    if path is not None:
        if path == "-":
            text, name, base = sys.stdin.read(), "<stdin>", None
        else:
            p = Path(path)
            try:
                text = p.read_text()
            except OSError as e:
                raise RouteBricksError(
                    f"cannot read configuration {path!r}: {e.strerror}"
                ) from None
            name, base = path, p.parent
        return parse_text(text, name, extra=expr, base_dir=base, defines=defines)
    assert expr is not None
    return parse_text(expr, "<-e>", base_dir=Path.cwd(), defines=defines)


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


@click.group(context_settings=CONTEXT)
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
    "--time",
    "time_limit",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Stop after this many seconds.",
)
@click.option(
    "--stats",
    is_flag=True,
    help="Profile elements and print per-element calls, packets, drops and time "
    "per packet when the run ends.",
)
@click.option(
    "--load",
    "loads",
    multiple=True,
    metavar="FILE.py",
    help="Load element classes from a Python file (repeatable).",
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
    stats: bool,
    loads: tuple[str, ...],
) -> None:
    """Run a router described in the Click configuration language.

    \b
    Examples:
      routebricks run examples/forward.click
      routebricks run -e 'FromDump(in.pcap) -> c :: Counter -> Discard' -h c.count
      routebricks run conf.click --kp 256 --time 10 --stats
    """
    from routebricks.engine.router import Router

    try:
        config, defines = _split_defines(args)
        graph = _load_graph(config, file, expr, defines, loads)
        router = Router(graph, profile=stats)
        if kp is not None:
            router.kp = kp
        if output:
            text = router.flat_config()
            if output == "-":
                sys.stdout.write(text)
            else:
                Path(output).write_text(text)
        router.initialize()
    except RouteBricksError as e:
        _fail(e)
        return
    reason = "not run (-q)"
    if not quit_:

        def on_signal(signum: int, _frame: object) -> None:
            router.request_stop("interrupted", force=True)

        old_int = signal.signal(signal.SIGINT, on_signal)
        old_term = signal.signal(signal.SIGTERM, on_signal)
        try:
            reason = router.run(limit=limit, time_limit=time_limit)
        except RouteBricksError as e:
            router.cleanup()
            _fail(e)
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
    router.cleanup()
    if not quit_:
        _summary(router, reason, stats)
    code = 0
    for h in handlers:
        try:
            value = router.read_handler(h)
        except RouteBricksError as e:
            click.echo(str(e), err=True)
            code = 1
            continue
        if len(handlers) > 1:
            sys.stdout.write(f"{h}:\n{value}{'' if value.endswith(chr(10)) else chr(10)}\n")
        else:
            sys.stdout.write(value + ("" if not value or value.endswith("\n") else "\n"))
    sys.stdout.flush()
    sys.exit(code)


def _summary(router: object, reason: str, stats: bool) -> None:
    """The end-of-run report on stderr: why it stopped, counts, drops by reason."""
    from routebricks.engine.router import Router
    from routebricks.report import render_stats

    assert isinstance(router, Router)
    render_stats(router, reason, detailed=stats, file=sys.stderr)


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

    try:
        config, defines = _split_defines(args)
        graph = _load_graph(config, file, expr, defines, loads)
        router = Router(graph)
    except RouteBricksError as e:
        _fail(e)
        return
    if output:
        text = router.flat_config()
        if output == "-":
            sys.stdout.write(text)
        else:
            Path(output).write_text(text)
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

    for path in loads:
        load_python_file(path)
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


if __name__ == "__main__":  # pragma: no cover
    main(prog_name=os.path.basename(sys.argv[0]))
