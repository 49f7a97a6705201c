"""IPClassifier: classifies IP packets with tcpdump-like patterns (Click's IPClassifier)."""

from __future__ import annotations

from routebricks.elements.ip.ipfilter import IPFilter
from routebricks.elements.ip.ipfilter_eval import CompiledFilter
from routebricks.elements.ip.ipfilter_parse import tokenize
from routebricks.elements.ip.ipfilter_reach import unreachable_rules
from routebricks.elements.ip.ipfilter_tree import Node
from routebricks.engine.argtext import unquote


class IPClassifier(IPFilter):
    """Classifies IP packets by header fields: each goes to its first matching pattern's output.

    Ports: 1 push input; one push output per pattern.
    Arguments:
        PATTERN... (positional, one per output): a tcpdump-like expression. Tests:
            ``[src|dst|src and dst|src or dst] host ADDR``, ``... net ADDR/LEN`` (or
            ``ADDR mask MASK``; a bare ``ADDR`` or ``ADDR/LEN`` means host or net);
            ``ip proto P`` (a number or icmp, igmp, ipip, tcp, udp, tcpudp; a protocol
            name alone means ``ip proto``); ``[src|dst] [tcp|udp] port N`` (a number or a
            name: www, ssh, dns, ...); ``tcp opt syn|fin|ack|rst|psh|urg`` (or just
            ``syn``...); ``tcp win N``; ``icmp type T`` (a number or echo, echo-reply,
            unreachable, timeexceeded, ...); ``ip vers|hl|tos|dscp|len|id|ttl N``; ``ip
            frag``, ``ip unfrag``, ``ip ect``, ``ip ce``; ``ip[POS]``, ``ip[POS:LEN]``,
            ``tcp[...]``, ``udp[...]``, ``icmp[...]``, ``transp[...]`` (1 to 4 bytes within
            one aligned 4-byte word); ``true``, ``false``. Numeric tests take ``==`` (the
            default), ``!=``, and ``<``, ``>``, ``<=``, ``>=``, and a mask ``& MASK``
            before the operator. Combine with ``and``/``&&``/juxtaposition, ``or``/``||``,
            ``not``/``!``, parentheses and ``TEST ? A : B``; a test without qualifiers
            reuses the previous test's (``src port 80 or 81``). ``-``, ``any`` and
            ``all`` match every packet.
    Behaviour: as IPFilter, with pattern i sending to output i: fields gathered once per
        batch at the IP header (network-header annotation, else the start of the data),
        each pattern evaluated over the whole batch with numpy; port, TCP flag/window and
        ICMP type tests hold only for first fragments of their protocol; as in Click,
        ``port != N`` and ``port < N`` apply to both ports of TCP/UDP packets only, and
        ``src or dst port <= N`` means both are. Packets matching no pattern are dropped
        and counted as "no pattern matched". A pattern that does not parse is a
        configuration error naming the pattern and the offending word. An output that
        matches no packet (an earlier pattern always matches first) is a configuration
        warning where that can be proven, as in Click.
    Handlers:
        program (read): each pattern's compiled test, one line per output.
    Example:
        IPClassifier(tcp dst port www, udp port dns or dns, icmp type echo, -);
    See also: IPFilter, Classifier, CheckIPHeader
    """

    def configure(self) -> None:
        if not self.rest:
            raise self.error("needs at least one pattern", "e.g. IPClassifier(tcp, udp, -)")
        trees: list[Node] = []
        self.patterns = []
        for i, arg in enumerate(self.rest):
            text = unquote(arg)
            words = tokenize(text)
            if not words:
                raise self.error(f"empty pattern {i}", "use '-' to match every packet")
            trees.append(self.compile_pattern(i, text, words))
            self.patterns.append(text.strip())
        self.port_count = f"1/{len(trees)}"  # one output per pattern, as in Click
        self.compiled = CompiledFilter(trees, list(range(len(trees))))
        for i in unreachable_rules(trees):
            self.warn(f"output {i} matches no packets")
