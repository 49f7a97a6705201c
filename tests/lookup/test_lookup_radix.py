"""Tests for RadixTable, the reference trie, against independent brute-force oracles."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routebricks.lookup import NO_ROUTE, RadixTable, Route, RouteArrays, synthetic_table

MASKS = [int(ipaddress.IPv4Network(f"0.0.0.0/{n}").netmask) for n in range(33)]

Model = dict[tuple[int, int], tuple[int, int]]  # {(net, length): (gateway, port)}


def model_of(arrays: RouteArrays) -> Model:
    return {
        (n, ln): (g, p)
        for n, ln, g, p in zip(
            arrays.net.tolist(), arrays.length.tolist(), arrays.gateway.tolist(),
            arrays.port.tolist(), strict=True,
        )
    }


def oracle(model: Model, addrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(port, gateway) per address by brute force over lengths /32 down to /0."""
    port = np.full(len(addrs), -1, dtype=np.int64)
    gw = np.zeros(len(addrs), dtype=np.int64)
    resolved = np.zeros(len(addrs), dtype=bool)
    by_len: dict[int, list[tuple[int, int, int]]] = {}
    for (net, length), (g, p) in model.items():
        by_len.setdefault(length, []).append((net, g, p))
    for length in sorted(by_len, reverse=True):
        table = np.array(sorted(by_len[length]), dtype=np.int64)
        masked = addrs.astype(np.int64) & MASKS[length]
        pos = np.minimum(np.searchsorted(table[:, 0], masked), len(table) - 1)
        hit = (table[pos, 0] == masked) & ~resolved
        port[hit], gw[hit] = table[pos[hit], 2], table[pos[hit], 1]
        resolved |= hit
    return port, gw


def ipaddress_oracle(model: Model, addr: int) -> tuple[int, int]:
    best, result = -1, (-1, 0)
    a = ipaddress.IPv4Address(addr)
    for (net, length), (g, p) in model.items():
        if length > best and a in ipaddress.IPv4Network((net, length)):
            best, result = length, (p, g)
    return result


def edge_addresses(model: Model) -> np.ndarray:
    """First, last, one-before and one-past address of every route."""
    pts = []
    for net, length in model:
        last = net + (1 << (32 - length)) - 1
        pts += [net, last, net - 1, last + 1]
    arr = np.array(pts, dtype=np.int64)
    return arr[(arr >= 0) & (arr < 2**32)].astype(np.uint32)


def test_matches_oracle_on_1m_addresses() -> None:
    rng = np.random.default_rng(12)
    arrays = RouteArrays.concat([
        synthetic_table(256 * 1024, seed=21, nports=10, default_route=True, ngateways=5),
        RouteArrays.from_routes([Route(0, 32, 0, 1), Route(0xFFFFFFFF, 32, 0, 2),
                                 Route(0xFFFFFFFE, 31, 0, 3), Route(0, 1, 0, 4)]),
    ])
    model = model_of(arrays)
    table = RadixTable(arrays, node_capacity=64)  # forces many regrowths during load
    assert len(table) == len(model)
    nets = arrays.net.astype(np.int64)
    inside = nets + (rng.random(len(nets)) * (2.0 ** (32 - arrays.length))).astype(np.int64)
    addrs = np.concatenate([
        rng.integers(0, 2**32, 1_000_000 - len(inside) // 2),
        inside[rng.permutation(len(inside))[: len(inside) // 2]],
        edge_addresses({k: v for k, v in model.items() if k[1] > 24}),
    ]).astype(np.uint32)
    nh = table.lookup(addrs)
    want_port, want_gw = oracle(model, addrs)
    assert (table.nh_port[nh] == want_port).all()
    assert (table.nh_gw[nh] == want_gw).all()
    for i in rng.integers(0, len(addrs), 500).tolist():
        assert table.lookup_one(int(addrs[i])) == nh[i]
    assert model_of(table.to_arrays()) == model


def test_api_and_pruning() -> None:
    t = RadixTable(node_capacity=1)
    ip = lambda s: int(ipaddress.IPv4Address(s))  # noqa: E731
    routes = [Route(0, 0, 0, 1), Route(ip("10.0.0.0"), 8, 0, 2),
              Route(ip("10.1.2.128"), 25, ip("10.0.0.1"), 3), Route(ip("10.1.2.129"), 32, 0, 4)]
    for r in routes:
        t.add(r)
    assert len(t) == 4
    assert list(t.routes()) == routes
    assert t.nh_port[t.lookup_one("10.1.2.129")] == 4
    assert t.nh_port[t.lookup_one("10.1.2.130")] == 3
    assert t.nh_gw[t.lookup_one("10.1.2.130")] == ip("10.0.0.1")
    assert t.nh_port[t.lookup_one("10.1.2.1")] == 2
    assert t.nh_port[t.lookup_one("11.0.0.0")] == 1
    with pytest.raises(ValueError):
        t.add(Route(ip("10.0.0.0"), 8, 0, 9))
    assert t.set(Route(ip("10.0.0.0"), 8, 0, 9)) == Route(ip("10.0.0.0"), 8, 0, 2)
    assert t.get(ip("10.0.0.0"), 8) == Route(ip("10.0.0.0"), 8, 0, 9)
    assert t.get(ip("10.0.0.0"), 9) is None and (ip("10.0.0.0"), 9) not in t
    with pytest.raises(KeyError):
        t.remove(ip("10.0.0.0"), 9)  # a trie node exists there, but no route
    with pytest.raises(KeyError):
        t.remove(ip("12.0.0.0"), 8)
    assert t.remove(ip("10.1.2.129"), 32) == routes[3]
    assert t.nh_port[t.lookup_one("10.1.2.129")] == 3
    nodes_before = t.n_nodes
    t.remove(ip("10.1.2.128"), 25)
    assert t.n_nodes == nodes_before - 17  # the /25 branch below 10/8 is pruned
    t.remove(ip("10.0.0.0"), 8)
    t.remove(0, 0)
    assert len(t) == 0 and t.n_nodes == 1
    assert t.lookup_one(ip("10.1.2.129")) == NO_ROUTE
    t.add(Route(ip("192.168.0.0"), 16, 0, 5))  # recycled nodes work
    assert t.nh_port[t.lookup_one("192.168.3.4")] == 5
    t.flush()
    assert len(t) == 0 and t.n_nodes == 1 and t.lookup_one(ip("192.168.3.4")) == NO_ROUTE
    with pytest.raises(ValueError):
        t.lookup_one(-1)


@st.composite
def small_routes(draw: st.DrawFn) -> Route:
    base = draw(st.sampled_from([0, 0x0A000000, 0x0A0102FF, 0xFFFFFFFF]))
    addr = base ^ draw(st.integers(0, 0xFFF))
    length = draw(st.integers(0, 32))
    return Route(addr & MASKS[length], length, draw(st.sampled_from([0, 7])),
                 draw(st.integers(0, 4)))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), small_routes()), max_size=50),
       st.lists(st.integers(0, 2**32 - 1), max_size=10))
def test_random_operations_vs_ipaddress_oracle(
    ops: list[tuple[int, Route]], extra: list[int]
) -> None:
    table = RadixTable(node_capacity=40)
    model: Model = {}
    for op, r in ops:
        key = (r.prefix, r.length)
        if op == 0:
            if key in model:
                with pytest.raises(ValueError):
                    table.add(r)
            else:
                table.add(r)
                model[key] = (r.gateway, r.port)
        elif op == 1:
            old = table.set(r)
            assert old == (Route(*key, *model[key]) if key in model else None)
            model[key] = (r.gateway, r.port)
        elif key in model:
            assert table.remove(*key) == Route(*key, *model.pop(key))
        else:
            with pytest.raises(KeyError):
                table.remove(*key)
    addrs = np.concatenate([edge_addresses(model), np.array(extra, dtype=np.uint32)])
    want = [ipaddress_oracle(model, int(a)) for a in addrs]
    nh = table.lookup(addrs)
    assert list(zip(table.nh_port[nh].tolist(), table.nh_gw[nh].tolist(), strict=True)) == want
    assert [table.lookup_one(int(a)) for a in addrs] == nh.tolist()
    assert sorted(table.routes()) == sorted(Route(*k, *v) for k, v in model.items())
    for key in list(model):
        table.remove(*key)
    assert table.n_nodes == 1 and len(table) == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(small_routes(), max_size=40))
def test_bulk_load_equals_incremental(routes: list[Route]) -> None:
    bulk = RadixTable(routes)
    incr = RadixTable()
    for r in routes:
        incr.set(r)  # last duplicate wins, as in load
    assert list(bulk.routes()) == list(incr.routes())
    assert bulk.n_nodes == incr.n_nodes
    addrs = edge_addresses({(r.prefix, r.length): (0, 0) for r in routes})
    a, b = bulk.lookup(addrs), incr.lookup(addrs)
    assert (bulk.nh_port[a] == incr.nh_port[b]).all() and (bulk.nh_gw[a] == incr.nh_gw[b]).all()
