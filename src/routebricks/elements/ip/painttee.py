"""PaintTee: copies packets of one paint color to a second output."""

from __future__ import annotations

import numpy as np

from routebricks.elements.standard.paint import annotation_name, check_byte_annotation
from routebricks.engine.args import Arg, IntRange, Word
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch

_COLOR = IntRange(0, 255, "color from 0 to 255")


class PaintTee(Element):
    """Sends every packet to output 0, and a copy of those painted COLOR to output 1.

    Ports: 1 input, 2 outputs: output 0 agnostic, output 1 push.
    Arguments:
        COLOR (integer 0 to 255, positional, required): the color to copy.
        ANNO (annotation name, positional, default PAINT): the annotation holding the color.
    Behaviour: one vectorized comparison finds the packets painted COLOR; they are copied
        (``select`` then ``copy``: a fresh pool, so the copy and the original never share
        bytes) and the copies are pushed to output 1 before the whole batch continues on
        output 0, as Click pushes each clone before returning the packet. Used with Paint
        and ICMPError to make redirects: a packet leaving on the interface it came in on.
    Handlers:
        color (read/write): the color.
    Example:
        FromDevice(eth1) -> Paint(1) -> ... -> rt;
        rt[1] -> pt :: PaintTee(1) -> ... -> ToDevice(eth1);
        pt[1] -> ICMPError(18.26.4.24, redirect, host) -> rt;
    See also: Paint, PaintSwitch, ICMPError
    """

    GROUP = "standard"  # Click keeps it in elements/standard
    port_count = "1/2"
    processing = "a/ah"
    ARGS = (
        Arg("COLOR", _COLOR, positional=True, required=True),
        Arg("ANNO", Word, "PAINT", positional=True),
    )

    def configure(self) -> None:
        self.anno_name = annotation_name(self.anno)
        check_byte_annotation(self, self.anno_name)

    def process(self, batch: PacketBatch) -> PacketBatch:
        col = batch.anno_or_none(self.anno_name) if len(batch) else None
        if col is None:
            if self.color == 0 and len(batch):  # an absent column reads as 0
                self.emit(1, batch.copy())
            return batch
        m = col == self.color
        k = int(np.count_nonzero(m))
        if k:
            self.emit(1, (batch if k == len(batch) else batch.select(m)).copy())
        return batch

    @read_handler("color")
    def h_color(self) -> int:
        """The color."""
        return self.color

    @write_handler("color")
    def h_set_color(self, v: str) -> None:
        """Set the color (0 to 255)."""
        self.color = _COLOR.parse(v)
