"""NflyVLB: an io server's choice of a path through a k-ary n-fly, VLB with flowlets."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routebricks.elements.cluster import nflykernel as _nk
from routebricks.elements.cluster.clusterpeers import (
    DROP_NOT_CLUSTER,
    DROP_SHORT,
    emit_groups,
    parse_up_down,
)
from routebricks.elements.cluster.flowletvlb import FlowletVLB
from routebricks.engine.args import Arg, Bandwidth, IntRange
from routebricks.engine.element import read_handler, write_handler
from routebricks.packet.batch import PacketBatch
from routebricks.packet.clustermac import MAX_PATHS

DROP_NO_PATH = "no path up"
_NO_NH = np.zeros(0, np.int64)


class NflyVLB(FlowletVLB):
    """Picks each frame's path through a k-ary n-fly: VLB over its top-stage switches (§3.3).

    Ports: 1 push input (frames from ClusterEncap); 1 push output (the link to this io
        server's stage-1 switch).
    Arguments:
        PATHS (integer 1..65535, required): the paths, one per top-stage switch
            (k^(n-1)).
        LINK_RATE (bandwidth, required): the rate of the link up.
        PATH_RATE (bandwidth, default LINK_RATE / PATHS): each path's share of it, the
            rate VLB spreads a uniform load at.
        DELTA (time, default 100ms): a flow's packets less than DELTA apart are one
            flowlet (the paper's δ).
        MODE (``direct`` or ``classic``, default direct): a new flowlet takes the path
            whose budget is fullest (direct: a butterfly has no direct path, so this is
            Direct VLB's choice among intermediates), or one at random (classic).
        FLOWLETS (bool, default true): keep each flowlet on one path; false decides
            every packet on its own.
        BURST (bytes, default 20 ms of LINK_RATE, at least 3028): the most each path's
            bucket holds, and the most debt it runs into.
        SEED (unsigned, default from the system): seed of the random choices.
        FLOW_TABLE (positive integer, default 65536): flowlet table entries, as
            DirectVLB's.
    Behaviour: the output server of a frame is byte 1 of its destination MAC (a cluster
        MAC); flows are told apart by a hash of the IPv4 5-tuple behind the Ethernet header
        (the network-header annotation, else byte 14). Each path has a byte token bucket at
        PATH_RATE, refilled at each batch (within -BURST..BURST). A packet of a flowlet
        seen at most DELTA ago toward the same output keeps its path while that path is
        live and the packet leaves its bucket at or above -BURST; when the path is full
        the flowlet moves whole to a path with budget, and when none has any its packets
        are spread one by one (§6.1); a new flowlet picks a path as MODE says, among the
        live ones. The path, 1 + X, is written into bytes 1-2 of the source address
        (``routebricks.packet.clustermac``), where the switches up to the top stage read
        it; nothing else of the frame changes. One compiled pass per batch. With W
        workers each meters 1/W of the rates.
        Drops: "no path up" (the link up is down — ``peer`` — or every path is),
        "not a cluster MAC", "too short for Ethernet".
    Handlers:
        peer (write): ``0 down`` or ``0 up``: the link up's state (BFD's NOTIFY with
            PEER_ID 0).
        path (write): ``X down`` or ``X up`` (several: commas or new lines): paths that
            new flowlets avoid; takes effect at the next batch.
        paths (read): packets per path, ``COUNT<TAB>path X`` lines (summed over workers).
        flowlets (read): as DirectVLB's: new flowlets, packets kept on path, flowlets
            moved, packets spread.
        reset (write): zero the path counts and flowlet statistics.
    Example:
        rt[2] -> PortOutput(...) -> ClusterEncap(SERVER 2, PORT 0) -> vlb;
        vlb :: NflyVLB(PATHS 2, LINK_RATE 20Mbps) -> ToDevice(to-i1-0);
    See also: NflySwitch, ClusterEncap, ClusterDecap, DirectVLB
    """

    JIT_WARMUP = (_nk.warmup,)

    port_count = "1/1"
    processing = "h/h"
    ARGS: ClassVar[tuple[Arg, ...]] = (
        Arg("PATHS", IntRange(1, MAX_PATHS), required=True),
        Arg("LINK_RATE", Bandwidth, required=True),
        Arg("PATH_RATE", Bandwidth, None),
        *FlowletVLB.ARGS,
    )
    REASONS = (DROP_SHORT, DROP_NOT_CLUSTER, DROP_NO_PATH, DROP_NO_PATH, DROP_NO_PATH)

    paths: int
    path_rate: float | None

    def configure(self) -> None:
        if self.link_rate <= 0:
            raise self.error("LINK_RATE must be more than 0")
        if self.path_rate is None:
            self.path_rate = self.link_rate / self.paths
        if self.path_rate <= 0:
            raise self.error("PATH_RATE must be more than 0")
        self.check_burst_and_table()
        self.down = np.zeros(self.paths, np.bool_)
        self._setup(1, 0)

    def initialize(self) -> None:
        self._setup(*self.workers())

    def _setup(self, nworkers: int, worker: int) -> None:
        """Buckets, flow table and generator for one of ``nworkers`` workers."""
        assert self.path_rate is not None and self.burst is not None
        # The link's state, as ``peer`` last said, outlives a new setup.
        uplink_down = self._ints[_nk.I_UPLINK_DOWN] if hasattr(self, "_ints") else 0
        self.setup_flowlets(worker)
        self._ints[_nk.I_UPLINK_DOWN] = uplink_down
        self._rates = np.array([self.path_rate / nworkers / 1e9, float(self.burst)])
        self._buckets = np.full(self.paths, float(self.burst))
        self.counts = np.zeros(self.paths, np.int64)

    def push(self, port: int, batch: PacketBatch) -> None:
        if not len(batch):
            return
        ints = self.tick()
        nh = batch.annos.get("nh")
        order, meta = _nk.nfly_route(
            batch.pool, batch.off, batch.length, _NO_NH if nh is None else nh, nh is not None,
            ints, self._rates, self._buckets, self.down, self._flows, self._rng, self.counts,
            self.stats)
        emit_groups(self, batch, order, meta, 1, self.REASONS)

    @write_handler("peer")
    def h_peer(self, value: str) -> None:
        """The link up's state: ``0 down`` or ``0 up``."""
        for _, is_down in parse_up_down(value, "peer", 1):
            self._ints[_nk.I_UPLINK_DOWN] = is_down

    @write_handler("path")
    def h_path(self, value: str) -> None:
        """Mark paths down or up: ``X down``, ``X up`` (several: commas or lines)."""
        for x, is_down in parse_up_down(value, "path", self.paths):
            self.down[x] = is_down

    @read_handler("paths", combine="merge")
    def h_paths(self) -> str:
        """Packets per path: ``COUNT<TAB>path X``."""
        return "\n".join(f"{int(c)}\tpath {x}" for x, c in enumerate(self.counts) if c)
