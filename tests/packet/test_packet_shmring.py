"""PacketRing: a single-producer single-consumer ring of packets in shared memory — order,
wrap-around, room, annotations, and two real processes on either side of it."""

from __future__ import annotations

import multiprocessing as mp
import os
import struct
from collections import deque

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from routebricks.packet.batch import PacketBatch
from routebricks.packet.shmring import PacketRing


def numbered(first: int, n: int, size: int = 64) -> PacketBatch:
    """Packets first..first+n-1, each its number (8 bytes) padded to ``size``."""
    return PacketBatch.from_bytes([struct.pack("<Q", i).ljust(size, b"x")
                                   for i in range(first, first + n)])


def numbers(b: PacketBatch | None) -> list[int]:
    return [] if b is None else [struct.unpack_from("<Q", p)[0] for p in b.to_list()]


def test_order_and_varied_batch_sizes() -> None:
    ring = PacketRing(100)
    sent, got = 0, []
    for size in (1, 7, 33, 2, 50):
        assert ring.put(numbered(sent, size)) == size
        sent += size
        got += numbers(ring.get(5))
    while (b := ring.get(13)) is not None:
        got += numbers(b)
    assert got == list(range(sent))
    assert len(ring) == 0 and ring.written == ring.read == sent


def test_full_ring_takes_what_fits() -> None:
    ring = PacketRing(10)
    assert ring.put(numbered(0, 8)) == 8
    assert ring.put(numbered(8, 5)) == 2  # the first two: the caller drops the rest
    assert ring.put(numbered(13, 1)) == 0
    assert len(ring) == 10 and ring.room == 0 and ring.highwater == 10
    assert numbers(ring.get(100)) == list(range(10))
    assert ring.get(1) is None


def test_wrap_around_many_times() -> None:
    ring = PacketRing(7)
    sent, got = 0, []
    for k in range(200):
        n = ring.put(numbered(sent, 1 + k % 6, size=60 + k))
        sent += n
        got += numbers(ring.get(1 + k % 5))
    got += numbers(ring.get(100))
    assert got == list(range(sent)) and sent > 3 * 7


def test_packet_bytes_and_lengths_cross_exactly() -> None:
    rng = np.random.default_rng(1)
    pkts = [rng.integers(0, 256, int(n), np.uint8).tobytes()
            for n in rng.integers(0, 2048, 40)]
    pkts.append(b"y" * 2048)  # a full slot
    ring = PacketRing(16)
    out = []
    for i in range(0, len(pkts), 9):
        assert ring.put(PacketBatch.from_bytes(pkts[i:i + 9])) == len(pkts[i:i + 9])
        while (b := ring.get(4)) is not None:
            assert b.headroom >= 64 and b.tailroom >= 64  # room to add headers
            out += b.to_list()
    assert out == pkts


def test_too_long_for_a_slot_is_refused() -> None:
    ring = PacketRing(4, slot_size=128)
    with pytest.raises(ValueError, match="longer than the ring.s slots"):
        ring.put(PacketBatch.from_bytes([b"a" * 129]))
    assert len(ring) == 0


def test_annotations_cross() -> None:
    ring = PacketRing(8)
    a = PacketBatch.from_bytes([b"a" * 40, b"b" * 50])
    a.set_anno("paint", np.array([3, 4]))
    a.set_anno("timestamp", np.array([10**18, 2 * 10**18]))
    a.set_anno("dst_ip", np.array([0x0A000001, 0xC0A80101]))
    a.anno("nh")[:] = a.off + 14  # the network header, 14 bytes in
    a.set_anno("my_own", 7)  # never declared: does not cross
    b = PacketBatch.from_bytes([b"c" * 30])  # no annotations at all
    b.set_anno("paint", 9)
    assert ring.put(a) == 2 and ring.put(b) == 1
    out = ring.get(10)
    assert out is not None
    assert out.to_list() == [b"a" * 40, b"b" * 50, b"c" * 30]
    assert out.anno("paint").tolist() == [3, 4, 9]
    assert out.anno("paint").dtype == np.uint8
    assert out.anno("timestamp").tolist() == [10**18, 2 * 10**18, 0]
    assert out.anno("dst_ip").tolist() == [0x0A000001, 0xC0A80101, 0]
    # nh: the same place in each packet (absolute in the new pool), unset where absent
    assert (out.anno("nh")[:2] - out.off[:2]).tolist() == [14, 14]
    assert out.anno("nh")[2] == -1
    assert out.anno_or_none("my_own") is None
    assert out.anno_or_none("flow_hash") is None  # no batch carried it


def test_a_batch_without_annotations_comes_out_without() -> None:
    ring = PacketRing(4)
    ring.put(PacketBatch.from_bytes([b"q" * 20]))
    out = ring.get(4)
    assert out is not None and out.annos == {}


def test_claim_close_owner() -> None:
    ring = PacketRing(4)
    assert ring.owner == 0 and not ring.closed
    assert ring.claim() == os.getpid()
    assert ring.claim(os.getppid()) == os.getpid()  # this process is alive: it keeps it
    ring.close()
    assert ring.closed


def test_a_dead_producer_gives_the_ring_up() -> None:
    ring = PacketRing(4)
    ctx = mp.get_context("fork")
    p = ctx.Process(target=ring.claim)
    p.start()
    p.join()
    assert ring.owner == p.pid  # claimed in the child, seen here: shared memory
    assert ring.claim() == os.getpid()  # the child is gone


# ---------------------------------------------------------------------- a property
ops = st.lists(st.tuples(st.booleans(), st.integers(0, 40)), max_size=60)


@given(st.integers(1, 50), ops)
def test_any_pushes_and_pulls_keep_order_and_lose_only_what_is_counted(
        capacity: int, steps: list[tuple[bool, int]]) -> None:
    ring = PacketRing(capacity)
    model: deque[int] = deque()
    sent = refused = 0
    got: list[int] = []
    for is_put, n in steps:
        if is_put:
            k = ring.put(numbered(sent, n, size=9 + n))
            assert k == min(n, capacity - len(model))
            model.extend(range(sent, sent + k))
            refused += n - k
            sent += n
        else:
            out = numbers(ring.get(n)) if n else []
            assert out == [model.popleft() for _ in range(min(n, len(out)))]
            got += out
        assert len(ring) == len(model) <= capacity
    got += numbers(ring.get(capacity))
    # Every packet sent either came out, in order, or was refused (the caller's drop).
    assert len(got) + refused == sent
    assert got == sorted(got) and len(set(got)) == len(got)


# ---------------------------------------------------------------------- two processes
def _consume(ring: PacketRing, total: int, conn: object) -> None:
    got = 0
    bad = 0
    while got < total:
        b = ring.get(64)
        if b is None:
            continue
        seq = np.array(numbers(b))
        bad += int(np.count_nonzero(seq != np.arange(got, got + len(seq))))
        got += len(seq)
    conn.send((got, bad))  # type: ignore[attr-defined]


def test_two_processes_in_order_across_many_wraps() -> None:
    """A producer here, a consumer in a forked process, a ring of 64 slots wrapped ~1500
    times: every packet arrives, in order (the consumer checks each number)."""
    total = 100_000
    ring = PacketRing(64)
    ctx = mp.get_context("fork")
    here, there = ctx.Pipe()
    p = ctx.Process(target=_consume, args=(ring, total, there))
    p.start()
    try:
        sent = 0
        while sent < total:
            sent += ring.put(numbered(sent, min(50, total - sent)))
        assert here.poll(60), "the consumer did not finish"
        got, bad = here.recv()
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
    assert (got, bad) == (total, 0)
    assert ring.read == ring.written == total
