"""Route tables as text and as arrays: parsing, unparsing and loading route files.

Text format (Click's ``StaticIPLookup``/``DirectIPLookup`` style), one route per item::

    ADDR/LEN [GATEWAY] PORT
    ADDR/MASK [GATEWAY] PORT      # MASK dotted, e.g. 10.0.0.0/255.0.0.0
    ADDR MASK [GATEWAY] PORT      # two-word dotted mask form
    ADDR [GATEWAY] PORT           # bare address: a /32 host route

Items are separated by newlines, or by commas when written inline
(``"10.0.0.0/8 1, 0.0.0.0/0 18.26.4.1 0"``).  ``#`` and ``//`` start comments that run to
the end of the line; blank items are ignored.  ``-`` or ``0.0.0.0`` as GATEWAY means "no
gateway".  As in Click, host bits below the prefix length are masked off silently.

The two-word ``ADDR MASK`` form is recognised when ADDR carries no ``/`` and the next word
is a contiguous dotted netmask; a /32 host route whose gateway happens to look like a
netmask (e.g. ``1.2.3.4 255.255.255.0 1``) must therefore be written ``1.2.3.4/32 ...``.

Also here: :class:`RouteArrays` (a route set as parallel numpy arrays, the bulk-build input
of the lookup tables) and :class:`NextHops`, which interns ``(gateway, port)`` pairs as
small next-hop indices. Whole tables from files and generators (the real RouteViews 2008
table, synthetic ones) are in :mod:`routebricks.lookup.tables`.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from routebricks.errors import shown
from routebricks.textfile import NotUTF8Error, decode_utf8

__all__ = [
    "NO_ROUTE",
    "NextHops",
    "Route",
    "RouteArrays",
    "RouteError",
    "format_route",
    "int_to_ip",
    "ip_to_int",
    "iter_route_items",
    "load_routes",
    "mask_of",
    "normalize_arrays",
    "parse_route",
    "parse_routes",
    "read_route_text",
    "unparse_routes",
]

#: Next-hop index reserved for "no route"; ``NextHops.port[NO_ROUTE] == -1``.
NO_ROUTE = 0

#: Largest port number a route may carry (ports are stored as int32, -1 = no route).
MAX_PORT = 2**31 - 1

EXPECTED = "expected ADDR/LEN [GATEWAY] PORT"

_DOTTED = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})", re.ASCII)
_DECIMAL = re.compile(r"[0-9]+", re.ASCII)


class RouteError(ValueError):
    """A route (or route file line) could not be parsed, or a route file could not be read
    as text.

    ``filename`` (or ``None``), ``lineno`` (1-based, or ``None``) and ``text`` (the bad
    item; ``None`` for a problem with the whole file, such as a corrupt gzip file) are kept
    as attributes; the message names them and what was expected.
    """

    def __init__(
        self,
        problem: str,
        text: str | None = None,
        *,
        filename: str | None = None,
        lineno: int | None = None,
        expected: str = EXPECTED,
    ) -> None:
        self.problem = problem
        self.text = text
        self.filename = filename
        self.lineno = lineno
        self.expected = expected
        where = []
        if filename is not None:
            where.append(str(filename))
        if lineno is not None:
            where.append(f"line {lineno}")
        prefix = (", ".join(where) + ": ") if where else ""
        item = "" if text is None else f" in {shown(text, 60)} ({expected})"
        super().__init__(f"{prefix}{problem}{item}")


def _small_int(text: str, limit: int) -> int | None:
    """A decimal number of at most ``limit``, else None. The digits are counted before
    converting: int() refuses numbers of 4300 digits and more."""
    if not _DECIMAL.fullmatch(text) or len(text.lstrip("0")) > len(str(limit)):
        return None
    value = int(text)
    return value if value <= limit else None


def mask_of(length: int) -> int:
    """Return the 32-bit netmask of a prefix length (0..32) as an int."""
    return (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF


def ip_to_int(text: str) -> int:
    """Parse a strict dotted quad (``a.b.c.d``, decimal octets) into an int."""
    m = _DOTTED.fullmatch(text)
    if m is None:
        raise ValueError(f"bad IPv4 address {text!r}")
    value = 0
    for part in m.groups():
        octet = int(part)
        if octet > 255:
            raise ValueError(f"bad IPv4 address {text!r}")
        value = (value << 8) | octet
    return value


def prefix_address(text: str, length: int) -> int:
    """The address part of a prefix, which Click lets one abbreviate to the octets the
    prefix covers: ``18.26/16``, ``2.0/16``, ``18.26.0/18`` (but not ``18.26/24``: the
    prefix would reach into octets not given)."""
    parts = text.split(".")
    if len(parts) == 4 or not 1 < len(parts) < 4 or 8 * len(parts) < length:
        return ip_to_int(text)  # the usual dotted quad (or its error)
    return ip_to_int(".".join(parts + ["0"] * (4 - len(parts))))


def int_to_ip(value: int) -> str:
    """Format a 32-bit int as a dotted quad."""
    value = int(value)
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


def _mask_to_len(value: int) -> int | None:
    """Prefix length of a contiguous netmask, or None if the mask is not contiguous."""
    inv = ~value & 0xFFFFFFFF
    if inv & (inv + 1):  # inverse of a contiguous mask is 2^k - 1
        return None
    return 32 - inv.bit_length()


@dataclass(frozen=True, slots=True, order=True)
class Route:
    """One route: ``prefix/length -> (gateway, port)``.

    ``prefix`` is the network as a 32-bit int with no host bits set; ``gateway`` is a
    32-bit int, 0 meaning "no gateway" (deliver directly); ``port`` is the output port.
    """

    prefix: int
    length: int
    gateway: int = 0
    port: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.length <= 32:
            raise ValueError(f"prefix length {self.length} not in 0..32")
        if not 0 <= self.prefix <= 0xFFFFFFFF or self.prefix & ~mask_of(self.length):
            raise ValueError(
                f"prefix {self.prefix:#x} is not a /{self.length} network (host bits set?)"
            )
        if not 0 <= self.gateway <= 0xFFFFFFFF:
            raise ValueError(f"gateway {self.gateway!r} is not a 32-bit address")
        if not 0 <= self.port <= MAX_PORT:
            raise ValueError(f"port {self.port!r} not in 0..{MAX_PORT}")

    def __str__(self) -> str:
        return format_route(self)

    def contains(self, addr: int) -> bool:
        """True if the 32-bit address ``addr`` falls inside this route's prefix."""
        return (addr & mask_of(self.length)) == self.prefix


def format_route(route: Route) -> str:
    """Unparse one route in canonical ``ADDR/LEN [GATEWAY] PORT`` form."""
    head = f"{int_to_ip(route.prefix)}/{route.length}"
    if route.gateway:
        return f"{head} {int_to_ip(route.gateway)} {route.port}"
    return f"{head} {route.port}"


def unparse_routes(routes: Iterable[Route], sep: str = "\n") -> str:
    """Unparse routes, one per item; ``sep=", "`` gives Click's inline form."""
    return sep.join(format_route(r) for r in routes)


def parse_route(text: str, *, filename: str | None = None, lineno: int | None = None) -> Route:
    """Parse one route item (no comments, no separators); raise :class:`RouteError`."""

    def fail(problem: str) -> RouteError:
        return RouteError(problem, text.strip(), filename=filename, lineno=lineno)

    words = text.split()
    if not words:
        raise fail("empty route")
    first = words.pop(0)
    if "/" in first:
        addr_s, _, mask_s = first.partition("/")
    elif len(words) >= 2 and _DOTTED.fullmatch(words[0]) and _is_netmask(words[0]):
        addr_s, mask_s = first, words.pop(0)  # two-word ADDR MASK form
    else:
        addr_s, mask_s = first, "32"  # bare address: host route
    if _DECIMAL.fullmatch(mask_s):
        small = _small_int(mask_s, 32)
        if small is None:
            raise fail(f"bad prefix length {shown(mask_s, 12)} (must be 0..32)")
        length = small
    else:
        try:
            length_or_none = _mask_to_len(ip_to_int(mask_s))
        except ValueError:
            raise fail(f"bad prefix length or netmask {shown(mask_s, 20)}") from None
        if length_or_none is None:
            raise fail(f"netmask {shown(mask_s)} is not contiguous")
        length = length_or_none
    try:
        addr = prefix_address(addr_s, length)
    except ValueError:
        raise fail(f"bad address {shown(addr_s, 20)}") from None
    if len(words) == 1:
        gw_s, port_s = "-", words[0]
    elif len(words) == 2:
        gw_s, port_s = words
    elif not words:
        raise fail("missing output port")
    else:
        raise fail(f"too many words ({len(words)} after the prefix)")
    if gw_s == "-":
        gateway = 0
    else:
        try:
            gateway = ip_to_int(gw_s)
        except ValueError:
            raise fail(f"bad gateway {shown(gw_s, 20)}") from None
    port = _small_int(port_s, MAX_PORT)
    if port is None:
        raise fail(f"bad port {shown(port_s, 20)} (must be an integer 0..{MAX_PORT})")
    return Route(addr & mask_of(length), length, gateway, port)


def _is_netmask(text: str) -> bool:
    try:
        return _mask_to_len(ip_to_int(text)) is not None
    except ValueError:
        return False


def _strip_comment(line: str) -> str:
    cut = len(line)
    for marker in ("#", "//"):
        pos = line.find(marker)
        if pos >= 0:
            cut = min(cut, pos)
    return line[:cut]


def iter_route_items(text: str) -> Iterator[tuple[int, str]]:
    """Yield ``(lineno, item)`` for each non-blank route item of a route text."""
    # Lines end at newlines only (not at form feeds etc.), as editors number them.
    for lineno, line in enumerate(text.split("\n"), start=1):
        for item in _strip_comment(line).split(","):
            if item.strip():
                yield lineno, item


def parse_routes(text: str, *, filename: str | None = None) -> list[Route]:
    """Parse a route table text (newline- or comma-separated items, with comments)."""
    return [
        parse_route(item, filename=filename, lineno=lineno)
        for lineno, item in iter_route_items(text)
    ]


def _read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped if its name ends in ``.gz``; RouteError naming the file
    if it is a truncated or corrupt gzip file, OSError if it cannot be read."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise RouteError(
            f"truncated or corrupt gzip file ({e})", filename=str(path)
        ) from None


def read_route_text(path: str | PathLike[str]) -> str:
    """The text of a route file (gzip-compressed if its name ends in ``.gz``).

    OSError if it cannot be read (missing, a directory, no permission); RouteError naming
    the file if it is a truncated or corrupt gzip file, or naming the line and column of
    the first byte that is not UTF-8."""
    path = Path(path)
    data = _read_bytes(path)
    try:
        return decode_utf8(data)
    except NotUTF8Error as e:
        raise RouteError(
            f"byte 0x{e.byte:02x} at column {e.column} is not UTF-8 text",
            filename=str(path),
            lineno=e.line,
        ) from None


def load_routes(path: str | PathLike[str]) -> list[Route]:
    """Read and parse a route file (gzip-compressed if its name ends in ``.gz``); OSError
    or RouteError as :func:`read_route_text` and :func:`parse_routes` raise them."""
    return parse_routes(read_route_text(path), filename=str(path))


# --------------------------------------------------------------------------- arrays


@dataclass(frozen=True, eq=False)
class RouteArrays:
    """A route set as parallel numpy arrays (the bulk-load form of the lookup tables).

    ``net`` uint32 (host bits clear), ``length`` uint8 (0..32), ``port`` int32 (>= 0),
    ``gateway`` uint32 (0 = none).  Order is arbitrary; duplicates of a (net, length)
    are allowed and resolved by the tables as "last one wins".
    """

    net: np.ndarray
    length: np.ndarray
    port: np.ndarray
    gateway: np.ndarray

    def __post_init__(self) -> None:
        net = np.ascontiguousarray(self.net, dtype=np.uint32)
        length = np.ascontiguousarray(self.length, dtype=np.uint8)
        port = np.ascontiguousarray(self.port, dtype=np.int32)
        # A scalar gateway (e.g. 0) is broadcast to every route.
        gateway = np.ascontiguousarray(np.broadcast_to(self.gateway, net.shape), np.uint32)
        if not (net.ndim == 1 and net.shape == length.shape == port.shape == gateway.shape):
            raise ValueError("RouteArrays fields must be 1-D arrays of equal length")
        if length.size and length.max() > 32:
            raise ValueError("prefix length > 32 in RouteArrays")
        if port.size and port.min() < 0:
            raise ValueError("negative port in RouteArrays")
        for name, value in (
            ("net", net),
            ("length", length),
            ("port", port),
            ("gateway", gateway),
        ):
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return int(self.net.shape[0])

    @classmethod
    def from_routes(cls, routes: Iterable[Route]) -> RouteArrays:
        """Pack Route objects into arrays."""
        rs = list(routes)
        return cls(
            net=np.array([r.prefix for r in rs], dtype=np.uint32),
            length=np.array([r.length for r in rs], dtype=np.uint8),
            port=np.array([r.port for r in rs], dtype=np.int32),
            gateway=np.array([r.gateway for r in rs], dtype=np.uint32),
        )

    def to_routes(self) -> list[Route]:
        """Unpack into Route objects (masking host bits, as the tables do)."""
        masks = _MASKS[self.length]
        return [
            Route(n, ln, g, p)
            for n, ln, g, p in zip(
                (self.net & masks).tolist(),
                self.length.tolist(),
                self.gateway.tolist(),
                self.port.tolist(),
                strict=True,
            )
        ]

    def take(self, index: np.ndarray | slice) -> RouteArrays:
        """Subset (by integer/boolean index or slice)."""
        return RouteArrays(
            self.net[index], self.length[index], self.port[index], self.gateway[index]
        )

    @classmethod
    def concat(cls, parts: Iterable[RouteArrays]) -> RouteArrays:
        """Concatenate route sets (later ones win on duplicate prefixes)."""
        ps = list(parts)
        return cls(
            np.concatenate([p.net for p in ps]),
            np.concatenate([p.length for p in ps]),
            np.concatenate([p.port for p in ps]),
            np.concatenate([p.gateway for p in ps]),
        )


#: ``_MASKS[len]`` is the uint32 netmask of a prefix length.
_MASKS = np.array([mask_of(n) for n in range(33)], dtype=np.uint32)


def normalize_arrays(routes: RouteArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mask host bits, drop duplicate prefixes (last wins), sort by length (stable).

    Returns ``(net, length, port, gateway)``; the tables' bulk builds start from this.
    """
    length = routes.length
    net = routes.net & _MASKS[length]
    key = (net.astype(np.uint64) << np.uint64(6)) | length.astype(np.uint64)
    # np.unique keeps the first occurrence, so search the reversed array for "last wins".
    _, first_rev = np.unique(key[::-1], return_index=True)
    keep = (len(key) - 1 - first_rev).astype(np.intp)
    keep = keep[np.argsort(length[keep], kind="stable")]
    return net[keep], length[keep], routes.port[keep], routes.gateway[keep]


# --------------------------------------------------------------------------- next hops


class NextHops:
    """Interns ``(gateway, port)`` pairs as small next-hop indices, with refcounts.

    Index :data:`NO_ROUTE` (0) is reserved: ``port[0] == -1`` and ``gateway[0] == 0``, so
    ``nh.port[table.lookup(addrs)]`` yields -1 for unroutable addresses without a branch.
    ``port``/``gateway`` are views of growable arrays: re-read them after table updates.
    Unused indices (refcount 0) are recycled, so the arrays stay small under churn.
    """

    def __init__(self, capacity: int = 64) -> None:
        self._port = np.full(max(capacity, 2), -1, dtype=np.int32)
        self._gw = np.zeros(max(capacity, 2), dtype=np.uint32)
        self._refs = np.zeros(max(capacity, 2), dtype=np.int64)
        self._index: dict[tuple[int, int], int] = {}
        self._free: list[int] = []
        self._n = 1  # index 0 is NO_ROUTE

    def __len__(self) -> int:
        """Number of index slots in use, including the reserved NO_ROUTE slot."""
        return self._n

    @property
    def port(self) -> np.ndarray:
        """int32 output port per next-hop index (-1 for NO_ROUTE and free slots)."""
        return self._port[: self._n]

    @property
    def gateway(self) -> np.ndarray:
        """uint32 gateway per next-hop index (0 = none)."""
        return self._gw[: self._n]

    def _grow(self, need: int) -> None:
        cap = len(self._port)
        if need <= cap:
            return
        new = max(need, 2 * cap)
        port = np.full(new, -1, dtype=np.int32)
        gw = np.zeros(new, dtype=np.uint32)
        refs = np.zeros(new, dtype=np.int64)
        port[:cap], gw[:cap], refs[:cap] = self._port, self._gw, self._refs
        self._port, self._gw, self._refs = port, gw, refs

    def intern(self, gateway: int, port: int, refs: int = 1) -> int:
        """Return the index of ``(gateway, port)``, creating it; add ``refs`` references."""
        key = (int(gateway), int(port))
        idx = self._index.get(key)
        if idx is None:
            if self._free:
                idx = self._free.pop()
            else:
                self._grow(self._n + 1)
                idx = self._n
                self._n += 1
            self._port[idx], self._gw[idx] = key[1], key[0]
            self._index[key] = idx
        self._refs[idx] += refs
        return idx

    def intern_many(self, gateway: np.ndarray, port: np.ndarray) -> np.ndarray:
        """Vectorized :meth:`intern` (one reference per element); returns uint32 indices."""
        key = (gateway.astype(np.uint64) << np.uint64(32)) | port.astype(np.uint64)
        uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        ids = np.array(
            [
                self.intern(int(k) >> 32, int(k) & 0xFFFFFFFF, int(c))
                for k, c in zip(uniq.tolist(), counts.tolist(), strict=True)
            ],
            dtype=np.uint32,
        )
        return ids[inverse.reshape(-1)]

    def release(self, idx: int) -> None:
        """Drop one reference to ``idx``; free the slot when none remain."""
        if idx == NO_ROUTE:
            return
        self._refs[idx] -= 1
        if self._refs[idx] == 0:
            del self._index[(int(self._gw[idx]), int(self._port[idx]))]
            self._port[idx], self._gw[idx] = -1, 0
            self._free.append(idx)

    def get(self, idx: int) -> tuple[int, int]:
        """``(gateway, port)`` of a next-hop index."""
        return int(self._gw[idx]), int(self._port[idx])

    def reset(self) -> None:
        """Forget all next hops (keeps capacity)."""
        self._port[:] = -1
        self._gw[:] = 0
        self._refs[:] = 0
        self._index.clear()
        self._free.clear()
        self._n = 1


class NextHopViews:
    """The next-hop arrays of a route table that interns its next hops in ``self._nh``:
    gather ``nh_port``/``nh_gw`` with the indices ``lookup`` returns."""

    _nh: NextHops

    @property
    def nh_port(self) -> np.ndarray:
        """int32 port per next-hop index; -1 at NO_ROUTE. Re-read after updates."""
        return self._nh.port

    @property
    def nh_gw(self) -> np.ndarray:
        """uint32 gateway per next-hop index (0 = none). Re-read after updates."""
        return self._nh.gateway

    @property
    def next_hops(self) -> NextHops:
        """The next-hop interning table."""
        return self._nh
