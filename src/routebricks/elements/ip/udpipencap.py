"""UDPIPEncap: puts fixed UDP and IPv4 headers in front of every packet."""

from __future__ import annotations

import ipaddress
from typing import ClassVar

import numpy as np

from routebricks.elements.ip.ipfilter_tree import PORTS
from routebricks.engine import addresses
from routebricks.engine.args import Arg, ArgType, Bool, IPAddress, Raw
from routebricks.engine.argtext import unquote
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.jit import precompile
from routebricks.packet import ipkernels as _ik
from routebricks.packet import kernels as _k
from routebricks.packet.batch import PacketBatch
from routebricks.packet.checksum import inet_checksum_at
from routebricks.packet.ip import IP_MIN_HLEN, PROTO_UDP

UDP_HEADER_LEN = 8
HEADERS_LEN = IP_MIN_HLEN + UDP_HEADER_LEN
_MAX_IP_LEN = 0xFFFF
_TOO_LONG = "too long for IPv4"


class _UDPPort(ArgType):
    """A UDP port: 0 to 65535, or a well-known name (``dns``, ``ntp``), as Click's
    IPPortArg reads it."""

    name = "UDP port (0 to 65535, or a name such as dns)"

    def parse(self, text: str) -> int:
        t = unquote(text).strip()
        if t.lower() in PORTS:
            return PORTS[t.lower()]
        try:
            v = int(t, 10)
        except ValueError:
            raise ValueError(f"expected a {self.name}") from None
        if not 0 <= v <= 0xFFFF:
            raise ValueError(f"expected a {self.name}")
        return v

    def unparse(self, value: object) -> str:
        return str(value)


UDPPort = _UDPPort()


def _warmup() -> None:
    """Compile the checksum kernel UDPIPEncap runs (see :mod:`routebricks.jit`)."""
    u8, i64 = np.zeros(64, np.uint8), np.zeros(1, np.int64)
    precompile(_k.inet_checksum, u8, i64, i64)


def _word_sum(addr: np.ndarray | int) -> np.ndarray | int:
    """The sum of an IPv4 address's two 16-bit words (for the pseudo-header)."""
    return (addr >> 16) + (addr & 0xFFFF)


class UDPIPEncap(Element):
    """Encapsulates every packet in UDP and IPv4 headers (from SRC:SPORT to DST:DPORT).

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        SRC (IPv4 address, positional, required): the source address (or an AddressInfo
            name, e.g. ``host:ip``).
        SPORT (UDP port, positional, required): the source port, 0 to 65535 or a name
            such as dns.
        DST (IPv4 address or DST_ANNO, positional, required): the destination; DST_ANNO
            takes each packet's destination address annotation.
        DPORT (UDP port, positional, required): the destination port.
        CHECKSUM (bool, positional, default true): compute the UDP checksum; false leaves
            it 0 (no checksum).
    Behaviour: prepends 28 bytes (room is made only if a packet lacks it): an IPv4 header
        as Click's (TOS 0, no fragmentation flags, TTL 250, protocol 17, the total length,
        an identification counting up from 0 per packet, the header checksum) and a UDP
        header with the ports and the UDP length (the packet plus 8). With CHECKSUM, the
        UDP checksum covers the pseudo-header, the UDP header and the payload (an odd
        length is padded with a zero byte for the sum only); a sum of 0 is sent as 0xFFFF
        (RFC 768), where Click sends 0. Sets the destination address annotation to DST
        (unless DST_ANNO) and marks the new IP header as the network header. A packet that
        would exceed 65535 bytes is dropped and counted ("too long for IPv4"). Every
        header is written for the whole batch at once; the checksums run in one compiled
        pass.
    Handlers:
        src (read/write): the source address.
        sport (read/write): the source port.
        dst (read/write): the destination address (DST_ANNO when taken from the
            annotation; writing DST_ANNO switches to it).
        dport (read/write): the destination port.
    Example:
        ... -> UDPIPEncap(1.0.0.1, 1234, 2.0.0.2, 1234) -> EtherEncap(0x0800, ...) -> ...
    See also: IPEncap, Strip, CheckIPHeader
    """

    JIT_WARMUP = (_ik.warmup, _warmup)
    port_count = "1/1"
    processing = "a/a"
    ARGS = (
        Arg("SRC", IPAddress, positional=True, required=True),
        Arg("SPORT", UDPPort, positional=True, required=True),
        Arg("DST", Raw, positional=True, required=True, attr="dst_arg"),
        Arg("DPORT", UDPPort, positional=True, required=True),
        Arg("CHECKSUM", Bool, True, positional=True),
    )
    #: Every reason this element drops a packet for, and what it means.
    DROPS: ClassVar[dict[str, str]] = {
        _TOO_LONG: "the packet plus 28 bytes of headers would exceed 65535 bytes",
    }

    def configure(self) -> None:
        # The AddressInfo names visible now, for addresses written to handlers later.
        self._names = dict(addresses.NAMES.get() or {})
        try:
            self._set_dst(self.dst_arg)
        except ValueError as e:
            raise self.error(f"bad value {self.dst_arg!r} for DST: {e}") from None
        self._next_id = 0

    def _set_dst(self, text: str) -> None:
        if unquote(text).strip() == "DST_ANNO":
            self.dst_anno, self.dst = True, 0
        else:
            with addresses.names_for(self._names):
                self.dst = IPAddress.parse(text)
            self.dst_anno = False
        self._build_header()

    def _build_header(self) -> None:
        h = np.zeros(HEADERS_LEN, np.uint8)
        h[0], h[8], h[9] = 0x45, 250, PROTO_UDP
        h[12:16] = np.frombuffer(int(self.src).to_bytes(4, "big"), np.uint8)
        h[16:20] = np.frombuffer(int(self.dst).to_bytes(4, "big"), np.uint8)
        h[20:24] = np.frombuffer(
            self.sport.to_bytes(2, "big") + self.dport.to_bytes(2, "big"), np.uint8)
        self._header = h
        # The pseudo-header's words but the length: source, destination, protocol.
        self._pseudo = _word_sum(int(self.src)) + PROTO_UDP + (
            0 if self.dst_anno else _word_sum(int(self.dst)))

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        if not len(batch):
            return batch
        big = batch.length > _MAX_IP_LEN - HEADERS_LEN
        if big.any():
            self.drop(int(np.count_nonzero(big)), _TOO_LONG)
            batch = batch.select(~big)
            if not len(batch):
                return None
        n = len(batch)
        dst = batch.anno("dst_ip").copy() if self.dst_anno else None
        batch = batch.prepend(self._header)
        total = batch.length
        batch.set_u16(2, total.astype(np.uint16))
        ids = (self._next_id + np.arange(n)) & 0xFFFF
        self._next_id = (self._next_id + n) & 0xFFFF
        batch.set_u16(4, ids.astype(np.uint16))
        if dst is not None:
            batch.set_bytes(16, dst.astype(">u4").view(np.uint8).reshape(n, 4))
            batch.anno("dst_ip")[:] = dst
        else:
            batch.anno("dst_ip")[:] = self.dst
        _ik.set_header_checksums(batch.pool, batch.off, np.full(n, IP_MIN_HLEN, np.int64))
        batch.anno("nh")[:] = batch.off
        ulen = total - IP_MIN_HLEN
        batch.set_u16(IP_MIN_HLEN + 4, ulen.astype(np.uint16))
        if self.checksum:
            batch.set_u16(IP_MIN_HLEN + 6, self._udp_checksums(batch, ulen, dst))
        return batch

    def _udp_checksums(self, batch: PacketBatch, ulen: np.ndarray,
                       dst: np.ndarray | None) -> np.ndarray:
        """The UDP checksum of each packet (its checksum field still 0): the sum over the
        UDP header and payload, plus the pseudo-header's words, folded and inverted."""
        body = inet_checksum_at(batch.pool, batch.off + IP_MIN_HLEN, ulen)
        s = (~body.astype(np.int64) & 0xFFFF) + self._pseudo + ulen
        if dst is not None:
            s = s + _word_sum(dst.astype(np.int64))
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        c = ~s & 0xFFFF
        c[c == 0] = 0xFFFF  # RFC 768: a computed 0 is sent as all ones
        return c.astype(np.uint16)

    # ------------------------------------------------------------------ handlers
    @read_handler("src")
    def h_src(self) -> str:
        """The source address."""
        return str(ipaddress.IPv4Address(int(self.src)))

    @write_handler("src")
    def h_set_src(self, v: str) -> None:
        """Set the source address."""
        with addresses.names_for(self._names):
            self.src = IPAddress.parse(v)
        self._build_header()

    @read_handler("sport")
    def h_sport(self) -> int:
        """The source port."""
        return self.sport

    @write_handler("sport")
    def h_set_sport(self, v: str) -> None:
        """Set the source port."""
        self.sport = UDPPort.parse(v)
        self._build_header()

    @read_handler("dst")
    def h_dst(self) -> str:
        """The destination address (DST_ANNO if taken from the annotation)."""
        return "DST_ANNO" if self.dst_anno else str(ipaddress.IPv4Address(int(self.dst)))

    @write_handler("dst")
    def h_set_dst(self, v: str) -> None:
        """Set the destination address, or DST_ANNO."""
        self._set_dst(v)

    @read_handler("dport")
    def h_dport(self) -> int:
        """The destination port."""
        return self.dport

    @write_handler("dport")
    def h_set_dport(self, v: str) -> None:
        """Set the destination port."""
        self.dport = UDPPort.parse(v)
        self._build_header()
