"""IPPrint: prints IP packets one line each, tcpdump-like, in Click's format."""

from __future__ import annotations

import sys
from typing import IO

import numpy as np

from routebricks.elements.standard.printer import format_timestamp
from routebricks.engine.args import Arg, Bool, Filename, Int, String, Word
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch
from routebricks.packet.ip import int_to_ip, ip_positions

#: Click's NameInfo tables (elements/ip/ipnameinfo.cc), by number.
PROTO_NAMES = {1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre",
               132: "sctp"}
ICMP_TYPES = {0: "echo-reply", 3: "unreachable", 4: "sourcequench", 5: "redirect", 8: "echo",
              9: "routeradvert", 10: "routersolicit", 11: "timeexceeded",
              12: "parameterproblem", 13: "timestamp", 14: "timestamp-reply", 15: "inforeq",
              16: "inforeq-reply", 17: "maskreq", 18: "maskreq-reply"}
ICMP_CODES = {
    3: {0: "net", 1: "host", 2: "protocol", 3: "port", 4: "needfrag", 5: "srcroutefail",
        6: "netunknown", 7: "hostunknown", 8: "isolated", 9: "netprohibited",
        10: "hostprohibited", 11: "tosnet", 12: "toshost", 13: "filterprohibited",
        14: "hostprecedence", 15: "precedencecutoff"},
    5: {0: "net", 1: "host", 2: "tosnet", 3: "toshost"},
    11: {0: "transit", 1: "reassembly"},
    12: {0: "erroratptr", 1: "missingopt", 2: "length"},
}
IP_MF, IP_OFFMASK = 0x2000, 0x1FFF
TH_FIN, TH_SYN, TH_RST, TH_PUSH, TH_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def parse_contents(text: str) -> int:
    """CONTENTS: a bool (true is HEX), NONE, HEX or ASCII → 0, 1, 2."""
    try:
        return int(Bool.parse(text))
    except ValueError:
        modes = {"NONE": 0, "HEX": 1, "ASCII": 2}
        if text.upper() not in modes:
            raise ValueError(f"bad contents value '{text}'; should be 'NONE', 'HEX', or "
                             "'ASCII'") from None
        return modes[text.upper()]


def parse_payload(text: str) -> int:
    """PAYLOAD: false/no, true/yes/hex, ascii → 0, 1, 2 (Click's words only)."""
    modes = {"NO": 0, "FALSE": 0, "YES": 1, "TRUE": 1, "HEX": 1, "ASCII": 2}
    if text.upper() not in modes:
        raise ValueError(f"bad payload value '{text}'; should be 'false', 'hex', or 'ascii'")
    return modes[text.upper()]


def dump(data: bytes, mode: int) -> str:
    """Click's IPPrint data dump: HEX in lines of 24 bytes, a space every 4; ASCII in lines
    of 48, a space every 8, unprintable bytes as '.'; every line starts "\\n  "."""
    line, group = (24, 4) if mode == 1 else (48, 8)
    out = []
    for i, b in enumerate(data):
        if i % line == 0:
            out.append("\n  ")
        elif i % group == 0:
            out.append(" ")
        out.append(f"{b:02x}" if mode == 1 else (chr(b) if 32 <= b <= 126 else "."))
    return "".join(out)


def u16(d: bytes, o: int) -> int:
    return int.from_bytes(d[o : o + 2], "big")


def u32(d: bytes, o: int) -> int:
    return int.from_bytes(d[o : o + 4], "big")


def tcp_line(ip: bytes, hl: int, tlen: int, first: bool, plen: int) -> str:
    """Click's tcp_line: ports, flags, sequence range and lengths, ack, window."""
    src, dst = int_to_ip(u32(ip, 12)), int_to_ip(u32(ip, 16))
    if tlen < 4 or not first:
        return f"{src} > {dst}: " + ("truncated-tcp" if first else "tcp")
    t = ip[hl:]
    s = f"{src}.{u16(t, 0)} > {dst}.{u16(t, 2)}: "
    if tlen < 14:
        return s + "truncated-tcp"
    ip_len, flags = u16(ip, 2), t[13]
    seqlen = ip_len - hl - (t[12] >> 4) * 4
    for bit, c in ((TH_SYN, "S"), (TH_FIN, "F"), (TH_RST, "R"), (TH_PUSH, "P")):
        if flags & bit:
            s += c
            seqlen += bit in (TH_SYN, TH_FIN)
    if not flags & (TH_SYN | TH_FIN | TH_RST | TH_PUSH):
        s += "."
    seq = u32(t, 4)
    s += f" {seq}:{(seq + seqlen) & 0xFFFFFFFF}({seqlen},{plen},{ip_len})"
    if flags & TH_ACK:
        s += f" ack {u32(t, 8)}"
    return s + ("truncated-tcp" if tlen < 16 else f" win {u16(t, 14)}")


def udp_line(ip: bytes, hl: int, tlen: int, first: bool) -> str:
    """Click's udp_line: ports and the UDP length."""
    src, dst = int_to_ip(u32(ip, 12)), int_to_ip(u32(ip, 16))
    if tlen < 4 or not first:
        return f"{src} > {dst}: " + ("truncated-udp" if first else "udp")
    t = ip[hl:]
    s = f"{src}.{u16(t, 0)} > {dst}.{u16(t, 2)}: "
    return s + ("truncated-udp" if tlen < 8 else f"udp {u16(t, 4)}")


def icmp_line(ip: bytes, hl: int, tlen: int, first: bool, swap: bool) -> str:
    """Click's icmp_line: echo (id, seq), unreachable with the quoted datagram, others by
    name."""
    s = f"{int_to_ip(u32(ip, 12))} > {int_to_ip(u32(ip, 16))}: "
    if not first:
        return s + "icmp"
    if tlen < 2:
        return s + "truncated-icmp"
    t = ip[hl:]
    itype, icode = t[0], t[1]
    if itype in (0, 8):
        s += "icmp echo-reply " if itype == 0 else "icmp echo "
        if tlen < 8:
            return s + "truncated-icmp"
        ident, seq = u16(t, 4), u16(t, 6)
        if not swap:  # Click prints the fields in host order (little-endian here)
            ident, seq = ((ident & 0xFF) << 8) | ident >> 8, ((seq & 0xFF) << 8) | seq >> 8
        return s + f"({ident}, {seq})"
    if itype == 3:
        code = ICMP_CODES[3].get(icode, f"code {icode}")
        elen = tlen - 8
        if elen < 20:
            return s + f"icmp unreachable {code} truncated-icmp"
        e = t[8:]
        s += f"icmp {int_to_ip(u32(e, 16))} unreachable {code}"
        if icode == 2:
            s += " " + PROTO_NAMES.get(e[9], str(e[9]))
        elif icode == 3:
            s += " " + PROTO_NAMES.get(e[9], f"protocol {e[9]}")
            ehl = (e[0] & 0xF) * 4
            if elen - ehl < 4:
                return s + "truncated-icmp"
            s += f"/{u16(e, ehl + 2)}"
        elif icode == 4 and u16(t, 6):
            s += f" (mtu {u16(t, 6)})"
        return s
    s += "icmp " + ICMP_TYPES.get(itype, f"type {itype}")
    if icode in ICMP_CODES.get(itype, {}):
        s += " " + ICMP_CODES[itype][icode]
    elif icode:
        s += f" code {icode}"
    return s


class IPPrint(Element):
    """Prints a tcpdump-like line for every IP packet to stderr, in Click's format.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        LABEL (string, positional, default empty): text at the start of each line.
        CONTENTS (NONE, HEX, ASCII or a bool, default NONE): print the packet data.
        PAYLOAD (false, true/HEX or ASCII, default false): print only the payload (after
            the TCP or UDP header, else after the IP header). At most one of CONTENTS and
            PAYLOAD.
        MAXLENGTH (integer, default 1500): the most bytes of data to print; -1 all.
            NBYTES is its old name.
        ID, TTL, TOS, LENGTH (bool, default false): print the IP ID, TTL, TOS, total length.
        TIMESTAMP (bool, default true): print the timestamp annotation (``sec.usec``).
        AGGREGATE, PAINT (bool, default false): print the ``aggregate`` and ``paint``
            annotations.
        SWAP (bool, default true): print ICMP echo id and sequence in network order.
        OUTFILE (file name): write the lines there instead of stderr.
        ACTIVE (bool, default true): whether to print.
        CHANNEL (word): accepted for Click compatibility; ignored.
    Behaviour: packets pass unchanged. The IP header is at the network-header annotation
        (the packet start where it is unset; Click prints nothing for such packets). Each
        line, as Click's: ``LABEL: ``, ``TIMESTAMP: ``, ``#AGG``/``paint P`` and ``: ``, then
        ``truncated-ip`` if under 20 bytes of IP, else the ``id``/``ttl``/``tos``/``length``
        fields asked for and the protocol line: TCP ``SRC.SPORT > DST.DPORT: FLAGS
        SEQ:END(SEQLEN,PACKETLEN,IPLEN) ack A win W``, UDP ``...: udp ULEN``, ICMP ``SRC >
        DST: icmp echo (ID, SEQ)`` and the other types by Click's names, others ``SRC > DST:
        ip-proto-N``; then `` (frag ID:LEN@OFFSET+)`` for fragments and the data dump.
        Short headers print Click's ``truncated-tcp``/``-udp``/``-icmp``. One write per
        batch; nothing is dropped.
    Handlers:
        active (read/write): whether to print.
    Example:
        FromDevice(eth0) -> Strip(14) -> CheckIPHeader -> IPPrint(in) -> ...;
        // in: 1000000000.000000: 10.0.0.1.1024 > 10.0.0.2.53: udp 28
    See also: Print, CheckIPHeader, ARPPrint
    """

    port_count = "1/1"
    processing = "a/a"
    PASSES_ALL = True
    ARGS = (
        Arg("LABEL", String, "", positional=True),
        Arg("CONTENTS", Word, "no"),
        Arg("PAYLOAD", Word, "no"),
        Arg("MAXLENGTH", Int, 1500),
        Arg("NBYTES", Int, None, attr="old_nbytes"),
        Arg("ID", Bool, False, attr="print_id"),
        Arg("TIMESTAMP", Bool, True),
        Arg("PAINT", Bool, False),
        Arg("TOS", Bool, False),
        Arg("TTL", Bool, False),
        Arg("SWAP", Bool, True),
        Arg("LENGTH", Bool, False, attr="print_len"),
        Arg("AGGREGATE", Bool, False),
        Arg("ACTIVE", Bool, True),
        Arg("OUTFILE", Filename, None),
        Arg("CHANNEL", Word, None),
    )

    def configure(self) -> None:
        if self.old_nbytes is not None:
            self.maxlength = self.old_nbytes
        try:
            contents, payload = parse_contents(self.contents), parse_payload(self.payload)
        except ValueError as e:
            raise self.error(str(e)) from None
        if contents and payload:
            raise self.error("specify at most one of PAYLOAD and CONTENTS")
        self.mode, self.payload_only = (payload, True) if payload else (contents, False)
        self._outfile: IO[str] | None = None

    def initialize(self) -> None:
        if self.outfile:
            try:
                self._outfile = open(self.resolve_path(self.outfile), "w")  # noqa: SIM115
            except OSError as e:
                raise self.error(f"{self.outfile}: {e.strerror}") from None

    def cleanup(self) -> None:
        if self._outfile is not None:
            self._outfile.close()
            self._outfile = None

    def format_line(self, pkt: bytes, nh: int, ts: int, paint: int, agg: int) -> str:
        """The line for one packet: its bytes, where its IP header starts in them, and its
        annotations."""
        s = f"{self.label}: " if self.label else ""
        if self.timestamp:
            s += format_timestamp(ts) + ": "
        if self.aggregate:
            s += f"#{agg}"
        if self.paint:
            s += ("." if self.aggregate else "paint ") + str(paint)
        if self.aggregate or self.paint:
            s += ": "
        ip = pkt[nh:]
        if len(ip) < 20:
            return s + "truncated-ip"
        ip_len, hl, p = u16(ip, 2), (ip[0] & 0xF) * 4, ip[9]
        payload_len = ip_len - hl
        tlen = min(len(ip) - hl, payload_len)
        frag = u16(ip, 6)
        first = not frag & IP_OFFMASK
        for on, word, v in ((self.print_id, "id", u16(ip, 4)), (self.ttl, "ttl", ip[8]),
                            (self.tos, "tos", ip[1]), (self.print_len, "length", ip_len)):
            if on:
                s += f"{word} {v} "
        if p == 6:
            s += tcp_line(ip, hl, tlen, first, len(pkt))
        elif p == 17:
            s += udp_line(ip, hl, tlen, first)
        elif p == 1:
            s += icmp_line(ip, hl, tlen, first, self.swap)
        else:
            s += f"{int_to_ip(u32(ip, 12))} > {int_to_ip(u32(ip, 16))}: ip-proto-{p}"
        if frag & (IP_MF | IP_OFFMASK):
            s += (f" (frag {u16(ip, 4)}:{payload_len}@{(frag & IP_OFFMASK) << 3}"
                  + ("+" if frag & IP_MF else "") + ")")
        if self.mode:
            start = 0
            if self.payload_only:
                start = nh + hl
                if first and p == 6:
                    start += (ip[hl + 12] >> 4) * 4 if len(ip) > hl + 12 else 0
                elif first and p == 17:
                    start += 8
            data = pkt[start:] if self.maxlength < 0 else pkt[start : start + self.maxlength]
            s += dump(data, self.mode)
        return s

    def format_batch(self, batch: PacketBatch) -> list[str]:
        """The lines IPPrint writes for ``batch`` (one per packet)."""
        n = len(batch)
        rel = np.maximum(ip_positions(batch) - batch.off, 0).tolist()
        zeros = [0] * n
        cols = [batch.anno_or_none(a) for a in ("timestamp", "paint", "aggregate")]
        ts, paint, agg = (zeros if c is None else c.tolist() for c in cols)
        return [self.format_line(batch.packet(i), rel[i], ts[i], paint[i], agg[i])
                for i in range(n)]

    def process(self, batch: PacketBatch) -> PacketBatch:
        if self.active and len(batch):
            (self._outfile or sys.stderr).write("\n".join(self.format_batch(batch)) + "\n")
        return batch

    @read_handler("active")
    def h_active(self) -> bool:
        """Whether to print."""
        return self.active

    @write_handler("active")
    def h_set_active(self, v: str) -> None:
        """Set whether to print."""
        self.active = Bool.parse(v)
