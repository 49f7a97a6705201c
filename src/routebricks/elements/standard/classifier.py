"""Classifier: sends packets to outputs by byte patterns (Click's Classifier)."""

from __future__ import annotations

import numpy as np

from routebricks.engine.element import Element, read_handler
from routebricks.packet.batch import PacketBatch
from routebricks.packet.classify import (
    CompiledPatterns,
    parse_click_pattern,
    unreachable_patterns,
)
from routebricks.packet.classify import warmup as classify_warmup


class Classifier(Element):
    """Classifies packets by contents: packet goes to the output of its first matching pattern.

    Ports: 1 push input; as many push outputs as patterns.
    Arguments:
        PATTERN... (positional, one per output): space-separated terms that must all hold,
            each ``[!]OFFSET/VALUE[%MASK]``: the bytes at decimal OFFSET, masked with hex
            MASK, equal hex VALUE (``?`` = any nibble; ``!`` negates). ``-`` matches every
            packet.
    Behaviour: one compiled pass over the batch computes each packet's output; the batch is
        then split by output without copying packet bytes. Terms that reach past the end of
        a packet do not match. Packets that match no pattern are dropped and counted as
        "no pattern matched". An output no packet can reach (every packet its pattern
        matches, an earlier one matches) is a configuration warning, as in Click.
    Handlers:
        drops (read): dropped packets by reason.
        program (read): the compiled patterns.
    Example:
        c :: Classifier(12/0806 20/0001,  // ARP queries
                        12/0806 20/0002,  // ARP replies
                        12/0800,          // IPv4
                        -);               // everything else
    See also: IPClassifier, HashSwitch
    """

    JIT_WARMUP = (classify_warmup,)

    port_count = "1/-"
    processing = "h/h"
    REST = True

    def configure(self) -> None:
        if not self.rest:
            raise self.error("needs at least one pattern", "e.g. Classifier(12/0800, -)")
        pats = []
        for i, text in enumerate(self.rest):
            try:
                pats.append(parse_click_pattern(text))
            except ValueError as e:
                raise self.error(f"pattern {i}: {e}") from None
        self.compiled = CompiledPatterns(pats)
        self.port_count = f"1/{len(pats)}"  # one output per pattern, as in Click
        for i in unreachable_patterns(pats):
            self.warn(f"output {i} matches no packets")

    def push(self, port: int, batch: PacketBatch) -> None:
        out = self.compiled.classify(batch.pool, batch.off, batch.length)
        counts = np.bincount(out + 1, minlength=self.noutputs + 1)
        if counts[0]:
            self.drop(int(counts[0]), "no pattern matched")
        n = len(batch)
        for p in range(self.noutputs):
            k = counts[p + 1]
            if k == n:  # the common case: the whole batch goes one way, nothing to split
                self.emit(p, batch)
                return
            if k:
                self.emit(p, batch.select(out == p))

    def program(self) -> str:
        lines = []
        for i, terms in enumerate(self.compiled.patterns):
            desc = " && ".join(
                f"{'!' if t.negate else ''}{t.offset}/{t.value.hex()}%{t.mask.hex()}"
                for t in terms) or "true"
            lines.append(f"{i}: {desc}")
        return "\n".join(lines)

    @read_handler("program")
    def h_program(self) -> str:
        """The compiled patterns, one line per output."""
        return self.program()
