"""EtherEncap: puts an Ethernet header in front of every packet."""

from __future__ import annotations

import numpy as np

from routebricks.engine.args import Arg, EtherAddress, UInt
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch

ETHER_HEADER_LEN = 14


def unparse_ether(addr: bytes) -> str:
    """An Ethernet address as Click prints it: upper-case hex with dashes."""
    return "-".join(f"{b:02X}" for b in addr)


def parse_ethertype(text: str) -> int:
    """An ETHERTYPE value: an unsigned integer up to 0xFFFF (``0x0800``, ``2048``)."""
    v = UInt.parse(text)
    if v > 0xFFFF:
        raise ValueError("Ethernet encapsulation type must be <= 0xFFFF")
    return v


class EtherAddresses(Element):
    """Base of elements that write Ethernet source and destination addresses: their ``src``
    and ``dst`` handlers (subclasses rebuild their header in ``_build_header``).

    Ports: as the subclass.
    Arguments: SRC, DST (Ethernet addresses), as the subclass.
    Behaviour: none of its own.
    Handlers:
        src, dst (read/write): the addresses.
    Example:
        see EtherEncap, EtherRewrite
    """

    ABSTRACT = True

    def _build_header(self) -> None:
        raise NotImplementedError

    @read_handler("src")
    def h_src(self) -> str:
        """The source address."""
        return unparse_ether(self.src)

    @write_handler("src")
    def h_set_src(self, v: str) -> None:
        """Set the source address."""
        self.src = EtherAddress.parse(v)
        self._build_header()

    @read_handler("dst")
    def h_dst(self) -> str:
        """The destination address."""
        return unparse_ether(self.dst)

    @write_handler("dst")
    def h_set_dst(self, v: str) -> None:
        """Set the destination address."""
        self.dst = EtherAddress.parse(v)
        self._build_header()


class EtherEncap(EtherAddresses):
    """Prepends an Ethernet header (destination, source, type) to every packet.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        ETHERTYPE (unsigned up to 0xFFFF, positional, required): the type field, e.g.
            0x0800 for IPv4.
        SRC (Ethernet address, positional, required): the source address.
        DST (Ethernet address, positional, required): the destination address.
    Behaviour: makes 14 bytes of headroom (``ensure_room``: the batch is repacked only when
        some packet has less), moves every packet's start 14 bytes back and writes the same
        header into all of them in one pass: DST, SRC, then ETHERTYPE in network byte order.
    Handlers:
        src (read/write), dst (read/write): the addresses (read as ``00-1A-2B-3C-4D-5E``).
        ethertype (read/write), etht (read/write): the type, read in decimal (2048 for
            0x0800) as Click does.
    Example:
        FromDump(ip.pcap) -> EtherEncap(0x0800, 00:11:22:33:44:55, 66:77:88:99:aa:bb)
            -> ToDump(ether.pcap);
    See also: EtherRewrite, Strip, Unstrip
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (
        Arg("ETHERTYPE", UInt, positional=True, required=True),
        Arg("SRC", EtherAddress, positional=True, required=True),
        Arg("DST", EtherAddress, positional=True, required=True),
    )

    def configure(self) -> None:
        if self.ethertype > 0xFFFF:
            raise self.error("argument 1 (Ethernet encapsulation type) must be <= 0xFFFF",
                             "e.g. 0x0800 for IPv4, 0x0806 for ARP")
        self._build_header()

    def _build_header(self) -> None:
        self.header = bytes(self.dst) + bytes(self.src) + self.ethertype.to_bytes(2, "big")
        self._header = np.frombuffer(self.header, np.uint8).copy()

    def process(self, batch: PacketBatch) -> PacketBatch:
        if not len(batch):
            return batch
        return batch.prepend(self._header)

    @read_handler("ethertype")
    def h_ethertype(self) -> int:
        """The type field, in decimal."""
        return self.ethertype

    @write_handler("ethertype")
    def h_set_ethertype(self, v: str) -> None:
        """Set the type field (0 to 0xFFFF)."""
        self.ethertype = parse_ethertype(v)
        self._build_header()

    @read_handler("etht")
    def h_etht(self) -> int:
        """The type field, in decimal (Click's old name)."""
        return self.ethertype

    @write_handler("etht")
    def h_set_etht(self, v: str) -> None:
        """Set the type field (Click's old name)."""
        self.h_set_ethertype(v)
