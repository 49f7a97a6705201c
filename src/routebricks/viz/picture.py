"""A router's element graph as a Graphviz picture.

One node per element, labelled ``name :: Class`` as Click labels them (an anonymous element,
``Class@N``, shows its class), with its ports drawn on it: inputs along the top, outputs
along the bottom, push ports filled and pull ports hollow, as in Click's own pictures.
Connections run from output port to input port; pull connections are dashed. Elements of
a compound element (flattened to ``compound/inner``) are grouped in a cluster per compound,
nested as the compounds nest. Given packet counts, each connection is labelled with the
packets that crossed it (``?`` where the per-element counts cannot tell).
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from routebricks.engine.element import PULL, PUSH, Element
from routebricks.engine.router import Router
from routebricks.errors import RouteBricksError

if TYPE_CHECKING:
    import graphviz

    from routebricks.viz.counts import RouterAddress

#: Output formats: the dot text itself, or a picture that Graphviz's ``dot`` draws.
FORMATS = ("svg", "png", "pdf", "dot")
#: File name suffixes that name a format.
SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
#: Longest element configuration shown in a node's tooltip.
TOOLTIP_CONFIG = 200

_PUSH_PORT = 'BGCOLOR="black"'
_PULL_PORT = 'BGCOLOR="white"'


def output_format(output: str | None, fmt: str | None) -> str:
    """The format to write: ``fmt`` if given, else the one ``output``'s suffix names (dot
    text for stdout)."""
    if fmt is not None:
        fmt = fmt.lower()
        if fmt not in FORMATS:
            raise RouteBricksError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    if output is None or output == "-":
        return "dot"
    suffix = Path(output).suffix.lower()
    if suffix not in SUFFIXES:
        raise RouteBricksError(
            f"cannot tell the format from the name {output!r}: end it in "
            + ", ".join(s for s in SUFFIXES if s != ".gv") + ", or give --format")
    return SUFFIXES[suffix]


def picture(config: str | None, expr: str | None, defines: dict[str, str],
            loads: tuple[str, ...], live: RouterAddress | None, fmt: str,
            err: TextIO) -> bytes:
    """``routebricks graph``: the picture of the router that ``config`` (a file, ``-`` for
    stdin) and ``expr`` describe, as ``routebricks check`` builds it; with ``live``, its
    connections labelled with the packets that running router has moved. With ``live`` and
    neither ``config`` nor ``expr``, the running router's own configuration."""
    from routebricks.runtime.launch import load_graph, warn_if_empty
    from routebricks.viz.counts import edge_counts, read_counts

    got = None
    if live is not None and config is None and expr is None:
        got = read_counts(live, want_config=True)
        router = _running_router(got.flat_config or "", got.where, loads)
    else:
        graph = load_graph(config, expr, defines, loads)
        router = Router(graph)
        warn_if_empty(graph, running=False, err=err)
        if live is not None:
            got = read_counts(live)
    counts = caption = None
    if got is not None:
        where = got.where
        ours = [n for n in got.rows if n in router.elements]
        if router.elements and not ours:
            raise RouteBricksError(
                f"the router at {where} runs none of this configuration's elements: "
                "give the configuration it runs (or none, to draw that router's own)")
        others = [n for n in got.rows if n not in router.elements]
        if others:
            err.write(f"warning: the router at {where} also runs "
                      f"{', '.join(others[:5])}{' ...' if len(others) > 5 else ''}, which "
                      "this configuration lacks: is it the configuration it runs?\n")
        counts = edge_counts(router, got.rows)
        caption = f"packets per connection, from the router at {where}"
        if any(n is None for n in counts):
            caption += " (?: not told apart by per-element counts)"
    return render(draw(router, counts, caption), fmt)


def _running_router(text: str, where: str, loads: tuple[str, ...]) -> Router:
    """The router rebuilt from the flattened configuration a running router reports."""
    from routebricks.engine.registry import load_python_file
    from routebricks.engine.router import parse_text

    for path in loads:
        load_python_file(path)
    try:
        return Router(parse_text(text, f"<{where}>"))
    except RouteBricksError as e:
        raise RouteBricksError(
            f"cannot rebuild the configuration the router at {where} reports ({e}); "
            "give its configuration file (and --load for its own elements)") from None


def draw(router: Router, counts: Sequence[int | None] | None = None,
         caption: str | None = None) -> graphviz.Digraph:
    """The router's graph; with ``counts`` (one per ``router.connections``), connections
    labelled with the packets that crossed them."""
    graphviz = _graphviz()
    g = graphviz.Digraph("router", graph_attr={"rankdir": "TB", "nodesep": "0.3",
                                               "fontname": "Helvetica", "fontsize": "11"},
                         node_attr={"shape": "plaintext", "fontname": "Helvetica",
                                    "fontsize": "11"},
                         edge_attr={"fontname": "Helvetica", "fontsize": "10",
                                    "arrowsize": "0.7"})
    if caption:
        g.attr(label=caption, labelloc="b")
    tree = _Cluster("")
    for name in router.elements:
        tree.add(name)
    _draw_cluster(g, tree, router)
    for i, c in enumerate(router.connections):
        src, dst = router.elements.get(c.src), router.elements.get(c.dst)
        if src is None or dst is None:
            continue
        attrs = {}
        if _mode(src.output_modes, c.sport) == PULL:
            attrs["style"] = "dashed"
        if counts is not None:
            n = counts[i]
            attrs["label"] = f"{n:,}" if n is not None else "?"
        g.edge(f"{c.src}:o{c.sport}:s", f"{c.dst}:i{c.dport}:n", **attrs)
    return g


def render(g: graphviz.Digraph, fmt: str) -> bytes:
    """The picture in ``fmt``: the dot text, or what ``dot`` draws from it."""
    if fmt == "dot":
        return g.source.encode()
    if shutil.which("dot") is None:
        raise RouteBricksError(
            f"cannot draw {fmt}: Graphviz's 'dot' program is not installed (install "
            "Graphviz, e.g. 'apt install graphviz'), or write the dot text instead "
            "(-o FILE.dot, or no -o)")
    graphviz = _graphviz()
    try:
        return bytes(g.pipe(format=fmt, quiet=True))
    except graphviz.ExecutableNotFound:
        raise RouteBricksError(f"cannot draw {fmt}: Graphviz's 'dot' program did not run; "
                               "install Graphviz, or write .dot") from None
    except graphviz.CalledProcessError as e:
        err = (e.stderr or b"").decode(errors="replace").strip()
        raise RouteBricksError(f"Graphviz's 'dot' failed to draw {fmt}: {err}") from None


def title(name: str, e: Element) -> str:
    """``name :: Class``; an anonymous element (``Class@N``) is shown by its class."""
    cls = type(e).__name__
    local = name.rsplit("/", 1)[-1]
    if re.fullmatch(re.escape(cls) + r"@\d+", local):
        return cls
    return f"{name} :: {cls}"


class _Cluster:
    """Elements grouped by compound prefix (``a/b/c`` lives in cluster ``a/b`` in ``a``)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.elements: list[str] = []
        self.children: dict[str, _Cluster] = {}

    def add(self, name: str) -> None:
        parts = name.split("/")
        node = self
        for k in range(1, len(parts)):
            prefix = "/".join(parts[:k])
            node = node.children.setdefault(prefix, _Cluster(prefix))
        node.elements.append(name)


def _draw_cluster(g: Any, cluster: _Cluster, router: Router) -> None:
    for name in cluster.elements:
        e = router.elements[name]
        g.node(name, label=_label(name, e), tooltip=_tooltip(name, e))
    for prefix, child in cluster.children.items():
        with g.subgraph(name=f"cluster_{prefix}") as s:
            s.attr(label=prefix, labelloc="t", labeljust="l", style="rounded,dashed",
                   color="gray40", fontcolor="gray25")
            _draw_cluster(s, child, router)


def _label(name: str, e: Element) -> str:
    """An HTML-like label: input ports, ``name :: Class``, output ports."""
    rows = []
    if e.ninputs:
        rows.append(_ports("i", e.input_modes, e.ninputs))
    rows.append(f'<TR><TD CELLPADDING="5">{html.escape(title(name, e))}</TD></TR>')
    if e.noutputs:
        rows.append(_ports("o", e.output_modes, e.noutputs))
    return ('<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0" '
            f'STYLE="rounded">{"".join(rows)}</TABLE>>')


def _ports(side: str, modes: list[str], n: int) -> str:
    cells = []
    for p in range(n):
        push = _mode(modes, p) != PULL
        font = 'COLOR="white"' if push else 'COLOR="black"'
        what = "input" if side == "i" else "output"
        cells.append(
            f'<TD PORT="{side}{p}" BORDER="1" {_PUSH_PORT if push else _PULL_PORT} '
            f'FIXEDSIZE="TRUE" WIDTH="16" HEIGHT="12" '
            f'TOOLTIP="{what} {p} ({"push" if push else "pull"})">'
            f'<FONT POINT-SIZE="7" {font}>{p}</FONT></TD>')
    return ('<TR><TD><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="0">'
            f'<TR>{"".join(cells)}</TR></TABLE></TD></TR>')


def _tooltip(name: str, e: Element) -> str:
    config = " ".join(e.unparse_config().split())  # secrets (keys) redacted
    if len(config) > TOOLTIP_CONFIG:
        config = config[:TOOLTIP_CONFIG] + "..."
    return f"{name} :: {type(e).__name__}" + (f"({config})" if config else "")


def _mode(modes: list[str], port: int) -> str:
    return modes[port] if port < len(modes) else PUSH


def _graphviz() -> Any:
    try:
        import graphviz
    except ImportError:
        raise RouteBricksError("drawing needs the 'graphviz' Python package: "
                               "pip install graphviz") from None
    return graphviz
