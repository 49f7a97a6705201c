"""Queue and SimpleQueue: store pushed packets until they are pulled."""

from __future__ import annotations

import sys
from collections import deque

from routebricks.engine.args import Arg, IntRange
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.engine.source import DEFAULT_KP
from routebricks.packet.batch import PacketBatch

#: Click's Queue capacity is an unsigned 32-bit number.
_CAPACITY = IntRange(0, 0xFFFFFFFF, "packet count")


class SimpleQueue(Element):
    """Stores packets in a first-in first-out queue of CAPACITY packets (Click's SimpleQueue).

    Ports: 1 push input; output 0 pull, optional output 1 push (dropped packets).
    Arguments:
        CAPACITY (unsigned, positional, default 1000): the most packets the queue holds,
            at most 4294967295 (as in Click, an unsigned 32-bit number).
    Behaviour: pushed batches are stored whole in a deque (no packet bytes are copied); a
        batch that does not fit is cut, and its tail is dropped (tail drop): sent out of
        output 1 if it is connected, else freed and counted as the drop reason "queue full".
        The first overflow prints ``NAME :: CLASS: overflow`` to stderr, as Click does. Each
        pull returns the packets of the oldest stored batch, at most kp (--kp) at a time;
        an empty queue returns nothing. Downstream elements that pull a fixed number of
        packets (Unqueue) take exactly that many through :meth:`pull_upto`.
    Handlers:
        length (read): packets in the queue.
        highwater_length (read): the most packets the queue has held.
        capacity (read/write): the capacity; lowering it below the length drops the newest
            packets (drop reason "capacity reduced").
        drops (read): packets dropped by tail drop (including those sent to output 1).
        reset_counts (write): zero drops; set highwater_length to the current length.
        reset (write): empty the queue (packets go to output 1 if connected, else are
            dropped as "queue reset").
    Example:
        FromDump(in.pcap) -> q :: Queue(200) -> Unqueue(32) -> ToDump(out.pcap);
    See also: Queue, Unqueue
    """

    port_count = "1/1-2"
    HOT_STATE = ("_q", "_len", "highwater", "drop_count")  # queued packets carry over
    processing = "h/lh"
    ARGS = (Arg("CAPACITY", _CAPACITY, 1000, positional=True),)

    def configure(self) -> None:
        self._q: deque[PacketBatch] = deque()
        self._len = 0
        self.highwater = 0
        self.drop_count = 0
        self._warned = False

    @property
    def length(self) -> int:
        """Packets in the queue."""
        return self._len

    # ------------------------------------------------------------------ packet flow
    def push(self, port: int, batch: PacketBatch) -> None:
        n = len(batch)
        if not n:
            return
        room = max(self.capacity - self._len, 0)
        if n <= room:
            self._q.append(batch)
            self._len += n
        else:
            if room:
                self._q.append(batch.slice(0, room))
                self._len += room
            self._overflow(batch.slice(room, n))
        if self._len > self.highwater:
            self.highwater = self._len

    def _overflow(self, rest: PacketBatch) -> None:
        self.drop_count += len(rest)
        if not self._warned and self.capacity > 0:
            self._warned = True
            sys.stderr.write(f"{self.name} :: {type(self).__name__}: overflow\n")
        self._discard(rest, "queue full")

    def _discard(self, batch: PacketBatch, reason: str) -> None:
        if self.noutputs > 1:
            self.emit(1, batch)
        else:
            self.drop(batch, reason)

    def pull_upto(self, port: int, n: int) -> PacketBatch | None:
        """At most ``n`` packets from the head of the queue (from one stored batch)."""
        if not self._q or n <= 0:
            return None
        b = self._q.popleft()
        k = len(b)
        if k > n:
            self._q.appendleft(b.slice(n, k))
            b = b.slice(0, n)
            k = n
        self._len -= k
        return b

    def pull(self, port: int) -> PacketBatch | None:
        kp = getattr(self.router, "kp", DEFAULT_KP) if self.router is not None else DEFAULT_KP
        return self.pull_upto(port, kp)

    def _truncate(self, keep: int) -> PacketBatch | None:
        """Remove the packets after the first ``keep``; return them as one batch."""
        cut: list[PacketBatch] = []
        while self._len > keep:
            b = self._q.pop()
            excess = self._len - keep
            if len(b) > excess:
                self._q.append(b.slice(0, len(b) - excess))
                cut.append(b.slice(len(b) - excess, len(b)))
                self._len = keep
            else:
                cut.append(b)
                self._len -= len(b)
        if not cut:
            return None
        return PacketBatch.concat(cut[::-1])

    # ------------------------------------------------------------------ handlers
    @read_handler("length", combine="sum")
    def h_length(self) -> int:
        """Packets in the queue."""
        return self._len

    @read_handler("highwater_length", combine="max")
    def h_highwater(self) -> int:
        """The most packets the queue has held."""
        return self.highwater

    @read_handler("capacity")
    def h_capacity(self) -> int:
        """The capacity in packets."""
        return self.capacity

    @write_handler("capacity")
    def h_set_capacity(self, v: str) -> None:
        """Set the capacity; packets beyond it (the newest) are dropped."""
        self.capacity = _CAPACITY.parse(v)
        extra = self._truncate(self.capacity)
        if extra is not None:
            self.drop(extra, "capacity reduced")

    @read_handler("drops", combine="sum")
    def h_drops(self) -> int:
        """Packets dropped because the queue was full."""
        return self.drop_count

    @write_handler("reset_counts")
    def h_reset_counts(self, _: str) -> None:
        """Zero drops; set highwater_length to the current length."""
        self.drop_count = 0
        self.highwater = self._len

    @write_handler("reset")
    def h_reset(self, _: str) -> None:
        """Empty the queue."""
        out = self._truncate(0)
        if out is not None:
            self._discard(out, "queue reset")


class Queue(SimpleQueue):
    """Stores packets in a first-in first-out queue of CAPACITY packets (Click's Queue).

    Ports: 1 push input; output 0 pull, optional output 1 push (dropped packets).
    Arguments:
        CAPACITY (unsigned, positional, default 1000): the most packets the queue holds.
    Behaviour: as SimpleQueue: batches are stored whole, the part of a batch that does not
        fit is dropped (output 1 if connected, else the drop reason "queue full"; the first
        overflow prints ``NAME :: Queue: overflow`` to stderr), and each pull returns up to
        kp packets of the oldest stored batch. Click's Queue also wakes sleeping pullers;
        here pullers are polled, so the two classes behave alike.
    Handlers:
        length (read), highwater_length (read), capacity (read/write), drops (read),
        reset_counts (write), reset (write): as SimpleQueue.
    Example:
        RatedSource(RATE 1000) -> q :: Queue(100) -> Unqueue -> Discard;
    See also: SimpleQueue, Unqueue
    """
