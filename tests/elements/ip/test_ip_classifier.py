"""IPClassifier and IPFilter: compiled expressions agree with an independent oracle written
here with scapy's field access, on random packets and random expressions (hypothesis); the
Click-specific semantics (qualifier carry-over, first fragments, ``port != N``, names) hold;
parse errors name the pattern and the offending word."""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import GRE, ICMP, IP, TCP, UDP, Ether, IPOption_EOL, IPOption_NOP, Raw, wrpcap

from routebricks.engine.router import Router
from routebricks.errors import ConfigError
from routebricks.packet.batch import PacketBatch

HOSTS = ["10.0.0.1", "10.0.0.2", "10.1.2.3", "192.168.1.1", "8.8.8.8"]
PORTS = [0, 22, 53, 80, 81, 443, 1023, 1024, 5353, 65535]
ICMP_TYPES = [0, 3, 8, 11, 13]
WINDOWS = [0, 512, 1000, 65535]


# --------------------------------------------------------------------------- packets


@dataclass
class Pkt:
    """A packet as bytes and as scapy reads it back (the oracle's view)."""

    raw: bytes
    ip: IP

    @property
    def first(self) -> bool:
        return self.ip.frag == 0

    def l4(self, layer: type) -> object | None:
        """The transport layer, only for first fragments (as Click's tests require)."""
        return self.ip[layer] if self.first and layer in self.ip else None

    def transp(self, off: int, width: int) -> int | None:
        t = self.ip.ihl * 4
        if not self.first or len(self.raw) < t + off + width:
            return None
        return int.from_bytes(self.raw[t + off : t + off + width], "big")


def build_packet(
    proto: str, src: str, dst: str, ttl: int, tos: int, ident: int, flags: str, frag: int,
    options: bool, sport: int, dport: int, tcpflags: int, window: int, icmp_type: int,
    payload: int, version: int = 4,
) -> Pkt:
    ip = IP(src=src, dst=dst, ttl=ttl, tos=tos, id=ident, flags=flags, frag=frag,
            version=version)
    if options:
        ip.options = [IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_EOL()]
    if proto == "tcp":
        l4 = TCP(sport=sport, dport=dport, flags=tcpflags, window=window)
    elif proto == "udp":
        l4 = UDP(sport=sport, dport=dport)
    elif proto == "icmp":
        l4 = ICMP(type=icmp_type, code=0)
    else:
        l4 = GRE()
    raw = bytes(ip / l4 / Raw(b"p" * payload))
    return Pkt(raw, IP(raw))


packet_params = st.fixed_dictionaries({
    "proto": st.sampled_from(["tcp", "udp", "icmp", "gre"]),
    "src": st.sampled_from(HOSTS),
    "dst": st.sampled_from(HOSTS),
    "ttl": st.sampled_from([0, 1, 2, 5, 64, 255]),
    "tos": st.integers(0, 255),
    "ident": st.sampled_from([0, 1, 7, 4096, 65535]),
    "flags": st.sampled_from(["", "", "DF", "MF"]),
    "frag": st.sampled_from([0, 0, 0, 1, 185]),
    "options": st.booleans(),
    "sport": st.sampled_from(PORTS),
    "dport": st.sampled_from(PORTS),
    "tcpflags": st.integers(0, 63),
    "window": st.sampled_from(WINDOWS),
    "icmp_type": st.sampled_from(ICMP_TYPES),
    "payload": st.integers(0, 12),
    "version": st.sampled_from([4, 4, 4, 6]),
})


def _random_pool(n: int, seed: int) -> list[Pkt]:
    rnd = random.Random(seed)
    pool = []
    for _ in range(n):
        pool.append(build_packet(
            proto=rnd.choice(["tcp", "tcp", "udp", "udp", "icmp", "gre"]),
            src=rnd.choice(HOSTS), dst=rnd.choice(HOSTS),
            ttl=rnd.choice([0, 1, 2, 5, 64, 255]), tos=rnd.randrange(256),
            ident=rnd.choice([0, 1, 7, 4096, 65535, rnd.randrange(65536)]),
            flags=rnd.choice(["", "", "DF", "MF"]), frag=rnd.choice([0, 0, 0, 0, 1, 185]),
            options=rnd.random() < 0.25, sport=rnd.choice(PORTS), dport=rnd.choice(PORTS),
            tcpflags=rnd.randrange(64), window=rnd.choice(WINDOWS),
            icmp_type=rnd.choice(ICMP_TYPES), payload=rnd.randrange(13),
            version=rnd.choice([4, 4, 4, 4, 6])))
    return pool


POOL = _random_pool(240, seed=11)


# --------------------------------------------------------------------------- running


def sinks(name: str, n: int) -> str:
    return " ".join(f"{name}[{i}] -> {name}_q{i} :: Queue(1000000) -> Discard(ACTIVE false);"
                    for i in range(n))


def run_classifier(cls: str, args: list[str], packets: list[bytes], nout: int,
                   *, nh_offset: int | None = None) -> tuple[list[int], Router]:
    """Output of each packet (-1: dropped) through ``cls(args)``, pushed as one batch."""
    r = Router.from_text(f"Idle -> c :: {cls}({', '.join(args)});" + sinks("c", nout))
    b = PacketBatch.from_bytes(packets)
    b.anno("user")[:] = range(len(packets))
    if nh_offset is not None:
        b.anno("nh")[:] = b.off + nh_offset
    r.find("c").push(0, b)
    out = [-1] * len(packets)
    for port in range(nout):
        qe = r.find(f"c_q{port}")
        while (got := qe.pull(0)) is not None:
            for i in got.anno("user").tolist():
                out[i] = port
    return out, r


def matches(pattern: str, packets: list[Pkt]) -> list[bool]:
    out, _ = run_classifier("IPClassifier", [pattern], [p.raw for p in packets], 1)
    return [o == 0 for o in out]


# --------------------------------------------------------------------------- oracle atoms

Oracle = Callable[[Pkt], bool]

_OPS = ["", "== ", "!= ", "< ", "> ", "<= ", ">= "]


def num_cmp(op: str, x: int, n: int) -> bool:
    return {"": x == n, "== ": x == n, "!= ": x != n, "< ": x < n, "> ": x > n,
            "<= ": x <= n, ">= ": x >= n}[op]


def click_op(op: str, n: int) -> tuple[Callable[[int], bool], bool]:
    """Click's normalization: every operator is == or > on each field, then maybe negated
    (``x < N`` is ``!(x > N-1)``; ``x <= N`` is ``!(x > N)``)."""
    base = {"": ("eq", n, False), "== ": ("eq", n, False), "!= ": ("eq", n, True),
            "> ": ("gt", n, False), "< ": ("gt", n - 1, True), ">= ": ("gt", n - 1, False),
            "<= ": ("gt", n, True)}[op]
    kind, v, neg = base
    return ((lambda x: x == v) if kind == "eq" else (lambda x: x > v)), neg


def sd_combine(sd: str, a: bool, b: bool) -> bool:
    return {"": a or b, "src ": a, "dst ": b, "src or dst ": a or b, "src and dst ": a and b}[sd]


SD = st.sampled_from(["", "src ", "dst ", "src or dst ", "src and dst "])


@st.composite
def host_atom(draw: st.DrawFn) -> tuple[str, Oracle]:
    sd, h, ipq = draw(SD), draw(st.sampled_from(HOSTS)), draw(st.sampled_from(["", "ip "]))
    neg = draw(st.booleans())
    text = f"{sd}{ipq}host {'!= ' if neg else ''}{h}"
    return text, lambda p: sd_combine(sd, p.ip.src == h, p.ip.dst == h) != neg


@st.composite
def net_atom(draw: st.DrawFn) -> tuple[str, Oracle]:
    sd = draw(SD)
    text_net, net = draw(st.sampled_from([
        ("10.0.0.0/8", "10.0.0.0/8"), ("10.1.0.0/16", "10.1.0.0/16"),
        ("192.168.0.0/255.255.0.0", "192.168.0.0/16"),
        ("10.0.0.0 mask 255.255.255.0", "10.0.0.0/24"), ("0.0.0.0/0", "0.0.0.0/0")]))
    nw = ipaddress.ip_network(net)
    return (f"{sd}net {text_net}",
            lambda p: sd_combine(sd, ipaddress.ip_address(p.ip.src) in nw,
                                 ipaddress.ip_address(p.ip.dst) in nw))


PROTO_ATOMS: list[tuple[str, Oracle]] = [
    ("tcp", lambda p: p.ip.proto == 6),
    ("udp", lambda p: p.ip.proto == 17),
    ("icmp", lambda p: p.ip.proto == 1),
    ("ip proto 47", lambda p: p.ip.proto == 47),
    ("ip proto tcp", lambda p: p.ip.proto == 6),
    ("ip proto != 17", lambda p: p.ip.proto != 17),
    ("ip proto > 10", lambda p: p.ip.proto > 10),
    ("ip proto tcpudp", lambda p: p.ip.proto in (6, 17)),
    ("true", lambda p: True),
    ("false", lambda p: False),
]


@st.composite
def port_atom(draw: st.DrawFn) -> tuple[str, Oracle]:
    sd = draw(SD)
    pq = draw(st.sampled_from(["", "tcp ", "udp "]))
    op = draw(st.sampled_from(_OPS))
    if op == "" and draw(st.booleans()):
        word, n = draw(st.sampled_from([("www", 80), ("dns", 53), ("ssh", 22), ("https", 443),
                                        ("domain", 53), ("mdns_not", 0)][:5]))
    else:
        n = draw(st.sampled_from(PORTS))
        word = str(n)
    quals = draw(st.sampled_from([f"{sd}{pq}", f"{pq}{sd}"]))
    text = f"{quals}port {op}{word}"
    protos = {"": (6, 17), "tcp ": (6,), "udp ": (17,)}[pq]
    test, neg = click_op(op, n)

    def oracle(p: Pkt) -> bool:
        l4 = p.l4(TCP) or p.l4(UDP)
        if l4 is None or p.ip.proto not in protos:
            return False
        return sd_combine(sd, test(l4.sport), test(l4.dport)) != neg

    return text, oracle


@st.composite
def tcp_atom(draw: st.DrawFn) -> tuple[str, Oracle]:
    kind = draw(st.sampled_from(["opt", "bare", "win", "bracket"]))
    if kind in ("opt", "bare"):
        name, bit = draw(st.sampled_from([("syn", 2), ("fin", 1), ("ack", 16), ("rst", 4),
                                          ("psh", 8), ("urg", 32)]))
        text = f"tcp opt {name}" if kind == "opt" else name
        return text, lambda p: (t := p.l4(TCP)) is not None and int(t.flags) & bit == bit
    if kind == "win":
        op, n = draw(st.sampled_from(_OPS)), draw(st.sampled_from(WINDOWS + [1]))
        return (f"tcp win {op}{n}",
                lambda p: (t := p.l4(TCP)) is not None and num_cmp(op, t.window, n))
    mask = draw(st.sampled_from([18, 2, 63]))
    return (f"tcp[13] & {mask} != 0",
            lambda p: (t := p.l4(TCP)) is not None and int(t.flags) & mask != 0)


@st.composite
def icmp_atom(draw: st.DrawFn) -> tuple[str, Oracle]:
    word, n = draw(st.sampled_from([("echo", 8), ("echo-reply", 0), ("unreachable", 3),
                                    ("timeexceeded", 11), ("timestamp", 13), ("8", 8), ("3", 3)]))
    form = draw(st.sampled_from(["icmp type ", "type ", ""]))
    if form == "" and word in ("echo", "8", "3"):  # "echo" alone is ambiguous (port 7)
        form = "icmp type "
    op = draw(st.sampled_from(["", "!= ", "> "])) if word.isdigit() else ""
    return (f"{form}{op}{word}",
            lambda p: (t := p.l4(ICMP)) is not None and num_cmp(op, t.type, n))


@st.composite
def field_atom(draw: st.DrawFn) -> tuple[str, Oracle]:
    name, get, values = draw(st.sampled_from([
        ("ip ttl", lambda p: p.ip.ttl, [0, 1, 2, 5, 64, 255]),
        ("ip tos", lambda p: p.ip.tos, [0, 3, 128, 255]),
        ("ip id", lambda p: p.ip.id, [0, 7, 4096, 65535]),
        ("ip hl", lambda p: p.ip.ihl, [5, 6]),
        ("ip vers", lambda p: p.ip.version, [4, 6]),
        ("ip dscp", lambda p: p.ip.tos >> 2, [0, 10, 63]),
        ("ip len", lambda p: p.ip.len, [20, 28, 40, 50]),
        ("ip[8]", lambda p: p.ip.ttl, [0, 5, 64]),
        ("ip[9:1]", lambda p: p.ip.proto, [1, 6, 17]),
        ("ip[12:4]", lambda p: int(ipaddress.ip_address(p.ip.src)), [167772161, 134744072]),
        ("ip[4,5]", lambda p: p.ip.id, [7, 65535]),
    ]))
    op, n = draw(st.sampled_from(_OPS)), draw(st.sampled_from(values))
    return f"{name} {op}{n}", lambda p: num_cmp(op, get(p), n)


FLAG_ATOMS: list[tuple[str, Oracle]] = [
    ("ip frag", lambda p: bool(int(p.ip.flags) & 1) or p.ip.frag != 0),
    ("ip unfrag", lambda p: not (int(p.ip.flags) & 1) and p.ip.frag == 0),
    ("frag", lambda p: bool(int(p.ip.flags) & 1) or p.ip.frag != 0),
    ("ip ect", lambda p: p.ip.tos & 3 != 0),
    ("ip ce", lambda p: p.ip.tos & 3 == 3),
    ("udp[4:2] > 20", lambda p: (u := p.l4(UDP)) is not None and u.len > 20),
    ("transp[0:2] == 80", lambda p: p.transp(0, 2) == 80),
    ("icmp[0] == 8", lambda p: p.ip.proto == 1 and p.transp(0, 1) == 8),
    ("src port 80 || dst port 80", lambda p: (t := p.l4(TCP) or p.l4(UDP)) is not None
     and 80 in (t.sport, t.dport)),
]

ATOMS = st.one_of(host_atom(), net_atom(), port_atom(), tcp_atom(), icmp_atom(), field_atom(),
                  st.sampled_from(PROTO_ATOMS), st.sampled_from(FLAG_ATOMS))


def expressions(max_leaves: int = 6) -> st.SearchStrategy[tuple[str, Oracle]]:
    def extend(children: st.SearchStrategy) -> st.SearchStrategy:
        def combine(draw: st.DrawFn) -> tuple[str, Oracle]:
            kind = draw(st.sampled_from(["and", "or", "not", "cond"]))
            a_text, a = draw(children)
            if kind == "not":
                word = draw(st.sampled_from(["not ", "!", "! "]))
                return f"{word}({a_text})", lambda p: not a(p)
            b_text, b = draw(children)
            if kind == "cond":
                c_text, c = draw(children)
                return (f"({c_text}) ? ({a_text}) : ({b_text})",
                        lambda p: a(p) if c(p) else b(p))
            if kind == "and":
                word = draw(st.sampled_from([" and ", " && ", " "]))
                return f"({a_text}){word}({b_text})", lambda p: a(p) and b(p)
            word = draw(st.sampled_from([" or ", " || "]))
            return f"({a_text}){word}({b_text})", lambda p: a(p) or b(p)

        return st.composite(combine)()

    return st.recursive(ATOMS, extend, max_leaves=max_leaves)


# --------------------------------------------------------------------------- properties


@settings(max_examples=250)
@given(expr=expressions())
def test_random_expressions_agree_with_scapy_oracle(expr):
    text, oracle = expr
    assert matches(text, POOL) == [oracle(p) for p in POOL], text


@settings(max_examples=60)
@given(params=st.lists(packet_params, min_size=1, max_size=25),
       exprs=st.lists(expressions(max_leaves=3), min_size=1, max_size=4))
def test_first_matching_pattern_wins_on_random_packets(params, exprs):
    packets = [build_packet(**kw) for kw in params]
    texts = [t for t, _ in exprs]
    out, r = run_classifier("IPClassifier", texts, [p.raw for p in packets], len(texts))
    want = [next((i for i, (_, f) in enumerate(exprs) if f(p)), -1) for p in packets]
    assert out == want, texts
    assert r.find("c").drops.get("no pattern matched", 0) == want.count(-1)


@st.composite
def rule_lists(draw: st.DrawFn) -> list[str]:
    """Rules where later ones often repeat, narrow or combine earlier ones: the cases an
    unreachable output comes from."""
    rules = [draw(expressions(max_leaves=2))[0]]
    for _ in range(draw(st.integers(1, 4))):
        a = draw(st.sampled_from([r for r in rules if r != "-"]))
        b = draw(expressions(max_leaves=2))[0]
        rules.append(draw(st.sampled_from([a, b, f"({a}) and ({b})", f"({b}) and ({a})",
                                           f"({a}) or ({b})", f"not ({a})", "-"])))
    return rules


@settings(max_examples=150)
@given(rules=rule_lists())
def test_an_output_said_to_match_nothing_is_never_reached(rules):
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with redirect_stderr(err):
        out, r = run_classifier("IPClassifier", rules, [p.raw for p in POOL], len(rules))
    flagged = [int(m) for m in re.findall(r"output (\d+) matches no packets", err.getvalue())]
    from routebricks.elements.ip.ipfilter_reach import unreachable_rules

    assert flagged == unreachable_rules(r.find("c").compiled.trees)
    for i in flagged:
        assert i not in out, (i, rules)  # a warning is always true


@pytest.mark.parametrize(("rules", "unreachable"), [
    # What C++ Click (built from kohler/click) warns about for the same rules ...
    (["tcp", "tcp port 80", "udp", "src host 1.2.3.4 and tcp", "tcp or udp", "-"], [1, 3, 4]),
    (["ip proto 6", "tcp", "ip ttl > 5", "ip ttl > 7", "not tcp", "not ip proto 6", "-"],
     [1, 3, 5, 6]),
    # ... and where it says nothing: ttl < 2 after ttl < 3, ttl = 9 after ttl > 5.
    (["ip ttl < 3", "ip ttl < 2", "ip ttl > 5", "ip ttl = 9"], [1, 3]),
    (["src net 10.0.0.0/8", "src net 10.1.0.0/16", "src net 11.0.0.0/8"], [1]),
    (["tcp port 80", "tcp", "udp port 53", "udp"], []),
])
def test_outputs_that_match_no_packets(rules, unreachable, capsys):
    run_classifier("IPClassifier", rules, [], len(rules))
    err = capsys.readouterr().err
    assert [int(m) for m in re.findall(r"output (\d+) matches no packets", err)] == unreachable


# --------------------------------------------------------------------------- semantics

SAMPLE = [
    build_packet("tcp", "10.0.0.1", "8.8.8.8", 64, 0, 1, "", 0, False, 1234, 80, 0x02, 512, 0, 0),
    build_packet("tcp", "8.8.8.8", "10.0.0.1", 64, 0, 2, "", 0, True, 80, 1234, 0x12, 512, 0, 3),
    build_packet("udp", "10.0.0.2", "8.8.8.8", 1, 0, 3, "", 0, False, 5353, 53, 0, 0, 0, 4),
    build_packet("tcp", "10.0.0.1", "8.8.8.8", 64, 0, 4, "", 185, False, 1234, 80, 2, 512, 0, 0),
    build_packet("icmp", "10.1.2.3", "10.0.0.1", 64, 3, 5, "DF", 0, False, 0, 0, 0, 0, 8, 0),
    build_packet("icmp", "10.0.0.1", "10.1.2.3", 64, 0, 6, "", 0, False, 0, 0, 0, 0, 0, 0),
    build_packet("udp", "192.168.1.1", "10.0.0.2", 200, 0, 7, "MF", 0, False, 81, 81, 0, 0, 0, 9),
    build_packet("gre", "10.0.0.1", "8.8.8.8", 64, 0, 8, "", 0, False, 0, 0, 0, 0, 0, 0),
]


@pytest.mark.parametrize(("pattern", "expected"), [
    ("tcp port 80", [1, 1, 0, 0, 0, 0, 0, 0]),
    ("src port 80 or 81", [0, 1, 0, 0, 0, 0, 1, 0]),  # "81" inherits "src port"
    ("dst tcp port 80 or 1234", [1, 1, 0, 0, 0, 0, 0, 0]),
    ("port != 80", [0, 0, 1, 0, 0, 0, 1, 0]),  # TCP/UDP first fragments only
    ("not port 80", [0, 0, 1, 1, 1, 1, 1, 1]),
    ("port www", [1, 1, 0, 0, 0, 0, 0, 0]),
    ("udp port dns", [0, 0, 1, 0, 0, 0, 0, 0]),
    ("src port <= 1234", [1, 1, 0, 0, 0, 0, 1, 0]),
    ("port <= 1234", [1, 1, 0, 0, 0, 0, 1, 0]),  # both ports, as in Click
    ("port > 1000", [1, 1, 1, 0, 0, 0, 0, 0]),
    ("syn", [1, 1, 0, 0, 0, 0, 0, 0]),
    ("tcp opt ack", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("syn && !ack", [1, 0, 0, 0, 0, 0, 0, 0]),
    ("icmp type echo", [0, 0, 0, 0, 1, 0, 0, 0]),
    ("echo-reply", [0, 0, 0, 0, 0, 1, 0, 0]),
    ("icmp type != echo-reply", [0, 0, 0, 0, 1, 0, 0, 0]),
    ("ip frag", [0, 0, 0, 1, 0, 0, 1, 0]),
    ("unfrag && tcp", [1, 1, 0, 0, 0, 0, 0, 0]),
    ("host 10.0.0.1", [1, 1, 0, 1, 1, 1, 0, 1]),
    ("src host 10.0.0.1 or 10.0.0.2", [1, 0, 1, 1, 0, 1, 0, 1]),  # src carries over
    ("10.0.0.0/8 && !src net 10.0.0.0/24", [0, 1, 0, 0, 1, 0, 1, 0]),
    ("src net 10.0.0.0 mask 255.255.255.0", [1, 0, 1, 1, 0, 1, 0, 1]),
    ("dst 8.8.8.8 tcp", [1, 0, 0, 1, 0, 0, 0, 0]),  # juxtaposition is "and"
    ("ip ttl < 2 || ip ttl >= 200", [0, 0, 1, 0, 0, 0, 1, 0]),
    ("ip tos & 3 == 3", [0, 0, 0, 0, 1, 0, 0, 0]),
    ("ip hl > 5", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("ip[9] == 47", [0, 0, 0, 0, 0, 0, 0, 1]),
    ("tcp[13] & 0x12 == 0x12", [0, 1, 0, 0, 0, 0, 0, 0]),
    ("ip proto 1 or 17", [0, 0, 1, 0, 1, 1, 1, 0]),  # "17" inherits "ip proto"
    ("(tcp or udp) and not (src host 10.0.0.1)", [0, 1, 1, 0, 0, 0, 1, 0]),
    ("icmp ? icmp type echo : tcp", [1, 1, 0, 1, 1, 0, 0, 0]),
    ("-", [1] * 8),
    ("any", [1] * 8),
    ("true && false", [0] * 8),
])
def test_click_semantics(pattern, expected):
    assert matches(pattern, SAMPLE) == [bool(x) for x in expected]


def test_transport_tests_need_the_bytes():
    full = SAMPLE[0].raw
    short = [full[:22], full[:24], full[:34], full[:8]]  # sport; ports; ports+flags; no ttl
    pk = [Pkt(b, IP(full)) for b in short]
    assert matches("src port 1234", pk) == [True, True, True, False]
    assert matches("dst port 80", pk) == [False, True, True, False]
    assert matches("not dst port 80", pk) == [True, False, False, True]
    assert matches("syn", pk) == [False, False, True, False]
    assert matches("ip ttl 64", pk) == [True, True, True, False]


def test_ip_header_found_through_the_network_header_annotation(tmp_path):
    frames = [bytes(Ether() / IP(p.raw)) for p in SAMPLE]
    out, _ = run_classifier("IPClassifier", ["tcp port 80", "icmp", "-"], frames, 3,
                            nh_offset=14)
    assert out == [0, 0, 2, 2, 1, 1, 2, 2]
    # And through a pcap, after Strip(14).
    pcap = tmp_path / "in.pcap"
    wrpcap(str(pcap), [Ether() / IP(p.raw) for p in SAMPLE])
    r = Router.from_text(
        f"FromDump(\"{pcap}\", STOP true) -> Strip(14) -> c :: IPClassifier(tcp port 80, icmp,"
        " -); c[0] -> c0 :: Counter -> Discard; c[1] -> c1 :: Counter -> Discard;"
        " c[2] -> c2 :: Counter -> Discard;")
    r.run(time_limit=10)
    assert [r.find(f"c{i}").count for i in range(3)] == [2, 2, 4]


def test_ipfilter_actions():
    raws = [p.raw for p in SAMPLE]
    out, r = run_classifier(
        "IPFilter", ["drop src host 10.1.2.3", "1 icmp", "allow tcp port 80",
                     "deny ip frag", "2 udp"], raws, 3)
    assert out == [2 - 2, 0, 2, -1, -1, 1, -1, -1]
    assert r.find("c").drops == {"dropped by filter": 3, "no pattern matched": 1}
    assert "output 1" in r.read_handler("c.program") and "-> drop" in r.read_handler("c.program")
    out, _ = run_classifier("IPFilter", ["allow"], raws, 1)
    assert out == [0] * 8
    out, _ = run_classifier("IPFilter", ["allow all"], raws, 1)
    assert out == [0] * 8
    # Outputs: as many as the highest output number an action names.
    with pytest.raises(ConfigError, match="output 2 is not connected"):
        Router.from_text("Idle -> c :: IPFilter(2 tcp, allow udp); c[0] -> Discard;"
                         " c[1] -> Discard;")


def test_program_handler_is_readable():
    _, r = run_classifier("IPClassifier", ["src host 10.0.0.1 && tcp dst port www", "-"], [], 2)
    prog = r.read_handler("c.program").splitlines()
    assert prog[0].startswith("0: (ip src == 10.0.0.1 && ip proto == 6")
    assert "transp dst port == 80" in prog[0] and prog[0].endswith("-> output 0")
    assert prog[1] == "1: true -> output 1"


@pytest.mark.parametrize(("pattern", "word"), [
    ("tcp port foo", "foo"),
    ("src host", "src host"),
    ("port 99999", "99999"),
    ("echo", "echo"),
    ("tcp and", "and"),
    ("(tcp or udp", "udp"),
    ("tcp )", ")"),
    ("ip ttl > ", "ttl"),
    ("host 1.2.3.4 > 5", ">"),
    ("icmp type www", "www"),
    ("ip ttl 300", "300"),
    ("tcp opt syn > 1", "> 1"),
    ("src src host 1.2.3.4", "src"),
    ("ip[1:8] == 3", "1:8"),
    ("ip[3:2] == 3", "[3:2]"),
    ("not", "not"),
    ("tcp port 80 ? udp", "udp"),
    ("ip dscp & 0x100 == 1", "0x100"),
    ("ether host 1:2:3:4:5:6", "ether"),
    ("udp tcp", "tcp"),
    ("ip proto != tcpudp", "tcpudp"),
])
def test_parse_errors_name_the_pattern_and_word(pattern, word):
    with pytest.raises(ConfigError) as e:
        Router.from_text(f"Idle -> c :: IPClassifier(tcp, \"{pattern}\"); c[0] -> Discard;"
                         " c[1] -> Discard;")
    msg = str(e.value)
    assert "pattern 1" in msg and word in msg, msg


def test_ipfilter_errors():
    with pytest.raises(ConfigError, match="unknown slot ID 'permit'"):
        Router.from_text("Idle -> c :: IPFilter(permit tcp); c[0] -> Discard;")
    with pytest.raises(ConfigError, match=r"pattern 0 \('allow tcp port'\).*'port'"):
        Router.from_text("Idle -> c :: IPFilter(allow tcp port); c[0] -> Discard;")


def test_many_negations_configure_quickly():
    # Sixteen negated conjuncts: the prover's budget bounds the search (it once grew as k!).
    rule = " and ".join(f"not src host 10.0.0.{i}" for i in range(16))
    from routebricks.elements.ip.ipfilter_parse import parse_pattern, tokenize
    from routebricks.elements.ip.ipfilter_reach import unreachable_rules

    assert unreachable_rules([parse_pattern(tokenize("tcp")), parse_pattern(tokenize(rule))]) == []
