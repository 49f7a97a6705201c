"""DelayUnqueue: pulls packets and pushes each out DELAY after its timestamp."""

from __future__ import annotations

import numpy as np

from routebricks.engine import clock
from routebricks.engine.args import Arg, Seconds
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch


class DelayUnqueue(Element):
    """Pulls packets and pushes each one out no earlier than its timestamp plus DELAY.

    Ports: 1 pull input; 1 push output.
    Arguments:
        DELAY (time, positional, required): the delay, e.g. 10ms.
    Behaviour: a task pulls a batch and holds it; each run pushes the longest run of held
        packets, in order, whose timestamp annotation plus DELAY has passed (a packet
        without a timestamp is due at once), and pulls again once nothing is held. As in
        Click, a packet waits for the one before it, and its timestamp becomes the time it
        was due (timestamp + DELAY). Timestamps come from sources or SetTimestamp (ns
        since the epoch).
    Handlers:
        delay (read/write): DELAY, in seconds.
        count (read): packets pushed.
    Example:
        FromDevice(eth0) -> SetTimestamp -> Queue -> DelayUnqueue(50ms) -> ToDevice(eth1);
    See also: Unqueue, Queue, SetTimestamp
    """

    port_count = "1/1"
    processing = "l/h"
    ARGS = (Arg("DELAY", Seconds, positional=True, required=True),)

    def configure(self) -> None:
        if self.delay < 0:
            raise self.error("DELAY must not be negative")
        self.count = 0
        self._held: PacketBatch | None = None
        self._wake = -1

    def run_task(self) -> bool:
        if self._held is None or not len(self._held):
            self._held = self.pull_input(0)
            if self._held is None or not len(self._held):
                self._held = None
                return False
        b = self._held
        ts = b.anno_or_none("timestamp")
        delay_ns = int(self.delay * 1e9)
        due = (ts + delay_ns) if ts is not None else np.zeros(len(b), np.int64)
        late = due > clock.time_ns()
        n = int(np.argmax(late)) if late.any() else len(b)  # the due run, in order
        if n == 0:
            if self._wake != int(due[0]) and self.router is not None:
                # A timer for the first packet's time: the router sleeps (or, under
                # simulated time, jumps) until then instead of polling.
                self._wake = int(due[0])
                self.router.schedule(max(0.0, (self._wake - clock.time_ns()) / 1e9),
                                     lambda: None)
            return False
        out = b.slice(0, n)
        self._held = b.slice(n, len(b)) if n < len(b) else None
        if ts is not None:
            out.annos["timestamp"] = due[:n].copy()
        self.count += n
        self.emit(0, out)
        return True

    def holds_packets(self) -> bool:
        return self._held is not None

    @read_handler("delay")
    def h_delay(self) -> float:
        """The delay, in seconds."""
        return self.delay

    @write_handler("delay")
    def h_set_delay(self, v: str) -> None:
        """Set the delay."""
        d = Seconds.parse(v)
        if d < 0:
            raise ValueError("the delay must not be negative")
        self.delay = d

    @read_handler("count", combine="sum")
    def h_count(self) -> int:
        """Packets pushed."""
        return self.count
