"""The configuration scanners (comments, quotes, top-level commas, the ')' that ends a
configuration) jump between the characters that matter with compiled patterns. Checked here
against plain character-by-character references (written for the test, the obvious way), on
any text (their speed on large tables is benchmarks' business)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from routebricks.engine.argtext import _skip_quote, split_args, strip_comments
from routebricks.engine.lexer import Lexer
from routebricks.errors import ConfigError


def ref_skip_quote(text: str, i: int) -> int:
    q, j = text[i], i + 1
    while j < len(text):
        if q == '"' and text[j] == "\\":
            j += 2
            continue
        if text[j] == q:
            return j + 1
        j += 1
    return len(text)


def ref_strip_comments(text: str) -> str:
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = ref_skip_quote(text, i)
            out.append(text[i:j])
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def ref_split_args(config: str) -> list[str]:
    text = ref_strip_comments(config)
    if not text.strip():
        return []
    args, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c in "\"'":
            i = ref_skip_quote(text, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
        i += 1
    args.append(text[start:].strip())
    return args


def ref_config_end(t: str) -> int | str:
    """Offset of the ')' closing the '(' at 0, or the kind of error."""
    depth, i, n = 0, 0, len(t)
    while i < n:
        c = t[i]
        if c in "\"'":
            j = i + 1
            while j < n and t[j] != c:
                j += 2 if (c == '"' and t[j] == "\\") else 1
            if j >= n:
                return "unterminated string"
            i = j + 1
            continue
        if t.startswith("//", i):
            j = t.find("\n", i)
            i = n if j < 0 else j
            continue
        if t.startswith("/*", i):
            j = t.find("*/", i + 2)
            if j < 0:
                return "unterminated comment"
            i = j + 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i if c == ")" else "mismatched"
        i += 1
    return "unterminated configuration"


KINDS = ("unterminated string", "unterminated comment", "mismatched",
         "unterminated configuration")


def config_end(t: str) -> int | str:
    try:
        return Lexer(t)._config_end(0)
    except ConfigError as e:
        return next(k for k in KINDS if k in str(e))


TEXT = st.text(alphabet=list("ab ,()[]{}\"'\\/*\n"), max_size=60)


@settings(max_examples=3000)
@given(TEXT)
def test_scanners_agree_with_the_plain_reading(text: str) -> None:
    assert strip_comments(text) == ref_strip_comments(text)
    assert split_args(text) == ref_split_args(text)
    for i, c in enumerate(text):
        if c in "\"'":
            assert _skip_quote(text, i) == ref_skip_quote(text, i)


@settings(max_examples=3000)
@given(TEXT)
def test_the_end_of_a_configuration_agrees_with_the_plain_reading(text: str) -> None:
    t = "(" + text
    ref = ref_config_end(t)
    got = config_end(t)
    assert got == ref


def test_a_route_table_of_a_quarter_million_lines_splits_whole() -> None:
    k = 250_000
    text = ",\n".join(f"  /* route {i} */ 18.{i % 250}.{i // 250 % 250}.0/24 {i % 4}"
                      for i in range(k))
    args = split_args(text)
    assert len(args) == k
    assert args[-1] == f"18.{(k - 1) % 250}.{(k - 1) // 250 % 250}.0/24 {(k - 1) % 4}"
