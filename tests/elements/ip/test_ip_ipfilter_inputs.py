"""IPFilter and IPClassifier expressions as a user can get them wrong: nested too deeply,
huge numbers, huge output numbers; and fuzzing the expression parser with random words of
its grammar: a filter, or a ConfigError naming the pattern."""

from __future__ import annotations

import pytest
from fuzztest import FUZZ, NASTY
from hypothesis import given
from hypothesis import strategies as st

from routebricks.elements.ip.ipfilter_tree import MAX_NESTING
from routebricks.engine.router import Router
from routebricks.errors import ConfigError


def ipfilter(rules: str) -> Router:
    return Router.from_text(f"Idle -> f :: IPFilter({rules}) -> Discard;")


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as ei:
        Router.from_text(text)
    return str(ei.value)


@pytest.mark.parametrize("open_, close", [("(", ")"), ("not ", ""), ("! ", "")])
def test_expressions_nest_to_a_documented_depth(open_: str, close: str) -> None:
    ipfilter("allow " + open_ * MAX_NESTING + "tcp" + close * MAX_NESTING)
    msg = error_of("Idle -> IPFilter(allow " + open_ * 300 + "tcp" + close * 300 + ") -> Discard")
    assert f"expression nested too deeply at its word {MAX_NESTING + 1} " in msg
    assert f"more than {MAX_NESTING} levels" in msg
    assert msg.startswith("<config>:1:9: IPFilter@2 :: IPFilter: pattern 0 (")
    assert len(msg.splitlines()[0]) < 400  # the pattern is quoted cut short


def test_nested_conditionals_are_bounded_too() -> None:
    deep = "tcp ? " * 150 + "udp" + " : icmp" * 150
    assert "nested too deeply" in error_of(f"Idle -> IPClassifier({deep}, -) -> Discard")


def test_huge_numbers_and_outputs_are_clear_errors() -> None:
    big = "9" * 100_000
    assert "value '999999999999999999999999...' (100000 characters) out of range" in error_of(
        f"Idle -> IPFilter(allow ip ttl < {big}) -> Discard")
    assert "output '999999999999'... (20 characters) is too large" in error_of(
        "Idle -> IPFilter(99999999999999999999 tcp) -> Discard")
    assert "output '65536' is too large" in error_of("Idle -> IPFilter(65536 tcp) -> Discard")
    error_of("Idle -> IPFilter(allow dst net 1.2.3.4/\u00b2) -> Discard")  # a digit, not ASCII


WORDS = st.sampled_from([
    "tcp", "udp", "icmp", "ip", "src", "dst", "host", "net", "port", "proto", "type", "ttl",
    "tos", "len", "opt", "frag", "and", "or", "not", "&&", "||", "!", "(", ")", "?", ":", "[",
    "]", "&", "<", ">", "=", "!=", "80", "www", "echo", "syn", "10.0.0.1", "10.0.0.0/8",
    "0xff", "true", "false", "mask", "255.0.0.0", "transp", "tcp[13]", "ip[0:2]", *NASTY,
])


@FUZZ
@given(st.lists(st.lists(WORDS, max_size=12).map(" ".join), min_size=1, max_size=3),
       st.sampled_from(["IPFilter", "IPClassifier"]))
def test_random_expressions_compile_or_give_a_config_error(patterns: list[str],
                                                           element: str) -> None:
    if element == "IPFilter":
        patterns = [f"allow {p}" for p in patterns]
    args = ", ".join(f'"{p}"' for p in patterns)
    try:
        Router.from_text(f"Idle -> f :: {element}({args});"
                         + " ".join(f"f[{i}] -> Discard;" for i in range(len(patterns))))
    except ConfigError as e:
        assert str(e).strip()
