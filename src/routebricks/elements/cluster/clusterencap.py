"""ClusterEncap: the input server's Ethernet header for a packet that leaves elsewhere."""

from __future__ import annotations

import numpy as np

from routebricks.elements.cluster.clusterpeers import DROP_NO_IP
from routebricks.elements.ethernet.etherencap import unparse_ether
from routebricks.engine.args import Arg, EtherAddress, IntRange
from routebricks.engine.element import Element, read_handler
from routebricks.packet import clustermac
from routebricks.packet.batch import PacketBatch
from routebricks.packet.ip import ETHERTYPE_IP, IP_DST, ip_positions

#: The link number in the default source address (``interface_mac(SERVER, 0xFFFF)``):
#: no internal interface has it.
DEFAULT_SRC_LINK = 0xFFFF


class ClusterEncap(Element):
    """Prepends an Ethernet header whose destination MAC encodes output server, port, next hop.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        SERVER (integer 0..255, positional, required): the output server j.
        PORT (integer 0..62, positional, required): the external port k on server j.
        SRC (Ethernet address, default ``fe:00:00:JJ:ff:ff`` with JJ = SERVER in hex): the
            source address; byte 0 0xFE is the internal interfaces' (never a cluster MAC).
    Behaviour: the next hop of each packet is its ``dst_ip`` annotation (the route's gateway,
        or the destination itself, as the route lookup sets it) or, where the batch has no
        such column or the annotation is 0.0.0.0, the IP header's destination (the header
        found by the network-header annotation, else at the data start; packets too short
        for it are dropped as "no IP header"). The header is
        ``clustermac.encode(SERVER, PORT, next hop)``, SRC, type 0x0800: bytes 0-1 and
        6-13 are the same for every packet and are written as EtherEncap writes its header
        (14 bytes of headroom made only if some packet lacks them); bytes 2-5 (the next
        hop) are then written in one compiled pass. Nothing else of the packet changes.
    Handlers:
        dst (read): the destination address's fixed part, ``server J port K``.
        src (read): the source address (``FE-00-00-02-FF-FF``).
    Example:
        rt[5] -> DecIPTTL -> ClusterEncap(SERVER 2, PORT 1) -> vlb;
    See also: DirectVLB, ClusterSwitch, ClusterDecap, EtherEncap
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (
        Arg("SERVER", IntRange(0, clustermac.MAX_SERVERS - 1), positional=True, required=True),
        Arg("PORT", IntRange(0, clustermac.MAX_PORTS - 1), positional=True, required=True),
        Arg("SRC", EtherAddress, None),
    )

    server: int
    port: int
    src: bytes | None

    def configure(self) -> None:
        if self.src is None:
            self.src = bytes.fromhex(
                clustermac.interface_mac(self.server, DEFAULT_SRC_LINK).replace(":", ""))
        # Bytes 2-5 of the template are overwritten per packet with the next hop.
        dst = clustermac.encode(self.server, self.port, 0)
        self._header = np.frombuffer(
            dst + self.src + ETHERTYPE_IP.to_bytes(2, "big"), np.uint8).copy()

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        if not len(batch):
            return batch
        next_hop = batch.annos.get("dst_ip")
        if next_hop is None or not next_hop.all():
            got = self._with_header_dst(batch, next_hop)
            if got is None:
                return None
            batch, next_hop = got
        out = batch.prepend(self._header)
        out.set_u32(2, next_hop)
        return out

    def _with_header_dst(self, batch: PacketBatch, anno: np.ndarray | None
                         ) -> tuple[PacketBatch, np.ndarray] | None:
        """The batch and its next hops, taken from the IP header where the annotation is
        missing or 0; packets with no IP header to read dropped (None: none left)."""
        missing = np.ones(len(batch), np.bool_) if anno is None else anno == 0
        pos = ip_positions(batch)
        short = missing & (batch.off + batch.length - pos < 20)
        if short.any():
            self.drop(int(np.count_nonzero(short)), DROP_NO_IP)
            keep = ~short
            batch, pos, missing = batch.select(keep), pos[keep], missing[keep]
            anno = None if anno is None else anno[keep]
            if not len(batch):
                return None
        hdr = batch.u32_at(pos[missing] + IP_DST)
        if anno is None:
            return batch, hdr
        next_hop = anno.astype(np.uint32, copy=True)
        next_hop[missing] = hdr
        return batch, next_hop

    @read_handler("dst")
    def h_dst(self) -> str:
        """The destination's fixed part: ``server J port K``."""
        return f"server {self.server} port {self.port}"

    @read_handler("src")
    def h_src(self) -> str:
        """The source address."""
        assert self.src is not None
        return unparse_ether(self.src)
