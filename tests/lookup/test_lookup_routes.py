"""Tests for routebricks.lookup.routes: route text format, ipasn loader, synthetic tables."""

from __future__ import annotations

import gzip
import ipaddress
import os
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routebricks.lookup import (
    BOGONS,
    NO_ROUTE,
    NextHops,
    Route,
    RouteArrays,
    RouteError,
    format_route,
    int_to_ip,
    ip_to_int,
    load_ipasn,
    load_routes,
    parse_route,
    parse_routes,
    synthetic_table,
    unparse_routes,
)

IPASN_NAME = "ipasn_20080501_v12.dat.gz"


def data_file(name: str) -> Path | None:
    """Locate a shared data file: $ROUTEBRICKS_DATA, else <repo>/../shared/data."""
    dirs = []
    if os.environ.get("ROUTEBRICKS_DATA"):
        dirs.append(Path(os.environ["ROUTEBRICKS_DATA"]))
    dirs.append(Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
    for d in dirs:
        if (d / name).is_file():
            return d / name
    return None


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.0/8 1", Route(ip("10.0.0.0"), 8, 0, 1)),
        ("10.0.0.0/255.0.0.0 1", Route(ip("10.0.0.0"), 8, 0, 1)),
        ("10.0.0.0 255.0.0.0 1", Route(ip("10.0.0.0"), 8, 0, 1)),
        ("10.0.0.0 255.0.0.0 18.26.4.1 1", Route(ip("10.0.0.0"), 8, ip("18.26.4.1"), 1)),
        ("18.26.4.0/24 18.26.4.1 2", Route(ip("18.26.4.0"), 24, ip("18.26.4.1"), 2)),
        ("18.26.4.0/24 - 2", Route(ip("18.26.4.0"), 24, 0, 2)),
        ("18.26.4.0/24 0.0.0.0 2", Route(ip("18.26.4.0"), 24, 0, 2)),
        ("0.0.0.0/0 18.26.4.1 0", Route(0, 0, ip("18.26.4.1"), 0)),
        ("0/0 0", None),  # partial dotted quads are not accepted
        ("1.2.3.4 7", Route(ip("1.2.3.4"), 32, 0, 7)),
        ("1.2.3.4 5.6.7.8 7", Route(ip("1.2.3.4"), 32, ip("5.6.7.8"), 7)),
        ("10.1.2.3/8 1", Route(ip("10.0.0.0"), 8, 0, 1)),  # host bits masked, as Click
        ("  255.255.255.255/32\t4294967 ", Route(0xFFFFFFFF, 32, 0, 4294967)),
        ("10.0.0.0/0.0.0.0 3", Route(0, 0, 0, 3)),
    ],
)
def test_parse_route_forms(text: str, expected: Route | None) -> None:
    if expected is None:
        with pytest.raises(RouteError):
            parse_route(text)
    else:
        assert parse_route(text) == expected


def test_parse_routes_separators_and_comments() -> None:
    text = """
    # a comment line
    10.0.0.0/8 1, 11.0.0.0/8 2   // trailing comment, with a comma
    // another comment
    0.0.0.0/0 18.26.4.1 0 # default

    12.0.0.0/8 3,
    """
    assert parse_routes(text) == [
        Route(ip("10.0.0.0"), 8, 0, 1),
        Route(ip("11.0.0.0"), 8, 0, 2),
        Route(0, 0, ip("18.26.4.1"), 0),
        Route(ip("12.0.0.0"), 8, 0, 3),
    ]
    assert parse_routes("10.0.0.0/8 1, 0.0.0.0/0 18.26.4.1 0") == [
        Route(ip("10.0.0.0"), 8, 0, 1),
        Route(0, 0, ip("18.26.4.1"), 0),
    ]
    assert parse_routes("") == []
    assert parse_routes("# only\n\n , ,") == []


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("10.0.0.0/33 1", "prefix length"),
        ("10.0.0.256/8 1", "bad address"),
        ("10.0/24 1", "bad address"),
        ("10.0.0.0/8", "missing output port"),
        ("10.0.0.0/8 x", "bad port"),
        ("10.0.0.0/8 -1", "bad port"),
        ("10.0.0.0/8 99999999999", "bad port"),
        ("10.0.0.0/8 1.2.3.4 5 6", "too many words"),
        ("10.0.0.0/8 1.2.3 5", "bad gateway"),
        ("10.0.0.0/255.0.255.0 1", "not contiguous"),
        ("10.0.0.0/8x 1", "prefix length"),
        ("hello", "bad address"),
    ],
)
def test_bad_route_names_line_text_and_expectation(bad: str, needle: str) -> None:
    text = f"10.0.0.0/8 1\n# comment\n\n{bad}\n11.0.0.0/8 2\n"
    with pytest.raises(RouteError) as exc:
        parse_routes(text, filename="table.conf")
    msg = str(exc.value)
    assert exc.value.lineno == 4
    assert "table.conf" in msg and "line 4" in msg
    assert repr(bad) in msg
    assert needle in msg
    assert "expected ADDR/LEN [GATEWAY] PORT" in msg
    assert isinstance(exc.value, ValueError)


def test_bad_route_in_file(tmp_path: Path) -> None:
    path = tmp_path / "routes.txt"
    path.write_text("0.0.0.0/0 1\n10.0.0.0/8 1, 10.1.0.0/16 oops\n")
    with pytest.raises(RouteError, match=r"routes\.txt, line 2: bad port 'oops'"):
        load_routes(path)
    path.write_text("0.0.0.0/0 1\n10.0.0.0/8 1, 10.1.0.0/16 2\n")
    assert len(load_routes(path)) == 3
    gz = tmp_path / "routes.txt.gz"
    with gzip.open(gz, "wt") as f:
        f.write("1.2.3.0/24 4\n")
    assert load_routes(gz) == [Route(ip("1.2.3.0"), 24, 0, 4)]


def test_route_validation() -> None:
    with pytest.raises(ValueError):
        Route(ip("10.0.0.1"), 8, 0, 1)  # host bits set
    with pytest.raises(ValueError):
        Route(0, 33, 0, 1)
    with pytest.raises(ValueError):
        Route(0, 0, 0, -1)
    with pytest.raises(ValueError):
        Route(0, 0, 2**32, 1)
    r = Route(ip("10.0.0.0"), 8, ip("1.1.1.1"), 3)
    assert str(r) == format_route(r) == "10.0.0.0/8 1.1.1.1 3"
    assert r.contains(ip("10.255.0.1")) and not r.contains(ip("11.0.0.0"))


def test_ip_helpers_match_ipaddress() -> None:
    rng = np.random.default_rng(0)
    for value in [0, 0xFFFFFFFF, *rng.integers(0, 2**32, 200).tolist()]:
        text = str(ipaddress.IPv4Address(value))
        assert ip_to_int(text) == value
        assert int_to_ip(value) == text
    for bad in ["1.2.3", "1.2.3.4.5", "256.1.1.1", "a.b.c.d", "1.2.3.4 ", "١.2.3.4"]:
        with pytest.raises(ValueError):
            ip_to_int(bad)


# --------------------------------------------------------------------------- hypothesis


@st.composite
def routes_st(draw: st.DrawFn) -> Route:
    length = draw(st.integers(0, 32))
    addr = draw(st.integers(0, 2**32 - 1))
    mask = int(ipaddress.IPv4Network(f"0.0.0.0/{length}").netmask)
    gateway = draw(st.one_of(st.just(0), st.integers(1, 2**32 - 1)))
    port = draw(st.integers(0, 2**31 - 1))
    return Route(addr & mask, length, gateway, port)


@settings(max_examples=200, deadline=None)
@given(st.lists(routes_st(), max_size=30), st.sampled_from(["\n", ", ", ",", "\n\n"]))
def test_parse_unparse_roundtrip(routes: list[Route], sep: str) -> None:
    text = unparse_routes(routes, sep=sep)
    assert parse_routes(text) == routes
    # Comments and blank lines in between change nothing.
    noisy = "# header\n" + "\n".join(f"{format_route(r)}  // c{i}" for i, r in enumerate(routes))
    assert parse_routes(noisy + "\n\n") == routes


@settings(max_examples=200, deadline=None)
@given(routes_st())
def test_dotted_mask_forms_agree(route: Route) -> None:
    mask = str(ipaddress.IPv4Network(f"0.0.0.0/{route.length}").netmask)
    net = int_to_ip(route.prefix)
    gw = int_to_ip(route.gateway) if route.gateway else "-"
    assert parse_route(f"{net}/{mask} {gw} {route.port}") == route
    assert parse_route(f"{net} {mask} {gw} {route.port}") == route


# --------------------------------------------------------------------------- arrays & next hops


def test_route_arrays_roundtrip_and_validation() -> None:
    routes = [Route(ip("10.0.0.0"), 8, 0, 1), Route(0, 0, ip("1.2.3.4"), 2)]
    arrays = RouteArrays.from_routes(routes)
    assert len(arrays) == 2
    assert arrays.to_routes() == routes
    assert RouteArrays(arrays.net, arrays.length, arrays.port, 0).gateway.tolist() == [0, 0]
    with pytest.raises(ValueError):
        RouteArrays(np.zeros(2), np.zeros(3), np.zeros(2), 0)
    with pytest.raises(ValueError):
        RouteArrays(np.zeros(1), np.array([33]), np.zeros(1), 0)


def test_next_hops_interning_and_recycling() -> None:
    nh = NextHops(capacity=2)
    assert nh.port.tolist() == [-1] and len(nh) == 1
    a = nh.intern(0, 5)
    b = nh.intern(ip("1.2.3.4"), 5)
    assert a != b and NO_ROUTE not in (a, b)
    assert nh.intern(0, 5) == a
    assert nh.get(b) == (ip("1.2.3.4"), 5)
    nh.release(a)
    assert nh.port[a] == 5  # one reference left
    nh.release(a)
    assert nh.port[a] == -1
    assert nh.intern(0, 9) == a  # recycled
    ids = nh.intern_many(np.array([0, 0, 7], np.uint32), np.array([9, 3, 3], np.int32))
    assert ids[0] == a and nh.port[ids].tolist() == [9, 3, 3]
    assert nh.gateway[ids].tolist() == [0, 0, 7]


# --------------------------------------------------------------------------- ipasn


def test_load_ipasn_small_file(tmp_path: Path) -> None:
    path = tmp_path / "t.dat.gz"
    with gzip.open(path, "wt") as f:
        f.write("; comment\n; CIDRs : 5\n1.0.0.0/24\t15169\n10.1.0.0/16\t3\n")
        f.write("224.0.0.0/4\t7\n8.8.8.0/24\t15169\n192.168.1.0/24\t9\n")
    kept = load_ipasn(path, nports=4)
    assert kept.to_routes() == [
        Route(ip("1.0.0.0"), 24, 0, 15169 % 4),
        Route(ip("8.8.8.0"), 24, 0, 15169 % 4),
    ]
    assert len(load_ipasn(path, nports=4, drop_bogus=False)) == 5


@pytest.mark.parametrize("bad", ["1.0.0.0/24", "1.0.0/24\t5", "1.0.0.0/33\t5", "1.0.0.0\t5",
                                 "1.0.0.300/24\t5", "1.0.0.0/24\tAS5"])
def test_load_ipasn_bad_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "bad.dat"
    path.write_text(f"; c\n1.0.0.0/24\t1\n{bad}\n2.0.0.0/8\t2\n")
    with pytest.raises(RouteError) as exc:
        load_ipasn(path)
    assert exc.value.lineno == 3
    assert "bad.dat" in str(exc.value) and "line 3" in str(exc.value)


def test_load_real_ipasn_table() -> None:
    path = data_file(IPASN_NAME)
    if path is None:
        pytest.skip(f"{IPASN_NAME} not found in $ROUTEBRICKS_DATA or <repo>/../shared/data")
    everything = load_ipasn(path, nports=8, drop_bogus=False)
    assert len(everything) == 270_849  # the file header says "CIDRs : 270849"
    kept = load_ipasn(path, nports=8)
    assert 270_000 < len(kept) < len(everything)
    # Nothing left inside a bogon block, checked with ipaddress independently.
    bogon_nets = [ipaddress.IPv4Network(f"{a}/{n}") for a, n, _ in BOGONS]
    dropped = set(map(tuple, np.stack([everything.net, everything.length], 1).tolist()))
    dropped -= set(map(tuple, np.stack([kept.net, kept.length], 1).tolist()))
    for net, length in dropped:
        n = ipaddress.IPv4Network((net, length))
        assert any(n.subnet_of(b) for b in bogon_nets) or length < 8
    sample = np.random.default_rng(1).choice(len(kept), 2000, replace=False)
    for net, length in zip(kept.net[sample].tolist(), kept.length[sample].tolist(), strict=True):
        n = ipaddress.IPv4Network((net, length))
        assert not any(n.subnet_of(b) for b in bogon_nets)
    assert kept.port.min() >= 0 and kept.port.max() < 8
    # Spot check a known line: "114.24.0.0/14\t3462".
    hit = (kept.net == ip("114.24.0.0")) & (kept.length == 14)
    assert kept.port[hit].tolist() == [3462 % 8]
    assert (kept.length > 24).mean() > 0.005  # the second DIR-24-8 level gets exercised


# --------------------------------------------------------------------------- synthetic


def test_synthetic_table_distribution_and_uniqueness() -> None:
    t0 = time.perf_counter()
    table = synthetic_table(1_000_000, seed=7, nports=12, default_route=True)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10.0, f"synthetic_table(1M) took {elapsed:.2f} s"  # ~0.5 s normally
    assert len(table) == 1_000_000
    key = (table.net.astype(np.uint64) << np.uint64(6)) | table.length
    assert len(np.unique(key)) == len(table)
    masks = np.array(
        [int(ipaddress.IPv4Network(f"0.0.0.0/{n}").netmask) for n in range(33)], np.uint32
    )
    assert (table.net & masks[table.length] == table.net).all()
    frac = np.bincount(table.length, minlength=33) / len(table)
    assert 0.55 <= frac[24] <= 0.60
    assert 0.30 <= frac[16:24].sum() <= 0.45
    assert frac[1:16].sum() < 0.02
    assert 0.005 <= frac[25:].sum() <= 0.02
    assert frac[32] > 0 and frac[0] == 1e-6
    assert table.port.min() == 0 and table.port.max() == 11


def test_synthetic_table_deterministic_and_gateways() -> None:
    a = synthetic_table(5000, seed=3, ngateways=4)
    b = synthetic_table(5000, seed=3, ngateways=4)
    assert all((getattr(a, f) == getattr(b, f)).all() for f in ("net", "length", "port", "gateway"))
    assert len(np.unique(a.gateway)) == 4 and (a.gateway != 0).all()
    c = synthetic_table(5000, seed=4)
    assert not (a.net == c.net).all()
    assert (c.gateway == 0).all()
    assert len(synthetic_table(0)) == 0
    assert synthetic_table(1, default_route=True).length.tolist() == [0]
