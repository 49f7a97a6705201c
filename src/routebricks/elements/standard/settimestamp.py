"""SetTimestamp: stores a time in every packet's timestamp annotation."""

from __future__ import annotations

import numpy as np

from routebricks.engine import clock
from routebricks.engine.args import Arg, Bool, Raw
from routebricks.engine.element import Element, read_handler
from routebricks.packet.batch import PacketBatch, register_annotation

register_annotation("first_timestamp", np.int64)  # Click's FIRST_TIMESTAMP annotation


def parse_timestamp(text: str) -> int:
    """``SEC[.FRACTION]`` (seconds since the epoch) → nanoseconds."""
    t = text.strip()
    sec, dot, frac = t.partition(".")
    if not sec.lstrip("-").isdecimal() or (dot and not (frac.isdecimal() and len(frac) <= 9)):
        raise ValueError("expected a time such as 1000000000.5 (seconds since the epoch)")
    ns = int(sec) * 1_000_000_000
    return ns + (int(frac.ljust(9, "0")) if dot else 0) * (-1 if sec.startswith("-") else 1)


class SetTimestamp(Element):
    """Stores TIMESTAMP (or the time now) in every packet's timestamp annotation.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        TIMESTAMP (time since the epoch, positional, default now): e.g. 1000000000.25.
        FIRST (bool, default false): set the "first timestamp" annotation instead.
    Behaviour: without TIMESTAMP, every packet of a batch gets the time the batch arrived
        (the simulated time under --simtime); nanosecond resolution.
    Handlers:
        timestamp (read): TIMESTAMP, or "now".
    Example:
        FromDevice(eth0) -> SetTimestamp -> Queue -> DelayUnqueue(10ms) -> ToDevice(eth1);
    See also: DelayUnqueue, Print
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (
        Arg("TIMESTAMP", Raw, None, positional=True, attr="timestamp_arg"),
        Arg("FIRST", Bool, False),
    )

    def configure(self) -> None:
        self.fixed: int | None = None
        if self.timestamp_arg is not None and self.timestamp_arg.strip():
            try:
                self.fixed = parse_timestamp(self.timestamp_arg)
            except ValueError as e:
                raise self.error(f"bad value {self.timestamp_arg!r} for TIMESTAMP: {e}"
                                 ) from None

    def process(self, batch: PacketBatch) -> PacketBatch:
        if len(batch):
            value = self.fixed if self.fixed is not None else clock.time_ns()
            batch.annos["first_timestamp" if self.first else "timestamp"] = np.full(
                len(batch), value, np.int64)
        return batch

    @read_handler("timestamp")
    def h_timestamp(self) -> str:
        """The time stored, or "now"."""
        if self.fixed is None:
            return "now"
        return f"{self.fixed // 1_000_000_000}.{self.fixed % 1_000_000_000:09d}"
