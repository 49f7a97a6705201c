"""The ControlSocket protocol's framing, apart from sockets: a client's byte stream cut into
requests (:class:`CommandReader`), and replies made safe to send (:func:`message`).

A command line is at most :data:`MAX_LINE` bytes and a ``WRITEDATA`` at most
:data:`MAX_DATA` bytes; either limit passed, or a ``WRITEDATA`` length that is not a number,
is answered ``500`` and ends the session (the bytes that follow cannot be told from
commands). A ``WRITEDATA`` becomes a request only once all of its bytes are in. Commands
and data must be UTF-8. Replies quote client input only as a short excerpt with control
characters escaped, and a message of several lines is sent as Click does:
``520-first line`` ... ``520 last line``.
"""

from __future__ import annotations

from dataclasses import dataclass

from routebricks.runtime.requests import HANDLER_ERROR, OK, SYNTAX, UNIMPLEMENTED

GREETING = "Click::ControlSocket/1.3"
MAX_LINE = 64 * 1024  # bytes in a command line
MAX_DATA = 256 * 1024 * 1024  # bytes in a WRITEDATA (and in a value the client sends)
EXCERPT = 80  # characters of client input quoted in a reply


def printable(text: str, limit: int = EXCERPT) -> str:
    """``text`` fit to quote on one protocol line: at most ``limit`` characters, control and
    other unprintable characters escaped (``\\x00``, ``\\n``)."""
    cut = len(text) > limit
    text = text[:limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)[:limit]
    return text + "..." if cut else text


def message(code: int, text: str, width: int = 300, lines: int = 20) -> bytes:
    """A reply: ``CODE text``, or Click's ``CODE-line`` continuation lines for a message of
    several lines, each one printable and bounded (a handler's error may quote its input)."""
    rows = [r.rstrip("\r") for r in text.split("\n")]
    while len(rows) > 1 and not rows[-1]:
        rows.pop()
    if len(rows) > lines:
        rows = rows[:lines - 1] + [f"... ({len(rows) - lines + 1} more lines)"]
    code = code if 100 <= code <= 999 else HANDLER_ERROR
    last = len(rows) - 1
    return b"".join(f"{code}{' ' if i == last else '-'}{printable(r, width)}\r\n".encode()
                    for i, r in enumerate(rows))


@dataclass(frozen=True)
class Request:
    """A complete handler request from a client: what ``ask(kind, spec, value)`` gets."""

    kind: str  # read, read_each, write, checkread, checkwrite
    spec: str
    value: str = ""


@dataclass(frozen=True)
class Answer:
    """A reply the protocol gives by itself (QUIT, errors); ``close`` ends the session."""

    code: int
    text: str
    close: bool = False


class CommandReader:
    """One client's byte stream cut into :class:`Request` and :class:`Answer` items, in
    order. No sockets here, so the framing rules are tested (and fuzzed) on their own."""

    def __init__(self, max_line: int = MAX_LINE, max_data: int = MAX_DATA) -> None:
        self.max_line = max_line
        self.max_data = max_data
        self.buf = bytearray()
        self.done = False  # after QUIT or a framing error: nothing more is parsed
        self._scanned = 0  # bytes at the start of buf known to hold no newline
        self._data_for: str | None = None  # a WRITEDATA waiting for its bytes
        self._data_len = 0

    def feed(self, data: bytes) -> None:
        if not self.done:
            self.buf += data

    def next(self) -> Request | Answer | None:
        """The next complete item, or None until more bytes are fed."""
        while not self.done:
            if self._data_for is not None:
                if len(self.buf) < self._data_len:
                    return None
                spec, self._data_for = self._data_for, None
                item = self._data(spec, self._data_len)
                del self.buf[:self._data_len]
                return item
            nl = self.buf.find(b"\n", self._scanned)
            if nl < 0 and len(self.buf) <= self.max_line:
                self._scanned = len(self.buf)
                return None
            if nl < 0 or nl > self.max_line:
                return self._fatal(f"command line longer than {self.max_line} bytes")
            line = bytes(self.buf[:nl])
            del self.buf[:nl + 1]
            self._scanned = 0
            item = self._command(line)
            if item is not None:
                return item
        return None

    def leftover(self) -> str | None:
        """At the end of the input: what was left incomplete (and so not done), or None."""
        if self.done:
            return None
        if self._data_for is not None:
            return (f"the connection ended {self._data_len - len(self.buf)} bytes short of "
                    f"WRITEDATA's {self._data_len}; nothing was written")
        if self.buf.strip():
            return "the connection ended inside a command line; it was ignored"
        return None

    def _fatal(self, text: str) -> Answer:
        self.done = True
        self.buf.clear()
        return Answer(SYNTAX, f"{text}; closing the connection", close=True)

    def _command(self, line: bytes) -> Request | Answer | None:
        try:
            text = line.decode().strip()
        except UnicodeDecodeError as e:
            return Answer(SYNTAX, f"Syntax error: command is not UTF-8 text (byte "
                                  f"0x{line[e.start]:02x} at offset {e.start})")
        if not text:
            return None
        word, _, rest = text.partition(" ")
        cmd, rest = word.upper(), rest.strip()
        if cmd == "QUIT":
            self.done = True
            return Answer(OK, "Goodbye!", close=True)
        if cmd == "WRITEDATA":
            return self._writedata(rest)
        if cmd not in ("READ", "READDATA", "READEACH", "WRITE", "CHECKREAD", "CHECKWRITE"):
            return Answer(UNIMPLEMENTED, f"Unimplemented command '{printable(word)}'")
        if not rest:
            return Answer(SYNTAX, f"Syntax error: {cmd} needs a handler name")
        if cmd == "WRITE":
            spec, _, value = rest.partition(" ")
            return Request("write", spec, value)
        if cmd.startswith("READ"):
            # the whole rest: a handler may take a parameter (READ rt.lookup 10.0.0.1)
            return Request("read_each" if cmd == "READEACH" else "read", rest)
        return Request(cmd.lower(), rest)

    def _writedata(self, rest: str) -> Answer | None:
        # A bad length loses the framing: the data that follows cannot be told from
        # commands, so the connection ends (before any of it is read).
        words = rest.split()
        if len(words) != 2 or not (words[1].isascii() and words[1].isdigit()):
            return self._fatal("Syntax error: expected 'WRITEDATA handler LENGTH' with "
                               "LENGTH a number of bytes")
        if len(words[1]) > len(str(self.max_data)) or int(words[1]) > self.max_data:
            return self._fatal(f"WRITEDATA of {printable(words[1], 20)} bytes is over the "
                               f"maximum of {self.max_data}")
        self._data_for, self._data_len = words[0], int(words[1])
        return None

    def _data(self, spec: str, n: int) -> Request | Answer:
        # Decoded in place: a WRITEDATA of MAX_DATA bytes is held twice, not four times.
        with memoryview(self.buf) as view, view[:n] as data:
            try:
                return Request("write", spec, str(data, "utf-8"))
            except UnicodeDecodeError as e:
                return Answer(SYNTAX, f"Syntax error: data for '{printable(spec)}' is not "
                                      f"UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                                      f"{e.start}); nothing was written")
