"""Unqueue: pulls packets from its input and pushes them out, as a task."""

from __future__ import annotations

import sys
from collections.abc import Callable

from routebricks.engine.args import Arg, Bool, Int
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch


class Unqueue(Element):
    """Pulls up to BURST packets per task run from its input and pushes them to its output.

    Ports: 1 pull input; 1 push output.
    Arguments:
        BURST (integer, positional, default --kp): the most packets moved per task run; a
            negative BURST moves everything the input has.
        ACTIVE (bool, default true): whether to pull.
        LIMIT (integer, default -1): stop after moving this many packets (-1: no limit).
    Behaviour: each task run pulls batches until it has BURST packets (or the input is
        empty) and pushes each batch on as it arrives. From a Queue it takes exactly the
        packets it needs; from any other input a pulled batch larger than what is left of
        the burst is cut, and the rest is kept and sent first on the next run (so BURST and
        LIMIT are never exceeded and no packet is lost).
    Handlers:
        count (read): packets moved.
        active (read/write), burst (read/write), limit (read/write).
        reset, reset_counts (write): zero the count (restarting a LIMIT).
    Example:
        FromDump(in.pcap) -> Queue -> Unqueue(64) -> ToDump(out.pcap);
    See also: Queue, Discard
    """

    port_count = "1/1"
    processing = "l/h"
    ARGS = (
        Arg("BURST", Int, None, positional=True),
        Arg("ACTIVE", Bool, True),
        Arg("LIMIT", Int, -1),
    )

    def configure(self) -> None:
        self.count = 0
        self._carry: PacketBatch | None = None
        self._take: Callable[[int, int], PacketBatch | None] | None = None
        if self.burst == 0:
            self.warn("BURST size 0, no packets will be pulled")

    def initialize(self) -> None:
        # Pull an exact number of packets when the input offers it (Queue.pull_upto).
        src = self._in[0] if self._in else None
        owner = getattr(src, "__self__", None)
        self._take = getattr(owner, "pull_upto", None) if owner is not None else None

    def _budget(self) -> int:
        burst = self.burst
        if burst is None:
            burst = getattr(self.router, "kp", 1024)
        n = burst if burst >= 0 else sys.maxsize
        if self.limit >= 0:
            n = min(n, self.limit - self.count)
        return n

    def _next(self, want: int) -> PacketBatch | None:
        if self._carry is not None:
            b, self._carry = self._carry, None
        elif self._take is not None:
            return self._take(self._in_port[0], want)
        else:
            b = self.pull_input(0)
            if b is None:
                return None
        if len(b) > want:
            self._carry = b.slice(want, len(b))
            b = b.slice(0, want)
        return b

    def run_task(self) -> bool:
        if not self.active:
            return False
        left = self._budget()
        moved = 0
        while left > 0:
            b = self._next(left)
            if b is None:
                break
            n = len(b)
            if not n:
                continue
            moved += n
            left -= n
            self.count += n
            self.emit(0, b)
        return moved > 0

    @read_handler("count", combine="sum")
    def h_count(self) -> int:
        """Packets moved."""
        return self.count

    @read_handler("active")
    def h_active(self) -> bool:
        """Whether to pull."""
        return self.active

    @write_handler("active")
    def h_set_active(self, v: str) -> None:
        """Set whether to pull."""
        self.active = Bool.parse(v)

    @read_handler("burst")
    def h_burst(self) -> int:
        """The most packets moved per task run (negative: no limit)."""
        return self.burst if self.burst is not None else getattr(self.router, "kp", 1024)

    @write_handler("burst")
    def h_set_burst(self, v: str) -> None:
        """Set the most packets moved per task run."""
        self.burst = Int.parse(v)

    @read_handler("limit")
    def h_limit(self) -> int:
        """Total packets to move (-1: no limit)."""
        return self.limit

    @write_handler("limit")
    def h_set_limit(self, v: str) -> None:
        """Set the total packets to move."""
        self.limit = Int.parse(v)

    @write_handler("reset")
    def h_reset(self, _: str) -> None:
        """Zero the count."""
        self.count = 0

    @write_handler("reset_counts")
    def h_reset_counts(self, _: str) -> None:
        """Zero the count."""
        self.count = 0
