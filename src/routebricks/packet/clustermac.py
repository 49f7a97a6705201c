"""The RouteBricks cluster's destination MAC: where a frame leaves the cluster, in 46 bits.

The input server of a RouteBricks cluster reads a packet's headers once; everything the
servers after it need travels in the destination MAC address of the frame it sends over an
internal link (the paper's §6.1: "encodes the identity of the output node in the packet's
MAC address")::

    byte 0    bits 7..2: the output port on the output server (0..62); bits 1..0: 0b10
              (a locally administered unicast address)
    byte 1    the output server (0..255)
    bytes 2-5 the IPv4 address of the next hop beyond that port (the route's gateway, or
              the destination itself on an attached network)

So an intermediate server switches the frame by byte 1 alone, and the output server puts it
out of the encoded port to the encoded next hop (whose Ethernet address it resolves with its
own ARP table) without reading the IP header. Port 63 (byte 0 = ``0xFE``) is reserved: the
real MAC addresses of the cluster's internal interfaces use it, so a frame addressed to the
interface itself (a BFD packet, say) is never taken for a cluster frame.

Those 46 bits are all in use. A k-ary n-fly (:mod:`routebricks.cluster.nfly`) also needs
the *path*: the top-stage switch that VLB's first phase chose for the frame, which the
switches below it read on the way up. It travels in the frame's **source** address, whose
bytes 1-2 were always zero::

    byte 0    0xFE (an internal interface's byte 0: the source is never a cluster MAC)
    bytes 1-2 the path: 0 none (a full mesh: the destination names the next server), else
              1 + the top-stage switch (0..65534)
    byte 3    the output server (as byte 1 of the destination)
    bytes 4-5 0xFFFF (no internal interface has link number 0xFFFF)

so a mesh frame is byte for byte what it was, and a butterfly's switch still reads nothing
but the Ethernet header.
"""

from __future__ import annotations

import numpy as np

#: Output ports per server that a cluster MAC can name.
MAX_PORTS = 63
#: Servers a cluster MAC can name.
MAX_SERVERS = 256
#: Byte 0 of the internal interfaces' own MAC addresses (port 63: never a cluster frame).
INTERFACE_BYTE0 = 0xFE
#: Paths (top-stage switches of a k-ary n-fly) a cluster frame's source address can name.
MAX_PATHS = 65535
#: Where the path field (big-endian, 1 + the path; 0: none) sits in a frame: source
#: address bytes 1-2.
PATH_OFFSET = 7
#: The link number of the source addresses cluster frames carry (no interface has it).
SOURCE_LINK = 0xFFFF


def encode(server: int, port: int, next_hop: int) -> bytes:
    """The 6-byte cluster MAC for (output server, its port, next-hop IPv4 as an int)."""
    if not 0 <= server < MAX_SERVERS:
        raise ValueError(f"server {server} out of range 0..{MAX_SERVERS - 1}")
    if not 0 <= port < MAX_PORTS:
        raise ValueError(f"port {port} out of range 0..{MAX_PORTS - 1}")
    if not 0 <= next_hop <= 0xFFFFFFFF:
        raise ValueError(f"next hop {next_hop} is not an IPv4 address")
    return bytes([(port << 2) | 0x02, server]) + next_hop.to_bytes(4, "big")


def decode(mac: bytes) -> tuple[int, int, int] | None:
    """(server, port, next hop) of a cluster MAC; None if ``mac`` is not one."""
    if len(mac) != 6 or mac[0] & 0x03 != 0x02 or mac[0] == INTERFACE_BYTE0:
        return None
    return mac[1], mac[0] >> 2, int.from_bytes(mac[2:6], "big")


def encode_many(server: np.ndarray | int, port: np.ndarray | int,
                next_hop: np.ndarray) -> np.ndarray:
    """Vectorized :func:`encode`: a ``(n, 6)`` uint8 array (callers check ranges)."""
    nh = np.asarray(next_hop, dtype=np.uint32)
    out = np.empty((nh.shape[0], 6), np.uint8)
    out[:, 0] = (np.asarray(port, dtype=np.uint8) << 2) | 0x02
    out[:, 1] = np.asarray(server, dtype=np.uint8)
    out[:, 2:6] = nh.astype(">u4").view(np.uint8).reshape(-1, 4)
    return out


def interface_mac(server: int, link: int) -> str:
    """The MAC of server ``server``'s internal interface number ``link`` (byte 0 is
    :data:`INTERFACE_BYTE0`, so it is never read as a cluster MAC)."""
    if not 0 <= server < MAX_SERVERS or not 0 <= link < 65536:
        raise ValueError("server or link out of range")
    return f"fe:00:00:{server:02x}:{link >> 8:02x}:{link & 255:02x}"


def source(server: int, path: int | None = None) -> bytes:
    """The source address of a cluster frame for output server ``server``: without a path,
    ``interface_mac(server, SOURCE_LINK)`` (what every mesh frame carries); with one, the
    path in bytes 1-2."""
    if not 0 <= server < MAX_SERVERS:
        raise ValueError(f"server {server} out of range 0..{MAX_SERVERS - 1}")
    field = 0
    if path is not None:
        if not 0 <= path < MAX_PATHS:
            raise ValueError(f"path {path} out of range 0..{MAX_PATHS - 1}")
        field = path + 1
    return bytes([INTERFACE_BYTE0, field >> 8, field & 0xFF, server, 0xFF, 0xFF])


def decode_source(mac: bytes) -> tuple[int, int | None] | None:
    """(output server, path or None) of a cluster frame's source address; None if ``mac``
    is not one."""
    if len(mac) != 6 or mac[0] != INTERFACE_BYTE0 or mac[4:6] != b"\xff\xff":
        return None
    field = (mac[1] << 8) | mac[2]
    return mac[3], (field - 1 if field else None)


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)
