"""FromDump: reads packets from a pcap file."""

from __future__ import annotations

import time

import numpy as np

from routebricks.engine.args import Arg, Bool, Double, Filename, PacketLength
from routebricks.engine.element import read_handler
from routebricks.engine.source import Source
from routebricks.errors import PcapError
from routebricks.packet.pcap import LINKTYPE_ETHERNET, read_pcap


class FromDump(Source):
    """Reads packets from a pcap file (microsecond or nanosecond timestamps).

    Ports: no inputs; 1 output (push, or pull when connected to a pull input).
    Arguments:
        FILENAME (string, positional, required): the pcap file.
        STOP (bool, default false): stop the router when the file is done.
        ACTIVE (bool, default true): whether to send packets.
        BURST (positive integer, default --kp): packets per batch (the paper's kp).
        LIMIT (integer, default -1): send at most this many packets (-1: all).
        TIMING (bool, default false): send each packet at its timestamp's offset from the
            first packet, instead of as fast as possible.
        SAMPLE (real in [0, 1], default 1): keep each packet with this probability.
        FORCE_IP (bool, default false): drop packets that are not IPv4 over Ethernet.
        HEADROOM, TAILROOM (0 to 65535, default 32 each): free bytes kept
            around each loaded packet. Compact slots keep a trace of small packets dense in
            memory (measured +18% on the IP-routing path against 64/64) and still leave room
            for an Ethernet header, or ESP's outer header and GCM trailer; an element that
            needs more room repacks the batch.
    Behaviour: the whole file is loaded into memory when the router initializes (one copy
        into a pool with room for headers around each packet), then sent in batches of up
        to BURST packets; each packet's timestamp annotation is its pcap timestamp. A
        missing, truncated or non-pcap file is a configuration error naming the file and
        the byte offset.
    Handlers:
        count (read): packets sent.
        active (read/write): whether to send.
        filesize (read): packets in the file.
        linktype (read): the file's link type number (1 = Ethernet).
        reset (write): send the file again from the start.
    Example:
        FromDump(in.pcap, STOP true) -> Counter -> ToDump(out.pcap);
    See also: ToDump, InfiniteSource
    """

    port_count = "0/1"
    processing = "/a"
    ARGS = (
        Arg("FILENAME", Filename, positional=True, required=True),
        *Source.SOURCE_ARGS,
        Arg("TIMING", Bool, False),
        Arg("SAMPLE", Double, 1.0),
        Arg("FORCE_IP", Bool, False),
        Arg("HEADROOM", PacketLength, 32),
        Arg("TAILROOM", PacketLength, 32),
    )

    def configure(self) -> None:
        super().configure()
        if not 0.0 <= self.sample <= 1.0:
            raise self.error(f"SAMPLE {self.sample} is not a probability", "give 0 to 1")
        self.pos_i = 0
        self.file = None

    def initialize(self) -> None:
        try:
            self.file = read_pcap(self.resolve_path(self.filename), headroom=self.headroom,
                                  tailroom=self.tailroom)
        except PcapError as e:
            raise self.error(str(e)) from None
        self.packets_all = self.file.batch
        if self.force_ip:
            keep = self._is_ip()
            self.drop(int(np.count_nonzero(~keep)), "not IPv4 (FORCE_IP)")
            self.packets_all = self.packets_all.select(keep)
        if self.sample < 1.0:
            keep = np.random.default_rng().random(len(self.packets_all)) < self.sample
            self.packets_all = self.packets_all.select(keep)
        self.pos_i = 0
        self._t0_wall = None

    def _is_ip(self) -> np.ndarray:
        b = self.packets_all
        if self.file is not None and self.file.linktype != LINKTYPE_ETHERNET:
            return (b.length >= 20) & ((b.u8(0) >> 4) == 4)
        ok = b.length >= 34
        et = np.zeros(len(b), np.uint16)
        et[ok] = b.select(ok).u16(12)
        return ok & (et == 0x0800)

    def finished(self) -> bool:
        return self.file is not None and self.pos_i >= len(self.packets_all)

    def wants_task(self) -> bool:
        return self.output_modes[0] == "h" if self.output_modes else False

    def _next_batch(self) -> int:
        if not self.active or self.file is None:
            return 0
        left = len(self.packets_all) - self.pos_i
        if left <= 0:
            return 0
        want = left
        if self.timing:
            ts = self.packets_all.anno("timestamp")
            now = time.monotonic()
            if self._t0_wall is None:
                self._t0_wall = now - 0.0
                self._t0_ts = int(ts[0])
            due = self._t0_ts + int((now - self._t0_wall) * 1e9)
            want = int(np.searchsorted(ts[self.pos_i :], due, side="right"))
            if want <= 0:
                return 0
        return self.allowance(want)

    def run_task(self) -> bool:
        n = self._next_batch()
        if n <= 0:
            self.maybe_stop()
            return False
        b = self.packets_all.slice(self.pos_i, self.pos_i + n)
        self.pos_i += n
        self.send(b)
        self.maybe_stop()
        return True

    def pull(self, port: int):  # noqa: ANN201 - PacketBatch | None
        n = self._next_batch()
        if n <= 0:
            self.maybe_stop()
            return None
        b = self.packets_all.slice(self.pos_i, self.pos_i + n)
        self.pos_i += n
        self.emitted += n
        self.maybe_stop()
        return b

    @read_handler("filesize")
    def h_filesize(self) -> int:
        """Packets in the file."""
        return len(self.packets_all) if self.file else 0

    @read_handler("linktype")
    def h_linktype(self) -> int:
        """The file's link type number."""
        return self.file.linktype if self.file else 0

    def h_reset(self, _: str) -> None:
        super().h_reset(_)
        # Reload: elements downstream may have rewritten the packets we handed out.
        self.initialize()
