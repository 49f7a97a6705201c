"""The receive side of AF_PACKET: a memory-mapped ``PACKET_RX_RING`` on one interface.

:class:`RxRing` is a ``SOCK_RAW``/``ETH_P_ALL`` packet socket bound to one interface by
ifindex, with a ring in either layout:

* ``TPACKET_V2`` -- fixed-size frame slots. The slot headers are read through a *strided
  numpy view* (one ``tpacket2_hdr`` every ``frame_size`` bytes), so finding the ready slots,
  reading their lengths/offsets/timestamps and handing them back to the kernel are
  vectorised numpy operations.
* ``TPACKET_V3`` -- variable-size frames packed into blocks that the kernel retires as a
  whole (when full, or after ``timeout_ms``). Block descriptors and the ``tpacket3_hdr``
  chains are walked in a numba kernel.

:meth:`RxRing.recv_batch` returns ``(pool, offsets, lengths, timestamps_ns)``; see
:func:`routebricks.io.kernels.pool_layout` for the pool layout. Several rings on one
interface can join a ``PACKET_FANOUT`` group (:func:`open_queues`): member *i* plays the role
of hardware queue *i*.
"""

from __future__ import annotations

import contextlib
import mmap
import select
import socket
import struct
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from routebricks.closing import Closing
from routebricks.io.kernels import gather, pool_layout, v3_walk
from routebricks.io.sockets import (
    bind_ll,
    fanout_arg,
    fanout_group_id,
    resolve_ifindex,
    setsockopt_int,
    unmap_ring,
)
from routebricks.io.tpacket import (
    ETH_HLEN,
    ETH_P_ALL,
    FANOUT_MODES,
    PACKET_ADD_MEMBERSHIP,
    PACKET_FANOUT,
    PACKET_FANOUT_FLAG_IGNORE_OUTGOING,
    PACKET_FANOUT_FLAG_UNIQUEID,
    PACKET_IGNORE_OUTGOING,
    PACKET_MR_PROMISC,
    PACKET_MREQ,
    PACKET_RX_RING,
    PACKET_STATISTICS,
    PACKET_VERSION,
    PAGE_SIZE,
    SLL_PKTTYPE_OFFSET,
    SOCKADDR_LL_SIZE,
    SOL_PACKET,
    TP_STATUS_KERNEL,
    TP_STATUS_LOSING,
    TP_STATUS_USER,
    TPACKET2_HDR,
    TPACKET2_HDRLEN,
    TPACKET3_HDRLEN,
    TPACKET_ALIGNMENT,
    TPACKET_BLOCK_DESC,
    TPACKET_REQ,
    TPACKET_REQ3,
    TPACKET_V2,
    TPACKET_V3,
)

#: Where a V2 slot's ``sll_pkttype`` lies, from the slot's start.
_V2_PKTTYPE = TPACKET2_HDRLEN - SOCKADDR_LL_SIZE + SLL_PKTTYPE_OFFSET


class RxBatch(NamedTuple):
    """What :meth:`RxRing.recv` returns; the first four are :meth:`RxRing.recv_batch`'s.

    * ``pool``: fresh ``uint8`` array holding every packet (Ethernet header first) laid
      out as :func:`~routebricks.io.kernels.pool_layout` describes, with the ring's
      ``headroom`` bytes before and ``tailroom`` after each.
    * ``offsets``: ``int64[n]``, start of packet ``i`` in ``pool``.
    * ``lengths``: ``int32[n]``, its length in bytes (as on the wire, no FCS).
    * ``timestamps_ns``: ``int64[n]``, kernel receive time, ns since the epoch.
    * ``pkttypes``: ``uint8[n]``, the kernel's ``sll_pkttype`` of each frame
      (``PACKET_HOST`` 0, ``BROADCAST`` 1, ``MULTICAST`` 2, ``OTHERHOST`` 3,
      ``OUTGOING`` 4), from the ``sockaddr_ll`` after each ring header.
    """

    pool: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    timestamps_ns: np.ndarray
    pkttypes: np.ndarray


@dataclass(frozen=True, slots=True)
class RxStats:
    """Cumulative receive counters of one :class:`RxRing`.

    ``tp_packets``/``tp_drops``/``tp_freeze_q_cnt`` come from
    ``PACKET_STATISTICS`` (the kernel resets them on every read, so the ring
    accumulates them). ``tp_packets`` counts packets the socket saw, *including*
    ``tp_drops`` (ring full). ``tp_freeze_q_cnt`` (V3 only) counts times the
    ring was frozen because no block was free. ``oversize_drops`` counts
    packets the kernel truncated to fit a frame/block, which :meth:`RxRing.recv_batch`
    drops rather than deliver truncated.
    """

    tp_packets: int
    tp_drops: int
    tp_freeze_q_cnt: int
    oversize_drops: int


class RxRing(Closing):
    """A memory-mapped AF_PACKET receive ring on one interface.

    Args:
        ifname: interface name or ifindex, resolved in the calling thread's
            network namespace (the socket lives in that namespace).
        version: 2 (``TPACKET_V2``, fixed slots) or 3 (``TPACKET_V3``, blocks).
        block_size: ring block size in bytes (multiple of the page size; for V2
            also a multiple of ``frame_size``).
        frame_size: V2 slot size; a packet longer than
            ``frame_size - tp_mac`` (about 66 bytes of header) is truncated by
            the kernel and then dropped here. V3 only uses it for the kernel's
            bookkeeping; there a packet may be up to about ``block_size``.
        block_count: number of blocks; ring memory = ``block_size * block_count``.
        fanout_group: join this ``PACKET_FANOUT`` group id (see
            :func:`fanout_group_id`), or None for no fanout.
        fanout_mode: ``"hash"`` (flow hash; a flow sticks to one member),
            ``"lb"`` (round robin), ``"cpu"`` (receiving CPU), or
            ``"rollover"``/``"rnd"``/``"qm"``.
        fanout_flags: extra ``PACKET_FANOUT_FLAG_*`` bits (e.g. ROLLOVER, DEFRAG).
        promisc: add a ``PACKET_MR_PROMISC`` membership (dropped on close).
        ignore_outgoing: set ``PACKET_IGNORE_OUTGOING`` so frames sent on this
            interface (by us or anyone) are not delivered to this socket.
        timeout_ms: V3 block retire timeout: a partly filled block is handed to
            user space after this long, which bounds V3 latency.
        headroom, tailroom: free bytes around each packet in the returned pool.

    The socket is created with protocol 0 (receives nothing), configured, given
    its ring, and only then bound with ``ETH_P_ALL`` so no packet is queued
    outside the ring. Not thread-safe: one consumer per ring (use fanout for
    parallelism; the numba kernels release the GIL).
    """

    def __init__(
        self,
        ifname: str | int,
        *,
        version: Literal[2, 3] = 3,
        block_size: int = 1 << 18,
        frame_size: int = 2048,
        block_count: int = 32,
        fanout_group: int | None = None,
        fanout_mode: str = "hash",
        fanout_flags: int = 0,
        promisc: bool = False,
        ignore_outgoing: bool = True,
        timeout_ms: int = 10,
        headroom: int = 64,
        tailroom: int = 64,
    ) -> None:
        if version not in (2, 3):
            raise ValueError("version must be 2 or 3")
        if block_size <= 0 or block_size % PAGE_SIZE:
            raise ValueError(f"block_size must be a positive multiple of {PAGE_SIZE}")
        if frame_size % TPACKET_ALIGNMENT or frame_size < TPACKET3_HDRLEN + ETH_HLEN:
            raise ValueError("frame_size must be a multiple of 16 and hold a header")
        if block_size % frame_size:
            # Keeps V2 slots evenly spaced so one strided view covers the ring.
            raise ValueError("block_size must be a multiple of frame_size")
        if block_count <= 0:
            raise ValueError("block_count must be positive")
        if fanout_mode not in FANOUT_MODES:
            raise ValueError(f"fanout_mode must be one of {sorted(FANOUT_MODES)}")
        if headroom < 0 or tailroom < 0:
            raise ValueError("headroom/tailroom must be >= 0")

        self.ifindex: int = resolve_ifindex(ifname)
        self.version: int = version
        self.block_size: int = block_size
        self.block_count: int = block_count
        self.frame_size: int = frame_size
        self.frame_count: int = (block_size // frame_size) * block_count
        self.headroom: int = headroom
        self.tailroom: int = tailroom
        self.fanout_group: int | None = None
        self._oversize = 0
        self._acc = [0, 0, 0]
        self._mm: mmap.mmap | None = None

        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            self._setup(
                promisc, ignore_outgoing, timeout_ms, fanout_group, fanout_mode, fanout_flags
            )
        except BaseException:
            self.close()
            raise

    # -- setup --------------------------------------------------------------
    def _setup(
        self,
        promisc: bool,
        ignore_outgoing: bool,
        timeout_ms: int,
        fanout_group: int | None,
        fanout_mode: str,
        fanout_flags: int,
    ) -> None:
        s = self._sock
        kver = TPACKET_V3 if self.version == 3 else TPACKET_V2
        setsockopt_int(s, PACKET_VERSION, kver, "PACKET_VERSION")
        if ignore_outgoing:
            setsockopt_int(s, PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING")
        if self.version == 3:
            req = TPACKET_REQ3.pack(
                self.block_size,
                self.block_count,
                self.frame_size,
                self.frame_count,
                timeout_ms,
                0,
                0,
            )
        else:
            req = TPACKET_REQ.pack(
                self.block_size, self.block_count, self.frame_size, self.frame_count
            )
        s.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        size = self.block_size * self.block_count
        self._mm = mmap.mmap(s.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._ring8 = np.frombuffer(self._mm, dtype=np.uint8)
        if self.version == 3:
            self._ring16 = self._ring8.view(np.uint16)
            self._ring32 = self._ring8.view(np.uint32)
            # One block descriptor every block_size bytes.
            self._blocks = np.ndarray(
                (self.block_count,),
                TPACKET_BLOCK_DESC,
                buffer=self._mm,
                strides=(self.block_size,),
            )
            self._bstatus = self._blocks["block_status"]
            self._cur_block = 0
            self._pkt_idx = 0
            self._pkt_off = 0
            self._barange = np.arange(self.block_count, dtype=np.int64)
        else:
            # One tpacket2_hdr every frame_size bytes: a strided view over all slots.
            self._frames = np.ndarray(
                (self.frame_count,),
                TPACKET2_HDR,
                buffer=self._mm,
                strides=(self.frame_size,),
            )
            self._fstatus = self._frames["tp_status"]
            self._fsnap = self._frames["tp_snaplen"]
            self._flen = self._frames["tp_len"]
            self._fmac = self._frames["tp_mac"]
            self._fsec = self._frames["tp_sec"]
            self._fnsec = self._frames["tp_nsec"]
            self._head = 0
            self._farange = np.arange(self.frame_count, dtype=np.int64)

        bind_ll(s, self.ifindex, ETH_P_ALL)
        if promisc:
            mreq = PACKET_MREQ.pack(self.ifindex, PACKET_MR_PROMISC, 0, b"")
            s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        if fanout_group is not None:
            # Must come after bind: the kernel only lets a running socket join. A fanout
            # group has its own packet hook, which ignores the sockets' own
            # PACKET_IGNORE_OUTGOING: the group needs the flag, or frames that one member's
            # process transmits come back in through another member (a forwarding loop).
            if ignore_outgoing:
                fanout_flags |= PACKET_FANOUT_FLAG_IGNORE_OUTGOING
            self.join_fanout(fanout_group, fanout_mode, fanout_flags)

    def join_fanout(self, group_id: int, mode: str = "hash", flags: int = 0) -> int:
        """Join ``PACKET_FANOUT`` group ``group_id``; returns the group id in use.

        With ``flags & PACKET_FANOUT_FLAG_UNIQUEID`` and ``group_id == 0`` the
        kernel picks an unused id, which is returned (read back with
        ``getsockopt``); later members join with that id and without the flag.
        """
        arg = fanout_arg(group_id, FANOUT_MODES[mode], flags)
        setsockopt_int(self._sock, PACKET_FANOUT, arg, "PACKET_FANOUT")
        got = self._sock.getsockopt(SOL_PACKET, PACKET_FANOUT)
        self.fanout_group = got & 0xFFFF
        return self.fanout_group

    # -- API ----------------------------------------------------------------
    def fileno(self) -> int:
        """The socket's file descriptor, for poll/select/epoll."""
        return self._sock.fileno()

    def ready(self) -> bool:
        """True if the next slot/block is already owned by user space (no syscall)."""
        if self._mm is None:
            return False
        if self.version == 3:
            return bool(self._bstatus[self._cur_block] & TP_STATUS_USER)
        return bool(self._fstatus[self._head] & TP_STATUS_USER)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until packets are ready or ``timeout`` seconds pass; True if ready.

        For V3 "ready" means a whole block was retired, which happens at the
        latest ``timeout_ms`` after its first packet.
        """
        if self.ready():
            return True
        p = select.poll()
        p.register(self._sock.fileno(), select.POLLIN | select.POLLERR)
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        with contextlib.suppress(InterruptedError):  # PEP 475 retries; be safe anyway
            p.poll(ms)
        return self.ready()

    def recv_batch(
        self, max_packets: int = 256
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(pool, offsets, lengths, timestamps_ns)`` of :meth:`recv` (see :class:`RxBatch`)."""
        b = self.recv(max_packets)
        return b.pool, b.offsets, b.lengths, b.timestamps_ns

    def recv(self, max_packets: int = 256) -> RxBatch:
        """Take up to ``max_packets`` ready packets out of the ring; never blocks.

        The packets are copied in one numba call and their ring slots handed
        back to the kernel before returning, so the arrays stay valid forever.
        Packets the kernel had to truncate are dropped (see :meth:`stats`). When
        a slot or block handed back carries ``TP_STATUS_LOSING`` (the kernel
        dropped packets for want of room since ``PACKET_STATISTICS`` was last
        read), the statistics are read at once, so :attr:`ring_full_drops` is
        current without a system call per batch.
        """
        if self._mm is None:
            raise ValueError("ring is closed")
        if max_packets <= 0:
            return _empty_batch()
        if self.version == 3:
            return self._recv_v3(max_packets)
        return self._recv_v2(max_packets)

    @property
    def ring_full_drops(self) -> int:
        """Packets the kernel dropped because the ring was full, as of the last read of
        ``PACKET_STATISTICS`` (by :meth:`stats`, or by :meth:`recv` on ``TP_STATUS_LOSING``)."""
        return self._acc[1]

    @property
    def oversize_drops(self) -> int:
        """Packets too long for a slot or block, truncated by the kernel and dropped here."""
        return self._oversize

    def _recv_v2(self, max_packets: int) -> RxBatch:
        m = min(max_packets, self.frame_count)
        idx = self._farange[:m] + self._head
        idx[idx >= self.frame_count] -= self.frame_count
        ready = (self._fstatus[idx] & TP_STATUS_USER) != 0
        n = m if ready.all() else int(ready.argmin())
        if n == 0:
            return _empty_batch()
        idx = idx[:n]
        snap = self._fsnap[idx]
        wire = self._flen[idx]
        src = idx * self.frame_size + self._fmac[idx]
        ts = self._fsec[idx].astype(np.int64) * 1_000_000_000 + self._fnsec[idx]
        pkttype = self._ring8[idx * self.frame_size + _V2_PKTTYPE]
        out = self._copy_out(src, snap, wire, ts, pkttype)
        losing = bool((self._fstatus[idx] & TP_STATUS_LOSING).any())
        # Hand the slots back only after the copy.
        self._fstatus[idx] = TP_STATUS_KERNEL
        self._head = int((self._head + n) % self.frame_count)
        if losing:
            self.stats()
        return out

    def _recv_v3(self, max_packets: int) -> RxBatch:
        if not self._bstatus[self._cur_block] & TP_STATUS_USER:
            return _empty_batch()  # the common idle case: one load, no array work
        bidx = self._barange + self._cur_block
        bidx[bidx >= self.block_count] -= self.block_count
        ready = (self._bstatus[bidx] & TP_STATUS_USER) != 0
        n_ready = self.block_count if ready.all() else int(ready.argmin())
        if n_ready == 0:
            return _empty_batch()
        src = np.empty(max_packets, np.int64)
        snap = np.empty(max_packets, np.uint32)
        wire = np.empty(max_packets, np.uint32)
        ts = np.empty(max_packets, np.int64)
        pkttype = np.empty(max_packets, np.uint8)
        n, done, self._pkt_idx, self._pkt_off = v3_walk(
            self._ring8,
            self._ring32,
            self._ring16,
            self.block_size,
            self.block_count,
            self._cur_block,
            n_ready,
            self._pkt_idx,
            self._pkt_off,
            max_packets,
            src,
            snap,
            wire,
            ts,
            pkttype,
        )
        out = self._copy_out(src[:n], snap[:n], wire[:n], ts[:n], pkttype[:n])
        if done:
            released = bidx[:done]
            losing = bool((self._bstatus[released] & TP_STATUS_LOSING).any())
            self._bstatus[released] = TP_STATUS_KERNEL
            self._cur_block = int((self._cur_block + done) % self.block_count)
            if losing:
                self.stats()
        return out

    def _copy_out(
        self, src: np.ndarray, snap: np.ndarray, wire: np.ndarray, ts: np.ndarray,
        pkttype: np.ndarray,
    ) -> RxBatch:
        trunc = snap < wire
        if trunc.any():
            keep = ~trunc
            self._oversize += int(trunc.sum())
            src, snap, ts, pkttype = src[keep], snap[keep], ts[keep], pkttype[keep]
        lengths = snap.astype(np.int32)
        offsets, total = pool_layout(lengths, self.headroom, self.tailroom)
        pool = np.empty(total, np.uint8)
        if lengths.size:
            gather(self._ring8, src.astype(np.int64, copy=False), lengths, pool, offsets)
        return RxBatch(pool, offsets, lengths, ts.astype(np.int64, copy=False), pkttype)

    def stats(self) -> RxStats:
        """Cumulative ``PACKET_STATISTICS`` plus our own oversize drops."""
        if self._mm is not None:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
            vals = struct.unpack(f"={len(raw) // 4}I", raw)
            for i, v in enumerate(vals[:3]):
                self._acc[i] += v
        return RxStats(self._acc[0], self._acc[1], self._acc[2], self._oversize)

    def close(self) -> None:
        """Read the statistics a last time (so :meth:`stats` stays final), unmap the ring and
        close the socket (idempotent)."""
        if self._mm is not None and self._sock.fileno() >= 0:
            with contextlib.suppress(OSError):
                self.stats()
        unmap_ring(self, ("_ring8", "_ring16", "_ring32", "_blocks", "_bstatus", "_frames",
                      "_fstatus", "_fsnap", "_flen", "_fmac", "_fsec", "_fnsec"))
        self._sock.close()

    def __repr__(self) -> str:
        return (
            f"RxRing(ifindex={self.ifindex}, version={self.version}, "
            f"blocks={self.block_count}x{self.block_size}, fanout={self.fanout_group})"
        )


def _empty_batch() -> RxBatch:
    return RxBatch(
        np.empty(0, np.uint8),
        np.empty(0, np.int64),
        np.empty(0, np.int32),
        np.empty(0, np.int64),
        np.empty(0, np.uint8),
    )


def open_queues(
    ifname: str | int,
    n: int,
    *,
    instance: int | None = None,
    fanout_mode: str = "hash",
    fanout_flags: int = 0,
    **ring_kwargs: object,
) -> list[RxRing]:
    """Open ``n`` RX rings on one interface as fanout members 0..n-1 ("queues").

    The kernel numbers fanout members in join order and, for ``hash``, maps a
    flow to member ``hash % n``, so ``queues[i]`` is queue *i* of the
    interface. With ``instance`` given the group id is
    ``fanout_group_id(ifindex, instance)`` (reproducible across processes);
    with ``instance=None`` the kernel assigns a unique id
    (``PACKET_FANOUT_FLAG_UNIQUEID``), read back from the first member.
    """
    if n <= 0:
        raise ValueError("n must be positive")
    if ring_kwargs.get("ignore_outgoing", True):
        fanout_flags |= PACKET_FANOUT_FLAG_IGNORE_OUTGOING  # every member joins alike
    ifindex = resolve_ifindex(ifname)
    rings: list[RxRing] = []
    try:
        first = RxRing(ifindex, **ring_kwargs)  # type: ignore[arg-type]
        rings.append(first)
        if instance is None:
            gid = first.join_fanout(0, fanout_mode, fanout_flags | PACKET_FANOUT_FLAG_UNIQUEID)
        else:
            gid = first.join_fanout(fanout_group_id(ifindex, instance), fanout_mode, fanout_flags)
        for _ in range(n - 1):
            rings.append(
                RxRing(
                    ifindex,
                    fanout_group=gid,
                    fanout_mode=fanout_mode,
                    fanout_flags=fanout_flags,
                    **ring_kwargs,  # type: ignore[arg-type]
                )
            )
    except BaseException:
        for r in rings:
            r.close()
        raise
    return rings
