"""IPsecLookup: the security policy decision of an IPsec gateway, as a dispatch element."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routebricks.elements.ip.annotations import network_lengths
from routebricks.elements.ipsec.common import SAElement
from routebricks.engine.args import Arg, Filename, IPAddress
from routebricks.engine.element import read_handler
from routebricks.ipsec import SecurityAssociation
from routebricks.ipsec.sa import int_to_ip
from routebricks.packet.batch import PacketBatch
from routebricks.packet.ip import IP_DST, IP_P, PROTO_ESP, ip_positions

PROTECT, ESP, BYPASS = 0, 1, 2
NO_POLICY = "no policy"
NO_IP_HEADER = "no IP header"


class IPsecLookup(SAElement):
    """Sends IPv4 packets to protect, ESP packets for us and the rest to three outputs.

    Ports: 1 push input; push outputs 0 (protect) and 1 (ESP), optional push output 2
        (bypass).
    Arguments:
        SAS (file name, positional, required): the SA file (see ESPEncap); only the
            selectors, SPIs and addresses are used here.
        LOCAL (IPv4 address): this gateway's tunnel address: its outbound SAs are those
            whose ``src`` is LOCAL, and only ESP packets addressed to LOCAL go to output
            1. Without LOCAL, every outbound SA counts and any ESP packet goes to output
            1.
    Behaviour: the IP header is found through the network-header annotation (else at
        the data start). Packets of protocol 50 (ESP) addressed to LOCAL go to output 1,
        for ESPDecap (unknown SPIs included, so that ESPDecap counts them). Other
        packets whose destination is covered by the selector of an outbound SA go to
        output 0, for ESPEncap(SAS ...) with the same file and LOCAL (RFC 4301's
        PROTECT). The rest go to output 2 (BYPASS) if it is connected, else are dropped
        as "no policy" (DISCARD). Packets with under 20 bytes of IP header are dropped
        as "no IP header". One vectorized pass per batch; packets keep their order on
        each output. Keys from the file are never shown.
    Handlers:
        policy (read): one line per outbound SA: its selectors, SPI, tunnel addresses
            and algorithm (never keys).
        counts (read): packets sent to each output, one ``COUNT<TAB>OUTPUT`` line each.
        config (read): the configuration.
        drops (read): dropped packets by reason.
    Example:
        spd :: IPsecLookup(SAS sas.txt, LOCAL 192.0.2.1);
        lan_ip -> spd;
        spd[0] -> ESPEncap(SAS sas.txt, LOCAL 192.0.2.1) -> wan;
        spd[1] -> ESPDecap(SAS sas.txt, LOCAL 192.0.2.1) -> lan;
        spd[2] -> Discard;
    See also: ESPEncap, ESPDecap, IPClassifier
    """

    port_count = "1/2-3"
    processing = "h/h"
    ARGS: ClassVar[tuple[Arg, ...]] = (
        Arg("SAS", Filename, positional=True, required=True),
        Arg("LOCAL", IPAddress),
    )

    def configure(self) -> None:
        self.outbound: list[SecurityAssociation] = [
            sa for sa in self._load_file("out") if sa.selectors]
        if not self.outbound:
            raise self.error(f"no outbound SA in {self.sas} has a selector",
                             "add selector=a.b.c.d/len to the SAs this gateway sends with")
        self._counts = np.zeros(3, np.int64)

    def push(self, port: int, batch: PacketBatch) -> None:
        if not len(batch):
            return
        pos = ip_positions(batch)
        short = network_lengths(batch, pos) < 20
        if short.any():
            self.drop(int(np.count_nonzero(short)), NO_IP_HEADER)
            batch = batch.select(~short)
            pos = pos[~short]
            if not len(batch):
                return
        dst = batch.u32_at(pos + IP_DST)
        esp = batch.pool[pos + IP_P] == PROTO_ESP
        if self.local is not None:
            esp &= dst == np.uint32(self.local)
        out = np.full(len(batch), BYPASS, np.int64)
        out[esp] = ESP
        free = ~esp
        for sa in self.outbound:
            if not free.any():
                break
            m = free & sa.matches(dst)
            out[m] = PROTECT
            free &= ~m
        self._counts += np.bincount(out, minlength=3)
        for p, b in enumerate(batch.split(out, 3)):
            if b is None:
                continue
            if p == BYPASS:
                self.emit_or_drop(BYPASS, b, NO_POLICY)
            else:
                self.emit(p, b)

    @read_handler("policy")
    def h_policy(self) -> str:
        """Outbound SAs: selectors, SPI, tunnel addresses, algorithm."""
        lines = []
        for sa in self.outbound:
            sel = ",".join(f"{int_to_ip(n)}/{p}" for n, p in sa.selectors)
            lines.append(f"{sel}\tspi={sa.spi:#x} src={int_to_ip(sa.src)} "
                         f"dst={int_to_ip(sa.dst)} alg={sa.alg}")
        return "\n".join(lines)

    @read_handler("counts", combine="merge")
    def h_counts(self) -> str:
        """Packets sent to each output."""
        names = ("protect", "esp", "bypass")
        return "\n".join(f"{int(c)}\t{n}" for c, n in zip(self._counts, names, strict=True))
