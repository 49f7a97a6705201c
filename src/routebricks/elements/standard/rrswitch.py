"""RoundRobinSwitch: deals packets out to its outputs in turn."""

from __future__ import annotations

import numpy as np

from routebricks.engine.element import Element, write_handler
from routebricks.packet.batch import PacketBatch


class RoundRobinSwitch(Element):
    """Sends packets to its outputs in turn: the first to output 0, the next to 1, and so on.

    Ports: 1 push input; 1 or more push outputs.
    Arguments: none.
    Behaviour: packet i of the stream goes to output i mod n. The turn carries over from
        one batch to the next, so the pattern does not restart with each batch. A batch is
        split by output in one vectorized step, without copying packet bytes.
    Handlers:
        reset (write): start again at output 0.
    Example:
        FromDump(in.pcap) -> rr :: RoundRobinSwitch;
        rr[0] -> ToDump(a.pcap);
        rr[1] -> ToDump(b.pcap);
    See also: RandomSwitch, HashSwitch
    """

    port_count = "1/1-"
    processing = "h/h"

    def configure(self) -> None:
        self.next = 0

    def push(self, port: int, batch: PacketBatch) -> None:
        n = len(batch)
        nout = self.noutputs
        if not n:
            return
        if nout == 1:
            self.emit(0, batch)
            return
        out = (np.arange(self.next, self.next + n, dtype=np.int64)) % nout
        self.next = (self.next + n) % nout
        for p, b in enumerate(batch.split(out, nout)):
            if b is not None:
                self.emit(p, b)

    @write_handler("reset")
    def h_reset(self, _: str) -> None:
        """Start again at output 0."""
        self.next = 0
