"""IPFilter/IPClassifier expressions: Click's tcpdump-like grammar, parsed into boolean
trees over header fields (:mod:`~routebricks.elements.ip.ipfilter_tree`; evaluated by
:mod:`~routebricks.elements.ip.ipfilter_eval`).

Grammar (Click's ``ipfilter.cc``)::

    expr   ::= orexpr [ "?" expr ":" expr ]
    orexpr ::= term (("or" | "||") term)*
    term   ::= factor (["and" | "&&"] factor)*         juxtaposition means "and"
    factor ::= ("not" | "!") factor | "(" expr ")" | test
    test   ::= "true" | "false" | QUALIFIERS [["&" MASK] RELOP] DATA

Qualifiers are ``src``, ``dst``, ``src and dst``, ``src or dst``, ``ip``, a protocol name
(``icmp``, ``igmp``, ``ipip``, ``tcp``, ``udp``, ``tcpudp``, ``transp``) and a type word
(``host``, ``net``, ``port``, ``proto``, ``opt``, ``frag``, ``unfrag``, ``ect``, ``ce``,
``vers``, ``hl``, ``tos``, ``dscp``, ``len``, ``id``, ``ttl``, ``win``, ``type``), or a
``PROTO[POS:LEN]`` field.  A test without qualifiers inherits them from the previous test
(``src port 80 or 81``).  Port names, ICMP type names, TCP flag names and protocol names
stand for their numbers, and imply their type when it is not given (``www``, ``syn``,
``echo-reply``, ``tcp``).

Each test compiles the way Click's ``Primitive::compile`` does: a conjunction of an IP
protocol check (when a protocol is known), a first-fragment check (for transport-header
fields: ports, TCP flags and window, ICMP type, ``tcp[...]``), and the field comparison.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from routebricks.elements.ip.ipfilter_tree import (
    _PROTO_NAMES,
    _SYNTAX,
    F_DPORT,
    F_DST,
    F_FRAG,
    F_ICMPTYPE,
    F_PROTO,
    F_SPORT,
    F_SRC,
    F_TCPFLAGS,
    F_TOS,
    ICMP_TYPES,
    IP_PROTOS,
    MAX_NESTING,
    PORTS,
    PROTO_DCCP,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_TCP_OR_UDP,
    PROTO_UDP,
    SD_AND,
    SD_DST,
    SD_OR,
    SD_SRC,
    TCP_FLAGS,
    TYPE_WORDS,
    UNKNOWN,
    Cmp,
    Cond,
    Const,
    FieldSpec,
    FilterParseError,
    Node,
    _and,
    _not,
    _or,
)
from routebricks.lookup.routes import prefix_address

__all__ = ["parse_expression", "parse_pattern", "tokenize"]

# --------------------------------------------------------------------------- tokens


def tokenize(text: str) -> list[str]:
    """Click's ``separate_text``: words of ``[A-Za-z0-9-./@_:]``, the operators ``&&``
    ``||`` ``<=`` ``>=`` ``!=`` ``==``, and single characters ``( ) [ ] , ; ? & | < > ! =``."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "&|":
            j = 2 if i + 1 < n and text[i + 1] == c else 1
        elif c in "<>!=":
            j = 2 if i + 1 < n and text[i + 1] == "=" else 1
        elif c in "()[],;?":
            j = 1
        else:
            j = 0
            while i + j < n and (text[i + j].isalnum() or text[i + j] in "-./@_:"):
                j += 1
            j = max(j, 1)
        words.append(text[i : i + j])
        i += j
    return words


# --------------------------------------------------------------------------- values

_DOTTED = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})", re.A)


def _parse_int(word: str) -> int | None:
    """Click's IntArg: decimal, 0x hex, 0 octal (an optional sign)."""
    if len(word) > 24:  # beyond any header field (int() refuses 4300 digits and more)
        if re.fullmatch(r"[-+]?[0-9][0-9a-fA-FxX]*", word):
            raise FilterParseError(f"value '{word[:24]}...' ({len(word)} characters) out of range")
        return None
    m = re.fullmatch(r"([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", word)
    if m is None:
        return None
    body = m.group(2)
    if body[:2].lower() == "0x":
        v = int(body, 16)
    elif len(body) > 1 and body[0] == "0":
        v = int(body, 8)
    else:
        v = int(body)
    return -v if m.group(1) == "-" else v


def _parse_ip(word: str) -> int | None:
    m = _DOTTED.fullmatch(word)
    if m is None or any(int(x) > 255 for x in m.groups()):
        return None
    a, b, c, d = (int(x) for x in m.groups())
    return (a << 24) | (b << 16) | (c << 8) | d


def _parse_prefix(word: str) -> tuple[int, int] | None:
    """``A.B.C.D/LEN`` or ``A.B.C.D/M.M.M.M`` → (address, netmask)."""
    addr_s, slash, mask_s = word.partition("/")
    if not slash:
        return None
    if re.fullmatch(r"[0-9]{1,2}", mask_s) and int(mask_s) <= 32:
        try:  # Click lets the address stop at the octets the prefix covers: 18.26/16
            addr = prefix_address(addr_s, int(mask_s))
        except ValueError:
            return None
        return addr, (0xFFFFFFFF << (32 - int(mask_s))) & 0xFFFFFFFF
    addr = _parse_ip(addr_s)
    if addr is None:
        return None
    mask = _parse_ip(mask_s)
    return None if mask is None else (addr, mask)


# --------------------------------------------------------------------------- primitives


@dataclass
class _Prim:
    """One test being parsed (Click's ``IPFilter::Primitive``)."""

    type: object = None  # None, "host", "net", "proto", "port", "tcpopt", "frag",
    # "unfrag", "ect", "ce", or a FieldSpec
    data: object = None  # None, "int", "host", "net", "proto", "port", "tcpopt", FieldSpec
    srcdst: int = 0
    transp: int = UNKNOWN
    u: int = 0
    mask: int = 0
    op: str = "eq"  # "eq", "gt", "lt"
    neg: bool = False
    words: list[str] = field(default_factory=list)
    next_word: str = ""

    def error(self, message: str) -> FilterParseError:
        after = f" (before '{self.next_word}')" if self.next_word else ""
        return FilterParseError(f"{message} in '{' '.join(self.words)}'{after}")

    def set_type(self, t: object, word: str) -> None:
        if self.type is not None:
            raise FilterParseError(f"type specified twice at '{word}'")
        self.type = t

    def set_srcdst(self, sd: int, word: str) -> None:
        if self.srcdst:
            raise FilterParseError(f"'src' or 'dst' specified twice at '{word}'")
        self.srcdst = sd

    def set_transp(self, p: int, word: str) -> None:
        if self.transp != UNKNOWN and self.transp != p:
            raise FilterParseError(f"transport protocol specified twice at '{word}'")
        self.transp = p

    # ---- Click's Primitive::set_mask
    def set_mask(self, full: int, provided: int | None) -> None:
        this = provided if provided else full
        if this & full != this:
            raise self.error(f"mask {this:#x} out of range (bound {full:#x})")
        if self.op in ("gt", "lt"):
            data = self.u
            if (self.op == "lt" and (data <= 0 or data > this)) or (
                self.op == "gt" and data >= this
            ):
                # Always true or always false.
                will_be = (not self.neg) if (self.op == "lt" and data > this) else self.neg
                self.u = self.mask = 0
                self.neg = not will_be
                self.op = "eq"
                return
            if self.op == "lt":  # x < U  ==  !(x > U-1)
                self.u -= 1
                self.neg = not self.neg
                self.op = "gt"
            self.mask = this
            return
        if not 0 <= self.u <= full:
            raise self.error(f"value {self.u} out of range (0-{full})")
        self.mask = this

    # ---- Click's Primitive::check
    def check(self, prev: _Prim, mask_kind: str | None, mask: int) -> None:
        if self.type is None:
            data = self.data
            while True:
                if data in ("host", "net", "tcpopt"):
                    self.type = data
                    if not self.srcdst:
                        self.srcdst = prev.srcdst
                elif data == "proto":
                    self.type = "proto"
                elif data == "port":
                    self.type = "port"
                    if not self.srcdst:
                        self.srcdst = prev.srcdst
                    if self.transp == UNKNOWN:
                        self.transp = prev.transp
                elif data == "int":
                    if not (isinstance(prev.type, FieldSpec) or prev.type in ("proto", "port")):
                        raise self.error("specify header field or 'port'")
                    data = self.data = prev.type
                    continue
                elif data is None:
                    if self.transp == UNKNOWN:
                        raise self.error("partial directive")
                    self.type = "proto"
                elif isinstance(data, FieldSpec):
                    self.type = data
                    if data.proto is not None and self.transp == UNKNOWN:
                        self.transp = data.proto
                else:
                    raise self.error(f"unknown type '{data}'")
                break
        t = self.type
        provided = mask if mask_kind else None
        if t in ("host", "net"):
            if self.data != t:
                raise self.error(f"'{t}': address missing")
            if self.op != "eq":
                raise self.error(f"'{t}': operator not supported")
            if t == "host":
                self.mask = 0xFFFFFFFF
            self.type = "host"
            if mask_kind is not None:
                if mask_kind not in ("int", "host"):
                    raise self.error("bad mask")
                self.mask = mask
        elif t == "proto":
            if self.data in ("int", "proto"):
                if self.transp not in (UNKNOWN, self.u):
                    raise self.error("'proto': specified twice")
                self.data = None
            else:
                self.u = self.transp
            self.transp = UNKNOWN
            if self.data is not None or self.u == UNKNOWN:
                raise self.error("'proto': value missing")
            if self.u >= 256:
                if self.op != "eq" or self.neg or mask_kind:
                    raise self.error(
                        f"'{_PROTO_NAMES.get(self.u, self.u)}': operator or mask not supported"
                    )
                self.mask = 0xFF
            else:
                if mask_kind not in (None, "int"):
                    raise self.error("bad mask")
                self.set_mask(0xFF, provided)
            if self.op == "eq" and self.mask == 0xFF and not self.neg:
                self.transp = self.u
        elif t == "port":
            if self.data == "int":
                self.data = "port"
            if self.data != "port":
                raise self.error("'port': value missing")
            if self.transp == UNKNOWN:
                self.transp = PROTO_TCP_OR_UDP
            elif self.transp not in (PROTO_TCP, PROTO_UDP, PROTO_TCP_OR_UDP, PROTO_DCCP):
                raise self.error(f"'port': bad protocol {self.transp}")
            if mask_kind not in (None, "int"):
                raise self.error("bad mask")
            self.set_mask(0xFFFF, provided)
        elif t == "tcpopt":
            if self.data == "int":
                self.data = "tcpopt"
            if self.data != "tcpopt":
                raise self.error("'tcp opt': value missing")
            if self.transp == UNKNOWN:
                self.transp = PROTO_TCP
            elif self.transp != PROTO_TCP:
                raise self.error(f"'tcp opt': bad protocol {self.transp}")
            if self.op != "eq" or self.neg or mask_kind:
                raise self.error("'tcp opt': operator or mask not supported")
            if not 0 <= self.u <= 255:
                raise self.error(f"'tcp opt': value {self.u} out of range")
            self.mask = self.u
        elif t == "ect":
            if self.data not in (None, "int"):
                raise self.error("'ip ect': value missing")
            if self.data is None:
                self.u = 0
                self.neg = True
            elif mask_kind not in (None, "int"):
                raise self.error("bad mask")
            self.set_mask(0x3, provided)
            self.type = F_TOS
        elif t == "ce":
            if self.data is not None or mask_kind:
                raise self.error("'ip ce': value not supported")
            self.mask = 0x3
            self.u = 0x3
            self.type = F_TOS
        elif t in ("frag", "unfrag"):
            if self.data is not None or mask_kind:
                raise self.error(f"'ip {t}': value not supported")
            if t == "unfrag":
                self.neg = True
            self.type = "frag"
        elif isinstance(t, FieldSpec):
            if self.data not in ("int", t):
                raise self.error(f"'{t.name}': value missing")
            if mask_kind not in (None, "int"):
                raise self.error("bad mask")
            self.set_mask(t.full_mask, provided)
        else:  # pragma: no cover - every type word is handled above
            raise self.error(f"unknown type '{t}'")
        if self.type in ("host", "port") and not self.srcdst:
            self.srcdst = SD_OR
        # (else Click warns "'src' or 'dst' ignored" when old_srcdst was set)

    # ---- Click's Primitive::compile
    def _comparison(self, f: FieldSpec, op_negate: bool) -> Node:
        # A negated operator (!=, <=, ...) is a comparison of its own, false where the
        # packet lacks the field, as in Click; only an explicit "not" makes that true.
        neg = self.neg and op_negate
        if self.op == "eq":
            if self.mask == 0 and self.u & self.mask == 0:
                return Const(not neg)
            return Cmp(f, self.mask, "ne" if neg else "eq", self.u & self.mask)
        if self.mask == 0:
            return Const(neg)
        return Cmp(f, self.mask, "le" if neg else "gt", self.u)

    def compile(self) -> Node:
        parts: list[Node] = []
        if self.transp == PROTO_TCP_OR_UDP:
            parts.append(
                _or([Cmp(F_PROTO, 0xFF, "eq", PROTO_TCP), Cmp(F_PROTO, 0xFF, "eq", PROTO_UDP)])
            )
        elif self.transp != UNKNOWN and self.transp < 256:
            parts.append(Cmp(F_PROTO, 0xFF, "eq", self.transp))
        t = self.type
        if t in ("port", "tcpopt") or (isinstance(t, FieldSpec) and t.transport):
            parts.append(Cmp(F_FRAG, 0x1FFF, "eq", 0))  # first fragment
        sd = self.srcdst
        if t in ("host", "port"):
            fields = (F_SRC, F_DST) if t == "host" else (F_SPORT, F_DPORT)
            sub = []
            if sd in (SD_SRC, SD_AND, SD_OR):
                sub.append(self._comparison(fields[0], True))
            if sd in (SD_DST, SD_AND, SD_OR):
                sub.append(self._comparison(fields[1], True))
            # Negated: each comparison is (host != X), so "or" becomes "and" (De Morgan).
            parts.append(_or(sub) if (sd == SD_OR) != self.neg else _and(sub))
        elif t == "proto":
            if self.transp < 256:
                parts.append(self._comparison(F_PROTO, True))
        elif t == "frag":
            c = Cmp(F_FRAG, 0x3FFF, "eq", 0)
            parts.append(c if self.neg else _not(c))
        elif t == "tcpopt":
            parts.append(Cmp(F_TCPFLAGS, self.u, "eq", self.u))
        elif isinstance(t, FieldSpec):
            parts.append(self._comparison(t, True))
        return _and(parts)


# --------------------------------------------------------------------------- parser


def _lookup(word: str, type_: object, proto: int, *, report: bool) -> tuple[str, object] | None:
    """Click's ``IPFilter::lookup``: what a name means given the type and protocol so far.

    Returns ``("type", T)`` for type words, ``(kind, value)`` for protocol, port, TCP flag
    and ICMP type names, None for unknown words; raises on ambiguous or meaningless names
    when ``report`` (else returns ``("bad", None)``)."""
    if type_ is None and word in TYPE_WORDS:
        t = TYPE_WORDS[word]
        return None if t == _SYNTAX else ("type", t)
    got = [
        ("proto", IP_PROTOS.get(word)),
        ("port", PORTS.get(word)),  # tcp
        ("port", PORTS.get(word)),  # udp
        ("tcpopt", TCP_FLAGS.get(word)),
        (F_ICMPTYPE, ICMP_TYPES.get(word)),
    ]
    if all(v is None for _, v in got):
        return None
    ok = [
        got[0][1] is not None and type_ in (None, "proto"),
        got[1][1] is not None
        and type_ in (None, "port")
        and proto in (UNKNOWN, PROTO_TCP, PROTO_TCP_OR_UDP),
        got[2][1] is not None
        and type_ in (None, "port")
        and proto in (UNKNOWN, PROTO_UDP, PROTO_TCP_OR_UDP),
        got[3][1] is not None
        and type_ in (None, "tcpopt")
        and proto in (UNKNOWN, PROTO_TCP, PROTO_TCP_OR_UDP),
        got[4][1] is not None and type_ in (None, F_ICMPTYPE) and proto in (UNKNOWN, PROTO_ICMP),
    ]
    if ok[1] and ok[2]:
        ok[2] = False  # the same number for TCP and UDP
    if sum(ok) == 1:
        i = ok.index(True)
        return got[i][0], got[i][1]  # type: ignore[return-value]
    if not report:
        return ("bad", None)
    tries = ", ".join(
        f"'{n} {word}'"
        for n, (_, v) in zip(
            ("ip proto", "tcp port", "udp port", "tcp opt", "icmp type"), got, strict=True
        )
        if v is not None
    )
    what = "ambiguous" if sum(ok) > 1 else "meaningless here"
    raise FilterParseError(f"'{word}' is {what}; try {tries}")


class _Parser:
    """Recursive-descent parser over one pattern's words (from ``start``)."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.prev = _Prim()
        self.depth = 0  # nesting levels open at the current word

    def word(self, pos: int) -> str:
        return self.words[pos] if pos < len(self.words) else ""

    def nested(self, pos: int) -> None:
        """Enter one more nesting level at word ``pos`` (undone by ``self.depth -= 1``)."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise FilterParseError(
                f"expression nested too deeply at its word {pos + 1} ('{self.word(pos)}'): "
                f"more than {MAX_NESTING} levels of parentheses, 'not' or '? :'"
            )

    def expr(self, pos: int) -> tuple[Node, int]:
        node, pos = self.orexpr(pos)
        if self.word(pos) == "?":
            self.nested(pos)
            yes, p2 = self.expr(pos + 1)
            if p2 == pos + 1 or self.word(p2) != ":":
                where = self.word(p2)
                raise FilterParseError(
                    f"missing ':' in ternary expression at '{where}'"
                    if where
                    else f"missing ':' in ternary expression after '{self.words[-1]}'"
                )
            no, p3 = self.expr(p2 + 1)
            self.depth -= 1
            return Cond(node, yes, no), p3
        return node, pos

    def orexpr(self, pos: int) -> tuple[Node, int]:
        children = []
        while True:
            node, pos = self.term(pos)
            children.append(node)
            if self.word(pos) in ("or", "||"):
                pos += 1
                continue
            return _or(children), pos

    def term(self, pos: int) -> tuple[Node, int]:
        children: list[Node] = []
        need = True  # at the start, or after "and": a factor must follow
        after = ""
        while True:
            node, nxt = self.factor(pos)
            if node is None:
                if need:
                    where = self.word(pos)
                    if after:
                        raise FilterParseError(
                            f"missing expression after '{after}'"
                            + (f" at '{where}'" if where else "")
                        )
                    raise FilterParseError(
                        f"missing expression at '{where}'" if where else "missing expression"
                    )
                break
            children.append(node)
            pos = nxt
            if self.word(pos) in ("and", "&&"):
                after = self.word(pos)
                pos += 1
                need = True
            else:
                need = False
        return _and(children), pos

    def factor(self, pos: int) -> tuple[Node | None, int]:
        w = self.word(pos)
        if w in ("not", "!"):
            self.nested(pos)
            node, nxt = self.factor(pos + 1)
            self.depth -= 1
            if node is None:
                raise FilterParseError(
                    f"missing expression after '{w}'"
                    + (f" at '{self.word(pos + 1)}'" if self.word(pos + 1) else "")
                )
            return _not(node), nxt
        if w == "(":
            self.nested(pos)
            node, nxt = self.expr(pos + 1)
            self.depth -= 1
            if self.word(nxt) != ")":
                where = self.word(nxt)
                raise FilterParseError(
                    f"missing ')' at '{where}'"
                    if where
                    else f"missing ')' after '{self.words[-1]}'"
                )
            return node, nxt + 1
        return self.test(pos)

    def test(self, pos: int) -> tuple[Node | None, int]:
        words = self.words
        n = len(words)
        if pos >= n or words[pos] in (")", "||", "or", "?", ":"):
            return None, pos
        if words[pos] == "true":
            return Const(True), pos + 1
        if words[pos] == "false":
            return Const(False), pos + 1
        first = pos
        prim = _Prim()
        negated = False
        header = ""
        # qualifiers
        while pos < n:
            wd = words[pos]
            found = _lookup(wd, None, UNKNOWN, report=False)
            if found is not None and found[0] == "type":
                prim.set_type(found[1], wd)
                t = found[1]
                if isinstance(t, FieldSpec) and t.proto is not None:
                    prim.set_transp(t.proto, wd)
            elif found is not None and found[0] == "proto":
                prim.set_transp(int(found[1]), wd)  # type: ignore[arg-type]
            elif found is not None:
                break
            elif wd == "src":
                nxt2 = self.word(pos + 2)
                if pos < n - 2 and nxt2 in ("dst", "dest") and words[pos + 1] in ("and", "&&"):
                    prim.set_srcdst(SD_AND, wd)
                    pos += 2
                elif pos < n - 2 and nxt2 in ("dst", "dest") and words[pos + 1] in ("or", "||"):
                    prim.set_srcdst(SD_OR, wd)
                    pos += 2
                else:
                    prim.set_srcdst(SD_SRC, wd)
            elif wd in ("dst", "dest"):
                prim.set_srcdst(SD_DST, wd)
            elif wd in ("ip", "ether"):
                if header:
                    break
                if wd == "ether":
                    raise FilterParseError("'ether' tests are not supported (no MAC header)")
                header = wd
            elif wd in ("not", "!"):
                negated = not negated
            else:
                break
            pos += 1
        if pos != first:
            self.prev = _Prim()
        # optional PROTO[POS:LEN]
        wd = words[pos] if pos < n - 1 else ""
        if wd == "[" and pos > first and prim.type is None:
            pos = self._brackets(prim, pos)
            wd = words[pos] if pos < n - 1 else ""
        # optional "& MASK"
        mask_kind: str | None = None
        mask = 0
        if wd == "&" and pos < n - 1:
            m = _parse_int(words[pos + 1])
            if m is not None:
                mask_kind, mask = "int", m
            else:
                ip = _parse_ip(words[pos + 1])
                if ip is not None:
                    mask_kind, mask = "host", ip
            if mask_kind is not None:
                pos += 2
                if not mask & 0xFFFFFFFF or mask < 0:
                    mask_kind = None  # Click: "zero mask ignored"
            wd = words[pos] if pos < n - 1 else ""
        # optional relational operator
        ops = {
            "=": ("eq", False),
            "==": ("eq", False),
            "!=": ("eq", True),
            ">": ("gt", False),
            "<": ("lt", False),
            ">=": ("lt", True),
            "<=": ("gt", True),
        }
        if wd in ops:
            prim.op, prim.neg = ops[wd]
            pos += 1
        # data
        if pos < n:
            wd = words[pos]
            found = _lookup(wd, prim.type, prim.transp, report=True)
            pos += 1
            if found is not None and found[0] != "type":
                prim.data, prim.u = found[0], int(found[1])  # type: ignore[arg-type]
            elif (v := _parse_int(wd)) is not None:
                prim.data, prim.u = "int", v
            elif (ip := _parse_ip(wd)) is not None:
                if self.word(pos) == "mask" and (m := _parse_ip(self.word(pos + 1))) is not None:
                    pos += 2
                    prim.data, prim.u, prim.mask = "net", ip, m
                else:
                    prim.data, prim.u = "host", ip
            elif (pm := _parse_prefix(wd)) is not None:
                prim.data, prim.u, prim.mask = "net", pm[0], pm[1]
            else:
                if prim.op != "eq" or prim.neg:
                    raise FilterParseError(f"dangling operator near '{wd}'")
                pos -= 1
        if pos == first:
            raise FilterParseError(f"empty term near '{self.word(pos) or 'end'}'")
        prim.words = words[first:pos]
        prim.next_word = self.word(pos)
        if isinstance(prim.u, int) and prim.data == "int" and prim.u < 0:
            raise prim.error(f"value {prim.u} out of range")
        prim.check(self.prev, mask_kind, mask)
        node = prim.compile()
        self.prev = prim
        return (_not(node) if negated else node), pos

    def _brackets(self, prim: _Prim, pos: int) -> int:
        """``[POS]``, ``[POS:LEN]`` or ``[POS,POS2]`` after a protocol qualifier."""
        words = self.words
        first = pos + 1
        pos += 1
        combo = ""
        while pos < len(words) and words[pos] != "]":
            combo += words[pos]
            pos += 1
        if pos >= len(words):
            raise FilterParseError(f"missing ']' after '[{combo}'")
        pos += 1
        m = re.fullmatch(r"([^:,]+)(?:([:,])(.+))?", combo)
        start = _parse_int(m.group(1)) if m else None
        other = _parse_int(m.group(3)) if m and m.group(3) else None
        if start is None or (m and m.group(2) and other is None):
            raise FilterParseError(
                f"syntax error after '[' at '{combo or ']'}', expected '[POS]' or '[POS:LEN]'"
            )
        assert m is not None
        length = 1 if not m.group(2) else (other if m.group(2) == ":" else other - start + 1)
        assert length is not None
        if not 1 <= length <= 4 or start < 0:
            raise FilterParseError(f"LEN in '[{combo}]' out of range, should be between 1 and 4")
        if start & ~3 != (start + length - 1) & ~3:
            raise FilterParseError(f"field [{start}:{length}] does not fit in a single word")
        transp = prim.transp
        base = _PROTO_NAMES.get(transp, "ip" if transp == UNKNOWN else f"proto {transp}")
        spec = FieldSpec(
            f"{base}[{start}:{length}]",
            transp != UNKNOWN,
            start,
            length,
            proto=None if transp == UNKNOWN else transp,
        )
        prim.set_type(spec, words[first - 1])
        return pos


def parse_expression(words: list[str]) -> Node:
    """Compile a whole expression (already tokenized); raise FilterParseError."""
    parser = _Parser(words)
    node, pos = parser.expr(0)
    if pos < len(words):
        raise FilterParseError(f"garbage after expression at '{words[pos]}'")
    return node


def parse_pattern(words: list[str]) -> Node:
    """An IPFilter pattern after its action word: ``-``/``any``/``all``/nothing match all."""
    if not words or (len(words) == 1 and words[0] in ("-", "any", "all")):
        return Const(True)
    return parse_expression(words)
