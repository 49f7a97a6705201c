"""Click's IP summary dump: a text trace format, one packet per line, fields named by a
``!data`` line (``!data timestamp ip_src ip_dst ip_proto``).

:func:`parse_line` builds one IPv4 packet from a line, as Click's FromIPSummaryDump does
(fields applied in Click's order: annotations, link, network, transport, payload). Field
names are Click's, with its synonyms (``ts``, ``src``, ``"tcp flags"``, ``proto`` ...).
A line that yields no field raises :class:`IPSumDumpError`; nothing else is raised.
Writing lines is :mod:`routebricks.packet.ipsumdump_write`; IP options' text is
:mod:`routebricks.packet.ipsumdump_ipopt`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from routebricks.errors import RouteBricksError
from routebricks.packet.batch import register_annotation
from routebricks.packet.checksum import inet_checksum
from routebricks.packet.ipsumdump_ipopt import parse_ip_opt

MAJOR_VERSION, MINOR_VERSION = 1, 3

# Click's packet-count and aggregate annotations (see the count and aggregate fields).
register_annotation("extra_packets", "uint32")
register_annotation("aggregate", "uint32")
register_annotation("first_timestamp", "int64")


class IPSumDumpError(RouteBricksError):
    """A dump line or header that cannot be read."""


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
_ETHER = re.compile(r"([0-9a-fA-F]{1,2})([-:])" + r"([0-9a-fA-F]{1,2})\2" * 4
                    + r"([0-9a-fA-F]{1,2})\Z")
_TIME = re.compile(r"(\d+)(?:\.(\d*))?\Z")


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
_ICMP_TYPE_NAMES = {v: k for k, v in ICMP_TYPES.items()}
_ICMP_FLOW_TYPES = {0, 8, 13, 14, 15, 16}
_ICMP_HLEN = {13: 20, 14: 20, 17: 12, 18: 12}
_TCP_FLAGS = "FSRPAUECN"
_TCP_FLAG_BITS = {c: 1 << i for i, c in enumerate(_TCP_FLAGS)} | {"W": 0x80, "X": 0x40,
                                                                   "Y": 0x80}
_PORT_PROTOS = (6, 17, 33, 136)  # protocols with 16-bit ports: TCP, UDP, DCCP, UDP-Lite
_ECN = {"no": 0, "-": 0, "ect1": 1, "ECT(1)": 1, "ect2": 2, "ECT(0)": 2, "ce": 3, "CE": 3}


# ---------------------------------------------------------------------- reading
@dataclass
class ReadContext:
    """What earlier lines (``!proto``, ``!flowid``, the banner) and arguments set."""

    proto: int = 6
    flowid: tuple[int, int, int, int] | None = None  # src, sport, dst, dport
    minor_version: int = MINOR_VERSION


@dataclass
class DumpPacket:
    """A packet built from one line: bytes (Ethernet header if a link field was given,
    then IPv4), annotations, and the IP header's offset."""

    data: bytes
    annos: dict[str, int] = field(default_factory=dict)
    nhoff: int = 0
    count: int = 1


def _u16(b: bytes | bytearray, o: int) -> int:
    return b[o] << 8 | b[o + 1]


class _Builder:
    """One packet under construction (Click's PacketOdesc)."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.eth: bytearray | None = None
        self.ip = bytearray()
        self.is_ip = True
        self.want_len = 0
        self.have_ip_hl = self.have_tcp_hl = False
        self.icmp_type: int | None = None
        self.icmp_code: int | None = None
        self.annos: dict[str, int] = {}

    @property
    def nhoff(self) -> int:
        return 14 if self.eth is not None else 0

    @property
    def hl(self) -> int:
        return (self.ip[0] & 15) * 4

    def put(self, pos: int, data: bytes) -> None:
        """Write ``data`` at ``pos`` of the IP packet, as far as the packet reaches."""
        n = max(0, min(len(data), len(self.ip) - pos))
        self.ip[pos:pos + n] = data[:n]

    def grow(self, total: int) -> None:
        if len(self.ip) < total:
            self.ip += bytes(total - len(self.ip))

    def first_frag(self) -> bool:
        return _u16(self.ip, 6) & 0x1FFF == 0

    def make_ip(self, proto: int = 0) -> bool:
        if not self.is_ip:
            return False
        if len(self.ip) < 20:
            self.ip = bytearray(20)
            self.ip[0], self.ip[8], self.ip[9] = 0x45, 100, self.ctx.proto
            if self.ctx.flowid:
                src, _, dst, _ = self.ctx.flowid
                self.ip[12:20] = src.to_bytes(4, "big") + dst.to_bytes(4, "big")
        return not proto or not self.ip[9] or self.ip[9] == proto

    def make_transp(self) -> bool:
        if not self.first_frag():
            return False
        hl, tl = self.hl, len(self.ip) - self.hl
        need = {6: 20, 17: 8, 136: 8, 33: 12, 1: 8}.get(self.ip[9])
        if tl >= 8 or need is None:
            return True
        if 0 < self.want_len < self.nhoff + hl + need:
            need = self.want_len - self.nhoff - hl
        if tl < need:
            xlen = max(need, 4)
            self.grow(hl + xlen)
            if self.ip[9] == 6 and need >= 13:
                self.ip[hl + 12] = 0x50 | (self.ip[hl + 12] & 15)
            if self.ctx.flowid:
                self.put(hl, self.ctx.flowid[1].to_bytes(2, "big")
                         + self.ctx.flowid[3].to_bytes(2, "big"))
            del self.ip[hl + need:]
        return True

    def payload_info(self) -> tuple[int, int]:
        """(offset of the payload in the whole packet, its length by the IP length)."""
        if not (self.is_ip and len(self.ip) >= 20):
            return 0, self.nhoff + len(self.ip)
        hl = self.hl
        off = self.nhoff + hl
        if self.first_frag():
            if self.ip[9] == 6:
                tl = len(self.ip) - hl
                th = (self.ip[hl + 12] >> 4) * 4 if tl >= 13 else 0
                off += th if th >= 20 else 20
            elif self.ip[9] in (17, 136):
                off += 8
        return off, _u16(self.ip, 2) - (off - self.nhoff)

    def account_payload(self, off: int, plen: int) -> None:
        """Make room for ``plen`` payload bytes: the IP length, or EOL-padded TCP/IP
        options when the IP length says the headers are longer (as Click does)."""
        if not self.is_ip or (_u16(self.ip, 2) == 0 and self.want_len == 0):
            self.want_len = off + plen
            return
        total = (_u16(self.ip, 2) + self.nhoff) if _u16(self.ip, 2) else self.want_len
        delta = total - (off + plen)
        hl = self.hl
        if (delta > 0 and self.first_frag() and self.ip[9] == 6 and not self.have_tcp_hl
                and len(self.ip) >= hl + 13 and self.ip[hl + 12] >> 4 == 5):
            th = min(delta - delta % 4, 40)
            self.ip[hl + 20:hl + 20] = bytes(th)
            self.ip[hl + 12] = ((20 + th) >> 2) << 4 | (self.ip[hl + 12] & 15)
            delta -= th
        if delta > 0 and not self.have_ip_hl and hl == 20:
            d = min(delta - delta % 4, 40)
            self.ip[20:20] = bytes(d)
            self.ip[0] = 0x40 | (20 + d) >> 2


def _parse_frag(s: str, minor: int) -> int | None:
    if s in (".", "!", "F", "f"):
        return {".": 0, "!": 0x4000, "F": 0x2000, "f": 100}[s]
    m = re.match(r"(0[xX][0-9a-fA-F]+|[0-9]*)([!+]*)\Z", s)
    if not m or not s:
        return None
    v = int(m.group(1), 0) if m.group(1)[:2].lower() == "0x" else int(m.group(1) or "0")
    v = (v >> 3 if minor > 0 else v) & 0x1FFF
    return v | (0x4000 if "!" in m.group(2) else 0) | (0x2000 if "+" in m.group(2) else 0)


def _parse_time(s: str) -> int | None:
    m = _TIME.match(s)
    if not m:
        return None
    frac = (m.group(2) or "")[:9].ljust(9, "0")
    return int(m.group(1)) * 1_000_000_000 + int(frac)


_NUM_LIMIT = {"ip_tos": 256, "ip_dscp": 256, "ip_ttl": 256, "ip_hl": 256, "ip_id": 1 << 16,
              "ip_sum": 1 << 16, "tcp_off": 256, "tcp_window": 1 << 16, "tcp_urp": 1 << 16,
              "sport": 1 << 16, "dport": 1 << 16, "icmp_flowid": 1 << 16,
              "icmp_seq": 1 << 16, "icmp_nextmtu": 1 << 16}


def _read_value(b: _Builder, name: str, s: str) -> object | None:
    """The value of field ``name`` in text ``s`` (Click's ``ina``); None if invalid."""
    if name in ("timestamp", "ntimestamp", "first_timestamp", "first_ntimestamp"):
        return _parse_time(s)
    if name in ("link", "paint", "direction"):
        return {">": 0, "<": 1}.get(s, parse_int(s))
    if name in ("eth_src", "eth_dst"):
        return bytes(int(x, 16) for x in re.split(r"[-:]", s)) if _ETHER.match(s) else None
    if name == "eth_type":
        return int(s, 16) if re.fullmatch(r"[0-9a-fA-F]{1,4}", s) else None
    if name in ("ip_src", "ip_dst"):
        return parse_ip(s)
    if name in ("ip_frag", "ip_fragoff"):
        return _parse_frag(s, b.ctx.minor_version)
    if name == "ip_proto":
        return {"T": 6, "U": 17, "I": 1}.get(s, parse_int(s, 256))
    if name == "ip_ecn":
        return int(s) if s in ("0", "1", "2", "3") else _ECN.get(s)
    if name == "ip_opt":
        return parse_ip_opt(s)
    if name == "tcp_flags":
        if s == ".":
            return 0
        if s[:1].isdigit():
            return parse_int(s, 0x1000)
        if not s or any(c not in _TCP_FLAG_BITS for c in s):
            return None
        v = 0
        for c in s:
            v |= _TCP_FLAG_BITS[c]
        return v
    if name in ("icmp_type", "icmp_type_name"):
        return ICMP_TYPES.get(s, parse_int(s, 256))
    if name in ("icmp_code", "icmp_code_name"):
        names = ICMP_CODES.get(b.icmp_type, {}) if b.icmp_type is not None else {}
        return names.get(s, parse_int(s, 256))
    if name == "payload":
        return unquote_bytes(s)
    if name in ("ts_usec1", "aggregate", "count", "wire_len", "ts_sec", "ts_usec"):
        return parse_int(s, 1 << 64 if name == "ts_usec1" else 1 << 32)
    return parse_int(s, _NUM_LIMIT.get(name, 1 << 32))


def _inject(b: _Builder, name: str, v) -> None:  # noqa: C901 - one case a field, as Click's
    """Apply one parsed field to the packet (Click's ``inject``)."""
    a = b.annos
    ts = a.get("timestamp", 0)
    if name in ("timestamp", "ntimestamp"):
        a["timestamp"] = v
    elif name in ("first_timestamp", "first_ntimestamp"):
        a["first_timestamp"] = v
    elif name == "ts_sec":
        a["timestamp"] = v * 1_000_000_000 + ts % 1_000_000_000
    elif name == "ts_usec":
        a["timestamp"] = ts - ts % 1_000_000_000 + v * 1000
    elif name == "ts_usec1":
        a["timestamp"] = v * 1000
    elif name == "count":
        a["extra_packets"] = max(v - 1, 0)
    elif name in ("link", "paint", "direction"):
        a["paint"] = v & 0xFF
    elif name == "aggregate":
        a["aggregate"] = v
    elif name == "wire_len":
        b.want_len = v
    elif name.startswith("eth_"):
        if b.eth is None:
            b.eth = bytearray(12) + b"\x08\x00"
        if name == "eth_type":
            b.eth[12:14] = v.to_bytes(2, "big")
            b.is_ip = v in (0x0800, 0x86DD)
        else:
            b.eth[(0 if name == "eth_dst" else 6):(6 if name == "eth_dst" else 12)] = v
    elif name.startswith("ip_"):
        if not b.make_ip(0):
            return
        ip = b.ip
        if name in ("ip_src", "ip_dst"):
            b.put(12 if name == "ip_src" else 16, v.to_bytes(4, "big"))
        elif name == "ip_tos":
            ip[1] = v
        elif name == "ip_dscp":
            ip[1] = (ip[1] & 3) | ((v << 2) & 0xFC)
        elif name == "ip_ecn":
            ip[1] = (ip[1] & 0xFC) | v
        elif name == "ip_ttl":
            ip[8] = v
        elif name in ("ip_frag", "ip_fragoff"):
            b.put(6, v.to_bytes(2, "big"))
        elif name == "ip_id":
            b.put(4, v.to_bytes(2, "big"))
        elif name == "ip_sum":
            b.put(10, v.to_bytes(2, "big"))
        elif name == "ip_proto":
            ip[9] = v
        elif name == "ip_opt":
            b.have_ip_hl = True
            if v:
                hl = (20 + len(v) + 3) & ~3
                b.grow(hl)
                if hl > b.hl:
                    ip[0] = 0x40 | hl >> 2
                ip[20:hl] = v + bytes(hl - 20 - len(v))
        elif name == "ip_hl":
            b.have_ip_hl = True
            v = min((v + 3) & ~3, 60)
            if v > b.hl:
                b.grow(len(ip) + v - b.hl)
            ip[0] = 0x40 | v >> 2
        elif name == "ip_len":
            b.want_len = b.nhoff + v
    elif name in ("sport", "dport"):
        if b.make_ip(0) and b.make_transp() and (not b.ip[9] or b.ip[9] in _PORT_PROTOS):
            b.put(b.hl + (0 if name == "sport" else 2), v.to_bytes(2, "big"))
    elif name.startswith("tcp_"):
        if not (b.make_ip(6) and b.make_transp()):
            return
        h = b.hl
        if name == "tcp_seq":
            b.put(h + 4, v.to_bytes(4, "big"))
        elif name == "tcp_ack":
            b.put(h + 8, v.to_bytes(4, "big"))
        elif name == "tcp_flags":
            b.put(h + 12, bytes([(b.ip[h + 12] & 0xF0 if len(b.ip) > h + 12 else 0)
                                 | (v >> 8 & 15), v & 0xFF]))
        elif name == "tcp_window":
            b.put(h + 14, v.to_bytes(2, "big"))
        elif name == "tcp_urp":
            b.put(h + 18, v.to_bytes(2, "big"))
        elif name == "tcp_off" and len(b.ip) > h + 12:
            v = min((v + 3) & ~3, 60)
            b.grow(h + v)
            b.ip[h + 12] = (v >> 2) << 4 | (b.ip[h + 12] & 15)
    elif name == "udp_len":
        if b.make_ip(0) and b.make_transp() and (not b.ip[9] or b.ip[9] in (17, 136)):
            b.grow(b.hl + 8)
            b.put(b.hl + 4, v.to_bytes(2, "big"))
    elif name.startswith("icmp_"):
        if not (b.make_ip(1) and b.make_transp()):
            return
        h = b.hl
        b.grow(h + 8)
        if name in ("icmp_type", "icmp_type_name"):
            b.ip[h], b.icmp_type = v, v
            b.grow(h + _ICMP_HLEN.get(v, 8))
        elif name in ("icmp_code", "icmp_code_name"):
            b.ip[h + 1], b.icmp_code = v, v
        elif name in ("icmp_flowid", "icmp_seq"):
            if b.icmp_type is None or b.icmp_type in _ICMP_FLOW_TYPES:
                b.put(h + (4 if name == "icmp_flowid" else 6), v.to_bytes(2, "big"))
        elif name == "icmp_nextmtu" and b.icmp_type in (None, 3) and b.icmp_code in (None, 4):
            b.put(h + 6, v.to_bytes(2, "big"))
    elif name in ("payload", "payload_len"):
        if b.make_ip(0):
            b.make_transp()
        off, _ = b.payload_info()
        plen = len(v) if name == "payload" else v
        if name == "payload" and not v:
            return
        b.account_payload(off, plen)
        if name == "payload":
            off, _ = b.payload_info()  # the headers may have grown
            start = off - b.nhoff
            b.grow(start + plen)
            b.ip[start:start + plen] = v


def _split_line(line: str, n: int) -> list[str]:
    """The first ``n`` whitespace-separated values of a line (quoted strings whole);
    missing values are empty."""
    words = split_words(line)[:n]
    return words + [""] * (n - len(words))


def parse_line(line: str, fields: list[str | None], ctx: ReadContext) -> DumpPacket:
    """Build a packet from one dump line; ``fields`` as on the ``!data`` line (None for a
    field that is ignored on input). Raises :class:`IPSumDumpError` when no field parses."""
    values = _split_line(line, len(fields))
    order = sorted((i for i, f in enumerate(fields) if f and FIELDS.get(f) is not None),
                   key=lambda i: (FIELDS[fields[i]], i))  # type: ignore[index]
    b = _Builder(ctx)
    parsed = 0
    for i in order:
        s, name = values[i], fields[i]
        if not s or s == "-":
            continue
        v = _read_value(b, name, s)  # type: ignore[arg-type]
        if v is None:
            continue
        parsed += 1
        if name != "ip_capture_len":
            _inject(b, name, v)  # type: ignore[arg-type]
    if not parsed:
        raise IPSumDumpError("no fields given" if not fields else "packet parse error")
    if b.is_ip:
        b.make_ip(0)
        b.make_transp()
        ip = b.ip
        if _u16(ip, 2) == 0:
            n = b.want_len - b.nhoff if b.want_len >= b.nhoff else b.want_len
            n = min(n, 0xFFFF) or len(ip)
            ip[2:4] = n.to_bytes(2, "big")
        hl = b.hl
        if ip[9] == 17 and b.first_frag() and len(ip) >= hl + 6 and _u16(ip, hl + 4) == 0:
            b.put(hl + 4, ((_u16(ip, 2) - hl) & 0xFFFF).to_bytes(2, "big"))
        b.annos["dst_ip"] = int.from_bytes(ip[16:20], "big")
    data = bytes(b.eth or b"") + bytes(b.ip)
    return DumpPacket(data, b.annos, b.nhoff, 1 + b.annos.get("extra_packets", 0))


def finish_packet(pkt: DumpPacket, pad: bytes | None = None) -> bytes:
    """The packet grown to its IP length (with ``pad``'s bytes, or zeros) and its IP,
    TCP, UDP and ICMP checksums set (Click's CHECKSUM true)."""
    data = bytearray(pkt.data)
    nh = pkt.nhoff
    if len(data) < nh + 20 or data[nh] >> 4 != 4:
        return bytes(data)
    ip_len, hl = _u16(data, nh + 2), (data[nh] & 15) * 4
    if len(data) < nh + ip_len:
        extra = nh + ip_len - len(data)
        data += (pad or b"")[:extra].ljust(extra, b"\0")
    if len(data) < nh + hl:
        return bytes(data)
    data[nh + 10:nh + 12] = b"\0\0"
    data[nh + 10:nh + 12] = inet_checksum(bytes(data[nh:nh + hl])).to_bytes(2, "big")
    if _u16(data, nh + 6) & 0x3FFF:
        return bytes(data)  # a fragment: no transport checksum
    t, proto = nh + hl, data[nh + 9]
    seg = len(data) - t
    where = {6: 16, 17: 6, 1: 2}.get(proto)
    if where is None or seg < where + 2:
        return bytes(data)
    data[t + where:t + where + 2] = b"\0\0"
    pseudo = b"" if proto == 1 else (bytes(data[nh + 12:nh + 20]) + bytes([0, proto])
                                     + seg.to_bytes(2, "big"))
    s = inet_checksum(pseudo + bytes(data[t:]))
    if proto == 17 and s == 0:
        s = 0xFFFF
    data[t + where:t + where + 2] = s.to_bytes(2, "big")
    return bytes(data)
