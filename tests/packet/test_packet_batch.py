"""PacketBatch: columns, selection without copying bytes, field access, room for headers."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from routebricks.packet.batch import PacketBatch

packets = st.lists(st.binary(min_size=8, max_size=200), min_size=1, max_size=40)


@given(packets)
def test_from_bytes_round_trips(pkts: list[bytes]) -> None:
    b = PacketBatch.from_bytes(pkts)
    assert len(b) == len(pkts)
    assert b.to_list() == pkts
    assert b.total_bytes() == sum(map(len, pkts))


@given(packets, st.data())
def test_select_and_split_share_the_pool(pkts: list[bytes], data: st.DataObject) -> None:
    b = PacketBatch.from_bytes(pkts)
    b.anno("paint")[:] = np.arange(len(pkts)) % 3
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=len(pkts),
                                       max_size=len(pkts))))
    s = b.select(mask)
    assert s.pool is b.pool  # no packet bytes copied
    assert s.to_list() == [p for p, m in zip(pkts, mask, strict=True) if m]
    parts = b.split(b.anno("paint").astype(np.int64), 3)
    for port, part in enumerate(parts):
        want = [p for i, p in enumerate(pkts) if i % 3 == port]
        assert (part.to_list() if part is not None else []) == want
        if part is not None:
            assert part.pool is b.pool
            assert (part.anno("paint") == port).all()


def test_split_many_ports_keeps_order() -> None:
    pkts = [bytes([i]) * 10 for i in range(50)]
    b = PacketBatch.from_bytes(pkts)
    port = np.array([i % 7 for i in range(50)])
    parts = b.split(port, 7)
    for p in range(7):
        assert parts[p] is not None
        assert parts[p].to_list() == pkts[p::7]


@given(st.lists(st.binary(min_size=8, max_size=64), min_size=1, max_size=20),
       st.integers(0, 4))
def test_field_accessors_match_struct(pkts: list[bytes], o: int) -> None:
    b = PacketBatch.from_bytes(pkts)
    assert list(b.u8(o)) == [p[o] for p in pkts]
    assert list(b.u16(o)) == [struct.unpack_from("!H", p, o)[0] for p in pkts]
    assert list(b.u32(o)) == [struct.unpack_from("!I", p, o)[0] for p in pkts]
    b.set_u16(o, np.arange(len(pkts), dtype=np.uint32) + 0x1234)
    assert [struct.unpack_from("!H", p, o)[0] for p in b.to_list()] == [
        0x1234 + i for i in range(len(pkts))]
    b.set_u32(o, 0xDEADBEEF)
    assert all(p[o:o + 4] == b"\xde\xad\xbe\xef" for p in b.to_list())


def test_headroom_lets_headers_be_prepended_without_copy() -> None:
    b = PacketBatch.from_bytes([b"payload-one", b"payload-two!"], headroom=20)
    pool = b.pool
    b.push_front(14)
    b.set_bytes(0, b"H" * 14)
    assert b.pool is pool
    assert b.to_list() == [b"H" * 14 + b"payload-one", b"H" * 14 + b"payload-two!"]
    assert b.headroom == 6
    b.pull_front(14)
    assert b.to_list() == [b"payload-one", b"payload-two!"]


def test_ensure_room_repacks_when_needed() -> None:
    b = PacketBatch.from_bytes([b"abc", b"defg"], headroom=2, tailroom=0)
    c = b.ensure_room(head=40, tail=30)
    assert c is not b and c.pool is not b.pool
    assert c.headroom >= 40 and c.tailroom >= 30
    c.push_front(40)
    c.put_back(30)
    assert [len(p) for p in c.to_list()] == [73, 74]
    assert b.ensure_room(1, 0) is b


def test_copy_is_independent() -> None:
    b = PacketBatch.from_bytes([b"x" * 20] * 3)
    c = b.copy()
    c.set_u8(0, 0x41)
    assert b.to_list() == [b"x" * 20] * 3
    assert c.to_list() == [b"A" + b"x" * 19] * 3


def test_concat_of_batches_from_different_pools() -> None:
    a = PacketBatch.from_bytes([b"a1", b"a2"])
    b = PacketBatch.from_bytes([b"b1"])
    a.anno("paint")[:] = 1
    c = PacketBatch.concat([a, b])
    assert c.to_list() == [b"a1", b"a2", b"b1"]
    assert list(c.anno("paint")) == [1, 1, 0]
    same = PacketBatch.concat([a.slice(0, 1), a.slice(1, 2)])
    assert same.pool is a.pool and same.to_list() == [b"a1", b"a2"]


def test_network_header_annotation_follows_repacking() -> None:
    b = PacketBatch.from_bytes([b"E" * 30, b"F" * 40])
    nh = b.anno("nh")
    assert (nh == -1).all()
    nh[:] = b.off + 14
    c = b.compact(headroom=100)
    assert list(c.anno("nh") - c.off) == [14, 14]
