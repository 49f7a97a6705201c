"""MarkIPHeader: sets the network-header annotation."""

from __future__ import annotations

from routebricks.engine.args import Arg, UInt
from routebricks.engine.element import Element
from routebricks.packet.batch import PacketBatch


class MarkIPHeader(Element):
    """Marks packets as IP packets by setting the network-header annotation.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        OFFSET (unsigned, positional, default 0): where the IP header starts in the packet
            data.
    Behaviour: sets every packet's ``nh`` annotation to its data start plus OFFSET (one
        vectorized store). Like Click's, it checks nothing: it neither checks lengths, nor
        trims the packet to the IP length, nor sets the destination annotation; use
        CheckIPHeader for that.
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        FromDump(trace.pcap) -> MarkIPHeader(14) -> DecIPTTL -> Discard;
    See also: CheckIPHeader, Strip
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (Arg("OFFSET", UInt, 0, positional=True),)

    def process(self, batch: PacketBatch) -> PacketBatch:
        if len(batch):
            batch.annos["nh"] = batch.off + self.offset
        return batch
