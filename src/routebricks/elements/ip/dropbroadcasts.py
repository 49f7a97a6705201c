"""DropBroadcasts: drops packets that arrived as link-level broadcasts or multicasts."""

from __future__ import annotations

import numpy as np

from routebricks.elements.ip.annotations import link_broadcast
from routebricks.engine.element import Element, read_handler
from routebricks.packet.batch import PacketBatch


class DropBroadcasts(Element):
    """Drops packets that arrived as link-level broadcasts or multicasts.

    Ports: 1 input, 1 output (agnostic); optional output 1 (push) for those packets.
    Arguments: none.
    Behaviour: looks at the ``packet_type`` annotation (Click's packet type annotation,
        set by device readers: 1 broadcast, 2 multicast). Such packets go to output 1 if it
        is connected, else are dropped as "link-level broadcast"; the rest pass. A batch
        without the annotation passes whole after one dictionary lookup. Used to implement
        RFC 1812's rule that routers do not forward link-level broadcasts.
    Handlers:
        drops (read): packets dropped or sent to output 1, as Click.
    Example:
        rt[1] -> DropBroadcasts -> PaintTee(1) -> IPGWOptions(18.26.4.24) -> ...;
    See also: ICMPError, PaintTee
    """

    GROUP = "standard"  # Click keeps it in elements/standard
    port_count = "1/1-2"
    processing = "a/ah"

    def configure(self) -> None:
        self.count = 0

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        m = link_broadcast(batch) if len(batch) else None
        if m is None:
            return batch
        k = int(np.count_nonzero(m))
        self.count += k
        self.emit_or_drop(1, batch.select(m), "link-level broadcast")
        return None if k == len(batch) else batch.select(~m)

    @read_handler("drops", combine="sum")
    def h_drops(self) -> int:
        """Packets dropped or sent to output 1."""
        return self.count
