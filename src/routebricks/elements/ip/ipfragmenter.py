"""IPFragmenter: fragments IP packets larger than the MTU (RFC 791)."""

from __future__ import annotations

import random

import numpy as np

from routebricks.elements.ip.annotations import NEXT_MTU, chatter, reject
from routebricks.engine.args import Arg, Bool, PacketLength, UInt
from routebricks.engine.element import Element, read_handler
from routebricks.packet.batch import DEFAULT_HEADROOM, PacketBatch
from routebricks.packet.checksum import inet_checksum
from routebricks.packet.ip import IP_DF, IP_MF, int_to_ip, ip_positions

_DF_SET = 1
_TOO_SMALL = 2
_BAD_HEADER = 3
_REASONS = {
    _DF_SET: "DF set and packet too big",
    _TOO_SMALL: "MTU too small for the header",
    _BAD_HEADER: "bad IP header",
}


def copied_options(options: bytes) -> bytes:
    """The options that RFC 791 copies into every fragment (copy bit 0x80), padded with
    end-of-list bytes to a multiple of 4."""
    out = bytearray()
    i = 0
    while i < len(options):
        opt = options[i]
        if opt == 1:  # NOP: one byte, not copied
            i += 1
            continue
        if opt == 0 or i == len(options) - 1:
            break
        optlen = options[i + 1]
        if optlen < 2 or i + optlen > len(options):
            break
        if opt & 0x80:
            out += options[i : i + optlen]
        i += optlen
    out += bytes(-len(out) % 4)
    return bytes(out)


def _header_checksum(hdr: bytearray) -> None:
    hdr[10:12] = b"\0\0"
    hdr[10:12] = inet_checksum(bytes(hdr)).to_bytes(2, "big")


def fragment_packet(
    data: bytes, nhoff: int, mtu: int, honor_df: bool = True
) -> list[tuple[bytes, int]]:
    """The fragments of one packet whose IP header starts at ``nhoff``, as (bytes, offset of
    the IP header in them). The first fragment keeps whatever precedes the IP header (a MAC
    header); the others start at their IP header. Follows Click's IPFragmenter."""
    hlen = (data[nhoff] & 0xF) * 4
    iplen = int.from_bytes(data[nhoff + 2 : nhoff + 4], "big")
    end = min(nhoff + iplen, len(data))
    in_dlen = end - nhoff - hlen
    first_dlen = (mtu - hlen) & ~7
    hdr = bytearray(data[nhoff : nhoff + hlen])
    ipoff = int.from_bytes(hdr[6:8], "big")
    if ipoff & IP_DF:
        if honor_df:
            raise ValueError("DF set")
        hdr[4:6] = random.getrandbits(16).to_bytes(2, "big")  # Click: ip_id can't be trusted
        ipoff &= ~IP_DF
    had_mf = bool(ipoff & IP_MF)
    ipoff |= IP_MF
    hdr[2:4] = (hlen + first_dlen).to_bytes(2, "big")
    hdr[6:8] = ipoff.to_bytes(2, "big")
    _header_checksum(hdr)
    payload = data[nhoff + hlen : end]
    frags = [(data[:nhoff] + bytes(hdr) + payload[:first_dlen], nhoff)]
    opts = copied_options(bytes(hdr[20:]))
    out_hlen = 20 + len(opts)
    off = first_dlen
    while off < in_dlen:
        out_dlen = min((mtu - out_hlen) & ~7, in_dlen - off)
        q = bytearray(hdr[:20]) + opts
        q[0] = 0x40 | (out_hlen >> 2)
        qoff = ipoff + (off >> 3)
        if out_dlen + off >= in_dlen and not had_mf:
            qoff &= ~IP_MF
        q[6:8] = qoff.to_bytes(2, "big")
        q[2:4] = (out_hlen + out_dlen).to_bytes(2, "big")
        _header_checksum(q)
        frags.append((bytes(q) + payload[off : off + out_dlen], 0))
        off += out_dlen
    return frags


class IPFragmenter(Element):
    """Fragments IP packets larger than MTU bytes; too-big don't-fragment packets leave apart.

    Ports: 1 push input; push output 0 and optional push output 1 (don't-fragment packets).
    Arguments:
        MTU (unsigned, positional, required, at least 8): the largest IP packet to send,
            counted from the network header.
        HONOR_DF (bool, positional, default true): when false, packets with the
            don't-fragment bit are fragmented anyway (with a random IP ID, DF cleared).
        VERBOSE (bool, positional, default false): print a line for every don't-fragment
            packet (else for the first 5).
        HEADROOM (0 to 65535, default 64): headroom of the fragments built.
    Behaviour: one vectorized comparison of each packet's network length (from the
        network-header annotation to its end) with MTU; packets that fit pass as they are.
        The oversized minority is handled per packet: with DF set (and HONOR_DF), or when
        MTU leaves fewer than 8 data bytes, the packet goes to output 1 unchanged with the
        ``next_mtu`` annotation set to MTU (ICMPError unreachable/needfrag reports it), or
        is dropped ("DF set and packet too big", "MTU too small for the header") if output 1
        is not connected. Otherwise it is cut per RFC 791 into fragments whose data are
        multiples of 8 bytes: the first keeps the whole header (and anything before it,
        such as a MAC header), the others carry only the options with the copy bit; MF and
        fragment offsets are set (an already-fragmented packet keeps its offset and last-MF
        bit) and each header checksum is recomputed. Fragments copy every annotation of
        their packet and replace it in place, so output 0 keeps the input order. Oversized
        packets whose header length is inconsistent are dropped as "bad IP header".
    Handlers:
        drops (read): packets sent to output 1 or dropped for DF/MTU, as Click.
        fragments (read): fragments sent.
    Example:
        ... -> fr :: IPFragmenter(1500) -> Queue -> ToDevice(eth0);
        fr[1] -> ICMPError(18.26.4.24, unreachable, needfrag) -> rt;
    See also: ICMPError, CheckIPHeader
    """

    port_count = "1/1-2"
    processing = "h/h"
    ARGS = (
        Arg("MTU", UInt, positional=True, required=True),
        Arg("HONOR_DF", Bool, True, positional=True),
        Arg("VERBOSE", Bool, False, positional=True),
        Arg("HEADROOM", PacketLength, DEFAULT_HEADROOM),
    )

    def configure(self) -> None:
        if self.mtu < 8:
            raise self.error("MTU must be at least 8")
        self.refused = 0
        self.fragments = 0

    def push(self, port: int, batch: PacketBatch) -> None:
        if not len(batch):
            return
        pos = ip_positions(batch)
        netlen = batch.off + batch.length - pos
        big = netlen > self.mtu
        if not big.any():
            self.emit(0, batch)
            return
        self._fragment(batch, pos, np.flatnonzero(big))

    def _fragment(self, batch: PacketBatch, pos: np.ndarray, big: np.ndarray) -> None:
        pool = batch.pool
        p = pos[big]
        netlen = batch.off[big] + batch.length[big] - p
        hlen = (pool[p] & 0xF).astype(np.int64) * 4
        iplen = batch.u16_at(p + 2).astype(np.int64)
        ipoff = batch.u16_at(p + 6).astype(np.int64)
        code = np.zeros(len(big), np.int64)
        code[(hlen < 20) | (hlen > netlen) | (iplen < hlen)] = _BAD_HEADER
        code[(code == 0) & ((self.mtu - hlen) & ~7 < 8)] = _TOO_SMALL
        code[(code == 0) & ((ipoff & IP_DF) != 0) & self.honor_df] = _DF_SET
        refused = code != 0
        segments: list[PacketBatch] = []
        start = 0
        for j, i in enumerate(big.tolist()):
            if i > start:
                segments.append(batch.slice(start, i))
            start = i + 1
            if refused[j]:
                continue
            o = int(batch.off[i])
            data = pool[o : o + int(batch.length[i])].tobytes()
            frags = fragment_packet(data, int(p[j]) - o, self.mtu, self.honor_df)
            fb = PacketBatch.from_bytes([f for f, _ in frags], headroom=self.headroom)
            for name, col in batch.annos.items():
                fb.annos[name] = np.repeat(col[i : i + 1], len(frags))
            fb.annos["nh"] = fb.off + np.array([h for _, h in frags], np.int64)
            segments.append(fb)
            self.fragments += len(frags)
        if start < len(batch):
            segments.append(batch.slice(start, len(batch)))
        if segments:
            self.emit(0, PacketBatch.concat(segments))
        if refused.any():
            self._refuse(batch.select(big[refused]), code[refused])

    def _refuse(self, rej: PacketBatch, codes: np.ndarray) -> None:
        bad_hdr = codes == _BAD_HEADER
        if bad_hdr.any():
            self.drop(int(np.count_nonzero(bad_hdr)), _REASONS[_BAD_HEADER])
            rej = rej.select(~bad_hdr)
            codes = codes[~bad_hdr]
        if not len(rej):
            return
        nh = ip_positions(rej)
        for k in range(len(rej)):
            if not self.verbose and self.refused + k >= 5:
                break
            src = int_to_ip(int(rej.u32_at(nh[k : k + 1] + 12)[0]))
            dst = int_to_ip(int(rej.u32_at(nh[k : k + 1] + 16)[0]))
            chatter(self, f"IPFragmenter({self.mtu}) DF {src} {dst} len={int(rej.length[k])}")
        self.refused += len(rej)
        rej.anno(NEXT_MTU)[...] = min(self.mtu, 0xFFFF)
        reject(self, rej, codes, _REASONS)

    @read_handler("drops", combine="sum")
    def h_drops(self) -> int:
        """Packets refused for DF or MTU (to output 1 or dropped)."""
        return self.refused

    @read_handler("fragments", combine="sum")
    def h_fragments(self) -> int:
        """Fragments sent."""
        return self.fragments
