"""CheckICMPHeader: checks the length and checksum of ICMP messages."""

from __future__ import annotations

import numpy as np

from routebricks.elements.ip.annotations import chatter, reject
from routebricks.engine.args import Arg, Bool
from routebricks.engine.element import Element, read_handler
from routebricks.packet.batch import PacketBatch
from routebricks.packet.checksum import inet_checksum_at
from routebricks.packet.ip import IP_MIN_HLEN, IP_P, PROTO_ICMP

NOT_ICMP, BAD_LENGTH, BAD_CHECKSUM = 1, 2, 3
#: Click's reason_texts, by failure code.
REASONS = {NOT_ICMP: "not ICMP", BAD_LENGTH: "bad packet length",
           BAD_CHECKSUM: "bad ICMP checksum"}

ICMP_HLEN = 8
#: Error messages quote an IP header and 64 bits of the datagram (RFC 792): 8 + 28 bytes.
ERROR_TYPES = (3, 4, 5, 11, 12)  # unreachable, source quench, redirect, time exceeded, param
ERROR_MIN = ICMP_HLEN + 28
#: Types whose messages have exactly one length: timestamp (request/reply), info (request/
#: reply).
EXACT_LENGTHS = {13: 20, 14: 20, 15: 8, 16: 8}


def icmp_failures(pool: np.ndarray, nh: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Click's CheckICMPHeader tests over a batch, in its order: the failure code of each
    packet (0 when the message is good).

    ``nh`` is each packet's network-header position (-1 when unset), ``end`` the position
    just past its last byte. The ICMP message runs from the transport header (``nh`` plus
    the IP header length) to the end of the packet, as Click's ``transport_length``.
    """
    n = nh.shape[0]
    code = np.zeros(n, np.int8)
    netlen = end - nh
    # A protocol byte must be there to tell ICMP; an unmarked packet is not ICMP either.
    readable = (nh >= 0) & (netlen > IP_P)
    proto = np.zeros(n, np.uint8)
    proto[readable] = pool[nh[readable] + IP_P]
    code[proto != PROTO_ICMP] = NOT_ICMP
    icmp = np.flatnonzero(code == 0)
    if not icmp.size:
        return code
    hlen = (pool[nh[icmp]] & 0xF).astype(np.int64) * 4
    tpos = nh[icmp] + hlen
    icmp_len = end[icmp] - tpos
    bad = (icmp_len < ICMP_HLEN) | (hlen < IP_MIN_HLEN)
    ok = ~bad
    itype = np.full(icmp.size, -1, np.int64)
    itype[ok] = pool[tpos[ok]]
    bad |= np.isin(itype, ERROR_TYPES) & (icmp_len < ERROR_MIN)
    for t, need in EXACT_LENGTHS.items():
        bad |= (itype == t) & (icmp_len != need)
    code[icmp[bad]] = BAD_LENGTH
    ok = ~bad
    if ok.any():
        sums = inet_checksum_at(pool, tpos[ok], icmp_len[ok])
        code[icmp[ok][sums != 0]] = BAD_CHECKSUM
    return code


class CheckICMPHeader(Element):
    """Checks ICMP messages: sensible length and a valid checksum.

    Ports: 1 input, 1 output (agnostic); optional output 1 (push) for bad packets.
    Arguments:
        VERBOSE (bool, keyword, default false): print a line for every bad packet (else
            only for the first).
        DETAILS (bool, keyword, default false): accepted for Click compatibility; failures
            are always counted by reason (see drop_details).
    Behaviour: expects IP packets with the network-header annotation (``nh``; CheckIPHeader
        or MarkIPHeader sets it). The ICMP message is everything from the transport header
        (``nh`` plus the IP header length) to the end of the packet, as in Click. In
        Click's order, a packet fails as "not ICMP" when it has no network header or its
        protocol is not 1; as "bad packet length" when the message is shorter than 8
        bytes (or the IP header length is below 20), shorter than 36 bytes for the error
        types (unreachable, source quench, redirect, time exceeded, parameter problem),
        not exactly 20 bytes for timestamp and timestamp reply, or not exactly 8 for
        information request and reply; as "bad ICMP checksum" when the Internet checksum
        over the message is wrong. One vectorized pass per batch (the checksums in a
        compiled kernel). Good packets leave on output 0 unchanged; bad ones go to output
        1 if it is connected, else are dropped under the reasons above. The first failure
        (every failure with VERBOSE) prints ``NAME: ICMP header check failed: REASON`` to
        stderr.
    Handlers:
        drops (read): packets that failed a check (sent to output 1 or dropped), as Click.
        drop_details (read): failures by reason, one ``COUNT<TAB>REASON`` line per reason
            (Click has it only with DETAILS true).
    Example:
        ... -> CheckIPHeader -> ipc :: IPClassifier(icmp, -);
        ipc[0] -> CheckICMPHeader -> ICMPPingResponder -> ...;
    See also: CheckIPHeader, MarkIPHeader, ICMPPingResponder
    """

    port_count = "1/1-2"
    processing = "a/ah"
    ARGS = (
        Arg("VERBOSE", Bool, False),
        Arg("DETAILS", Bool, False),
    )

    def configure(self) -> None:
        self.failures = np.zeros(len(REASONS) + 1, np.int64)

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        n = len(batch)
        if not n:
            return batch
        nh = batch.anno_or_none("nh")
        if nh is None:
            nh = np.full(n, -1, np.int64)
        code = icmp_failures(batch.pool, nh.astype(np.int64), batch.off + batch.length)
        bad = code != 0
        if not bad.any():
            return batch
        codes = code[bad].astype(np.int64)
        self._failed(codes)
        reject(self, batch.select(bad), codes, REASONS)
        return None if bad.all() else batch.select(~bad)

    def _failed(self, codes: np.ndarray) -> None:
        first = not self.failures.any()
        self.failures += np.bincount(codes, minlength=len(self.failures))
        if self.verbose:
            for c in codes.tolist():
                chatter(self, f"ICMP header check failed: {REASONS[c]}")
        elif first:
            chatter(self, f"ICMP header check failed: {REASONS[int(codes[0])]}")

    @read_handler("drops", combine="sum")
    def h_drops(self) -> int:
        """Packets that failed a check (to output 1 or dropped)."""
        return int(self.failures.sum())

    @read_handler("drop_details", combine="merge")
    def h_drop_details(self) -> str:
        """Failures by reason, one COUNT<TAB>REASON line per reason."""
        return "\n".join(f"{int(self.failures[c])}\t{t}" for c, t in REASONS.items())
