"""FlowletVLB: what DirectVLB and NflyVLB share — the flowlet arguments, the flowlet
table and generator, the clock read once per batch, and the flowlet statistics."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from routebricks.elements.cluster import flowletkernel as _fk
from routebricks.engine import clock
from routebricks.engine.args import Arg, Bool, Choice, PosInt, Seconds, UInt
from routebricks.engine.element import Element, read_handler, write_handler

#: Burst of every bucket when BURST is not given: this much of LINK_RATE, at least
#: two full-size frames. A bucket ranges over two bursts (from BURST to -BURST): 40 ms
#: of the link, within the 50 ms queue that ``cluster up`` gives its links, and longer
#: than a batch takes to gather on a loaded machine.
DEFAULT_BURST_TIME = 0.020
MIN_DEFAULT_BURST = 2 * 1514


class FlowletVLB(Element):
    """Base of the elements that pick VLB paths per flowlet (DirectVLB, NflyVLB): the
    flowlet arguments, the flowlet table, and the ``flowlets`` and ``reset`` handlers.

    Ports: as the subclass.
    Arguments:
        DELTA (time, default 100ms): a flow's packets less than DELTA apart are one
            flowlet (the paper's δ).
        MODE (``direct`` or ``classic``, default direct): how a new flowlet picks its
            path, as the subclass says.
        FLOWLETS (bool, default true): keep each flowlet on one path; false decides
            every packet on its own.
        BURST (bytes, default 20 ms of the subclass's LINK_RATE, at least 3028): the most
            each token bucket holds, and the most debt it runs into.
        SEED (unsigned, default from the system): seed of the random choices.
        FLOW_TABLE (positive integer, default 65536): flowlet table entries (rounded up
            to a power of two), in pairs.
    Behaviour: reads the clock once per batch; the subclass's compiled pass keeps, moves
        or spreads each packet's flowlet (``routebricks.elements.cluster.flowletkernel``)
        and counts what it did.
    Handlers:
        flowlets (read): new flowlets, packets kept on path, flowlets moved, packets
            spread.
        reset (write): zero the path counts and flowlet statistics.
    Example:
        see DirectVLB, NflyVLB
    """

    ABSTRACT = True
    ARGS: ClassVar[tuple[Arg, ...]] = (
        Arg("DELTA", Seconds, 0.1),
        Arg("MODE", Choice("direct", "classic"), "direct"),
        Arg("FLOWLETS", Bool, True),
        Arg("BURST", UInt, None),
        Arg("SEED", UInt, None),
        Arg("FLOW_TABLE", PosInt, 65536),
    )

    #: The clock (monotonic nanoseconds), read once per batch; tests may replace it.
    clock: Callable[[], int] = staticmethod(clock.monotonic_ns)

    link_rate: float  # the subclass's LINK_RATE
    delta: float
    mode: str
    flowlets: bool
    burst: int | None
    seed: int | None
    flow_table: int
    counts: np.ndarray  # packets per path, the subclass's shape

    def check_burst_and_table(self) -> None:
        """BURST's default (from LINK_RATE), and BURST and FLOW_TABLE checked."""
        if self.burst is None:
            self.burst = max(MIN_DEFAULT_BURST, int(self.link_rate * DEFAULT_BURST_TIME))
        if self.burst == 0:
            raise self.error("BURST must be more than 0")
        if self.flow_table > 1 << 26:
            raise self.error(f"FLOW_TABLE {self.flow_table} is too large (at most 67108864)")

    def workers(self) -> tuple[int, int]:
        """How many workers the router runs and which one this is: each meters 1/W of
        the rates (flows are spread over workers by the receive fanout)."""
        router = self.router
        return max(1, getattr(router, "nworkers", 1)), getattr(router, "worker_id", 0)

    def setup_flowlets(self, worker: int) -> None:
        """The kernel's flowlet parameters (``_ints``; the subclass fills its own slot),
        flow table, generator and statistics, for worker ``worker``."""
        self._ints = np.zeros(_fk.NINTS, np.int64)
        self._ints[_fk.I_CLASSIC] = self.mode == "classic"
        self._ints[_fk.I_FLOWLETS] = self.flowlets
        self._ints[_fk.I_DELTA] = round(self.delta * 1e9)
        size = 1 << max(1, (self.flow_table - 1).bit_length())
        self._flows = np.zeros((size, 2), np.uint64)
        self._flows[:, _fk.F_KEY] = _fk.EMPTY_KEY
        seed = self.seed if self.seed is not None else int.from_bytes(os.urandom(8), "little")
        # Workers seeded apart, so that they do not make the same choices.
        seed = (seed * 0x9E3779B97F4A7C15 + worker + 1) & 0xFFFFFFFFFFFFFFFF
        self._rng = np.array([seed or 1], np.uint64)  # xorshift's state is never 0
        self._last: int | None = None
        self.stats = np.zeros(4, np.int64)

    def tick(self) -> np.ndarray:
        """Read the clock for a batch: the kernel's ``ints``, with the time and the time
        since the previous batch."""
        now = int(self.clock())
        ints = self._ints
        ints[_fk.I_NOW] = now
        ints[_fk.I_ELAPSED] = 0 if self._last is None else max(0, now - self._last)
        self._last = now
        return ints

    @read_handler("flowlets", combine="merge")
    def h_flowlets(self) -> str:
        """Flowlet statistics: new flowlets, packets kept on path, flowlets moved to a
        path with room, packets spread (no path had room)."""
        s = self.stats
        return (f"{s[_fk.STAT_NEW]}\tnew flowlets\n{s[_fk.STAT_KEPT]}\tkept on path\n"
                f"{s[_fk.STAT_MOVED]}\tmoved, path full\n"
                f"{s[_fk.STAT_SPREAD]}\tspread, no path with room")

    @write_handler("reset")
    def h_reset(self, _value: str) -> None:
        """Zero the path counts and flowlet statistics."""
        self.counts[...] = 0
        self.stats[...] = 0
