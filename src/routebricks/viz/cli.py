"""``routebricks graph``: a picture of a router's element graph (Graphviz).

Added to the ``routebricks`` command through :data:`COMMANDS` (``PLUGINS`` in
:mod:`routebricks.cli`); graphviz and the engine are imported when the command runs.
"""

from __future__ import annotations

import os
import sys

import click

from routebricks.errors import RouteBricksError

__all__ = ["COMMANDS", "graph"]

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


@click.command("graph", context_settings=CONTEXT)
@click.argument("args", nargs=-1, metavar="[CONFIG] [NAME=VALUE]...")
@click.option("-f", "--file", "file", metavar="FILE",
              help="Read the configuration from FILE ('-' for stdin).")
@click.option("-e", "--expression", "expr", metavar="TEXT",
              help="Configuration text (with a file, appended to it, as for 'run').")
@click.option("--load", "loads", multiple=True, metavar="FILE.py",
              help="Load element classes from a Python file (repeatable).")
@click.option("-o", "--output", "output", metavar="FILE", default=None,
              help="Write the picture to FILE, in the format its suffix names (.svg, .png, "
              ".pdf, .dot) [default: dot text on stdout; '-' for stdout].")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "pdf", "dot"],
                                                   case_sensitive=False),
              default=None, help="Write this format, whatever the suffix of -o.")
@click.option("-u", "--unix-socket", "--socket", "socket_path", metavar="[PATH]",
              is_flag=False, flag_value="", default=None,
              help="Label each connection with the packets that crossed it, read from a "
              "running router: the one serving this control socket ('run -u'), or with no "
              "PATH the one 'routebricks handler' finds. Without CONFIG, draw that router's "
              "own configuration.")
@click.option("--name", metavar="NAME", default=None,
              help="As -u, for the router called NAME ('run --name', or its --netns).")
@click.option("-p", "--port", type=click.IntRange(1, 65535), default=None, metavar="PORT",
              help="As -u, for the router serving TCP 127.0.0.1:PORT ('run -p').")
def graph(args: tuple[str, ...], file: str | None, expr: str | None, loads: tuple[str, ...],
          output: str | None, fmt: str | None, socket_path: str | None, name: str | None,
          port: int | None) -> None:
    """Draw a picture of a router's element graph (Graphviz).

    One node per element ('name :: Class', its ports on it: push filled, pull hollow),
    compound elements as clusters, pull connections dashed.

    \b
    Examples:
      routebricks graph examples/iprouter.click -o iprouter.svg
      routebricks graph conf.click | dot -Tpng > conf.png
      routebricks graph --socket -o live.svg    # the running router, packets per edge
    """
    from routebricks.cli import _config_source, _fail, _split_defines
    from routebricks.viz.counts import RouterAddress
    from routebricks.viz.picture import output_format, picture

    live = None
    if socket_path is not None or name is not None or port is not None:
        if socket_path and os.path.isfile(socket_path):
            raise click.UsageError(f"{socket_path!r} is a file, not a control socket: put "
                                   "CONFIG before --socket, or give the socket's path")
        live = RouterAddress(socket_path or None, name, port)
    config, defines = _split_defines(args)
    if not (live is not None and config is None and file is None and expr is None):
        config, defines = _config_source(args, file, expr)
    try:
        kind = output_format(output, fmt)
    except RouteBricksError as e:
        raise click.UsageError(str(e)) from None
    to_stdout = output is None or output == "-"
    if to_stdout and kind in ("png", "pdf") and sys.stdout.isatty():
        raise click.UsageError(f"not writing {kind} to a terminal: give -o FILE")
    try:
        data = picture(config, expr, defines, loads, live, kind, sys.stderr)
        if to_stdout:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            assert output is not None
            _write(output, data)
    except RouteBricksError as e:
        _fail(e)


def _write(path: str, data: bytes) -> None:
    from pathlib import Path

    try:
        Path(path).write_bytes(data)
    except OSError as e:
        raise RouteBricksError(f"cannot write {path!r}: {e.strerror}") from None


COMMANDS = [graph]
