"""RandomSwitch: sends each packet to a random output."""

from __future__ import annotations

import numpy as np

from routebricks.engine.element import Element
from routebricks.packet.batch import PacketBatch


class RandomSwitch(Element):
    """Sends each packet to an output chosen uniformly at random.

    Ports: 1 push input; 1 or more push outputs.
    Arguments: none.
    Behaviour: draws one output number per packet (numpy's default generator, seeded from
        the operating system) and splits the batch by output without copying packet bytes.
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        InfiniteSource(LIMIT 1000) -> rs :: RandomSwitch;
        rs[0] -> Counter -> Discard;
        rs[1] -> Counter -> Discard;
    See also: RoundRobinSwitch, HashSwitch
    """

    port_count = "1/1-"
    processing = "h/h"

    def configure(self) -> None:
        self.rng = np.random.default_rng()

    def push(self, port: int, batch: PacketBatch) -> None:
        n = len(batch)
        nout = self.noutputs
        if not n:
            return
        if nout == 1:
            self.emit(0, batch)
            return
        out = self.rng.integers(0, nout, n)
        for p, b in enumerate(batch.split(out, nout)):
            if b is not None:
                self.emit(p, b)
