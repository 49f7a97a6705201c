"""ClusterSwitch: an intermediate or output server's switch, by the cluster MAC alone."""

from __future__ import annotations

import numpy as np

from routebricks.elements.cluster import kernels as _ck
from routebricks.elements.cluster.clusterpeers import (
    DROP_DOWN,
    DROP_NOT_CLUSTER,
    DROP_SERVER_RANGE,
    DROP_SHORT,
    ClusterPeers,
    emit_groups,
)
from routebricks.engine.element import read_handler, write_handler
from routebricks.packet.batch import PacketBatch


class ClusterSwitch(ClusterPeers):
    """Switches cluster frames by their output server (destination MAC byte 1) alone.

    Ports: 1 push input (frames from internal links); SERVERS push outputs: output x
        toward server x (phase 2 of VLB), output SELF to this server's ClusterDecap.
    Arguments:
        SELF (integer 0..255, required): this server's number in the cluster.
        SERVERS (integer 1..256, required): how many servers the cluster has (N).
    Behaviour: one compiled pass reads bytes 0 and 1 of each frame and groups the batch by
        output without copying packet bytes (a batch that goes to one output entirely
        leaves as it came). Frames whose destination is not a cluster MAC (byte 0 & 3 is
        not 2, or byte 0 is 0xFE: an internal interface's own address) are dropped as "not
        a cluster MAC"; a server number >= SERVERS as "output server out of range"; frames
        toward a server marked down (``peer``) as "output server down"; frames under 14
        bytes as "too short for Ethernet". The IP header is never read: the input server
        did the routing (RouteBricks §6.1).
    Handlers:
        peer (write): ``J down`` or ``J up`` (several: commas or new lines); takes effect
            at the next batch.
        peers (read): ``SERVER<TAB>up|down|self`` per server.
        counts (read): frames sent per output, ``COUNT<TAB>to J`` lines (summed over
            workers).
        reset (write): zero the counts.
    Example:
        FromDevice(to_s1, PROMISC true) -> c1 :: Classifier(0/fe0000000100, -);
        c1[1] -> sw :: ClusterSwitch(SELF 0, SERVERS 3);
        sw[0] -> dec :: ClusterDecap(PORTS 2);
        sw[1] -> ToDevice(to_s1);  sw[2] -> ToDevice(to_s2);
    See also: DirectVLB, ClusterDecap, ClusterEncap
    """

    JIT_WARMUP = (_ck.warmup,)
    READS = "ethernet"
    #: What ``cluster status`` counts this element's packets as: frames switched on to
    #: another server or to this one's ClusterDecap (status subtracts the latter).
    CLUSTER_ROLE = "switch"

    REASONS = (DROP_SHORT, DROP_NOT_CLUSTER, DROP_SERVER_RANGE, DROP_DOWN)

    def configure(self) -> None:
        super().configure()
        self.counts = np.zeros(self.servers, np.int64)
        #: Bytes sent toward each server (a DirectVLB with SWITCH this element charges
        #: them to its link budgets: phase-2 traffic shares the links).
        self.bytes_out = np.zeros(self.servers, np.int64)

    def initialize(self) -> None:
        self.check_outputs()

    def push(self, port: int, batch: PacketBatch) -> None:
        if not len(batch):
            return
        order, meta = _ck.switch_frames(batch.pool, batch.off, batch.length,
                                                   self.down, self.counts, self.bytes_out)
        # Drop codes as the kernel numbers them (its last, "self", never happens here:
        # frames for this server go to output SELF).
        emit_groups(self, batch, order, meta, self.servers, self.REASONS)

    @read_handler("counts", combine="merge")
    def h_counts(self) -> str:
        """Frames per output: ``COUNT<TAB>to J``."""
        return "\n".join(f"{int(c)}\tto {j}" for j, c in enumerate(self.counts) if c)

    @write_handler("reset")
    def h_reset(self, _value: str) -> None:
        """Zero the counts."""
        self.counts[...] = 0
