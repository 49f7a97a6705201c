"""ICMPPingResponder: turns ICMP echo requests into echo replies."""

from __future__ import annotations

import numpy as np

from routebricks.elements.icmp.icmperror import ICMP_ECHO
from routebricks.elements.ip.annotations import network_lengths
from routebricks.engine import clock
from routebricks.engine.element import Element
from routebricks.packet.batch import PacketBatch
from routebricks.packet.checksum import incremental_update, inet_checksum_at
from routebricks.packet.ip import IP_DST, IP_OFF, IP_P, IP_SRC, IP_SUM, IP_TTL, ip_positions


class ICMPPingResponder(Element):
    """Responds to ICMP echo requests: each request leaves as the matching echo reply.

    Ports: 1 input, 1 output (agnostic); optional output 1 (push) for other packets.
    Arguments: none.
    Behaviour: the IP header is found through the network-header annotation (CheckIPHeader
        sets it). Vectorized tests pick the echo requests: protocol 1, at least 8 bytes of
        ICMP header after the IP header, type 8. Other packets go to output 1 if it is
        connected, else are dropped as "not an ICMP echo request". Each request is turned
        into its reply in place, for the whole batch at once: source and destination
        addresses swapped (the header checksum does not change), fragment field cleared
        and TTL set to 255 (the header checksum updated incrementally, RFC 1624), ICMP type
        and code set to 0 (the ICMP checksum updated incrementally, so the payload is never
        summed). The replies' ``dst_ip`` annotation is set to their new destination, their
        ``timestamp`` to now and their ``paint`` cleared; other annotations are kept.
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        ip :: Strip(14) -> CheckIPHeader -> ipc :: IPClassifier(dst host 10.0.0.1 and icmp
            type echo, -);
        ipc[0] -> ICMPPingResponder -> rt;
    See also: ICMPError, CheckIPHeader
    """

    port_count = "1/1-2"
    processing = "a/ah"

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        n = len(batch)
        if not n:
            return batch
        pool = batch.pool
        pos = ip_positions(batch)
        netlen = network_lengths(batch, pos)
        hlen = (pool[pos] & 0xF).astype(np.int64) * 4
        tpos = pos + hlen
        echo = (
            (netlen >= 20)
            & (hlen >= 20)
            & (netlen - hlen >= 8)
            & (pool[pos + IP_P] == 1)
            & (pool[tpos] == ICMP_ECHO)
        )
        k = int(np.count_nonzero(echo))
        if k < n:
            self.emit_or_drop(1, batch.select(~echo), "not an ICMP echo request")
            if not k:
                return None
            batch = batch.select(echo)
            pos, tpos = pos[echo], tpos[echo]
        src = batch.u32_at(pos + IP_SRC)
        dst = batch.u32_at(pos + IP_DST)
        batch.set_u32_at(pos + IP_SRC, dst)
        batch.set_u32_at(pos + IP_DST, src)
        s = batch.u16_at(pos + IP_SUM)
        old_off = batch.u16_at(pos + IP_OFF)
        s = incremental_update(s, old_off, np.zeros_like(old_off))
        batch.set_u16_at(pos + IP_OFF, 0)
        old_ttl = batch.u16_at(pos + IP_TTL)
        new_ttl = (old_ttl & np.uint16(0xFF)) | np.uint16(0xFF00)
        s = incremental_update(s, old_ttl, new_ttl)
        batch.set_u16_at(pos + IP_TTL, new_ttl)
        batch.set_u16_at(pos + IP_SUM, s)
        old_tc = batch.u16_at(tpos)
        csum = incremental_update(batch.u16_at(tpos + 2), old_tc, np.zeros_like(old_tc))
        batch.set_u16_at(tpos, 0)
        batch.set_u16_at(tpos + 2, csum)
        zero = csum == 0
        if zero.any():
            # RFC 1624 gives 0 where an all-zero message needs 0xFFFF (Click's
            # click_update_zero_in_cksum): recompute those few in full.
            zpos = tpos[zero]
            tlen = (batch.off + batch.length)[zero] - zpos
            batch.set_u16_at(zpos + 2, 0)
            batch.set_u16_at(zpos + 2, inet_checksum_at(pool, zpos, tlen))
        batch.annos["dst_ip"] = src
        batch.annos["timestamp"] = np.full(len(batch), clock.time_ns(), np.int64)
        batch.annos["paint"] = np.zeros(len(batch), np.uint8)
        return batch
