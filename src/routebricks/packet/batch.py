"""The packet batch: many packets in one numpy byte pool, described by columns.

A :class:`PacketBatch` is what elements receive and emit. It never holds Python ``bytes`` per
packet: the packet data live in one ``uint8`` pool, each packet is a (``off``, ``length``) pair
into it, and annotations (paint, destination address, timestamp, ...) are further columns.
Selecting a subset of a batch (by boolean mask, by index, by output port) gathers offsets and
annotation values; packet bytes stay where they are.

Field access is vectorized: ``batch.u16(12)`` returns the big-endian 16-bit field at byte 12 of
every packet as one numpy array, gathered by a compiled kernel (one pass per field).

Headroom and tailroom are tracked as batch-wide lower bounds (``headroom``, ``tailroom``): the
number of bytes that every packet of the batch can grow by, in front and behind, without touching
its neighbour. Sources create packets with room on both sides, so encapsulating elements prepend
headers by moving offsets instead of copying payloads; when the room is too small,
:meth:`PacketBatch.ensure_room` repacks the batch into a new pool.

Ownership: pushing a batch to an element hands it over. The receiver may write packet bytes and
replace columns. Elements that send one batch to several places (``Tee``) copy it first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from routebricks.packet import kernels as _k

#: Free bytes kept after the last packet of every pool we allocate, so that fixed-width field
#: reads (up to a 60-byte IPv4 header) near the end of a pool never index past it.
POOL_GUARD = 64
#: Default room that sources leave in front of and behind each packet.
DEFAULT_HEADROOM = 64
DEFAULT_TAILROOM = 64

#: Known annotation columns and their dtypes. Users may add their own with any name
#: (see :func:`register_annotation`); unknown names default to ``int64``.
ANNOTATIONS: dict[str, np.dtype] = {
    "paint": np.dtype(np.uint8),  # Click's PAINT annotation
    "dst_ip": np.dtype(np.uint32),  # Click's DST_IP annotation (next-hop address)
    "timestamp": np.dtype(np.int64),  # nanoseconds since the epoch
    "flow_hash": np.dtype(np.uint32),
    "in_port": np.dtype(np.int16),  # input device/port index
    "nh": np.dtype(np.int64),  # absolute pool offset of the network header, -1 if unset
    "user": np.dtype(np.int64),
    "fix_ip_src": np.dtype(np.uint8),  # Click's FIX_IP_SRC: ICMPError asks FixIPSrc to fix it
    "icmp_paramprob": np.dtype(np.uint8),  # offset of the bad IP header byte
    "packet_type": np.dtype(np.uint8),  # link-level: 0 host, 1 broadcast, 2 multicast, ...
    "next_mtu": np.dtype(np.uint16),  # the MTU a don't-fragment packet did not fit
}
#: Fill value of a new annotation column (network header: unset).
_FILL: dict[str, int] = {"nh": -1}

_U8 = np.dtype(np.uint8)


def register_annotation(name: str, dtype: np.typing.DTypeLike, fill: int = 0) -> None:
    """Declare an annotation column for user elements (name, dtype, value of new rows)."""
    ANNOTATIONS[name] = np.dtype(dtype)
    if fill:
        _FILL[name] = fill


class PacketBatch:
    """A batch of packets: one byte pool, offsets, lengths and annotation columns.

    Attributes:
        pool: ``uint8`` array holding packet data (shared between batches cut from one source).
        off: ``int64`` array, start of each packet's data in ``pool``.
        length: ``int64`` array, each packet's length in bytes.
        headroom: bytes every packet may grow by in front (a lower bound for the batch).
        tailroom: bytes every packet may grow by at its end (a lower bound for the batch).
    """

    __slots__ = ("pool", "off", "length", "annos", "headroom", "tailroom")

    def __init__(
        self,
        pool: np.ndarray,
        off: np.ndarray,
        length: np.ndarray,
        annos: dict[str, np.ndarray] | None = None,
        headroom: int = 0,
        tailroom: int = 0,
    ) -> None:
        self.pool = pool
        self.off = off
        self.length = length
        self.annos: dict[str, np.ndarray] = annos if annos is not None else {}
        self.headroom = headroom
        self.tailroom = tailroom

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls) -> PacketBatch:
        return cls(np.zeros(POOL_GUARD, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64))

    @classmethod
    def from_bytes(
        cls,
        packets: Iterable[bytes],
        headroom: int = DEFAULT_HEADROOM,
        tailroom: int = DEFAULT_TAILROOM,
    ) -> PacketBatch:
        """Build a batch from Python byte strings (tests, control-plane packets)."""
        pkts = [bytes(p) for p in packets]
        lengths = np.fromiter((len(p) for p in pkts), np.int64, len(pkts))
        slot = headroom + lengths + tailroom
        starts = np.zeros(len(pkts), np.int64)
        if len(pkts):
            np.cumsum(slot[:-1], out=starts[1:])
        pool = np.zeros(int(slot.sum()) + POOL_GUARD, np.uint8)
        off = starts + headroom
        buf = memoryview(pool)
        for o, p in zip(off.tolist(), pkts, strict=True):
            buf[o : o + len(p)] = p
        return cls(pool, off, lengths, headroom=headroom, tailroom=tailroom)

    @classmethod
    def from_arrays(
        cls,
        data: np.ndarray,
        lengths: np.ndarray,
        headroom: int = DEFAULT_HEADROOM,
        tailroom: int = DEFAULT_TAILROOM,
    ) -> PacketBatch:
        """Build a batch from a (n, width) byte matrix whose row i holds packet i's first
        ``lengths[i]`` bytes. Vectorized: used by sources that synthesize packets."""
        n, width = data.shape
        stride = headroom + width + tailroom
        pool = np.zeros(n * stride + POOL_GUARD, np.uint8)
        rows = pool[: n * stride].reshape(n, stride)
        rows[:, headroom : headroom + width] = data
        off = np.arange(n, dtype=np.int64) * stride + headroom
        return cls(
            pool,
            off,
            np.asarray(lengths, np.int64).copy(),
            headroom=headroom,
            tailroom=tailroom,
        )

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return self.off.shape[0]

    def __repr__(self) -> str:
        return (
            f"<PacketBatch n={len(self)} bytes={int(self.length.sum())} "
            f"annos={sorted(self.annos)} headroom={self.headroom} tailroom={self.tailroom}>"
        )

    def packet(self, i: int) -> bytes:
        """Packet ``i`` as bytes (for tests, Print and the control plane; not the data path)."""
        o = int(self.off[i])
        return self.pool[o : o + int(self.length[i])].tobytes()

    def to_list(self) -> list[bytes]:
        return [self.packet(i) for i in range(len(self))]

    def total_bytes(self) -> int:
        return int(self.length.sum())

    # ------------------------------------------------------------------ annotations
    def anno(self, name: str) -> np.ndarray:
        """The annotation column ``name``, created (zero, or its fill value) if absent."""
        col = self.annos.get(name)
        if col is None:
            dtype = ANNOTATIONS.get(name, np.dtype(np.int64))
            fill = _FILL.get(name, 0)
            col = np.full(len(self), fill, dtype) if fill else np.zeros(len(self), dtype)
            self.annos[name] = col
        return col

    def anno_or_none(self, name: str) -> np.ndarray | None:
        return self.annos.get(name)

    def set_anno(self, name: str, values: np.ndarray | int) -> None:
        """Set annotation ``name`` for every packet (array of len(self), or a scalar)."""
        col = self.anno(name)
        col[...] = values

    # ------------------------------------------------------------------ subsets
    def select(self, which: np.ndarray) -> PacketBatch:
        """The packets chosen by a boolean mask or an index array. Copies no packet bytes."""
        return PacketBatch(
            self.pool,
            self.off[which],
            self.length[which],
            {k: v[which] for k, v in self.annos.items()},
            self.headroom,
            self.tailroom,
        )

    def slice(self, start: int, stop: int) -> PacketBatch:
        """Packets ``start:stop`` as views of this batch's columns (no copy at all)."""
        return PacketBatch(
            self.pool,
            self.off[start:stop],
            self.length[start:stop],
            {k: v[start:stop] for k, v in self.annos.items()},
            self.headroom,
            self.tailroom,
        )

    def split(self, port: np.ndarray, nports: int) -> list[PacketBatch | None]:
        """Split by a per-packet output port number in ``[0, nports)``.

        Returns one batch per port, or ``None`` where no packet goes; packets keep their order
        within each port. Port numbers outside the range are the caller's to filter first.
        """
        n = len(self)
        if n == 0:
            return [None] * nports
        if nports <= 4:
            out: list[PacketBatch | None] = []
            for p in range(nports):
                m = port == p
                k = int(np.count_nonzero(m))
                out.append(None if k == 0 else (self if k == n else self.select(m)))
            return out
        # Many ports: one stable sort instead of one mask per port.
        order = np.argsort(port, kind="stable")
        counts = np.bincount(port, minlength=nports)
        bounds = np.concatenate(([0], np.cumsum(counts)))
        res: list[PacketBatch | None] = []
        for p in range(nports):
            a, b = int(bounds[p]), int(bounds[p + 1])
            res.append(None if a == b else self.select(order[a:b]))
        return res

    @staticmethod
    def concat(batches: Sequence[PacketBatch]) -> PacketBatch:
        """One batch holding the packets of ``batches`` in order.

        Batches sharing a pool are joined by concatenating columns; otherwise the packets are
        repacked into a new pool.
        """
        batches = [b for b in batches if len(b)]
        if not batches:
            return PacketBatch.empty()
        if len(batches) == 1:
            return batches[0]
        pool = batches[0].pool
        if any(b.pool is not pool for b in batches):
            batches = [b.compact() for b in batches]
            return _join_pools(batches)
        names = set().union(*(b.annos for b in batches))
        annos = {k: np.concatenate([b.anno(k) for b in batches]) for k in names}
        return PacketBatch(
            pool,
            np.concatenate([b.off for b in batches]),
            np.concatenate([b.length for b in batches]),
            annos,
            min(b.headroom for b in batches),
            min(b.tailroom for b in batches),
        )

    # ------------------------------------------------------------------ copying
    def compact(
        self, headroom: int = DEFAULT_HEADROOM, tailroom: int = DEFAULT_TAILROOM
    ) -> PacketBatch:
        """A copy of this batch in a fresh pool of its own, with the given room per packet.

        Network-header annotations (absolute offsets) are moved along with their packets.
        """
        n = len(self)
        slot = self.length + (headroom + tailroom)
        starts = np.zeros(n, np.int64)
        if n:
            np.cumsum(slot[:-1], out=starts[1:])
        total = int(slot.sum()) if n else 0
        pool = np.zeros(total + POOL_GUARD, np.uint8)
        new_off = starts + headroom
        _k.repack(self.pool, self.off, self.length, pool, new_off)
        annos = {k: v.copy() for k, v in self.annos.items()}
        nh = annos.get("nh")
        if nh is not None:
            nh[...] = np.where(nh >= 0, nh - self.off + new_off, -1)
        return PacketBatch(pool, new_off, self.length.copy(), annos, headroom, tailroom)

    def copy(self) -> PacketBatch:
        return self.compact(
            max(self.headroom, DEFAULT_HEADROOM), max(self.tailroom, DEFAULT_TAILROOM)
        )

    def ensure_room(self, head: int = 0, tail: int = 0) -> PacketBatch:
        """This batch if every packet has ``head``/``tail`` free bytes, else a repacked copy."""
        if self.headroom >= head and self.tailroom >= tail:
            return self
        return self.compact(max(head, DEFAULT_HEADROOM), max(tail, DEFAULT_TAILROOM))

    # ------------------------------------------------------------------ moving data edges
    def pull_front(self, n: int) -> None:
        """Drop ``n`` bytes from the front of every packet (Click's ``pull``/Strip)."""
        self.off = self.off + n
        self.length = self.length - n
        self.headroom += n

    def push_front(self, n: int) -> None:
        """Grow every packet by ``n`` bytes in front (Click's ``push``/Unstrip).

        The caller makes room first with :meth:`ensure_room`; the new bytes are not cleared.
        """
        if n > self.headroom:
            raise ValueError(f"push_front({n}) exceeds the batch headroom ({self.headroom})")
        self.off = self.off - n
        self.length = self.length + n
        self.headroom -= n

    def prepend(self, header: np.ndarray) -> PacketBatch:
        """The batch with the same ``header`` bytes (a uint8 array) in front of every packet:
        this batch if it has the room, else a repacked copy."""
        h = header.shape[0]
        b = self.ensure_room(head=h)
        b.off, b.length = _k.prepend(b.pool, b.off, b.length, header)
        b.headroom -= h
        return b

    def take_back(self, n: int) -> None:
        """Drop ``n`` bytes from the end of every packet (Click's ``take``)."""
        self.length = self.length - n
        self.tailroom += n

    def put_back(self, n: int) -> None:
        """Grow every packet by ``n`` bytes at its end (Click's ``put``); make room first."""
        if n > self.tailroom:
            raise ValueError(f"put_back({n}) exceeds the batch tailroom ({self.tailroom})")
        self.length = self.length + n
        self.tailroom -= n

    # ------------------------------------------------------------------ field access
    # Offsets are relative to each packet's data start; the ``*_at`` forms take absolute pool
    # positions (e.g. the network-header annotation plus a field offset). Callers make sure
    # packets are long enough first (see Element.require_length).
    def u8(self, o: int) -> np.ndarray:
        return self.pool[self.off + o]

    def u16(self, o: int) -> np.ndarray:
        return self.u16_at(self.off + o)

    def u32(self, o: int) -> np.ndarray:
        return self.u32_at(self.off + o)

    def u16_at(self, pos: np.ndarray) -> np.ndarray:
        return _k.get_u16(self.pool, pos)

    def u32_at(self, pos: np.ndarray) -> np.ndarray:
        return _k.get_u32(self.pool, pos)

    def bytes_at(self, pos: np.ndarray, width: int) -> np.ndarray:
        """A (n, width) copy of ``width`` bytes at each absolute position."""
        return _k.gather_bytes(self.pool, pos, width)

    def field_bytes(self, o: int, width: int) -> np.ndarray:
        return self.bytes_at(self.off + o, width)

    def set_u8(self, o: int, v: np.ndarray | int) -> None:
        self.pool[self.off + o] = v

    def set_u16(self, o: int, v: np.ndarray | int) -> None:
        self.set_u16_at(self.off + o, v)

    def set_u32(self, o: int, v: np.ndarray | int) -> None:
        self.set_u32_at(self.off + o, v)

    def set_u16_at(self, pos: np.ndarray, v: np.ndarray | int) -> None:
        _k.set_u16(self.pool, pos, np.broadcast_to(np.asarray(v, np.uint32), pos.shape))

    def set_u32_at(self, pos: np.ndarray, v: np.ndarray | int) -> None:
        _k.set_u32(self.pool, pos, np.broadcast_to(np.asarray(v, np.uint32), pos.shape))

    def set_bytes(self, o: int, data: bytes | np.ndarray) -> None:
        """Write the same bytes (or a (n, width) matrix, one row per packet) at offset ``o``."""
        self.set_bytes_at(self.off + o, data)

    def set_bytes_at(self, pos: np.ndarray, data: bytes | np.ndarray) -> None:
        arr = np.frombuffer(data, np.uint8) if isinstance(data, bytes | bytearray) else data
        _k.scatter_bytes(self.pool, pos, np.ascontiguousarray(arr.reshape(-1, arr.shape[-1])))


def _join_pools(batches: list[PacketBatch]) -> PacketBatch:
    """Join batches that each own a compact pool into one pool (used by concat)."""
    sizes = [b.pool.shape[0] - POOL_GUARD for b in batches]
    bases = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    pool = np.zeros(int(sum(sizes)) + POOL_GUARD, np.uint8)
    for b, base, size in zip(batches, bases.tolist(), sizes, strict=True):
        pool[base : base + size] = b.pool[:size]
    names = set().union(*(b.annos for b in batches))
    annos: dict[str, np.ndarray] = {}
    for k in names:
        cols = []
        for b, base in zip(batches, bases.tolist(), strict=True):
            c = b.anno(k)
            cols.append(np.where(c >= 0, c + base, -1) if k == "nh" else c)
        annos[k] = np.concatenate(cols)
    return PacketBatch(
        pool,
        np.concatenate([b.off + base for b, base in zip(batches, bases.tolist(), strict=True)]),
        np.concatenate([b.length for b in batches]),
        annos,
        min(b.headroom for b in batches),
        min(b.tailroom for b in batches),
    )
