"""ARPPrint: prints ARP packets one line each, tcpdump-like, in Click's format."""

from __future__ import annotations

import sys
from typing import IO

import numpy as np

from routebricks.elements.standard.printer import format_timestamp
from routebricks.engine.args import Arg, Bool, Filename, String
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch
from routebricks.packet.ip import int_to_ip, ip_positions

ARP_HLEN = 28  # Ethernet/IPv4 ARP: 8-byte header, two (MAC, IP) pairs
ETHERTYPE_IP, ETHERTYPE_TRAIL = 0x0800, 0x1000
ARPHRD_ETHER = 1


def ether(b: bytes) -> str:
    """An Ethernet address as Click's StringAccum prints it: upper-case hex, dashes."""
    return "-".join(f"{x:02X}" for x in b)


def arp_text(a: bytes) -> str:
    """The description of one ARP message (at least 28 bytes), as Click's ARPPrint."""
    hrd, pro = int.from_bytes(a[0:2], "big"), int.from_bytes(a[2:4], "big")
    hln, pln, op = a[4], a[5], int.from_bytes(a[6:8], "big")
    if pro not in (ETHERTYPE_IP, ETHERTYPE_TRAIL) or pln != 4 or hln == 0:
        return f"arp-#{op} for proto #{pro} ({pln}) hardware #{hrd} ({hln})"
    # Click reads the addresses at the Ethernet/IPv4 places whatever hln says.
    sha, spa = a[8:14], int_to_ip(int.from_bytes(a[14:18], "big"))
    tha, tpa = a[18:24], int_to_ip(int.from_bytes(a[24:28], "big"))
    s = "trailer-" if pro == ETHERTYPE_TRAIL else ""
    if op == 1:
        s += f"arp who-has {tpa}"
        if any(a[18 : 18 + hln]):
            s += f" ({ether(tha)})"
        s += f" tell {spa}"
    elif op == 2:
        s += f"arp reply {spa} is-at {ether(sha)}"
    elif op == 3:
        s += f"rarp who-is {ether(tha)} tell {ether(sha)}"
    elif op == 4:
        s += f"rarp reply {ether(tha)} at {tpa}"
    elif op == 8:
        s += f"invarp who-is {ether(tha)} tell {ether(sha)}"
    elif op == 9:
        s += f"invarp reply {ether(tha)} at {tpa}"
    else:
        s += f"arp-#{op}"
    if hrd != ARPHRD_ETHER:
        s += f"hardware #{hrd}"  # no space before, as Click prints it
    return s


class ARPPrint(Element):
    """Prints a tcpdump-like line for every ARP packet to stderr, in Click's format.

    Ports: 1 input, 1 output (agnostic).
    Arguments:
        LABEL (string, positional, default empty): text at the start of each line.
        TIMESTAMP (bool, default true): print the timestamp annotation (``sec.usec``).
        ETHER (bool, default false): print the Ethernet source and destination addresses
            (when an Ethernet header fits before the ARP header).
        OUTFILE (file name): write the lines there instead of stderr.
        ACTIVE (bool, default true): whether to print.
    Behaviour: packets pass unchanged. The ARP header is at the network-header annotation
        where it is set, else at the start of the packet (Click prints nothing for packets
        without one). Each line, as Click's: ``LABEL: ``, ``TIMESTAMP: ``, ``SRC > DST: ``
        (ETHER, Click's ``00-1A-2B-3C-4D-5E`` form), then ``truncated-arp (N)`` when fewer
        than 28 bytes are there, or ``arp who-has TPA [(THA)] tell SPA``, ``arp reply SPA
        is-at SHA``, ``rarp who-is``/``rarp reply``, ``invarp who-is``/``invarp reply``,
        ``arp-#OP``; ``trailer-`` in front for the trailer protocol and ``hardware #H``
        after for hardware other than Ethernet. A non-IPv4 message prints ``arp-#OP for
        proto #P (PLN) hardware #H (HLN)`` (Click formats that line but, by an early
        return, never prints it). One write per batch; nothing is dropped.
    Handlers:
        active (read/write): whether to print.
    Example:
        c :: Classifier(12/0806, -);
        c[0] -> ARPPrint(arp, TIMESTAMP false) -> ...;
        // arp: arp who-has 10.0.0.2 tell 10.0.0.1
    See also: Print, IPPrint, ARPResponder
    """

    port_count = "1/1"
    processing = "a/a"
    PASSES_ALL = True
    ARGS = (
        Arg("LABEL", String, "", positional=True),
        Arg("TIMESTAMP", Bool, True),
        Arg("ETHER", Bool, False),
        Arg("ACTIVE", Bool, True),
        Arg("OUTFILE", Filename, None),
    )

    def configure(self) -> None:
        self._outfile: IO[str] | None = None

    def initialize(self) -> None:
        if self.outfile:
            try:
                self._outfile = open(self.resolve_path(self.outfile), "w")  # noqa: SIM115
            except OSError as e:
                raise self.error(f"{self.outfile}: {e.strerror}") from None

    def cleanup(self) -> None:
        if self._outfile is not None:
            self._outfile.close()
            self._outfile = None

    def format_line(self, pkt: bytes, nh: int, ts: int) -> str:
        """The line for one packet: its bytes, where its ARP header starts, its time."""
        s = f"{self.label}: " if self.label else ""
        if self.timestamp:
            s += format_timestamp(ts) + ": "
        if self.ether and nh >= 14 and len(pkt) >= 14:
            s += f"{ether(pkt[6:12])} > {ether(pkt[0:6])}: "
        a = pkt[nh:]
        if len(a) < ARP_HLEN:
            return s + f"truncated-arp ({len(a)})"
        return s + arp_text(a)

    def format_batch(self, batch: PacketBatch) -> list[str]:
        """The lines ARPPrint writes for ``batch`` (one per packet)."""
        n = len(batch)
        rel = np.maximum(ip_positions(batch) - batch.off, 0).tolist()
        ts = batch.anno_or_none("timestamp")
        tl = [0] * n if ts is None else ts.tolist()
        return [self.format_line(batch.packet(i), rel[i], tl[i]) for i in range(n)]

    def process(self, batch: PacketBatch) -> PacketBatch:
        if self.active and len(batch):
            (self._outfile or sys.stderr).write("\n".join(self.format_batch(batch)) + "\n")
        return batch

    @read_handler("active")
    def h_active(self) -> bool:
        """Whether to print."""
        return self.active

    @write_handler("active")
    def h_set_active(self, v: str) -> None:
        """Set whether to print."""
        self.active = Bool.parse(v)
