"""Click's binary IP summary dump: after the text header's ``!binary`` line, records.

Each record is a 4-byte big-endian word, its high bit set for a text record (a ``!`` or
``#`` line, NUL-padded) and the rest the record's length including the word, then the
fields of the ``!data`` line in order, each fixed-width and big-endian (:data:`WIDTH`):
``timestamp`` is seconds then microseconds, ``ntimestamp`` nanoseconds then seconds,
``ts_usec1`` the low then the high 32 bits, ``ip_frag`` its character (``F``, ``f``, ``!``,
``.``), ``payload_md5`` the 16-byte digest. An option field (``ip_opt``, ``tcp_opt``,
``tcp_ntopt``, ``tcp_sack``) is a length byte and that many option bytes (one zero byte: no
options); as C++ Click writes them, ``ip_opt`` and ``tcp_opt`` are followed by a second
copy that ends at EOL or at a malformed option, which our reader skips (C++ Click's reader
does not: keep those fields last for C++ Click to read a file). ``payload`` has no binary
form. Unknown field names take no bytes, as in Click.

:func:`pack_field` writes one field, :func:`unpack_record` reads a record's fields;
:class:`DumpReader` cuts a file into lines and records, and reports a malformed record
(length under 4, cut short) with the file, the record's number and its byte offset, holding
at most 1 MiB of any record.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from routebricks.packet.ipsumdump_fields import IPSumDumpError
from routebricks.packet.ipsumdump_tcpopt import ALL, NTALL, SACK, kept_options

VAR = -1  # a length byte, then that many bytes

#: Bytes each field takes in a binary record (Click's field types; VAR: variable).
WIDTH: dict[str, int] = {
    "timestamp": 8, "ntimestamp": 8, "ts_sec": 4, "ts_usec": 4, "ts_usec1": 8,
    "first_timestamp": 8, "first_ntimestamp": 8, "count": 4, "link": 1, "paint": 1,
    "direction": 1, "aggregate": 4, "wire_len": 4,
    "eth_src": 6, "eth_dst": 6, "eth_type": 2,
    "ip_src": 4, "ip_dst": 4, "ip_tos": 1, "ip_dscp": 1, "ip_ecn": 1, "ip_ttl": 1,
    "ip_frag": 1, "ip_fragoff": 2, "ip_id": 2, "ip_sum": 2, "ip_proto": 1, "ip_hl": 1,
    "ip_len": 4, "ip_capture_len": 4, "ip_opt": VAR, "sport": 2, "dport": 2,
    "tcp_seq": 4, "tcp_ack": 4, "tcp_off": 1, "tcp_flags": 1, "tcp_window": 2,
    "tcp_urp": 2, "tcp_opt": VAR, "tcp_ntopt": VAR, "tcp_sack": VAR, "udp_len": 4,
    "icmp_type": 1, "icmp_code": 1, "icmp_type_name": 1, "icmp_code_name": 1,
    "icmp_flowid": 2, "icmp_seq": 2, "icmp_nextmtu": 2,
    "payload_len": 4, "payload_md5": 16, "payload_md5_hex": 16,
}
#: Option kinds an option field keeps in binary (``ip_opt`` and ``tcp_opt``: all, twice).
_OPT_MASK = {"ip_opt": ALL, "tcp_opt": ALL, "tcp_ntopt": NTALL, "tcp_sack": SACK}
_FRAG_CHARS = {".": 0, "!": 0x4000, "F": 0x2000, "f": 100}
_NS = 1_000_000_000

MAX_KEEP = 1 << 20  # bytes of one record held; the rest of a longer one is skipped
_CHUNK = 1 << 16


def _be(v: int, width: int) -> bytes:
    return (v & ((1 << 8 * width) - 1)).to_bytes(width, "big")


def pack_field(name: str, v: object) -> bytes:
    """Field ``name`` of one record, from the value :mod:`ipsumdump_write` extracted
    (None: the field does not apply, written as zeros)."""
    w = WIDTH[name]
    if w == VAR:
        if not v:
            return b"\0"
        opt = bytes(v)  # type: ignore[arg-type]
        kept = kept_options(opt, _OPT_MASK[name])
        head = bytes([len(opt)]) + opt if name in ("ip_opt", "tcp_opt") else b""
        return head + bytes([len(kept)]) + kept
    if v is None and name.startswith("payload_md5"):
        v = b""  # no payload in the packet: the digest of nothing, as Click's
    if v is None:
        return bytes(w)
    if name in ("timestamp", "first_timestamp", "ntimestamp", "first_ntimestamp"):
        sec, ns = divmod(int(v), _NS)  # type: ignore[call-overload]
        if name.endswith("ntimestamp"):
            return _be(ns, 4) + _be(sec, 4)
        return _be(sec, 4) + _be(ns // 1000, 4)
    if name == "ts_usec1":
        return _be(int(v), 4) + _be(int(v) >> 32, 4)  # type: ignore[call-overload]
    if name.startswith("payload_md5"):
        return hashlib.md5(bytes(v)).digest()  # type: ignore[arg-type]
    if isinstance(v, bytes | bytearray):
        return bytes(v)[:w].ljust(w, b"\0")
    if isinstance(v, str):  # ip_frag's character
        return v.encode("latin-1")[:1]
    return _be(int(v), w)  # type: ignore[call-overload]


def _unpack_value(name: str, raw: bytes) -> object:
    n = int.from_bytes(raw, "big")
    if name in ("timestamp", "first_timestamp"):
        return int.from_bytes(raw[:4], "big") * _NS + int.from_bytes(raw[4:], "big") * 1000
    if name in ("ntimestamp", "first_ntimestamp"):
        return int.from_bytes(raw[4:], "big") * _NS + int.from_bytes(raw[:4], "big")
    if name == "ts_usec1":
        return int.from_bytes(raw[4:], "big") << 32 | int.from_bytes(raw[:4], "big")
    if name in ("eth_src", "eth_dst"):
        return raw
    if name == "ip_frag":
        return _FRAG_CHARS.get(chr(n), n)
    return n


def unpack_record(record: bytes, names: list[str | None]) -> list[object | None]:
    """The values of a packet record's fields (``record`` without its length word), in
    the form :mod:`routebricks.packet.ipsumdump` applies them; None where the record is
    too short or the field is unknown (it takes no bytes) or has no binary form."""
    out: list[object | None] = []
    pos, end = 0, len(record)
    for name in names:
        w = WIDTH.get(name) if name else 0
        if not w:  # unknown: no bytes, as Click's
            out.append(None)
            if w is None:  # a field with no binary form: nothing after it can be read
                pos = end
            continue
        if w == VAR:
            if pos >= end or pos + 1 + record[pos] > end:
                out.append(None)
                pos = end
                continue
            opt = record[pos + 1:pos + 1 + record[pos]]
            pos += 1 + len(opt)
            if name in ("ip_opt", "tcp_opt") and opt:  # Click's second copy, if there
                kept = kept_options(opt, ALL)
                if record[pos:pos + 1 + len(kept)] == bytes([len(kept)]) + kept:
                    pos += 1 + len(kept)
            out.append(opt)
            continue
        if pos + w > end:
            out.append(None)
            pos = end
            continue
        out.append(_unpack_value(name, record[pos:pos + w]))  # type: ignore[arg-type]
        pos += w
    return out


class DumpReader:
    """A dump file cut into text lines, and after :meth:`start_binary` into records.

    :meth:`next` gives ``(kind, content, place)``: ``("line", text, "FILE:LINE")`` for a
    text line or text record, ``("record", data, "FILE: record N")`` for a packet record;
    None at the end of the file. A malformed record raises :class:`IPSumDumpError` naming
    the file, the record and its byte offset; reading then stops."""

    def __init__(self, f: BinaryIO, where: str) -> None:
        self.f, self.where = f, where
        self.offset = 0  # bytes read (of the uncompressed stream)
        self.lineno = 0
        self.recno = 0
        self.binary = False

    def start_binary(self) -> None:
        self.binary, self.recno = True, 0

    def _read(self, n: int) -> bytes:
        data = self.f.read(n)
        self.offset += len(data)
        return data

    def _bad(self, start: int, what: str) -> IPSumDumpError:
        return IPSumDumpError(f"{self.where}: record {self.recno} (byte offset {start}): "
                              f"{what}")

    def next(self) -> tuple[str, str | bytes, str] | None:
        if not self.binary:
            raw = self.f.readline()
            if not raw:
                return None
            self.offset += len(raw)
            self.lineno += 1
            return "line", raw.decode("latin-1"), f"{self.where}:{self.lineno}"
        start = self.offset
        head = self._read(4)
        if not head:
            return None
        self.recno += 1
        if len(head) < 4:
            raise self._bad(start, f"truncated: the file ends {len(head)} bytes into "
                                   "the record's 4-byte length")
        word = int.from_bytes(head, "big")
        length, text = word & 0x7FFFFFFF, bool(word >> 31)
        if length < 4:
            raise self._bad(start, f"binary record too short (length {length}; at least 4)")
        keep = min(length, MAX_KEEP)
        data = self._read(keep - 4)
        got = 4 + len(data)
        while keep == got < length:  # a longer record: skip the rest, a chunk at a time
            chunk = self._read(min(_CHUNK, length - got))
            if not chunk:
                break
            got += len(chunk)
            keep = got
        if got < length:
            raise self._bad(start, f"truncated: its length says {length} bytes, the file "
                                   f"ends {got} bytes in")
        place = f"{self.where}: record {self.recno}"
        if text:
            return "line", data.rstrip(b"\0").decode("latin-1"), place
        return "record", data, place
