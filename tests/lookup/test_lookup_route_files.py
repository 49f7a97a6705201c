"""Route files a user can get wrong: not text, truncated gzip, huge numbers; and fuzzing:
random bytes and random edits of valid files give routes or a RouteError, nothing else."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest
from fuzztest import FUZZ, mutated
from hypothesis import given
from hypothesis import strategies as st

from routebricks.lookup import RouteError, load_ipasn, load_routes
from routebricks.lookup.routes import read_route_text

VALID = b"""# routes
10.0.0.0/8 1
10.1.0.0/16 10.0.0.254 2   // via a gateway
10.2.0.0/255.255.0.0 - 0
1.2.3.4 0, 0.0.0.0/0 3
"""


def test_truncated_gzip_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "t.routes.gz"
    data = gzip.compress(b"10.0.0.0/8 1\n" * 1000)
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(RouteError) as ei:
        load_routes(f)
    assert str(ei.value).startswith(f"{f}: truncated or corrupt gzip file")
    f.write_bytes(b"not gzip at all")
    with pytest.raises(RouteError, match="truncated or corrupt gzip file"):
        load_routes(f)
    g = tmp_path / "ipasn.dat.gz"
    g.write_bytes(data[:20])
    with pytest.raises(RouteError, match="truncated or corrupt gzip file"):
        load_ipasn(g)


def test_bytes_that_are_not_utf8_are_named_by_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "r.txt"
    f.write_bytes(b"10.0.0.0/8 1\n10.1.0.0/16 \xff2\n")
    with pytest.raises(RouteError) as ei:
        load_routes(f)
    assert str(ei.value) == f"{f}, line 2: byte 0xff at column 13 is not UTF-8 text"
    assert ei.value.lineno == 2 and ei.value.text is None


def test_unreadable_paths_are_os_errors(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        load_routes(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_route_text(tmp_path / "missing.gz")


@pytest.mark.parametrize("line, words", [
    ("10.0.0.0/8 " + "9" * 100_000, "bad port '99999999999999999999'... (100000 characters)"),
    ("10.0.0.0/" + "9" * 100_000 + " 1", "bad prefix length '999999999999'... (100000 characters)"),
    ("10.0.0.0/000000000000000000008 1", None),
    ("10.0.0.0/8 2147483648", "bad port '2147483648'"),
])
def test_huge_numbers_are_bounded_clear_errors(line: str, words: str | None) -> None:
    from routebricks.lookup import parse_routes

    if words is None:
        assert parse_routes(line)[0].length == 8
        return
    with pytest.raises(RouteError) as ei:
        parse_routes(line, filename="big.txt")
    assert words in str(ei.value) and len(str(ei.value)) < 400


def _check_load(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / f"routes{suffix}"
        f.write_bytes(data)
        try:
            load_routes(f)
        except RouteError as e:
            assert str(e).strip()


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".txt", ".gz"]))
def test_random_route_files_load_or_give_a_route_error(data: bytes, suffix: str) -> None:
    _check_load(data, suffix)


@FUZZ
@given(mutated(VALID), st.booleans())
def test_mutated_route_files_load_or_give_a_route_error(data: bytes, gz: bool) -> None:
    _check_load(gzip.compress(data) if gz else data, ".gz" if gz else ".txt")
