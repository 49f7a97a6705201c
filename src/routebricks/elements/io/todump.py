"""ToDump: writes packets to a pcap file."""

from __future__ import annotations

from routebricks.engine.args import Arg, Bool, Choice, Filename, IntRange, PosInt
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.errors import PcapError
from routebricks.packet.batch import PacketBatch
from routebricks.packet.pcap import LINK_NAMES, PcapWriter
from routebricks.packet.pcap import warmup as pcap_warmup


class ToDump(Element):
    """Writes packets to a pcap file that tcpdump, Wireshark and scapy read.

    Ports: 1 input (agnostic); 0 or 1 outputs. Pulling with no output, it is a task that
    pulls BURST packets per call.
    Arguments:
        FILENAME (string, positional, required): the pcap file to write.
        SNAPLEN (unsigned 32-bit, positional, default 2000): bytes of each packet to keep
            (0: all).
        ENCAP (ETHER, IP, positional, default ETHER): the file's link type.
        NANO (bool, default false): write nanosecond timestamps (pcap magic 0xa1b23c4d)
            instead of microseconds.
        UNBUFFERED (bool, default false): flush after every batch.
        BURST (positive integer, default 4096): packets per pull when it is a task.
    Behaviour: each packet is written with its timestamp annotation (or the current time if
        it has none). In push mode packets then continue on output 0 if it is connected.
    Handlers:
        count (read): packets written.
        filename (read): the file name.
        reset_counts (write): zero the count.
    Example:
        FromDump(in.pcap) -> Strip(14) -> ToDump(out.pcap, ENCAP IP);
    See also: FromDump, Print
    """

    SINGLE_PROCESS = True  # one file: not written by several workers at once
    JIT_WARMUP = (pcap_warmup,)
    port_count = "1/0-1"
    processing = "a/a"
    ARGS = (
        Arg("FILENAME", Filename, positional=True, required=True),
        Arg("SNAPLEN", IntRange(0, 0xFFFFFFFF, "byte count"), 2000, positional=True),
        Arg("ENCAP", Choice("ETHER", "IP", "RAW", "IPV4"), "ETHER", positional=True),
        Arg("NANO", Bool, False),
        Arg("UNBUFFERED", Bool, False),
        Arg("BURST", PosInt, 4096),
        Arg("EXTRA_LENGTH", Bool, True),
    )

    def configure(self) -> None:
        self.count = 0
        self.writer: PcapWriter | None = None

    def initialize(self) -> None:
        try:
            self.writer = PcapWriter(self.filename, LINK_NAMES[self.encap],
                                     self.snaplen or 0xFFFF_FFFF, nanosecond=self.nano)
        except PcapError as e:
            raise self.error(str(e)) from None

    def cleanup(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def _write(self, batch: PacketBatch) -> None:
        assert self.writer is not None
        self.writer.write(batch)
        self.count += len(batch)
        if self.unbuffered:
            self.writer.flush()

    def push(self, port: int, batch: PacketBatch) -> None:
        self._write(batch)
        if self.noutputs:
            self.emit(0, batch)

    def pull(self, port: int) -> PacketBatch | None:
        b = self.pull_input(0)
        if b is not None:
            self._write(b)
        return b

    def wants_task(self) -> bool:
        return bool(self.input_modes) and self.input_modes[0] == "l" and not self.noutputs

    def run_task(self) -> bool:
        b = self.pull_input(0)
        if b is None:
            return False
        self._write(b)
        return True

    @read_handler("count", combine="sum")
    def h_count(self) -> int:
        """Packets written."""
        return self.count

    @read_handler("filename")
    def h_filename(self) -> str:
        """The file name."""
        return self.filename

    @write_handler("reset_counts")
    def h_reset(self, _: str) -> None:
        """Zero the count."""
        self.count = 0
