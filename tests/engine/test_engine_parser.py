"""The Click configuration language: features, flattening, and errors with positions."""

from __future__ import annotations

import pytest

from routebricks.engine.graph import Connection
from routebricks.engine.router import Router, parse_text
from routebricks.errors import ConfigError


def conns(g) -> set[tuple[str, int, str, int]]:
    return {(c.src, c.sport, c.dst, c.dport) for c in g.connections}


def test_declarations_chains_and_ports() -> None:
    g = parse_text("""
        // a comment
        /* a block
           comment */
        src :: InfiniteSource(LIMIT 10);
        c, d :: Counter;
        src -> c -> t :: Tee(2);
        t [1] -> [0] d -> Discard;
        t [0] -> Discard
    """)
    assert g.elements["c"].class_name == "Counter"
    assert g.elements["d"].class_name == "Counter"
    assert g.elements["t"].config == "2"
    assert conns(g) == {
        ("src", 0, "c", 0), ("c", 0, "t", 0), ("t", 1, "d", 0), ("d", 0, "Discard@5", 0),
        ("t", 0, "Discard@6", 0),
    }


def test_anonymous_elements_are_named_class_at_n() -> None:
    g = parse_text("Idle -> Counter -> Discard")
    assert list(g.elements) == ["Idle@1", "Counter@2", "Discard@3"]


def test_semicolons_optional_and_use_before_declaration() -> None:
    g = parse_text("a -> b\na :: InfiniteSource\nb :: Discard")
    assert conns(g) == {("a", 0, "b", 0)}


def test_config_strings_keep_nested_parens_quotes_and_drop_comments() -> None:
    g = parse_text('p :: Print("a, (b)" // note\n, 10) -> Discard; InfiniteSource -> p')
    from routebricks.engine.argtext import split_args

    assert split_args(g.elements["p"].config) == ['"a, (b)"', "10"]
    assert "note" not in g.elements["p"].config


def test_define_and_variables() -> None:
    g = parse_text("define($N 5, $LEN 64)\nInfiniteSource(LIMIT $N, LENGTH ${LEN}) -> Discard")
    assert g.elements["InfiniteSource@1"].config == "LIMIT 5, LENGTH 64"


def test_command_line_defines_override_file() -> None:
    g = parse_text("define($N 5)\nInfiniteSource(LIMIT $N) -> Discard", defines={"N": "7"})
    assert g.elements["InfiniteSource@1"].config == "LIMIT 7"


def test_compound_elements_flatten_with_arguments() -> None:
    g = parse_text("""
        elementclass Counted { $label, LIMIT $lim |
            input -> c :: Counter -> Print($label, $lim) -> output;
        }
        src :: InfiniteSource(LIMIT 3) -> x :: Counted(hello, LIMIT 9) -> Discard;
    """)
    assert g.elements["x/c"].class_name == "Counter"
    assert g.elements["x/Print@2"].config == "hello, 9"
    assert conns(g) == {("src", 0, "x/c", 0), ("x/c", 0, "x/Print@2", 0),
                        ("x/Print@2", 0, "Discard@3", 0)}


def test_compound_with_two_ports_and_nesting() -> None:
    g = parse_text("""
        elementclass Inner { input -> Counter -> output }
        elementclass Outer {
            input [0] -> a :: Inner -> [0] output;
            input [1] -> b :: Inner -> [1] output;
        }
        s1 :: InfiniteSource; s2 :: InfiniteSource;
        o :: Outer;
        s1 -> [0] o [0] -> d1 :: Discard;
        s2 -> [1] o [1] -> d2 :: Discard;
    """)
    assert ("s1", 0, "o/a/Counter@1", 0) in conns(g)
    assert ("o/b/Counter@1", 0, "d2", 0) in conns(g)
    assert not any("input" in c.src or "output" in c.dst for c in g.connections)


def test_elementclass_synonym_and_anonymous_compound() -> None:
    g = parse_text("elementclass Sink Discard; InfiniteSource -> Sink;"
                   "InfiniteSource -> { input -> Counter -> output } -> Discard")
    classes = sorted(d.class_name for d in g.elements.values())
    assert classes == ["Counter", "Discard", "Discard", "InfiniteSource", "InfiniteSource"]


def test_e_text_overrides_declarations() -> None:
    g = parse_text("s :: InfiniteSource(LIMIT 1) -> c :: Counter -> Discard",
                   extra="c :: Null")
    assert g.elements["c"].class_name == "Null"
    assert ("s", 0, "c", 0) in conns(g)


def test_unparse_reparses_to_same_graph() -> None:
    text = """
        elementclass P { $x | input -> Paint($x) -> output }
        s :: InfiniteSource(LIMIT 4) -> p :: P(3) -> t :: Tee;
        t [0] -> Discard; t [1] -> Counter -> Discard;
    """
    g = parse_text(text)
    g2 = parse_text(g.unparse())
    assert g.same_as(g2)


@pytest.mark.parametrize("text, line, col, words", [
    ("a :: Counter ->", 1, 16, "expected an element"),
    ("a :: Countr", 1, 6, "unknown element class 'Countr'"),
    ("x -> Discard", 1, 1, "undeclared element 'x'"),
    ("a :: Counter; a :: Counter", 1, 15, "redeclaration"),
    ("InfiniteSource -> [x] Discard", 1, 20, "port number"),
    ("InfiniteSource(LIMIT 3", 1, 15, "unterminated configuration"),
    ("\n\n  Idle -> Discard ]", 3, 19, "found ']'"),
    ("elementclass E { input -> output", 1, 33, "'}'"),
    ("Counter :: Discard", 1, 1, "class name"),
    ("InfiniteSource(LIMIT $N) -> Discard", 1, 1, "bad value '$N' for LIMIT"),
    ("/* never closed", 1, 1, "unterminated comment"),
])
def test_errors_carry_position_and_text(text: str, line: int, col: int, words: str) -> None:
    with pytest.raises(ConfigError) as ei:
        Router(parse_text(text, "conf.click"))
    e = ei.value
    assert e.pos is not None, str(e)
    assert (e.pos.file, e.pos.line, e.pos.column) == ("conf.click", line, col), str(e)
    assert words in str(e)
    assert str(e).startswith(f"conf.click:{line}:{col}: ")


def test_error_messages_have_hints() -> None:
    with pytest.raises(ConfigError) as ei:
        parse_text("InfiniteSource -> Countr -> Discard")
    assert "did you mean Counter" in str(ei.value)


def test_connection_type_is_hashable_and_positions_ignored() -> None:
    a = Connection("a", 0, "b", 0)
    assert a == Connection("a", 0, "b", 0, pos=None)
    assert len({a, Connection("a", 0, "b", 0)}) == 1


def test_a_variable_no_define_sets_reaches_the_element_as_text(capfd: pytest.CaptureFixture
                                                                ) -> None:
    # As Click: Script and Print see "$X" itself (Script's own variables are written so).
    r = Router(parse_text("define($Y 7); InfiniteSource(LIMIT 1, STOP true) -> Print($X$Y) "
                          "-> Discard", "v.click"))
    r.run()
    assert "$X7:" in capfd.readouterr().err
    with pytest.raises(ConfigError) as ei:
        Router(parse_text("InfiniteSource(LIMIT ${N}) -> Discard", "conf.click"))
    assert "${N} is not defined" in str(ei.value)
