"""The route tables' configuration as a user can get it wrong: a prefix given twice, huge
numbers and ports, ROUTES files that are truncated gzip, directories or not text; and
fuzzing the ROUTES path: every file gives a table or a ConfigError, nothing else."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest
from elementtest import q
from fuzztest import FUZZ, mutated
from hypothesis import given
from hypothesis import strategies as st

from routebricks.elements.ip.radixiplookup import RadixIPLookup
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError


def table(config: str, outputs: int = 4) -> Router:
    return Router.from_text(f"Idle -> rt :: RadixIPLookup({config});"
                            + " ".join(f"rt[{i}] -> Discard;" for i in range(outputs)))


def error_of(config: str, outputs: int = 4) -> str:
    with pytest.raises(ConfigError) as ei:
        table(config, outputs)
    return str(ei.value)


def test_a_prefix_twice_in_a_routes_file_names_both_lines(tmp_path: Path) -> None:
    f = tmp_path / "r.txt"
    f.write_text("10.0.0.0/8 1\n# comment\n10.0.0.1/8 2\n")  # host bits are masked: same prefix
    msg = error_of(f"ROUTES {q(f)}")
    assert f"{f}, line 3: second route for 10.0.0.0/8 (the first is on line 1)" in msg
    assert "hint: give each prefix one route" in msg
    # A big file takes the vectorized path; a duplicate there is found as precisely.
    rows = [f"{i >> 8}.{i & 255}.0.0/16 {i % 3}" for i in range(3000)]
    f.write_text("\n".join([*rows, "11.22.0.0/16 0"]) + "\n")
    assert "line 3001: second route for 11.22.0.0/16 (the first is on line 2839)" in error_of(
        f"ROUTES {q(f)}")


def test_a_prefix_twice_in_arguments_or_file_and_arguments_is_refused(tmp_path: Path) -> None:
    msg = error_of("10.0.0.0/8 1, 11.0.0.0/8 2, 10.0.0.0/8 3")
    assert "argument 3 ('10.0.0.0/8 3') is a second route for 10.0.0.0/8 (argument 1" in msg
    f = tmp_path / "r.txt"
    f.write_text("# first line\n10.0.0.0/8 1\n")
    assert f"argument 1 is a second route for 10.0.0.0/8: ROUTES '{f}' has one on line 2" in (
        error_of(f"ROUTES {q(f)}, 10.0.0.0/8 2"))
    # The handlers agree: add refuses an existing prefix, set replaces it.
    r = table(f"ROUTES {q(f)}, 11.0.0.0/8 2")
    with pytest.raises(HandlerError, match="conflict with existing route"):
        r.write_handler("rt.add", "10.0.0.0/8 3")
    r.write_handler("rt.set", "10.0.0.0/8 3")


def test_huge_ports_are_refused_without_checking_every_output() -> None:
    assert "bad port '99999999999999999999'... (100000 characters)" in error_of(
        "0.0.0.0/0 " + "9" * 100_000)
    assert "a route to port 2147483647: ports are numbered below 65536" in error_of(
        "0.0.0.0/0 2147483647")


def test_unreadable_routes_files_are_config_errors(tmp_path: Path) -> None:
    gz = tmp_path / "r.txt.gz"
    data = gzip.compress(b"10.0.0.0/8 1\n" * 2000)
    gz.write_bytes(data[: len(data) // 2])
    msg = error_of(f"ROUTES {q(gz)}")
    assert f"bad ROUTES file: {gz}: truncated or corrupt gzip file" in msg
    assert "hint" not in msg  # no line is wrong: no advice about lines
    assert "Is a directory" in error_of(f"ROUTES {q(tmp_path)}")
    f = tmp_path / "file.txt"
    f.write_text("10.0.0.0/8 1\n")
    assert "cannot read ROUTES file" in error_of(f"ROUTES {q(f / 'below-a-file')}")
    f.write_bytes(b"10.0.0.0/8 1\n\xfe\n")
    assert "line 2: byte 0xfe at column 1 is not UTF-8 text" in error_of(f"ROUTES {q(f)}")


def _configure(data: bytes, suffix: str) -> None:
    """Configure a route table from a ROUTES file holding ``data``."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / f"routes{suffix}"
        f.write_bytes(data)
        e = RadixIPLookup.from_config(f"ROUTES {q(f)}", "rt")
        try:
            e.parse_config()
            e.configure()
        except ConfigError as err:
            assert str(err).strip()


VALID = "\n".join(f"{i}.{i * 7 % 256}.0.0/16 {i % 4}" for i in range(1, 40)).encode()


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".txt", ".gz"]))
def test_random_routes_files_configure_or_give_a_config_error(data: bytes, suffix: str) -> None:
    _configure(data, suffix)


@FUZZ
@given(mutated(VALID), st.booleans(), st.integers(1, 200))
def test_mutated_routes_files_configure_or_give_a_config_error(data: bytes, gz: bool,
                                                               copies: int) -> None:
    data = data * copies  # large files go through the vectorized parser
    _configure(gzip.compress(data) if gz else data, ".gz" if gz else ".txt")


@pytest.mark.parametrize("cls", ["DirectIPLookup", "RadixIPLookup", "LinearIPLookup"])
def test_a_long_inline_table_reads_as_argument_by_argument(
        cls: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past a few hundred inline routes the vectorized reader of route files is used;
    the table must be the one the per-argument parser builds, and errors still name the
    argument."""
    from routebricks.engine.router import Router

    routes = [f"{10 + i // 256}.{i % 256}.0.0/16 {i % 3}" for i in range(400)]
    routes += [f"{60 + i}.0.0.0/8 192.168.{i}.1 {i % 3}" for i in range(100)]
    outs = "\n".join(f"rt[{p}] -> Discard;" for p in range(3))
    fast = Router.from_text(f"Idle -> rt :: {cls}({', '.join(routes)}); {outs}")
    from routebricks.elements.ip import iproutetable

    with monkeypatch.context() as m:  # the same text, argument by argument
        m.setattr(iproutetable, "_FAST_INLINE", 10**9)
        slow = Router.from_text(f"Idle -> rt :: {cls}({', '.join(routes)}); {outs}")
    table = fast.read_handler("rt.table")
    assert len(table.splitlines()) == 500
    assert table == slow.read_handler("rt.table")
    for r in routes[::37]:
        net, *rest = r.split()
        addr = net.split("/")[0]
        want = rest[-1] if len(rest) == 1 else f"{rest[1]} {rest[0]}"
        assert fast.read_handler(f"rt.lookup {addr}") == want
    bad = routes[:300] + ["10.0.0.0/16 2"]  # a second route for 10.0.0.0/16
    with pytest.raises(ConfigError, match=r"argument 301 .* is a second route"):
        Router.from_text(f"Idle -> rt :: {cls}({', '.join(bad)}); {outs}")
    bad = routes[:300] + ["10.0.0.0/33 2"]
    with pytest.raises(ConfigError, match=r"argument 301 should be"):
        Router.from_text(f"Idle -> rt :: {cls}({', '.join(bad)}); {outs}")
