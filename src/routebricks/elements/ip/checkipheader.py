"""CheckIPHeader: checks IPv4 headers, marks them, trims packets to the IP length."""

from __future__ import annotations

import ipaddress

import numpy as np

from routebricks.elements.ip.annotations import chatter, reject
from routebricks.engine import addresses
from routebricks.engine.args import MAX_PACKET, Arg, Bool, Int, Raw
from routebricks.engine.element import Element, read_handler
from routebricks.packet import ipkernels as _ik
from routebricks.packet.batch import PacketBatch

#: Click's reason_texts, indexed by the kernel's failure codes (1..6).
REASONS = {
    _ik.CHECK_TINY: "tiny packet",
    _ik.CHECK_VERSION: "bad IP version",
    _ik.CHECK_HLEN: "bad IP header length",
    _ik.CHECK_LEN: "bad IP length",
    _ik.CHECK_SUM: "bad IP checksum",
    _ik.CHECK_SRC: "bad source address",
}


def parse_address_list(text: str) -> list[int]:
    """A space-separated list of IPv4 addresses (Click's IPAddressArg list)."""
    out = []
    for w in text.replace(",", " ").split():
        try:
            out.append(int(ipaddress.IPv4Address(w)))
        except ValueError:
            named = addresses.lookup(w, "ip")  # an AddressInfo name
            if not isinstance(named, int):
                raise ValueError(f"{w!r} is not an IPv4 address") from None
            out.append(named)
    return out


def parse_interfaces(text: str) -> tuple[list[int], list[int]]:
    """INTERFACES ``ADDR/LEN ...``: (subnet broadcast addresses, interface addresses)."""
    bcast, addrs = [], []
    for w in text.split():
        try:
            itf = ipaddress.IPv4Interface(w)
        except ValueError:
            raise ValueError(f"{w!r} is not an interface address such as 10.0.0.1/24") from None
        bcast.append(int(itf.network.broadcast_address))
        addrs.append(int(itf.ip))
    return bcast, addrs


class CheckIPHeader(Element):
    """Checks IPv4 headers; marks good ones and trims their packets to the IP length.

    Ports: 1 input, 1 output (agnostic); optional output 1 (push) for bad packets.
    Arguments:
        OFFSET (unsigned, positional, default 0): where the IP header starts in the packet
            data (14 for Ethernet frames). A single positional integer is OFFSET.
        INTERFACES (``ADDR/LEN ...``): the router's interfaces; each subnet broadcast
            address is a bad source, each interface address a good destination (below),
            and 0.0.0.0 and 255.255.255.255 are bad sources.
        BADSRC (space-separated addresses): more bad source addresses. Click's old form,
            BADSRC and OFFSET given by position, is accepted too (it also adds 0.0.0.0 and
            255.255.255.255).
        GOODDST (space-separated addresses): destinations for which a bad source is allowed.
        CHECKSUM (bool, default true): verify the header checksum.
        VERBOSE (bool, default false): print a line for every bad packet (else only for
            the first).
        DETAILS (bool, default false): accepted for Click compatibility; failures are always
            counted by reason (see drop_details).
    Behaviour: one compiled pass checks, in Click's order: at least 20 bytes from OFFSET
        ("tiny packet"), version 4 ("bad IP version"), header length at least 20 ("bad IP
        header length"), total length from the header length to the bytes present ("bad IP
        length"), header checksum ("bad IP checksum"), and the source address ("bad source
        address"): the BADSRC/INTERFACES addresses and, after RFC 1812 5.3.7, the
        martians 0/8, 127/8, 224/4 and 255.255.255.255, unless the destination is in
        GOODDST. Good packets get the network-header annotation (``nh``), are trimmed to the
        IP total length (per packet, by shortening ``length``), get the destination
        annotation (``dst_ip``) from the header, and leave on output 0. Bad packets go to
        output 1 if it is connected, else are dropped under the reasons above. The first
        failure prints ``NAME: IP header check failed: REASON`` to stderr.
    Handlers:
        drops (read): packets that failed a check (sent to output 1 or dropped), as Click.
        drop_details (read): failures by reason, one ``COUNT<TAB>REASON`` line per reason.
    Example:
        FromDevice(eth0) -> Strip(14) -> CheckIPHeader(INTERFACES 18.26.4.1/24) -> rt;
    See also: MarkIPHeader, DecIPTTL, Strip
    """

    JIT_WARMUP = (_ik.warmup,)

    port_count = "1/1-2"
    processing = "a/ah"
    REST = True
    ARGS = (
        Arg("INTERFACES", Raw, None),
        Arg("BADSRC", Raw, None),
        Arg("GOODDST", Raw, None),
        Arg("OFFSET", Int, None),
        Arg("VERBOSE", Bool, False),
        Arg("DETAILS", Bool, False),
        Arg("CHECKSUM", Bool, True),
    )

    def configure(self) -> None:
        bad: list[int] = []
        good: list[int] = []
        try:
            if self.interfaces is not None:
                b, g = parse_interfaces(self.interfaces)
                bad += b + [0, 0xFFFFFFFF]
                good += g
            if self.badsrc is not None:
                bad += parse_address_list(self.badsrc)
            if self.gooddst is not None:
                good += parse_address_list(self.gooddst)
        except ValueError as e:
            raise self.error(str(e)) from None
        rest = self.rest
        offset = self.offset
        if len(rest) == 1 and _is_int(rest[0]):
            if offset is not None:
                raise self.error("OFFSET given twice (by position and by keyword)")
            offset = int(rest[0], 0)
        elif rest:
            if len(rest) > 2:
                raise self.error(
                    f"too many arguments: {rest[2]!r}", "CheckIPHeader([OFFSET], keywords)"
                )
            try:
                bad += parse_address_list(rest[0]) + [0, 0xFFFFFFFF]
            except ValueError as e:
                raise self.error(f"bad BADSRC argument: {e}") from None
            if len(rest) == 2:
                if offset is not None or not _is_int(rest[1]):
                    raise self.error(f"bad OFFSET argument {rest[1]!r}")
                offset = int(rest[1], 0)
        if offset is None:
            offset = 0
        if not 0 <= offset <= MAX_PACKET:
            raise self.error(f"OFFSET must be from 0 to {MAX_PACKET}")
        self.offset = offset
        self._bad = np.array(sorted(set(bad)), np.int64)
        self._good = np.array(sorted(set(good)), np.int64)
        self.failures = np.zeros(len(REASONS) + 1, np.int64)

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        n = len(batch)
        if not n:
            return batch
        pos = batch.off + self.offset
        reason, iplen, dst, nbad = _ik.check_ip_headers(
            batch.pool, pos, batch.length - self.offset, self.checksum, True, self._bad, self._good
        )
        if nbad:
            bad = reason != 0
            codes = reason[bad]
            self._failed(codes)
            reject(self, batch.select(bad), codes, REASONS)
            if nbad == n:
                return None
            keep = ~bad
            batch = batch.select(keep)
            pos = pos[keep]
            iplen = iplen[keep]
            dst = dst[keep]
        batch.annos["nh"] = pos
        batch.length = iplen + self.offset
        batch.annos["dst_ip"] = dst
        return batch

    def _failed(self, codes: np.ndarray) -> None:
        counts = np.bincount(codes, minlength=len(self.failures))
        first = not self.failures.any()
        self.failures += counts[: len(self.failures)]
        if self.verbose:
            for c in codes.tolist():
                chatter(self, f"IP header check failed: {REASONS[c]}")
        elif first:
            chatter(self, f"IP header check failed: {REASONS[int(codes[0])]}")

    @read_handler("drops", combine="sum")
    def h_drops(self) -> int:
        """Packets that failed a check (to output 1 or dropped)."""
        return int(self.failures.sum())

    @read_handler("drop_details", combine="merge")
    def h_drop_details(self) -> str:
        """Failures by reason, one COUNT<TAB>REASON line per reason."""
        return "\n".join(f"{int(self.failures[c])}\t{t}" for c, t in REASONS.items())


def _is_int(text: str) -> bool:
    try:
        int(text.strip(), 0)
    except ValueError:
        return False
    return True
