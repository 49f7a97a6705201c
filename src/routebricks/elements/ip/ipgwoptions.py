"""IPGWOptions: processes the IP options every router handles (Record Route, Timestamp)."""

from __future__ import annotations

import numpy as np

from routebricks.elements.ip.annotations import ICMP_PARAMPROB
from routebricks.elements.ip.checkipheader import parse_address_list
from routebricks.engine import clock
from routebricks.engine.args import Arg, IPAddress, Raw
from routebricks.engine.element import Element, read_handler
from routebricks.packet import ipkernels as _ik
from routebricks.packet.batch import PacketBatch
from routebricks.packet.ip import ip_positions


def ms_since_midnight(now: float | None = None) -> int:
    """RFC 791 timestamp: milliseconds since midnight UT."""
    t = clock.time() if now is None else now
    return int((t % 86400) * 1000)


class IPGWOptions(Element):
    """Processes the IP options a router handles on every packet: Record Route, Timestamp.

    Ports: 1 input, 1 output (agnostic); optional output 1 (push) for bad options.
    Arguments:
        MYADDR (IPv4 address, positional, required): the router's address on the interface
            downstream of this element (RFC 1812 4.2.2.2), recorded in the options.
        OTHERADDRS (space-separated addresses, positional): the router's other interface
            addresses, for prespecified-address Timestamp options.
    Behaviour: the IP header is found through the network-header annotation. Packets
        without options -- nearly all of them -- pass after one vectorized test of the
        header length. For the others a compiled walk does what Click's IPGWOptions does:
        Record Route gets MYADDR at its pointer; Timestamp gets the time in milliseconds
        since midnight UT (flag 0), MYADDR and the time (flag 1), or the time where the
        prespecified address is one of ours (flag 3), or its overflow counter incremented
        when full; then the header checksum is recomputed. Other options are skipped. A
        malformed option (bad length, bad pointer, overflow counter full, unknown timestamp
        flag) sends the packet unchanged to output 1 with the ``icmp_paramprob`` annotation
        set to the offset of the bad byte in the IP header (for ICMPError
        parameterproblem), or drops it as "bad IP option" if output 1 is not connected.
    Handlers:
        drops (read): packets with bad options (to output 1 or dropped), as Click.
    Example:
        rt[1] -> gio :: IPGWOptions(18.26.4.24) -> FixIPSrc(18.26.4.24) -> ...;
        gio[1] -> ICMPError(18.26.4.24, parameterproblem) -> rt;
    See also: ICMPError, CheckIPHeader
    """

    port_count = "1/1-2"
    processing = "a/ah"
    ARGS = (
        Arg("MYADDR", IPAddress, positional=True, required=True),
        Arg("OTHERADDRS", Raw, None, positional=True),
    )

    def configure(self) -> None:
        try:
            others = parse_address_list(self.otheraddrs) if self.otheraddrs else []
        except ValueError as e:
            raise self.error(f"bad OTHERADDRS: {e}") from None
        self._addrs = np.array(sorted(set(others) | {self.myaddr}), np.int64)
        self.bad = 0

    def process(self, batch: PacketBatch) -> PacketBatch | None:
        if not len(batch):
            return batch
        pos = ip_positions(batch)
        opts = (batch.pool[pos] & 0xF) > 5
        if not opts.any():
            return batch
        idx = np.flatnonzero(opts)
        p = pos[idx]
        netlen = batch.off[idx] + batch.length[idx] - p
        ok = netlen >= 20
        idx, p, netlen = idx[ok], p[ok], netlen[ok]
        if not len(idx):
            return batch
        ptr = _ik.gw_options(batch.pool, p, netlen, self.myaddr, self._addrs, ms_since_midnight())
        badm = ptr >= 0
        nbad = int(np.count_nonzero(badm))
        if not nbad:
            return batch
        self.bad += nbad
        bad_idx = idx[badm]
        rej = batch.select(bad_idx)
        rej.anno(ICMP_PARAMPROB)[...] = ptr[badm]
        self.emit_or_drop(1, rej, "bad IP option")
        if nbad == len(batch):
            return None
        keep = np.ones(len(batch), bool)
        keep[bad_idx] = False
        return batch.select(keep)

    @read_handler("drops", combine="sum")
    def h_drops(self) -> int:
        """Packets with bad options (to output 1 or dropped)."""
        return self.bad
