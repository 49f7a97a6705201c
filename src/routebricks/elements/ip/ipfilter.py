"""IPFilter: filters IP packets with tcpdump-like patterns (Click's IPFilter)."""

from __future__ import annotations

import numpy as np

from routebricks.elements.ip.ipfilter_eval import CompiledFilter
from routebricks.elements.ip.ipfilter_parse import parse_pattern, tokenize
from routebricks.elements.ip.ipfilter_tree import DROP, FilterParseError, Node, unparse
from routebricks.engine.argtext import unquote
from routebricks.engine.element import Element, read_handler
from routebricks.engine.graph import MAX_PORTS
from routebricks.errors import shown
from routebricks.packet.batch import PacketBatch


class IPFilter(Element):
    """Filters IP packets by header fields: each takes the action of its first matching rule.

    Ports: 1 push input; push outputs 0 to the highest output number used by an action
        (``allow`` uses output 0); more may be connected.
    Arguments:
        RULE... (positional): ``ACTION PATTERN`` each. ACTION is an output number,
            ``allow`` (output 0), or ``drop``/``deny`` (drop the packet). PATTERN is an
            IPClassifier expression (see there): e.g. ``src net 10.0.0.0/8 && tcp dst
            port www``, ``icmp type echo``, ``ip ttl < 2``; ``-``, ``any``, ``all`` or
            nothing match every packet. A pattern that does not parse is a configuration
            error naming the pattern and the offending word. Patterns nest parentheses,
            ``not`` and ``? :`` at most 100 deep (MAX_NESTING); output numbers are below
            65536.
    Behaviour: the packet's IP header is found by the network-header annotation (set by
        CheckIPHeader/MarkIPHeader), else at the start of the data; the transport header
        ``4 * hl`` bytes later. Every header field the rules use is gathered once per
        batch and each rule is evaluated as numpy expressions over the whole batch (no
        per-packet Python). Port, TCP flag/window and ICMP type tests hold only for first
        fragments (fragment offset 0) of the right protocol; a test on bytes a packet
        does not have is false (its negation true). Packets that match no rule, or a
        ``drop`` rule, are dropped and counted ("no pattern matched", "dropped by
        filter").
    Handlers:
        program (read): each rule's compiled test, one line per rule, as comparisons on
            ``ip[OFFSET:WIDTH]`` and ``transp[OFFSET:WIDTH]`` fields.
    Example:
        IPFilter(allow src host 10.0.0.1 && tcp dst port 22,
                 drop tcp,
                 1 icmp type echo,
                 allow all);
    See also: IPClassifier, Classifier, CheckIPHeader
    """

    port_count = "1/-"
    processing = "h/h"
    REST = True

    def configure(self) -> None:
        if not self.rest:
            raise self.error(
                "needs at least one rule", "e.g. IPFilter(allow tcp port 80, drop all)"
            )
        trees: list[Node] = []
        slots: list[int] = []
        self.patterns: list[str] = []
        for i, arg in enumerate(self.rest):
            text = unquote(arg)
            words = tokenize(text)
            slot = self.action_slot(i, text, words)
            trees.append(self.compile_pattern(i, text, words[1:]))
            slots.append(slot)
            self.patterns.append(text.strip())
        self.configure_outputs(slots)
        self.compiled = CompiledFilter(trees, slots)

    # ---- shared with IPClassifier
    def action_slot(self, i: int, text: str, words: list[str]) -> int:
        if not words:
            raise self.error(f"empty pattern {i}", "give ACTION PATTERN, e.g. 'allow tcp'")
        action = words[0]
        if action == "allow":
            return 0
        if action in ("drop", "deny"):
            return DROP
        if action.isascii() and action.isdigit():
            if len(action.lstrip("0")) > len(str(MAX_PORTS)) or int(action) >= MAX_PORTS:
                raise self.error(
                    f"pattern {i} ({shown(text)}): output {shown(action, 12)} is too large",
                    f"outputs are numbered from 0 to {MAX_PORTS - 1}",
                )
            return int(action)
        raise self.error(
            f"pattern {i} ({shown(text)}): unknown slot ID {shown(action, 20)}",
            "each rule starts with an output number, 'allow', 'drop' or 'deny'",
        )

    def compile_pattern(self, i: int, text: str, words: list[str]) -> Node:
        try:
            return parse_pattern(words)
        except FilterParseError as e:
            raise self.error(f"pattern {i} ({shown(text)}): {e}") from None

    def configure_outputs(self, slots: list[int]) -> None:
        top = max((s for s in slots if s >= 0), default=-1)
        self.port_count = f"1/{top + 1}-"

    def push(self, port: int, batch: PacketBatch) -> None:
        n = len(batch)
        if n == 0:
            return
        out = self.compiled.classify(batch)
        first = int(out[0])
        if (out == first).all():  # the common case: the whole batch goes one way
            if first >= 0:
                self.emit(first, batch)
            else:
                self.drop(n, "dropped by filter" if first == DROP else "no pattern matched")
            return
        counts = np.bincount(out + 2)  # DROP (-2) -> 0, no match (-1) -> 1, slot s -> s + 2
        if counts[0]:
            self.drop(int(counts[0]), "dropped by filter")
        if len(counts) > 1 and counts[1]:
            self.drop(int(counts[1]), "no pattern matched")
        for s in range(2, len(counts)):
            if counts[s]:
                self.emit(s - 2, batch.select(out == s - 2))

    def program(self) -> str:
        lines = []
        for i, (tree, slot) in enumerate(
            zip(self.compiled.trees, self.compiled.slots, strict=True)
        ):
            where = "drop" if slot == DROP else f"output {slot}"
            lines.append(f"{i}: {unparse(tree)} -> {where}")
        return "\n".join(lines)

    @read_handler("program")
    def h_program(self) -> str:
        """The compiled rules, one line per rule."""
        return self.program()
