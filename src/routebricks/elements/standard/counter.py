"""Counter: counts packets and bytes passing through."""

from __future__ import annotations

from routebricks.engine import clock
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch


class Counter(Element):
    """Counts packets and bytes, and measures their recent rate.

    Ports: 1 input, 1 output (agnostic).
    Arguments: none.
    Behaviour: passes every packet through unchanged, adding its count and length to the
        counters. The rate is measured over the time since the first packet (or the last
        reset), per second.
    Handlers:
        count (read): packets counted.
        byte_count (read): bytes counted.
        rate (read): packets per second since the first packet or the last reset.
        bit_rate (read): bits per second over the same interval.
        reset (write), reset_counts (write): zero the counters and the rate.
    Example:
        FromDump(in.pcap) -> c :: Counter -> Discard;
        // routebricks run conf.click -h c.count
    See also: Discard, AverageCounter
    """

    port_count = "1/1"
    HOT_STATE = ("count", "byte_count", "_first", "_last")
    processing = "a/a"
    PASSES_ALL = True

    def configure(self) -> None:
        self.count = 0
        self.byte_count = 0
        self._first = 0.0
        self._last = 0.0

    def process(self, batch: PacketBatch) -> PacketBatch:
        n = len(batch)
        if n:
            now = clock.monotonic()
            if not self.count:
                self._first = now
            self._last = now
            self.count += n
            self.byte_count += int(batch.length.sum())
        return batch

    def _interval(self) -> float:
        return max(self._last - self._first, 0.0)

    @read_handler("count", combine="sum")
    def h_count(self) -> int:
        """Packets counted."""
        return self.count

    @read_handler("byte_count", combine="sum")
    def h_byte_count(self) -> int:
        """Bytes counted."""
        return self.byte_count

    @read_handler("rate", combine="sum")
    def h_rate(self) -> float:
        """Packets per second since the first packet or the last reset."""
        dt = self._interval()
        return self.count / dt if dt > 0 else 0.0

    @read_handler("bit_rate", combine="sum")
    def h_bit_rate(self) -> float:
        """Bits per second since the first packet or the last reset."""
        dt = self._interval()
        return self.byte_count * 8 / dt if dt > 0 else 0.0

    @write_handler("reset")
    def h_reset(self, _: str) -> None:
        """Zero the counters and the rate."""
        self.configure()

    @write_handler("reset_counts")
    def h_reset_counts(self, _: str) -> None:
        """Zero the counters and the rate."""
        self.configure()
