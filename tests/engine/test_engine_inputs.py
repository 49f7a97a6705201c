"""Every input gets an answer, never a traceback: configuration files that are not text,
nest too deeply, name huge numbers or ports, require Python that fails, loop packets
forever, or hold nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from routebricks import Router
from routebricks.engine.args import Arg, Double, Int, PosInt, Seconds, UInt, parse_args
from routebricks.engine.loops import MAX_ROUNDS
from routebricks.engine.parser import MAX_NESTING
from routebricks.engine.router import parse_file, parse_text
from routebricks.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def build(text: str) -> Router:
    return Router(parse_text(text, "t.click"))


def rb(*args: str, cwd: Path | None = None, stdin: bytes | None = None
       ) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-m", "routebricks.cli", *args], cwd=cwd,
                         capture_output=True, timeout=120, input=stdin)
    return subprocess.CompletedProcess(res.args, res.returncode, res.stdout.decode(),
                                       res.stderr.decode())


# ---------------------------------------------------------------------- not UTF-8
def test_a_byte_that_is_not_utf8_is_named_at_its_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "bad.click"
    f.write_bytes(b"// fine\nInfiniteSource -> \xc3\xa9\xff Discard;\n")
    with pytest.raises(ConfigError) as ei:
        parse_file(f)
    e = ei.value
    assert (e.pos.file, e.pos.line, e.pos.column) == (str(f), 2, 20)  # type: ignore[union-attr]
    assert "byte 0xff is not UTF-8 text" in str(e)
    assert "InfiniteSource -> é\ufffd Discard;" in str(e) and "hint:" in str(e)


def test_a_byte_order_mark_is_not_part_of_the_configuration(tmp_path: Path) -> None:
    f = tmp_path / "bom.click"
    f.write_bytes(b"\xef\xbb\xbfIdle -> Discard;\n")
    assert set(parse_file(f).elements) == {"Idle@1", "Discard@2"}
    f.write_bytes(b"\xef\xbb\xbfIdle -> \x80;\n")
    with pytest.raises(ConfigError, match=r"bom.click:1:9: byte 0x80"):
        parse_file(f)


def test_stdin_that_is_not_utf8_is_an_error_not_a_traceback() -> None:
    res = rb("check", "-", stdin=b"Idle -> Discard\xfe;")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "<stdin>:1:16: byte 0xfe is not UTF-8 text" in res.stderr


# ---------------------------------------------------------------------- sizes and depths
def test_port_numbers_are_bounded() -> None:
    with pytest.raises(ConfigError, match=r"t.click:1:10: port number '65536' is too large"):
        build("Idle -> [65536] Discard")
    big = "9" * 100_000  # int() refuses this many digits
    with pytest.raises(ConfigError, match=r"port number '9{24}'\.\.\. \(100000 characters\)"):
        build(f"Idle [{big}] -> Discard")


def nested(levels: int) -> str:
    """An anonymous element class ``levels`` deep that passes packets through."""
    body = "input -> output"
    for _ in range(levels - 1):
        body = f"input -> {{ {body} }} -> output"
    return f"{{ {body} }}"


def test_element_classes_nest_to_a_documented_depth() -> None:
    r = build(f"InfiniteSource(LIMIT 2) -> {nested(MAX_NESTING)} -> c :: Counter -> Discard")
    r.run()
    assert r.read_handler("c.count") == "2"
    for levels in (MAX_NESTING + 1, 1000):
        with pytest.raises(ConfigError, match=f"nested too deeply \\(more than {MAX_NESTING}"):
            build(f"Idle -> {nested(levels)} -> Discard")
    with pytest.raises(ConfigError, match="nested too deeply"):
        build("Idle -> " + "{ " * 5000 + "input -> output" + " }" * 5000 + " -> Discard")


def test_huge_numbers_in_arguments_are_bounded_clear_errors() -> None:
    big = "9" * 100_000
    for text, words in [
        (f"InfiniteSource(LIMIT {big}) -> Discard", "not a 100000-character number"),
        ("InfiniteSource(LIMIT 99999999999999999999) -> Discard",
         "expected integer (at most 9223372036854775807)"),
        (f"TimedSource({big}) -> Discard", "expected a time"),
        ("TimedSource(1e400) -> Discard", "at most 1e+09 seconds"),
        (f"RatedSource(RATE {big}) -> Discard", "RATE"),
    ]:
        with pytest.raises(ConfigError) as ei:
            build(text)
        assert words in str(ei.value)
        assert len(ei.value.message) < 300  # the value is quoted cut short


def test_argument_types_are_bounded() -> None:
    specs = [Arg("I", Int), Arg("U", UInt), Arg("P", PosInt), Arg("D", Double), Arg("S", Seconds)]
    for cfg, words in [("I 9223372036854775808", "at most 9223372036854775807"),
                       ("U -1", "expected non-negative integer"),
                       ("P 0", "expected positive integer"),
                       ("D nan", "finite"), ("D 1e999", "finite"), ("S 2e9", "at most")]:
        with pytest.raises(ConfigError, match=words):
            parse_args(cfg, specs)
    assert parse_args("I -9223372036854775808, D 1e300", specs).values["i"] == -(2**63)


# ---------------------------------------------------------------------- require(...)
def test_required_python_that_raises_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text("x = 1\n\ndef f():\n    raise ValueError('boom')\n\nf()\n")
    (tmp_path / "r.click").write_text('require(python "boom.py");\nIdle -> Discard;\n')
    with pytest.raises(ConfigError) as ei:
        parse_file(tmp_path / "r.click")
    e = ei.value
    assert e.pos is not None and e.pos.file.endswith("boom.py") and e.pos.line == 4
    assert "loading Python module 'boom.py' failed: ValueError: boom" in str(e)
    assert "raise ValueError('boom')" in str(e) and "r.click:1:9" in str(e)


def test_required_python_with_a_name_too_long_is_an_error_not_a_traceback(
        tmp_path: Path) -> None:
    (tmp_path / "r.click").write_text(f'require(python "{"9" * 5000}.py"); Idle -> Discard;\n')
    with pytest.raises(ConfigError) as ei:
        parse_file(tmp_path / "r.click")
    assert "File name too long" in str(ei.value) and "r.click:1:9" in str(ei.value)


def test_required_python_with_a_syntax_error_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "syn.py").write_text("import numpy\n\ndef f(:\n    pass\n")
    (tmp_path / "r.click").write_text('require(python "syn.py"); Idle -> Discard;\n')
    with pytest.raises(ConfigError) as ei:
        parse_file(tmp_path / "r.click")
    assert ei.value.pos is not None and ei.value.pos.line == 3
    assert "syn.py" in str(ei.value) and "def f(:" in str(ei.value)


def test_required_package_that_raises_is_named(tmp_path: Path) -> None:
    pkg = tmp_path / "rb_broken_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("import json\njson.loads('{')\n")
    (tmp_path / "r.click").write_text("require(package rb_broken_pkg); Idle -> Discard;\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ConfigError) as ei:
            parse_file(tmp_path / "r.click")
    finally:
        sys.path.remove(str(tmp_path))
    assert ei.value.pos is not None and ei.value.pos.file.endswith("__init__.py")
    assert ei.value.pos.line == 2 and "JSONDecodeError" in str(ei.value)


@pytest.mark.parametrize("body, words", [
    ("raise RuntimeError('no')\n", "RuntimeError: no"),
    ("def f(:\n", "invalid syntax"),
])
def test_load_flag_with_broken_python_is_one_clear_error(tmp_path: Path, body: str,
                                                          words: str) -> None:
    (tmp_path / "m.py").write_text(body)
    for cmd in (["check", "--load", "m.py", "-e", "Idle -> Discard"],
                ["run", "--load", "m.py", "-e", "Idle -> Discard", "-q"],
                ["elements", "--load", "m.py"]):
        res = rb(*cmd, cwd=tmp_path)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        assert words in res.stderr and "m.py:1:" in res.stderr and "--load" in res.stderr


# ---------------------------------------------------------------------- cycles
@pytest.mark.parametrize("text, words", [
    ("c :: Null -> c", "push cycle c -> c: every packet would go round it forever"),
    ("InfiniteSource -> a :: Counter -> t :: Tee -> Discard; t[1] -> Paint(2) -> a",
     "push cycle a -> t -> Paint@5 -> a"),
    ("p :: PullNull -> p", "pull cycle p -> p: every pull would go round it forever"),
])
def test_a_cycle_that_can_only_loop_is_refused_naming_its_elements(text: str, words: str
                                                                  ) -> None:
    with pytest.raises(ConfigError) as ei:
        build(text)
    msg = str(ei.value)
    assert words in msg and msg.startswith("t.click:1:") and "(t.click:1:" in msg
    assert "Queue" in msg  # the hint says how to break it


def test_check_command_finds_the_push_cycle(tmp_path: Path) -> None:
    (tmp_path / "c.click").write_text("InfiniteSource(LIMIT 1) -> c :: Null -> c;\n")
    res = rb("check", "c.click", cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "c.click:1:38: push cycle c -> c" in res.stderr and "c (c.click:1:28)" in res.stderr


def test_cycles_through_a_queue_or_through_choosing_elements_are_allowed() -> None:
    r = build("InfiniteSource(LIMIT 5) -> q :: Queue -> Unqueue -> c :: Counter -> Paint(1) "
              "-> q")  # a push -> pull boundary breaks the cycle
    r.run(time_limit=0.5)
    assert int(r.read_handler("c.count")) >= 5
    for example in ("iprouter.click", "ipsec-gateway.click"):  # Click's ICMP-error cycles
        Router(parse_file(REPO / "examples" / example))


def test_a_loop_at_run_time_stops_the_run_with_an_error() -> None:
    r = build("InfiniteSource(LIMIT 1) -> c :: Classifier(-) -> Counter -> c")
    with pytest.raises(ConfigError) as ei:
        r.run()
    msg = str(ei.value)
    assert f"went round the push cycle c -> Counter@3 -> c more than {MAX_ROUNDS} times" in msg
    assert msg.startswith("t.click:1:")


def test_a_cycle_that_lets_packets_out_runs() -> None:
    # Strip(20) cuts each 69-byte packet until it is shorter than 20: three rounds.
    r = build("InfiniteSource(LIMIT 4) -> c :: Counter -> s :: Strip(20) -> Counter -> c")
    r.run()
    assert r.read_handler("c.count") == "16"
    assert "shorter than Strip length" in r.read_handler("s.drops")


def test_a_chain_longer_than_the_stack_holds_is_refused() -> None:
    text = "Idle -> " + " -> ".join(["Null"] * 1100) + " -> Discard"
    with pytest.raises(ConfigError, match="chain of 1102 elements"):
        build(text)
    r = build("InfiniteSource(LIMIT 3) -> " + " -> ".join(["Null"] * 600)
              + " -> c :: Counter -> Discard")
    r.run()
    assert r.read_handler("c.count") == "3"


# ---------------------------------------------------------------------- empty
def test_an_empty_configuration_is_a_warning_as_in_click(tmp_path: Path) -> None:
    (tmp_path / "e.click").write_text("// nothing here\n")
    res = rb("check", "e.click", cwd=tmp_path)
    assert res.returncode == 0 and res.stderr == "warning: e.click: configuration has no elements\n"
    res = rb("run", "e.click", cwd=tmp_path)
    assert res.returncode == 0
    assert res.stderr == "warning: e.click: configuration has no elements, exiting\n"
    res = rb("run", "-e", "", "-h", "version")
    assert res.returncode == 0 and res.stdout.strip() and "no elements" in res.stderr
