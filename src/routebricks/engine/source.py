"""Base class for elements that produce packets: the ``kp`` (packets per poll) knob, the
packet limit, Click's ``ACTIVE``/``LIMIT``/``STOP`` conventions."""

from __future__ import annotations

from typing import ClassVar

from routebricks.engine.args import Arg, Bool, Int, PosInt
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch

#: Packets per poll when neither the element (BURST) nor the command line (--kp) says.
DEFAULT_KP = 1024
#: The default of sources that read memory (a file, a generator): see Source.MEMORY_KP.
MEMORY_KP = 4096


class Source(Element):
    """A push source run as a task: each call emits one batch of up to ``kp`` packets."""

    ABSTRACT = True
    IS_SOURCE = True
    port_count = "0/1"
    processing = "/h"
    SOURCE_ARGS: ClassVar[tuple[Arg, ...]] = (
        Arg("BURST", PosInt, None, help="packets per batch (kp); default: --kp"),
        Arg("LIMIT", Int, -1, help="stop after this many packets (-1: no limit)"),
        Arg("ACTIVE", Bool, True),
        Arg("STOP", Bool, False, help="stop the router when done"),
    )

    #: Batch size of a source that reads memory, when neither BURST nor --kp is given (None:
    #: the router's kp, as a device poll). A poll of a device bounds the latency of what
    #: waits in its ring; a file or a generator has no such wait, and a batch costs a fixed
    #: ~10 µs of interpreter work per element, so bigger batches are free speed there
    #: (FromDump -> IP routing: 1.3x from kp 1024 to 4096, measured by
    #: benchmarks/end_to_end.py).
    MEMORY_KP: ClassVar[int | None] = None

    def configure(self) -> None:
        self.emitted = 0
        self._stop_sent = False

    @property
    def kp(self) -> int:
        if self.burst:
            return int(self.burst)
        r = self.router
        if self.MEMORY_KP is not None and not getattr(r, "kp_set", False):
            return self.MEMORY_KP
        return getattr(r, "kp", DEFAULT_KP)

    def allowance(self, want: int | None = None) -> int:
        """How many packets this call may emit: kp, the LIMIT left, the router's budget."""
        n = self.kp if want is None else min(want, self.kp)
        if self.limit >= 0:
            n = min(n, self.limit - self.emitted)
        if n <= 0 or self.router is None:
            return max(n, 0)
        return self.router.take(n)

    def finished(self) -> bool:
        """Subclasses: whether the source has nothing more of its own to send."""
        return False

    def is_done(self) -> bool:
        # A paused source (ACTIVE false) is not done: a handler may start it again, so it
        # keeps the router running, as in Click.
        return (
            self.finished()
            or (self.limit >= 0 and self.emitted >= self.limit)
            or (self.router is not None and self.router.exhausted())
        )

    def send(self, batch: PacketBatch) -> None:
        self.emitted += len(batch)
        self.emit(0, batch)

    def maybe_stop(self) -> None:
        """With STOP true, ask the router to stop once this source is done."""
        if self.stop and not self._stop_sent and self.is_done() and self.router is not None:
            self._stop_sent = True
            self.router.request_stop(f"{self.name} done")

    @read_handler("count")
    def h_count(self) -> int:
        """Packets emitted."""
        return self.emitted

    @read_handler("active")
    def h_active(self) -> bool:
        """Whether the source is sending."""
        return self.active

    @write_handler("active")
    def h_set_active(self, v: str) -> None:
        """Start (true) or pause (false) the source."""
        self.active = Bool.parse(v)

    @write_handler("reset")
    def h_reset(self, _: str) -> None:
        """Reset the emitted count (restarting a LIMIT)."""
        self.emitted = 0
        self._stop_sent = False
