"""Users' text files (configurations, SA files, route files) as text: a byte that is not
UTF-8 is reported at its line and column, as every other mistake in those files is, instead
of escaping as a ``UnicodeDecodeError``."""

from __future__ import annotations

import codecs


class NotUTF8Error(ValueError):
    """Bytes that are not UTF-8 text: ``line`` and ``column`` (1-based, the column counted
    in characters) of the first bad byte, ``byte`` its value and ``source_line`` that line
    (bad bytes shown as U+FFFD) for quoting."""

    def __init__(self, line: int, column: int, byte: int, source_line: str) -> None:
        self.line = line
        self.column = column
        self.byte = byte
        self.source_line = source_line
        super().__init__(f"byte 0x{byte:02x} at line {line}, column {column} is not UTF-8 text")


def decode_utf8(data: bytes) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark dropped); NotUTF8Error naming the
    first byte that is not."""
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        bad = bom + e.start  # offsets in the error are past the mark
        start = max(data.rfind(b"\n", 0, bad) + 1, bom)  # the mark is not part of line 1
        end = data.find(b"\n", bad)
        line_bytes = data[start : end if end >= 0 else len(data)]
        before = data[start:bad].decode("utf-8", "replace")
        raise NotUTF8Error(
            data.count(b"\n", 0, bad) + 1,
            len(before) + 1,
            data[bad],
            line_bytes.decode("utf-8", "replace"),
        ) from None


def read_text(path: str) -> str:
    """The UTF-8 text of the file at ``path``: OSError if it cannot be read, NotUTF8Error
    if it is not text."""
    with open(path, "rb") as f:
        return decode_utf8(f.read())
