"""FromDevice: receives packets from a network interface (AF_PACKET, mmap ring)."""

from __future__ import annotations

import numpy as np

from routebricks.engine.args import Arg, Bool, Choice, IntRange, PacketLength, UInt, Word
from routebricks.engine.element import read_handler
from routebricks.engine.source import Source
from routebricks.packet.batch import PacketBatch


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
        per-flow order kept. Our own transmissions are not received (PACKET_IGNORE_OUTGOING).
        Frames longer than the ring's buffers are counted and dropped, never truncated.
        Each packet's timestamp annotation is its kernel receive time.
    Handlers:
        count (read): packets received.
        kernel_drops (read): packets the kernel dropped because the ring was full.
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

    def configure(self) -> None:
        super().configure()
        self.ring = None
        if self.block_size % 4096:
            raise self.error("BLOCK_SIZE must be a multiple of 4096")

    def initialize(self) -> None:
        from routebricks.io.afpacket import RxRing, fanout_group_id, resolve_ifindex, warmup

        warmup()
        router = self.router
        nworkers = getattr(router, "nworkers", 1)
        group = None
        try:
            if nworkers > 1:
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
            self.ring.close()
            self.ring = None

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
        pool, off, length, ts = self.ring.recv_batch(n)
        got = off.shape[0]
        if got < n and self.router is not None and self.router.budget is not None:
            self.router.budget += n - got  # give back what we did not use
        if got == 0:
            return False
        batch = PacketBatch(pool, off, length.astype(np.int64), {"timestamp": ts},
                            self.ring.headroom, self.ring.tailroom)
        self.send(batch)
        return True

    @read_handler("kernel_drops")
    def h_kernel_drops(self) -> int:
        """Packets the kernel dropped because the ring was full."""
        return self.ring.stats().tp_drops if self.ring is not None else 0

    @read_handler("oversize_drops")
    def h_oversize(self) -> int:
        """Frames too long for the ring, dropped."""
        return self.ring.stats().oversize_drops if self.ring is not None else 0
