"""Property tests for the configuration language: valid configurations round-trip through
unparse, and garbage gives a positioned ConfigError, never a traceback."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routebricks.engine.router import parse_text
from routebricks.errors import ConfigError

CLASSES = {
    # class: (inputs, outputs, sample configurations)
    "InfiniteSource": (0, 1, ["", "LIMIT 5", "LENGTH 64, LIMIT 10", "\"abc\", 3"]),
    "Counter": (1, 1, [""]),
    "Discard": (1, 0, ["", "ACTIVE false"]),
    "Classifier": (1, 2, ["12/0800, -", "!12/0806 20/0001, -"]),
}
names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in ("input", "output"))


@st.composite
def graphs(draw):  # noqa: ANN201 - hypothesis strategy
    n = draw(st.integers(2, 8))
    elem_names = draw(st.lists(names, min_size=n, max_size=n, unique=True))
    elems = {}
    for name in elem_names:
        cls = draw(st.sampled_from(sorted(CLASSES)))
        cfg = draw(st.sampled_from(CLASSES[cls][2]))
        elems[name] = (cls, cfg)
    outs = [(e, p) for e, (c, _) in elems.items() for p in range(CLASSES[c][1])]
    ins = [(e, p) for e, (c, _) in elems.items() for p in range(CLASSES[c][0])]
    k = draw(st.integers(0, min(len(outs), len(ins))))
    src = draw(st.permutations(outs))[:k]
    dst = draw(st.permutations(ins))[:k]
    return elems, list(zip(src, dst, strict=True))


def render(elems, edges, style) -> str:  # noqa: ANN001
    """Write the graph in one of several equivalent styles."""
    sep = ";\n" if style % 2 == 0 else "\n"
    lines = ["// generated"]
    for name, (cls, cfg) in elems.items():
        decl = f"{name} :: {cls}" + (f"({cfg})" if cfg else "")
        if style % 3 == 0:
            decl += "  /* block comment */"
        lines.append(decl)
    for (a, p), (b, q) in edges:
        left = f"{a} [{p}]" if p or style % 5 == 0 else a
        right = f"[{q}] {b}" if q or style % 7 == 0 else b
        lines.append(f"{left} -> {right}")
    return sep.join(lines) + sep


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.integers(0, 1000))
def test_valid_configurations_round_trip(g, style) -> None:  # noqa: ANN001
    elems, edges = g
    parsed = parse_text(render(elems, edges, style))
    assert {n: (d.class_name, d.config) for n, d in parsed.elements.items()} == elems
    assert {(c.src, c.sport, c.dst, c.dport) for c in parsed.connections} == {
        (a, p, b, q) for (a, p), (b, q) in edges}
    again = parse_text(parsed.unparse())
    assert again.same_as(parsed)
    assert parse_text(again.unparse()).unparse() == again.unparse()


ALPHABET = st.sampled_from(list("abcXYZ019 _@/$:;,->[](){}|\"'\n\t*#!.=") +
                           ["::", "->", "//", "/*", "*/", "elementclass", "define", "require",
                            "Counter", "Discard", "input", "output", "$X"])


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_garbage_gives_a_positioned_error_never_a_traceback(text: str) -> None:
    try:
        parse_text(text, "junk.click")
    except ConfigError as e:
        assert e.pos is not None, f"no position for {text!r}: {e}"
        assert e.pos.file in ("junk.click", "<-e>")
        lines = text.split("\n")
        assert 1 <= e.pos.line <= len(lines)
        assert 1 <= e.pos.column <= len(lines[e.pos.line - 1]) + 1
