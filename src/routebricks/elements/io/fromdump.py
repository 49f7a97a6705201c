"""FromDump: reads packets from a pcap file."""

from __future__ import annotations

import sys

import numpy as np

from routebricks.engine import clock
from routebricks.engine.args import Arg, Bool, Double, Filename, PacketLength
from routebricks.engine.element import read_handler
from routebricks.engine.source import MEMORY_KP, Source
from routebricks.errors import PcapError
from routebricks.packet.batch import PacketBatch
from routebricks.packet.pcap import LINKTYPE_ETHERNET, RECORD_HEADER, PcapReader
from routebricks.packet.pcap import warmup as pcap_warmup


class FromDump(Source):
    """Reads packets from a pcap file (microsecond or nanosecond timestamps).

    Ports: no inputs; 1 output (push, or pull when connected to a pull input).
    Arguments:
        FILENAME (string, positional, required): the pcap file.
        STOP (bool, default false): stop the router when the file is done.
        ACTIVE (bool, default true): whether to send packets.
        BURST (positive integer, default --kp, else 4096): packets per batch (the paper's
            kp; a file has no poll latency to bound, so its default batch is bigger).
        LIMIT (integer, default -1): send at most this many packets (-1: all).
        TIMING (bool, default false): send each packet at its timestamp's offset from the
            first packet, instead of as fast as possible.
        SAMPLE (real in [0, 1], default 1): keep each packet with this probability.
        FORCE_IP (bool, default false): drop packets that are not IPv4 over Ethernet.
        HEADROOM (0 to 65535, default 16), TAILROOM (0 to 65535, default 0): free bytes
            in front of and behind each packet. At the defaults packets are used where
            they lie in the file (each one's 16-byte record header is its headroom: room
            for an Ethernet or VLAN header); more room costs one copy of the trace. An
            element that needs more room than a batch has (ESP) copies that batch itself.
    Behaviour: the file is checked when the router initializes (the header, and every
        record's length against the file's size, without reading the packets: a
        missing, truncated or non-pcap file is a configuration error naming the file and
        the byte offset). Packets are then read in 1 MiB chunks as batches are needed, so
        the first batch leaves at once and the file is never held in memory whole; each
        batch has up to BURST packets (records left at a chunk's end are moved to the front
        of the next chunk, so batches stay whole), and each packet's
        timestamp annotation is its pcap timestamp. FILENAME may be a pipe (`-` is
        standard input); a pipe is checked as it is read, and a truncated record at its
        end is reported on standard error and counted as a drop.
    Handlers:
        count (read): packets sent.
        active (read/write): whether to send.
        filesize (read): the file's size in bytes ("-" for a pipe), as Click's.
        filepos (read): bytes of the file read so far, as Click's.
        packets (read): packets in the file ("-" for a pipe).
        linktype (read): the file's link type number (1 = Ethernet).
        reset (write): send the file again from the start.
    Example:
        FromDump(in.pcap, STOP true) -> Counter -> ToDump(out.pcap);
    See also: ToDump, InfiniteSource
    """

    MEMORY_KP = MEMORY_KP
    JIT_WARMUP = (pcap_warmup,)
    port_count = "0/1"
    processing = "/a"
    ARGS = (
        Arg("FILENAME", Filename, positional=True, required=True),
        *Source.SOURCE_ARGS,
        Arg("TIMING", Bool, False),
        Arg("SAMPLE", Double, 1.0),
        Arg("FORCE_IP", Bool, False),
        Arg("HEADROOM", PacketLength, RECORD_HEADER),
        Arg("TAILROOM", PacketLength, 0),
    )

    def configure(self) -> None:
        super().configure()
        if not 0.0 <= self.sample <= 1.0:
            raise self.error(f"SAMPLE {self.sample} is not a probability", "give 0 to 1")
        self.reader: PcapReader | None = None
        self._done = False

    def initialize(self) -> None:
        path = "/dev/stdin" if self.filename == "-" else self.resolve_path(self.filename)
        if self.reader is None:
            try:
                self.reader = PcapReader(path, headroom=self.headroom, tailroom=self.tailroom,
                                         background=True)
            except PcapError as e:
                raise self.error(str(e)) from None
        self.reader.rewind()
        self._done = False
        self._t0_wall: float | None = None
        self._t0_ts = 0
        self._rng = np.random.default_rng() if self.sample < 1.0 else None

    def finish_initialize(self) -> None:
        if self.reader is not None:
            try:
                self.reader.wait_checked()
            except PcapError as e:
                raise self.error(str(e)) from None

    def cleanup(self) -> None:
        if self.reader is not None:
            self.reader.close()

    def _is_ip(self, b: PacketBatch) -> np.ndarray:
        if self.reader is not None and self.reader.linktype != LINKTYPE_ETHERNET:
            return (b.length >= 20) & ((b.u8(0) >> 4) == 4)
        ok = b.length >= 34
        et = np.zeros(len(b), np.uint16)
        et[ok] = b.select(ok).u16(12)
        return ok & (et == 0x0800)

    def finished(self) -> bool:
        return self._done

    def wants_task(self) -> bool:
        return self.output_modes[0] == "h" if self.output_modes else False

    def _next_batch(self) -> PacketBatch | None:
        r = self.reader
        if not self.active or r is None or self._done:
            return None
        want = r.available(self.kp)
        if want <= 0:
            if r.ended:  # else a pipe that has sent nothing new yet
                self._done = True
                if r.error:
                    # The rest of the file is lost: a truncated record (a pipe, or a file
                    # cut while we read it) or a read error. Said once, counted as a drop.
                    self.drop(1, r.error_reason or "read error")
                    print(f"{self.name}: {r.error}", file=sys.stderr)
            return None
        if self.timing:
            ts = r.timestamps()
            now = clock.monotonic()
            if self._t0_wall is None:
                self._t0_wall, self._t0_ts = now, int(ts[0])
            due = self._t0_ts + int((now - self._t0_wall) * 1e9)
            want = int(np.searchsorted(ts, due, side="right"))
            if want <= 0:
                return None
        n = self.allowance(want)
        if n <= 0:
            return None
        b = r.read(n)
        if r.count is not None and r.records >= r.count:
            self._done = True
        if b is None:
            return None
        if self.force_ip:
            keep = self._is_ip(b)
            if not keep.all():
                self.drop(int(np.count_nonzero(~keep)), "not IPv4 (FORCE_IP)")
                b = b.select(keep)
        if self._rng is not None:
            b = b.select(self._rng.random(len(b)) < self.sample)
        return b

    def run_task(self) -> bool:
        b = self._next_batch()
        if b is None:
            self.maybe_stop()
            return False
        self.send(b)
        self.maybe_stop()
        return True

    def pull(self, port: int) -> PacketBatch | None:
        b = self._next_batch()
        if b is not None:
            self.emitted += len(b)
        self.maybe_stop()
        return b

    @read_handler("filesize")
    def h_filesize(self) -> int | str:
        """The file's size in bytes ("-" for a pipe)."""
        r = self.reader
        return "-" if r is None or r.pipe else r.size

    @read_handler("filepos")
    def h_filepos(self) -> int:
        """Bytes of the file read so far."""
        return self.reader.filepos if self.reader is not None else 0

    @read_handler("packets")
    def h_packets(self) -> int | str:
        """Packets in the file ("-" for a pipe)."""
        r = self.reader
        return r.count if r is not None and r.count is not None else "-"

    @read_handler("linktype")
    def h_linktype(self) -> int:
        """The file's link type number."""
        return self.reader.linktype if self.reader else 0

    def h_reset(self, _: str) -> None:
        super().h_reset(_)
        self.initialize()  # from the first packet again
