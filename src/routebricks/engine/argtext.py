"""Click's configuration text at the level of arguments: comments stripped, a string split
into arguments at top-level commas, ``KEYWORD value`` recognised, quotes removed (with
Click's backslash escapes) and added. :mod:`routebricks.engine.args` types the values.
"""

from __future__ import annotations

import re
import string

# The scanners below jump from one character that matters to the next with a compiled
# pattern, so that the text in between (a route table of megabytes) is skipped by the
# regular-expression engine, not walked in Python: linear time, with a small constant.
_COMMENT_OR_QUOTE = re.compile(r"[\"']|//|/\*")
_QUOTE_OR_BRACKET = re.compile(r"[\"'()\[\]{}]")
# The rest of a quoted string: '...' has no escapes; in "..." a backslash escapes the
# next character. An unterminated string runs to the end of the text.
_DQ_REST = re.compile(r'(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.S)
_SQ_REST = re.compile(r"[^']*(?:'|\Z)")


def strip_comments(text: str) -> str:
    """Remove ``//`` and ``/* */`` comments outside quotes."""
    if "//" not in text and "/*" not in text:
        return text  # two substring searches in C (a route table has '/' on every line)
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        m = _COMMENT_OR_QUOTE.search(text, i)
        if m is None:
            out.append(text[i:])
            break
        j = m.start()
        out.append(text[i:j])
        if text[j] in "\"'":
            k = _skip_quote(text, j)
            out.append(text[j:k])
            i = k
        elif m.group() == "//":
            k = text.find("\n", j)
            i = n if k < 0 else k
        else:
            k = text.find("*/", j + 2)
            i = n if k < 0 else k + 2
            out.append(" ")
    return "".join(out)


def _skip_quote(text: str, i: int) -> int:
    """Index just past the quoted string starting at text[i]."""
    m = (_DQ_REST if text[i] == '"' else _SQ_REST).match(text, i + 1)
    assert m is not None  # both patterns match the empty rest
    return min(m.end(), len(text))


def split_args(config: str) -> list[str]:
    """Split a configuration string on top-level commas (Click's ``cp_argvec``).

    Commas inside quotes or brackets do not split. Arguments are stripped; a configuration of
    only whitespace has no arguments.
    """
    text = strip_comments(config)
    if not text.strip():
        return []
    # Between two quotes or brackets, commas are split by str.split, in C: a route table
    # of 270K arguments costs one pass, not a pattern search per argument.
    args: list[str] = []
    cur: list[str] = []  # pieces of the argument being read
    depth = 0
    i, n = 0, len(text)
    while True:
        m = _QUOTE_OR_BRACKET.search(text, i)
        j = n if m is None else m.start()
        seg = text[i:j]
        if depth == 0 and "," in seg:
            parts = seg.split(",")
            cur.append(parts[0])
            args.append("".join(cur).strip())
            args.extend(map(str.strip, parts[1:-1]))
            cur = [parts[-1]]
        else:
            cur.append(seg)
        if m is None:
            break
        c = text[j]
        if c in "\"'":
            i = _skip_quote(text, j)
            cur.append(text[j:i])
            continue
        depth = depth + 1 if c in "([{" else max(0, depth - 1)
        cur.append(c)
        i = j + 1
    args.append("".join(cur).strip())
    return args


_KEYWORD = re.compile(r"([A-Z][A-Z0-9_]*)(?:\s+(.*))?\Z", re.S)


def split_keyword(arg: str) -> tuple[str, str] | None:
    """``"STOP true"`` → ``("STOP", "true")``; None when ``arg`` does not start with a
    keyword-shaped word."""
    m = _KEYWORD.match(arg)
    if not m:
        return None
    return m.group(1), (m.group(2) or "").strip()


_UNQUOTE_SPECIAL = re.compile(r"[\"'\\]")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   "v": "\v", "\n": ""}
_HEX = re.compile(r"[0-9a-fA-F]*")
_OCTAL = re.compile(r"[0-7]{1,3}")


def unquote(s: str) -> str:
    """Click's ``cp_unquote``: ``"..."`` and ``'...'`` parts lose their quotes (a word may
    mix them: ``"a"b'c'``), backslash escapes are expanded inside double quotes, and
    ``\\<hex digits>`` blocks everywhere outside single quotes (``"\\<4600 002c>"``)."""
    s = s.strip()
    if not _UNQUOTE_SPECIAL.search(s):
        return s
    out: list[str] = []
    i, n, state = 0, len(s), ""
    while i < n:
        m = _UNQUOTE_SPECIAL.search(s, i)
        j = n if m is None else m.start()
        out.append(s[i:j])
        if m is None:
            break
        c = s[j]
        if c in "\"'":
            if not state:
                state = c
            elif state == c:
                state = ""
            else:
                out.append(c)
            i = j + 1
        elif j + 1 < n and (state == '"' or (not state and s[j + 1] == "<")):
            i, text = _backslash(s, j)
            out.append(text)
        else:
            out.append(c)
            i = j + 1
    return "".join(out)


def _backslash(s: str, i: int) -> tuple[int, str]:
    """The escape at ``s[i]`` (a backslash with a character after it): where the text
    goes on, and what the escape stands for (Click's ``cp_process_backslash``)."""
    e = s[i + 1]
    if e == "\r":
        return (i + 3 if s[i + 2 : i + 3] == "\n" else i + 2), ""
    if e in _SIMPLE_ESCAPES:
        return i + 2, _SIMPLE_ESCAPES[e]
    if e in "01234567":
        m = _OCTAL.match(s, i + 1)
        assert m is not None
        return m.end(), chr(int(m.group(), 8) & 0xFF)
    if e == "x":
        m = _HEX.match(s, i + 2)
        assert m is not None
        return m.end(), chr(int(m.group() or "0", 16) & 0xFF)
    if e == "<":
        close = s.find(">", i + 2)
        end = len(s) if close < 0 else close
        digits = "".join(ch for ch in s[i + 2 : end] if ch in string.hexdigits)
        data = "".join(chr(int(digits[k : k + 2], 16)) for k in range(0, len(digits) - 1, 2))
        return (len(s) if close < 0 else close + 1), data
    return i + 2, e


def quote(s: str) -> str:
    """The Click configuration form of a string value (quoted only when needed)."""
    if s and re.fullmatch(r"[A-Za-z0-9_./:@%+=\-]+", s) and not s[0].isupper():
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
