"""ClusterDecap: the output server's last step, from cluster frame to IP packet on its port."""

from __future__ import annotations

import numpy as np

from routebricks.elements.cluster import kernels as _ck
from routebricks.elements.cluster.clusterpeers import (
    DROP_NOT_CLUSTER,
    DROP_PORT_RANGE,
    DROP_SHORT,
    emit_groups,
)
from routebricks.engine.args import Arg, IntRange
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch
from routebricks.packet.clustermac import MAX_PORTS


class ClusterDecap(Element):
    """Turns cluster frames back into IP packets bound for their encoded port and next hop.

    Ports: 1 push input (frames ClusterSwitch sends to this server); PORTS push outputs,
        output k to this server's external port k (its ARPQuerier).
    Arguments:
        PORTS (integer 1..63, positional, required): this server's external ports.
    Behaviour: one compiled pass reads the destination MAC of each frame (a cluster MAC,
        ``routebricks.packet.clustermac``): the port is byte 0 >> 2, the next hop bytes 2-5.
        Every packet's ``dst_ip`` annotation is set to its next hop, 14 bytes are stripped
        (the offsets move; no byte is copied or written) and the batch is split by port.
        The IP header is neither read nor changed: the input server checked it, routed the
        packet and decremented its TTL. Drops: "output port out of range" (port >= PORTS),
        "not a cluster MAC", "too short for Ethernet".
    Handlers:
        counts (read): packets sent per port, ``COUNT<TAB>port K`` lines (summed over
            workers).
        reset (write): zero the counts.
    Example:
        sw[0] -> dec :: ClusterDecap(PORTS 2);
        dec[0] -> [0] arpq0;  dec[1] -> [0] arpq1;
    See also: ClusterSwitch, ClusterEncap, ARPQuerier
    """

    JIT_WARMUP = (_ck.warmup,)
    READS = "ethernet"
    #: What ``cluster status`` counts this element's packets as.
    CLUSTER_ROLE = "output"

    port_count = "1/1-"
    processing = "h/h"
    ARGS = (Arg("PORTS", IntRange(1, MAX_PORTS), positional=True, required=True),)
    REASONS = (DROP_SHORT, DROP_NOT_CLUSTER, DROP_PORT_RANGE)

    ports: int

    def configure(self) -> None:
        self.counts = np.zeros(self.ports, np.int64)

    def initialize(self) -> None:
        if self.router is not None and self.noutputs != self.ports:
            raise self.error(f"has {self.noutputs} output{'s' if self.noutputs != 1 else ''} "
                             f"but PORTS is {self.ports}",
                             f"connect outputs 0 to {self.ports - 1}, one per port")

    def push(self, port: int, batch: PacketBatch) -> None:
        if not len(batch):
            return
        next_hop, order, meta = _ck.decap_frames(batch.pool, batch.off,
                                                             batch.length, self.counts)
        # A new column: the old one may be shared with the batch this one was cut from.
        batch.annos["dst_ip"] = next_hop
        batch.pull_front(_ck.ETHER_HLEN)
        emit_groups(self, batch, order, meta, self.ports, self.REASONS)

    @read_handler("counts", combine="merge")
    def h_counts(self) -> str:
        """Packets per port: ``COUNT<TAB>port K``."""
        return "\n".join(f"{int(c)}\tport {k}" for k, c in enumerate(self.counts) if c)

    @write_handler("reset")
    def h_reset(self, _value: str) -> None:
        """Zero the counts."""
        self.counts[...] = 0
