"""IPFilter/IPClassifier expressions as trees: the header fields they test, the names
Click's grammar gives numbers (protocols, ports, TCP flags, ICMP types), the boolean tree
nodes (:class:`Cmp` and its combinations) and their readable form (:func:`unparse`).
:mod:`~routebricks.elements.ip.ipfilter_parse` builds the trees,
:mod:`~routebricks.elements.ip.ipfilter_eval` evaluates them over batches and
:mod:`~routebricks.elements.ip.ipfilter_reach` reasons about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

UNKNOWN = -1000
PROTO_ICMP, PROTO_IGMP, PROTO_IPIP, PROTO_TCP, PROTO_UDP, PROTO_DCCP = 1, 2, 4, 6, 17, 33
PROTO_TCP_OR_UDP = 0x101
PROTO_TRANSP = 0x102
SD_SRC, SD_DST, SD_AND, SD_OR = 1, 2, 3, 4

#: Output slot meaning "drop" (IPFilter's ``drop``/``deny``).
DROP = -2

#: How deeply an expression may nest parentheses, ``not``s and ``? :``s: the parser (and
#: the compiler after it) recurse once per level, and Python's stack is finite.
MAX_NESTING = 100


class FilterParseError(ValueError):
    """A pattern that does not parse; the message names the offending word."""


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class FieldSpec:
    """A header field: ``width`` bytes at ``offset`` of the IP (or transport) header,
    shifted right by ``shift`` and masked to ``nbits`` bits."""

    name: str
    transport: bool
    offset: int
    width: int
    shift: int = 0
    nbits: int = 0
    proto: int | None = None  # the transport protocol a transport field implies

    @property
    def full_mask(self) -> int:
        bits = self.nbits or self.width * 8
        return (1 << bits) - 1


F_VERS = FieldSpec("ip vers", False, 0, 1, 4, 4)
F_HL = FieldSpec("ip hl", False, 0, 1, 0, 4)
F_TOS = FieldSpec("ip tos", False, 1, 1)
F_DSCP = FieldSpec("ip dscp", False, 1, 1, 2, 6)
F_LEN = FieldSpec("ip len", False, 2, 2)
F_ID = FieldSpec("ip id", False, 4, 2)
F_FRAG = FieldSpec("ip off", False, 6, 2)
F_TTL = FieldSpec("ip ttl", False, 8, 1)
F_PROTO = FieldSpec("ip proto", False, 9, 1)
F_SRC = FieldSpec("src", False, 12, 4)
F_DST = FieldSpec("dst", False, 16, 4)
F_SPORT = FieldSpec("transp src port", True, 0, 2)
F_DPORT = FieldSpec("transp dst port", True, 2, 2)
F_TCPFLAGS = FieldSpec("tcp flags", True, 13, 1, proto=PROTO_TCP)
F_WIN = FieldSpec("tcp win", True, 14, 2, proto=PROTO_TCP)
F_ICMPTYPE = FieldSpec("icmp type", True, 0, 1, proto=PROTO_ICMP)

# --------------------------------------------------------------------------- names

_SYNTAX = "syntax"
#: Click's T_IPFILTER_TYPE names: type words (None = syntax words handled by the parser).
TYPE_WORDS: dict[str, object] = {
    "ce": "ce",
    "dest": _SYNTAX,
    "dscp": F_DSCP,
    "dst": _SYNTAX,
    "ect": "ect",
    "ether": _SYNTAX,
    "frag": "frag",
    "hl": F_HL,
    "host": "host",
    "id": F_ID,
    "ip": _SYNTAX,
    "len": F_LEN,
    "net": "net",
    "not": _SYNTAX,
    "opt": "tcpopt",
    "port": "port",
    "proto": "proto",
    "src": _SYNTAX,
    "tos": F_TOS,
    "ttl": F_TTL,
    "type": F_ICMPTYPE,
    "unfrag": "unfrag",
    "vers": F_VERS,
    "win": F_WIN,
}
IP_PROTOS = {
    "icmp": PROTO_ICMP,
    "igmp": PROTO_IGMP,
    "ipip": PROTO_IPIP,
    "tcp": PROTO_TCP,
    "tcpudp": PROTO_TCP_OR_UDP,
    "transp": PROTO_TRANSP,
    "udp": PROTO_UDP,
}
PORTS = {
    "auth": 113,
    "bootpc": 68,
    "bootps": 67,
    "chargen": 19,
    "daytime": 13,
    "discard": 9,
    "dns": 53,
    "domain": 53,
    "echo": 7,
    "finger": 79,
    "ftp": 21,
    "ftp-data": 20,
    "https": 443,
    "imap3": 220,
    "imaps": 993,
    "irc": 194,
    "netbios-dgm": 138,
    "netbios-ns": 137,
    "netbios-ssn": 139,
    "nntp": 119,
    "ntp": 123,
    "pop3": 110,
    "pop3s": 995,
    "rip": 520,
    "route": 520,
    "smtp": 25,
    "snmp": 161,
    "snmp-trap": 162,
    "ssh": 22,
    "sunrpc": 111,
    "telnet": 23,
    "tftp": 69,
    "www": 80,
}
TCP_FLAGS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20}
ICMP_TYPES = {
    "echo-reply": 0,
    "unreachable": 3,
    "sourcequench": 4,
    "redirect": 5,
    "echo": 8,
    "routeradvert": 9,
    "routersolicit": 10,
    "timeexceeded": 11,
    "parameterproblem": 12,
    "timestamp": 13,
    "timestamp-reply": 14,
    "inforeq": 15,
    "inforeq-reply": 16,
    "maskreq": 17,
    "maskreq-reply": 18,
}
_PROTO_NAMES = {v: k for k, v in IP_PROTOS.items()}


# --------------------------------------------------------------------------- trees


@dataclass(frozen=True)
class Const:
    value: bool


@dataclass(frozen=True)
class Cmp:
    """``(field & mask) == value`` (op ``eq``), ``> value`` (``gt``), ``!= value``
    (``ne``) or ``<= value`` (``le``); each false when the packet does not contain the
    field (Click's semantics: only an explicit ``not`` turns a missing field true)."""

    field: FieldSpec
    mask: int
    op: str
    value: int


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Cond:
    """``test ? yes : no``."""

    test: Node
    yes: Node
    no: Node


Node = Union[Const, Cmp, Not, And, Or, Cond]  # noqa: UP007 - used at run time


def _and(children: list[Node]) -> Node:
    flat: list[Node] = []
    for c in children:
        for x in c.children if isinstance(c, And) else (c,):
            if x == Const(False):
                return Const(False)
            if x != Const(True) and x not in flat:
                flat.append(x)
    if not flat:
        return Const(True)
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def _or(children: list[Node]) -> Node:
    flat: list[Node] = []
    for c in children:
        for x in c.children if isinstance(c, Or) else (c,):
            if x == Const(True):
                return Const(True)
            if x != Const(False) and x not in flat:
                flat.append(x)
    if not flat:
        return Const(False)
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def _not(child: Node) -> Node:
    if isinstance(child, Const):
        return Const(not child.value)
    if isinstance(child, Not):
        return child.child
    return Not(child)


def _dotted(v: int) -> str:
    return f"{v >> 24 & 255}.{v >> 16 & 255}.{v >> 8 & 255}.{v & 255}"


def unparse(node: Node) -> str:
    """A readable form of a compiled tree (the ``program`` handler)."""
    if isinstance(node, Const):
        return "true" if node.value else "false"
    if isinstance(node, Cmp):
        f = node.field
        op = {"eq": "==", "gt": ">", "ne": "!=", "le": "<="}[node.op]
        if f in (F_SRC, F_DST):
            head = f"ip {f.name.split()[0]}"
            mask = "" if node.mask == f.full_mask else f" & {_dotted(node.mask)}"
            return f"{head}{mask} {op} {_dotted(node.value)}"
        mask = "" if node.mask == f.full_mask else f" & {node.mask:#x}"
        return f"{f.name}{mask} {op} {node.value}"
    if isinstance(node, Not):
        return f"!({unparse(node.child)})"
    if isinstance(node, And):
        return "(" + " && ".join(unparse(c) for c in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " || ".join(unparse(c) for c in node.children) + ")"
    return f"({unparse(node.test)} ? {unparse(node.yes)} : {unparse(node.no)})"
