"""HashSwitch: spreads packets over outputs by a hash of some of their bytes."""

from __future__ import annotations

import numpy as np

from routebricks.engine.args import MAX_PACKET, Arg, IntRange, PacketLength
from routebricks.engine.element import Element, read_handler
from routebricks.packet.batch import PacketBatch


def click_hash_output(byte_sums: np.ndarray, noutputs: int) -> np.ndarray:
    """Click's HashSwitch output for each packet's byte sum ``d``: ``(d ^ (d >> 4)) & (n-1)``
    for 2, 4 or 8 outputs, else ``d % n``."""
    d = byte_sums.astype(np.int64, copy=False)
    if noutputs in (2, 4, 8):
        return (d ^ (d >> 4)) & (noutputs - 1)
    return d % noutputs


class HashSwitch(Element):
    """Sends each packet to an output chosen by a hash of LENGTH bytes at OFFSET.

    Ports: 1 push input; 1 or more push outputs.
    Arguments:
        OFFSET (unsigned, positional, required, at most 65535): where the hashed bytes start.
        LENGTH (unsigned, positional, required, 1 to 65535): how many bytes to hash.
    Behaviour: Click's hash: d is the sum of the bytes; with 2, 4 or 8 outputs the output is
        ``(d ^ (d >> 4)) & (n - 1)``, otherwise ``d % n``. Packets with equal bytes there
        (one flow, when the bytes are its addresses and ports) always take the same output.
        The sums are computed for the whole batch at once, and the batch is split by output
        without copying packet bytes. Packets shorter than OFFSET + LENGTH are dropped and
        counted as "too short to hash".
    Handlers:
        offset (read), length (read): the hashed bytes.
    Example:
        // spread IPv4 flows over 4 queues by source and destination address
        FromDump(in.pcap) -> hs :: HashSwitch(26, 8);
        hs[0] -> Queue -> ...; hs[1] -> Queue -> ...;
        hs[2] -> Queue -> ...; hs[3] -> Queue -> ...;
    See also: RoundRobinSwitch, RandomSwitch, Classifier
    """

    port_count = "1/1-"
    processing = "h/h"
    ARGS = (
        Arg("OFFSET", PacketLength, positional=True, required=True),
        Arg("LENGTH", IntRange(1, MAX_PACKET, "byte count"), positional=True, required=True),
    )

    def push(self, port: int, batch: PacketBatch) -> None:
        batch = self.require_length(batch, self.offset + self.length, "too short to hash")
        if not len(batch):
            return
        nout = self.noutputs
        if nout == 1:
            self.emit(0, batch)
            return
        sums = batch.field_bytes(self.offset, self.length).sum(axis=1, dtype=np.int64)
        out = click_hash_output(sums, nout)
        for p, b in enumerate(batch.split(out, nout)):
            if b is not None:
                self.emit(p, b)

    @read_handler("offset")
    def h_offset(self) -> int:
        """Where the hashed bytes start."""
        return self.offset

    @read_handler("length")
    def h_length(self) -> int:
        """How many bytes are hashed."""
        return self.length
