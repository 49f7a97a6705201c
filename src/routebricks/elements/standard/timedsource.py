"""TimedSource: sends one packet every INTERVAL."""

from __future__ import annotations

import numpy as np

from routebricks.elements.standard.infinitesource import DEFAULT_DATA
from routebricks.engine import clock
from routebricks.engine.args import MAX_PACKET, Arg, Bool, Bytes, Int, PacketLength, Seconds
from routebricks.engine.element import read_handler, write_handler
from routebricks.engine.source import Source
from routebricks.packet.batch import DEFAULT_TAILROOM, PacketBatch


def unparse_interval(seconds: float) -> str:
    """Click's ``Timestamp::unparse_interval`` (nanosecond build): ``500ms``, ``20us``,
    ``7ns`` below one second, else ``S.UUUUUUs`` (nine digits when not whole microseconds)."""
    ns = round(seconds * 1e9)
    sec, sub = divmod(ns, 1_000_000_000)
    if sec == 0:
        if sub % 1_000_000 == 0:
            return f"{sub // 1_000_000}ms"
        if sub % 1000 == 0:
            return f"{sub // 1000}us"
        return f"{sub}ns"
    return f"{sec}.{sub // 1000:06d}s" if sub % 1000 == 0 else f"{sec}.{sub:09d}s"


class TimedSource(Source):
    """Generates one packet every INTERVAL seconds, from a router timer.

    Ports: no inputs; 1 push output.
    Arguments:
        INTERVAL (time, positional, default 0.5s): time between packets.
        DATA (bytes, positional, default Click's 69-byte text): the packet contents
            (``0x...`` hex, ``\\<...>`` hex, or a string).
        LIMIT (integer, default -1): total packets to send (-1: no limit).
        ACTIVE (bool, default true): whether to send.
        STOP (bool, default false): stop the router one INTERVAL after the LIMIT-th packet.
        HEADROOM (unsigned, default 64): bytes of headroom in front of each packet, at most
            65535.
    Behaviour: the first packet leaves one INTERVAL after the router starts running, then
        one every INTERVAL (each timer is scheduled when the previous one fires), as a batch
        of one packet whose timestamp annotation is the current time. While inactive the
        timer keeps ticking but sends nothing. The timer firing after the LIMIT-th packet
        stops the router if STOP is true, and is not rescheduled.
    Handlers:
        count (read): packets sent. reset (write): zero it (restarting a LIMIT).
        interval (read/write): time between packets (read as Click prints intervals,
            e.g. ``500ms``).
        data (read/write): the packet contents (read as ``0x`` hex; written as raw text).
        limit (read/write), active (read/write), headroom (read/write).
    Example:
        TimedSource(100ms, LIMIT 10, STOP true) -> Print(tick) -> Discard;
    See also: RatedSource, InfiniteSource
    """

    port_count = "0/1"
    processing = "/h"
    ARGS = (
        Arg("INTERVAL", Seconds, 0.5, positional=True),
        Arg("DATA", Bytes, DEFAULT_DATA, positional=True),
        Arg("LIMIT", Int, -1),
        Arg("ACTIVE", Bool, True),
        Arg("STOP", Bool, False),
        Arg("HEADROOM", PacketLength, 64),
    )

    def configure(self) -> None:
        super().configure()
        self.burst = 1
        if self.interval <= 0:
            raise self.error("INTERVAL must be greater than 0", "e.g. TimedSource(100ms)")
        if len(self.data) > MAX_PACKET:
            raise self.error(f"DATA is {len(self.data)} bytes; a packet is at most {MAX_PACKET}")
        self._armed = False  # a timer is pending
        self._final = False  # the timer after the LIMIT-th packet has fired

    def is_done(self) -> bool:
        if self.router is not None and self.router.exhausted():
            return True
        if self.limit >= 0 and self.emitted >= self.limit:
            # Done once the timer that follows the last packet has fired (Click's STOP).
            return not self._armed
        return False

    def run_task(self) -> bool:
        # The task only arms the timer when the router runs; the timer does the work.
        if not self._armed and not self._final and self.router is not None:
            self._armed = True
            self.router.schedule(self.interval, self._fire)
        return False

    def _fire(self) -> None:
        assert self.router is not None
        if self.limit >= 0 and self.emitted >= self.limit:
            self._armed = False
            self._final = True
            self.maybe_stop()
            return
        if self.active and self.allowance(1) == 1:
            row = np.frombuffer(self.data, np.uint8)[None, :]
            b = PacketBatch.from_arrays(
                row,
                np.array([row.shape[1]], np.int64),
                headroom=self.headroom,
                tailroom=DEFAULT_TAILROOM,
            )
            b.set_anno("timestamp", clock.time_ns())
            self.send(b)
        self.router.schedule(self.interval, self._fire)

    @read_handler("interval")
    def h_interval(self) -> str:
        """Time between packets."""
        return unparse_interval(self.interval)

    @write_handler("interval")
    def h_set_interval(self, v: str) -> None:
        """Set the time between packets (from the next packet on)."""
        t = Seconds.parse(v)
        if t <= 0:
            raise ValueError("interval must be greater than 0")
        self.interval = t

    @read_handler("data")
    def h_data(self) -> str:
        """The packet contents, hex."""
        return "0x" + self.data.hex()

    @write_handler("data")
    def h_set_data(self, v: str) -> None:
        """Set the packet contents (the text as given)."""
        data = v.encode("latin-1")
        if len(data) > MAX_PACKET:
            raise ValueError(f"data is {len(data)} bytes; a packet is at most {MAX_PACKET}")
        self.data = data

    @read_handler("limit")
    def h_limit(self) -> int:
        """Total packets to send (-1: no limit)."""
        return self.limit

    @write_handler("limit")
    def h_set_limit(self, v: str) -> None:
        """Set the total packets to send."""
        self.limit = Int.parse(v)
        self._stop_sent = False
        self._final = False

    @write_handler("reset")
    def h_reset(self, _: str) -> None:
        """Zero the count, restarting a LIMIT."""
        super().h_reset(_)
        self._final = False  # a finished timer starts again on the next run

    @read_handler("headroom")
    def h_headroom(self) -> int:
        """Bytes of headroom in front of each packet."""
        return self.headroom

    @write_handler("headroom")
    def h_set_headroom(self, v: str) -> None:
        """Set the headroom of future packets."""
        self.headroom = PacketLength.parse(v)
