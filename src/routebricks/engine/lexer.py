"""Tokens of the Click configuration language, each with its line and column.

Every ``(`` in Click's language opens a configuration string (``Class(args)``,
``define(...)``, ``require(...)``), so the lexer returns everything up to the matching ``)`` —
across nested brackets, quotes and comments — as one CONFIG token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from routebricks.errors import ConfigError, Position

IDENT = "ident"
VARIABLE = "variable"
CONFIG = "config"
PORT = "port"  # a number inside [ ]
OP = "op"  # :: -> => [ ] , ; { } | ||
KEYWORD = "keyword"

# What matters inside a '(' configuration: quotes, comments and brackets (the rest is
# skipped by the pattern); the rest of a string, its closing quote as group 1 (absent:
# unterminated). Only "..." has backslash escapes.
_CONFIG_SPECIAL = re.compile(r"[\"'()\[\]{}]|//|/\*")
_SPECIAL_STRINGS = ('"', "'", "(", "[", "]", "{", "}", "//", "/*")
_DQ_STRING = re.compile(r'(?:[^"\\]|\\.)*(")?', re.S)
_SQ_STRING = re.compile(r"[^']*(')?")
EOF = "eof"

KEYWORDS = {"elementclass", "require", "define"}
_IDENT = re.compile(r"[A-Za-z_@0-9][A-Za-z0-9_@/]*")
_VARIABLE = re.compile(r"\$(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")
_OPS = ("::", "->", "=>", "||", "...", "[", "]", ",", ";", "{", "}", "|")


@dataclass
class Token:
    kind: str
    text: str
    pos: Position
    end: int = 0  # offset just past the token in the source

    def __repr__(self) -> str:
        return f"{self.kind}:{self.text!r}@{self.pos.line}:{self.pos.column}"


class Lexer:
    def __init__(self, text: str, filename: str = "<config>") -> None:
        self.text = text
        self.filename = filename
        self.i = 0
        self._lines: list[str] | None = None
        # position() is asked in increasing offsets: count newlines from the last answer
        # (in C), not per character or per line of a megabyte configuration.
        self._at = (0, 1)  # (offset, line number there)

    def position(self, offset: int) -> Position:
        t = self.text
        last, line = self._at if offset >= self._at[0] else (0, 1)
        line += t.count("\n", last, offset)
        self._at = (offset, line)
        col = offset - (t.rfind("\n", 0, offset) + 1) + 1
        return Position(self.filename, line, col)

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.text.split("\n")
        return self._lines

    def source_line(self, pos: Position) -> str:
        return self.lines[pos.line - 1] if 0 < pos.line <= len(self.lines) else ""

    def error(self, msg: str, offset: int, hint: str | None = None) -> ConfigError:
        pos = self.position(offset)
        return ConfigError(msg, pos, hint, self.source_line(pos))

    def _skip_space(self) -> None:
        t = self.text
        n = len(t)
        while self.i < n:
            c = t[self.i]
            if c.isspace():
                self.i += 1
            elif t.startswith("//", self.i):
                j = t.find("\n", self.i)
                self.i = n if j < 0 else j
            elif t.startswith("/*", self.i):
                j = t.find("*/", self.i + 2)
                if j < 0:
                    raise self.error("unterminated comment", self.i, "close it with */")
                self.i = j + 2
            elif c == "#" and (self.i == 0 or t[self.i - 1] == "\n"):
                # Preprocessor-style lines (e.g. '# 1 "file"') are comments, as in Click.
                j = t.find("\n", self.i)
                self.i = n if j < 0 else j
            else:
                break

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        in_brackets = False
        t = self.text
        while True:
            self._skip_space()
            start = self.i
            if self.i >= len(t):
                out.append(Token(EOF, "", self.position(start), start))
                return out
            c = t[self.i]
            if c == "(":
                end = self._config_end(self.i)
                out.append(Token(CONFIG, t[self.i + 1 : end], self.position(self.i + 1), end + 1))
                self.i = end + 1
                continue
            if c == ")":
                raise self.error("unmatched ')'", self.i, "remove it or add the matching '('")
            for op in _OPS:
                if t.startswith(op, self.i):
                    self.i += len(op)
                    out.append(Token(OP, op, self.position(start), self.i))
                    if op == "[":
                        in_brackets = True
                    elif op == "]":
                        in_brackets = False
                    break
            else:
                if in_brackets and c.isdigit():
                    m = re.compile(r"\d+").match(t, self.i)
                    assert m
                    self.i = m.end()
                    out.append(Token(PORT, m.group(), self.position(start), self.i))
                    continue
                m = _VARIABLE.match(t, self.i)
                if m:
                    self.i = m.end()
                    out.append(
                        Token(
                            VARIABLE,
                            m.group().replace("{", "").replace("}", ""),
                            self.position(start),
                            self.i,
                        )
                    )
                    continue
                m = _IDENT.match(t, self.i)
                if m:
                    word = m.group()
                    if word.endswith("/") or "//" in word:
                        raise self.error(
                            f"bad name {word!r}", start, "names may not end in '/' or contain '//'"
                        )
                    self.i = m.end()
                    kind = KEYWORD if word in KEYWORDS else IDENT
                    out.append(Token(kind, word, self.position(start), self.i))
                    continue
                raise self.error(
                    f"unexpected character {c!r}",
                    start,
                    "expected a name, '::', '->', '[', ';' or a '(' configuration",
                )

    def _config_end(self, open_at: int) -> int:
        """Offset of the ')' matching the '(' at ``open_at``. Jumps between the characters
        that matter (``_CONFIG_SPECIAL``): a megabyte configuration is not walked in
        Python."""
        t = self.text
        # Most configurations (a route table of megabytes included) hold no quote, comment
        # or bracket before their ')': a few substring searches in C settle them.
        close = t.find(")", open_at + 1)
        if close >= 0 and all(t.find(c, open_at + 1, close) < 0 for c in _SPECIAL_STRINGS):
            return close
        depth = 0
        i = open_at
        n = len(t)
        while i < n:
            m = _CONFIG_SPECIAL.search(t, i)
            if m is None:
                break
            i = m.start()
            c = t[i]
            if c in "\"'":
                rest = (_DQ_STRING if c == '"' else _SQ_STRING).match(t, i + 1)
                assert rest is not None  # both match an empty rest
                if rest.group(1) is None:
                    raise self.error(
                        "unterminated string in configuration", i, f"close the string with {c}"
                    )
                i = rest.end()
                continue
            tok = m.group()
            if tok == "//":
                j = t.find("\n", i)
                i = n if j < 0 else j
                continue
            if tok == "/*":
                j = t.find("*/", i + 2)
                if j < 0:
                    raise self.error("unterminated comment", i, "close it with */")
                i = j + 2
                continue
            if c in "([{":
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    if c != ")":
                        raise self.error(
                            f"mismatched {c!r} in configuration",
                            i,
                            "brackets inside a configuration must balance",
                        )
                    return i
            i += 1
        raise self.error(
            "unterminated configuration: '(' without matching ')'", open_at, "add the closing ')'"
        )
