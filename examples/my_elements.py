"""A user-written element, loaded by examples/bigpackets.click (see the README)."""

import numpy as np

from routebricks import Arg, Element, UInt, read_handler


class CountBig(Element):
    """Counts packets longer than THRESHOLD bytes; passes every packet on unchanged.

    Ports: 1 input, 1 output.
    Arguments: THRESHOLD (unsigned, positional, default 1000).
    Behaviour: one vectorized comparison per batch.
    Handlers: big (read): packets longer than THRESHOLD so far.
    Example: FromDump(in.pcap) -> b :: CountBig(500) -> Discard;
    """

    port_count = "1/1"
    ARGS = (Arg("THRESHOLD", UInt, 1000, positional=True),)
    big = 0

    def process(self, batch):
        self.big += int(np.count_nonzero(batch.length > self.threshold))
        return batch

    @read_handler("big")
    def h_big(self):
        return self.big
