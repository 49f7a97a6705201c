"""Fuzzing the configuration path: random text and random edits of the bundled examples go
through parsing and router building (every element's arguments and checks). The only
outcomes allowed are a router, or a RouteBricksError with a message; never another
exception. The ``routebricks check`` command is driven the same way, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fuzztest import FUZZ, NASTY, mutated
from hypothesis import given, settings
from hypothesis import strategies as st

from routebricks import Router
from routebricks.engine.parser import decode_config
from routebricks.engine.router import parse_text
from routebricks.errors import RouteBricksError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONFIGS = sorted(EXAMPLES.glob("*.click"))

# Words of the language and of the element library, to make random text that gets past the
# lexer (no 'require': random package names must not be imported).
TOKENS = st.sampled_from([
    "a", "b", "c", "x1", "::", "->", "=>", "[", "]", "0", "1", "2", "(", ")", "{", "}", ";",
    ",", "|", "$X", "${X}", "input", "output", "elementclass", "define", "//", "/*", "*/",
    "\n", " ", "\"", "InfiniteSource", "Counter", "Discard", "Queue", "Unqueue", "Null",
    "Tee", "Classifier", "Strip", "Paint", "PullNull", "Idle", "RatedSource", "HashSwitch",
    "IPFilter", "RadixIPLookup", "CheckIPHeader", "LIMIT 3", "RATE 0", "12/0800", "-",
    "allow tcp", "0.0.0.0/0 1", "BURST", *NASTY,
])


def build(data: bytes, name: str = "fuzz.click") -> None:
    """Decode, parse and build a router from ``data``; a RouteBricksError must say what.
    (No base directory: require(python "my_elements.py") would register its classes for
    every later test; the check command below loads it, in its own process.)"""
    try:
        Router(parse_text(decode_config(data, name), name))
    except RouteBricksError as e:
        assert str(e).strip(), f"empty message for {data!r}"


@FUZZ
@given(st.sampled_from(CONFIGS).flatmap(lambda p: mutated(p.read_bytes())))
def test_mutated_examples_build_or_give_an_error(data: bytes) -> None:
    build(data)


@FUZZ
@given(st.lists(TOKENS, max_size=60).map(lambda ws: " ".join(ws).encode()))
def test_random_configuration_text_builds_or_gives_an_error(data: bytes) -> None:
    build(data)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_build_or_give_an_error(data: bytes) -> None:
    build(data)


@settings(max_examples=4, deadline=None)
@given(st.one_of(st.sampled_from(CONFIGS).flatmap(lambda p: mutated(p.read_bytes())),
                 st.binary(max_size=100)))
def test_check_command_answers_without_a_traceback(tmp_path_factory, data: bytes) -> None:  # noqa: ANN001
    d = tmp_path_factory.mktemp("fuzz")
    (d / "fuzz.click").write_bytes(data)
    for helper in EXAMPLES.glob("*.py"):  # require(python "my_elements.py")
        (d / helper.name).write_bytes(helper.read_bytes())
    res = subprocess.run([sys.executable, "-m", "routebricks.cli", "check", "fuzz.click"],
                         cwd=d, capture_output=True, text=True, errors="replace", timeout=120)
    assert res.returncode in (0, 1), res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert res.stderr.strip()  # "ok: ...", a warning, or the error
