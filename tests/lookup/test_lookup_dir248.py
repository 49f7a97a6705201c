"""Tests for Dir248Table against an independent brute-force oracle and the radix trie.

The oracles here share no code with the tables: the numpy oracle matches addresses
against each prefix length's route set from /32 down (masks from ``ipaddress``), and the
small-table oracle is plain ``ipaddress`` containment.
"""

from __future__ import annotations

import ipaddress
import os
import time
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routebricks.lookup import (
    NO_ROUTE,
    Dir248Table,
    Dir248View,
    RadixTable,
    Route,
    RouteArrays,
    load_ipasn,
    synthetic_table,
)

IPASN_NAME = "ipasn_20080501_v12.dat.gz"
MASKS = [int(ipaddress.IPv4Network(f"0.0.0.0/{n}").netmask) for n in range(33)]

# A route set as the oracle sees it: {(net, length): (gateway, port)}.
Model = dict[tuple[int, int], tuple[int, int]]
Big = tuple[RouteArrays, Model, Dir248Table]


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


def model_of(arrays: RouteArrays) -> Model:
    """Route dict of an (already canonical) RouteArrays; last duplicate wins."""
    return {
        (n, ln): (g, p)
        for n, ln, g, p in zip(
            arrays.net.tolist(), arrays.length.tolist(), arrays.gateway.tolist(),
            arrays.port.tolist(), strict=True,
        )
    }


def oracle(model: Model, addrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(port, gateway) of the longest matching route per address; port -1 if none.

    Brute force by length, longest first: an address resolves at the first length where
    its masked value is one of that length's networks (binary search in a sorted array).
    """
    port = np.full(len(addrs), -1, dtype=np.int64)
    gw = np.zeros(len(addrs), dtype=np.int64)
    todo = np.arange(len(addrs))
    by_len: dict[int, list[tuple[int, int, int]]] = {}
    for (net, length), (g, p) in model.items():
        by_len.setdefault(length, []).append((net, g, p))
    for length in range(32, -1, -1):
        if length not in by_len or not len(todo):
            continue
        entries = np.array(sorted(by_len[length]), dtype=np.int64).reshape(-1, 3)
        masked = addrs[todo].astype(np.int64) & MASKS[length]
        pos = np.minimum(np.searchsorted(entries[:, 0], masked), len(entries) - 1)
        hit = entries[pos, 0] == masked
        port[todo[hit]] = entries[pos[hit], 2]
        gw[todo[hit]] = entries[pos[hit], 1]
        todo = todo[~hit]
    return port, gw


def ipaddress_oracle(model: Model, addr: int) -> tuple[int, int]:
    """(port, gateway) for one address by scanning every route with ipaddress."""
    best, result = -1, (-1, 0)
    a = ipaddress.IPv4Address(addr)
    for (net, length), (g, p) in model.items():
        if length > best and a in ipaddress.IPv4Network((net, length)):
            best, result = length, (p, g)
    return result


def probe_addresses(model: Model, n_random: int, rng: np.random.Generator) -> np.ndarray:
    """Random addresses plus, per route, its first/last address, one inside, one past."""
    nets = np.array([k[0] for k in model], dtype=np.int64)
    lens = np.array([k[1] for k in model], dtype=np.int64)
    size = np.int64(1) << (32 - lens)
    inside = nets + (rng.random(len(nets)) * size).astype(np.int64)
    parts = [rng.integers(0, 2**32, n_random), nets, nets + size - 1, inside, nets + size, nets - 1]
    all_ = np.concatenate(parts)
    return (all_[(all_ >= 0) & (all_ < 2**32)]).astype(np.uint32)


def assert_matches(table: Dir248Table | RadixTable, model: Model, addrs: np.ndarray) -> None:
    nh = table.lookup(addrs)
    want_port, want_gw = oracle(model, addrs)
    got_port, got_gw = table.nh_port[nh], table.nh_gw[nh]
    bad = np.flatnonzero((got_port != want_port) | (got_gw != want_gw))
    if bad.size:
        a = int(addrs[bad[0]])
        pytest.fail(
            f"{len(bad)} mismatches; first {ipaddress.IPv4Address(a)}: got port "
            f"{got_port[bad[0]]} gw {got_gw[bad[0]]}, want {want_port[bad[0]]} gw "
            f"{want_gw[bad[0]]} ({ipaddress_oracle(model, a)} by ipaddress)"
        )


def nested_routes(rng: np.random.Generator, n_chains: int) -> list[Route]:
    """Chains of prefixes of every length 0..32 around random addresses (max overlap)."""
    out = []
    for addr in rng.integers(0, 2**32, n_chains).tolist():
        for length in range(0, 33, 1 + int(rng.integers(0, 3))):
            out.append(Route(addr & MASKS[length], length, 0, int(rng.integers(0, 64))))
    out.append(Route(0xFFFFFFFF, 32, 0, 1))
    out.append(Route(0, 32, 0, 2))
    out.append(Route(0, 0, int(ipaddress.IPv4Address("192.0.2.1")), 3))
    return out


# --------------------------------------------------------------------------- big tables


@pytest.fixture(scope="module")
def big() -> Big:
    """A 256K-route synthetic table with /0, /32s and deliberately nested chains."""
    rng = np.random.default_rng(2024)
    base = synthetic_table(256 * 1024 - 2000, seed=11, nports=16, default_route=True,
                           ngateways=8)
    extra = RouteArrays.from_routes(nested_routes(rng, 100))
    arrays = RouteArrays.concat([base, extra])
    table = Dir248Table(arrays)
    return arrays, model_of(arrays), table


def test_big_table_matches_oracle_on_1m_addresses(big: Big) -> None:
    arrays, model, table = big
    assert len(table) == len(model) > 250_000
    assert {0, 32} <= set(arrays.length.tolist())
    rng = np.random.default_rng(5)
    # 1M addresses: 600K uniform, 400K inside routes (uniform ones rarely hit /25+).
    nets = np.array([k[0] for k in model], dtype=np.int64)
    lens = np.array([k[1] for k in model], dtype=np.int64)
    pick = rng.integers(0, len(nets), 300_000)
    longs = np.flatnonzero(lens > 24)
    pick = np.concatenate([pick, longs[rng.integers(0, len(longs), 100_000)]])
    inside = nets[pick] + (rng.random(len(pick)) * (np.int64(1) << (32 - lens[pick]))).astype(
        np.int64
    )
    addrs = np.concatenate([rng.integers(0, 2**32, 600_000), inside]).astype(np.uint32)
    assert len(addrs) == 1_000_000
    assert_matches(table, model, addrs)
    # The numpy lookup and the single-address lookup agree with the default one.
    nh = table.lookup(addrs)
    assert (table.lookup_numpy(addrs) == nh).all()
    for i in rng.integers(0, len(addrs), 300).tolist():
        assert table.lookup_one(int(addrs[i])) == nh[i]
        assert table.lookup_one(str(ipaddress.IPv4Address(int(addrs[i])))) == nh[i]


def test_big_table_route_set_roundtrip(big: Big) -> None:
    _, model, table = big
    assert model_of(table.to_arrays()) == model
    routes = list(table.routes())
    assert len(routes) == len(model)
    assert routes == sorted(routes, key=lambda r: (r.length, r.prefix))
    assert {(r.prefix, r.length): (r.gateway, r.port) for r in routes} == model


def exhaustive_agreement(model: Model, a: Dir248Table, b: RadixTable) -> None:
    """Compare two tables at every address that can differ.

    DIR-24-8 answers depend on the /24 block only, except in blocks holding routes longer
    than /24: so one address per /24 block plus all 256 of those blocks covers all 2**32
    addresses for the Dir248 side (and the trie, whose walk is the same within a block).
    """
    blocks = np.arange(1 << 24, dtype=np.uint32) << np.uint32(8)
    long_blocks = np.unique([net >> 8 for (net, length) in model if length > 24])
    dense = ((long_blocks.astype(np.uint32)[:, None] << 8) | np.arange(256, dtype=np.uint32))
    for addrs in (blocks, dense.ravel()):
        na, nb = a.lookup(addrs), b.lookup(addrs)
        assert (a.nh_port[na] == b.nh_port[nb]).all()
        assert (a.nh_gw[na] == b.nh_gw[nb]).all()


def test_dir248_and_radix_agree_everywhere_synthetic(big: Big) -> None:
    arrays, model, table = big
    radix = RadixTable(arrays)
    assert len(radix) == len(table)
    exhaustive_agreement(model, table, radix)


def test_real_table_matches_oracle_and_radix() -> None:
    path = data_file(IPASN_NAME)
    if path is None:
        pytest.skip(f"{IPASN_NAME} not found in $ROUTEBRICKS_DATA or <repo>/../shared/data")
    arrays = load_ipasn(path, nports=8, drop_bogus=False)  # keep the odd 10/8 /32s too
    model = model_of(arrays)
    table = Dir248Table(arrays)
    assert len(table) == len(model) == 270_849
    assert table.n_groups == len({net >> 8 for (net, length) in model if length > 24})
    rng = np.random.default_rng(9)
    assert_matches(table, model, probe_addresses(model, 300_000, rng))
    exhaustive_agreement(model, table, RadixTable(arrays))


def test_bulk_build_1m_is_fast() -> None:
    arrays = synthetic_table(1_000_000, seed=3, default_route=True)
    table = Dir248Table()
    t0 = time.perf_counter()
    table.load(arrays)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10.0, f"1M-route bulk build took {elapsed:.2f} s"  # ~0.5 s normally
    assert len(table) == 1_000_000
    rng = np.random.default_rng(0)
    sample = arrays.take(rng.integers(0, len(arrays), 20_000))
    addrs = (sample.net + (rng.random(len(sample)) * (2.0 ** (32 - sample.length.astype(float))))
             .astype(np.uint64)).astype(np.uint32)
    assert_matches(table, model_of(arrays), np.concatenate([addrs, sample.net]))


# --------------------------------------------------------------------------- updates


def hot_route(rng: np.random.Generator, nports: int = 6) -> Route:
    """A random route concentrated in a few /16s, so routes nest and share /24 blocks."""
    base = [0x0A000000, 0xC6336400, 0x01020000, 0xFFFF0000][int(rng.integers(0, 4))]
    length = int(rng.choice([0, 8, 12, 16, 20, 22, 23, 24, 25, 26, 28, 30, 31, 32]))
    addr = base | int(rng.integers(0, 1 << 16))
    gw = int(rng.choice([0, 0x0A0000FE, 0x0A0000FD]))
    return Route(addr & MASKS[length], length, gw, int(rng.integers(0, nports)))


def test_interleaved_adds_removes_sets_match_oracle_and_radix() -> None:
    rng = np.random.default_rng(77)
    start = RouteArrays.concat(
        [synthetic_table(3000, seed=5, nports=6), RouteArrays.from_routes(nested_routes(rng, 5))]
    )
    model = model_of(start)
    d248, radix = Dir248Table(start, group_capacity=2), RadixTable(start, node_capacity=40)
    probes_random = rng.integers(0, 2**32, 20_000).astype(np.uint32)
    for step in range(4000):
        op = rng.random()
        if op < 0.45 or not model:
            r = hot_route(rng) if rng.random() < 0.8 else Route(
                int(rng.integers(0, 2**32)) & MASKS[24], 24, 0, 1
            )
            key = (r.prefix, r.length)
            if key in model:
                with pytest.raises(ValueError):
                    d248.add(r)
                with pytest.raises(ValueError):
                    radix.add(r)
                continue
            d248.add(r)
            radix.add(r)
            model[key] = (r.gateway, r.port)
        elif op < 0.85:
            keys = list(model)
            net, length = keys[int(rng.integers(0, len(keys)))]
            gw, port = model.pop((net, length))
            want = Route(net, length, gw, port)
            assert d248.remove(net, length) == want
            assert radix.remove(net, length) == want
        else:
            keys = list(model)
            net, length = keys[int(rng.integers(0, len(keys)))]
            new = Route(net, length, int(rng.choice([0, 0x0A0000FE])), int(rng.integers(0, 6)))
            old = Route(net, length, *model[(net, length)])
            assert d248.set(new) == old
            assert radix.set(new) == old
            model[(net, length)] = (new.gateway, new.port)
        if step % 500 == 499:
            addrs = np.concatenate([probes_random, probe_addresses(model, 0, rng)])
            assert len(d248) == len(radix) == len(model)
            assert_matches(d248, model, addrs)
            assert_matches(radix, model, addrs)
    # Removing everything leaves empty, consistent tables (no leaked groups or nodes).
    for net, length in list(model):
        d248.remove(net, length)
        radix.remove(net, length)
    assert len(d248) == len(radix) == 0
    assert d248.n_groups == 0 and radix.n_nodes == 1
    assert not d248.tbl24.any()
    assert (d248.nh_port[1:] == -1).all() and (radix.nh_port[1:] == -1).all()
    assert (d248.lookup(probes_random) == NO_ROUTE).all()
    assert (radix.lookup(probes_random) == NO_ROUTE).all()


def test_remove_restores_covering_routes_and_collapses_groups() -> None:
    t = Dir248Table()
    ip = lambda s: int(ipaddress.IPv4Address(s))  # noqa: E731
    chain = [Route(0, 0, 0, 1), Route(ip("10.0.0.0"), 8, 0, 2),
             Route(ip("10.1.2.0"), 24, 0, 3), Route(ip("10.1.2.128"), 25, 0, 4),
             Route(ip("10.1.2.129"), 32, 0, 5)]
    for r in chain:
        t.add(r)
    assert t.n_groups == 1
    a = ip("10.1.2.129")
    assert t.nh_port[t.lookup_one(a)] == 5
    for r, want in zip(reversed(chain), (4, 3, 2, 1, -1), strict=True):
        t.remove(r.prefix, r.length)
        assert t.nh_port[t.lookup_one(a)] == want
        # The last route longer than /24 gone: group freed, pointer collapsed.
        assert t.n_groups == (1 if r.length == 32 else 0)
    # Removing a shorter route below a group rewrites the group's background slots.
    t.add(Route(ip("10.1.2.0"), 24, 0, 7))
    t.add(Route(ip("10.1.2.0"), 26, 0, 8))
    t.add(Route(ip("10.0.0.0"), 8, 0, 9))
    t.remove(ip("10.1.2.0"), 24)
    assert t.nh_port[t.lookup_one("10.1.2.200")] == 9
    assert t.nh_port[t.lookup_one("10.1.2.1")] == 8
    t.add(Route(ip("10.1.0.0"), 16, 0, 10))
    assert t.nh_port[t.lookup_one("10.1.2.200")] == 10
    t.remove(ip("10.0.0.0"), 8)
    assert t.nh_port[t.lookup_one("10.1.2.200")] == 10
    t.remove(ip("10.1.0.0"), 16)
    assert t.nh_port[t.lookup_one("10.1.2.200")] == -1
    assert t.nh_port[t.lookup_one("10.1.2.1")] == 8


def test_api_errors_and_flush() -> None:
    t = Dir248Table([Route(0x0A000000, 8, 0, 1)])
    with pytest.raises(ValueError):
        t.add(Route(0x0A000000, 8, 0, 2))
    with pytest.raises(KeyError):
        t.remove(0x0B000000, 8)
    assert t.remove(0x0A123456, 8) == Route(0x0A000000, 8, 0, 1)  # host bits ignored
    assert t.set(Route(0, 0, 0, 4)) is None
    assert t.set(Route(0, 0, 7, 5)) == Route(0, 0, 0, 4)
    assert t.get(0, 0) == Route(0, 0, 7, 5) and t.get(0, 1) is None
    assert (0, 0) in t and (0, 1) not in t
    with pytest.raises(ValueError):
        t.lookup_one(2**32)
    with pytest.raises(TypeError):
        t.lookup(np.zeros(3, dtype=float))
    with pytest.raises(ValueError):
        t.lookup(np.array([-1]))
    with pytest.raises(ValueError):
        t.lookup(np.zeros((2, 2), dtype=np.uint32))
    assert t.lookup([1, 2]).tolist() == [t.lookup_one(1)] * 2
    out = np.empty(4, np.uint32)
    assert t.lookup(np.arange(4, dtype=np.uint32), out=out) is out
    t.add(Route(0x01020300, 30, 0, 6))
    t.flush()
    assert len(t) == 0 and t.n_groups == 0 and not t.tbl24.any()
    assert (t.lookup(np.arange(10_000, dtype=np.uint32) * 429_497) == NO_ROUTE).all()


def test_unbounded_second_level_groups() -> None:
    # More groups than a uint16/15-bit pointer could address (Click's limit is 2**15).
    rng = np.random.default_rng(4)
    blocks = rng.choice(1 << 24, 70_000, replace=False).astype(np.uint32)
    arrays = RouteArrays(
        (blocks << 8) | np.uint32(0x80), np.full(len(blocks), 25), np.arange(len(blocks)) % 7, 0
    )
    bulk = Dir248Table(arrays)
    assert bulk.n_groups == 70_000
    model = model_of(arrays)
    addrs = np.concatenate([(blocks << 8) | 0x81, (blocks << 8) | 0x7F]).astype(np.uint32)
    assert_matches(bulk, model, addrs)
    incremental = Dir248Table(group_capacity=1)
    for r in arrays.to_routes()[:3000]:
        incremental.add(r)
    assert incremental.n_groups == 3000
    assert_matches(incremental, model_of(arrays.take(slice(0, 3000))), addrs)


def test_pack_into_buffer_and_shared_memory() -> None:
    rng = np.random.default_rng(8)
    arrays = RouteArrays.concat(
        [synthetic_table(20_000, seed=8, ngateways=3),
         RouteArrays.from_routes(nested_routes(rng, 3))]
    )
    table = Dir248Table(arrays)
    addrs = probe_addresses(model_of(arrays), 50_000, rng)
    want = table.lookup(addrs)
    buf = bytearray(table.packed_size())
    view = table.pack_into(buf)
    assert (view.lookup(addrs) == want).all()
    shm = shared_memory.SharedMemory(create=True, size=table.packed_size())
    try:
        table.pack_into(shm.buf)
        attached = shared_memory.SharedMemory(name=shm.name)
        try:
            v = Dir248View.from_buffer(attached.buf)
            got = v.lookup(addrs)
            assert (got == want).all()
            assert (v.nh_port[got] == table.nh_port[want]).all()
            assert (v.nh_gw[got] == table.nh_gw[want]).all()
            assert v.lookup_one(int(addrs[0])) == want[0]
            del v, got
        finally:
            attached.close()
    finally:
        shm.close()
        shm.unlink()
    with pytest.raises(ValueError):
        Dir248View.from_buffer(bytearray(table.packed_size()))
    with pytest.raises(ValueError):
        table.pack_into(bytearray(100))
    assert (table.view().lookup(addrs) == want).all()
    inplace = addrs.copy()
    assert (table.lookup(inplace, out=inplace) == want).all()
    empty = Dir248Table()
    ev = empty.pack_into(bytearray(empty.packed_size()))
    assert len(ev.tbl8) == 0 and (ev.lookup(addrs) == NO_ROUTE).all()
    assert ev.nh_port.tolist() == [-1]


# --------------------------------------------------------------------------- hypothesis


@st.composite
def small_routes(draw: st.DrawFn) -> Route:
    """Routes clustered around a few addresses so they overlap (and hit the edges)."""
    base = draw(st.sampled_from([0, 0x0A000000, 0x0A0102FF, 0xFFFFFFFF, 0xC0A80180]))
    addr = base ^ draw(st.integers(0, 0x3FF))
    length = draw(st.integers(0, 32))
    return Route(addr & MASKS[length], length, draw(st.sampled_from([0, 1, 0xC0000201])),
                 draw(st.integers(0, 5)))


@settings(max_examples=60, deadline=None)
@given(st.lists(small_routes(), max_size=25), st.lists(st.integers(0, 2**32 - 1), max_size=20))
def test_small_tables_vs_ipaddress_oracle(routes: list[Route], extra: list[int]) -> None:
    model: Model = {(r.prefix, r.length): (r.gateway, r.port) for r in routes}
    bulk = Dir248Table(routes)
    incr = Dir248Table()
    for r in routes:
        incr.set(r)
    addrs = np.concatenate(
        [probe_addresses(model, 0, np.random.default_rng(0)), np.array(extra, np.int64),
         np.array([0, 2**32 - 1, 0x0A0102FF, 0x0A010300], np.int64)]
    ).astype(np.uint32)
    want = [ipaddress_oracle(model, int(a)) for a in addrs]
    for table in (bulk, incr):
        nh = table.lookup(addrs)
        got = list(zip(table.nh_port[nh].tolist(), table.nh_gw[nh].tolist(), strict=True))
        assert got == want
    assert sorted(bulk.routes()) == sorted(Route(n, ln, g, p) for (n, ln), (g, p) in model.items())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), small_routes()), max_size=40))
def test_random_add_remove_sequences_vs_oracle(ops: list[tuple[bool, Route]]) -> None:
    table = Dir248Table(group_capacity=1)
    model: Model = {}
    for is_add, r in ops:
        key = (r.prefix, r.length)
        if is_add:
            table.set(r)
            model[key] = (r.gateway, r.port)
        elif key in model:
            table.remove(*key)
            del model[key]
        else:
            with pytest.raises(KeyError):
                table.remove(*key)
    addrs = probe_addresses(model, 10, np.random.default_rng(1))
    nh = table.lookup(addrs)
    got = list(zip(table.nh_port[nh].tolist(), table.nh_gw[nh].tolist(), strict=True))
    assert got == [ipaddress_oracle(model, int(a)) for a in addrs]
    for key in list(model):
        table.remove(*key)
    assert table.n_groups == 0 and not table.tbl24.any()
