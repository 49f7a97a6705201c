"""FixIPSrc: sets the IP source address of packets that ask for it by annotation."""

from __future__ import annotations

import numpy as np

from routebricks.elements.ip.annotations import FIX_IP_SRC
from routebricks.engine.args import Arg, IPAddress
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet import ipkernels as _ik
from routebricks.packet.batch import PacketBatch
from routebricks.packet.ip import IP_SRC, ip_positions


class FixIPSrc(Element):
    """Sets the IP source address to IPADDR in packets whose fix-ip-src annotation is set.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        IPADDR (IPv4 address, positional, required): the address of the outgoing
            interface.
    Behaviour: ICMPError sets the ``fix_ip_src`` annotation on the errors it generates, so
        that they leave with the address of the interface they leave by (RFC 1812
        4.3.2.4). For the packets carrying the annotation -- a minority; a batch without
        any costs one comparison -- FixIPSrc writes IPADDR into the source field of the IP
        header (found through the network-header annotation), recomputes the header
        checksum and clears the annotation. Packets whose header does not fit in the packet
        pass unchanged. All packets leave on output 0.
    Handlers:
        addr (read/write): IPADDR.
    Example:
        ... -> FixIPSrc(18.26.4.24) -> DecIPTTL -> ...;
    See also: ICMPError
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (Arg("IPADDR", IPAddress, positional=True, required=True),)

    def process(self, batch: PacketBatch) -> PacketBatch:
        col = batch.anno_or_none(FIX_IP_SRC)
        if col is None or not len(batch):
            return batch
        fix = col != 0
        if not fix.any():
            return batch
        idx = np.flatnonzero(fix)
        pos = ip_positions(batch)[idx]
        netlen = batch.off[idx] + batch.length[idx] - pos
        ok = netlen >= 20
        hlen = np.zeros(len(idx), np.int64)
        hlen[ok] = (batch.pool[pos[ok]] & 0xF).astype(np.int64) * 4
        ok &= (hlen >= 20) & (hlen <= netlen)
        idx, pos, hlen = idx[ok], pos[ok], hlen[ok]
        if not len(idx):
            return batch
        batch.set_u32_at(pos + IP_SRC, self.ipaddr)
        _ik.set_header_checksums(batch.pool, pos, hlen)
        col[idx] = 0
        return batch

    @read_handler("addr")
    def h_addr(self) -> str:
        """The address written into the source field."""
        return IPAddress.unparse(self.ipaddr)

    @write_handler("addr")
    def h_set_addr(self, v: str) -> None:
        """Set the address."""
        self.ipaddr = IPAddress.parse(v)
