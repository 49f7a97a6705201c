"""Paint: sets a packet's paint annotation."""

from __future__ import annotations

import numpy as np

from routebricks.engine.args import Arg, IntRange, Word
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import ANNOTATIONS, PacketBatch

_COLOR = IntRange(0, 255, "color from 0 to 255")


def annotation_name(text: str) -> str:
    """The annotation column an ANNO argument names: Click's upper-case names (``PAINT``) map
    to our lower-case columns (``paint``); other names are used as given, lower-cased."""
    return text.strip().lower()


def check_byte_annotation(element: Element, name: str) -> None:
    """Reject an annotation column that cannot hold a byte value (0..255)."""
    dt = ANNOTATIONS.get(name)
    if dt is not None and (dt.kind not in "iu" or np.iinfo(dt).max < 255):
        raise element.error(f"annotation {name!r} cannot hold a color (0 to 255)")


class Paint(Element):
    """Sets every packet's paint annotation to COLOR.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        COLOR (integer 0 to 255, positional, required): the color.
        ANNO (annotation name, positional, default PAINT): the annotation to set; Click's
            names are accepted in any case (``PAINT`` is the ``paint`` column).
    Behaviour: writes COLOR into the annotation column for the whole batch (one vectorized
        store); packet data are untouched.
    Handlers:
        color (read/write): the color.
    Example:
        FromDump(a.pcap) -> Paint(1) -> q :: Queue;
        FromDump(b.pcap) -> Paint(2) -> q;
    See also: PaintSwitch
    """

    port_count = "1/1"
    processing = "a/a"
    PASSES_ALL = True
    ARGS = (
        Arg("COLOR", _COLOR, positional=True, required=True),
        Arg("ANNO", Word, "PAINT", positional=True),
    )

    def configure(self) -> None:
        self.anno_name = annotation_name(self.anno)
        check_byte_annotation(self, self.anno_name)

    def process(self, batch: PacketBatch) -> PacketBatch:
        if len(batch):
            batch.set_anno(self.anno_name, self.color)
        return batch

    @read_handler("color")
    def h_color(self) -> int:
        """The color."""
        return self.color

    @write_handler("color")
    def h_set_color(self, v: str) -> None:
        """Set the color (0 to 255)."""
        self.color = _COLOR.parse(v)
