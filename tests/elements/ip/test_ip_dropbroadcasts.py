"""DropBroadcasts: link-level broadcasts and multicasts, by the packet_type annotation."""

from __future__ import annotations

import pytest
from iptest_util import batch_of, build, drain, push
from scapy.all import IP, UDP, Ether

from routebricks.elements.ip.annotations import (
    PACKET_BROADCAST,
    PACKET_HOST,
    PACKET_MULTICAST,
    PACKET_OTHERHOST,
    PACKET_TYPE,
)


def frames(n: int) -> list[bytes]:
    return [bytes(Ether() / IP(id=i) / UDP()) for i in range(n)]


@pytest.mark.parametrize("with_port", [True, False])
def test_broadcasts_leave(with_port):
    tail = "d[1] -> bc :: Queue -> Discard;" if with_port else ""
    r = build("Idle -> d :: DropBroadcasts -> out :: Queue -> Discard;" + tail)
    fs = frames(4)
    b = batch_of(fs)
    b.anno(PACKET_TYPE)[:] = [PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST]
    push(r, "d", b)
    assert drain(r, "out").to_list() == [fs[0], fs[3]]
    d = r.find("d")
    assert d.read("drops") == "2"
    if with_port:
        assert drain(r, "bc").to_list() == fs[1:3]
    else:
        assert dict(d.drops) == {"link-level broadcast": 2}


def test_without_annotation_everything_passes():
    r = build("Idle -> d :: DropBroadcasts -> out :: Queue -> Discard;")
    push(r, "d", frames(3))
    assert len(drain(r, "out")) == 3
    assert r.find("d").GROUP == "standard"
