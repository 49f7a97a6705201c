"""DirectVLB: the input server's choice of the next server, Direct VLB with flowlets."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routebricks.elements.cluster import vlbkernel as _vk
from routebricks.elements.cluster.clusterpeers import (
    DROP_DOWN,
    DROP_NOT_CLUSTER,
    DROP_SELF,
    DROP_SERVER_RANGE,
    DROP_SHORT,
    ClusterPeers,
    emit_groups,
)
from routebricks.elements.cluster.flowletvlb import FlowletVLB
from routebricks.engine.args import Arg, Bandwidth, Word
from routebricks.engine.element import read_handler
from routebricks.packet.batch import PacketBatch

_NO_NH = np.zeros(0, np.int64)


class DirectVLB(ClusterPeers, FlowletVLB):
    """Picks each frame's next server in the cluster: Direct VLB with flowlets (§3.2, §6.1).

    Ports: 1 push input (frames from ClusterEncap); SERVERS push outputs, output x toward
        server x (output SELF never receives: connect it to Discard).
    Arguments:
        SELF (integer 0..255, required): this server's number in the cluster.
        SERVERS (integer 1..256, required): how many servers the cluster has (N).
        LINK_RATE (bandwidth, required): the rate of each internal link (``10Mbps``;
            a full mesh needs 2R/N).
        DIRECT_RATE (bandwidth, default LINK_RATE): at most this much traffic toward one
            server goes straight to it; set R/N for the paper's Direct VLB rule.
        DELTA (time, default 100ms): a flow's packets less than DELTA apart are one
            flowlet (the paper's δ).
        MODE (``direct`` or ``classic``, default direct): Direct VLB, or classic VLB
            (every packet or flowlet through a random one of the N servers).
        FLOWLETS (bool, default true): keep each flowlet on one path (Flare); false
            decides every packet on its own (the paper's "Direct VLB without our
            extension").
        BURST (bytes, default 20 ms of LINK_RATE, at least 3028): the most each token
            bucket holds, and the most debt it runs into.
        SEED (unsigned, default from the system): seed of the random choices (classic
            VLB, ties between intermediates), for repeatable runs.
        FLOW_TABLE (positive integer, default 65536): flowlet table entries (rounded up
            to a power of two), in pairs: a flow has the two entries of the pair its hash
            names, and a third flow there takes the entry of the one seen longer ago.
        SWITCH (element name, optional): the ClusterSwitch of this server, whose phase-2
            frames share the links: what it sent on each link is charged to that link.
    Behaviour: the output server j of a frame is byte 1 of its destination MAC (a cluster
        MAC, see ``routebricks.packet.clustermac``); flows are told apart by a hash of the
        IPv4 5-tuple behind the Ethernet header (the network-header annotation, else byte
        14). Time is read once per batch (``clock``, monotonic nanoseconds). Byte token
        buckets, refilled at each batch by the time since the last (up to BURST):
        link[x] at LINK_RATE for everything sent on the
        link to x (direct, phase 1, and the SWITCH's phase 2), and direct[x] at
        DIRECT_RATE for traffic straight to x. A packet sent takes its length out of its
        buckets (down to -BURST at most). Direct mode: a packet goes straight to j while
        direct[j] and link[j] are positive ("what the direct link can carry"), else
        through the intermediate x (not SELF, not j, not down) whose link bucket is
        fullest — with budget, or the least behind when none has any (the link's queue
        decides; equal ones alike at random); straight to j when there is no
        intermediate. Classic mode: through a random one of the N servers that are up
        (SELF or j: straight to j).
        Flowlets: a packet of a flow seen at most DELTA ago toward the same j takes its
        flowlet's path unless that path is full — the packet would take its bucket below
        -BURST, so a flowlet may run one burst over its path's rate; when its path is full
        the flowlet moves whole to a path chosen as above if that path has room, and when
        no path has room its packets are spread one by one (classic VLB's rule, §6.1); a
        new flowlet picks a path as above. Flow state lives in a fixed-size table indexed
        by the flow hash; all of it is one compiled pass per batch. With W workers each
        meters 1/W of the rates (flows are spread over workers by the receive fanout).
        Drops: "output server down" (j marked down with ``peer``; down servers are never
        intermediates either), "output server is this server" (j = SELF: a configuration
        error upstream), "output server out of range" (j >= SERVERS), "not a cluster MAC", "too
        short for Ethernet".
    Handlers:
        peer (write): ``J down`` or ``J up`` (several: commas or new lines); takes effect
            at the next batch.
        peers (read): ``SERVER<TAB>up|down|self`` per server.
        paths (read): packets per path, ``COUNT<TAB>direct J`` and ``COUNT<TAB>via X to J``
            lines (summed over workers).
        flowlets (read): ``COUNT<TAB>new flowlets``, ``COUNT<TAB>kept on path`` (packets
            sent on their flowlet's path), ``COUNT<TAB>moved, path full`` (flowlets moved
            to a path with room), ``COUNT<TAB>spread, no path with room`` (packets).
        reset (write): zero the path counts and flowlet statistics.
    Example:
        vlb :: DirectVLB(SELF 0, SERVERS 4, LINK_RATE 10Mbps, DELTA 100ms);
        rt[2] -> DecIPTTL -> ClusterEncap(SERVER 2, PORT 1) -> vlb;
        vlb[0] -> Discard;  vlb[1] -> ToDevice(to_s1);
        vlb[2] -> ToDevice(to_s2);  vlb[3] -> ToDevice(to_s3);
    See also: ClusterEncap, ClusterSwitch, ClusterDecap
    """

    JIT_WARMUP = (_vk.warmup,)

    ARGS: ClassVar[tuple[Arg, ...]] = (
        *ClusterPeers.ARGS,
        Arg("LINK_RATE", Bandwidth, required=True),
        Arg("DIRECT_RATE", Bandwidth, None),
        *FlowletVLB.ARGS,
        Arg("SWITCH", Word, None),
    )
    REASONS = (DROP_SHORT, DROP_NOT_CLUSTER, DROP_SERVER_RANGE, DROP_DOWN, DROP_SELF)

    direct_rate: float | None
    switch: str | None

    def configure(self) -> None:
        super().configure()
        if self.link_rate <= 0:
            raise self.error("LINK_RATE must be more than 0")
        if self.direct_rate is None:
            self.direct_rate = self.link_rate  # direct while the link has room
        if self.direct_rate > self.link_rate:
            raise self.error("DIRECT_RATE is more than LINK_RATE",
                             "DIRECT_RATE is the part of LINK_RATE for direct traffic")
        self.check_burst_and_table()
        self._switch = None
        self._setup(1, 0)

    def initialize(self) -> None:
        self.check_outputs()
        self._switch = None
        if self.switch is not None:
            sw = self.router.elements.get(self.switch) if self.router is not None else None
            if sw is None or not hasattr(sw, "bytes_out") or len(sw.bytes_out) != self.servers:
                raise self.error(f"SWITCH {self.switch!r} is not a ClusterSwitch with "
                                 f"{self.servers} outputs",
                                 "name the ClusterSwitch whose frames share the links")
            self._switch = sw
            self._switch_seen = sw.bytes_out.copy()
        self._setup(*self.workers())

    def _setup(self, nworkers: int, worker: int) -> None:
        """Buckets, flow table and generator for one of ``nworkers`` workers."""
        assert self.direct_rate is not None and self.burst is not None
        n = self.servers
        self.setup_flowlets(worker)
        self._ints[_vk.I_ME] = self.me
        self._rates = np.zeros(3)
        # Bytes per nanosecond, this worker's share.
        self._rates[_vk.R_DIRECT] = self.direct_rate / nworkers / 1e9
        self._rates[_vk.R_LINK] = self.link_rate / nworkers / 1e9
        self._rates[_vk.R_BURST] = self.burst
        self._buckets = np.full((2, n), float(self.burst))
        self.counts = np.zeros((n, n), np.int64)
        self._no_forwarding = np.zeros(n)

    def push(self, port: int, batch: PacketBatch) -> None:
        if not len(batch):
            return
        ints = self.tick()
        nh = batch.annos.get("nh")
        if self._switch is not None:
            sent = self._switch.bytes_out
            forwarded = (sent - self._switch_seen).astype(np.float64)
            self._switch_seen = sent.copy()
        else:
            forwarded = self._no_forwarding
        order, meta = _vk.vlb_route(
            batch.pool, batch.off, batch.length, _NO_NH if nh is None else nh, nh is not None,
            self.down, ints, self._rates, self._buckets, self._flows, self._rng, self.counts,
            self.stats, forwarded)
        emit_groups(self, batch, order, meta, self.servers, self.REASONS)

    @read_handler("paths", combine="merge")
    def h_paths(self) -> str:
        """Packets per path: ``COUNT<TAB>direct J``, ``COUNT<TAB>via X to J``."""
        lines = []
        for j in range(self.servers):
            for p in range(self.servers):
                c = int(self.counts[p, j])
                if c:
                    lines.append(f"{c}\t" + (f"direct {j}" if p == j else f"via {p} to {j}"))
        return "\n".join(lines)
