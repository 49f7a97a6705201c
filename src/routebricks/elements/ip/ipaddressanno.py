"""GetIPAddress and SetIPAddress: set the destination-address annotation."""

from __future__ import annotations

import numpy as np

from routebricks.elements.ip.annotations import annotation_name, network_lengths
from routebricks.engine.args import Arg, Choice, Int, IPAddress, Word
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import ANNOTATIONS, PacketBatch
from routebricks.packet.ip import IP_DST, IP_SRC, ip_positions


def check_address_annotation(element: Element, name: str) -> None:
    """Reject an annotation column that cannot hold an IPv4 address."""
    dt = ANNOTATIONS.get(name)
    if dt is not None and (dt.kind not in "iu" or np.iinfo(dt).max < 0xFFFFFFFF):
        raise element.error(f"annotation {name!r} cannot hold an IPv4 address")


class GetIPAddress(Element):
    """Copies an IPv4 address from the packet into the destination-address annotation.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        OFFSET (integer, positional): where the 4 address bytes start in the packet data
            (16 for the destination of an IP packet that starts at the data).
        ANNO (annotation name, positional, default DST_IP): the annotation to set.
        IP (src or dst): instead of OFFSET, take the source or destination address of the
            IP header the network-header annotation points to.
    Behaviour: one vectorized gather of the 4 bytes at OFFSET (or at the IP header's
        address field) stores them, as a host-order integer, in the annotation. Give
        exactly one of OFFSET and IP. Packets too short to hold the address are dropped as
        "packet too short" (Click would read past their end).
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        FromDump(trace.pcap) -> Strip(14) -> GetIPAddress(16) -> rt :: DirectIPLookup(...);
    See also: SetIPAddress, CheckIPHeader
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (
        Arg("OFFSET", Int, None, positional=True),
        Arg("ANNO", Word, "DST_IP", positional=True),
        Arg("IP", Choice("src", "dst"), None),
    )

    def configure(self) -> None:
        if (self.offset is None) == (self.ip is None):
            raise self.error(
                "set one of OFFSET, IP", "e.g. GetIPAddress(16) or GetIPAddress(IP dst)"
            )
        if self.offset is not None and self.offset < 0:
            raise self.error("OFFSET must be at least 0")
        self.anno_name = annotation_name(self.anno)
        check_address_annotation(self, self.anno_name)

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        if not len(batch):
            return batch
        if self.offset is not None:
            batch = self.require_length(batch, self.offset + 4, "packet too short")
            pos = batch.off + self.offset
        else:
            pos = ip_positions(batch)
            short = network_lengths(batch, pos) < 20
            if short.any():
                self.drop(int(np.count_nonzero(short)), "packet too short")
                batch = batch.select(~short)
                pos = pos[~short]
            pos = pos + (IP_SRC if self.ip == "src" else IP_DST)
        if not len(batch):
            return None
        col = batch.anno(self.anno_name)
        col[...] = batch.u32_at(pos)
        return batch


class SetIPAddress(Element):
    """Sets the destination-address annotation of every packet to a fixed IPv4 address.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        IPADDR (IPv4 address, positional, required): the address.
        ANNO (annotation name, default DST_IP): the annotation to set.
    Behaviour: one vectorized store of IPADDR into the annotation column; packet data are
        untouched.
    Handlers:
        addr (read/write): the address.
    Example:
        ... -> SetIPAddress(18.26.4.1) -> arpq :: ARPQuerier(...);
    See also: GetIPAddress
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (
        Arg("IPADDR", IPAddress, positional=True, required=True),
        Arg("ANNO", Word, "DST_IP"),
    )

    def configure(self) -> None:
        self.anno_name = annotation_name(self.anno)
        check_address_annotation(self, self.anno_name)

    def process(self, batch: PacketBatch) -> PacketBatch:
        if len(batch):
            batch.set_anno(self.anno_name, self.ipaddr)
        return batch

    @read_handler("addr")
    def h_addr(self) -> str:
        """The address."""
        return IPAddress.unparse(self.ipaddr)

    @write_handler("addr")
    def h_set_addr(self, v: str) -> None:
        """Set the address."""
        self.ipaddr = IPAddress.parse(v)
