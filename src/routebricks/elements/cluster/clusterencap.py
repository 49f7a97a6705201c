"""ClusterEncap: the input server's Ethernet header for a packet that leaves elsewhere."""

from __future__ import annotations

import numpy as np

from routebricks.elements.cluster import kernels as _ck
from routebricks.elements.cluster.clusterpeers import DROP_NO_IP
from routebricks.elements.ethernet.etherencap import unparse_ether
from routebricks.engine.args import Arg, EtherAddress, IntRange
from routebricks.engine.element import Element, read_handler
from routebricks.packet import clustermac
from routebricks.packet.batch import PacketBatch
from routebricks.packet.ip import ETHERTYPE_IP

#: The link number in the default source address (``interface_mac(SERVER, 0xFFFF)``):
#: no internal interface has it.
DEFAULT_SRC_LINK = clustermac.SOURCE_LINK
_NO_ANNO = np.zeros(0, np.uint32)
_NO_NH = np.zeros(0, np.int64)


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
        ``clustermac.encode(SERVER, PORT, next hop)``, SRC, type 0x0800, written in one
        compiled pass into the packets' headroom (made, as EtherEncap makes it, only if
        some packet lacks 14 bytes). Nothing else of the packet changes.
    Handlers:
        dst (read): the destination address's fixed part, ``server J port K``.
        src (read): the source address (``FE-00-00-02-FF-FF``).
    Example:
        rt[5] -> DecIPTTL -> ClusterEncap(SERVER 2, PORT 1) -> vlb;
    See also: DirectVLB, ClusterSwitch, ClusterDecap, EtherEncap
    """

    JIT_WARMUP = (_ck.warmup,)

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
            self.src = clustermac.source(self.server)  # no path: a k-ary n-fly's NflyVLB
            # writes one into bytes 1-2
        # Bytes 2-5 of the template are overwritten per packet with the next hop.
        dst = clustermac.encode(self.server, self.port, 0)
        self._header = np.frombuffer(
            dst + self.src + ETHERTYPE_IP.to_bytes(2, "big"), np.uint8).copy()

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        n = len(batch)
        if not n:
            return batch
        batch = batch.ensure_room(head=_ck.ETHER_HLEN)
        anno = batch.annos.get("dst_ip")
        nh = batch.annos.get("nh")
        off, length, ok, bad = _ck.encap_frames(
            batch.pool, batch.off, batch.length, self._header,
            _NO_ANNO if anno is None else anno, anno is not None,
            _NO_NH if nh is None else nh, nh is not None)
        # New columns: the old ones may be shared with the batch this one was cut from.
        batch.off, batch.length = off, length
        batch.headroom -= _ck.ETHER_HLEN
        if bad:
            self.drop(bad, DROP_NO_IP)
            return batch.select(ok) if bad < n else None
        return batch

    @read_handler("dst")
    def h_dst(self) -> str:
        """The destination's fixed part: ``server J port K``."""
        return f"server {self.server} port {self.port}"

    @read_handler("src")
    def h_src(self) -> str:
        """The source address."""
        assert self.src is not None
        return unparse_ether(self.src)
