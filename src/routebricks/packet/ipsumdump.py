"""Reading Click's IP summary dump: a text trace format, one packet per line, fields named
by a ``!data`` line (``!data timestamp ip_src ip_dst ip_proto``), or binary records after a
``!binary`` line (:mod:`routebricks.packet.ipsumdump_binary`).

:func:`parse_line` builds one IPv4 packet from a line, :func:`parse_record` from a binary
record, as Click's FromIPSummaryDump does (fields applied in Click's order: annotations,
link, network, transport, payload). Field names and their text forms are
:mod:`routebricks.packet.ipsumdump_fields`. A line that yields no field raises
:class:`IPSumDumpError`; nothing else is raised. Writing is
:mod:`routebricks.packet.ipsumdump_write`; option text is
:mod:`routebricks.packet.ipsumdump_ipopt` and :mod:`routebricks.packet.ipsumdump_tcpopt`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from routebricks.packet.checksum import inet_checksum
from routebricks.packet.ipsumdump_binary import unpack_record
from routebricks.packet.ipsumdump_fields import (
    ECN_NAMES,
    FIELDS,
    ICMP_CODES,
    ICMP_FLOW_TYPES,
    ICMP_HLEN,
    ICMP_TYPES,
    MINOR_VERSION,
    PORT_PROTOS,
    TCP_FLAG_BITS,
    IPSumDumpError,
    parse_int,
    parse_ip,
    split_words,
    u16,
    unquote_bytes,
)
from routebricks.packet.ipsumdump_ipopt import parse_ip_opt
from routebricks.packet.ipsumdump_tcpopt import FIELD_READS, parse_tcp_opt

_ETHER = re.compile(r"([0-9a-fA-F]{1,2})([-:])" + r"([0-9a-fA-F]{1,2})\2" * 4
                    + r"([0-9a-fA-F]{1,2})\Z")
_TIME = re.compile(r"(\d+)(?:\.(\d*))?\Z")


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
    want_len: int = 0  # the length the dump says the packet has (ip_len, wire_len ...)
    thl: int = 20  # where its transport header starts in the IP packet

    def extra_length(self, data: bytes) -> int:
        """Click's extra-length annotation for the packet finished as ``data``: the bytes
        the dump says it has beyond those it holds."""
        return max(0, self.want_len - len(data))


class _Builder:
    """One packet under construction (Click's PacketOdesc)."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.eth: bytearray | None = None
        self.ip = bytearray()
        self.tail = bytearray()  # bytes written past the IP packet's end, by position
        self.is_ip = True
        self.want_len = 0
        self.have_ip_hl = self.have_tcp_hl = False
        self.thl = 20  # where the transport header starts (Click's annotation, not ip_hl)
        self.icmp_type: int | None = None
        self.icmp_code: int | None = None
        self.annos: dict[str, int] = {}

    @property
    def nhoff(self) -> int:
        return 14 if self.eth is not None else 0

    @property
    def hl(self) -> int:
        return self.thl

    def put(self, pos: int, data: bytes) -> None:
        """Write ``data`` at ``pos`` of the IP packet. Bytes past its end go to its
        tailroom, as in Click's packets, where growing the packet shows them again."""
        n = len(self.ip)
        k = max(0, min(len(data), n - pos))
        self.ip[pos:pos + k] = data[:k]
        if k < len(data):
            start = max(pos, n)
            rest = data[start - pos:]
            if len(self.tail) < start + len(rest):
                self.tail += bytes(start + len(rest) - len(self.tail))
            self.tail[start:start + len(rest)] = rest

    def byte(self, pos: int) -> int:
        """The byte at ``pos``, in the packet or its tailroom."""
        if pos < len(self.ip):
            return self.ip[pos]
        return self.tail[pos] if pos < len(self.tail) else 0

    def grow(self, total: int) -> None:
        """Make the packet ``total`` bytes long if shorter (tailroom bytes show)."""
        n = len(self.ip)
        if n < total:
            self.ip += self.tail[n:total].ljust(total - n, b"\0")

    def shrink(self, total: int) -> None:
        """Cut the packet to ``total`` bytes (the rest stays in the tailroom)."""
        gone = bytes(self.ip[total:])
        del self.ip[total:]
        self.put(total, gone)

    def first_frag(self) -> bool:
        return u16(self.ip, 6) & 0x1FFF == 0

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
            self.shrink(hl + need)
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
        return off, u16(self.ip, 2) - (off - self.nhoff)

    def account_payload(self, off: int, plen: int) -> None:
        """Make room for ``plen`` payload bytes: the IP length, or EOL-padded TCP/IP
        options when the IP length says the headers are longer (as Click does)."""
        if not self.is_ip or (u16(self.ip, 2) == 0 and self.want_len == 0):
            self.want_len = off + plen
            return
        total = (u16(self.ip, 2) + self.nhoff) if u16(self.ip, 2) else self.want_len
        delta = total - (off + plen)
        hl = self.hl
        if (delta > 0 and self.first_frag() and self.ip[9] == 6 and not self.have_tcp_hl
                and len(self.ip) >= hl + 13 and self.ip[hl + 12] >> 4 == 5):
            th = min(delta - delta % 4, 40)
            self.ip[hl + 20:hl + 20] = bytes(th)
            self.ip[hl + 12] = ((20 + th) >> 2) << 4 | (self.ip[hl + 12] & 15)
            delta -= th
        if delta > 0 and not self.have_ip_hl and self.ip[0] & 15 == 5:
            d = min(delta - delta % 4, 40)
            self.ip[20:20] = bytes(d)
            self.ip[0] = 0x40 | (20 + d) >> 2
            self.thl = 20 + d


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
        return int(s) if s in ("0", "1", "2", "3") else ECN_NAMES.get(s)
    if name == "ip_opt":
        return parse_ip_opt(s)
    if name in FIELD_READS:
        return parse_tcp_opt(s, FIELD_READS[name])
    if name == "tcp_flags":
        if s == ".":
            return 0
        if s[:1].isdigit():
            return parse_int(s, 0x1000)
        if not s or any(c not in TCP_FLAG_BITS for c in s):
            return None
        v = 0
        for c in s:
            v |= TCP_FLAG_BITS[c]
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
                if hl > (ip[0] & 15) * 4:
                    ip[0], b.thl = 0x40 | hl >> 2, hl
                b.put(20, v + bytes(hl - len(v)))  # zeros as far as Click's memset
        elif name == "ip_hl":  # as Click's: a length over 60 wraps the 4-bit field
            b.have_ip_hl = True
            v = (v + 3) & ~3
            if v > (ip[0] & 15) * 4:
                b.grow(len(ip) + v - (ip[0] & 15) * 4)
                b.thl = v
            ip[0] = 0x40 | (v >> 2) & 15
        elif name == "ip_len":
            b.want_len = b.nhoff + v
    elif name in ("sport", "dport"):
        if b.make_ip(0) and b.make_transp() and (not b.ip[9] or b.ip[9] in PORT_PROTOS):
            b.put(b.hl + (0 if name == "sport" else 2), v.to_bytes(2, "big"))
    elif name.startswith("tcp_"):
        if not (b.make_ip(6) and b.make_transp()):
            return
        h = b.hl
        if name in FIELD_READS:  # tcp_opt, tcp_ntopt, tcp_sack: the options, EOL-padded
            b.have_tcp_hl = True
            if v:
                th = (20 + len(v) + 3) & ~3
                b.grow(h + th)
                if th > (b.ip[h + 12] >> 4) * 4:
                    b.ip[h + 12] = (th >> 2) << 4 | (b.ip[h + 12] & 15)
                b.put(h + 20, v + bytes(th - len(v)))  # zeros as far as Click's memset
        elif name == "tcp_seq":
            b.put(h + 4, v.to_bytes(4, "big"))
        elif name == "tcp_ack":
            b.put(h + 8, v.to_bytes(4, "big"))
        elif name == "tcp_flags":
            b.put(h + 12, bytes([(b.byte(h + 12) & 0xF0) | (v >> 8 & 15), v & 0xFF]))
        elif name == "tcp_window":
            b.put(h + 14, v.to_bytes(2, "big"))
        elif name == "tcp_urp":
            b.put(h + 18, v.to_bytes(2, "big"))
        elif name == "tcp_off":  # as Click's: an offset over 60 wraps the 4-bit field
            v = (v + 3) & ~3
            cur = (b.byte(h + 12) >> 4) * 4
            if v > cur:
                b.grow(len(b.ip) + v - cur)
            b.put(h + 12, bytes([((v >> 2) & 15) << 4 | (b.byte(h + 12) & 15)]))
    elif name == "udp_len":
        if b.make_ip(0) and b.make_transp() and (not b.ip[9] or b.ip[9] in (17, 136)):
            b.grow(b.hl + 8)
            b.put(b.hl + 4, (v & 0xFFFF).to_bytes(2, "big"))
    elif name.startswith("icmp_"):
        if not (b.make_ip(1) and b.make_transp()):
            return
        h = b.hl
        b.grow(h + 8)
        if name in ("icmp_type", "icmp_type_name"):
            b.ip[h], b.icmp_type = v, v
            b.grow(h + ICMP_HLEN.get(v, 8))
        elif name in ("icmp_code", "icmp_code_name"):
            b.ip[h + 1], b.icmp_code = v, v
        elif name in ("icmp_flowid", "icmp_seq"):
            if b.icmp_type is None or b.icmp_type in ICMP_FLOW_TYPES:
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
            # The headers may have grown: the payload goes after them (C++ Click writes
            # it where they used to end, over the padding it just added).
            off, _ = b.payload_info()
            start = off - b.nhoff
            if start <= len(b.ip):  # else past the packet's end, as in Click's
                b.grow(start + plen)
            b.put(start, v)


def _split_line(line: str, n: int) -> list[str]:
    """The first ``n`` whitespace-separated values of a line (quoted strings whole);
    missing values are empty."""
    words = split_words(line)[:n]
    return words + [""] * (n - len(words))


def _build(fields: list[str | None], value: Callable[[_Builder, int], object | None],
           ctx: ReadContext, what: str) -> DumpPacket:
    """A packet from the fields' values (``value(builder, i)``: field i's value, None if
    absent or invalid), applied in Click's order."""
    order = sorted((i for i, f in enumerate(fields) if f and FIELDS.get(f) is not None),
                   key=lambda i: (FIELDS[fields[i]], i))  # type: ignore[index]
    b = _Builder(ctx)
    parsed = 0
    for i in order:
        name = fields[i]
        v = value(b, i)
        if v is None:
            continue
        parsed += 1
        if name != "ip_capture_len":
            _inject(b, name, v)  # type: ignore[arg-type]
    if not parsed:
        raise IPSumDumpError("no '!data' provided" if not fields else f"{what} parse error")
    if ctx.flowid:
        b.make_ip(0)
    if b.is_ip and b.ip:  # a line with no IP field gives no IP header, as Click's
        b.make_transp()
        ip = b.ip
        if u16(ip, 2) == 0:
            n = b.want_len - b.nhoff if b.want_len >= b.nhoff else b.want_len
            n = min(n, 0xFFFF) or len(ip) & 0xFFFF
            ip[2:4] = n.to_bytes(2, "big")
        hl = b.hl
        if ip[9] == 17 and b.first_frag() and len(ip) >= hl + 6 and u16(ip, hl + 4) == 0:
            b.put(hl + 4, ((u16(ip, 2) - hl) & 0xFFFF).to_bytes(2, "big"))
        b.annos["dst_ip"] = int.from_bytes(ip[16:20], "big")
        b.annos["nh"] = b.nhoff  # the IP header's offset (the element makes it absolute)
    data = bytes(b.eth or b"") + bytes(b.ip)
    return DumpPacket(data, b.annos, b.nhoff, 1 + b.annos.get("extra_packets", 0), b.want_len,
                      b.thl)


def parse_line(line: str, fields: list[str | None], ctx: ReadContext) -> DumpPacket:
    """Build a packet from one dump line; ``fields`` as on the ``!data`` line (None for a
    field that is ignored on input). Raises :class:`IPSumDumpError` when no field parses."""
    words = _split_line(line, len(fields))

    def value(b: _Builder, i: int) -> object | None:
        s = words[i]
        return None if not s or s == "-" else _read_value(b, fields[i], s)  # type: ignore[arg-type]

    return _build(fields, value, ctx, "packet")


def parse_record(record: bytes, fields: list[str | None], ctx: ReadContext,
                 names: list[str | None] | None = None) -> DumpPacket:
    """Build a packet from one binary record's data (after its 4-byte length); ``fields``
    as for :func:`parse_line`, ``names`` the ``!data`` line's known field names (None for
    unknown names; default ``fields``) to lay the record out by. Raises
    :class:`IPSumDumpError` when no field can be read."""
    values = unpack_record(record, names if names is not None else fields)
    return _build(fields, lambda _b, i: values[i], ctx, "record")


def _final_dst(data: bytes | bytearray, nh: int, hl: int) -> bytes:
    """The destination a TCP or UDP checksum covers: the last address of a loose or
    strict source route option, else the IP destination (as Click's)."""
    i, end = nh + 20, nh + hl
    while i < end and data[i] != 0:
        if data[i] == 1:
            i += 1
            continue
        ln = data[i + 1] if i + 1 < end else 0
        if ln < 2 or i + ln > end:
            break
        if data[i] in (131, 137) and ln >= 7:
            return bytes(data[i + ln - 4:i + ln])
        i += ln
    return bytes(data[nh + 16:nh + 20])


def finish_packet(pkt: DumpPacket, pad: bytes | None = None) -> bytes:
    """The packet grown to its IP length (with ``pad``'s bytes, or zeros) and its IP,
    TCP, UDP and ICMP checksums set (Click's CHECKSUM true)."""
    data = bytearray(pkt.data)
    nh = pkt.nhoff
    if len(data) < nh + 20 or data[nh] >> 4 != 4:
        return bytes(data)
    ip_len, hl = u16(data, nh + 2), (data[nh] & 15) * 4
    if len(data) < nh + ip_len:
        extra = nh + ip_len - len(data)
        data += (pad or b"")[:extra].ljust(extra, b"\0")
    if len(data) < nh + hl:
        return bytes(data)
    data[nh + 10:nh + 12] = b"\0\0"
    data[nh + 10:nh + 12] = inet_checksum(bytes(data[nh:nh + hl])).to_bytes(2, "big")
    if u16(data, nh + 6) & 0x3FFF:
        return bytes(data)  # a fragment: no transport checksum
    t, proto = nh + pkt.thl, data[nh + 9]
    seg = len(data) - t
    where = {6: 16, 17: 6, 1: 2}.get(proto)
    if where is None or seg < where + 2:
        return bytes(data)
    data[t + where:t + where + 2] = b"\0\0"
    pseudo = b"" if proto == 1 else (bytes(data[nh + 12:nh + 16]) + _final_dst(data, nh, hl)
                                     + bytes([0, proto]) + (seg & 0xFFFF).to_bytes(2, "big"))
    s = inet_checksum(pseudo + bytes(data[t:]))
    if proto == 17 and s == 0:
        s = 0xFFFF
    data[t + where:t + where + 2] = s.to_bytes(2, "big")
    return bytes(data)
