"""DecIPTTL: decrements the IP time-to-live, updating the checksum incrementally."""

from __future__ import annotations

import numpy as np

from routebricks.elements.ip.annotations import network_lengths
from routebricks.engine.args import Arg, Bool
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet import ipkernels as _ik
from routebricks.packet.batch import PacketBatch
from routebricks.packet.checksum import incremental_update
from routebricks.packet.ip import IP_DST, IP_SUM, IP_TTL, ip_positions

_NO_NH = np.zeros(0, np.int64)


class DecIPTTL(Element):
    """Decrements the IP time-to-live field of every packet; expired packets leave apart.

    Ports: 1 input, 1 output (agnostic); optional output 1 (push) for expired packets.
    Arguments:
        ACTIVE (bool, default true): whether to do anything at all; when false, packets
            pass untouched.
        MULTICAST (bool, default true): whether to decrement packets to multicast
            destinations (224/4); when false, they pass untouched.
    Behaviour: the IP header is found through the network-header annotation (set by
        CheckIPHeader or MarkIPHeader; without it, at the packet data start). Packets whose
        TTL is 0 or 1 go to output 1 unchanged (usually an ICMPError timeexceeded) or, if
        output 1 is not connected, are dropped as "TTL expired". The others get TTL-1 and
        their header checksum is updated incrementally (RFC 1624 eqn. 3, one vectorized
        numpy pass over the batch, no per-packet sum). Packets with fewer than 20 bytes
        from the network header are dropped as "no IP header".
    Handlers:
        drops (read): packets whose TTL expired (to output 1 or dropped), as Click.
        active (read/write): whether the element decrements.
    Example:
        rt[1] -> dt :: DecIPTTL -> IPFragmenter(1500) -> ...;
        dt[1] -> ICMPError(18.26.4.24, timeexceeded) -> rt;
    See also: CheckIPHeader, ICMPError
    """

    JIT_WARMUP = (_ik.warmup,)

    port_count = "1/1-2"
    processing = "a/ah"
    ARGS = (
        Arg("ACTIVE", Bool, True),
        Arg("MULTICAST", Bool, True),
    )

    def configure(self) -> None:
        self.expired = 0

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        if not self.active or not len(batch):
            return batch
        # One compiled pass decrements, updates checksums and classifies; the batch goes on
        # untouched unless some packet expired or had no IP header (rare).
        nh = batch.annos.get("nh")
        status, bad = _ik.dec_ttl(batch.pool, batch.off, batch.length,
                                  _NO_NH if nh is None else nh, nh is not None, self.multicast)
        if not bad:
            return batch
        short = status == 2
        if short.any():
            self.drop(int(np.count_nonzero(short)), "no IP header")
        dead = status == 1
        ndead = int(np.count_nonzero(dead))
        if ndead:
            self.expired += ndead
            self.emit_or_drop(1, batch.select(dead), "TTL expired")
        live = status == 0
        return batch.select(live) if live.any() else None

    def _process_reference(self, batch: PacketBatch) -> PacketBatch | None:
        """The same with numpy column operations (kept as the tests' cross-check)."""
        if not self.active or not len(batch):
            return batch
        pos = ip_positions(batch)
        short = network_lengths(batch, pos) < 20
        if short.any():
            self.drop(int(np.count_nonzero(short)), "no IP header")
            batch = batch.select(~short)
            pos = pos[~short]
            if not len(batch):
                return None
        pool = batch.pool
        ttl = pool[pos + IP_TTL]
        if self.multicast:
            work = None
            dead = ttl <= 1
        else:
            work = (batch.u32_at(pos + IP_DST) >> 28) != 0xE
            dead = (ttl <= 1) & work
        ndead = int(np.count_nonzero(dead))
        if ndead:
            self.expired += ndead
            self.emit_or_drop(1, batch.select(dead), "TTL expired")
            if ndead == len(batch):
                return None
            live = ~dead
            batch = batch.select(live)
            pos = pos[live]
            ttl = ttl[live]
            if work is not None:
                work = work[live]
        if work is not None:
            pos = pos[work]
            ttl = ttl[work]
            if not len(pos):
                return batch
        # RFC 1624: the 16-bit word holding TTL (high byte) and protocol changes by -0x100.
        old_word = batch.u16_at(pos + IP_TTL)
        new_word = old_word - np.uint16(0x100)
        old_sum = batch.u16_at(pos + IP_SUM)
        pool[pos + IP_TTL] = ttl - np.uint8(1)
        batch.set_u16_at(pos + IP_SUM, incremental_update(old_sum, old_word, new_word))
        return batch

    @read_handler("drops", combine="sum")
    def h_drops(self) -> int:
        """Packets whose TTL expired (to output 1 or dropped)."""
        return self.expired

    @read_handler("active")
    def h_active(self) -> bool:
        """Whether the element decrements TTLs."""
        return self.active

    @write_handler("active")
    def h_set_active(self, v: str) -> None:
        """Turn decrementing on or off."""
        self.active = Bool.parse(v)
