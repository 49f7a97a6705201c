"""Whole route tables: the pyasn ``.dat.gz`` format of the real RouteViews 2008 table in
``shared/data`` (:func:`load_ipasn`, dropping the martian blocks of :data:`BOGONS`), and
:func:`synthetic_table` for large tables with a realistic prefix-length mix. Both give
:class:`~routebricks.lookup.routes.RouteArrays`, the lookup tables' bulk-build input.
"""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

import numpy as np

from routebricks.lookup.routes import (
    _DECIMAL,
    _MASKS,
    RouteArrays,
    RouteError,
    _read_bytes,
    ip_to_int,
)

__all__ = ["BOGONS", "bogus_mask", "load_ipasn", "synthetic_table"]


#: Martian / special-purpose blocks dropped by ``load_ipasn(drop_bogus=True)``: any
#: prefix inside one of these (or equal to it) is dropped.  (network, length, why)
BOGONS: tuple[tuple[str, int, str], ...] = (
    ("0.0.0.0", 8, "'this' network (RFC 1122)"),
    ("10.0.0.0", 8, "private (RFC 1918)"),
    ("100.64.0.0", 10, "shared CGN space (RFC 6598)"),
    ("127.0.0.0", 8, "loopback"),
    ("169.254.0.0", 16, "link local"),
    ("172.16.0.0", 12, "private (RFC 1918)"),
    ("192.0.2.0", 24, "TEST-NET-1"),
    ("192.168.0.0", 16, "private (RFC 1918)"),
    ("198.18.0.0", 15, "benchmarking (RFC 2544)"),
    ("198.51.100.0", 24, "TEST-NET-2"),
    ("203.0.113.0", 24, "TEST-NET-3"),
    ("224.0.0.0", 4, "multicast"),
    ("240.0.0.0", 4, "reserved, and 255.255.255.255 broadcast"),
)


def bogus_mask(net: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Boolean mask of routes inside a :data:`BOGONS` block, or shorter than /8.

    Prefixes shorter than /8 (including a default route) are never legitimate in a BGP
    table dump, so they count as bogus too.
    """
    bad = length < 8
    for addr, blen, _why in BOGONS:
        bnet = np.uint32(ip_to_int(addr))
        bad |= (length >= blen) & ((net & _MASKS[blen]) == bnet)
    return bad


def load_ipasn(
    path: str | PathLike[str], *, nports: int = 16, drop_bogus: bool = True
) -> RouteArrays:
    """Load a pyasn ``.dat``/``.dat.gz`` table (``prefix/len<TAB>origin-AS`` lines).

    ``;`` lines are comments.  The port of each route is ``origin_AS % nports`` and the
    gateway is 0.  With ``drop_bogus`` (the default) prefixes inside :data:`BOGONS`
    (0/8, 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.0.2/24, 192.168/16,
    198.18/15, 198.51.100/24, 203.0.113/24, 224/4 multicast, 240/4 reserved) and
    prefixes shorter than /8 are dropped.  In the 2008 RouteViews file that drops 9 of
    270,849: five in 10/8 (three /32s, two /21s), 172.30.1/24, 172.31/16, 192.0.2/24 and
    192.168.83/24.  Host bits are masked.  Bad lines raise :class:`RouteError`.
    """
    if nports < 1:
        raise ValueError("nports must be >= 1")
    path = Path(path)
    lines = _read_bytes(path).decode("ascii", "replace").splitlines()
    body = [(i, ln) for i, ln in enumerate(lines, start=1) if ln.strip() and ln[0] != ";"]
    numbers: list[str] = []
    for lineno, line in body:
        m = _IPASN_LINE.fullmatch(line)
        if m is None:
            raise _ipasn_error(line, lineno, str(path))
        numbers.extend(m.groups())
    fields = np.array(numbers, dtype=np.int64).reshape(-1, 6)
    bad = (fields[:, :4] > 255).any(axis=1) | (fields[:, 4] > 32)
    if bad.any():
        lineno, line = body[int(np.flatnonzero(bad)[0])]
        raise _ipasn_error(line, lineno, str(path))
    net = ((fields[:, 0] << 24) | (fields[:, 1] << 16) | (fields[:, 2] << 8) | fields[:, 3]).astype(
        np.uint32
    )
    length = fields[:, 4].astype(np.uint8)
    net &= _MASKS[length]
    port = (fields[:, 5] % nports).astype(np.int32)
    arrays = RouteArrays(net, length, port, np.zeros(len(net), np.uint32))
    if drop_bogus:
        arrays = arrays.take(~bogus_mask(arrays.net, arrays.length))
    return arrays


# Strict form of a line, and a loose one to say what is wrong with a line that fails it.
_IPASN_LINE = re.compile(
    r"\s*([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})\s+([0-9]{1,10})\s*",
    re.ASCII,
)
_IPASN_LOOSE = re.compile(r"\s*(\S+)/(\S+)\s+(\S+)\s*", re.ASCII)


def _ipasn_error(line: str, lineno: int, filename: str) -> RouteError:
    """Build the RouteError describing what is wrong with a bad ipasn line."""
    problem = "bad line"
    m = _IPASN_LOOSE.fullmatch(line)
    if m is not None:
        addr, length, asn = m.groups()
        try:
            ip_to_int(addr)
        except ValueError:
            problem = f"bad address {addr!r}"
        else:
            if not _DECIMAL.fullmatch(length) or int(length) > 32:
                problem = f"bad prefix length {length!r}"
            elif not _DECIMAL.fullmatch(asn):
                problem = f"bad origin AS {asn!r}"
    return RouteError(
        problem,
        line,
        filename=filename,
        lineno=lineno,
        expected="expected PREFIX/LEN<TAB>ORIGIN-AS",
    )


# --------------------------------------------------------------------------- synthetic

#: Relative weight of each prefix length in :func:`synthetic_table`, shaped after the
#: 2008 RouteViews table but with ~57% /24s and ~1% longer than /24 (today's mix).
SYNTHETIC_LENGTH_WEIGHTS: dict[int, float] = {
    8: 0.004,
    9: 0.004,
    10: 0.008,
    11: 0.02,
    12: 0.05,
    13: 0.1,
    14: 0.2,
    15: 0.35,
    16: 3.6,
    17: 1.7,
    18: 2.8,
    19: 5.6,
    20: 6.8,
    21: 6.6,
    22: 8.4,
    23: 6.9,
    24: 55.8,
    25: 0.15,
    26: 0.15,
    27: 0.1,
    28: 0.1,
    29: 0.15,
    30: 0.15,
    31: 0.02,
    32: 0.2,
}

# Synthetic prefixes are drawn from unicast space 1.0.0.0 - 223.255.255.255.
_SYN_LO, _SYN_HI = 1 << 24, 224 << 24


def synthetic_table(
    n: int,
    seed: int = 0,
    nports: int = 16,
    *,
    default_route: bool = False,
    ngateways: int = 0,
) -> RouteArrays:
    """Generate ``n`` unique random prefixes with a realistic length distribution.

    Lengths follow :data:`SYNTHETIC_LENGTH_WEIGHTS` (about 56% /24, 40% /16-/23, under 1%
    shorter than /16, ~1% longer than /24 including /32s); networks are uniform over
    1.0.0.0-223.255.255.255, so shorter prefixes naturally cover many longer ones.  With
    ``default_route`` one of the ``n`` routes is 0.0.0.0/0.  Ports are uniform in
    ``0..nports-1``; gateways are 0, or with ``ngateways`` drawn from that many distinct
    addresses in 100.127.x.y.  Fully vectorized: ~0.5 s for 1M routes.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    n_pref = n - 1 if default_route and n > 0 else n
    lengths = np.array(sorted(SYNTHETIC_LENGTH_WEIGHTS), dtype=np.int64)
    weights = np.array([SYNTHETIC_LENGTH_WEIGHTS[int(x)] for x in lengths])
    counts = rng.multinomial(n_pref, weights / weights.sum())
    # Never ask for more than half of the prefixes of a length that exist; the surplus
    # goes to /24 (or the longest lengths, for absurdly large n).
    avail = (_SYN_HI - _SYN_LO) >> (32 - lengths)
    cap = avail // 2
    surplus = int(np.maximum(counts - cap, 0).sum())
    counts = np.minimum(counts, cap)
    for li in [int(np.flatnonzero(lengths == 24)[0]), *range(len(lengths) - 1, -1, -1)]:
        take = min(surplus, int(cap[li] - counts[li]))
        counts[li] += take
        surplus -= take
    if surplus:
        raise ValueError(f"cannot draw {n} unique unicast prefixes")
    nets, lens = [], []
    for length, count in zip(lengths.tolist(), counts.tolist(), strict=True):
        if count:
            nets.append(_unique_prefixes(rng, length, count))
            lens.append(np.full(count, length, dtype=np.uint8))
    if default_route and n > 0:
        nets.append(np.zeros(1, np.uint32))
        lens.append(np.zeros(1, np.uint8))
    net = np.concatenate(nets) if nets else np.zeros(0, np.uint32)
    length_arr = np.concatenate(lens) if lens else np.zeros(0, np.uint8)
    order = rng.permutation(len(net))
    port = rng.integers(0, nports, len(net), dtype=np.int32)
    if ngateways > 0:
        pool = np.uint32(ip_to_int("100.127.0.0")) + rng.choice(
            1 << 16, ngateways, replace=False
        ).astype(np.uint32)
        gateway = pool[rng.integers(0, ngateways, len(net))]
    else:
        gateway = np.zeros(len(net), np.uint32)
    return RouteArrays(net[order], length_arr[order], port, gateway)


def _unique_prefixes(rng: np.random.Generator, length: int, count: int) -> np.ndarray:
    """``count`` distinct random /length networks in the synthetic unicast range."""
    lo, hi = _SYN_LO >> (32 - length), _SYN_HI >> (32 - length)
    got = np.zeros(0, np.int64)
    while len(got) < count:
        need = count - len(got)
        draw = rng.integers(lo, hi, int(need * 1.1) + 64, dtype=np.int64)
        got = np.union1d(got, draw)  # sorted unique
    # Subsample uniformly rather than keeping the smallest values of the sorted union.
    pick = rng.choice(len(got), count, replace=False) if len(got) > count else slice(None)
    return (got[pick] << (32 - length)).astype(np.uint32)
