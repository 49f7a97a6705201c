"""ICMPError: builds ICMP error messages about the packets it receives (RFC 792/1812)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from routebricks.elements.ip.annotations import (
    FIX_IP_SRC,
    NEXT_MTU,
    PARAMPROB_ANNO,
    link_broadcast,
    network_lengths,
)
from routebricks.elements.ip.checkipheader import parse_address_list
from routebricks.engine import clock
from routebricks.engine.args import Arg, Bool, Double, IPAddress, Raw, UInt, Word
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet import ipkernels as _ik
from routebricks.packet.batch import DEFAULT_HEADROOM, DEFAULT_TAILROOM, POOL_GUARD, PacketBatch
from routebricks.packet.ip import IP_DST, IP_OFF, IP_OFFMASK, IP_P, IP_SRC, ip_positions

ICMP_ECHOREPLY = 0
ICMP_UNREACH = 3
ICMP_SOURCEQUENCH = 4
ICMP_REDIRECT = 5
ICMP_ECHO = 8
ICMP_TIMXCEED = 11
ICMP_PARAMPROB = 12
ICMP_UNREACH_NEEDFRAG = 4
ICMP_PARAMPROB_ERRATPTR = 0

ERROR_TYPES = (ICMP_UNREACH, ICMP_SOURCEQUENCH, ICMP_REDIRECT, ICMP_TIMXCEED, ICMP_PARAMPROB)

#: Click's ICMP type names (NameInfo T_ICMP_TYPE).
TYPE_NAMES = {
    "echoreply": 0, "echo-reply": 0, "unreachable": 3, "sourcequench": 4, "redirect": 5,
    "echo": 8, "routeradvert": 9, "routersolicit": 10, "timeexceeded": 11,
    "parameterproblem": 12, "timestamp": 13, "timestampreply": 14, "inforeq": 15,
    "inforeqreply": 16, "maskreq": 17, "maskreqreply": 18,
}
#: Click's ICMP code names per type (NameInfo T_ICMP_CODE + type).
CODE_NAMES: dict[int, dict[str, int]] = {
    ICMP_UNREACH: {
        "net": 0, "host": 1, "protocol": 2, "port": 3, "needfrag": 4, "srcfail": 5,
        "netunknown": 6, "hostunknown": 7, "isolated": 8, "netprohib": 9, "hostprohib": 10,
        "tosnet": 11, "toshost": 12, "filterprohib": 13, "hostprecedence": 14,
        "precedencecutoff": 15,
    },
    ICMP_REDIRECT: {"net": 0, "host": 1, "tosnet": 2, "toshost": 3},
    ICMP_TIMXCEED: {"transit": 0, "reassembly": 1},
    ICMP_PARAMPROB: {"erroratptr": 0, "missingopt": 1, "length": 2},
}

# Reasons for not answering (Click's RFC 1812 4.3.2.7 "don'ts", then rate limiting).
_NO_HEADER = 1
_ICMP_ERROR = 2
_ICMP_SHORT = 3
_BAD_DST = 4
_LINK_BCAST = 5
_BAD_SRC = 6
_FRAGMENT = 7
_SR_REDIRECT = 8
REASONS = {
    _NO_HEADER: "no IP header",
    _ICMP_ERROR: "ICMP error message",
    _ICMP_SHORT: "truncated ICMP header",
    _BAD_DST: "non-unicast destination",
    _LINK_BCAST: "link-level broadcast",
    _BAD_SRC: "invalid source address",
    _FRAGMENT: "non-first fragment",
    _SR_REDIRECT: "redirect for a source-routed packet",
}
RATE_LIMITED = "rate limited"

_next_id = 1  # Click's static id counter, shared by every ICMPError


def _take_ids(n: int) -> np.ndarray:
    global _next_id
    ids = (np.arange(n, dtype=np.int64) + _next_id) & 0xFFFF
    _next_id = (_next_id + n) & 0xFFFF
    return ids


def parse_named(text: str, names: dict[str, int], what: str) -> int:
    t = text.strip().lower()
    if t in names:
        return names[t]
    try:
        v = int(t, 0)
    except ValueError:
        raise ValueError(
            f"expected {what} (integer between 0 and 255"
            + (f" or one of {', '.join(sorted(names))})" if names else ")")
        ) from None
    if not 0 <= v <= 255:
        raise ValueError(f"{what} must be between 0 and 255")
    return v


class ICMPError(Element):
    """Generates ICMP error messages in response to the IP packets it receives.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        SRC (IPv4 address, positional, required): the source address of the errors.
        TYPE (ICMP type, positional, required): a number or name: unreachable (3),
            sourcequench (4), redirect (5), timeexceeded (11), parameterproblem (12); it
            must be an error type.
        CODE (ICMP code, positional, default 0): a number or, by type, a name: net, host,
            protocol, port, needfrag (unreachable); net, host (redirect); transit,
            reassembly (timeexceeded); erroratptr, missingopt, length (parameterproblem).
        BADADDRS (space-separated addresses, positional): more addresses never answered
            (as source or destination), usually the subnet broadcasts.
        MTU (unsigned, default 576): the largest error packet built (RFC 1812 4.3.2.3).
        PMTU (unsigned, default 0): next-hop MTU reported by unreachable/needfrag; when 0,
            the ``next_mtu`` annotation that IPFragmenter sets is reported instead.
        SET_FIX_ANNO (bool, default true; USE_FIX_ANNO is a synonym): set the
            ``fix_ip_src`` annotation of the errors, for FixIPSrc.
        RATE (real, default 1000): errors per second allowed by the token bucket (RFC 1812
            4.3.2.8 rate limiting); 0 disables the limit.
        BURST (unsigned, default 50): the bucket depth, errors that may leave at once.
    Behaviour: every input packet is consumed; its IP header is found through the
        network-header annotation. Vectorized tests decline, as Click and RFC 1812 4.3.2.7
        say, to answer: ICMP errors ("ICMP error message", "truncated ICMP header"),
        packets to broadcast, multicast or BADADDRS destinations ("non-unicast
        destination"), link-level broadcasts by the ``packet_type`` annotation
        ("link-level broadcast"), packets from 0/8, 127/8, 224/4, 240/4, broadcast or
        BADADDRS sources ("invalid source address"), non-first fragments ("non-first
        fragment"), redirects about source-routed packets ("redirect for a source-routed
        packet"), and packets with under 20 bytes of header ("no IP header"); each is
        dropped under that reason. The token bucket then passes at most BURST errors at
        once and RATE per second; the rest are dropped as "rate limited". One compiled pass
        builds the errors in a fresh pool: an IPv4 header (tos 0, ID from a counter shared
        by all ICMPErrors, TTL 200, source SRC, destination the offending packet's source,
        plus the reversed source route if it had one), the ICMP header (the parameter
        problem pointer from the ``icmp_paramprob`` annotation, the redirect gateway from
        the ``dst_ip`` annotation, the needfrag next-hop MTU), and as much of the offending
        packet from its IP header as fits in MTU; both checksums are computed. The errors
        carry the annotations ``nh`` (their IP header), ``dst_ip`` (their destination),
        ``timestamp`` (now) and ``fix_ip_src``; no other annotation.
    Handlers:
        src (read/write): SRC.
        mtu (read/write): MTU.
        pmtu (read/write): PMTU.
        rate (read/write): RATE, errors per second (0: no limit).
        burst (read/write): BURST.
    Example:
        dt :: DecIPTTL;
        dt[1] -> ICMPError(18.26.4.24, timeexceeded) -> rt;
        fr :: IPFragmenter(1500);
        fr[1] -> ICMPError(18.26.4.24, unreachable, needfrag, PMTU 1500) -> rt;
    See also: DecIPTTL, IPFragmenter, IPGWOptions, FixIPSrc, ICMPPingResponder
    """

    port_count = "1/1"
    processing = "a/a"
    ARGS = (
        Arg("SRC", IPAddress, positional=True, required=True),
        Arg("TYPE", Word, positional=True, required=True),
        Arg("CODE", Word, "0", positional=True),
        Arg("BADADDRS", Raw, None, positional=True),
        Arg("MTU", UInt, 576),
        Arg("PMTU", UInt, 0),
        Arg("SET_FIX_ANNO", Bool, None),
        Arg("USE_FIX_ANNO", Bool, None),
        Arg("RATE", Double, 1000.0),
        Arg("BURST", UInt, 50),
    )

    def configure(self) -> None:
        try:
            t = parse_named(self.type, TYPE_NAMES, "ICMP type")
        except ValueError as e:
            raise self.error(str(e)) from None
        if t not in ERROR_TYPES:
            raise self.error(
                f"ICMP type {t} is not an error type",
                "use unreachable, sourcequench, redirect, timeexceeded or parameterproblem",
            )
        try:
            c = parse_named(self.code, CODE_NAMES.get(t, {}), "ICMP code")
        except ValueError as e:
            raise self.error(f"argument 3: {e}") from None
        self.icmp_type = t
        self.icmp_code = c
        try:
            bad = parse_address_list(self.badaddrs) if self.badaddrs else []
        except ValueError as e:
            raise self.error(f"bad BADADDRS: {e}") from None
        self._bad = np.array(sorted(set(bad)), np.uint32)
        if self.mtu < 28:
            raise self.error("MTU must be at least 28 (an IP and an ICMP header)")
        if self.pmtu > 0xFFFF:
            raise self.error("PMTU must be at most 65535")
        if self.rate < 0:
            raise self.error("RATE must be at least 0")
        fix = self.set_fix_anno if self.set_fix_anno is not None else self.use_fix_anno
        self.fix_anno = True if fix is None else fix
        self.clock: Callable[[], float] = clock.monotonic
        self._tokens = float(self.burst)
        self._last: float | None = None

    # ------------------------------------------------------------------ checks
    def _unicast(self, a: np.ndarray) -> np.ndarray:
        ok = (a != 0xFFFFFFFF) & ((a >> 28) != 0xE)
        if len(self._bad):
            ok &= ~np.isin(a, self._bad)
        return ok

    def _classify(
        self, batch: PacketBatch, pos: np.ndarray, netlen: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per packet: the reason code for not answering (0: answer), and the offset of a
        valid source-route option in its header (-1: none)."""
        pool = batch.pool
        n = len(batch)
        code = np.zeros(n, np.int64)
        code[netlen < 20] = _NO_HEADER
        hlen = (pool[pos] & 0xF).astype(np.int64) * 4
        icmp = (pool[pos + IP_P] == 1) & (code == 0)
        if icmp.any():
            short = icmp & (netlen < hlen + 4)
            itype = pool[pos + hlen]
            err = icmp & ~short & np.isin(itype, ERROR_TYPES)
            code[err] = _ICMP_ERROR
            code[short] = _ICMP_SHORT
        src = batch.u32_at(pos + IP_SRC)
        dst = batch.u32_at(pos + IP_DST)
        code[(code == 0) & ~self._unicast(dst)] = _BAD_DST
        lb = link_broadcast(batch)
        if lb is not None:
            code[(code == 0) & lb] = _LINK_BCAST
        net = src >> 24
        bad_src = ~self._unicast(src) | (net == 0) | (net == 127) | ((net & 0xF0) == 0xF0)
        code[(code == 0) & bad_src] = _BAD_SRC
        frag = (batch.u16_at(pos + IP_OFF) & IP_OFFMASK) != 0
        code[(code == 0) & frag] = _FRAGMENT
        srcroute = np.full(n, -1, np.int64)
        opts = (code == 0) & (hlen > 20)
        if opts.any():
            idx = np.flatnonzero(opts)
            srcroute[idx] = _ik.find_source_routes(pool, pos[idx], netlen[idx])
            if self.icmp_type == ICMP_REDIRECT:
                code[srcroute >= 0] = _SR_REDIRECT
                srcroute[:] = -1
            elif (
                self.icmp_type == ICMP_PARAMPROB
                and self.icmp_code == ICMP_PARAMPROB_ERRATPTR
                and (srcroute >= 0).any()
            ):
                # RFC 1812 4.3.2.6: ignore the source route if the problem is in it.
                ptr = batch.anno(PARAMPROB_ANNO).astype(np.int64)
                has = np.flatnonzero(srcroute >= 0)
                sr = srcroute[has]
                xlen = pool[pos[has] + sr + 1].astype(np.int64)
                inside = (sr <= ptr[has]) & (ptr[has] < sr + xlen)
                srcroute[has[inside]] = -1
        return code, srcroute

    def _admit(self, n: int) -> int:
        """How many of ``n`` errors the token bucket lets out now."""
        if self.rate <= 0:
            return n
        now = self.clock()
        if self._last is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        k = min(n, int(self._tokens))
        self._tokens -= k
        return k

    # ------------------------------------------------------------------ building
    def process(self, batch: PacketBatch) -> PacketBatch | None:
        if not len(batch):
            return None
        pos = ip_positions(batch)
        netlen = network_lengths(batch, pos)
        code, srcroute = self._classify(batch, pos, netlen)
        declined = code != 0
        if declined.any():
            values, counts = np.unique(code[declined], return_counts=True)
            for v, c in zip(values.tolist(), counts.tolist(), strict=True):
                self.drop(int(c), REASONS[int(v)])
            ok = ~declined
            if not ok.any():
                return None
            batch = batch.select(ok)
            pos, netlen, srcroute = pos[ok], netlen[ok], srcroute[ok]
        n = len(batch)
        k = self._admit(n)
        if k < n:
            self.drop(n - k, RATE_LIMITED)
            if not k:
                return None
            batch = batch.slice(0, k)
            pos, netlen, srcroute = pos[:k], netlen[:k], srcroute[:k]
        return self._build(batch, pos, netlen, srcroute)

    def _rest_words(self, batch: PacketBatch) -> np.ndarray:
        n = len(batch)
        t, c = self.icmp_type, self.icmp_code
        if t == ICMP_PARAMPROB and c == ICMP_PARAMPROB_ERRATPTR:
            return batch.anno(PARAMPROB_ANNO).astype(np.int64) << 24
        if t == ICMP_REDIRECT:
            return batch.anno("dst_ip").astype(np.int64)
        if t == ICMP_UNREACH and c == ICMP_UNREACH_NEEDFRAG:
            if self.pmtu:
                return np.full(n, self.pmtu, np.int64)
            return batch.anno(NEXT_MTU).astype(np.int64)
        return np.zeros(n, np.int64)

    def _build(
        self, batch: PacketBatch, pos: np.ndarray, netlen: np.ndarray, srcroute: np.ndarray
    ) -> PacketBatch:
        n = len(batch)
        hl = np.full(n, 20, np.int64)
        has_sr = srcroute >= 0
        if has_sr.any():
            ptr = batch.pool[pos[has_sr] + srcroute[has_sr] + 2].astype(np.int64)
            hl[has_sr] = ((20 + (ptr - 1) + 3) >> 2) << 2
        quote = np.clip(np.minimum(netlen, self.mtu - hl - 8), 0, None)
        size = hl + 8 + quote
        head, tail = DEFAULT_HEADROOM, DEFAULT_TAILROOM
        slot = size + head + tail
        starts = np.zeros(n, np.int64)
        np.cumsum(slot[:-1], out=starts[1:])
        out = np.zeros(int(slot.sum()) + POOL_GUARD, np.uint8)
        off = starts + head
        _ik.build_icmp_errors(
            batch.pool, pos, srcroute, quote, out, off, hl, self.icmp_type, self.icmp_code,
            self._rest_words(batch), self.src, _take_ids(n),
        )
        annos = {
            "nh": off.copy(),
            "dst_ip": batch.u32_at(pos + IP_SRC),
            "timestamp": np.full(n, clock.time_ns(), np.int64),
        }
        if self.fix_anno:
            annos[FIX_IP_SRC] = np.ones(n, np.uint8)
        return PacketBatch(out, off, size, annos, head, tail)

    # ------------------------------------------------------------------ handlers
    @read_handler("src")
    def h_src(self) -> str:
        """The source address of the errors."""
        return IPAddress.unparse(self.src)

    @write_handler("src")
    def h_set_src(self, v: str) -> None:
        """Set the source address."""
        self.src = IPAddress.parse(v)

    @read_handler("mtu")
    def h_mtu(self) -> int:
        """The largest error packet built."""
        return self.mtu

    @write_handler("mtu")
    def h_set_mtu(self, v: str) -> None:
        """Set the largest error packet (at least 28)."""
        m = UInt.parse(v)
        if m < 28:
            raise ValueError("MTU must be at least 28")
        self.mtu = m

    @read_handler("pmtu")
    def h_pmtu(self) -> int:
        """The next-hop MTU reported by needfrag errors (0: the next_mtu annotation)."""
        return self.pmtu

    @write_handler("pmtu")
    def h_set_pmtu(self, v: str) -> None:
        """Set the reported next-hop MTU."""
        m = UInt.parse(v)
        if m > 0xFFFF:
            raise ValueError("PMTU must be at most 65535")
        self.pmtu = m

    @read_handler("rate")
    def h_rate(self) -> float:
        """Errors per second allowed (0: no limit)."""
        return self.rate

    @write_handler("rate")
    def h_set_rate(self, v: str) -> None:
        """Set the errors per second allowed (0: no limit)."""
        r = Double.parse(v)
        if r < 0:
            raise ValueError("RATE must be at least 0")
        self.rate = r

    @read_handler("burst")
    def h_burst(self) -> int:
        """The token bucket depth."""
        return self.burst

    @write_handler("burst")
    def h_set_burst(self, v: str) -> None:
        """Set the token bucket depth."""
        self.burst = UInt.parse(v)
        self._tokens = min(self._tokens, float(self.burst))
