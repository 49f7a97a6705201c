"""A plain binary trie: the simple reference longest-prefix-match table.

One node per prefix bit, stored in parallel numpy arrays so the walks can be compiled:
``left[n]``/``right[n]`` are the children of node ``n`` for bit 0/1 (0 = none; node 0 is
the root, which is nobody's child) and ``nh[n]`` is the next-hop index of the route ending
at ``n`` (0 = NO_ROUTE: no route ends there).  Removing a route prunes the nodes that no
longer lead anywhere and recycles them through a free list threaded through ``left``.

Same API as :class:`~routebricks.lookup.dir248.Dir248Table`; it walks up to 32 nodes per
lookup instead of doing two gathers, so it is the yardstick, not the fast path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from .dir248 import _as_addrs, _check_prefix, _out_array
from .routes import (
    NO_ROUTE,
    NextHops,
    NextHopViews,
    Route,
    RouteArrays,
    int_to_ip,
    ip_to_int,
    normalize_arrays,
)

__all__ = ["RadixTable", "RadixView"]

# state[] words shared with the kernels: nodes handed out so far, free-list head, routes.
_USED, _FREE, _COUNT = 0, 1, 2
_MAX_NEW_NODES = 32  # a single insert creates at most 32 nodes


@numba.njit(cache=True, nogil=True)
def _alloc(left: np.ndarray, right: np.ndarray, nhs: np.ndarray, state: np.ndarray) -> int:
    node = state[_FREE]
    if node != 0:
        state[_FREE] = left[node]
        left[node] = 0
        right[node] = 0
        nhs[node] = 0
        return node
    node = state[_USED]
    state[_USED] += 1
    return node


@numba.njit(cache=True, nogil=True)
def _insert(
    left: np.ndarray,
    right: np.ndarray,
    nhs: np.ndarray,
    state: np.ndarray,
    net: int,
    length: int,
    nh: int,
) -> int:
    """Set the route net/length to nh; return the previous next hop (0 if new)."""
    node = 0
    for depth in range(length):
        if (net >> (31 - depth)) & 1:
            child = right[node]
            if child == 0:
                child = _alloc(left, right, nhs, state)
                right[node] = child
        else:
            child = left[node]
            if child == 0:
                child = _alloc(left, right, nhs, state)
                left[node] = child
        node = child
    old = nhs[node]
    nhs[node] = nh
    if old == 0:
        state[_COUNT] += 1
    return old


@numba.njit(cache=True, nogil=True)
def _insert_many(
    left: np.ndarray,
    right: np.ndarray,
    nhs: np.ndarray,
    state: np.ndarray,
    nets: np.ndarray,
    lens: np.ndarray,
    nh: np.ndarray,
    start: int,
) -> int:
    """Insert routes from ``start`` while node capacity lasts; return the next index."""
    cap = left.shape[0]
    i = start
    while i < nets.shape[0] and state[_USED] + _MAX_NEW_NODES <= cap:
        _insert(left, right, nhs, state, np.int64(nets[i]), np.int64(lens[i]), nh[i])
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _remove(
    left: np.ndarray,
    right: np.ndarray,
    nhs: np.ndarray,
    state: np.ndarray,
    net: int,
    length: int,
) -> int:
    """Remove the route net/length; return its next hop (0 if absent). Prunes the path."""
    path = np.zeros(33, dtype=np.int64)
    node = 0
    for depth in range(length):
        path[depth] = node
        child = right[node] if (net >> (31 - depth)) & 1 else left[node]
        if child == 0:
            return 0
        node = child
    old = nhs[node]
    if old == 0:
        return 0
    nhs[node] = 0
    state[_COUNT] -= 1
    depth = length
    while depth > 0 and nhs[node] == 0 and left[node] == 0 and right[node] == 0:
        parent = path[depth - 1]
        if left[parent] == node:
            left[parent] = 0
        else:
            right[parent] = 0
        left[node] = state[_FREE]
        state[_FREE] = node
        node = parent
        depth -= 1
    return old


@numba.njit(cache=True, nogil=True)
def _lookup(
    left: np.ndarray, right: np.ndarray, nhs: np.ndarray, addrs: np.ndarray, out: np.ndarray
) -> None:
    for i in range(addrs.shape[0]):
        a = np.int64(addrs[i])
        node = 0
        best = nhs[0]
        for depth in range(32):
            node = right[node] if (a >> (31 - depth)) & 1 else left[node]
            if node == 0:
                break
            if nhs[node] != 0:
                best = nhs[node]
        out[i] = best


@numba.njit(cache=True, nogil=True)
def _collect(
    left: np.ndarray, right: np.ndarray, nhs: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All routes (net, length, nh) by depth-first walk (address order, shorter first)."""
    nets = np.empty(count, np.uint32)
    lens = np.empty(count, np.uint8)
    out_nh = np.empty(count, np.uint32)
    stack_node = np.empty(64, np.int64)
    stack_net = np.empty(64, np.int64)
    stack_len = np.empty(64, np.int64)
    stack_node[0], stack_net[0], stack_len[0] = 0, 0, 0
    top, k = 1, 0
    while top > 0:
        top -= 1
        node, net, depth = stack_node[top], stack_net[top], stack_len[top]
        if nhs[node] != 0:
            nets[k], lens[k], out_nh[k] = net, depth, nhs[node]
            k += 1
        # Push right first so the left (lower-address) subtree comes out first.
        if right[node] != 0:
            stack_node[top] = right[node]
            stack_net[top] = net | (np.int64(1) << (31 - depth))
            stack_len[top] = depth + 1
            top += 1
        if left[node] != 0:
            stack_node[top], stack_net[top], stack_len[top] = left[node], net, depth + 1
            top += 1
    return nets, lens, out_nh


@dataclass(frozen=True)
class RadixView:
    """Read-only lookup over a trie's arrays (e.g. mapped from shared memory): what the
    data path needs, with none of the maintenance state."""

    left: np.ndarray
    right: np.ndarray
    nhs: np.ndarray
    nh_port: np.ndarray
    nh_gw: np.ndarray

    def lookup(self, addrs: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Next-hop index per address (uint32 array; 0 = NO_ROUTE)."""
        a = _as_addrs(addrs)
        res = _out_array(a.shape[0], out)
        _lookup(self.left, self.right, self.nhs, a, res)
        return res


class RadixTable(NextHopViews):
    """Binary-trie routing table: the reference LPM, same API as ``Dir248Table``.

    ``lookup(addrs)`` returns next-hop indices (uint32, 0 = NO_ROUTE) to gather
    ``nh_port``/``nh_gw`` with; ``lookup_one`` walks the trie in plain Python.
    """

    def __init__(
        self, routes: RouteArrays | Iterable[Route] | None = None, *, node_capacity: int = 1024
    ) -> None:
        cap = max(int(node_capacity), _MAX_NEW_NODES + 1)
        self._left = np.zeros(cap, dtype=np.int32)
        self._right = np.zeros(cap, dtype=np.int32)
        self._nhs = np.zeros(cap, dtype=np.uint32)
        self._state = np.array([1, 0, 0], dtype=np.int64)  # root node 0 is in use
        self._nh = NextHops()
        if routes is not None:
            self.load(routes)

    # ---- arrays ------------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        """Trie nodes in use, root included."""
        free, node = 0, int(self._state[_FREE])
        while node:
            free += 1
            node = int(self._left[node])
        return int(self._state[_USED]) - free

    def _reserve(self, extra: int) -> None:
        need = int(self._state[_USED]) + extra
        cap = len(self._left)
        if need <= cap:
            return
        new_cap = max(need, 2 * cap)
        if new_cap > 2**31 - 1:
            raise MemoryError("radix trie exceeds 2**31 nodes")
        for name in ("_left", "_right", "_nhs"):
            old = getattr(self, name)
            new = np.zeros(new_cap, dtype=old.dtype)
            new[:cap] = old
            setattr(self, name, new)

    def lookup_arrays(self) -> dict[str, np.ndarray]:
        """The arrays a lookup reads, by :class:`RadixView` field name (to copy into
        shared memory and rebuild with ``RadixView(**arrays)``)."""
        used = int(self._state[_USED])
        return {"left": self._left[:used], "right": self._right[:used],
                "nhs": self._nhs[:used], "nh_port": self.nh_port, "nh_gw": self.nh_gw}

    # ---- lookups -----------------------------------------------------------------

    def lookup(self, addrs: Any, out: np.ndarray | None = None) -> np.ndarray:
        """Next-hop index per address (uint32 array; 0 = NO_ROUTE)."""
        a = _as_addrs(addrs)
        res = _out_array(a.shape[0], out)
        _lookup(self._left, self._right, self._nhs, a, res)
        return res

    def lookup_one(self, addr: int | str) -> int:
        """Next-hop index of one address, by a plain Python walk of the trie."""
        a = ip_to_int(addr) if isinstance(addr, str) else int(addr)
        if not 0 <= a <= 0xFFFFFFFF:
            raise ValueError(f"address {addr!r} not in 0..2**32-1")
        node, best = 0, int(self._nhs[0])
        for depth in range(32):
            node = int(self._right[node] if (a >> (31 - depth)) & 1 else self._left[node])
            if node == 0:
                break
            best = int(self._nhs[node]) or best
        return best

    # ---- route set ---------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._state[_COUNT])

    def __contains__(self, key: tuple[int, int]) -> bool:
        prefix, length = key
        return self._find(_check_prefix(prefix, length), length) != NO_ROUTE

    def _find(self, net: int, length: int) -> int:
        node = 0
        for depth in range(length):
            node = int(self._right[node] if (net >> (31 - depth)) & 1 else self._left[node])
            if node == 0:
                return NO_ROUTE
        return int(self._nhs[node])

    def get(self, prefix: int, length: int) -> Route | None:
        """The route for exactly ``prefix/length``, or None."""
        net = _check_prefix(prefix, length)
        nh = self._find(net, length)
        return None if nh == NO_ROUTE else self._route(net, length, nh)

    def to_arrays(self) -> RouteArrays:
        """All routes as :class:`RouteArrays`, in address order (shorter first)."""
        nets, lens, nhs = _collect(self._left, self._right, self._nhs, len(self))
        return RouteArrays(nets, lens, self._nh.port[nhs], self._nh.gateway[nhs])

    def routes(self) -> Iterator[Route]:
        """All routes, by length then prefix (the same order as ``Dir248Table``)."""
        routes = self.to_arrays().to_routes()
        routes.sort(key=lambda r: (r.length, r.prefix))
        return iter(routes)

    def _route(self, net: int, length: int, nh: int) -> Route:
        gw, port = self._nh.get(nh)
        return Route(net, length, gw, port)

    # ---- updates -----------------------------------------------------------------

    def add(self, route: Route) -> None:
        """Add a route; ValueError if ``route.prefix/route.length`` already exists."""
        if self._find(route.prefix, route.length) != NO_ROUTE:
            raise ValueError(
                f"route {int_to_ip(route.prefix)}/{route.length} exists (use set to replace)"
            )
        self.set(route)

    def set(self, route: Route) -> Route | None:
        """Add or replace the route for ``route.prefix/route.length``; return the old one."""
        nh = self._nh.intern(route.gateway, route.port)
        self._reserve(_MAX_NEW_NODES)
        old = int(
            _insert(self._left, self._right, self._nhs, self._state, route.prefix, route.length, nh)
        )
        if old == NO_ROUTE:
            return None
        old_route = self._route(route.prefix, route.length, old)
        self._nh.release(old)
        return old_route

    def remove(self, prefix: int, length: int) -> Route:
        """Remove ``prefix/length`` (host bits ignored) and return it; KeyError if absent."""
        net = _check_prefix(prefix, length)
        nh = int(_remove(self._left, self._right, self._nhs, self._state, net, length))
        if nh == NO_ROUTE:
            raise KeyError(f"no route {int_to_ip(net)}/{length}")
        route = self._route(net, length, nh)
        self._nh.release(nh)
        return route

    def flush(self) -> None:
        """Remove all routes (keeps allocated capacity)."""
        self._left.fill(0)
        self._right.fill(0)
        self._nhs.fill(0)
        self._state[:] = [1, 0, 0]
        self._nh.reset()

    def load(self, routes: RouteArrays | Iterable[Route]) -> None:
        """Replace the contents by ``routes`` (host bits masked; last duplicate wins)."""
        arrays = routes if isinstance(routes, RouteArrays) else RouteArrays.from_routes(routes)
        net, length, port, gateway = normalize_arrays(arrays)
        self.flush()
        nh = self._nh.intern_many(gateway, port)
        start = 0
        while start < len(net):
            # Grow by an estimate of the nodes still needed, then insert what fits.
            self._reserve(max(_MAX_NEW_NODES, (len(net) - start) * 8))
            start = int(
                _insert_many(
                    self._left, self._right, self._nhs, self._state, net, length, nh, start
                )
            )

    def build(
        self,
        net: np.ndarray,
        length: np.ndarray,
        port: np.ndarray,
        gateway: np.ndarray | int = 0,
    ) -> None:
        """:meth:`load` from parallel arrays (need not be sorted or unique)."""
        self.load(RouteArrays(net, length, port, gateway))  # type: ignore[arg-type]
