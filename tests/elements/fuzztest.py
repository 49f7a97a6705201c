"""Hypothesis strategies shared by the fuzz tests of the parser and the file loaders (not a
test module): random edits of valid inputs, with the values users get wrong most (huge
numbers, bytes that are not UTF-8, cut lines)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Fuzz tests run a bounded number of examples (a few seconds each in CI) and do not shrink
#: for long: a failure prints its input, which is what we need.
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: Values inserted by :func:`mutated`: numbers beyond every bound, special floats, signs.
NASTY = ["9" * 5000, "99999999999999999999", "4294967296", "65536", "-1", "0", "1e400", "nan",
         "inf", "-0", "0x", "/", ",", ";", "(", ")", "[", "]", "{", "}", "\"", "'", "#", "//",
         "/*", "=", "\n", "\t", " ", "", "\\"]


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after one to five random edits: spans deleted, duplicated or replaced by
    random bytes or by :data:`NASTY` values."""
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, len(data)))
        j = draw(st.integers(i, min(len(data), i + 40)))
        op = draw(st.sampled_from(["delete", "duplicate", "bytes", "nasty", "nasty"]))
        if op == "delete":
            data = data[:i] + data[j:]
        elif op == "duplicate":
            data = data[:j] + data[i:j] + data[j:]
        elif op == "bytes":
            data = data[:i] + draw(st.binary(max_size=8)) + data[j:]
        else:
            data = data[:i] + draw(st.sampled_from(NASTY)).encode() + data[j:]
    return data
