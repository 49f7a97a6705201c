"""FromDevice: receives packets from a network interface (AF_PACKET, mmap ring)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from routebricks.elements.ip.annotations import PACKET_OUTGOING, PACKET_TYPE
from routebricks.engine.args import Arg, Bool, Choice, IntRange, PacketLength, UInt, Word
from routebricks.engine.element import read_handler
from routebricks.engine.source import Source
from routebricks.packet.batch import PacketBatch

RING_FULL = "receive ring full"
TOO_LONG = "too long for the ring"
OUTGOING = "outgoing frame"


class FromDevice(Source):
    """Receives packets from a network interface, a batch of up to kp per poll.

    Ports: no inputs; 1 push output.
    Arguments:
        DEVNAME (word, positional, required): the interface (in the router's namespace).
        BURST (positive integer, default --kp): packets per poll (the paper's kp).
        SNIFFER (bool, default true): accepted for Click compatibility; packet sockets always
            receive copies, so keep the kernel from also handling the packets by giving the
            router's interfaces no IP addresses (as the testbed does).
        PROMISC (bool, default false): put the interface in promiscuous mode.
        QUEUE (unsigned, default: the worker number): accepted for Click compatibility; with
            several workers, worker i reads queue i.
        METHOD (V3 or V2, default V3): ring layout; TPACKET_V3 hands over whole blocks (the
            paper's NIC-driven batching kn), TPACKET_V2 one frame slot at a time.
        TIMEOUT (unsigned ms, default 1): V3 block retire timeout, which bounds the time a
            packet waits for its block to fill at low rates.
        BLOCK_SIZE (4096 to 4194304, default 262144), BLOCKS (1 to 65536, default 32): ring
            geometry.
        HEADROOM (unsigned, default 64): free bytes kept before each packet for headers.
    Behaviour: with N workers each worker opens its own receive socket on the interface and
        the sockets join one PACKET_FANOUT hash group, so the kernel spreads packets by flow
        over the workers (queue i = member i): each queue one core, each packet one core,
        per-flow order kept. Placed on one worker (StaticThreadSched), only that
        worker opens a socket: the device has one queue. Our own transmissions are not
        received (PACKET_IGNORE_OUTGOING).
        Each packet's timestamp annotation is its kernel receive time, and its
        ``packet_type`` annotation how the kernel saw it arrive (``sll_pkttype``, read from
        the ring with the frame): 0 to the interface's address, 1 link-level broadcast, 2
        link-level multicast, 3 unicast to another address (a promiscuous interface, a
        shared segment); DropBroadcasts and ICMPError act on 1 and 2 (RFC 1812 5.3.4,
        4.3.2.7). Frames that leave the interface (4, outgoing) are not input to a router --
        forwarding them would loop -- so the kernel is asked never to deliver them, and
        should one arrive it is dropped. Every frame that reaches the ring ends in the
        output or a drop of this element: "receive ring full" (the kernel found no room:
        the router fell behind; read from PACKET_STATISTICS when the ring marks a loss, and
        whenever counters are read), "too long for the ring" (longer than the ring's
        buffers; dropped, never truncated), "outgoing frame".
    Handlers:
        count (read): packets received.
        kernel_drops (read): packets the kernel dropped because the ring was full (also
            the drop reason "receive ring full").
        oversize_drops (read): frames too long for the ring, dropped.
        active (read/write): whether to poll.
        reset (write): zero the count.
    Example:
        FromDevice(eth0) -> Classifier(12/0800, -) -> ...;
    See also: ToDevice, FromDump
    """

    port_count = "0/1"
    processing = "/h"
    ARGS = (
        Arg("DEVNAME", Word, positional=True, required=True),
        *Source.SOURCE_ARGS,
        Arg("SNIFFER", Bool, True),
        Arg("PROMISC", Bool, False),
        Arg("QUEUE", UInt, None),
        Arg("METHOD", Choice("V3", "V2"), "V3"),
        Arg("TIMEOUT", IntRange(0, 0xFFFFFFFF, "milliseconds"), 1),
        # The kernel's ring fields are 32-bit, and it allocates blocks of at most 4 MiB.
        Arg("BLOCK_SIZE", IntRange(4096, 1 << 22, "block size"), 1 << 18),
        Arg("BLOCKS", IntRange(1, 1 << 16, "block count"), 32),
        Arg("HEADROOM", PacketLength, 64),
    )
    #: A device is read by every worker (one fanout member each), not by worker 0 only.
    EVERY_WORKER = True
    RESUMES = True
    READS_DEVICES = True
    #: Every reason this element drops a packet for, and what it means.
    DROPS: ClassVar[dict[str, str]] = {
        RING_FULL: "the kernel found the receive ring full (the router fell behind)",
        TOO_LONG: "the frame is longer than the receive ring's buffers",
        OUTGOING: "a frame this host sent on the interface",
    }
    #: The drops that are losses of the device's receive ring, before the router saw the
    #: packet: `top` and the Prometheus metrics show them apart (ring drops).
    RING_DROPS: ClassVar[frozenset[str]] = frozenset({RING_FULL, TOO_LONG})

    def devices_read(self) -> list[str]:
        return [self.devname]

    def configure(self) -> None:
        super().configure()
        self.ring = None
        # The ring's drop counters already turned into drops of this element.
        self._ring_full = 0
        self._too_long = 0
        if self.block_size % 4096:
            raise self.error("BLOCK_SIZE must be a multiple of 4096")

    def initialize(self) -> None:
        from routebricks.io.afpacket import RxRing, fanout_group_id, resolve_ifindex, warmup

        warmup()
        router = self.router
        nworkers = getattr(router, "nworkers", 1)
        home = self.home_worker()
        if home is not None and nworkers > 1 and home != getattr(router, "worker_id", 0):
            # Placed on another worker (StaticThreadSched): a socket here would take its
            # share of the frames and never be read.
            return
        group = None
        try:
            if nworkers > 1 and home is None:  # read on every worker: one queue each
                group = fanout_group_id(resolve_ifindex(self.devname),
                                        getattr(router, "instance", 0))
            self.ring = RxRing(self.devname, version=3 if self.method == "V3" else 2,
                               block_size=self.block_size, block_count=self.blocks,
                               fanout_group=group, promisc=self.promisc,
                               timeout_ms=max(1, self.timeout), headroom=self.headroom)
        except OSError as e:
            raise self.error(f"cannot open device {self.devname!r}: {e.strerror or e}",
                             "is the interface in this network namespace? (run as root)"
                             ) from None
        except ValueError as e:
            raise self.error(str(e)) from None

    def cleanup(self) -> None:
        if self.ring is not None:
            self.ring.close()  # reads the statistics a last time
            self._count_ring_drops()
            self.ring = None

    def refresh_counters(self) -> None:
        """Fold the kernel's latest receive-ring drops into this element's drops."""
        if self.ring is not None:
            self.ring.stats()
            self._count_ring_drops()

    def _count_ring_drops(self) -> None:
        ring = self.ring
        assert ring is not None
        full, long = ring.ring_full_drops, ring.oversize_drops
        if full != self._ring_full:
            self.drop(full - self._ring_full, RING_FULL)
            self._ring_full = full
        if long != self._too_long:
            self.drop(long - self._too_long, TOO_LONG)
            self._too_long = long

    def poll_fd(self) -> int | None:
        """A file descriptor the driver may wait on while the router is idle."""
        return self.ring.fileno() if self.ring is not None else None

    def finished(self) -> bool:
        return False  # a device never runs dry

    def is_done(self) -> bool:
        return (self.limit >= 0 and self.emitted >= self.limit) or (
            self.router is not None and self.router.exhausted())

    def run_task(self) -> bool:
        if not self.active or self.ring is None:
            return False
        n = self.allowance()
        if n <= 0:
            return False
        ring = self.ring
        pool, off, length, ts, ptype = ring.recv(n)
        got = off.shape[0]
        if got < n and self.router is not None and self.router.budget is not None:
            self.router.budget += n - got  # give back what we did not use
        if ring.ring_full_drops != self._ring_full or ring.oversize_drops != self._too_long:
            self._count_ring_drops()
        if got == 0:
            return False
        batch = PacketBatch(pool, off, length.astype(np.int64),
                            {"timestamp": ts, PACKET_TYPE: ptype}, ring.headroom, ring.tailroom)
        outgoing = ptype == PACKET_OUTGOING
        if outgoing.any():
            self.drop(int(np.count_nonzero(outgoing)), OUTGOING)
            if outgoing.all():
                return True
            batch = batch.select(~outgoing)
        self.send(batch)
        return True

    @read_handler("kernel_drops", combine="sum")
    def h_kernel_drops(self) -> int:
        """Packets the kernel dropped because the ring was full."""
        self.refresh_counters()
        return self._ring_full

    @read_handler("oversize_drops", combine="sum")
    def h_oversize(self) -> int:
        """Frames too long for the ring, dropped."""
        self.refresh_counters()
        return self._too_long
