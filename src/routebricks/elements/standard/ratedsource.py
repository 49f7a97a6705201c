"""RatedSource: sends copies of one packet at a configured rate."""

from __future__ import annotations

import numpy as np

from routebricks.elements.standard.infinitesource import DEFAULT_DATA, PACKET_LENGTH, packet_data
from routebricks.engine import clock
from routebricks.engine.args import Arg, Bandwidth, Bool, Burst, Bytes, DoubleRange, Int
from routebricks.engine.element import read_handler, write_handler
from routebricks.engine.source import Source
from routebricks.packet.batch import PacketBatch


def make_copies(payload: bytes, n: int, timestamp_ns: int | None = None) -> PacketBatch:
    """A batch of ``n`` copies of ``payload`` in a fresh pool (one vectorized copy), with the
    timestamp annotation set when ``timestamp_ns`` is given."""
    row = np.frombuffer(payload, np.uint8)
    data = np.broadcast_to(row, (n, len(row)))
    b = PacketBatch.from_arrays(data, np.full(n, len(row), np.int64))
    if timestamp_ns is not None:
        b.set_anno("timestamp", timestamp_ns)
    return b


#: Packets per second; Click's RATE is an unsigned 32-bit number.
RATE = DoubleRange(0, 0xFFFFFFFF, "rate in packets per second")
#: RATE 0 is refused: Click reads it as "no limit" (its token bucket's unlimited rate), so a
#: configuration written for Click expects packets, and one written fresh expects none.
RATE_ZERO_HINT = ("in Click, RATE 0 means no rate limit: use InfiniteSource to send as fast "
                  "as possible, or ACTIVE false to send nothing")


def bucket_size(rate: float) -> float:
    """Click's token-bucket depth for a packet rate: 2 below 200 pkt/s, else rate/100."""
    return 2.0 if rate < 200 else rate / 100.0


class RatedSource(Source):
    """Generates copies of a packet at RATE packets per second, through a token bucket.

    Ports: no inputs; 1 output (push, or pull when connected to a pull input).
    Arguments:
        DATA (bytes, positional, default Click's 69-byte text): the packet contents
            (``0x...`` hex, ``\\<...>`` hex, or a string).
        RATE (real, positional, default 10): packets per second, greater than 0 and at
            most 4294967295. RATE 0 is refused: Click reads it as "no limit" (use
            InfiniteSource for that, or ACTIVE false to send nothing).
        LIMIT (integer, positional, default -1): total packets to send (-1: no limit).
        ACTIVE (bool, positional, default true): whether to send.
        LENGTH (integer, default -1): packet length, 0 to 65535; DATA is cut or repeated
            to it (-1: DATA's own length, at most 65535 bytes).
        BANDWIDTH (bandwidth, default unset): send at this bit rate instead (greater than 0);
            RATE becomes BANDWIDTH / (8 * packet length).
        STOP (bool, default false): stop the router after LIMIT packets.
        BURST (positive integer, default --kp): the most packets per batch (kp), at most
            1048576.
    Behaviour: a token bucket fills at RATE tokens per second up to Click's depth (2 tokens
        below 200 pkt/s, else RATE/100) and starts with one token. Each call emits one batch
        of as many packets as there are whole tokens, at most BURST (kp), in a fresh pool;
        every packet's timestamp annotation is the current time. Pulled, each pull returns
        such a batch or nothing.
    Handlers:
        count (read): packets sent. reset (write): zero it and refill the bucket to one token.
        rate (read/write): packets per second.
        limit (read/write): total packets to send (-1: no limit).
        active (read/write): whether to send.
        data (read/write): the packet contents (read as ``0x`` hex; written as raw text).
        length (read/write): the packet length (-1: DATA's length).
    Example:
        RatedSource(RATE 1000, LIMIT 5000, STOP true) -> Counter -> Discard;
    See also: InfiniteSource, TimedSource
    """

    port_count = "0/1"
    processing = "/a"
    ARGS = (
        Arg("DATA", Bytes, DEFAULT_DATA, positional=True),
        Arg("RATE", RATE, 10.0, positional=True),
        Arg("LIMIT", Int, -1, positional=True),
        Arg("ACTIVE", Bool, True, positional=True),
        Arg("LENGTH", PACKET_LENGTH, -1),
        Arg("BANDWIDTH", Bandwidth, None),
        Arg("STOP", Bool, False),
        Arg("BURST", Burst, None),
    )

    def configure(self) -> None:
        super().configure()
        try:
            self.payload = packet_data(self.data, self.length)
        except ValueError as e:
            raise self.error(str(e)) from None
        if self.bandwidth is not None:
            if not self.payload:
                raise self.error("BANDWIDTH needs a non-empty packet", "set DATA or LENGTH")
            if self.bandwidth <= 0:
                raise self.error("BANDWIDTH 0 would send nothing", RATE_ZERO_HINT)
            self.rate = self.bandwidth / len(self.payload)  # Bandwidth is bytes/s
            if self.rate > RATE.maximum:
                raise self.error(
                    f"BANDWIDTH is {self.rate:g} packets per second, more than {RATE.maximum:g}",
                    "give a lower BANDWIDTH or a longer packet (LENGTH)",
                )
        elif self.rate == 0:
            raise self.error("RATE 0 would send nothing", RATE_ZERO_HINT)
        self._reset_bucket()

    def _reset_bucket(self) -> None:
        self._tokens = 1.0
        self._last: int | None = None  # monotonic ns of the last refill; None: not started

    def _refill(self) -> None:
        now = clock.monotonic_ns()
        if self._last is None:
            self._last = now
            return
        self._tokens = min(
            bucket_size(self.rate), self._tokens + (now - self._last) * 1e-9 * self.rate
        )
        self._last = now

    def wants_task(self) -> bool:
        return bool(self.output_modes) and self.output_modes[0] == "h"

    def _next_batch(self) -> PacketBatch | None:
        if not self.active:
            return None
        if self.limit >= 0 and self.emitted >= self.limit:
            self.maybe_stop()
            return None
        self._refill()
        n = self.allowance(int(self._tokens))
        if n <= 0:
            return None
        self._tokens -= n
        self.emitted += n
        return make_copies(self.payload, n, clock.time_ns())

    def run_task(self) -> bool:
        if not self.output_modes or self.output_modes[0] != "h":
            return False
        b = self._next_batch()
        if b is None:
            return False
        self.emit(0, b)
        self.maybe_stop()
        return True

    def pull(self, port: int) -> PacketBatch | None:
        b = self._next_batch()
        if b is not None:
            self.maybe_stop()
        return b

    @read_handler("rate")
    def h_rate(self) -> int | float:
        """Packets per second."""
        return int(self.rate) if float(self.rate).is_integer() else self.rate

    @write_handler("rate")
    def h_set_rate(self, v: str) -> None:
        """Set packets per second (the bucket depth follows, as in Click); 0 is refused."""
        r = RATE.parse(v)
        if r == 0:
            raise ValueError(f"rate 0 would send nothing ({RATE_ZERO_HINT})")
        self.rate = r
        self._tokens = min(self._tokens, bucket_size(r))

    @read_handler("limit")
    def h_limit(self) -> int:
        """Total packets to send (-1: no limit)."""
        return self.limit

    @write_handler("limit")
    def h_set_limit(self, v: str) -> None:
        """Set the total packets to send."""
        self.limit = Int.parse(v)
        self._stop_sent = False

    @write_handler("active")
    def h_set_active(self, v: str) -> None:
        """Start (true) or pause (false) the source; starting refills the bucket to one."""
        active = Bool.parse(v)
        if active and not self.active:
            self._reset_bucket()
        self.active = active

    @write_handler("reset")
    def h_reset(self, _: str) -> None:
        """Zero the count (restarting a LIMIT) and refill the bucket to one token."""
        super().h_reset(_)
        self._reset_bucket()

    @read_handler("data")
    def h_data(self) -> str:
        """The packet contents, hex."""
        return "0x" + self.payload.hex()

    @write_handler("data")
    def h_set_data(self, v: str) -> None:
        """Set the packet contents (the text as given)."""
        data = v.encode("latin-1")
        self.payload = packet_data(data, self.length)
        self.data = data

    @read_handler("length")
    def h_length(self) -> int:
        """The packet length setting (-1: the length of DATA)."""
        return self.length

    @write_handler("length")
    def h_set_length(self, v: str) -> None:
        """Set the packet length (-1: the length of DATA)."""
        length = PACKET_LENGTH.parse(v)
        self.payload = packet_data(self.data, length)
        self.length = length
