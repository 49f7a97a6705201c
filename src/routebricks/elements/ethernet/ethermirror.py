"""EtherMirror: swaps the source and destination addresses of Ethernet headers."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routebricks.elements.ethernet.etherencap import ETHER_HEADER_LEN
from routebricks.engine.element import Element
from routebricks.packet.batch import PacketBatch

_SHORT = "shorter than an Ethernet header"


class EtherMirror(Element):
    """Swaps the source and destination addresses of every packet's Ethernet header.

    Ports: 1 input, 1 output (agnostic).
    Arguments: none.
    Behaviour: reads bytes 0-11 of every packet (destination, then source) in one pass
        and writes them back swapped, so a frame from A to B leaves from B to A; the type
        field and the rest of the packet are kept. Packets shorter than an Ethernet header
        (14 bytes) are dropped and counted as "shorter than an Ethernet header".
    Handlers: none of its own (drops: packets dropped, by reason).
    Example:
        FromDevice(eth0) -> EtherMirror -> Queue -> ToDevice(eth0);   // reflector
    See also: EtherRewrite, EtherEncap
    """

    port_count = "1/1"
    processing = "a/a"
    #: Every reason this element drops a packet for, and what it means.
    DROPS: ClassVar[dict[str, str]] = {
        _SHORT: "the packet is less than 14 bytes long: no whole Ethernet header to mirror",
    }

    def process(self, batch: PacketBatch) -> PacketBatch:
        batch = self.require_length(batch, ETHER_HEADER_LEN, _SHORT)
        if len(batch):
            addrs = batch.field_bytes(0, 12)  # (n, 12): destination, source
            batch.set_bytes(0, np.concatenate((addrs[:, 6:], addrs[:, :6]), axis=1))
        return batch
