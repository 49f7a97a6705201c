"""IPv4 header layout and where to find the IP header of each packet in a batch.

As in Click, the IP header is found through the network-header annotation (``nh``: an
absolute pool offset, set by CheckIPHeader/MarkIPHeader); elements that run before any such
element see the IP header at the start of the packet data (after Strip(14)), or at the OFFSET
they are given.
"""

from __future__ import annotations

import ipaddress

import numpy as np

from routebricks.packet.batch import PacketBatch

# Field offsets within the IPv4 header (RFC 791).
IP_VHL = 0
IP_TOS = 1
IP_LEN = 2
IP_ID = 4
IP_OFF = 6  # flags (3 bits) + fragment offset (13 bits)
IP_TTL = 8
IP_P = 9
IP_SUM = 10
IP_SRC = 12
IP_DST = 16
IP_MIN_HLEN = 20

IP_DF = 0x4000
IP_MF = 0x2000
IP_OFFMASK = 0x1FFF

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ESP = 50

ETHERTYPE_IP = 0x0800
ETHERTYPE_ARP = 0x0806
ETH_HLEN = 14


def ip_positions(batch: PacketBatch, offset: int = 0) -> np.ndarray:
    """Absolute pool offset of each packet's IP header: the ``nh`` annotation where set,
    else the data start plus ``offset``."""
    nh = batch.anno_or_none("nh")
    base = batch.off + offset
    if nh is None:
        return base
    return np.where(nh >= 0, nh, base)


def mark_ip_header(batch: PacketBatch, pos: np.ndarray) -> None:
    """Set the network-header annotation (Click's ``set_ip_header``)."""
    batch.anno("nh")[:] = pos


def ip_to_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def int_to_ip(value: int) -> str:
    return str(ipaddress.IPv4Address(int(value)))
