"""Tee and PullTee: duplicate packets to every output."""

from __future__ import annotations

from routebricks.engine.args import Arg, IntRange
from routebricks.engine.element import Element
from routebricks.engine.graph import MAX_PORTS
from routebricks.packet.batch import PacketBatch

_OUTPUTS = IntRange(1, MAX_PORTS, "output count")


class Tee(Element):
    """Sends a copy of every packet to each output.

    Ports: 1 push input; 1 or more push outputs (N if N is given).
    Arguments:
        N (positive integer, positional, default: the outputs used): the number of outputs;
            when given, it must match the outputs connected.
    Behaviour: for n outputs, the batch is copied n-1 times (``batch.copy()``, each copy in
        a pool of its own) before anything is sent, so what one output's elements do to
        their packets never shows on another output. The batches are then pushed in port
        order: output 0 gets the original, outputs 1..n-1 the copies.
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        FromDump(in.pcap) -> t :: Tee(2);
        t[0] -> ToDump(a.pcap);
        t[1] -> Strip(14) -> ToDump(b.pcap, ENCAP IP);
    See also: PullTee, PaintSwitch
    """

    port_count = "1/1-"
    processing = "h/h"
    PASSES_ALL = True
    ARGS = (Arg("N", _OUTPUTS, None, positional=True),)

    def configure(self) -> None:
        if self.n is not None:
            self.port_count = f"1/{self.n}"  # "N outputs implies N arms", as in Click

    def push(self, port: int, batch: PacketBatch) -> None:
        copies = [batch.copy() for _ in range(1, self.noutputs)]
        self.emit(0, batch)
        for i, c in enumerate(copies, 1):
            self.emit(i, c)


class PullTee(Element):
    """Passes pulled packets through output 0 and pushes a copy of them to every other output.

    Ports: 1 pull input; output 0 pull, outputs 1 and more push (N outputs if N is given).
    Arguments:
        N (positive integer, positional, default: the outputs used): the number of outputs;
            when given, it must match the outputs connected.
    Behaviour: when output 0 is pulled, PullTee pulls a batch from its input, copies it for
        outputs 1..n-1 (``batch.copy()``), pushes the copies there in port order, and then
        returns the original.
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        q :: Queue -> pt :: PullTee(2) -> ToDump(out.pcap);
        pt[1] -> Counter -> Discard;
    See also: Tee
    """

    port_count = "1/1-"
    processing = "l/lh"
    PASSES_ALL = True
    ARGS = (Arg("N", _OUTPUTS, None, positional=True),)

    def configure(self) -> None:
        if self.n is not None:
            self.port_count = f"1/{self.n}"

    def pull(self, port: int) -> PacketBatch | None:
        batch = self.pull_input(0)
        if batch is None or not len(batch):
            return None
        copies = [batch.copy() for _ in range(1, self.noutputs)]
        for i, c in enumerate(copies, 1):
            self.emit(i, c)
        return batch
