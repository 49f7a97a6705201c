"""SA files as a user can get them wrong — not text, huge numbers — and fuzzing: random bytes
and random edits of a valid file give SAs or an SAFileError naming file:line:column, never
another exception, and never a key."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fuzztest import FUZZ, mutated
from hypothesis import given
from hypothesis import strategies as st

from routebricks.ipsec import SAFileError, load_sa_file

KEY = "4c80cdefbb5d10da906ac73c3613a6342e443b68"
CBC_KEY = "00112233445566778899aabbccddeeff"
AUTH_KEY = "0102030405060708090a0b0c0d0e0f1011121314"
VALID = f"""# two tunnels
spi=0x1001 alg=aes128gcm key=0x{KEY} src=192.0.2.1 dst=192.0.2.2 selector=10.2.0.0/16
spi=4098 alg=aes128cbc-sha1 key=0x{CBC_KEY} authkey=0x{AUTH_KEY} src=192.0.2.2 \
dst=192.0.2.1 dir=in
""".encode()


def load(tmp_path: Path, data: bytes) -> list[object]:
    f = tmp_path / "sas.txt"
    f.write_bytes(data)
    return load_sa_file(f)  # type: ignore[return-value]


def test_a_byte_that_is_not_utf8_is_named_without_quoting_the_line(tmp_path: Path) -> None:
    with pytest.raises(SAFileError) as ei:
        load(tmp_path, VALID.replace(b"src=192.0.2.2", b"src=\xff192.0.2.2"))
    e = ei.value
    column = VALID.split(b"\n")[2].index(b"src=192.0.2.2") + len("src=") + 1
    assert e.pos is not None and (e.pos.line, e.pos.column) == (3, column)
    assert "byte 0xff is not UTF-8 text" in str(e)
    assert CBC_KEY not in str(e) and AUTH_KEY not in str(e)  # the line holds keys


@pytest.mark.parametrize("spi", ["9" * 100_000, "0x" + "f" * 5000, "4294967296", "0x100000000"])
def test_huge_spis_are_out_of_range(tmp_path: Path, spi: str) -> None:
    with pytest.raises(SAFileError) as ei:
        load(tmp_path, VALID.replace(b"spi=4098", f"spi={spi}".encode()))
    assert "out of range" in str(ei.value) and str(ei.value).startswith(f"{tmp_path}/sas.txt:3:1:")
    assert len(str(ei.value)) < 300


def test_long_values_are_cut_in_messages(tmp_path: Path) -> None:
    with pytest.raises(SAFileError) as ei:
        load(tmp_path, VALID.replace(b"dst=192.0.2.2", b"dst=" + b"1" * 100_000))
    assert "bad dst address '1111" in str(ei.value) and "(100000 characters)" in str(ei.value)


def _check(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        try:
            load(Path(d), data)
        except SAFileError as e:
            msg = str(e)
            assert msg.strip() and e.pos is not None
            for key in (KEY, CBC_KEY, AUTH_KEY):
                assert key not in msg


@FUZZ
@given(st.binary(max_size=300))
def test_random_sa_files_load_or_give_an_sa_file_error(data: bytes) -> None:
    _check(data)


@FUZZ
@given(mutated(VALID))
def test_mutated_sa_files_load_or_give_an_sa_file_error(data: bytes) -> None:
    _check(data)
