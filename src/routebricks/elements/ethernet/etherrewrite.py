"""EtherRewrite: overwrites the addresses of packets' Ethernet headers."""

from __future__ import annotations

from routebricks.elements.ethernet.etherencap import ETHER_HEADER_LEN, EtherAddresses
from routebricks.engine.args import Arg, EtherAddress
from routebricks.packet.batch import PacketBatch


class EtherRewrite(EtherAddresses):
    """Overwrites the source and destination addresses of every packet's Ethernet header.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        SRC (Ethernet address, positional, required): the new source address.
        DST (Ethernet address, positional, required): the new destination address.
    Behaviour: writes DST into bytes 0-5 and SRC into bytes 6-11 of every packet in one
        pass; the type field and the rest of the packet are kept. Packets shorter than an
        Ethernet header (14 bytes) are dropped and counted as "shorter than an Ethernet
        header".
    Handlers:
        src (read/write), dst (read/write): the addresses (read as ``00-1A-2B-3C-4D-5E``).
    Example:
        FromDump(in.pcap) -> EtherRewrite(00:11:22:33:44:55, 66:77:88:99:aa:bb)
            -> ToDump(out.pcap);
    See also: EtherEncap
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (
        Arg("SRC", EtherAddress, positional=True, required=True),
        Arg("DST", EtherAddress, positional=True, required=True),
    )

    def configure(self) -> None:
        self._build_header()

    def _build_header(self) -> None:
        self.addresses = bytes(self.dst) + bytes(self.src)

    def process(self, batch: PacketBatch) -> PacketBatch:
        batch = self.require_length(batch, ETHER_HEADER_LEN, "shorter than an Ethernet header")
        if len(batch):
            batch.set_bytes(0, self.addresses)
        return batch
