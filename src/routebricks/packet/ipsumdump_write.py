"""Writing Click's IP summary dump: one line of fields a packet (Click's ToIPSummaryDump;
see :mod:`routebricks.packet.ipsumdump` for the format and field names)."""

from __future__ import annotations

import hashlib

from routebricks.packet.ipsumdump import (
    _ICMP_FLOW_TYPES,
    _ICMP_TYPE_NAMES,
    _PORT_PROTOS,
    _TCP_FLAGS,
    ICMP_CODES,
    MAJOR_VERSION,
    MINOR_VERSION,
    _u16,
    md5_text,
    quote,
)
from routebricks.packet.ipsumdump_ipopt import ip_text, unparse_ip_opt


def find_ip(pkt: bytes) -> int | None:
    """Where a packet without a network-header annotation has its IP header: at its start
    (after Strip(14)), or after an Ethernet header of type IPv4; None if neither."""
    if len(pkt) >= 20 and pkt[0] >> 4 == 4:
        return 0
    if len(pkt) >= 34 and pkt[12:14] == b"\x08\x00" and pkt[14] >> 4 == 4:
        return 14
    return None


class _View:
    """One packet as ToIPSummaryDump sees it (Click's PacketDesc after ip_prepare)."""

    def __init__(self, p: bytes, nh: int | None, annos: dict[str, int]) -> None:
        self.p, self.nh, self.annos = p, nh, annos
        self.ip = False
        self.hl = self.ip_len = self.proto = 0
        self.nl = 0
        if nh is not None and 0 <= nh <= len(p):
            self.nl = len(p) - nh
            if self.nl >= 4:
                hl, ip_len = (p[nh] & 15) * 4, _u16(p, nh + 2)
                if p[nh] >> 4 == 4 and hl >= 20 and ip_len >= hl:
                    self.ip, self.hl, self.ip_len = True, hl, ip_len
                    self.nl = min(self.nl, ip_len)  # trailing padding is not the packet's
                    self.proto = p[nh + 9] if self.nl > 9 else -1
        self.tl = self.nl - self.hl
        self.first = self.ip and self.nl >= 8 and _u16(p, nh + 6) & 0x1FFF == 0
        self.transp = self.first and self.nl > self.hl
        self.t = (nh or 0) + self.hl
        self.tcp = self.transp and self.proto == 6 and not (
            self.tl > 12 and p[self.t + 12] >> 4 < 5)
        self.udp = self.transp and self.proto == 17
        self.icmp = self.transp and self.proto == 1

    def iu8(self, o: int, need: int) -> int | None:
        return self.p[self.nh + o] if self.ip and self.nl >= need else None  # type: ignore

    def iu16(self, o: int, need: int) -> int | None:
        return _u16(self.p, self.nh + o) if self.ip and self.nl >= need else None  # type: ignore

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


def _fmt_flags(v: int) -> str:
    if v == 0x18:
        return "PA"
    if v == 0x10:
        return "A"
    return "".join(c for i, c in enumerate(_TCP_FLAGS) if v >> i & 1) or "."


def _field_text(d: _View, name: str) -> str | None:  # noqa: C901 - one case a field
    """Field ``name`` of a packet as Click prints it; None for ``-`` (does not apply)."""
    a = d.annos
    ts = a.get("timestamp", 0)
    if name in ("timestamp", "first_timestamp", "ntimestamp", "first_ntimestamp"):
        t = a.get("first_timestamp", 0) if name.startswith("first") else ts
        sec, ns = divmod(t, 1_000_000_000)
        return f"{sec}.{ns:09d}" if "ntimestamp" in name else f"{sec}.{ns // 1000:06d}"
    if name == "ts_sec":
        return str(ts // 1_000_000_000)
    if name == "ts_usec":
        return str(ts % 1_000_000_000 // 1000)
    if name == "ts_usec1":
        return str(ts // 1000)
    if name == "count":
        return str(1 + a.get("extra_packets", 0))
    if name in ("link", "paint"):
        return str(a.get("paint", 0))
    if name == "direction":
        return {0: ">", 1: "<"}.get(a.get("paint", 0), str(a.get("paint", 0)))
    if name == "aggregate":
        return str(a.get("aggregate", 0))
    if name == "wire_len":
        return str(len(d.p))
    if name.startswith("eth_"):
        if d.nh != 14:
            return None
        if name == "eth_type":
            return f"{_u16(d.p, 12):04X}"
        mac = d.p[6:12] if name == "eth_src" else d.p[0:6]
        return "-".join(f"{x:02X}" for x in mac)
    if name in ("ip_src", "ip_dst"):
        o = 12 if name == "ip_src" else 16
        return ip_text(d.p[d.nh + o:d.nh + o + 4]) if d.iu8(0, o + 4) is not None else None  # type: ignore[operator]
    if name == "ip_len":
        return str(d.ip_len if d.ip else len(d.p))
    if name == "ip_capture_len":
        allow = d.nl if d.ip else len(d.p)
        return str(min(d.ip_len if d.ip else allow, allow))
    simple = {"ip_tos": (1, 2), "ip_ttl": (8, 9), "ip_proto": (9, 10)}
    if name in simple or name in ("ip_dscp", "ip_ecn", "ip_hl"):
        o, need = simple.get(name, (1, 2))
        v = d.iu8(o, need) if name != "ip_hl" else d.iu8(0, 1)
        if v is None:
            return None
        if name == "ip_proto":
            return {6: "T", 17: "U", 1: "I"}.get(v, str(v))
        if name == "ip_dscp":
            return str(v >> 2)
        if name == "ip_ecn":
            return ("no", "ect1", "ect2", "ce")[v & 3]
        return str((v & 15) * 4 if name == "ip_hl" else v)
    if name in ("ip_id", "ip_sum", "ip_frag", "ip_fragoff"):
        o, need = {"ip_id": (4, 6), "ip_sum": (10, 12)}.get(name, (6, 8))
        v = d.iu16(o, need)
        if v is None or name in ("ip_id", "ip_sum"):
            return None if v is None else str(v)
        if name == "ip_frag":
            if v & 0x3FFF:
                return "F" if v & 0x1FFF == 0 else "f"
            return "!" if v & 0x4000 else "."
        return f"{(v & 0x1FFF) << 3}" + ("+" if v & 0x2000 else "") + ("!" if v & 0x4000 else "")
    if name == "ip_opt":
        if not d.ip or (d.hl > 20 and d.nl < d.hl):
            return None
        return unparse_ip_opt(d.p[d.nh + 20:d.nh + d.hl]) if d.hl > 20 else "."  # type: ignore[operator]
    if name in ("sport", "dport"):
        ok = d.transp and d.proto in _PORT_PROTOS
        v = d.tu(ok, 0 if name == "sport" else 2, 2, 2 if name == "sport" else 4)
        return None if v is None else str(v)
    tcp = {"tcp_seq": (4, 4, 8), "tcp_ack": (8, 4, 12), "tcp_off": (12, 1, 13),
           "tcp_flags": (13, 1, 14), "tcp_window": (14, 2, 16), "tcp_urp": (18, 2, 20)}
    if name in tcp:
        o, w, need = tcp[name]
        v = d.tu(d.tcp, o, w, need)
        if v is None:
            return None
        if name == "tcp_off":
            return str((v >> 4) * 4)
        if name == "tcp_flags":
            return _fmt_flags(v | (d.p[d.t + 12] & 15) << 8)
        return str(v)
    if name == "udp_len":
        v = d.tu(d.udp, 4, 2, 6)
        return None if v is None else str(v)
    if name.startswith("icmp_"):
        typ, code = d.tu(d.icmp, 0, 1, 1), d.tu(d.icmp, 1, 1, 2)
        if name in ("icmp_type", "icmp_type_name"):
            if typ is None or name == "icmp_type":
                return None if typ is None else str(typ)
            return _ICMP_TYPE_NAMES.get(typ, str(typ))
        if name in ("icmp_code", "icmp_code_name"):
            if code is None or name == "icmp_code":
                return None if code is None else str(code)
            names = {v: k for k, v in ICMP_CODES.get(typ, {}).items()}  # type: ignore[arg-type]
            return names.get(code, str(code))
        if name in ("icmp_flowid", "icmp_seq"):
            if typ not in _ICMP_FLOW_TYPES:
                return None
            v = d.tu(True, 4 if name == "icmp_flowid" else 6, 2, 6 if name == "icmp_flowid" else 8)
            return None if v is None else str(v)
        if name == "icmp_nextmtu":
            v = d.tu(typ == 3 and code == 4, 6, 2, 8)
            return None if v is None else str(v)
    if name.startswith("payload"):
        off, ln = d.payload()
        if name == "payload_len":
            return str(max(ln, 0))
        if ln > 0 and off >= len(d.p):
            return None
        end = (d.nh or 0) + d.nl if d.ip else len(d.p)
        data = d.p[off:max(off, min(off + max(ln, 0), end))]
        if name == "payload":
            return quote(data)
        return md5_text(data) if name == "payload_md5" else hashlib.md5(data).hexdigest()
    return None


def summarize(pkt: bytes, nh: int | None, annos: dict[str, int], fields: list[str]) -> str:
    """One dump line (without its newline) for a packet whose IP header is at ``nh``
    (None: no IP header), as Click's ToIPSummaryDump writes it."""
    d = _View(pkt, nh, annos)
    return " ".join(_field_text(d, f) or "-" for f in fields)


def header(fields: list[str], banner: str | None = None, extra: list[str] = ()) -> str:  # type: ignore[assignment]
    """The lines a dump starts with: ``!IPSummaryDump 1.3``, ``!creator``, ``!data``."""
    lines = [f"!IPSummaryDump {MAJOR_VERSION}.{MINOR_VERSION}"]
    if banner is not None:
        lines.append("!creator " + quote(banner.encode("latin-1", "replace")))
    lines += list(extra)
    lines.append("!data " + " ".join("timestamp" if f == "ntimestamp" else f for f in fields))
    return "\n".join(lines) + "\n"
