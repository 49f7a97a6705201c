"""ToDevice: sends packets on a network interface (AF_PACKET)."""

from __future__ import annotations

from routebricks.engine.args import Arg, Choice, PosInt, UInt, Word
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch


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
    Behaviour: frames longer than the device MTU are dropped and counted ("too long for
        device"), never truncated; frames the kernel refuses because its queue is full
        (ENOBUFS) are dropped and counted ("device busy").
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
        self._seen = (0, 0, 0)

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
        st = self.tx.stats()
        over, invalid, busy = st.oversize_drops, st.invalid_drops, st.busy_drops
        o0, i0, b0 = self._seen
        self._seen = (over, invalid, busy)
        self.drop(over - o0, "too long for device")
        self.drop(invalid - i0, "shorter than an Ethernet header")
        self.drop(busy - b0, "device busy")

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
