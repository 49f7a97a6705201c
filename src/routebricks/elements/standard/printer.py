"""Print: prints one line per packet to stderr, in Click's format."""

from __future__ import annotations

import sys

from routebricks.engine.args import Arg, Bool, Int, String, Word
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch

CONTENTS_NONE, CONTENTS_HEX, CONTENTS_ASCII = 0, 1, 2
_PRINTABLE = bytes(c if 32 <= c <= 126 else ord(".") for c in range(256))


def format_timestamp(ns: int) -> str:
    """A timestamp as Click prints it: ``sec.usec`` (six digits), or nine digits when it is
    not a whole number of microseconds (Click's nanosecond-timestamp build)."""
    sign = "-" if ns < 0 else ""
    sec, sub = divmod(abs(int(ns)), 1_000_000_000)
    if sub % 1000 == 0:
        return f"{sign}{sec}.{sub // 1000:06d}"
    return f"{sign}{sec}.{sub:09d}"


def format_hex(data: bytes) -> str:
    """Lower-case hex, a space between groups of four bytes (Click's HEX contents)."""
    h = data.hex()
    return " ".join(h[i : i + 8] for i in range(0, len(h), 8))


def format_ascii(data: bytes) -> str:
    """Printable bytes as themselves, others as ``.``, a space before every eighth byte
    starting with the first (Click's ASCII contents)."""
    s = data.translate(_PRINTABLE).decode("ascii")
    return "".join(" " + s[i : i + 8] for i in range(0, len(s), 8))


def format_annotations(batch: PacketBatch, i: int) -> str:
    """Packet ``i``'s annotation columns, sorted by name, each as big-endian hex of its
    column's width (our stand-in for Click's raw annotation area)."""
    parts = []
    for name in sorted(batch.annos):
        col = batch.annos[name]
        parts.append(col[i : i + 1].astype(col.dtype.newbyteorder(">")).tobytes().hex())
    return "".join(parts)


class Print(Element):
    """Prints a line for every packet to stderr: label, length and the first bytes.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        LABEL (string, positional, default empty): text at the start of each line.
        MAXLENGTH (integer, positional, default 24): the most bytes of data to print
            (negative: the whole packet).
        CONTENTS (NONE, HEX, ASCII or a bool, default HEX): how to print the data (true is
            HEX, false is NONE).
        TIMESTAMP (bool, default false): print the timestamp annotation.
        PRINTANNO (bool, default false): print the packet's annotations in hex.
        HEADROOM (bool, default false): print the headroom and tailroom.
        ACTIVE (bool, default true): whether to print.
        LENGTH, NBYTES (integer): old names for MAXLENGTH.
    Behaviour: passes packets through unchanged. Each line is assembled as Click assembles
        it: LABEL (if not empty), the timestamp annotation (if TIMESTAMP: ``sec.usec``, or
        nine decimals when it is not a whole microsecond, as Click's nanosecond build) and
        the length right-aligned in four columns, separated by ``": "``; then `` (hH tT)``
        if HEADROOM; `` | `` and the annotations if PRINTANNO; and `` | `` and the data if
        any is printed. HEX prints lower-case hex with a space between groups of four bytes;
        ASCII prints printable characters as themselves and others as ``.``,
        with a space before every eighth byte including the first. One write to stderr per
        batch. Differences from Click: HEADROOM prints the batch-wide room bounds (the room
        every packet of the batch has at least), and PRINTANNO prints this router's
        annotation columns, sorted by name, each in its width, instead of Click's raw
        48-byte annotation area.
    Handlers:
        active (read/write): whether to print.
    Example:
        InfiniteSource(LIMIT 1) -> Print(ok) -> Discard;
        // prints: ok:   69 | 52616e64 6f6d2062 756c6c73 68697420 696e2061 20706163
    See also: ToDump, Counter
    """

    port_count = "1/1"
    processing = "a/a"
    PASSES_ALL = True
    ARGS = (
        Arg("LABEL", String, "", positional=True),
        Arg("MAXLENGTH", Int, 24, positional=True),
        Arg("LENGTH", Int, None, attr="old_length"),
        Arg("NBYTES", Int, None, attr="old_nbytes"),
        Arg("CONTENTS", Word, "HEX"),
        Arg("TIMESTAMP", Bool, False),
        Arg("PRINTANNO", Bool, False),
        Arg("ACTIVE", Bool, True),
        Arg("HEADROOM", Bool, False),
    )

    def configure(self) -> None:
        for old in (self.old_length, self.old_nbytes):
            if old is not None:
                self.maxlength = old
        try:
            self.contents_mode = CONTENTS_HEX if Bool.parse(self.contents) else CONTENTS_NONE
        except ValueError:
            c = self.contents.upper()
            modes = {"NONE": CONTENTS_NONE, "HEX": CONTENTS_HEX, "ASCII": CONTENTS_ASCII}
            if c not in modes:
                raise self.error(
                    f"bad contents value '{self.contents}'; should be 'NONE', 'HEX', or 'ASCII'"
                ) from None
            self.contents_mode = modes[c]

    def format_batch(self, batch: PacketBatch) -> list[str]:
        """The lines Print writes for ``batch`` (one per packet)."""
        n = len(batch)
        lengths = batch.length.tolist()
        offs = batch.off.tolist()
        ts = batch.anno_or_none("timestamp") if self.timestamp else None
        ts_list = ts.tolist() if ts is not None else [0] * n
        maxb = self.maxlength if self.contents_mode else 0
        room = f" (h{batch.headroom} t{batch.tailroom})" if self.headroom else ""
        pool = batch.pool
        fmt = format_hex if self.contents_mode == CONTENTS_HEX else format_ascii
        lines = []
        for i in range(n):
            length = lengths[i]
            parts = []
            sep = ""
            if self.label:
                parts.append(self.label)
                sep = ": "
            if self.timestamp:
                parts.append(sep + format_timestamp(ts_list[i]))
                sep = ": "
            parts.append(f"{sep}{length:4d}")
            parts.append(room)
            if self.printanno:
                parts.append(" | " + format_annotations(batch, i))
            k = length if maxb < 0 or length < maxb else maxb
            if k:
                o = offs[i]
                parts.append(" | " + fmt(pool[o : o + k].tobytes()))
            lines.append("".join(parts))
        return lines

    def process(self, batch: PacketBatch) -> PacketBatch:
        if self.active and len(batch):
            sys.stderr.write("\n".join(self.format_batch(batch)) + "\n")
        return batch

    @read_handler("active")
    def h_active(self) -> bool:
        """Whether to print."""
        return self.active

    @write_handler("active")
    def h_set_active(self, v: str) -> None:
        """Set whether to print."""
        self.active = Bool.parse(v)
