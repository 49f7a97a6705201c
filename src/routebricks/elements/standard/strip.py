"""Strip and Unstrip: remove or restore bytes at the front of packets."""

from __future__ import annotations

from routebricks.engine.args import Arg, PacketLength
from routebricks.engine.element import Element, read_handler
from routebricks.packet.batch import PacketBatch


class Strip(Element):
    """Removes LENGTH bytes from the front of every packet.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        LENGTH (unsigned, positional, required): bytes to remove, at most 65535.
    Behaviour: moves each packet's start LENGTH bytes forward (no bytes are copied; the
        removed bytes become headroom, so a later Unstrip(LENGTH) brings them back). Packets
        shorter than LENGTH are dropped and counted as "shorter than Strip length".
    Handlers:
        length (read): LENGTH.
    Example:
        FromDump(in.pcap) -> Strip(14) -> ToDump(ip.pcap, ENCAP IP);
    See also: Unstrip, EtherEncap
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (Arg("LENGTH", PacketLength, positional=True, required=True),)

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        batch = self.require_length(batch, self.length, "shorter than Strip length")
        if len(batch) and self.length:
            batch.pull_front(self.length)
        return batch

    @read_handler("length")
    def h_length(self) -> int:
        """Bytes removed from each packet."""
        return self.length


class Unstrip(Element):
    """Puts LENGTH bytes back at the front of every packet.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        LENGTH (unsigned, positional, required): bytes to add, at most 65535.
    Behaviour: moves each packet's start LENGTH bytes back into its headroom (repacking the
        batch first, with ``ensure_room``, when the headroom is too small). The bytes that
        reappear are whatever the headroom held: the bytes a Strip removed, or zeros in a
        repacked batch.
    Handlers:
        length (read): LENGTH.
    Example:
        ... -> Strip(14) -> CheckIPHeader -> Unstrip(14) -> ...;
    See also: Strip, EtherEncap
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (Arg("LENGTH", PacketLength, positional=True, required=True),)

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        if len(batch) and self.length:
            batch = batch.ensure_room(head=self.length)
            batch.push_front(self.length)
        return batch

    @read_handler("length")
    def h_length(self) -> int:
        """Bytes added to each packet."""
        return self.length
