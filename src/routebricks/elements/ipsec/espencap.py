"""ESPEncap: ESP tunnel-mode encapsulation (RFC 4303) of IPv4 packets."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routebricks.elements.ipsec.common import SAElement, sa_lines
from routebricks.engine.element import read_handler
from routebricks.ipsec import SecurityAssociation, encapsulate
from routebricks.packet.batch import PacketBatch

NO_SA = "no SA"
NOT_IPV4 = "not IPv4"


class ESPEncap(SAElement):
    """Encapsulates IPv4 packets in ESP tunnel mode (RFC 4303): outer IPv4 + ESP, encrypted.

    Ports: 1 input, 1 output (agnostic); optional output 1 (push) for packets that no SA's
        selector covers (with SAS).
    Arguments:
        SPI (integer, 256 to 0xffffffff): the SA's security parameter index.
        ALG (aes128gcm or aes128cbc-sha1): AES-128-GCM with a 16-byte ICV (RFC 4106), or
            AES-128-CBC (RFC 3602) with HMAC-SHA1-96 (RFC 2404).
        KEY (0x + hex digits, secret): aes128gcm: 20 bytes, the AES key then the 4-byte
            salt (as ``ip xfrm``'s ``rfc4106(gcm(aes))`` takes it); aes128cbc-sha1: the
            16-byte AES key.
        AUTHKEY (0x + hex digits, secret): aes128cbc-sha1 only: the 20-byte HMAC-SHA1 key.
        SRC, DST (IPv4 addresses): the tunnel endpoints, the outer header's addresses.
        SAS (file name): instead of the six arguments above, a file of SAs (one per line:
            ``spi= alg= key= [authkey=] src= dst= [dir=] [selector=]``, see
            ``routebricks.ipsec.sa``); each packet is encapsulated with the first
            outbound SA (file order) whose selector covers its destination address.
        LOCAL (IPv4 address): with SAS, use only the SAs whose ``src`` is LOCAL (this
            gateway's tunnel address), so that two gateways can share one file.
    Behaviour: packets start at their IPv4 header (Strip(14) Ethernet frames first). The
        packet's IP total length is encapsulated (bytes after it are not). Each packet
        becomes outer IPv4 (TTL 64, protocol 50, TOS and DF copied from the inner header,
        IP ID from a per-SA counter, checksum set) | SPI | sequence number | IV | the
        inner packet, padding 1, 2, 3, ..., pad length, next header 4 | ICV. GCM IVs are
        a random per-SA prefix and the sequence number (never repeated: an SA refuses to
        wrap its sequence number); CBC IVs are random. A whole batch is encrypted in a
        few compiled passes (``routebricks.ipsec.encapsulate``), in place: headers go into
        the packets' headroom, trailer and ICV into their tailroom. The ``dst_ip``
        annotation becomes the tunnel destination (DST), for ARPQuerier or a route
        lookup; ``nh``, if present, points to the outer header. With SAS, packets that
        no selector covers go to output 1 if it is connected, else are dropped as "no
        SA"; packets of different SAs leave grouped by SA (in order within each SA).
        Nothing raises on a bad packet: each is dropped and counted under its reason:
        "not IPv4" (shorter than 20 bytes, version not 4, bad header length), "truncated"
        (IP total length beyond the packet), "too big" (the outer packet would exceed
        65535 bytes), "sequence exhausted" (the SA sent 2^32-1 packets: rekey). Keys
        appear in no handler and no message. An SA's sequence counter belongs to one
        process, so the element runs with ``--workers 1`` only.
    Handlers:
        count (read): packets encapsulated.
        byte_count (read): bytes of the ESP packets produced (outer headers included).
        sa (read): the SAs, one line each, keys redacted: SPI, algorithm, tunnel
            addresses, selectors, last sequence number used, per-SA counters.
        config (read): the configuration, with KEY and AUTHKEY values redacted.
        drops (read): dropped packets by reason.
    Example:
        ESPEncap(SPI 0x1001, ALG aes128gcm, KEY 0x<40 hex digits>,
                 SRC 192.0.2.1, DST 192.0.2.2);
        spd[0] -> IPFragmenter(1438) -> ESPEncap(SAS sas.txt, LOCAL 192.0.2.1) -> wan;
    See also: ESPDecap, IPsecLookup, IPFragmenter
    """

    port_count = "1/1-2"
    processing = "a/ah"
    SINGLE_PROCESS: ClassVar[bool] = True

    def configure(self) -> None:
        self.outbound: list[SecurityAssociation] = self.load_sas("out")
        self._single = self.outbound[0] if self.sas is None else None
        if self._single is None and not any(sa.selectors for sa in self.outbound):
            raise self.error(f"no outbound SA in {self.sas} has a selector",
                             "add selector=a.b.c.d/len to the SAs this gateway sends with")

    # ------------------------------------------------------------------ packets
    def process(self, batch: PacketBatch) -> PacketBatch | None:
        if not len(batch):
            return batch
        sa = self._single
        if sa is not None:
            return self._encap(batch, sa)
        pool = batch.pool
        ok = (batch.length >= 20) & ((pool[batch.off] >> 4) == 4)
        if not ok.all():
            self.drop(int(np.count_nonzero(~ok)), NOT_IPV4)
            batch = batch.select(ok)
            if not len(batch):
                return None
        which = self._select(batch.u32(16))
        none = which < 0
        if none.any():
            self.emit_or_drop(1, batch.select(none), NO_SA)
        outs = []
        for i in np.unique(which[~none]).tolist():
            m = which == i
            sub = batch if m.all() else batch.select(m)
            out = self._encap(sub, self.outbound[i])
            if out is not None and len(out):
                outs.append(out)
        if not outs:
            return None
        return outs[0] if len(outs) == 1 else PacketBatch.concat(outs)

    def _encap(self, batch: PacketBatch, sa: SecurityAssociation) -> PacketBatch | None:
        out, drops = encapsulate(batch, sa)
        for reason, n in drops.items():
            self.drop(n, reason)
        if not len(out):
            return None
        out.annos["dst_ip"] = np.full(len(out), sa.dst, np.uint32)
        return out

    def _select(self, dst: np.ndarray) -> np.ndarray:
        """Per destination, the index of the first outbound SA whose selector covers it."""
        res = np.full(dst.shape[0], -1, np.int64)
        for i, sa in enumerate(self.outbound):
            if not sa.selectors:
                continue
            m = (res < 0) & sa.matches(dst)
            res[m] = i
            if not (res < 0).any():
                break
        return res

    # ------------------------------------------------------------------ handlers
    @read_handler("count", combine="sum")
    def h_count(self) -> int:
        """Packets encapsulated."""
        return sum(sa.counters["encap packets"] for sa in self.outbound)

    @read_handler("byte_count", combine="sum")
    def h_byte_count(self) -> int:
        """Bytes of the ESP packets produced (outer headers included)."""
        return sum(sa.counters["encap bytes"] for sa in self.outbound)

    @read_handler("sa")
    def h_sa(self) -> str:
        """The SAs, one line each, with keys redacted."""
        return sa_lines(self.outbound)
