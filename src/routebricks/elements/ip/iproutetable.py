"""The shared machinery of the IP route-table elements (Click's IPRouteTable).

DirectIPLookup, RadixIPLookup, LinearIPLookup and StaticIPLookup all derive from
:class:`IPRouteTable`: the route configuration (``ADDR/LEN [GATEWAY] PORT`` arguments and a
``ROUTES`` file), the push path (one vectorized longest-prefix lookup per batch, gateway
rewrite of the ``dst_ip`` annotation, split by output port) and Click's handlers (``table``,
``lookup``, and for the mutable tables ``add``, ``set``, ``remove``, ``ctrl``, ``flush``).
The subclasses only choose the lookup structure from :mod:`routebricks.lookup`.

Handler formats (as in Click's ``iproutetable.cc``):

* ``table`` (read): one route per line, ``ADDR/LEN<TAB>GW<TAB>PORT`` where ``GW`` is ``-``
  for no gateway; a second tab follows the prefix when "prefix + tab" is shorter than 17
  characters, and follows the gateway when "gateway + tab" is shorter than 9.
* ``lookup``: a read handler with a parameter, as Click's (``read rt.lookup 1.2.3.4``),
  returning ``PORT``, ``PORT GW``, or ``-1`` when there is no route; it may also be
  written with an address, which a read without parameter then looks up.
* ``add ADDR/LEN [GW] PORT``: fails on an existing prefix ("conflict with existing route").
  ``set`` adds or replaces. ``remove ADDR/LEN [GW [PORT]]``: when PORT is given, GW and PORT
  must match too; otherwise "route '...' not found".
* ``ctrl``: lines of ``add ...``, ``set ...``, ``remove ...``, run in order; the first failing
  line (or an unknown command: "bad command 'x'") undoes the lines before it, so the table
  is left exactly as it was.
* ``flush``: removes every route.

With several workers (or a control socket) the control plane answers ``table`` and
``lookup`` from its own copy of the table, and applies route changes to that copy first (a
bad change is refused before any worker sees it); it then publishes the new lookup arrays in
shared memory and every worker swaps to them between two batches. So a million-route read
or a 50,000-route ``ctrl`` never holds up packets.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import ClassVar

import numba
import numpy as np

from routebricks.engine.args import Arg, Filename
from routebricks.engine.argtext import strip_comments
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.engine.graph import MAX_PORTS
from routebricks.errors import shown
from routebricks.jit import precompile
from routebricks.lookup import (
    Dir248Table,
    Dir248View,
    RadixTable,
    RadixView,
    Route,
    RouteArrays,
    RouteError,
    int_to_ip,
    ip_to_int,
    mask_of,
    parse_route,
)
from routebricks.lookup.dir248 import warmup as dir248_warmup
from routebricks.lookup.routes import EXPECTED, iter_route_items, read_route_text
from routebricks.packet.batch import PacketBatch
from routebricks.packet.ip import IP_DST, ip_positions

__all__ = [
    "IPRouteTable",
    "MutableIPRouteTable",
    "read_route_file",
    "unparse_route",
]

#: How many "no route" messages each element prints to stderr (Click prints 5).
MAX_COMPLAINTS = 5
#: Click's route syntax, quoted in error messages.
ROUTE_SYNTAX = "ADDR/MASK [GATEWAY] OUTPUT"

RouteTable = Dir248Table | RadixTable


# --------------------------------------------------------------------------- formatting


def unparse_route(route: Route, tabs: bool = True) -> str:
    """A route in Click's ``IPRoute::unparse`` form (the ``table`` handler's lines).

    With ``tabs`` the fields are tab-separated and padded with an extra tab as Click does;
    without, space-separated (Click's form in error messages).  ``port`` -1 prints as -1.
    """
    sep = "\t" if tabs else " "
    head = f"{int_to_ip(route.prefix)}/{route.length}{sep}"
    if tabs and len(head) < 17:
        head += "\t"
    gw = (int_to_ip(route.gateway) if route.gateway else "-") + sep
    if tabs and len(gw) < 9:
        gw += "\t"
    return f"{head}{gw}{route.port}"


def _unparse_query(net: int, length: int, gateway: int, port: int) -> str:
    gw = int_to_ip(gateway) if gateway else "-"
    return f"{int_to_ip(net)}/{length} {gw} {port}"


# --------------------------------------------------------------------------- route files

_COMMENT = re.compile(r"(#|//).*")

# Character classes of the fast route-file parser: D digit, W blank, N newline.
_CLASS = np.zeros(256, np.uint8)
_CLASS[np.frombuffer(b"0123456789", np.uint8)] = ord("D")
for _c, _k in ((".", "."), ("/", "/"), ("-", "-"), (" ", "W"), ("\t", "W"), ("\n", "N")):
    _CLASS[ord(_c)] = ord(_k)
# Each line, as its sequence of classes with runs of digits and of blanks collapsed, must be
# one of these (numbers on the line: 6 without a gateway, 10 with one; 0 for blank lines).
_SHAPES: dict[bytes, int] = {}
for _shape, _count in ((b"D.D.D.D/DWD", 6), (b"D.D.D.D/DW-WD", 6), (b"D.D.D.D/DWD.D.D.DWD", 10)):
    for _variant in (_shape, b"W" + _shape, _shape + b"W", b"W" + _shape + b"W"):
        _SHAPES[_variant] = _count
_SHAPES[b""] = _SHAPES[b"W"] = 0
_BLANKS = bytes.maketrans(b"./-\t", b"    ")
#: ``_MASKS[len]``: the netmask of a prefix length.
_MASKS = np.array([mask_of(n) for n in range(33)], np.uint32)
_MAX_PORT = 2**31 - 1


def _fast_parse(text: str) -> RouteArrays | None:
    """Parse a large route file of ``ADDR/LEN [GW|-] PORT`` lines with a few vectorized
    passes; None when the text needs the general parser (commas, dotted masks, bare
    addresses, anything malformed: that parser then names the bad line)."""
    if "," in text:
        return None
    if "#" in text or "//" in text:
        text = _COMMENT.sub("", text)
    try:
        raw = text.replace("\r", "").encode("ascii")
    except UnicodeEncodeError:
        return None
    if not raw.endswith(b"\n"):
        raw += b"\n"
    cls = _CLASS[np.frombuffer(raw, np.uint8)]
    if not cls.all():
        return None
    collapse = (cls[1:] == cls[:-1]) & ((cls[1:] == ord("D")) | (cls[1:] == ord("W")))
    keep = np.ones(len(cls), bool)
    keep[1:] = ~collapse
    lines = cls[keep].tobytes().split(b"N")[:-1]
    try:
        counts = np.fromiter(map(_SHAPES.__getitem__, lines), np.int64, len(lines))
    except KeyError:
        return None
    nums = np.fromstring(raw.translate(_BLANKS), dtype=np.int64, sep=" ")  # noqa: NPY201
    counts = counts[counts > 0]
    if nums.size != int(counts.sum()):
        return None
    start = np.cumsum(counts) - counts
    octets = nums[start[:, None] + np.arange(4)]
    length = nums[start + 4]
    port = nums[start + counts - 1]
    has_gw = counts == 10
    gw_octets = np.zeros_like(octets)
    gw_octets[has_gw] = nums[start[has_gw, None] + np.arange(5, 9)]
    if (octets > 255).any() or (gw_octets > 255).any() or (length > 32).any():
        return None
    if (port > _MAX_PORT).any():
        return None
    weights = np.array([1 << 24, 1 << 16, 1 << 8, 1], np.int64)
    return RouteArrays(
        (octets @ weights).astype(np.uint32),
        length,
        port,
        (gw_octets @ weights).astype(np.uint32),
    )


def _has_duplicates(arrays: RouteArrays) -> bool:
    """Whether two routes have the same prefix (host bits masked, as the tables do)."""
    key = ((arrays.net & _MASKS[arrays.length]).astype(np.uint64) << np.uint64(6)) | (
        arrays.length.astype(np.uint64)
    )
    key.sort()  # a sort and a compare: ~3x faster than np.unique on 270K routes
    return bool((key[1:] == key[:-1]).any())


def read_route_file(path: str | Path) -> RouteArrays:
    """Read a route file (routes.py's text format; gzip if the name ends in ``.gz``).

    Large files in the plain ``ADDR/LEN [GW] PORT`` one-per-line form are parsed
    vectorized (1M routes in about 2 s); anything else goes through
    :func:`routebricks.lookup.parse_route`, line by line.  A prefix may have one route:
    a second one is an error naming both lines, as the ``add`` handler refuses it.  Raises
    :class:`RouteError` (naming the file and line; for a corrupt gzip file, the file) or
    :class:`OSError`.
    """
    text = read_route_text(path)
    fast = _fast_parse(text) if len(text) > 4096 else None
    if fast is not None and not _has_duplicates(fast):
        return fast
    # The general parser also finds the lines of a duplicate the fast one saw.
    routes: list[Route] = []
    first_line: dict[tuple[int, int], int] = {}
    for lineno, item in iter_route_items(text):
        r = parse_route(item, filename=str(path), lineno=lineno)
        key = (r.prefix, r.length)
        if key in first_line:
            raise RouteError(
                f"second route for {int_to_ip(r.prefix)}/{r.length} (the first is on line "
                f"{first_line[key]})",
                item.strip(),
                filename=str(path),
                lineno=lineno,
                expected="one route per prefix",
            )
        first_line[key] = lineno
        routes.append(r)
    return RouteArrays.from_routes(routes)


# --------------------------------------------------------------------------- kernels


@numba.njit(cache=True, nogil=True)
def _route_kernel(
    nh: np.ndarray, nh_port: np.ndarray, nh_gw: np.ndarray, dst: np.ndarray, nports: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Resolve next hops: the new dst_ip column, packet indices grouped by output port
    (stable; unroutable packets last) and the group bounds (``nports + 2`` entries)."""
    n = nh.shape[0]
    new_dst = np.empty(n, np.uint32)
    port = np.empty(n, np.int64)
    counts = np.zeros(nports + 1, np.int64)
    for i in range(n):
        h = nh[i]
        p = np.int64(nh_port[h])
        g = nh_gw[h]
        new_dst[i] = g if g != 0 else dst[i]
        if p < 0 or p >= nports:
            p = nports
        port[i] = p
        counts[p] += 1
    bounds = np.zeros(nports + 2, np.int64)
    for p in range(nports + 1):
        bounds[p + 1] = bounds[p] + counts[p]
    fill = bounds[: nports + 1].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        p = port[i]
        order[fill[p]] = i
        fill[p] += 1
    return new_dst, order, bounds


# --------------------------------------------------------------------------- elements


#: From this many inline routes on, try the vectorized parser first.
_FAST_INLINE = 256


def _warm_route_kernel() -> None:
    u32 = np.zeros(1, np.uint32)
    precompile(_route_kernel, u32, np.zeros(1, np.int32), u32, u32, 1)


class IPRouteTable(Element):
    """Looks up packets' next hops in a route table (base of the IP lookup elements).

    Ports: 1 push input; push outputs 0 .. highest PORT in the table (more if connected).
    Arguments:
        ROUTE... (positional): ``ADDR/LEN [GATEWAY] PORT`` each.
        ROUTES (string): a route file.
        A prefix has one route: a second one is an error naming both places.
    Behaviour: see the subclasses.
    Handlers:
        table (read), lookup (read/write).
    Example:
        rt :: RadixIPLookup(10.0.0.0/8 1, 0.0.0.0/0 18.26.4.1 0);
    See also: DirectIPLookup, RadixIPLookup, LinearIPLookup, StaticIPLookup
    """

    ABSTRACT = True
    PUBLISHES_STATE = True
    port_count = "1/-"
    processing = "h/h"
    REST = True
    ARGS = (Arg("ROUTES", Filename, None, attr="routes_file", help="a route file"),)
    #: Keep routes in insertion order for the ``table`` handler (LinearIPLookup).
    ORDERED: ClassVar[bool] = False

    table: RouteTable

    # ------------------------------------------------------------------ configuration
    def make_table(self) -> RouteTable:
        """A new, empty lookup structure (subclasses choose)."""
        return RadixTable()

    def _fast_inline(self) -> RouteArrays | None:
        """A long route table written inline (a quarter million arguments) parsed in a
        few vectorized passes, as route files are; None when it needs the per-argument
        parser below (which then names the bad or duplicate argument)."""
        if len(self.rest) < _FAST_INLINE:
            return None
        text = "\n".join(self.rest) + "\n"
        if text.count("\n") != len(self.rest):  # an argument of several lines
            return None
        arrays = _fast_parse(text)
        return None if arrays is None or _has_duplicates(arrays) else arrays

    def configure(self) -> None:
        self.table = self.make_table()
        parts: list[RouteArrays] = []
        if self.routes_file:
            parts.append(self._read_routes_file())
        args: list[Route] = []
        seen: dict[tuple[int, int], int] = {}
        inline = self._fast_inline() if not parts else None
        if inline is not None:
            parts.append(inline)
        for i, text in enumerate(self.rest if inline is None else (), start=1):
            try:
                route = parse_route(text)
            except RouteError as e:
                raise self.error(
                    f"argument {i} should be '{ROUTE_SYNTAX}': {e.problem} in "
                    f"{shown(text)}",
                    "e.g. 10.0.0.0/8 1, or 0.0.0.0/0 18.26.4.1 0 for a default route via a gateway",
                ) from None
            key = (route.prefix, route.length)
            if key in seen:
                raise self.error(
                    f"argument {i} ({shown(text)}) is a second route for "
                    f"{int_to_ip(route.prefix)}/{route.length} (argument {seen[key]} is the first)",
                    "give each prefix one route",
                )
            seen[key] = i
            args.append(route)
        if args:
            parts.append(RouteArrays.from_routes(args))
            if len(parts) > 1:
                self._check_file_against_args(parts[0], args)
        arrays = RouteArrays.concat(parts) if len(parts) > 1 else (parts[0] if parts else None)
        if arrays is not None and len(arrays) and int(arrays.port.max()) >= MAX_PORTS:
            raise self.error(
                f"a route to port {int(arrays.port.max())}: ports are numbered below {MAX_PORTS}",
                "each route's PORT is an output of this element",
            )
        self._order: dict[tuple[int, int], None] | None = {} if self.ORDERED else None
        if arrays is not None and len(arrays):
            self._load(arrays)
        self._nports = int(arrays.port.max()) + 1 if arrays is not None and len(arrays) else 0
        # One output per port named in the table, or more if more are connected.
        self.port_count = f"1/{self._nports}-"
        self._complaints = 0
        self._lookup_addr: int | None = None
        # What the data path looks up in: the table itself, until the control plane hands
        # this (worker) process a newer copy of its lookup arrays (adopt_state).
        self._data_table: Dir248View | RadixView | None = None

    def _read_routes_file(self) -> RouteArrays:
        path = self.resolve_path(self.routes_file)
        try:
            return read_route_file(path)
        except RouteError as e:
            syntax = e.text is not None and e.expected == EXPECTED
            raise self.error(
                f"bad ROUTES file: {e}",
                f"each line should be '{ROUTE_SYNTAX}'" if syntax
                else "give each prefix one route" if e.text is not None else None,
            ) from None
        except OSError as e:
            raise self.error(
                f"cannot read ROUTES file {self.routes_file!r}: {e.strerror or e}"
            ) from None

    def _check_file_against_args(self, from_file: RouteArrays, args: list[Route]) -> None:
        """An argument may not repeat a prefix of the ROUTES file (one route per prefix)."""
        net = from_file.net & _MASKS[from_file.length]
        for i, r in enumerate(args, start=1):
            if ((net == r.prefix) & (from_file.length == r.length)).any():
                raise self.error(
                    f"argument {i} is a second route for {int_to_ip(r.prefix)}/{r.length}: "
                    f"ROUTES {self.routes_file!r} has one on line {self._line_of(r)}",
                    "give each prefix one route",
                )

    def _line_of(self, route: Route) -> int:
        """The line of the ROUTES file with ``route``'s prefix (for an error: the file was
        read and parsed once already, maybe without line numbers)."""
        text = read_route_text(self.resolve_path(self.routes_file))
        for lineno, item in iter_route_items(text):
            r = parse_route(item)
            if (r.prefix, r.length) == (route.prefix, route.length):
                return lineno
        raise AssertionError("the prefix is in the file")

    def _load(self, arrays: RouteArrays) -> None:
        self.table.load(arrays)
        if self._order is not None:
            masked = arrays.net & _MASKS[arrays.length]
            self._order = dict.fromkeys(zip(masked.tolist(), arrays.length.tolist(), strict=True))

    # ------------------------------------------------------------------ Python API
    def load(self, routes: RouteArrays | Iterable[Route]) -> None:
        """Replace the whole table (bulk build), e.g. with ``load_ipasn(...)``.

        Ports must name existing outputs once the element is in a router.
        """
        arrays = routes if isinstance(routes, RouteArrays) else RouteArrays.from_routes(routes)
        if len(arrays) and self.router is not None and self.noutputs:
            top = int(arrays.port.max())
            if top >= self.noutputs:
                raise ValueError(
                    f"port {top} out of range: {self.name} has {self.noutputs} outputs"
                )
        if self._order is not None:
            self._order = {}
        if len(arrays):
            self._load(arrays)
            self._nports = max(self._nports, int(arrays.port.max()) + 1)
        else:
            self.table.flush()

    def routes(self) -> Iterator[Route]:
        """The routes, in the ``table`` handler's order."""
        if self._order is None:
            yield from self.table.routes()
            return
        for net, length in self._order:
            r = self.table.get(net, length)
            if r is not None:
                yield r

    def lookup_route(self, addr: int | str) -> tuple[int, int]:
        """``(port, gateway)`` for one address; port -1 (and gateway 0) without a route."""
        a = ip_to_int(addr) if isinstance(addr, str) else int(addr)
        nh = self.table.lookup_one(a)
        return int(self.table.nh_port[nh]), int(self.table.nh_gw[nh])

    # ------------------------------------------------------------------ packets
    def _header_dst(self, batch: PacketBatch) -> np.ndarray:
        """The IP destination field of each packet (0 where there is no full IP header)."""
        pos = ip_positions(batch)
        ok = (pos >= batch.off) & (pos - batch.off + 20 <= batch.length)
        if ok.all():
            return batch.u32_at(pos + IP_DST)
        dst = np.zeros(len(batch), np.uint32)
        if ok.any():
            dst[ok] = batch.u32_at(pos[ok] + IP_DST)
        return dst

    def push(self, port: int, batch: PacketBatch) -> None:
        n = len(batch)
        if n == 0:
            return
        dst = batch.annos.get("dst_ip")
        if dst is None:
            dst = self._header_dst(batch)
        table = self._data_table if self._data_table is not None else self.table
        nh = table.lookup(dst)
        nports = max(self.noutputs, self._nports)
        new_dst, order, bounds = _route_kernel(nh, table.nh_port, table.nh_gw, dst, nports)
        # Replace the column (it may be a view of the sender's annotations).
        batch.annos["dst_ip"] = new_dst
        miss = int(bounds[nports + 1] - bounds[nports])
        if miss:
            self.drop(miss, "no route")
            if self._complaints < MAX_COMPLAINTS:
                first = order[bounds[nports] : bounds[nports] + MAX_COMPLAINTS - self._complaints]
                for i in first.tolist():
                    self._complaints += 1
                    sys.stderr.write(
                        f"{self.name} :: {type(self).__name__}: no route for "
                        f"{int_to_ip(int(dst[i]))}\n"
                    )
        bounds_list = bounds.tolist()
        grouped = None
        for p in range(nports):
            a, b = bounds_list[p], bounds_list[p + 1]
            if a == b:
                continue
            if b - a == n:  # the whole batch goes one way: no copy at all
                self.emit(p, batch)
                return
            if grouped is None:
                # One gather into port order, then a view per port: 1 gather, not nports.
                grouped = batch.select(order[: bounds_list[nports]])
            self.emit(p, grouped.slice(a, b))

    def take_state(self, old: Element) -> None:
        """The running table (routes added and removed by handlers included) carries over
        when the table's configuration did not change; a changed one starts anew."""
        super().take_state(old)
        if old.config == self.config:
            for attr in ("table", "_order", "_nports", "port_count", "_data_table"):
                setattr(self, attr, getattr(old, attr))

    # ------------------------------------------------------------------ shared state
    def export_state(self) -> dict[str, np.ndarray]:
        """The lookup arrays of the table, for the control plane to publish to workers."""
        return self.table.lookup_arrays()

    def adopt_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Look up in ``arrays`` (a copy the control plane published) from now on: one
        assignment between two batches, however many routes changed."""
        view = Dir248View if isinstance(self.table, Dir248Table) else RadixView
        self._data_table = view(**arrays)

    # ------------------------------------------------------------------ handlers
    @read_handler("table", control=True)
    def h_table(self) -> str:
        """The routes, one ``ADDR/LEN<TAB>GW<TAB>PORT`` line each (GW ``-`` when none)."""
        return "".join(unparse_route(r) + "\n" for r in self.routes())

    @read_handler("lookup", param=True, control=True)
    def h_lookup_read(self, param: str = "") -> str:
        """``PORT`` or ``PORT GW`` for the address given (``rt.lookup 10.0.0.1``), or else for
        the address last written (-1: no route)."""
        text = strip_comments(param).strip()
        if text:
            try:
                addr = ip_to_int(text)
            except ValueError:
                raise ValueError(f"expected IP address, not '{text}'") from None
        elif self._lookup_addr is None:
            return ""
        else:
            addr = self._lookup_addr
        port, gw = self.lookup_route(addr)
        return f"{port} {int_to_ip(gw)}" if gw and port >= 0 else str(port)

    @write_handler("lookup", control=True)
    def h_lookup_write(self, value: str) -> None:
        """Set the address that reading ``lookup`` looks up."""
        text = strip_comments(value).strip()
        try:
            self._lookup_addr = ip_to_int(text)
        except ValueError:
            raise ValueError(f"expected IP address, not '{text}'") from None


class MutableIPRouteTable(IPRouteTable):
    """An IP route table whose routes can change at run time (base class).

    Ports: as IPRouteTable.
    Arguments: as IPRouteTable.
    Behaviour: handlers change the table in place between batches.
    Handlers:
        table (read), lookup (read/write), add, set, remove, ctrl, flush (write).
    Example:
        rt :: DirectIPLookup(0.0.0.0/0 1);
    See also: DirectIPLookup, RadixIPLookup, LinearIPLookup
    """

    JIT_WARMUP = (_warm_route_kernel, dir248_warmup)

    ABSTRACT = True

    # ------------------------------------------------------------------ commands
    def _parse_for_add(self, text: str) -> Route:
        try:
            route = parse_route(strip_comments(text))
        except RouteError as e:
            raise ValueError(
                f"expected '{ROUTE_SYNTAX}' ({e.problem} in {text.strip()!r})"
            ) from None
        limit = self.noutputs if self.router is not None else None
        if limit is not None and route.port >= limit:
            raise ValueError(
                f"expected '{ROUTE_SYNTAX}': OUTPUT {route.port} out of range "
                f"({self.name} has {limit} output{'s' if limit != 1 else ''})"
            )
        return route

    def _parse_for_remove(self, text: str) -> tuple[int, int, int, int]:
        """``ADDR/LEN [GW|-] [PORT]`` → (net, len, gw, port), as Click's ``cp_ip_route``
        reads a removal: port -1 when not given (then any gateway and port match)."""
        words = strip_comments(text).split()
        bad = ValueError(f"expected 'ADDR/MASK [GATEWAY [OUTPUT]]', not {text.strip()!r}")
        if not 1 <= len(words) <= 3:
            raise bad
        try:
            probe = parse_route(f"{words[0]} 0")
        except RouteError:
            raise bad from None
        rest = words[1:]
        gw, port = 0, -1
        if rest and (rest[0] == "-" or "." in rest[0]):
            if rest[0] != "-":
                try:
                    gw = ip_to_int(rest[0])
                except ValueError:
                    raise bad from None
            rest = rest[1:]
        if rest:
            if len(rest) > 1 or not rest[0].isdigit():
                raise bad
            port = int(rest[0])
        return probe.prefix, probe.length, gw, port

    def _run(self, command: str, text: str, undo: list[tuple[str, Route, Route | None]]) -> None:
        """Run one add/set/remove command, recording how to undo it in ``undo``."""
        table = self.table
        if command in ("add", "set"):
            route = self._parse_for_add(text)
            old = table.get(route.prefix, route.length)
            if command == "add" and old is not None:
                raise ValueError(f"conflict with existing route '{unparse_route(old, False)}'")
            table.set(route)
            undo.append(("set", route, old))
            if self._order is not None:
                self._order.setdefault((route.prefix, route.length), None)
        elif command == "remove":
            net, length, gw, port = self._parse_for_remove(text)
            old = table.get(net, length)
            if old is None or (port >= 0 and (old.gateway, old.port) != (gw, port)):
                raise ValueError(f"route '{_unparse_query(net, length, gw, port)}' not found")
            table.remove(net, length)
            undo.append(("remove", old, None))
            if self._order is not None:
                self._order.pop((net, length), None)
        else:
            raise ValueError(f"bad command '{command}'")

    def _rollback(self, undo: list[tuple[str, Route, Route | None]]) -> None:
        for kind, route, old in reversed(undo):
            if kind == "remove":
                self.table.add(route)
            elif old is None:
                self.table.remove(route.prefix, route.length)
            else:
                self.table.set(old)

    def _transaction(self, lines: list[tuple[str, str]]) -> None:
        """Run commands in order; on the first error undo the ones before it and raise.

        (A single command fails before it changes anything, so only multi-line
        transactions snapshot the insertion order kept for LinearIPLookup.)"""
        order = dict(self._order) if self._order is not None and len(lines) > 1 else None
        undo: list[tuple[str, Route, Route | None]] = []
        try:
            for command, text in lines:
                self._run(command, text, undo)
        except (ValueError, KeyError) as e:
            self._rollback(undo)
            if order is not None:
                self._order = order
            raise ValueError(str(e.args[0]) if e.args else str(e)) from None

    # ------------------------------------------------------------------ handlers
    @write_handler("add", shared=True)
    def h_add(self, value: str) -> None:
        """Add a route ``ADDR/LEN [GW] PORT``; fails if the prefix already has one."""
        self._transaction([("add", value)])

    @write_handler("set", shared=True)
    def h_set(self, value: str) -> None:
        """Add a route ``ADDR/LEN [GW] PORT``, replacing any route for the prefix."""
        self._transaction([("set", value)])

    @write_handler("remove", shared=True)
    def h_remove(self, value: str) -> None:
        """Remove the route ``ADDR/LEN [GW [PORT]]`` (GW and PORT must match if given)."""
        self._transaction([("remove", value)])

    @write_handler("ctrl", shared=True)
    def h_ctrl(self, value: str) -> None:
        """Run ``add``/``set``/``remove`` lines atomically (all or nothing)."""
        lines: list[tuple[str, str]] = []
        for line in strip_comments(value).split("\n"):
            words = line.split(None, 1)
            if words:
                lines.append((words[0], words[1] if len(words) > 1 else ""))
        self._transaction(lines)

    @write_handler("flush", shared=True)
    def h_flush(self, _: str) -> None:
        """Remove every route."""
        self.table.flush()
        if self._order is not None:
            self._order = {}
