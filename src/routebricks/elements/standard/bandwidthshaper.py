"""BandwidthShaper: a pull element that lets at most RATE bytes per second through."""

from __future__ import annotations

import numpy as np

from routebricks.elements.standard.simplequeue import SimpleQueue
from routebricks.engine import clock
from routebricks.engine.args import Arg, Bandwidth
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch

#: How far behind its rate the shaper may fall and then catch up in a burst (Click's
#: GapRate: up to a second).
MAX_LAG = 1.0


def click_bandwidth(rate: float) -> str:
    """A rate in bytes per second as Click's BandwidthArg prints it: ``800kbps``,
    ``8Mbps``, ``1Gbps``, and ``MBps`` from 2^29 bytes per second up."""
    if rate >= 0x20000000:
        return f"{rate / 1e6:.6f}".rstrip("0").rstrip(".") + "MBps"
    for unit, scale, digits in (("Gbps", 1e9, 9), ("Mbps", 1e6, 6), ("kbps", 1e3, 3)):
        if rate >= scale / 8 or unit == "kbps":
            return f"{rate * 8 / scale:.{digits}f}".rstrip("0").rstrip(".") + unit
    raise AssertionError("unreachable")


class BandwidthShaper(Element):
    """Shapes the traffic pulled through it to at most RATE bytes per second.

    Ports: 1 pull input; 1 pull output.
    Arguments:
        RATE (bandwidth, positional, required): the most bytes per second to pass, in
            Click's bandwidth syntax: 1Mbps and 500kbps are bits, 125kBps bytes; a bare
            number is bytes per second. RATE 0 lets nothing through.
    Behaviour: as Click's: a pull is passed upstream only while the bytes passed so far
        are not ahead of RATE times the time elapsed, and each packet passed counts its
        length against the rate. A pulled batch passes as far as the rate allows: every
        packet that starts while the shaper is not ahead goes out (so it runs ahead by
        less than one packet), and the rest is held and offered first on the next pulls,
        in order. Pulls while ahead return nothing, and the router is woken (under
        --simtime, its clock jumps) when the next packet is due. A shaper that fell
        behind (its input empty) catches up by at most one second's worth of bytes in a
        burst, as Click's GapRate does; the first pull after a start or reset passes.
        Time is the router's clock, so simulated time (--simtime) shapes alike. A run
        whose sources are done goes on while packets wait in the shaper or in a Queue
        right before it (else it would stop at the first pull the rate refuses). Click's
        BandwidthShaper accepts a second output that acts as the first; here it has one.
    Handlers:
        rate (read/write): RATE, read as Click prints it (e.g. 800kbps); writing a new
            rate restarts the accounting.
        reset (write): restart the accounting (forget any lag or overshoot).
    Example:
        FromDevice(eth0) -> Queue(1000) -> BandwidthShaper(10Mbps) -> Unqueue
            -> ToDevice(eth1);
    See also: Queue, Unqueue, RatedSource, DelayUnqueue
    """

    port_count = "1/1"
    processing = "l/l"
    ARGS = (Arg("RATE", Bandwidth, positional=True, required=True),)
    #: Its task moves no packets (whatever pulls does): see wants_task.
    TASK_WAITS_FOR_EVENTS = True

    def configure(self) -> None:
        self._held: PacketBatch | None = None
        self._reset()

    def _reset(self) -> None:
        self._credit = 0.0  # bytes that may still pass (negative: ahead of the rate)
        self._last: int | None = None  # monotonic ns the credit was last brought up to
        self._wake = -1  # monotonic ns of the wake-up timer asked for last

    def _refill(self, now: int) -> None:
        if self._last is not None:
            self._credit = min(self._credit + (now - self._last) * 1e-9 * self.rate,
                               self.rate * MAX_LAG)
        self._last = now

    def pull(self, port: int) -> PacketBatch | None:
        if self.rate <= 0:
            return None
        now = clock.monotonic_ns()
        self._refill(now)
        if self._credit < 0:
            self._sleep_until_due(now)
            return None
        b = self._held
        if b is None:
            b = self.pull_input(0)
            if b is None or not len(b):
                return None
        else:
            self._held = None
        # Packet i passes if the credit left before it is not negative.
        before = np.cumsum(b.length) - b.length
        n = max(1, int(np.count_nonzero(before <= self._credit)))
        if n < len(b):
            self._held = b.slice(n, len(b))
            b = b.slice(0, n)
        self._credit -= float(b.length.sum())
        return b

    def wants_task(self) -> bool:
        # Not to move packets (the element pulling from the shaper does), but so that the
        # router asks holds_packets before it ends a run whose sources are done.
        return True

    def holds_packets(self) -> bool:
        if self.rate <= 0:
            return False  # nothing will ever pass: no reason to wait
        if self._held is not None:
            return True
        src = self._in[0] if self._in else None
        queue = getattr(src, "__self__", None)
        return isinstance(queue, SimpleQueue) and queue.length > 0

    def _sleep_until_due(self, now: int) -> None:
        """Have the router wake up when the credit is back to zero, rather than poll (and,
        under simulated time, jump there)."""
        if self.router is None:
            return
        due = now + int(np.ceil(-self._credit / self.rate * 1e9))
        if due != self._wake:
            self._wake = due
            self.router.schedule(max(0.0, (due - now) / 1e9), lambda: None)

    @read_handler("rate")
    def h_rate(self) -> str:
        """RATE, as Click prints a bandwidth."""
        return click_bandwidth(self.rate)

    @write_handler("rate")
    def h_set_rate(self, v: str) -> None:
        """Set RATE; a new rate restarts the accounting."""
        rate = Bandwidth.parse(v)
        if rate != self.rate:
            self.rate = rate
            self._reset()

    @write_handler("reset")
    def h_reset(self, _: str) -> None:
        """Restart the accounting."""
        self._reset()
