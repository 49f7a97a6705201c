"""Writing Click's IP summary dump: one line of fields a packet, or one binary record
(Click's ToIPSummaryDump; see :mod:`routebricks.packet.ipsumdump_fields` for the field
names and :mod:`routebricks.packet.ipsumdump_binary` for the binary form).

Each field is first extracted from the packet (:func:`field_value`, None where it does not
apply), then written as text (:func:`field_text`) or binary
(:func:`routebricks.packet.ipsumdump_binary.pack_field`), as Click's writers do.
"""

from __future__ import annotations

import hashlib

from routebricks.packet.ipsumdump_binary import pack_field
from routebricks.packet.ipsumdump_fields import (
    ICMP_CODES,
    ICMP_FLOW_TYPES,
    ICMP_TYPE_NAMES,
    MAJOR_VERSION,
    MINOR_VERSION,
    PORT_PROTOS,
    TCP_FLAGS,
    md5_text,
    quote,
    u16,
)
from routebricks.packet.ipsumdump_ipopt import ip_text, unparse_ip_opt
from routebricks.packet.ipsumdump_tcpopt import FIELD_MASK, unparse_tcp_opt


def find_ip(pkt: bytes) -> int | None:
    """Where a packet without a network-header annotation has its IP header: at its start
    (after Strip(14)), or after an Ethernet header of type IPv4; None if neither."""
    if len(pkt) >= 20 and pkt[0] >> 4 == 4:
        return 0
    if len(pkt) >= 34 and pkt[12:14] == b"\x08\x00" and pkt[14] >> 4 == 4:
        return 14
    return None


class _View:
    """One packet as ToIPSummaryDump sees it (Click's PacketDesc after ip_prepare).

    ``extra`` is the extra-length annotation as Click's ip_prepare leaves it: for a valid
    IP header, zero unless the packet is a 65535-byte IP packet that holds more. It counts
    in ``ip_len`` if ``force_extra`` (EXTRA_LENGTH true), and in ``payload_len`` if that or
    the packet has no IP header."""

    def __init__(self, p: bytes, nh: int | None, annos: dict[str, int],
                 force_extra: bool = True) -> None:
        self.p, self.nh, self.annos, self.force_extra = p, nh, annos, force_extra
        self.ip = False
        self.hl = self.ip_len = self.proto = 0
        self.nl = 0
        self.extra = annos.get("extra_length", 0)
        if nh is not None and 0 <= nh <= len(p):
            self.nl = len(p) - nh
            if self.nl >= 4:
                hl, ip_len = (p[nh] & 15) * 4, u16(p, nh + 2)
                if p[nh] >> 4 == 4 and hl >= 20 and ip_len >= hl:
                    self.ip, self.hl, self.ip_len = True, hl, ip_len
                    self.extra += max(0, self.nl - ip_len)
                    self.nl = min(self.nl, ip_len)  # trailing padding is not the packet's
                    self.proto = p[nh + 9] if self.nl > 9 else -1
                    full = self.nl + self.extra
                    self.extra = full - 0xFFFF if ip_len == 0xFFFF and full > 0xFFFF else 0
        self.tl = self.nl - self.hl
        self.first = self.ip and self.nl >= 8 and u16(p, nh + 6) & 0x1FFF == 0
        self.transp = self.first and self.nl > self.hl
        self.t = (nh or 0) + self.hl
        self.tcp = self.transp and self.proto == 6 and not (
            self.tl > 12 and p[self.t + 12] >> 4 < 5)
        self.udp = self.transp and self.proto == 17
        self.icmp = self.transp and self.proto == 1

    def iu8(self, o: int, need: int) -> int | None:
        return self.p[self.nh + o] if self.ip and self.nl >= need else None  # type: ignore

    def iu16(self, o: int, need: int) -> int | None:
        return u16(self.p, self.nh + o) if self.ip and self.nl >= need else None  # type: ignore

    def tu(self, ok: bool, o: int, width: int, need: int) -> int | None:
        if not ok or self.tl < need:
            return None
        return int.from_bytes(self.p[self.t + o:self.t + o + width], "big")

    def payload(self) -> tuple[int, int]:
        if not self.ip:
            return 0, len(self.p)
        off = self.t
        if self.first:
            if self.proto == 6:
                th = (self.p[self.t + 12] >> 4) * 4 if self.tl >= 13 else 0
                off += th if th >= 20 else 20
            elif self.proto in (17, 136):
                off += 8
        return off, self.ip_len - (off - self.nh)  # type: ignore[operator]

    def tcp_options(self, name: str) -> bytes | None:
        """The TCP option bytes ``name`` (tcp_opt, tcp_ntopt, tcp_sack) shows; b"" for
        none (also, but for tcp_opt, when they are just NOP, NOP, timestamp)."""
        if not self.tcp or self.tl < 13:
            return None
        th = (self.p[self.t + 12] >> 4) * 4
        if th <= 20:
            return b""
        opt = self.p[self.t + 20:self.t + th]
        if (name != "tcp_opt" and th == 32 and self.tl >= 24
                and opt[:4] == b"\x01\x01\x08\x0a"):
            return b""
        return opt if self.tl >= th else None


_TCP = {"tcp_seq": (4, 4, 8), "tcp_ack": (8, 4, 12), "tcp_off": (12, 1, 13),
        "tcp_flags": (13, 1, 14), "tcp_window": (14, 2, 16), "tcp_urp": (18, 2, 20)}
_IP8 = {"ip_tos": (1, 2), "ip_dscp": (1, 2), "ip_ecn": (1, 2), "ip_ttl": (8, 9),
        "ip_proto": (9, 10), "ip_hl": (0, 1)}
_IP16 = {"ip_id": (4, 6), "ip_sum": (10, 12), "ip_frag": (6, 8), "ip_fragoff": (6, 8)}


def field_value(d: _View, name: str) -> object | None:  # noqa: C901 - one case a field
    """Field ``name`` of a packet, as Click's extract gives it; None where it does not
    apply. Numbers are ints; timestamps nanoseconds; addresses, options and payloads
    bytes; ``ip_frag`` its character."""
    a = d.annos
    ts = a.get("timestamp", 0)
    if name in ("timestamp", "ntimestamp"):
        return ts
    if name in ("first_timestamp", "first_ntimestamp"):
        return a.get("first_timestamp", 0)
    if name == "ts_sec":
        return ts // 1_000_000_000
    if name == "ts_usec":
        return ts % 1_000_000_000 // 1000
    if name == "ts_usec1":
        return ts // 1000
    if name == "count":
        return 1 + a.get("extra_packets", 0)
    if name in ("link", "paint", "direction"):
        return a.get("paint", 0)
    if name == "aggregate":
        return a.get("aggregate", 0)
    if name == "wire_len":
        return len(d.p)
    if name.startswith("eth_"):
        if d.nh != 14:
            return None
        if name == "eth_type":
            return u16(d.p, 12)
        return d.p[6:12] if name == "eth_src" else d.p[0:6]
    if name in ("ip_src", "ip_dst"):
        o = 12 if name == "ip_src" else 16
        return d.p[d.nh + o:d.nh + o + 4] if d.iu8(0, o + 4) is not None else None  # type: ignore[operator]
    if name == "ip_len":
        return (d.ip_len if d.ip else len(d.p)) + (d.extra if d.force_extra else 0)
    if name == "ip_capture_len":
        allow = d.nl if d.ip else len(d.p)
        return min(d.ip_len if d.ip else allow, allow)
    if name in _IP8:
        v = d.iu8(*_IP8[name])
        if v is None:
            return None
        return {"ip_dscp": v >> 2, "ip_ecn": v & 3, "ip_hl": (v & 15) * 4}.get(name, v)
    if name in _IP16:
        v = d.iu16(*_IP16[name])
        if v is None or name != "ip_frag":
            return v
        if v & 0x3FFF:
            return "F" if v & 0x1FFF == 0 else "f"
        return "!" if v & 0x4000 else "."
    if name == "ip_opt":
        if not d.ip or (d.hl > 20 and d.nl < d.hl):
            return None
        return d.p[d.nh + 20:d.nh + d.hl]  # type: ignore[operator]
    if name in ("sport", "dport"):
        ok = d.transp and d.proto in PORT_PROTOS
        return d.tu(ok, 0 if name == "sport" else 2, 2, 2 if name == "sport" else 4)
    if name in _TCP:
        o, w, need = _TCP[name]
        v = d.tu(d.tcp, o, w, need)
        if v is None:
            return None
        if name == "tcp_off":
            return (v >> 4) * 4
        if name == "tcp_flags":
            return v | (d.p[d.t + 12] & 15) << 8
        return v
    if name in FIELD_MASK:
        return d.tcp_options(name)
    if name == "udp_len":
        return d.tu(d.udp, 4, 2, 6)
    if name.startswith("icmp_"):
        typ, code = d.tu(d.icmp, 0, 1, 1), d.tu(d.icmp, 1, 1, 2)
        if name in ("icmp_type", "icmp_type_name"):
            return typ
        if name in ("icmp_code", "icmp_code_name"):
            return code
        if name in ("icmp_flowid", "icmp_seq"):
            if typ not in ICMP_FLOW_TYPES:
                return None
            flowid = name == "icmp_flowid"
            return d.tu(True, 4 if flowid else 6, 2, 6 if flowid else 8)
        if name == "icmp_nextmtu":
            return d.tu(typ == 3 and code == 4, 6, 2, 8)
    if name.startswith("payload"):
        off, ln = d.payload()
        if name == "payload_len":  # Click's unsigned: headers beyond the IP length wrap
            return (ln + (d.extra if d.force_extra or not d.ip else 0)) & 0xFFFFFFFF
        if ln != 0 and off >= len(d.p):
            return None
        end = (d.nh or 0) + d.nl if d.ip else len(d.p)
        return d.p[off:max(off, min(off + max(ln, 0), end))]
    return None


def timestamp_text(ns: int) -> str:
    """A timestamp as Click prints it: microseconds if that is exact, else nanoseconds."""
    sec, sub = divmod(ns, 1_000_000_000)
    return f"{sec}.{sub // 1000:06d}" if sub % 1000 == 0 else f"{sec}.{sub:09d}"


def _fmt_flags(v: int) -> str:
    if v == 0x18:
        return "PA"
    if v == 0x10:
        return "A"
    return "".join(c for i, c in enumerate(TCP_FLAGS) if v >> i & 1) or "."


def field_text(d: _View, name: str, v: object) -> str:
    """A field's value (from :func:`field_value`, not None) as Click's text."""
    if name in ("timestamp", "first_timestamp", "ntimestamp", "first_ntimestamp"):
        return timestamp_text(v)  # type: ignore[arg-type]
    if name == "direction":
        return {0: ">", 1: "<"}.get(v, str(v))  # type: ignore[call-overload]
    if name in ("eth_src", "eth_dst"):
        return "-".join(f"{x:02X}" for x in v)  # type: ignore[attr-defined]
    if name == "eth_type":
        return f"{v:04X}"
    if name in ("ip_src", "ip_dst"):
        return ip_text(v)  # type: ignore[arg-type]
    if name == "ip_proto":
        return {6: "T", 17: "U", 1: "I"}.get(v, str(v))  # type: ignore[call-overload]
    if name == "ip_ecn":
        return ("no", "ect1", "ect2", "ce")[v]  # type: ignore[index]
    if name == "ip_fragoff":
        return (f"{(v & 0x1FFF) << 3}" + ("+" if v & 0x2000 else "")  # type: ignore[operator]
                + ("!" if v & 0x4000 else ""))  # type: ignore[operator]
    if name == "ip_opt":
        return unparse_ip_opt(v) if v else "."  # type: ignore[arg-type]
    if name in FIELD_MASK:
        return unparse_tcp_opt(v, FIELD_MASK[name]) if v else "."  # type: ignore[arg-type]
    if name == "tcp_flags":
        return _fmt_flags(v)  # type: ignore[arg-type]
    if name == "icmp_type_name":
        return ICMP_TYPE_NAMES.get(v, str(v))  # type: ignore[call-overload]
    if name == "icmp_code_name":
        typ = d.p[d.t]
        names = {c: n for n, c in ICMP_CODES.get(typ, {}).items()}
        return names.get(v, str(v))  # type: ignore[call-overload]
    if name == "payload":
        return quote(v)  # type: ignore[arg-type]
    if name == "payload_md5":
        return md5_text(v)  # type: ignore[arg-type]
    if name == "payload_md5_hex":
        return hashlib.md5(v).hexdigest()  # type: ignore[arg-type]
    return str(v)


def summarize(pkt: bytes, nh: int | None, annos: dict[str, int], fields: list[str],
              extra_length: bool = True) -> str:
    """One dump line (without its newline) for a packet whose IP header is at ``nh``
    (None: no IP header), as Click's ToIPSummaryDump writes it; ``extra_length``: whether
    ``ip_len`` counts the extra-length annotation."""
    d = _View(pkt, nh, annos, extra_length)
    out = []
    for f in fields:
        v = field_value(d, f)
        out.append("-" if v is None else field_text(d, f, v))
    return " ".join(out)


def summarize_binary(pkt: bytes, nh: int | None, annos: dict[str, int],
                     fields: list[str], extra_length: bool = True) -> bytes:
    """One binary record (with its length word) for a packet, as Click writes it with
    BINARY true."""
    d = _View(pkt, nh, annos, extra_length)
    body = b"".join(pack_field(f, field_value(d, f)) for f in fields)
    return (4 + len(body)).to_bytes(4, "big") + body


def header(fields: list[str], banner: str | None = None, extra: list[str] = (),  # type: ignore[assignment]
           binary: bool = False) -> str:
    """The lines a dump starts with: ``!IPSummaryDump 1.3``, ``!creator``, ``!data``, and
    ``!binary`` for a binary dump."""
    lines = [f"!IPSummaryDump {MAJOR_VERSION}.{MINOR_VERSION}"]
    if banner is not None:
        lines.append("!creator " + quote(banner.encode("latin-1", "replace")))
    lines += list(extra)
    lines.append("!data " + " ".join("timestamp" if f == "ntimestamp" and not binary else f
                                     for f in fields))
    if binary:
        lines.append("!binary")
    return "\n".join(lines) + "\n"
