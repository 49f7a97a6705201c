"""Script as Click's: each test is a configuration, run, with its exact stdout and stderr
(as Click 2.1's ``click -e`` prints them; the last test runs that binary when present)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdtest_util import q, run_text

from routebricks.elements.standard import scriptexpr
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError

CLICK = Path("/work/scratch/click/bin/click")

ARITHMETIC = (
    "Script(print $(div 7 2), print $(idiv 7 2), print $(add 1 2.5), print $(div 1 3), "
    "print $(eq 10 0xA), print $(add 010 1), print $(htonl 1), print $(htons 1), "
    "print $(length abcdef), print $(not yes), print $(if 1 a b), print $(add), print $(mul), "
    "print $(add 9223372036854775807 1), print $(sub 5), print $(div 0 0), print $(div 1 0), "
    "print $(ntohl -1), print $(htonl 4294967295), print $(mod -7 3), print $(rem 7.5 2), "
    "print $(neg 3), print $(abs -2.5), print $(in a b a), print $(and 1 0), "
    'print $(first "a b" c), print $(sub 10 5 2), print $(max 1 2.5), print $(eq abc abd), '
    "print $(lt 1.5 2), print $(idiv 7 0), stop)"
)
ARITHMETIC_OUT = ("3.5 3 3.5 0.333333333333 true 9 16777216 256 6 false a 0 1 "
                  '-9223372036854775808 5 -nan inf 4294967295 4294967167 -1 1.5 -3 2.5 true '
                  'false "a+b" 3 2.5 false true -9223372036854775808').replace(" ", "\n")

QUOTING = (
    "c::Counter; Idle->c->Idle; "
    'Script(print $(first "a b" c), set x "$(c.count)", print $x, setq x "$(c.count)", '
    "print $x, print \"c.count\", print c.count, print '\"c.count\"', set x c.count, "
    'print $x, print $($x), print "a \\"$x\\" b", print $(add 1 1)$(add 1 1), '
    "print \"it's $x\", set x 1, print $x, stop)"
)
QUOTING_OUT = ('"a b"\n"0"\n0\nc.count\n0\n"c.count"\nc.count\n0\na "c.count" b\n22\n'
               "it's c.count\n1\n")

ERRORS = (
    "s::Script(TYPE PASSIVE, return $(add $1 $2)); "
    't::Script(TYPE PASSIVE, print $# $0 "$args", returnq "x y"); '
    "Script(write s.goto nolabel, write s.step xyz, print \"go on\", print $(s.run 3 4), "
    "print $(t.run a b c), print s.run 5 6, export y 5, print $(y), write nonex.h 1, "
    "write s.nonex 1, print $(add x 1), print one, print $?, "
    "goto x $(gt 1 0), print skipped, label x, error oops, print never)"
)
ERRORS_OUT = "go on\n7\n3 run a b c\nx y\n11\n5\n-22\n"
ERRORS_ERR = """While executing 'Script@3 :: Script':
  While calling 's.goto nolabel':
    jump to nonexistent label
  While calling 's.step xyz':
    syntax error
  no element named 'nonex'
  no 's.nonex' write handler
  expected list of numbers
  no 'one' read handler
  oops
"""

PACKETS = (
    "InfiniteSource(LIMIT 7, STOP true) -> s::Script(TYPE PACKET, init n 0, "
    "set n $(add $n 1), goto two $(eq $(mod $n 3) 2), goto drop $(eq $(mod $n 3) 0), end, "
    "label two, return 1, label drop, exit); "
    "s[0] -> c0::Counter -> Discard; s[1] -> c1::Counter -> Discard; "
    "DriverManager(wait_stop, print $(c0.count) $(c1.count) $(s.n), write nonex.x, stop)"
)
PACKETS_OUT = "3 2 $(s.n)"
PACKETS_ERR = "no 's.n' read handler\nno element named 'nonex'\n"


def run(text: str, capfd: pytest.CaptureFixture[str]) -> tuple[str, str]:
    run_text(text, time_limit=3)
    return capfd.readouterr()


def test_value_handlers_print_as_click(capfd: pytest.CaptureFixture[str]) -> None:
    assert run(ARITHMETIC, capfd) == (ARITHMETIC_OUT.replace("a+b", "a b") + "\n", "")


def test_print_unquotes_its_text_but_not_what_was_substituted(
        capfd: pytest.CaptureFixture[str]) -> None:
    assert run(QUOTING, capfd) == (QUOTING_OUT, "")


def test_failed_handler_calls_are_reported_and_the_script_carries_on(
        capfd: pytest.CaptureFixture[str]) -> None:
    assert run(ERRORS, capfd) == (ERRORS_OUT, ERRORS_ERR)


def test_packet_script_chooses_outputs_per_packet(capfd: pytest.CaptureFixture[str]) -> None:
    assert run(PACKETS, capfd) == (PACKETS_OUT, PACKETS_ERR)


def test_packet_script_keeps_order_and_counts_drops() -> None:
    r = run_text("InfiniteSource(LIMIT 9, BURST 9, STOP true) -> s::Script(init n 0, "
                 "set n $(add $n 1), return $(mod $n 3)); "
                 "s[0] -> c0::Counter -> Discard; s[1] -> c1::Counter -> Discard")
    assert r.read_handler("c0.count") == "3" and r.read_handler("c1.count") == "3"
    assert "3\tscript exit" in r.read_handler("s.drops")


def test_run_read_handler_takes_arguments_and_returns_the_value() -> None:
    r = Router.from_text("c1::Counter; c2::Counter; Idle -> c1 -> c2 -> Idle; "
                         "s::Script(TYPE PASSIVE, return $(add $(c1.count) $(c2.count) $1)); "
                         "t::Script(TYPE PASSIVE, init k 0, export total 0, "
                         "set total $(add $total $#), set k $(shift), return $k)")
    r.initialize()
    assert r.read_handler("s.run 5") == "5"
    assert r.read_handler("t.run a b c") == "a"
    assert r.read_handler("t.total") == "3"
    assert r.read_handler("s.readable c1.count t.total") == "true"
    assert r.read_handler("s.writable c1.count") == "false"
    r.write_handler("s.set", "v hello there")
    assert r.read_handler("s.get v") == "hello there"
    with pytest.raises(HandlerError, match="expected list of numbers"):
        r.read_handler("s.add 1 x")


def test_print_to_a_file_writes_or_appends(tmp_path: Path,
                                           capfd: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.txt"
    run_text(f"Script(print >{q(out)} \"one\", printn >>{q(out)} 'two ', "
             f"print >>{q(out)} \"three\", append now {q(out)}, stop)")
    lines = out.read_text().split("\n")
    assert lines[:2] == ["one", "two three"] and float(lines[2]) > 1e9
    assert capfd.readouterr() == ("", "")


def test_driver_manager_reports_failed_writes_without_a_header(
        capfd: pytest.CaptureFixture[str]) -> None:
    text = ("s::Script(TYPE PASSIVE, print x); "
            "DriverManager(write s.goto nolabel, print \"go on\", stop)")
    assert run(text, capfd) == ("go on\n", "While calling 's.goto nolabel':\n"
                                           "  jump to nonexistent label\n")


def test_undefined_dollar_names_reach_the_script_as_text(
        capfd: pytest.CaptureFixture[str]) -> None:
    assert run("define($Y 2); Script(set x 1, print $x-$Y, print $(add $x $Y), stop)",
               capfd) == ("1-2\n3\n", "")


def test_now_is_a_click_timestamp() -> None:
    sec, frac = scriptexpr.now().split(".")
    assert int(sec) > 1e9 and len(frac) in (6, 9)


def test_bad_configurations_are_rejected() -> None:
    with pytest.raises(ConfigError, match="PACKET script must have inputs"):
        run_text("Script(TYPE PACKET, end)")
    with pytest.raises(ConfigError, match="syntax error at 'label'"):
        Router.from_text("Script(label a b)")


@pytest.mark.skipif(not CLICK.exists(), reason="no C++ Click binary")
@pytest.mark.parametrize("config", [ARITHMETIC, QUOTING, PACKETS])
def test_stdout_agrees_with_click(config: str, capfd: pytest.CaptureFixture[str]) -> None:
    ours, _ = run(config, capfd)
    theirs = subprocess.run([str(CLICK), "-e", config], capture_output=True, text=True,
                            timeout=10, check=False)
    assert ours == theirs.stdout


# ---------------------------------------------------------------------- properties
INT64 = st.integers(-(2**63), 2**63 - 1)


@given(st.lists(INT64, min_size=1, max_size=6), st.sampled_from(["add", "sub", "mul"]))
def test_integer_arithmetic_agrees_with_python(xs: list[int], op: str) -> None:
    acc = xs[0]
    for x in xs[1:]:
        acc = {"add": acc + x, "sub": acc - x, "mul": acc * x}[op]
    want = scriptexpr.wrap64(acc)
    assert scriptexpr.evaluate(op, " ".join(map(str, xs))) == str(want)


@given(INT64, INT64)
def test_comparisons_agree_with_python(a: int, b: int) -> None:
    for op, f in (("lt", a < b), ("eq", a == b), ("ge", a >= b), ("ne", a != b)):
        assert scriptexpr.evaluate(op, f"{a} {hex(b) if b >= 0 else b}") == str(f).lower()


@settings(max_examples=300)
@given(st.sampled_from(sorted(set(scriptexpr.FUNCTIONS) - {"cat"})), st.text(max_size=40))
def test_value_functions_raise_only_value_errors(name: str, text: str) -> None:
    with contextlib.suppress(ValueError):
        assert isinstance(scriptexpr.evaluate(name, text), str)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="$(){}'\" \\abx1.+-", max_size=30))
def test_script_substitution_raises_only_handler_errors(text: str) -> None:
    r = Router.from_text("s::Script(TYPE PASSIVE, return $(add 1 1))")
    with contextlib.suppress(HandlerError):
        r.read_handler(f"s.add {text}")
    r.elements["s"].expand(text)  # reports failed handler calls, raises nothing
