"""The project's exception types: errors a user can cause, each with a message that says
what to change. Tracebacks are for our own bugs."""

from __future__ import annotations

import re
from dataclasses import dataclass

_KEY = re.compile(r"\b(AUTHKEY|KEY)(\s+|=)(0x)?[0-9A-Fa-f]{8,}")


def redact_keys(text: str) -> str:
    """``KEY 0x1234...`` → ``KEY <redacted>``: configuration text quoted in messages never
    shows key material."""
    return _KEY.sub(lambda m: f"{m.group(1)}{m.group(2)}<redacted>", text)


def shown(text: str, limit: int = 40) -> str:
    """A user's value quoted for a message; a long one (a 100,000-digit number) cut to its
    start, so that the message stays readable."""
    text = text.strip()
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


class RouteBricksError(Exception):
    """Base of every error a user can cause (bad configuration, bad file, bad handler call)."""


@dataclass
class Position:
    """A place in a configuration text (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ConfigError(RouteBricksError):
    """A configuration error, located at ``file:line:column`` when the place is known.

    The message names the offending text and, where we can tell, a hint for fixing it.
    """

    def __init__(self, message: str, pos: Position | None = None, hint: str | None = None,
                 source_line: str | None = None) -> None:
        self.message = message
        self.pos = pos
        self.hint = hint
        self.source_line = source_line
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.pos}: {self.message}" if self.pos else self.message
        parts = [head]
        if self.source_line is not None and self.pos is not None:
            parts.append("  " + redact_keys(self.source_line.rstrip("\n")))
            parts.append("  " + " " * (self.pos.column - 1) + "^")
        if self.hint:
            parts.append(f"  hint: {self.hint}")
        return "\n".join(parts)


class PcapError(RouteBricksError):
    """A pcap file that cannot be read: names the file and the byte offset."""


class HandlerError(RouteBricksError):
    """A handler call that failed: unknown handler, bad value, not readable or writable."""


class NoSuchElement(HandlerError):
    """A handler request names an element the router does not have."""


class NoSuchHandler(HandlerError):
    """A handler request names a handler the element (or the router) does not have."""
