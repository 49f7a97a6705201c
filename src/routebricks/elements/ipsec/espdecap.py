"""ESPDecap: ESP tunnel-mode decapsulation (RFC 4303): verify, decrypt, strip."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routebricks.elements.ipsec.common import SA_ARGS, SAElement, sa_lines
from routebricks.engine.args import Arg, Bool
from routebricks.engine.element import read_handler
from routebricks.ipsec import SecurityAssociation, decapsulate
from routebricks.packet import kernels as _pk
from routebricks.packet.batch import PacketBatch

BAD_INNER = "bad inner packet"
SELECTOR_MISMATCH = "selector mismatch"
_IDX = "_espdecap_index"  # temporary annotation: the packet's index in the input batch


class ESPDecap(SAElement):
    """Decapsulates ESP tunnel-mode packets (RFC 4303): checks, decrypts, emits inner IPv4.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        SPI (integer, 256 to 0xffffffff): the SA's security parameter index.
        ALG (aes128gcm or aes128cbc-sha1): AES-128-GCM with a 16-byte ICV (RFC 4106), or
            AES-128-CBC (RFC 3602) with HMAC-SHA1-96 (RFC 2404).
        KEY (0x + hex digits, secret): aes128gcm: 20 bytes, the AES key then the 4-byte
            salt; aes128cbc-sha1: the 16-byte AES key.
        AUTHKEY (0x + hex digits, secret): aes128cbc-sha1 only: the 20-byte HMAC-SHA1 key.
        SRC, DST (IPv4 addresses): the tunnel endpoints (the peer's and ours).
        SAS (file name): instead of the six arguments above, a file of SAs (see
            ESPEncap); packets are matched to inbound SAs by SPI.
        LOCAL (IPv4 address): with SAS, use only the SAs whose ``dst`` is LOCAL.
        CHECK_SELECTOR (bool, default true): drop inner packets whose destination is
            outside the selector of the SA that carried them (SAs without a selector
            accept any destination). RFC 4301 5.2 asks for this check: without it, a
            peer could send traffic to destinations it was never granted.
    Behaviour: packets start at their outer IPv4 header (after Strip(14) and
        CheckIPHeader, which also checks the outer header checksum). Per packet, in this
        order: outer header sane and protocol 50 ("not ESP", "truncated"; fragments are
        "fragment": reassemble first), SPI known ("unknown SPI"), ESP length fits the
        algorithm ("truncated", "bad length"), the 64-packet anti-replay window
        ("replayed", "outside window"), the ICV ("bad ICV"), then, once the window has
        taken the packet and it is decrypted, padding ("bad padding") and next header
        ("bad next header"; next header 59 is a dummy packet, dropped as "dummy"). The
        batch is verified and decrypted in a few compiled passes
        (``routebricks.ipsec.decapsulate``), with the same outcome as one packet at a
        time. The inner packet must then be an IPv4 packet that fits ("bad inner
        packet"; it is trimmed to its IP total length, which drops any TFC padding) and,
        with CHECK_SELECTOR, be addressed inside its SA's selector ("selector
        mismatch"). Accepted inner packets leave in input order with ``nh`` at their
        header and ``dst_ip`` set to their destination. Nothing raises on a bad packet:
        each is dropped and counted under its reason. Keys appear in no handler and no
        message. The replay window belongs to one process, so the element runs with
        ``--workers 1`` only.
    Handlers:
        count (read): inner packets emitted.
        byte_count (read): bytes of the inner packets emitted.
        sa (read): the inbound SAs, one line each, keys redacted: SPI, algorithm, tunnel
            addresses, selectors, highest sequence number received (replay_top),
            per-SA counters.
        config (read): the configuration, with KEY and AUTHKEY values redacted.
        drops (read): dropped packets by reason.
    Example:
        wan_spd[1] -> ESPDecap(SAS sas.txt, LOCAL 192.0.2.1) -> CheckIPHeader -> lan;
        ESPDecap(SPI 0x1001, ALG aes128gcm, KEY 0x<40 hex digits>,
                 SRC 192.0.2.1, DST 192.0.2.2);
    See also: ESPEncap, IPsecLookup, CheckIPHeader
    """

    port_count = "1/1"
    processing = "a/a"
    SINGLE_PROCESS: ClassVar[bool] = True
    ARGS: ClassVar[tuple[Arg, ...]] = (*SA_ARGS, Arg("CHECK_SELECTOR", Bool, True))

    check_selector: bool

    def configure(self) -> None:
        self.inbound: dict[int, SecurityAssociation] = {}
        for sa in self.load_sas("in"):
            if sa.spi in self.inbound:
                raise self.error(f"two inbound SAs have SPI {sa.spi:#x}")
            self.inbound[sa.spi] = sa
        self._single = next(iter(self.inbound.values())) if self.sas is None else None
        self._selective = [sa for sa in self.inbound.values() if sa.selectors] \
            if self.check_selector else []
        self._count = 0
        self._bytes = 0

    # ------------------------------------------------------------------ packets
    def process(self, batch: PacketBatch) -> PacketBatch | None:
        n = len(batch)
        if not n:
            return batch
        spi_in = None
        if self._selective:
            batch.annos[_IDX] = np.arange(n, dtype=np.int64)
            ihl = (batch.pool[batch.off] & 15).astype(np.int64) * 4
            spi_in = _pk.get_u32(batch.pool, batch.off + ihl)
        out, drops = decapsulate(batch, self._single or self.inbound)
        for reason, k in drops.items():
            self.drop(k, reason)
        idx = out.annos.pop(_IDX, None)
        if not len(out):
            return None
        pool = out.pool
        off = out.off
        length = out.length
        v = pool[off]
        ihl = (v & 15).astype(np.int64) * 4
        tot = out.u16_at(off + 2).astype(np.int64)
        bad = (length < 20) | ((v >> 4) != 4) | (ihl < 20) | (tot < ihl) | (tot > length)
        nbad = int(np.count_nonzero(bad))
        if nbad:
            self.drop(nbad, BAD_INNER)
        dst = out.u32_at(off + 16)
        if spi_in is not None and idx is not None:
            spi = spi_in[idx]
            for sa in self._selective:
                outside = (spi == sa.spi) & ~bad
                if outside.any():
                    outside &= ~sa.matches(dst)
                    k = int(np.count_nonzero(outside))
                    if k:
                        self.drop(k, SELECTOR_MISMATCH)
                        bad |= outside
                        nbad += k
        if nbad:
            if nbad == len(out):
                return None
            keep = ~bad
            out = out.select(keep)
            tot = tot[keep]
            dst = dst[keep]
        out.length = tot
        out.annos["nh"] = out.off.copy()
        out.annos["dst_ip"] = dst
        self._count += len(out)
        self._bytes += int(tot.sum())
        return out

    # ------------------------------------------------------------------ handlers
    @read_handler("count", combine="sum")
    def h_count(self) -> int:
        """Inner packets emitted."""
        return self._count

    @read_handler("byte_count", combine="sum")
    def h_byte_count(self) -> int:
        """Bytes of the inner packets emitted."""
        return self._bytes

    @read_handler("sa")
    def h_sa(self) -> str:
        """The inbound SAs, one line each, with keys redacted."""
        return sa_lines(list(self.inbound.values()))
