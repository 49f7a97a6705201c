"""The packet-type helpers of elements.ip.annotations."""

from __future__ import annotations

from iptest_util import batch_of

from routebricks.elements.ip.annotations import (
    PACKET_BROADCAST,
    PACKET_HOST,
    PACKET_MULTICAST,
    ether_packet_types,
)


def test_packet_types_by_ethernet_destination() -> None:
    body = bytes.fromhex("020000000001") + b"\x08\x00" + bytes(20)
    frames = [
        bytes.fromhex("020000000002") + body,  # unicast
        b"\xff" * 6 + body,  # broadcast
        bytes.fromhex("01005e000001") + body,  # IPv4 multicast
        bytes.fromhex("333300000001") + body,  # IPv6 multicast
        bytes.fromhex("ffffffffff00") + body,  # a group address, not all ones
        b"\xff" * 5,  # too short to hold a destination: left HOST
    ]
    assert ether_packet_types(batch_of(frames)).tolist() == [
        PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_MULTICAST, PACKET_MULTICAST,
        PACKET_HOST,
    ]
    assert ether_packet_types(batch_of([])).tolist() == []
