"""The names, orders and text forms of Click's IP summary dump fields, shared by reading
(:mod:`routebricks.packet.ipsumdump`), writing (:mod:`routebricks.packet.ipsumdump_write`)
and the binary form (:mod:`routebricks.packet.ipsumdump_binary`).

Field names are Click's, with its synonyms (``ts``, ``src``, ``"tcp flags"``, ``proto`` ...);
strings are quoted as Click's ``cp_quote``; numbers read as Click's ``IntArg``.
"""

from __future__ import annotations

import hashlib
import re

from routebricks.errors import RouteBricksError
from routebricks.packet.batch import register_annotation

MAJOR_VERSION, MINOR_VERSION = 1, 3

# Click's packet-count, aggregate and extra-length annotations (count, aggregate, ip_len).
register_annotation("extra_packets", "uint32")
register_annotation("aggregate", "uint32")
register_annotation("first_timestamp", "int64")
register_annotation("extra_length", "uint32")


class IPSumDumpError(RouteBricksError):
    """A dump line, record or header that cannot be read."""


def u16(b: bytes | bytearray, o: int) -> int:
    return b[o] << 8 | b[o + 1]


# ---------------------------------------------------------------------- field names
# name -> order on input (None: output only). Click sorts input fields by this order.
_ANNO, _LINK, _NET, _TRANSP, _PAYLOAD = 100, 200, 300, 400, 500
FIELDS: dict[str, int | None] = {
    "timestamp": _ANNO, "ntimestamp": _ANNO, "ts_sec": _ANNO, "ts_usec": _ANNO,
    "ts_usec1": _ANNO, "first_timestamp": _ANNO, "first_ntimestamp": _ANNO, "count": _ANNO,
    "link": _ANNO, "paint": _ANNO, "direction": _ANNO, "aggregate": _ANNO,
    "wire_len": _ANNO,
    "eth_src": _LINK, "eth_dst": _LINK, "eth_type": _LINK,
    "ip_src": _NET, "ip_dst": _NET, "ip_tos": _NET, "ip_dscp": _NET, "ip_ecn": _NET,
    "ip_ttl": _NET, "ip_frag": _NET - 2, "ip_fragoff": _NET - 1, "ip_id": _NET,
    "ip_sum": _NET + 2, "ip_proto": _NET, "ip_hl": _NET - 1, "ip_len": _NET + 1,
    "ip_capture_len": _PAYLOAD + 2, "ip_opt": _NET,
    "sport": _TRANSP, "dport": _TRANSP,
    "tcp_seq": _TRANSP, "tcp_ack": _TRANSP, "tcp_off": _TRANSP - 1, "tcp_flags": _TRANSP,
    "tcp_window": _TRANSP, "tcp_urp": _TRANSP, "udp_len": _TRANSP,
    "icmp_type": _TRANSP, "icmp_code": _TRANSP + 1, "icmp_type_name": _TRANSP,
    "icmp_code_name": _TRANSP + 1, "icmp_flowid": _TRANSP + 2, "icmp_seq": _TRANSP + 2,
    "icmp_nextmtu": _TRANSP + 2,
    "tcp_sack": _TRANSP + 1, "tcp_ntopt": _TRANSP + 2, "tcp_opt": _TRANSP + 3,
    "payload": _PAYLOAD, "payload_len": _PAYLOAD + 1,
    "payload_md5": None, "payload_md5_hex": None,
}
SYNONYMS = {
    "utimestamp": "timestamp", "ts": "timestamp", "sec": "ts_sec", "usec": "ts_usec",
    "usec1": "ts_usec1", "first_utimestamp": "first_timestamp", "first_ts": "first_timestamp",
    "pkt_count": "count", "packet_count": "count", "agg": "aggregate",
    "wire_length": "wire_len", "ether_src": "eth_src", "ether_dst": "eth_dst",
    "ether_type": "eth_type", "length": "ip_len", "ip_p": "ip_proto",
    "tcp_seqno": "tcp_seq", "tcp_ackno": "tcp_ack", "tcp_win": "tcp_window",
    "payload_length": "payload_len",
}


def find_field(name: str) -> str | None:
    """The canonical field name for ``name`` (Click's lookup: synonyms; then the first
    space made an underscore; then a name without underscore prefixed by ``ip_``)."""
    for _ in range(8):
        if name in SYNONYMS:
            name = SYNONYMS[name]
        if name in FIELDS:
            return name
        if " " in name:
            name = name.replace(" ", "_", 1)
        elif "_" not in name:
            name = "ip_" + name
        else:
            return None
    return None


def split_words(text: str) -> list[str]:
    """Whitespace-separated words; a double-quoted part (backslash escapes) is one word."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        j = i
        while j < n and not text[j].isspace():
            if text[j] == '"':
                j += 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
            j += 1
        words.append(text[i:min(j, n)])
        i = j
    return words


def field_list(text: str) -> tuple[list[str], list[str]]:
    """The fields named in a CONTENTS string or ``!data`` line: (canonical names, unknown
    words). Quoted words may hold spaces (``"tcp seq"``)."""
    known, unknown = [], []
    for i, w in enumerate(split_words(text)):
        word = unquote(w) or w
        if i == 0 and word in ("!data", "!contents"):
            continue
        f = find_field(word)
        (known if f else unknown).append(f or word)
    return known, unknown


# ---------------------------------------------------------------------- strings
_ESC = {"\\": "\\\\", '"': '\\"', "$": "\\$", "\t": "\\t", "\r": "\\r", "\n": "\\n"}


def quote(data: bytes) -> str:
    """Click's ``cp_quote`` of a byte string: ``"hi there\\n"``, octal for the rest."""
    out = ['"']
    for b in data:
        c = chr(b)
        if c in _ESC:
            out.append(_ESC[c])
        elif b < 32 or b >= 127:
            out.append(f"\\{b >> 6}{(b >> 3) & 7}{b & 7}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


_BS = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}


def unquote_bytes(s: str) -> bytes | None:
    """A quoted string (Click's ``cp_string``) as bytes; None if ``s`` is not one."""
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        return None
    out = bytearray()
    i, n = 1, len(s) - 1
    while i < n:
        c = s[i]
        if c != "\\" or i + 1 >= n:
            if c == '"':
                return None
            out += c.encode("latin-1", "replace")
            i += 1
            continue
        e = s[i + 1]
        m = re.match(r"[0-7]{1,3}", s[i + 1:n])
        if m:
            out.append(int(m.group(), 8) & 0xFF)
            i += 1 + len(m.group())
        elif e == "x":
            m = re.match(r"[0-9a-fA-F]*", s[i + 2:n])
            digits = m.group() if m else ""
            out.append(int(digits or "0", 16) & 0xFF)
            i += 2 + len(digits)
        else:
            out.append(_BS.get(e, ord(e) & 0xFF))
            i += 2
    return bytes(out)


def unquote(s: str) -> str | None:
    b = unquote_bytes(s)
    return None if b is None else b.decode("latin-1")


_MD5_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@"


def md5_text(data: bytes) -> str:
    """Click's 22-character MD5 text digest (6 bits a character, least significant first)."""
    d = hashlib.md5(data).digest()
    out = []
    for bit in range(0, 128, 6):
        k = bit // 8
        v = d[k] >> (bit % 8)
        if bit % 8 > 2 and k < 15:
            v += d[k + 1] << (8 - bit % 8)
        out.append(_MD5_CHARS[v & 0x3F])
    return "".join(out)


# ---------------------------------------------------------------------- numbers, names
_INT = re.compile(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\Z")
_IPV4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\Z")


def parse_int(s: str, limit: int = 1 << 32) -> int | None:
    """An unsigned integer as Click's IntArg reads it (decimal, 0x hex, 0 octal)."""
    if not _INT.match(s):
        return None
    v = int(s, 16) if s[:2] in ("0x", "0X") else int(s, 8) if s[0] == "0" else int(s)
    return v if v < limit else None


def parse_ip(s: str) -> int | None:
    m = _IPV4.match(s)
    if not m or any(int(g) > 255 for g in m.groups()):
        return None
    a, b, c, d = (int(g) for g in m.groups())
    return a << 24 | b << 16 | c << 8 | d


ICMP_TYPES = {"echo-reply": 0, "unreachable": 3, "sourcequench": 4, "redirect": 5, "echo": 8,
              "routeradvert": 9, "routersolicit": 10, "timeexceeded": 11,
              "parameterproblem": 12, "timestamp": 13, "timestamp-reply": 14, "inforeq": 15,
              "inforeq-reply": 16, "maskreq": 17, "maskreq-reply": 18}
ICMP_CODES = {
    3: {"net": 0, "host": 1, "protocol": 2, "port": 3, "needfrag": 4, "srcroutefail": 5,
        "netunknown": 6, "hostunknown": 7, "isolated": 8, "netprohibited": 9,
        "hostprohibited": 10, "tosnet": 11, "toshost": 12, "filterprohibited": 13,
        "hostprecedence": 14, "precedencecutoff": 15},
    5: {"net": 0, "host": 1, "tosnet": 2, "toshost": 3},
    11: {"transit": 0, "reassembly": 1},
    12: {"erroratptr": 0, "missingopt": 1, "length": 2},
}
ICMP_TYPE_NAMES = {v: k for k, v in ICMP_TYPES.items()}
ICMP_FLOW_TYPES = {0, 8, 13, 14, 15, 16}
ICMP_HLEN = {13: 20, 14: 20, 17: 12, 18: 12}
TCP_FLAGS = "FSRPAUECN"
TCP_FLAG_BITS = {c: 1 << i for i, c in enumerate(TCP_FLAGS)} | {"W": 0x80, "X": 0x40,
                                                                   "Y": 0x80}
PORT_PROTOS = (6, 17, 33, 136)  # protocols with 16-bit ports: TCP, UDP, DCCP, UDP-Lite
ECN_NAMES = {"no": 0, "-": 0, "ect1": 1, "ECT(1)": 1, "ect2": 2, "ECT(0)": 2, "ce": 3, "CE": 3}
