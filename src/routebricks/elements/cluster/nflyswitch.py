"""NflySwitch: one switch of a k-ary n-fly, stepping frames up or down by their MACs alone."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routebricks.elements.cluster import nflykernel as _nk
from routebricks.elements.cluster.clusterpeers import (
    DROP_NOT_CLUSTER,
    DROP_SERVER_RANGE,
    DROP_SHORT,
    emit_groups,
    parse_up_down,
)
from routebricks.engine.args import Arg, IntRange
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch
from routebricks.packet.clustermac import MAX_PATHS, MAX_SERVERS

DROP_NEXT_DOWN = "next server down"
DROP_NO_PATH = "no path in the frame"


class NflySwitch(Element):
    """Steps frames through switch (STAGE, w) of a folded k-ary n-fly, by their MACs alone.

    Ports: 1 or 2 push inputs: input 0 frames from below (the down links), input 1 frames
        from above (the up links; none at the top stage). 2K push outputs (K at the top
        stage): output j (0..K-1) down link j, output K + j up link j.
    Arguments:
        K (integer 2..255, required): the switches' degree.
        STAGES (integer 1..16, required): n, the butterfly's stages.
        STAGE (integer 1..16, required): this switch's stage (1: the io servers' own).
    Behaviour: the frames' output server d (byte 1 of the destination MAC, a terminal
        number below K^STAGES) and path X (bytes 1-2 of the source MAC: 1 + X, see
        ``routebricks.packet.clustermac``) steer them: from below, below the top stage, up
        output K + X's digit STAGE-1 (base K); at the top stage and from above, down
        output d's digit STAGE-1 (destination-tag routing). An up link marked down
        (``peer``) is replaced by another live one, the same for every frame of a path and
        output server, whose digit is written into the frame's path (so a flow keeps its
        order, and the switches above follow the new path). One compiled pass per batch
        reads bytes 0-1 and 7-8 of each frame and groups the batch by output without
        copying packet bytes; the IP header is never read. Drops: "next server down" (the
        down link a frame needs, or every up link, is down), "output server out of range"
        (d >= K^STAGES, or a path beyond K^(STAGES-1)), "no path in the frame" (a frame
        going up with path field 0: a full mesh's frame), "not a cluster MAC", "too short
        for Ethernet".
    Handlers:
        peer (write): ``P down`` or ``P up`` (several: commas or new lines): output P's
            neighbour (BFD's NOTIFY with PEER_ID P); takes effect at the next batch.
        peers (read): ``OUTPUT<TAB>up|down`` per output.
        counts (read): frames sent per output, ``COUNT<TAB>down J`` and ``COUNT<TAB>up J``
            lines (summed over workers).
        rerouted (read): frames sent up another link than their path's (summed).
        reset (write): zero the counts.
    Example:
        sw :: NflySwitch(K 2, STAGES 2, STAGE 1);
        FromDevice(to-s1) -> [0] sw;  FromDevice(to-i2-0) -> [1] sw;
        sw [0] -> ToDevice(to-s1);  sw [2] -> ToDevice(to-i2-0);  ...
    See also: NflyVLB, ClusterSwitch, ClusterDecap
    """

    JIT_WARMUP = (_nk.warmup,)
    READS = "ethernet"
    #: What ``cluster status`` counts this element's packets as.
    CLUSTER_ROLE = "intermediate"

    port_count = "1-2/1-"
    processing = "h/h"
    ARGS: ClassVar[tuple[Arg, ...]] = (
        Arg("K", IntRange(2, 255), required=True),
        Arg("STAGES", IntRange(1, 16), required=True),
        Arg("STAGE", IntRange(1, 16), required=True),
    )
    REASONS = (DROP_SHORT, DROP_NOT_CLUSTER, DROP_SERVER_RANGE, DROP_NEXT_DOWN, DROP_NO_PATH)

    k: int
    stages: int
    stage: int

    def configure(self) -> None:
        if self.stage > self.stages:
            raise self.error(f"STAGE {self.stage} is beyond STAGES {self.stages}",
                             f"stages are numbered 1 to {self.stages}")
        terminals = self.k**self.stages
        paths = self.k ** (self.stages - 1)
        if paths > MAX_PATHS or terminals > MAX_SERVERS:
            raise self.error(f"a {self.k}-ary {self.stages}-fly has {terminals} io "
                             f"servers; a cluster MAC names at most {MAX_SERVERS}")
        self.top = self.stage == self.stages
        self.nout = self.k if self.top else 2 * self.k
        self.down = np.zeros(self.nout, np.bool_)
        self.counts = np.zeros(self.nout, np.int64)
        self.rerouted = np.zeros(1, np.int64)
        self._ints = [np.array([self.k, self.stage, self.stages, terminals, paths, side],
                               np.int64) for side in (0, 1)]

    def initialize(self) -> None:
        if self.router is None:
            return
        if self.noutputs != self.nout:
            raise self.error(f"has {self.noutputs} output{'s' if self.noutputs != 1 else ''}"
                             f" but stage {self.stage} of {self.stages} has {self.nout}",
                             f"connect outputs 0 to {self.k - 1} down"
                             + ("" if self.top else f", {self.k} to {self.nout - 1} up"))
        if self.top and self.ninputs > 1:
            raise self.error("the top stage has no input 1 (no link goes further up)")

    def push(self, port: int, batch: PacketBatch) -> None:
        if not len(batch):
            return
        order, meta = _nk.nfly_switch(batch.pool, batch.off, batch.length, self._ints[port],
                                      self.down, self.counts, self.rerouted)
        emit_groups(self, batch, order, meta, self.nout, self.REASONS)

    @write_handler("peer")
    def h_peer(self, value: str) -> None:
        """Mark outputs' neighbours down or up: ``P down``, ``P up`` (several: commas or
        lines)."""
        for p, is_down in parse_up_down(value, "output", self.nout):
            self.down[p] = is_down

    @read_handler("peers")
    def h_peers(self) -> str:
        """Each output's neighbour: ``OUTPUT<TAB>up`` or ``down``."""
        return "\n".join(f"{p}\t{'down' if d else 'up'}" for p, d in enumerate(self.down))

    @read_handler("counts", combine="merge")
    def h_counts(self) -> str:
        """Frames per output: ``COUNT<TAB>down J``, ``COUNT<TAB>up J``."""
        k = self.k
        return "\n".join(f"{int(c)}\t{'down' if p < k else 'up'} {p % k}"
                         for p, c in enumerate(self.counts) if c)

    @read_handler("rerouted", combine="sum")
    def h_rerouted(self) -> int:
        """Frames sent up another link than their path's."""
        return int(self.rerouted[0])

    @write_handler("reset")
    def h_reset(self, _value: str) -> None:
        """Zero the counts."""
        self.counts[...] = 0
        self.rerouted[...] = 0
