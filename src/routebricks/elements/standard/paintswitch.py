"""PaintSwitch: sends packets to the output their paint annotation names."""

from __future__ import annotations

import numpy as np

from routebricks.elements.standard.paint import annotation_name, check_byte_annotation
from routebricks.engine.args import Arg, Word
from routebricks.engine.element import Element
from routebricks.packet.batch import PacketBatch

#: Paint value that sends a packet to every output (Click's PaintSwitch).
BROADCAST = 255


class PaintSwitch(Element):
    """Sends each packet to the output numbered by its paint annotation.

    Ports: 1 push input; any number of push outputs.
    Arguments:
        ANNO (annotation name, positional, default PAINT): the annotation to read; Click's
            names are accepted in any case (``PAINT`` is the ``paint`` column).
    Behaviour: a packet painted k goes to output k. A packet painted 255 goes to every
        output: outputs 0..n-2 get copies (``batch.copy()``) and output n-1 the original, as
        in Click. A packet painted with a number that is not an output is dropped and
        counted as "no such output". Packets without the annotation count as painted 0.
        The batch is split by output without copying packet bytes (except for 255).
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        ... -> Paint(1) -> ps :: PaintSwitch;
        ps[0] -> Discard;
        ps[1] -> ToDump(painted.pcap);
    See also: Paint, Classifier
    """

    port_count = "1/-"
    processing = "h/h"
    ARGS = (Arg("ANNO", Word, "PAINT", positional=True),)

    def configure(self) -> None:
        self.anno_name = annotation_name(self.anno)
        check_byte_annotation(self, self.anno_name)

    def push(self, port: int, batch: PacketBatch) -> None:
        nout = self.noutputs
        if not len(batch):
            return
        if nout == 0:
            self.drop(batch, "no such output")
            return
        col = batch.anno_or_none(self.anno_name)
        if col is None:
            self.emit_or_drop(0, batch, "no such output")
            return
        paint = col.astype(np.int64)
        bcast = paint == BROADCAST
        bad = ((paint < 0) | (paint >= nout)) & ~bcast
        if bad.any():
            self.drop(int(np.count_nonzero(bad)), "no such output")
            keep = ~bad
            batch, paint, bcast = batch.select(keep), paint[keep], bcast[keep]
            if not len(batch):
                return
        if not bcast.any():
            for p, b in enumerate(batch.split(paint, nout)):
                if b is not None:
                    self.emit(p, b)
            return
        # Broadcast packets go everywhere: build every output's batch, copy all but the last
        # (so no two outputs share packet bytes), then push in port order.
        outs: list[PacketBatch | None] = []
        for p in range(nout):
            m = (paint == p) | bcast
            outs.append(batch.select(m))
        outs = [b.copy() if b is not None and p < nout - 1 else b for p, b in enumerate(outs)]
        for p, b in enumerate(outs):
            if b is not None and len(b):
                self.emit(p, b)
