"""``routebricks graph``: the dot it writes is read back by Graphviz itself (``dot -Tjson``),
so nodes, ports, clusters and edge labels are checked as Graphviz understands them, not as
our text happens to look; pictures are real SVG/PNG/PDF; a running router's counts land on
the right connections."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from controltest import running_router

from routebricks import cli
from routebricks.engine.router import Router
from routebricks.runtime.control import ControlClient
from routebricks.viz.counts import edge_counts
from routebricks.viz.picture import output_format

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is missing")

# A compound inside a compound, anonymous elements, a Tee, push and pull.
NESTED = """
elementclass Inner { input -> ic :: Counter -> output }
elementclass Outer { input -> Strip(14) -> in :: Inner -> output }
src :: InfiniteSource(LIMIT 10, STOP true) -> o :: Outer -> q :: Queue -> u :: Unqueue
    -> t :: Tee(2) -> d :: Discard;
t[1] -> Discard;
"""


@dataclass
class Drawn:
    """A dot graph as Graphviz reads it."""

    nodes: dict[str, dict]  # name -> attributes
    edges: list[dict]  # with "src", "dst" (names), tailport, headport, label, style
    clusters: dict[str, dict]  # name -> {"nodes": {names}, "clusters": {names}}


def read_dot(text: str) -> Drawn:
    res = subprocess.run(["dot", "-Tjson"], input=text, capture_output=True, text=True,
                         timeout=60, check=True)
    g = json.loads(res.stdout)
    objects = g.get("objects", [])
    is_cluster = [o["name"].startswith("cluster") for o in objects]
    node_ids = {o["_gvid"]: o["name"] for o, c in zip(objects, is_cluster, strict=True)
                if not c}
    sub_ids = {o["_gvid"]: o["name"] for o, c in zip(objects, is_cluster, strict=True) if c}
    nodes = {o["name"]: o for o, c in zip(objects, is_cluster, strict=True) if not c}
    clusters = {o["name"]: {"nodes": {node_ids[i] for i in o.get("nodes", [])},
                            "clusters": {sub_ids[i] for i in o.get("subgraphs", [])}}
                for o, c in zip(objects, is_cluster, strict=True) if c}
    edges = [dict(e, src=node_ids[e["tail"]], dst=node_ids[e["head"]])
             for e in g.get("edges", [])]
    return Drawn(nodes, edges, clusters)


def graph(*args: str) -> tuple[int, bytes, str]:
    res = CliRunner().invoke(cli.main, ["graph", *args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout_bytes, res.stderr


def rb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "routebricks.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def edge(drawn: Drawn, src: str, dst: str) -> dict:
    found = [e for e in drawn.edges if e["src"] == src and e["dst"] == dst]
    assert len(found) == 1, (src, dst, [(e["src"], e["dst"]) for e in drawn.edges])
    return found[0]


# ---------------------------------------------------------------------- the dot text
@needs_dot
def test_nodes_ports_and_nested_clusters(tmp_path: Path) -> None:
    conf = tmp_path / "nested.click"
    conf.write_text(NESTED)
    code, out, err = graph(str(conf))
    assert code == 0, err
    drawn = read_dot(out.decode())
    assert set(drawn.nodes) == {"src", "o/Strip@1", "o/in/ic", "q", "u", "t", "d",
                                "Discard@7"}
    label = {n: a["label"] for n, a in drawn.nodes.items()}
    assert "src :: InfiniteSource" in label["src"]
    assert "o/in/ic :: Counter" in label["o/in/ic"]
    assert '"5">Strip</TD>' in label["o/Strip@1"]  # anonymous: its class alone
    assert '"5">Discard</TD>' in label["Discard@7"]
    # Ports: a Tee's two outputs and one input; a Discard has no outputs.
    assert 'PORT="o0"' in label["t"] and 'PORT="o1"' in label["t"]
    assert 'PORT="i0"' in label["t"] and 'PORT="i1"' not in label["t"]
    assert 'PORT="o0"' not in label["d"]
    # Compounds as clusters, nested as the compounds nest.
    assert drawn.clusters["cluster_o"]["nodes"] >= {"o/Strip@1", "o/in/ic"}
    assert drawn.clusters["cluster_o"]["clusters"] == {"cluster_o/in"}
    assert drawn.clusters["cluster_o/in"]["nodes"] == {"o/in/ic"}
    for top in ("src", "q", "u", "t", "d", "Discard@7"):
        assert not any(top in c["nodes"] for c in drawn.clusters.values())
    # Every connection of the flattened graph, port to port; pull connections dashed.
    pairs = {(e["src"], e["tailport"], e["dst"], e["headport"]) for e in drawn.edges}
    assert pairs == {
        ("src", "o0:s", "o/Strip@1", "i0:n"), ("o/Strip@1", "o0:s", "o/in/ic", "i0:n"),
        ("o/in/ic", "o0:s", "q", "i0:n"), ("q", "o0:s", "u", "i0:n"),
        ("u", "o0:s", "t", "i0:n"), ("t", "o0:s", "d", "i0:n"),
        ("t", "o1:s", "Discard@7", "i0:n")}
    assert edge(drawn, "q", "u").get("style") == "dashed"
    assert all(e.get("style") != "dashed" for e in drawn.edges if e["src"] != "q")
    assert 'BGCOLOR="white"' in label["q"].split('PORT="o0"')[1][:40]  # pull: hollow
    assert 'BGCOLOR="black"' in label["q"].split('PORT="i0"')[1][:40]  # push: filled
    assert not any("label" in e for e in drawn.edges)  # no counts without a router


@needs_dot
def test_same_inputs_as_check(tmp_path: Path) -> None:
    """-e, -f, NAME=VALUE and --load, as 'run' and 'check' take them."""
    (tmp_path / "mine.py").write_text(
        "from routebricks.engine.element import Element\n"
        "class VizMarker(Element):\n"
        '    """Passes packets.\n\n    Ports: 1 input, 1 output.\n    """\n'
        '    port_count = "1/1"\n')
    conf = tmp_path / "d.click"
    conf.write_text("define($N 3);\nsrc :: InfiniteSource(LIMIT $N) -> m :: VizMarker "
                    "-> Discard;\n")
    code, out, err = graph("-f", str(conf), "--load", str(tmp_path / "mine.py"), "N=5",
                           "-e", "extra :: Idle -> Discard")
    assert code == 0, err
    drawn = read_dot(out.decode())
    assert "m :: VizMarker" in drawn.nodes["m"]["label"]
    assert "LIMIT 5" in drawn.nodes["src"]["tooltip"]
    assert "extra" in drawn.nodes


def test_format_from_suffix_and_option() -> None:
    assert output_format(None, None) == "dot"
    assert output_format("-", None) == "dot"
    assert output_format("a/b.SVG", None) == "svg"
    assert output_format("x.png", None) == "png"
    assert output_format("x.pdf", None) == "pdf"
    assert output_format("x.gv", None) == "dot"
    assert output_format("x.dot", "svg") == "svg"


def test_unknown_format_is_a_clear_error(tmp_path: Path) -> None:
    res = rb("graph", "-e", "Idle -> Discard", "-o", str(tmp_path / "g.txt"))
    assert res.returncode == 2
    assert "cannot tell the format" in res.stderr and ".svg" in res.stderr
    assert "Traceback" not in res.stderr
    res = rb("graph", "-e", "Idle -> Discard", "--format", "jpeg")
    assert res.returncode == 2 and "jpeg" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "g.txt").exists()


# ---------------------------------------------------------------------- pictures
@needs_dot
def test_svg_png_pdf_written(tmp_path: Path) -> None:
    conf = tmp_path / "nested.click"
    conf.write_text(NESTED)
    code, _, err = graph(str(conf), "-o", str(tmp_path / "g.svg"))
    assert code == 0, err
    root = ET.parse(tmp_path / "g.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    titles = {t.text for t in root.iter("{http://www.w3.org/2000/svg}title")}
    assert {"src", "o/in/ic", "cluster_o", "cluster_o/in"} <= titles
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "src :: InfiniteSource" in texts
    assert graph(str(conf), "-o", str(tmp_path / "g.png"))[0] == 0
    assert (tmp_path / "g.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert graph(str(conf), "-o", str(tmp_path / "g.pdf"))[0] == 0
    assert (tmp_path / "g.pdf").read_bytes().startswith(b"%PDF")
    # --format wins over the suffix; '-o -' is stdout.
    assert graph(str(conf), "-o", str(tmp_path / "g.out"), "--format", "svg")[0] == 0
    ET.parse(tmp_path / "g.out")
    code, out, _ = graph(str(conf), "-o", "-", "--format", "svg")
    assert code == 0 and ET.fromstring(out).tag.endswith("svg")
    code, out, _ = graph(str(conf), "-o", str(tmp_path / "g.dot"))
    assert code == 0 and (tmp_path / "g.dot").read_text().startswith("digraph")


def test_no_dot_program_is_a_clear_error(tmp_path: Path) -> None:
    """Without Graphviz's dot, a picture format is refused with what to do; dot text is
    still written."""
    bare = tmp_path / "bin"
    bare.mkdir()
    env = dict(os.environ, PATH=str(bare))
    res = rb("graph", "-e", "Idle -> Discard", "-o", str(tmp_path / "g.svg"), env=env)
    assert res.returncode == 1, res.stderr
    assert "dot" in res.stderr and "install Graphviz" in res.stderr and ".dot" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "g.svg").exists()
    res = rb("graph", "-e", "Idle -> Discard", "-o", str(tmp_path / "g.dot"), env=env)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


# ---------------------------------------------------------------------- bad input
def test_bad_config_gives_its_place_and_exit_1(tmp_path: Path) -> None:
    conf = tmp_path / "bad.click"
    conf.write_text("a :: Counter;\nInfiniteSource -> a -> Countr -> Discard;\n")
    res = rb("graph", str(conf), "-o", str(tmp_path / "g.svg"))
    assert res.returncode == 1
    assert f"{conf}:2:24: " in res.stderr and "Countr" in res.stderr
    assert "^" in res.stderr  # the source line and a caret, as the parser shows them
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert not (tmp_path / "g.svg").exists()
    # A port error found when the router is built: also file:line:column.
    conf.write_text("InfiniteSource -> t :: Tee(2) -> Discard;\n")
    res = rb("graph", str(conf))
    assert res.returncode == 1 and f"{conf}:1:" in res.stderr and "output 1" in res.stderr
    assert "Traceback" not in res.stderr


def test_no_router_on_the_socket(tmp_path: Path) -> None:
    res = rb("graph", "-e", "Idle -> Discard", "-u", str(tmp_path / "none.sock"))
    assert res.returncode == 1 and "none.sock" in res.stderr
    assert "Traceback" not in res.stderr
    # --socket takes an optional PATH: a configuration file after it is caught.
    conf = tmp_path / "c.click"
    conf.write_text("Idle -> Discard;\n")
    res = rb("graph", "--socket", str(conf))
    assert res.returncode == 2 and "put CONFIG before --socket" in res.stderr
    assert "Traceback" not in res.stderr


# ---------------------------------------------------------------------- counts
# Every connection's count follows from the per-element counts here: the source's count,
# the Counters' pass-through, the Queue's packets in and out, the Tee's branches.
LIVE = """
elementclass Stage { input -> sc :: Counter -> Strip(14) -> output }
src :: InfiniteSource(LIMIT 1000, STOP false) -> s :: Stage -> c :: Counter
    -> q :: Queue(5000) -> u :: Unqueue -> t :: Tee(2) -> d :: Discard;
t[1] -> d2 :: Discard;
// a paused source is not done: it keeps the router running for the client
InfiniteSource(ACTIVE false) -> Discard;
"""
LIVE_COUNTS = {("src", "s/sc"): 1000, ("s/sc", "s/Strip@2"): 1000,
               ("s/Strip@2", "c"): 1000, ("c", "q"): 1000, ("q", "u"): 1000,
               ("u", "t"): 1000, ("t", "d"): 1000, ("t", "d2"): 1000,
               ("InfiniteSource@9", "Discard@10"): 0}


def test_counts_of_a_router_run_here() -> None:
    router = Router.from_text(LIVE, profile=True)
    router.run(time_limit=2.0)  # the paused source keeps it going
    rows = {r["element"]: r for r in router.stats_rows()}
    got = dict(zip(((c.src, c.dst) for c in router.connections),
                   edge_counts(router, rows), strict=True))
    assert got == LIVE_COUNTS


def test_counts_left_unknown_rather_than_guessed() -> None:
    """Two push connections into one input: the element's count is their sum, not which."""
    router = Router.from_text("a :: InfiniteSource(LIMIT 30, STOP false) -> x :: Strip(0);\n"
                              "b :: Idle -> x; x -> Queue -> Unqueue -> d :: Discard;\n"
                              "e :: InfiniteSource(LIMIT 7) -> [0]m :: Discard;"
                              "f :: InfiniteSource(LIMIT 5) -> m;", profile=True)
    router.run(time_limit=2.0)
    rows = {r["element"]: r for r in router.stats_rows()}
    got = dict(zip(((c.src, c.dst) for c in router.connections),
                   edge_counts(router, rows), strict=True))
    assert got[("a", "x")] == 30 and got[("b", "x")] == 0  # a source's count; Idle's: x - a
    assert got[("e", "m")] == 7 and got[("f", "m")] == 5
    assert got[("x", "Queue@4")] is None  # Strip may drop, create? not declared: unknown
    assert got[("Unqueue@5", "d")] == 30
    # Without the profiler, only sources (and what passes through) are known.
    rows = {n: dict(r, packets=0, calls=0, self_ns=0) for n, r in rows.items()}
    got = dict(zip(((c.src, c.dst) for c in router.connections),
                   edge_counts(router, rows), strict=True))
    assert got[("a", "x")] == 30 and got[("Unqueue@5", "d")] is None


def _wait_for(sock: str, spec: str, want: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    with ControlClient(sock) as c:
        while (value := c.read(spec).strip()) != want:
            assert time.monotonic() < deadline, f"{spec} is {value}, not {want}"
            time.sleep(0.05)


@needs_dot
def test_edge_labels_from_a_running_router(tmp_path: Path) -> None:
    conf = tmp_path / "live.click"
    conf.write_text(LIVE)
    with running_router(tmp_path, LIVE) as r:
        _wait_for(r.sock, "d2.count", "1000")
        _wait_for(r.sock, "d.count", "1000")
        # The configuration given, or none: the router's own (read from it).
        for args in ([str(conf), "-u", r.sock], ["--socket", r.sock]):
            res = rb("graph", *args)
            assert res.returncode == 0, res.stderr
            assert res.stderr == "" and "Traceback" not in res.stderr
            drawn = read_dot(res.stdout)
            labels = {(e["src"], e["dst"]): e.get("label") for e in drawn.edges}
            assert labels == {k: f"{v:,}" for k, v in LIVE_COUNTS.items()}, args
            assert drawn.clusters["cluster_s"]["nodes"] == {"s/sc", "s/Strip@2"}
        # --socket without a path: the router 'routebricks handler' would find.
        env = dict(os.environ, ROUTEBRICKS_SOCKET=r.sock)
        res = rb("graph", "--socket", "-o", str(tmp_path / "live.svg"), env=env)
        assert res.returncode == 0, res.stderr
        ET.parse(tmp_path / "live.svg")
        # A configuration the router does not run is refused, not drawn with zeros.
        res = rb("graph", "-e", "x :: Idle -> y :: Discard", "-u", r.sock)
        assert res.returncode == 1 and "none of this configuration" in res.stderr
        r.assert_quiet()
