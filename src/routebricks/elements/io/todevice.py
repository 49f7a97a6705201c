"""ToDevice: sends packets on a network interface (AF_PACKET)."""

from __future__ import annotations

from routebricks.engine.args import Arg, Choice, PosInt, UInt, Word
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch

#: The transmitter's drop counters (TxStats fields) and the drop reason of each.
TX_DROPS = {
    "oversize_drops": "too long for device",
    "invalid_drops": "shorter than an Ethernet header",
    "busy_drops": "device busy",
    "down_drops": "device down",
}


class ToDevice(Element):
    """Sends packets on a network interface, one system call per batch.

    Ports: 1 input (agnostic); no outputs. Pulling, it is a task that pulls BURST packets
    per call; pushed to, it sends each batch at once (run to completion).
    Arguments:
        DEVNAME (word, positional, required): the interface.
        BURST (positive integer, default 1024): packets per pull when pulling.
        QUEUE (unsigned, default: the worker number): accepted for Click compatibility; each
            worker has its own transmit socket (its own transmit queue).
        METHOD (SENDMMSG, RING, SEND; default SENDMMSG): sendmmsg measured faster than the
            TX ring on veth; SEND is one system call per packet (a baseline).
    Behaviour: every packet is sent or dropped and counted: frames longer than the device
        MTU ("too long for device"; never truncated; also a frame the kernel refuses with
        EMSGSIZE because the MTU shrank while running), shorter than 14 bytes ("shorter
        than an Ethernet header"), refused because a queue is full (ENOBUFS, EAGAIN:
        "device busy") or because the interface is down or gone ("device down").
    Handlers:
        count (read): packets sent.
        reset_counts (write): zero the count.
    Example:
        ... -> Queue -> ToDevice(eth1);
        ... -> ToDevice(eth1);   // pushed: sent in the same batch
    See also: FromDevice, ToDump
    """

    port_count = "1/0"
    processing = "a/"
    ARGS = (
        Arg("DEVNAME", Word, positional=True, required=True),
        Arg("BURST", PosInt, 1024),
        Arg("QUEUE", UInt, None),
        Arg("METHOD", Choice("SENDMMSG", "RING", "SEND"), "SENDMMSG"),
    )
    EVERY_WORKER = True

    def configure(self) -> None:
        self.count = 0
        self.tx = None
        self._seen = dict.fromkeys(TX_DROPS, 0)  # the transmitter's drops already counted

    def initialize(self) -> None:
        from routebricks.io.afpacket import TxRing, warmup

        warmup()
        try:
            self.tx = TxRing(self.devname, mode=self.method.lower())
        except OSError as e:
            raise self.error(f"cannot open device {self.devname!r}: {e.strerror or e}",
                             "is the interface in this network namespace? (run as root)"
                             ) from None

    def cleanup(self) -> None:
        if self.tx is not None:
            self.tx.close()
            self.tx = None

    def _send(self, batch: PacketBatch) -> None:
        assert self.tx is not None
        sent = self.tx.send_batch(batch.pool, batch.off, batch.length)
        self.count += sent
        if sent == len(batch):
            return
        st = self.tx.stats()
        for field, reason in TX_DROPS.items():
            n = getattr(st, field)
            self.drop(n - self._seen[field], reason)
            self._seen[field] = n

    def push(self, port: int, batch: PacketBatch) -> None:
        self._send(batch)

    def wants_task(self) -> bool:
        return bool(self.input_modes) and self.input_modes[0] == "l"

    def run_task(self) -> bool:
        b = self.pull_input(0)
        if b is None:
            return False
        self._send(b)
        return True

    @read_handler("count", combine="sum")
    def h_count(self) -> int:
        """Packets sent."""
        return self.count

    @write_handler("reset_counts")
    def h_reset(self, _: str) -> None:
        """Zero the count."""
        self.count = 0
