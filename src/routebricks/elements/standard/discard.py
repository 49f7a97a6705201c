"""Discard: drops every packet."""

from __future__ import annotations

from routebricks.engine.args import Arg, Bool, UInt
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch


class Discard(Element):
    """Drops all packets, counting them.

    Ports: 1 input (agnostic); no outputs. Pulling, it is a task that pulls up to BURST
    packets per call.
    Arguments:
        ACTIVE (bool, default true): when pulling, whether to pull at all.
        BURST (unsigned, default 4096): packets pulled per call when pulling.
    Behaviour: counts and frees every packet it receives. Discarded packets are the
        configuration's intent, so they are counted in ``count``, not as drops.
    Handlers:
        count (read): packets discarded.
        byte_count (read): bytes discarded.
        reset_counts (write): zero the counters.
        active (read/write): whether to pull.
    Example:
        FromDump(in.pcap) -> Discard;
    See also: Counter, Queue
    """

    port_count = "1/0"
    processing = "a/"
    ARGS = (Arg("ACTIVE", Bool, True), Arg("BURST", UInt, 4096))

    def configure(self) -> None:
        self.count = 0
        self.byte_count = 0

    def push(self, port: int, batch: PacketBatch) -> None:
        self.count += len(batch)
        self.byte_count += int(batch.length.sum())

    def wants_task(self) -> bool:
        return bool(self.input_modes) and self.input_modes[0] == "l"

    def run_task(self) -> bool:
        if not self.active:
            return False
        b = self.pull_input(0)
        if b is None:
            return False
        self.push(0, b)
        return True

    @read_handler("count", combine="sum")
    def h_count(self) -> int:
        """Packets discarded."""
        return self.count

    @read_handler("byte_count", combine="sum")
    def h_bytes(self) -> int:
        """Bytes discarded."""
        return self.byte_count

    @write_handler("reset_counts")
    def h_reset(self, _: str) -> None:
        """Zero the counters."""
        self.count = self.byte_count = 0

    @read_handler("active")
    def h_active(self) -> bool:
        """Whether to pull."""
        return self.active

    @write_handler("active")
    def h_set_active(self, v: str) -> None:
        """Set whether to pull."""
        self.active = Bool.parse(v)
