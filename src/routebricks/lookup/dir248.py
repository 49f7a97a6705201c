"""DIR-24-8 longest-prefix match (Gupta, Lin & McKeown, INFOCOM 1998), vectorized.

Array layout (all plain, C-contiguous numpy arrays; this is everything a lookup reads)::

    tbl24   uint32[2**24]       indexed by addr >> 8
    tbl8    uint32[ngroups*256] indexed by group * 256 + (addr & 0xFF)
    nh_port int32[n_nh]         output port per next-hop index (-1 for NO_ROUTE)
    nh_gw   uint32[n_nh]        gateway per next-hop index (0 = none)

An entry of ``tbl24`` or ``tbl8`` with bit 31 clear is a next-hop index (0 = NO_ROUTE).
A ``tbl24`` entry with bit 31 set points to the 256-entry second-level group
``entry & 0x7FFFFFFF`` (``tbl8`` entries never have bit 31 set).  So a lookup is one
gather, plus a second gather for addresses in a /24 that holds prefixes longer than /24.
Unlike Click's DirectIPLookup the number of groups is unbounded: ``tbl8`` grows.

Maintenance state, not read by lookups: ``dep24``/``dep8`` (uint8, one per entry) hold
``length + 1`` of the route that owns each entry (0 = none); for a pointer entry of
``tbl24``, ``dep24`` is the depth of the best route of length <= 24 covering that /24 (the
"background" that fills the group's slots not owned by longer routes).  With depths, an
add only overwrites entries owned by shorter-or-equal routes and a removal only rewrites
the entries the removed route owned, handing them to the next-longest covering route,
found in the per-length route dictionaries.

Sharing: :meth:`Dir248Table.pack_into` copies the lookup arrays into a caller-provided
buffer (e.g. ``multiprocessing.shared_memory.SharedMemory(size=table.packed_size()).buf``)
and :meth:`Dir248View.from_buffer` maps them back without copying, in any process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from routebricks.jit import precompile

from .routes import (
    NO_ROUTE,
    NextHops,
    NextHopViews,
    Route,
    RouteArrays,
    int_to_ip,
    ip_to_int,
    mask_of,
    normalize_arrays,
)

__all__ = [
    "Dir248Table",
    "Dir248View",
    "POINTER_FLAG",
    "dir248_lookup",
    "dir248_lookup_numpy",
]

#: Bit 31 of a tbl24 entry: the low 31 bits are a tbl8 group number, not a next hop.
POINTER_FLAG = 0x80000000
_INDEX_MASK = 0x7FFFFFFF
_TBL24_SIZE = 1 << 24
_GROUP = 256
_ARANGE_GROUP = np.arange(_GROUP, dtype=np.intp)


# --------------------------------------------------------------------------- lookups


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _lookup_kernel(tbl24: np.ndarray, tbl8: np.ndarray, addrs: np.ndarray, out: np.ndarray) -> None:
    for i in range(addrs.shape[0]):
        a = addrs[i]
        e = tbl24[a >> 8]
        if e >= 0x80000000:
            e = tbl8[(np.int64(e & 0x7FFFFFFF) << 8) | (a & 255)]
        out[i] = e


def _as_addrs(addrs: Any) -> np.ndarray:
    """Coerce to a contiguous uint32 array (a no-op for the expected input)."""
    if isinstance(addrs, np.ndarray) and addrs.dtype == np.uint32 and addrs.ndim == 1:
        return np.ascontiguousarray(addrs)
    arr = np.asarray(addrs)
    if arr.ndim != 1:
        raise ValueError(f"addresses must be a 1-D array, not shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"addresses must be integers, not {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        raise ValueError("addresses must be in 0..2**32-1")
    return np.ascontiguousarray(arr, dtype=np.uint32).reshape(-1)


def _out_array(n: int, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return np.empty(n, dtype=np.uint32)
    if out.dtype != np.uint32 or out.shape != (n,) or not out.flags.c_contiguous:
        raise ValueError(f"out must be a contiguous uint32 array of shape ({n},)")
    return out


def dir248_lookup(
    tbl24: np.ndarray, tbl8: np.ndarray, addrs: Any, out: np.ndarray | None = None
) -> np.ndarray:
    """Next-hop index (uint32, 0 = NO_ROUTE) of each address, with a compiled loop.

    ``out`` may be ``addrs`` itself (each address is read before its slot is written).
    The default lookup: one fused pass beats the numpy version at every batch size
    (see ``benchmarks/lookup.py``), mostly by avoiding numpy's per-call overheads and
    temporaries at small batches.
    """
    a = _as_addrs(addrs)
    res = _out_array(a.shape[0], out)
    _lookup_kernel(tbl24, tbl8, a, res)
    return res


def dir248_lookup_numpy(
    tbl24: np.ndarray, tbl8: np.ndarray, addrs: Any, out: np.ndarray | None = None
) -> np.ndarray:
    """Same as :func:`dir248_lookup`, in pure numpy: two gathers.

    Unlike :func:`dir248_lookup` (which may write in place), ``out`` must not be ``addrs``.
    """
    a = _as_addrs(addrs)
    res = _out_array(a.shape[0], out)
    np.take(tbl24, a >> 8, out=res)
    ptr = np.flatnonzero(res >= POINTER_FLAG)
    if ptr.size:
        group = (res[ptr] & _INDEX_MASK).astype(np.intp)
        res[ptr] = tbl8[(group << 8) | (a[ptr] & 0xFF)]
    return res


def _lookup_one(tbl24: np.ndarray, tbl8: np.ndarray, addr: int | str) -> int:
    a = ip_to_int(addr) if isinstance(addr, str) else int(addr)
    if not 0 <= a <= 0xFFFFFFFF:
        raise ValueError(f"address {addr!r} not in 0..2**32-1")
    e = int(tbl24[a >> 8])
    if e & POINTER_FLAG:
        e = int(tbl8[((e & _INDEX_MASK) << 8) | (a & 0xFF)])
    return e


# --------------------------------------------------------------------------- shared view

_MAGIC = int.from_bytes(b"RBDIR248", "little")
_VERSION = 1
_HEADER_WORDS = 8  # magic, version, n_tbl8, n_nh, off_tbl24, off_tbl8, off_port, off_gw
_ALIGN = 64


def _layout(n_tbl8: int, n_nh: int) -> tuple[list[int], int]:
    """Byte offsets of tbl24, tbl8, nh_port, nh_gw in a packed buffer, and total size."""
    offsets, pos = [], _HEADER_WORDS * 8
    for nbytes in (_TBL24_SIZE * 4, n_tbl8 * 4, n_nh * 4, n_nh * 4):
        pos = -(-pos // _ALIGN) * _ALIGN
        offsets.append(pos)
        pos += nbytes
    return offsets, pos


@dataclass(frozen=True)
class Dir248View:
    """Read-only lookup over DIR-24-8 arrays (e.g. mapped from shared memory).

    Holds exactly the four lookup arrays described in the module docstring; it does no
    maintenance, so it can live in worker processes attached to a packed buffer.
    """

    tbl24: np.ndarray
    tbl8: np.ndarray
    nh_port: np.ndarray
    nh_gw: np.ndarray

    @classmethod
    def from_buffer(cls, buf: Any) -> Dir248View:
        """Map a buffer written by :meth:`Dir248Table.pack_into` (zero copy)."""
        head = np.frombuffer(buf, dtype=np.uint64, count=_HEADER_WORDS)
        if int(head[0]) != _MAGIC or int(head[1]) != _VERSION:
            raise ValueError("buffer does not hold a packed Dir248 table (bad magic/version)")
        n_tbl8, n_nh = int(head[2]), int(head[3])
        off24, off8, offp, offg = (int(x) for x in head[4:8])
        return cls(
            tbl24=np.frombuffer(buf, np.uint32, _TBL24_SIZE, off24),
            tbl8=np.frombuffer(buf, np.uint32, n_tbl8, off8),
            nh_port=np.frombuffer(buf, np.int32, n_nh, offp),
            nh_gw=np.frombuffer(buf, np.uint32, n_nh, offg),
        )

    def lookup(self, addrs: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Next-hop index per address (uint32; 0 = NO_ROUTE)."""
        return dir248_lookup(self.tbl24, self.tbl8, addrs, out)

    def lookup_one(self, addr: int | str) -> int:
        """Next-hop index of one address."""
        return _lookup_one(self.tbl24, self.tbl8, addr)


# --------------------------------------------------------------------------- table


class Dir248Table(NextHopViews):
    """A mutable DIR-24-8 routing table with vectorized batch lookup.

    ``lookup(addrs)`` returns next-hop indices; gather ``nh_port``/``nh_gw`` with them.
    Routes are unique per (prefix, length): :meth:`add` refuses duplicates, :meth:`set`
    replaces, :meth:`remove` restores the next-longest covering route.  :meth:`load`
    (or :meth:`build`) replaces the whole table in a vectorized bulk build.

    Memory: 80 MiB fixed (tbl24 + depths) plus 1.25 KiB per second-level group.
    """

    def __init__(
        self, routes: RouteArrays | Iterable[Route] | None = None, *, group_capacity: int = 256
    ) -> None:
        self._tbl24 = np.zeros(_TBL24_SIZE, dtype=np.uint32)
        self._dep24 = np.zeros(_TBL24_SIZE, dtype=np.uint8)
        cap = max(int(group_capacity), 1)
        self._tbl8 = np.zeros(cap * _GROUP, dtype=np.uint32)
        self._dep8 = np.zeros(cap * _GROUP, dtype=np.uint8)
        self._ngroups = 0  # high-water mark of allocated groups
        self._free_groups: list[int] = []
        self._pristine = True  # arrays all zero: flush() can skip touching 80 MiB
        # The route set: _rt[length][prefix] = next-hop index (built on first use after a
        # bulk build: 270K routes as dicts cost ~50 ms that a router may never need).
        self._rt_dicts: list[dict[int, int]] = [{} for _ in range(33)]
        self._rt_pending: tuple[np.ndarray, np.ndarray, list[int]] | None = None
        self._nh = NextHops()
        if routes is not None:
            self.load(routes)

    # ---- arrays ------------------------------------------------------------------

    @property
    def tbl24(self) -> np.ndarray:
        """First level, uint32[2**24] (see module docstring)."""
        return self._tbl24

    @property
    def tbl8(self) -> np.ndarray:
        """Second level, uint32[ngroups*256]; reallocated when it grows."""
        return self._tbl8[: self._ngroups * _GROUP]

    @property
    def n_groups(self) -> int:
        """Second-level groups in use."""
        return self._ngroups - len(self._free_groups)

    @property
    def nbytes(self) -> int:
        """Bytes held by lookup and maintenance arrays (not the route dicts)."""
        return sum(a.nbytes for a in (self._tbl24, self._dep24, self._tbl8, self._dep8))

    def view(self) -> Dir248View:
        """A :class:`Dir248View` on the current arrays (stale once tbl8 or nh grow)."""
        return Dir248View(self._tbl24, self.tbl8, self.nh_port, self.nh_gw)

    def lookup_arrays(self) -> dict[str, np.ndarray]:
        """The arrays a lookup reads, by :class:`Dir248View` field name (to copy into
        shared memory and rebuild with ``Dir248View(**arrays)``)."""
        return {"tbl24": self._tbl24, "tbl8": self.tbl8, "nh_port": self.nh_port,
                "nh_gw": self.nh_gw}

    def packed_size(self) -> int:
        """Bytes :meth:`pack_into` needs."""
        return _layout(self._ngroups * _GROUP, len(self._nh))[1]

    def pack_into(self, buf: Any) -> Dir248View:
        """Copy the lookup arrays into ``buf`` (writable, >= :meth:`packed_size` bytes).

        Layout: 8 little-endian uint64 header words (magic ``b"RBDIR248"``, version,
        tbl8 entries, next hops, byte offsets of tbl24, tbl8, nh_port, nh_gw), then the
        four arrays, each 64-byte aligned.  Returns a view on ``buf``.
        """
        n8, n_nh = self._ngroups * _GROUP, len(self._nh)
        offsets, size = _layout(n8, n_nh)
        raw = np.frombuffer(buf, dtype=np.uint8)
        if raw.nbytes < size:
            raise ValueError(f"buffer too small: {raw.nbytes} < {size} bytes")
        head = np.frombuffer(buf, dtype=np.uint64, count=_HEADER_WORDS)
        head[:] = [_MAGIC, _VERSION, n8, n_nh, *offsets]
        view = Dir248View.from_buffer(buf)
        view.tbl24[:] = self._tbl24
        view.tbl8[:] = self.tbl8
        view.nh_port[:] = self.nh_port
        view.nh_gw[:] = self.nh_gw
        return view

    # ---- lookups -----------------------------------------------------------------

    def lookup(self, addrs: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Next-hop index per address (uint32 array; 0 = NO_ROUTE).

        ``addrs`` is a uint32 array (other integer arrays are converted); ``out``, if
        given, is a uint32 array of the same length to write into.
        """
        return dir248_lookup(self._tbl24, self._tbl8, addrs, out)

    def lookup_numpy(self, addrs: Any, out: np.ndarray | None = None) -> np.ndarray:
        """:meth:`lookup` in pure numpy (for comparison; slower)."""
        return dir248_lookup_numpy(self._tbl24, self._tbl8, addrs, out)

    def lookup_one(self, addr: int | str) -> int:
        """Next-hop index of one address (int or dotted quad)."""
        return _lookup_one(self._tbl24, self._tbl8, addr)

    # ---- route set ---------------------------------------------------------------

    def __len__(self) -> int:
        return sum(len(d) for d in self._rt)

    def __contains__(self, key: tuple[int, int]) -> bool:
        prefix, length = key
        return (prefix & mask_of(length)) in self._rt[length]

    def get(self, prefix: int, length: int) -> Route | None:
        """The route for exactly ``prefix/length``, or None."""
        net = _check_prefix(prefix, length)
        nh = self._rt[length].get(net)
        return None if nh is None else self._route(net, length, nh)

    def routes(self) -> Iterator[Route]:
        """All routes, by length then prefix."""
        for length, table in enumerate(self._rt):
            for net in sorted(table):
                yield self._route(net, length, table[net])

    def to_arrays(self) -> RouteArrays:
        """All routes as :class:`RouteArrays` (by length, in insertion order)."""
        nets = np.fromiter((n for d in self._rt for n in d), np.uint32, len(self))
        nhs = np.fromiter((h for d in self._rt for h in d.values()), np.intp, len(self))
        lens = np.repeat(np.arange(33, dtype=np.uint8), [len(d) for d in self._rt])
        return RouteArrays(nets, lens, self._nh.port[nhs], self._nh.gateway[nhs])

    def _route(self, net: int, length: int, nh: int) -> Route:
        gw, port = self._nh.get(nh)
        return Route(net, length, gw, port)

    # ---- updates -----------------------------------------------------------------

    def add(self, route: Route) -> None:
        """Add a route; ValueError if ``route.prefix/route.length`` already exists."""
        net, length = route.prefix, route.length
        if net in self._rt[length]:
            raise ValueError(f"route {int_to_ip(net)}/{length} exists (use set to replace)")
        nh = self._nh.intern(route.gateway, route.port)
        self._rt[length][net] = nh
        self._paint(net, length, nh, length + 1, exact=False)

    def set(self, route: Route) -> Route | None:
        """Add or replace the route for ``route.prefix/route.length``; return the old one."""
        net, length = route.prefix, route.length
        old = self._rt[length].get(net)
        if old is None:
            self.add(route)
            return None
        nh = self._nh.intern(route.gateway, route.port)
        old_route = self._route(net, length, old)
        self._rt[length][net] = nh
        if nh != old:
            # Exactly the entries the old route owned (depth == length+1) change hands.
            self._paint(net, length, nh, length + 1, exact=True)
        self._nh.release(old)
        return old_route

    def remove(self, prefix: int, length: int) -> Route:
        """Remove ``prefix/length`` (host bits ignored) and return it; KeyError if absent.

        Entries it owned fall back to the longest remaining covering route.
        """
        net = _check_prefix(prefix, length)
        nh = self._rt[length].pop(net, None)
        if nh is None:
            raise KeyError(f"no route {int_to_ip(net)}/{length}")
        cover_nh, cover_depth = self._covering(net, length)
        self._paint(net, length, cover_nh, cover_depth, exact=True)
        if length > 24:
            self._maybe_collapse(net >> 8)
        route = self._route(net, length, nh)
        self._nh.release(nh)
        return route

    def flush(self) -> None:
        """Remove all routes (keeps allocated capacity)."""
        if not self._pristine:
            self._tbl24.fill(0)
            self._dep24.fill(0)
            self._tbl8[: self._ngroups * _GROUP] = 0
            self._dep8[: self._ngroups * _GROUP] = 0
            self._pristine = True
        self._ngroups = 0
        self._free_groups.clear()
        for table in self._rt:
            table.clear()
        self._nh.reset()

    def load(self, routes: RouteArrays | Iterable[Route]) -> None:
        """Replace the table's contents by ``routes`` with a vectorized bulk build.

        Host bits are masked; among duplicate prefixes the last one wins.
        """
        arrays = routes if isinstance(routes, RouteArrays) else RouteArrays.from_routes(routes)
        net, length, port, gateway = normalize_arrays(arrays)
        self.flush()
        nh = self._nh.intern_many(gateway, port)
        self._build_sorted(net, length, nh)

    def build(
        self,
        net: np.ndarray,
        length: np.ndarray,
        port: np.ndarray,
        gateway: np.ndarray | int = 0,
    ) -> None:
        """:meth:`load` from parallel arrays (need not be sorted or unique)."""
        self.load(RouteArrays(net, length, port, gateway))  # type: ignore[arg-type]

    # ---- internals ---------------------------------------------------------------

    def _covering(self, net: int, length: int) -> tuple[int, int]:
        """(next hop, depth) of the longest route strictly shorter than /length covering net."""
        for shorter in range(length - 1, -1, -1):
            nh = self._rt[shorter].get(net & mask_of(shorter))
            if nh is not None:
                return nh, shorter + 1
        return NO_ROUTE, 0

    def _paint(self, net: int, length: int, nh: int, depth: int, *, exact: bool) -> None:
        """Write ``(nh, depth)`` into the entries of ``net/length`` owned by the right routes.

        ``exact=False`` (add): entries owned by routes of length <= ``length`` (the new
        route is at least as specific).  ``exact=True`` (remove/replace): only entries
        owned by ``net/length`` itself (depth == length+1).
        """
        own = length + 1
        self._pristine = False
        if length <= 24:
            lo = net >> 8
            hi = lo + (1 << (24 - length))
            t24, d24 = self._tbl24[lo:hi], self._dep24[lo:hi]
            sel = (d24 == own) if exact else (d24 <= own)
            is_ptr = t24 >= POINTER_FLAG
            ptr_sel = sel & is_ptr
            # Fill groups before their background depth changes; pointers stay pointers.
            if ptr_sel.any():
                groups = (t24[ptr_sel] & _INDEX_MASK).astype(np.intp)
                idx = ((groups << 8)[:, None] + _ARANGE_GROUP).ravel()
                d8 = self._dep8[idx]
                idx = idx[(d8 == own) if exact else (d8 <= own)]
                self._tbl8[idx] = nh
                self._dep8[idx] = depth
            t24[sel & ~is_ptr] = nh
            d24[sel] = depth
        else:
            block = net >> 8
            group = self._group_of(block) if exact else self._ensure_group(block)
            lo = (group << 8) | (net & 0xFF)
            hi = lo + (1 << (32 - length))
            t8, d8 = self._tbl8[lo:hi], self._dep8[lo:hi]
            sel = (d8 == own) if exact else (d8 <= own)
            t8[sel] = nh
            d8[sel] = depth

    def _group_of(self, block: int) -> int:
        e = int(self._tbl24[block])
        assert e & POINTER_FLAG, "route longer than /24 without a tbl8 group"
        return e & _INDEX_MASK

    def _ensure_group(self, block: int) -> int:
        """Group of a /24 block, creating it (filled with the block's background) if needed."""
        e = int(self._tbl24[block])
        if e & POINTER_FLAG:
            return e & _INDEX_MASK
        if self._free_groups:
            group = self._free_groups.pop()
        else:
            self._reserve_groups(self._ngroups + 1)
            group = self._ngroups
            self._ngroups += 1
        base = group << 8
        self._tbl8[base : base + _GROUP] = e
        self._dep8[base : base + _GROUP] = self._dep24[block]
        # Publish the pointer only after the group is filled (concurrent readers).
        self._tbl24[block] = POINTER_FLAG | group
        return group

    def _maybe_collapse(self, block: int) -> None:
        """Free the group of ``block`` when no route longer than /24 is left in it."""
        group = self._group_of(block)
        base = group << 8
        if int(self._dep8[base : base + _GROUP].max()) <= 25:
            # All slots hold the block's background route now.
            self._tbl24[block] = self._tbl8[base]
            self._free_groups.append(group)

    def _reserve_groups(self, ngroups: int) -> None:
        cap = len(self._tbl8) // _GROUP
        if ngroups <= cap:
            return
        new_cap = max(ngroups, cap + cap // 2 + 16)
        for name in ("_tbl8", "_dep8"):
            old = getattr(self, name)
            new = np.zeros(new_cap * _GROUP, dtype=old.dtype)
            new[: self._ngroups * _GROUP] = old[: self._ngroups * _GROUP]
            setattr(self, name, new)

    def _build_sorted(self, net: np.ndarray, length: np.ndarray, nh: np.ndarray) -> None:
        """Bulk build into an empty table from unique routes sorted by length.

        Each length is one vectorized write: viewing tbl24 as a (2**L, 2**(24-L)) matrix,
        the /L prefixes are whole rows, and painting lengths in increasing order lets
        longer prefixes overwrite shorter ones.  Lengths > 24 do the same within groups.
        """
        self._pristine = False
        bounds = np.searchsorted(length, np.arange(34)).tolist()
        net64 = net.astype(np.int64)
        for plen in range(25):
            a, b = bounds[plen], bounds[plen + 1]
            if a == b:
                continue
            rows = net64[a:b] >> (32 - plen)
            shape = (1 << plen, 1 << (24 - plen))
            self._tbl24.reshape(shape)[rows] = nh[a:b, None]
            self._dep24.reshape(shape)[rows] = plen + 1
        a = bounds[25]
        if a < len(net):
            blocks = np.unique(net64[a:] >> 8)
            ng = len(blocks)
            self._reserve_groups(ng)
            self._ngroups = ng
            t8 = self._tbl8[: ng * _GROUP]
            d8 = self._dep8[: ng * _GROUP]
            t8.reshape(ng, _GROUP)[:] = self._tbl24[blocks][:, None]
            d8.reshape(ng, _GROUP)[:] = self._dep24[blocks][:, None]
            for plen in range(25, 33):
                a, b = bounds[plen], bounds[plen + 1]
                if a == b:
                    continue
                sub = plen - 24
                group = np.searchsorted(blocks, net64[a:b] >> 8)
                rows = (group << sub) | ((net64[a:b] & 0xFF) >> (8 - sub))
                shape = (ng << sub, 1 << (8 - sub))
                t8.reshape(shape)[rows] = nh[a:b, None]
                d8.reshape(shape)[rows] = plen + 1
            self._tbl24[blocks] = POINTER_FLAG | np.arange(ng, dtype=np.uint32)
        self._rt_pending = (net, nh, bounds)

    @property
    def _rt(self) -> list[dict[int, int]]:
        if self._rt_pending is not None:
            net, nh, bounds = self._rt_pending
            self._rt_pending = None
            for plen in range(33):
                a, b = bounds[plen], bounds[plen + 1]
                self._rt_dicts[plen] = dict(zip(net[a:b].tolist(), nh[a:b].tolist(),
                                                strict=True))
        return self._rt_dicts


def _check_prefix(prefix: int, length: int) -> int:
    """Validate a (prefix, length) key and return the prefix with host bits masked."""
    if not 0 <= length <= 32:
        raise ValueError(f"prefix length {length} not in 0..32")
    if not 0 <= prefix <= 0xFFFFFFFF:
        raise ValueError(f"prefix {prefix!r} is not a 32-bit address")
    return int(prefix) & mask_of(length)


def warmup() -> None:
    """Compile the lookup kernel (see :mod:`routebricks.jit`)."""
    u32 = np.zeros(1, np.uint32)
    precompile(_lookup_kernel, u32, u32, u32, u32)
