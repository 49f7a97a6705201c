"""Click's compound-class features: overloads (``||``), ``...`` extending the previous
definition, ``__REST__`` formals, and variable forms (``${a[N]}``, ``${a[$i]}``,
``${a-default}``, single quotes)."""

from __future__ import annotations

import pytest

from routebricks.engine.flatten import expand_variables
from routebricks.engine.router import Router, parse_text
from routebricks.errors import ConfigError


def classes(text: str) -> dict[str, tuple[str, str]]:
    g = parse_text(text, "t.click")
    return {n: (d.class_name, d.config) for n, d in g.elements.items()}


def test_overloads_pick_by_arguments_and_dots_extend() -> None:
    got = classes("""
        elementclass Foo { $a | input -> Paint($a) -> output;
                        || $a, $b | input -> Paint($a) -> Paint($b) -> output; }
        elementclass Foo { $a, $b, $c | input -> Strip($c) -> output; || ... }
        Idle -> f1 :: Foo(1) -> f2 :: Foo(2, 3) -> f3 :: Foo(1, 2, 14) -> Discard;
    """)
    assert got["f1/Paint@1"] == ("Paint", "1")
    assert (got["f2/Paint@1"], got["f2/Paint@2"]) == (("Paint", "2"), ("Paint", "3"))
    assert got["f3/Strip@1"] == ("Strip", "14")
    with pytest.raises(ConfigError, match="no definition of element class Foo takes 4"):
        classes("elementclass Foo { $a | input -> output || $a, $b | input -> output }"
                "Idle -> Foo(1, 2, 3, 4) -> Discard")


def test_dots_can_extend_a_library_class() -> None:
    got = classes("elementclass Paint { $a, $b | input -> Paint($a) -> Paint($b) -> output "
                  "|| ... }  Idle -> p :: Paint(7) -> q :: Paint(1, 2) -> Discard;")
    assert got["p"] == ("Paint", "7")  # one argument: the library's Paint
    assert got["q/Paint@1"] == ("Paint", "1") and got["q/Paint@2"] == ("Paint", "2")


def test_rest_formal_collects_the_other_arguments() -> None:
    got = classes("elementclass R { $first, __REST__ $rest | input -> c :: Classifier($rest) "
                  "-> output; c[1] -> Discard }  Idle -> r :: R(x, 12/0800, -) -> Discard;")
    assert got["r/c"] == ("Classifier", "12/0800, -")


@pytest.mark.parametrize(("text", "want"), [
    ("${a[1]}", "y"), ("${a[$i]}", "y"), ("${a[7]}", ""), ("${b-dflt}", "dflt"),
    ("${n-dflt}", "7"), ("'$a'", "'$a'"), ('"$q"', '"say \\"hi\\""'),
    ("$x $(add 1 2) $?", "$x $(add 1 2) $?"), ("pre${n}post$n", "pre7post7"),
])
def test_variable_forms(text: str, want: str) -> None:
    env = {"$a": "x y z", "$i": "1", "$n": "7", "$q": 'say "hi"'}
    assert expand_variables(text, env) == want


def test_indexed_arguments_in_a_compound_run() -> None:
    r = Router.from_text("""
        elementclass Pick { $words, $i | input -> Paint(${words[$i]}) -> output }
        InfiniteSource(LIMIT 1, STOP true) -> p :: Pick("3 5 9", 2) -> c :: Counter -> Discard;
    """)
    assert r.elements["p/Paint@1"].read("color") == "9"
    r.run()
    assert r.elements["c"].read("count") == "1"


def _classes(text: str) -> dict[str, str]:
    return {n: d.class_name for n, d in parse_text(text).elements.items()}


def test_overloads_pick_by_the_ports_the_element_uses() -> None:
    # As Click: the first definition whose ports are those connected here.
    two = "elementclass A { input -> d :: Discard || input -> n :: Null -> output }; "
    assert "a/d" in _classes(two + "Idle -> a :: A")
    assert "a/n" in _classes(two + "Idle -> a :: A -> Discard")
    # Anonymous uses of a bare class name are matched one by one.
    names = _classes(two + "Idle -> A -> Discard; Idle -> A")
    assert {n.split("/")[1] for n in names if "/" in n} == {"n", "d"}
    # Arguments and ports together.
    three = ("elementclass B { $x | input -> p :: Paint($x) -> output || "
             "$x, $y | input -> q :: Paint($y) -> output || $x | input -> d :: Discard }; ")
    got = _classes(three + "Idle -> b1 :: B(1, 2) -> b2 :: B(3) -> Discard; Idle -> b3 :: B(4)")
    assert {"b1/q", "b2/p", "b3/d"} <= set(got)
    r = Router.from_text(three + "InfiniteSource(LIMIT 2, STOP true) -> b :: B(1, 7) "
                         "-> c :: Counter -> Discard")
    r.run()
    assert r.read_handler("c.count") == "2"


def test_no_overload_with_these_ports_is_an_error_naming_the_candidates() -> None:
    text = ("elementclass A { input -> Discard || input -> output }; "
            "Idle -> b :: A -> Discard; b[1] -> Discard")
    with pytest.raises(ConfigError) as e:
        parse_text(text)
    assert e.value.message == "no match for 'A[1 input, 2 outputs]'"
    assert e.value.hint == "candidates are: A[1 input, 0 outputs]; A[1 input, 1 output]"
    # One definition: no matching by ports (Click then reports the unconnected port).
    with pytest.raises(ConfigError, match="input 0 is not connected"):
        Router.from_text("elementclass A { input -> Discard }; Idle -> a :: A -> Discard")
