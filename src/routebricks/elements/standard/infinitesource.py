"""InfiniteSource: sends copies of one packet as fast as it can."""

from __future__ import annotations

import numpy as np

from routebricks.engine import clock
from routebricks.engine.args import MAX_PACKET, Arg, Bool, Burst, Bytes, Int, IntRange
from routebricks.engine.element import read_handler, write_handler
from routebricks.engine.source import Source
from routebricks.packet.batch import PacketBatch

DEFAULT_DATA = b"Random bullshit in a packet, at least 64 bytes long. Well, now it is."
#: LENGTH: a packet length, or -1 for DATA's own length.
PACKET_LENGTH = IntRange(-1, MAX_PACKET, "length")


def packet_data(data: bytes, length: int) -> bytes:
    """DATA cut or repeated to LENGTH bytes (Click's LENGTH convention); -1 keeps DATA.
    ValueError for a packet longer than 65535 bytes."""
    if length < 0:
        if len(data) > MAX_PACKET:
            raise ValueError(
                f"DATA is {len(data)} bytes; a packet is at most {MAX_PACKET} (set LENGTH "
                "to cut it)"
            )
        return data
    if not data:
        return bytes(length)
    reps = -(-length // len(data))
    return (data * reps)[:length]


class InfiniteSource(Source):
    """Generates copies of a packet, a batch of BURST (kp) packets per call.

    Ports: no inputs; 1 push output.
    Arguments:
        DATA (bytes, positional, default Click's 69-byte text): the packet contents
            (``0x...`` hex, ``\\<...>`` hex, or a string).
        LIMIT (integer, positional, default -1): total packets to send (-1: no limit).
        BURST (positive integer, positional, default --kp): packets per batch (kp), at most
            1048576.
        ACTIVE (bool, positional, default true): whether to send.
        LENGTH (integer, default -1): packet length, 0 to 65535; DATA is cut or repeated
            to it (-1: DATA's own length, at most 65535 bytes).
        STOP (bool, default false): stop the router after LIMIT packets.
        TIMESTAMP (bool, default true): set each packet's timestamp annotation to now.
    Behaviour: each call builds one batch of identical packets in a fresh pool (a single
        vectorized copy), so downstream elements may write the packets.
    Handlers:
        count (read): packets sent. reset (write): zero it.
        active (read/write), limit (read/write), burst (read/write), data (read),
        length (read).
    Example:
        InfiniteSource(LENGTH 64, LIMIT 1000000, STOP true) -> Counter -> Discard;
    See also: RatedSource, TimedSource, FromDump
    """

    ARGS = (
        Arg("DATA", Bytes, DEFAULT_DATA, positional=True),
        Arg("LIMIT", Int, -1, positional=True),
        Arg("BURST", Burst, None, positional=True),
        Arg("ACTIVE", Bool, True, positional=True),
        Arg("LENGTH", PACKET_LENGTH, -1),
        Arg("STOP", Bool, False),
        Arg("TIMESTAMP", Bool, True),
    )

    def configure(self) -> None:
        super().configure()
        try:
            self._set_data()
        except ValueError as e:
            raise self.error(str(e)) from None

    def _set_data(self) -> None:
        self.payload = packet_data(self.data, self.length)
        self._template: PacketBatch | None = None

    def make_batch(self, n: int) -> PacketBatch:
        row = np.frombuffer(self.payload, np.uint8)
        data = np.broadcast_to(row, (n, len(row)))
        b = PacketBatch.from_arrays(data, np.full(n, len(row), np.int64))
        if self.timestamp:
            b.set_anno("timestamp", clock.time_ns())
        return b

    def run_task(self) -> bool:
        if not self.active:
            return False
        n = self.allowance()
        if n <= 0:
            self.maybe_stop()
            return False
        self.send(self.make_batch(n))
        self.maybe_stop()
        return True

    @read_handler("limit")
    def h_limit(self) -> int:
        """Total packets to send (-1: no limit)."""
        return self.limit

    @write_handler("limit")
    def h_set_limit(self, v: str) -> None:
        """Set the total packets to send."""
        self.limit = Int.parse(v)

    @read_handler("burst")
    def h_burst(self) -> int:
        """Packets per batch."""
        return self.kp

    @write_handler("burst")
    def h_set_burst(self, v: str) -> None:
        """Set packets per batch."""
        self.burst = Burst.parse(v)

    @read_handler("data")
    def h_data(self) -> str:
        """The packet contents, hex."""
        return "0x" + self.payload.hex()

    @read_handler("length")
    def h_length(self) -> int:
        """The packet length."""
        return len(self.payload)
