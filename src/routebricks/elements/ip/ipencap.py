"""IPEncap: puts a fixed IPv4 header in front of every packet (IP-in-IP and the like)."""

from __future__ import annotations

import ipaddress

import numpy as np

from routebricks.engine.args import Arg, Bool, IntRange, IPAddress, Raw
from routebricks.engine.element import Element, read_handler
from routebricks.packet import ipkernels as _ik
from routebricks.packet.batch import PacketBatch

IP_HEADER_LEN = 20
_MAX_IP_LEN = 0xFFFF


def _proto(text: str) -> int:
    names = {"icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "udp": 17, "gre": 47, "esp": 50,
             "ah": 51}
    t = text.strip().lower()
    if t in names:
        return names[t]
    v = int(t, 0)
    if not 0 <= v <= 255:
        raise ValueError("expected an IP protocol 0..255 or a name such as tcp")
    return v


class IPEncap(Element):
    """Encapsulates every packet in an IPv4 header (protocol PROTO, from SRC to DST).

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        PROTO (IP protocol number or name, positional, required): e.g. 4 (IP-in-IP), udp.
        SRC (IPv4 address, positional, required): the source address.
        DST (IPv4 address or DST_ANNO, positional, required): the destination; DST_ANNO
            takes each packet's destination address annotation.
        TTL (byte, default 250): time to live.
        TOS (byte, default 0): type of service; not with DSCP, ECT or CE.
        DSCP (0 to 63, default 0), ECT (bool or 2, default false), CE (bool, default
            false): the TOS byte in parts, as Click.
        DF (bool, default false): set the Don't Fragment bit.
    Behaviour: prepends 20 bytes (room is made only if a packet lacks it) with the total
        length of each packet, a fresh identification per packet (counting up from 0, as
        Click's does), the header checksum; sets the destination address annotation to the
        destination and marks the new header as the network header. A packet that would
        exceed 65535 bytes is dropped and counted ("too long for IPv4").
    Handlers:
        src (read), dst (read): the addresses.
    Example:
        ... -> IPEncap(4, 18.26.4.24, 140.247.60.147) -> ...   // IP-in-IP
    See also: EtherEncap, CheckIPHeader, Strip
    """

    JIT_WARMUP = (_ik.warmup,)
    port_count = "1/1"
    processing = "a/a"
    ARGS = (
        Arg("PROTO", Raw, positional=True, required=True, attr="proto_arg"),
        Arg("SRC", IPAddress, positional=True, required=True),
        Arg("DST", Raw, positional=True, required=True, attr="dst_arg"),
        Arg("TTL", IntRange(0, 255, "byte"), 250),
        Arg("TOS", IntRange(0, 255, "byte"), None),
        Arg("DSCP", IntRange(0, 63), None),
        Arg("ECT", Raw, None, attr="ect_arg"),
        Arg("CE", Bool, False),
        Arg("DF", Bool, False),
    )

    def configure(self) -> None:
        try:
            self.proto = _proto(self.proto_arg)
        except ValueError as e:
            raise self.error(f"bad value {self.proto_arg!r} for PROTO: {e}") from None
        self.dst_anno = self.dst_arg.strip() == "DST_ANNO"
        self.dst = 0 if self.dst_anno else self._address(self.dst_arg, "DST")
        if self.tos is not None and (self.dscp is not None or self.ect_arg or self.ce):
            raise self.error("TOS cannot be given with DSCP, ECT or CE")
        ect = 0
        if self.ect_arg is not None:
            t = self.ect_arg.strip().lower()
            ect = 2 if t == "2" else 1 if t in ("true", "1", "yes") else 0 if t in (
                "false", "0", "no") else -1
            if ect < 0:
                raise self.error(f"bad value {self.ect_arg!r} for ECT", "true, false or 2")
        tos = self.tos if self.tos is not None else ((self.dscp or 0) << 2) | (
            3 if self.ce else ect)
        h = np.zeros(IP_HEADER_LEN, np.uint8)
        h[0], h[1], h[8], h[9] = 0x45, tos, self.ttl, self.proto
        h[6] = 0x40 if self.df else 0
        h[12:16] = np.frombuffer(int(self.src).to_bytes(4, "big"), np.uint8)
        h[16:20] = np.frombuffer(int(self.dst).to_bytes(4, "big"), np.uint8)
        self._header = h
        self._next_id = 0

    def _address(self, text: str, what: str) -> int:
        try:
            return IPAddress.parse(text)
        except ValueError as e:
            raise self.error(f"bad value {text!r} for {what}: {e}") from None

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        if not len(batch):
            return batch
        big = batch.length + IP_HEADER_LEN > _MAX_IP_LEN
        if big.any():
            self.drop(int(np.count_nonzero(big)), "too long for IPv4")
            batch = batch.select(~big)
            if not len(batch):
                return None
        n = len(batch)
        dst = batch.anno("dst_ip").copy() if self.dst_anno else None
        batch = batch.prepend(self._header)
        batch.set_u16(2, batch.length.astype(np.uint16))
        ids = (self._next_id + np.arange(n)) & 0xFFFF
        self._next_id = (self._next_id + n) & 0xFFFF
        batch.set_u16(4, ids.astype(np.uint16))
        if dst is not None:
            batch.set_bytes_at(batch.off + 16, dst.astype(">u4").view(np.uint8).reshape(n, 4))
            batch.anno("dst_ip")[:] = dst
        else:
            batch.anno("dst_ip")[:] = self.dst
        _ik.set_header_checksums(batch.pool, batch.off, np.full(n, IP_HEADER_LEN, np.int64))
        batch.anno("nh")[:] = batch.off
        return batch

    @read_handler("src")
    def h_src(self) -> str:
        """The source address."""
        return str(ipaddress.IPv4Address(int(self.src)))

    @read_handler("dst")
    def h_dst(self) -> str:
        """The destination address (DST_ANNO if taken from the annotation)."""
        return "DST_ANNO" if self.dst_anno else str(ipaddress.IPv4Address(int(self.dst)))
