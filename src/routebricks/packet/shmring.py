"""A ring of packets in shared memory between two processes: one producer, one consumer.

The pipeline of the paper's Fig. 6 (a): one core receives packets and hands them to another
core that processes and sends them. The hand-over is this ring, made in anonymous shared
memory (a ``memfd`` mapped ``MAP_SHARED``, :meth:`routebricks.shm.SharedArrays.allocate`)
*before* the worker processes fork, so every worker maps the same pages without any
descriptor passing; the memory has no name and goes with the last process that maps it,
SIGKILL included.

Layout (each array on its own cache line):

* ``prod``: the producer's words — ``tail`` (packets ever written), ``highwater`` (the most
  packets the ring held), ``closed`` (the producer will write no more), ``owner`` (the
  producer's pid);
* ``cons``: the consumer's word — ``head`` (packets ever read). The two indices live on
  different cache lines, so each side writes only its own line (no false sharing);
* ``data``: ``capacity`` fixed-size slots of ``slot_size`` bytes (2048: any Ethernet frame
  with room to spare), packet *i* in slot ``i mod capacity``;
* columns of one entry per slot: ``length``, ``present`` (a bit per annotation the packet's
  batch carried) and one column per annotation that crosses (see below).

Indices count packets from the start and never wrap (int64, not uint64: numba and numpy turn
uint64 mixed with int64 into float64; 2**63 packets are 290 years at 1 Gpps), so
``tail - head`` is the length, ``capacity - (tail - head)`` the room, and no slot is lost to
tell full from empty.

Memory ordering. Only the producer writes ``tail`` and only the consumer writes ``head``
(single producer, single consumer: no read-modify-write, no lock on the data path). The
producer writes a batch's slots first and then publishes ``tail`` with a *release* store; the
consumer loads ``tail`` with an *acquire* load before it reads the slots, and publishes
``head`` (release) only after it has copied them out, so the producer never overwrites a
slot still being read. Aligned 64-bit loads and stores are single-copy atomic on x86-64 and
AArch64. On x86 (TSO) the hardware already keeps stores in order and loads in order, so the
fences below compile to nothing but stop the compiler from moving memory accesses across
them; on weaker machines (ARM) they are real barriers. They are numba intrinsics (LLVM
``fence``), called once per batch inside the compiled kernels that load and store the
indices; the slot copies (numba and numpy, in this thread) all happen before the release
fence, in program order.

Annotations that cross: every annotation declared in
:data:`routebricks.packet.batch.ANNOTATIONS` when the ring is made (paint, dst_ip, timestamp,
flow_hash, in_port, nh, user, fix_ip_src, icmp_paramprob, packet_type, next_mtu, and those
user elements registered with ``register_annotation`` before the configuration was read), at
most 64; ``nh`` (an absolute offset into the producer's pool) crosses as an offset from the
packet's start and is made absolute again on the other side. A column the batch did not
carry stays absent on the other side. Annotation columns made ad hoc under names never
declared, and the batch's headroom contents, do not cross; packets come out in a fresh pool
with the default head- and tailroom.
"""

from __future__ import annotations

import contextlib
import os
import weakref

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from routebricks.jit import precompile
from routebricks.packet.batch import (
    ANNOTATIONS,
    DEFAULT_HEADROOM,
    DEFAULT_TAILROOM,
    POOL_GUARD,
    PacketBatch,
)
from routebricks.shm import SharedArrays

#: Bytes per slot: the longest packet the ring carries.
SLOT_SIZE = 2048
#: The most annotations that cross (one bit each in the ``present`` column).
MAX_ANNOTATIONS = 64

# The producer's words (one cache line) and the consumer's (another).
TAIL, HIGHWATER, CLOSED, OWNER = 0, 1, 2, 3
HEAD = 0
_WORDS = 8  # 64 bytes: a cache line each


# ---------------------------------------------------------------------- compiled kernels
@intrinsic
def _fence_acquire(typingctx):  # type: ignore[no-untyped-def]  # pragma: no cover
    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        builder.fence("acquire")
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _fence_release(typingctx):  # type: ignore[no-untyped-def]  # pragma: no cover
    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        builder.fence("release")
        return context.get_dummy_value()

    return types.void(), codegen


@njit(cache=True, nogil=True)
def load_acquire(words: np.ndarray, i: int) -> np.int64:  # pragma: no cover - compiled
    """``words[i]``, and no later load or store moves before it."""
    v = words[i]
    _fence_acquire()
    return v


@njit(cache=True, nogil=True)
def store_release(words: np.ndarray, i: int, v: np.int64) -> None:  # pragma: no cover
    """``words[i] = v``, after every earlier load and store."""
    _fence_release()
    words[i] = v


@intrinsic
def _memcpy(typingctx, dst, dst_at, src, src_at, n):  # type: ignore[no-untyped-def]
    """memcpy(&dst[dst_at], &src[src_at], n) for uint8 arrays: one call per packet, where
    a numba slice assignment costs ~8x more for 64-byte packets. Unchecked: the kernels
    below check the bounds first."""
    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        d = context.make_array(signature.args[0])(context, builder, args[0])
        s = context.make_array(signature.args[2])(context, builder, args[2])
        cgutils.raw_memcpy(builder, builder.gep(d.data, [args[1]]),
                           builder.gep(s.data, [args[3]]), args[4], 1)
        return context.get_dummy_value()  # pragma: no cover - compiled

    return types.void(dst, dst_at, src, src_at, n), codegen


@njit(cache=True, nogil=True)
def write_slots(prod: np.ndarray, cons: np.ndarray, data: np.ndarray, lengths: np.ndarray,
                present: np.ndarray, slot: int, pool: np.ndarray, off: np.ndarray,
                length: np.ndarray, bits: int) -> tuple[int, int]:  # pragma: no cover
    """Producer: copy the packets of (pool, off, length) that fit into the slots after the
    tail (bytes, length, annotation bits); returns (tail, how many). Nothing is published:
    see :func:`publish`. A packet longer than a slot raises ValueError (nothing published)."""
    capacity = lengths.shape[0]
    head = cons[HEAD]
    _fence_acquire()  # the consumer's reads of the slots before head are done
    tail = prod[TAIL]
    k = min(off.shape[0], capacity - (tail - head))
    i = tail % capacity
    for j in range(k):
        n = length[j]
        o = off[j]
        if n < 0 or n > slot:
            raise ValueError("a packet is longer than the ring's slots")
        if o < 0 or o + n > pool.shape[0]:
            raise ValueError("a packet lies outside its pool")
        _memcpy(data, i * slot, pool, o, n)
        lengths[i] = n
        present[i] = bits
        i += 1
        if i == capacity:
            i = 0
    return tail, k


@njit(cache=True, nogil=True)
def publish(prod: np.ndarray, cons: np.ndarray, tail: int) -> None:  # pragma: no cover
    """Producer: make the slots before ``tail`` visible (release), note the high water."""
    _fence_release()
    prod[TAIL] = tail
    used = tail - cons[HEAD]
    if used > prod[HIGHWATER]:
        prod[HIGHWATER] = used


@njit(cache=True, nogil=True)
def read_slots(prod: np.ndarray, cons: np.ndarray, data: np.ndarray, lengths: np.ndarray,
               present: np.ndarray, slot: int, most: int, headroom: int, tailroom: int,
               guard: int):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
    """Consumer: up to ``most`` packets after the head copied into a fresh pool, each with
    ``headroom`` and ``tailroom`` around it. Returns (head, pool, off, length, OR of the
    annotation bits, AND of them); the head is not moved: see :func:`store_release`."""
    capacity = lengths.shape[0]
    tail = prod[TAIL]
    _fence_acquire()  # the slots before tail are written
    head = cons[HEAD]
    n = max(0, min(most, tail - head))
    length = np.empty(n, np.int64)
    i = head % capacity
    widest = 0
    some = np.uint64(0)
    every = ~np.uint64(0)
    for j in range(n):
        length[j] = min(max(lengths[i], 0), slot)  # whatever the memory says: in bounds
        widest = max(widest, length[j])
        some |= present[i]
        every &= present[i]
        i += 1
        if i == capacity:
            i = 0
    stride = headroom + widest + tailroom
    pool = np.zeros(n * stride + guard, np.uint8)
    off = np.empty(n, np.int64)
    i = head % capacity
    for j in range(n):
        off[j] = headroom + j * stride
        _memcpy(pool, off[j], data, i * slot, length[j])
        i += 1
        if i == capacity:
            i = 0
    return head, pool, off, length, some, every


def warmup() -> None:
    """Compile the ring's kernels (see :mod:`routebricks.jit`) with the types it passes."""
    words = np.zeros(_WORDS, np.int64)
    i64, u8, i32, u64 = (np.zeros(1, t) for t in (np.int64, np.uint8, np.int32, np.uint64))
    precompile(load_acquire, words, 0)
    precompile(store_release, words, 0, np.int64(0))
    precompile(write_slots, words, words, u8, i32, u64, 1, u8, i64, i64, 1)
    precompile(publish, words, words, np.int64(0))
    precompile(read_slots, words, words, u8, i32, u64, 1, 1, 1, 1, 1)


# ---------------------------------------------------------------------- the ring
def _spans(start: int, n: int, capacity: int) -> list[tuple[int, int, int, int]]:
    """The ring positions of packets start..start+n as at most two runs:
    (ring from, ring to, batch from, batch to)."""
    i = start % capacity
    first = min(n, capacity - i)
    if first == n:
        return [(i, i + n, 0, n)]
    return [(i, capacity, 0, first), (0, n - first, first, n)]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PacketRing:
    """A single-producer single-consumer ring of packets in anonymous shared memory.

    Make it before forking; then one process calls :meth:`put` and one calls :meth:`get`
    (they may be the same process). Neither blocks: ``put`` stores what fits and says how
    much, ``get`` returns what is there.
    """

    def __init__(self, capacity: int, slot_size: int = SLOT_SIZE,
                 name: str = "routebricks-ring") -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if slot_size < 1:
            raise ValueError("slot size must be at least 1")
        self.capacity = int(capacity)
        self.slot_size = int(slot_size)
        crossing = list(ANNOTATIONS.items())[:MAX_ANNOTATIONS]
        #: The annotations that cross: name -> (bit, dtype in the ring).
        self.annotations = {
            a: (1 << k, np.dtype(np.int32) if a == "nh" else np.dtype(dt))
            for k, (a, dt) in enumerate(crossing)}
        shapes: dict[str, tuple[str, tuple[int, ...]]] = {
            "prod": ("<i8", (_WORDS,)),
            "cons": ("<i8", (_WORDS,)),
            "length": ("<i4", (self.capacity,)),
            "present": ("<u8", (self.capacity,)),
        }
        for a, (_, dt) in self.annotations.items():
            shapes["anno:" + a] = (dt.str, (self.capacity,))
        # The data last and page-aligned in practice: the columns above are small.
        shapes["data"] = ("|u1", (self.capacity * self.slot_size,))
        self.seg = SharedArrays.allocate(shapes, name=name)
        a = self.seg.arrays
        self.prod, self.cons = a["prod"], a["cons"]
        self.data, self.length, self.present = a["data"], a["length"], a["present"]
        self.columns = {n: a["anno:" + n] for n in self.annotations}
        # The descriptor (kept for lock()) is closed when the ring is collected; the
        # memory itself goes with the last mapping, in whichever process that is.
        self._finalizer = weakref.finalize(self, self.seg.close)

    # ------------------------------------------------------------------ state
    def __len__(self) -> int:
        """Packets in the ring."""
        tail = load_acquire(self.prod, TAIL)
        return int(tail - load_acquire(self.cons, HEAD))

    @property
    def room(self) -> int:
        return self.capacity - len(self)

    @property
    def highwater(self) -> int:
        return int(self.prod[HIGHWATER])

    @property
    def written(self) -> int:
        """Packets ever put."""
        return int(load_acquire(self.prod, TAIL))

    @property
    def read(self) -> int:
        """Packets ever taken."""
        return int(load_acquire(self.cons, HEAD))

    @property
    def closed(self) -> bool:
        """Whether the producer said it will put no more (:meth:`close`)."""
        return bool(load_acquire(self.prod, CLOSED))

    @property
    def owner(self) -> int:
        """The producer's pid (0: none has claimed the ring)."""
        return int(self.prod[OWNER])

    def close(self) -> None:
        """Producer: no more packets will come. Everything put before is visible to a
        consumer that sees ``closed`` (release store after the last ``tail``)."""
        store_release(self.prod, CLOSED, np.int64(1))

    def claim(self, pid: int | None = None) -> int:
        """Make process ``pid`` (default: this one) the producer, unless another live
        process is; returns the producer's pid. A producer that died (a worker killed and
        restarted) gives the ring up. Rare and under a lock: never on the data path."""
        pid = os.getpid() if pid is None else pid
        with self.seg.lock() if self.seg.fd >= 0 else contextlib.nullcontext():
            owner = int(self.prod[OWNER])
            if owner in (0, pid) or not _pid_alive(owner):
                self.prod[OWNER] = pid
                return pid
            return owner

    def reset_highwater(self) -> None:
        """Producer: the high water from now on is the current length."""
        self.prod[HIGHWATER] = len(self)

    # ------------------------------------------------------------------ moving packets
    def put(self, batch: PacketBatch) -> int:
        """Producer: copy the first packets of ``batch`` that fit into the ring; returns
        how many (the rest are the caller's to drop). A packet longer than ``slot_size``
        raises ValueError and nothing is put (the caller removes such packets first)."""
        if not len(batch):
            return 0
        bits = 0
        cols = []
        for a, col in batch.annos.items():
            spec = self.annotations.get(a)
            if spec is not None:
                bits |= spec[0]
                cols.append((a, col))
        tail, k = write_slots(self.prod, self.cons, self.data, self.length, self.present,
                              self.slot_size, batch.pool, batch.off, batch.length, bits)
        if k <= 0:
            return 0
        for r0, r1, b0, b1 in _spans(int(tail), int(k), self.capacity):
            for a, col in cols:
                if a == "nh":
                    nh = col[b0:b1]
                    self.columns[a][r0:r1] = np.where(nh >= 0, nh - batch.off[b0:b1], -1)
                else:
                    self.columns[a][r0:r1] = col[b0:b1]
        publish(self.prod, self.cons, tail + k)  # the slots first, then the index
        return int(k)

    def get(self, most: int) -> PacketBatch | None:
        """Consumer: up to ``most`` packets from the ring as a batch in a fresh pool (None
        if the ring is empty). Their slots are free for the producer on return."""
        if most <= 0:
            return None
        head, pool, off, length, some, every = read_slots(
            self.prod, self.cons, self.data, self.length, self.present, self.slot_size,
            most, DEFAULT_HEADROOM, DEFAULT_TAILROOM, POOL_GUARD)
        n = len(off)
        if n == 0:
            return None
        batch = PacketBatch(pool, off, length, None, DEFAULT_HEADROOM, DEFAULT_TAILROOM)
        if some:
            self._annotate(batch, _spans(int(head), n, self.capacity), int(some), int(every))
        store_release(self.cons, HEAD, np.int64(head + n))  # copied out: slots free
        return batch

    @staticmethod
    def _gather(col: np.ndarray, spans: list[tuple[int, int, int, int]]) -> np.ndarray:
        if len(spans) == 1:
            r0, r1, _, _ = spans[0]
            return col[r0:r1].copy()
        return np.concatenate([col[r0:r1] for r0, r1, _, _ in spans])

    def _annotate(self, batch: PacketBatch, spans: list[tuple[int, int, int, int]],
                  some: int, every: int) -> None:
        """Give ``batch`` the annotation columns its packets carried into the ring
        (``some``: the bits any packet had; ``every``: those all had)."""
        present = self._gather(self.present, spans) if some != every else None
        for a, (bit, _) in self.annotations.items():
            if not some & bit:
                continue
            col = self._gather(self.columns[a], spans)
            if a == "nh":
                col = np.where(col >= 0, batch.off + col, -1)
            if present is None or every & bit:
                batch.annos[a] = col.astype(ANNOTATIONS[a], copy=False)
            else:  # packets from batches without it keep the column's fill value
                np.copyto(batch.anno(a), col, where=(present & np.uint64(bit)) != 0,
                          casting="unsafe")
