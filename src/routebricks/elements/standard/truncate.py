"""Truncate and Pad: limit or extend packet length (Click's pair, sharing the extra-length
annotation)."""

from __future__ import annotations

import numpy as np

from routebricks.engine.args import MAX_PACKET, Arg, Bool, IntRange, PacketLength
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch, register_annotation

#: Click's EXTRA_LENGTH annotation: bytes a packet stands for beyond the bytes it holds
#: (Truncate adds the bytes it removes; Pad without LENGTH puts them back as zeros).
EXTRA_LENGTH = "extra_length"
register_annotation(EXTRA_LENGTH, np.uint32)

#: Truncate's LENGTH is Click's unsigned: any value at least the largest packet keeps all.
TruncateLength = IntRange(0, 2**32 - 1, "byte count")


class Truncate(Element):
    """Shortens packets to at most LENGTH bytes.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        LENGTH (unsigned, positional, required): the most bytes a packet keeps, from 0 to
            4294967295 (as Click's unsigned; beyond the largest packet nothing is cut).
        EXTRA_LENGTH (bool, keyword, default true): add the bytes removed to the packet's
            extra-length annotation (``extra_length``).
    Behaviour: a packet longer than LENGTH loses its last bytes (they become tailroom; no
        byte is copied); shorter packets pass unchanged. Truncate(0) leaves empty packets.
        Nothing is ever dropped.
    Handlers:
        nbytes (read/write): LENGTH; a write takes effect from the next batch.
    Example:
        FromDevice(eth0) -> Truncate(96) -> ToDump(heads.pcap);
    See also: Strip, Pad
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (
        Arg("LENGTH", TruncateLength, positional=True, required=True, attr="nbytes"),
        Arg("EXTRA_LENGTH", Bool, True),
    )

    def process(self, batch: PacketBatch) -> PacketBatch:
        if not len(batch):
            return batch
        cut = batch.length - self.nbytes
        long_ = cut > 0
        if not long_.any():
            return batch
        cut = np.where(long_, cut, 0)
        if self.extra_length:
            extra = batch.anno(EXTRA_LENGTH)
            batch.annos[EXTRA_LENGTH] = (extra + cut).astype(extra.dtype)
        batch.length = batch.length - cut
        # Room behind a packet grows by what it lost; the batch-wide bound stays the least.
        return batch

    @read_handler("nbytes")
    def h_nbytes(self) -> int:
        """LENGTH: the most bytes a packet keeps."""
        return self.nbytes

    @write_handler("nbytes")
    def h_set_nbytes(self, value: str) -> None:
        """Set LENGTH (an unsigned byte count)."""
        self.nbytes = TruncateLength.parse(value)


class Pad(Element):
    """Extends packets to at least LENGTH bytes.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        LENGTH (byte count, positional, default 0): the least length of a packet leaving,
            from 0 to 65535. 0 (or omitted) means: extend each packet by its extra-length
            annotation instead, as Click does.
        ZERO (bool, keyword, default true): set the added bytes to zero; false leaves
            whatever the pool held there (Click: "uninitialized").
    Behaviour: a packet shorter than LENGTH grows at its end to LENGTH bytes; without
        LENGTH, each packet grows by its ``extra_length`` annotation (what a Truncate
        removed), so Truncate then Pad restores the original length with zeros; a packet
        that would grow beyond 65535 bytes that way is dropped and counted as "padded
        length over 65535". Every packet leaves with ``extra_length`` 0. The batch is
        repacked (``ensure_room``) only when its tailroom is smaller than the largest
        growth.
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        ... -> Pad(60) -> ToDevice(eth0);   // Ethernet's minimum frame, without the CRC
    See also: Truncate, Strip
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (
        Arg("LENGTH", PacketLength, 0, positional=True, attr="nbytes"),
        Arg("ZERO", Bool, True),
    )

    def process(self, batch: PacketBatch) -> PacketBatch:
        if not len(batch):
            return batch
        if self.nbytes:
            grow = np.maximum(self.nbytes - batch.length, 0)
        else:
            extra = batch.anno_or_none(EXTRA_LENGTH)
            grow = np.zeros(len(batch), np.int64) if extra is None else extra.astype(np.int64)
            over = batch.length + grow > MAX_PACKET
            if over.any():  # Click's put() fails and the packet is lost
                self.drop(int(np.count_nonzero(over)), "padded length over 65535")
                batch, grow = batch.select(~over), grow[~over]
                if not len(batch):
                    return batch
        if EXTRA_LENGTH in batch.annos:
            batch.annos[EXTRA_LENGTH] = np.zeros(len(batch), np.uint32)
        most = int(grow.max())
        if not most:
            return batch
        batch = batch.ensure_room(tail=most)
        end = batch.off + batch.length
        batch.length = batch.length + grow
        batch.tailroom -= most
        if self.zero:
            total = int(grow.sum())
            starts = np.cumsum(grow) - grow  # where each packet's run begins in the flat list
            idx = np.repeat(end - starts, grow) + np.arange(total, dtype=np.int64)
            batch.pool[idx] = 0
        return batch
