"""AverageCounter: packet count and strict average rate (Click's AverageCounter)."""

from __future__ import annotations

from routebricks.elements.standard.counter import Counter
from routebricks.engine import clock
from routebricks.engine.args import Arg, Seconds
from routebricks.engine.element import read_handler
from routebricks.packet.batch import PacketBatch


class AverageCounter(Counter):
    """Counts packets and bytes and their strict average rate since the first packet.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        IGNORE (time, positional, default 0): packets in the first IGNORE seconds after
            the first packet are not counted.
    Behaviour: passes every packet through unchanged. The rate covers only the time
        between the first and the most recent counted packets, as Click's.
    Handlers:
        count (read), byte_count (read): packets and bytes counted.
        rate (read): packets per second; byte_rate (read): bytes per second; bit_rate
            (read): bits per second.
        reset (write), reset_counts (write): zero the counters and the rate.
    Example:
        FromDevice(eth0) -> ac :: AverageCounter -> Discard;
        // routebricks handler read ac.rate
    See also: Counter
    """

    ARGS = (Arg("IGNORE", Seconds, 0.0, positional=True),)

    def configure(self) -> None:
        super().configure()
        self._start = -1.0

    def process(self, batch: PacketBatch) -> PacketBatch:
        if self.ignore > 0 and len(batch):
            now = clock.monotonic()
            if self._start < 0:
                self._start = now
            if now - self._start < self.ignore:
                return batch
        return super().process(batch)

    @read_handler("byte_rate", combine="sum")
    def h_byte_rate(self) -> float:
        """Bytes per second since the first packet or the last reset."""
        dt = self._interval()
        return self.byte_count / dt if dt > 0 else 0.0
