"""Frames and tables for the memory-to-memory experiments (and benchmarks/iprouting.py,
benchmarks/cluster_roles.py): route tables, route files, destinations and pcaps.

Everything here is vectorized numpy, so a million frames take well under a second to make.

Frames are Ethernet/IPv4/UDP.  A frame "of F bytes" is F bytes on the wire including the
4-byte FCS; the pcap holds the F - 4 bytes a capture would show (60 for a 64-byte frame,
1514 for a 1518-byte one), so the IPv4 total length is F - 18 (46 .. 1500, within a
1500-byte MTU).  IPv4 header checksums are computed vectorized and valid; UDP checksums
are 0 ("none", legal for UDP over IPv4); TTL is 64.
"""

from __future__ import annotations

__all__ = ["FCS", "IMIX_SIZES", "IMIX_WEIGHTS", "IPASN_NAME", "WIRE_OVERHEAD", "data_file",
           "destinations", "frame_sizes", "ip_header_checksums", "make_batch", "real_table",
           "synthetic_routes", "verify_with_scapy", "write_frames", "write_route_file"]

from pathlib import Path

import numpy as np

from routebricks.bench.core import IPASN_NAME, data_file
from routebricks.lookup import (
    Dir248Table,
    RouteArrays,
    bogus_mask,
    load_ipasn,
    synthetic_table,
)
from routebricks.packet.batch import DEFAULT_HEADROOM, DEFAULT_TAILROOM, POOL_GUARD, PacketBatch
from routebricks.packet.pcap import write_pcap

FCS = 4  # bytes of Ethernet FCS: part of the frame on the wire, not in the pcap
WIRE_OVERHEAD = 20  # preamble + SFD (8) and the minimum inter-frame gap (12), per frame

#: The synthetic Internet mix: 7:4:1 of 64/594/1518-byte frames (not a trace).
IMIX_SIZES = (64, 594, 1518)
IMIX_WEIGHTS = (7, 4, 1)

SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000101")
SRC_IP = (10 << 24) | 2  # 10.0.0.2: a host on the router's first interface subnet


def real_table(path: Path, nports: int) -> tuple[RouteArrays, int]:
    """The 2008 table with ports = origin AS % nports, bogus prefixes dropped; also returns
    how many prefixes were dropped as bogus."""
    everything = load_ipasn(path, nports=nports, drop_bogus=False)
    n_bogus = int(np.count_nonzero(bogus_mask(everything.net, everything.length)))
    return load_ipasn(path, nports=nports, drop_bogus=True), n_bogus


def synthetic_routes(n: int, nports: int) -> RouteArrays:
    """``routebricks.lookup.synthetic_table`` (no default route, no gateways), seed 1."""
    return synthetic_table(n, seed=1, nports=nports)


def write_route_file(routes: RouteArrays, path: Path) -> None:
    """One ``ADDR/LEN PORT`` line per route (the ROUTES file syntax of the IP lookups)."""
    net = routes.net
    octets = [((net >> s) & 255).tolist() for s in (24, 16, 8, 0)]
    lines = [
        f"{a}.{b}.{c}.{d}/{n} {p}"
        for a, b, c, d, n, p in zip(
            *octets, routes.length.tolist(), routes.port.tolist(), strict=True
        )
    ]
    path.write_text("\n".join(lines) + "\n")


def destinations(
    routes: RouteArrays, n: int, routed: bool, seed: int = 7
) -> tuple[np.ndarray, float]:
    """``n`` random IPv4 destinations and the fraction of IPv4 space the table routes.

    ``routed``: uniform over the routed address space (uniform 32-bit draws, kept when a
    longest-prefix match exists; so every packet has a route, and each prefix is hit in
    proportion to its size).  Otherwise uniform over all of IPv4 (unrouted ones are
    dropped by the lookup as "no route").
    """
    rng = np.random.default_rng(seed)
    table = Dir248Table(routes)
    probe = rng.integers(0, 2**32, 1 << 20, dtype=np.uint32)
    coverage = float(np.count_nonzero(table.lookup(probe))) / len(probe)
    if not routed:
        return rng.integers(0, 2**32, n, dtype=np.uint32), coverage
    parts, have = [], 0
    while have < n:
        draw = rng.integers(0, 2**32, int((n - have) / max(coverage, 0.01) * 1.1) + 1024,
                            dtype=np.uint32)
        hit = draw[table.lookup(draw) != 0]
        parts.append(hit)
        have += len(hit)
    return np.concatenate(parts)[:n], coverage


def frame_sizes(mix: str, n: int, seed: int = 11) -> np.ndarray:
    """Frame sizes (with FCS) of ``n`` frames: all 64, or the synthetic IMIX shuffled."""
    if mix == "64":
        return np.full(n, 64, np.int64)
    rng = np.random.default_rng(seed)
    p = np.array(IMIX_WEIGHTS, float) / sum(IMIX_WEIGHTS)
    return np.array(IMIX_SIZES, np.int64)[rng.choice(len(IMIX_SIZES), n, p=p)]


def ip_header_checksums(hdr: np.ndarray) -> np.ndarray:
    """Checksums of (n, 20) IPv4 headers whose checksum bytes are zero (uint16)."""
    words = hdr.astype(np.uint32)
    s = (words[:, 0::2] << 8 | words[:, 1::2]).sum(axis=1)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return (~s & 0xFFFF).astype(np.uint16)


def make_batch(dst: np.ndarray, sizes: np.ndarray, seed: int = 3) -> PacketBatch:
    """Ethernet/IPv4/UDP frames to ``dst`` with frame sizes ``sizes`` (FCS not stored)."""
    n = len(dst)
    rng = np.random.default_rng(seed)
    caplen = sizes - FCS
    hdr = np.zeros((n, 42), np.uint8)  # Ethernet 14 + IPv4 20 + UDP 8
    hdr[:, 0:6] = np.frombuffer(DST_MAC, np.uint8)
    hdr[:, 6:12] = np.frombuffer(SRC_MAC, np.uint8)
    hdr[:, 12:14] = [0x08, 0x00]
    ip = hdr[:, 14:34]
    iplen = caplen - 14
    ip[:, 0] = 0x45
    ip[:, 2], ip[:, 3] = iplen >> 8, iplen & 255
    ident = rng.integers(0, 1 << 16, n)
    ip[:, 4], ip[:, 5] = ident >> 8, ident & 255
    ip[:, 6] = 0x40  # DF
    ip[:, 8] = 64  # TTL
    ip[:, 9] = 17  # UDP
    ip[:, 12:16] = np.frombuffer(SRC_IP.to_bytes(4, "big"), np.uint8)
    for k, shift in enumerate((24, 16, 8, 0)):
        ip[:, 16 + k] = (dst >> np.uint32(shift)) & 255
    csum = ip_header_checksums(ip)
    ip[:, 10], ip[:, 11] = csum >> 8, csum & 255
    ports = rng.integers(1024, 65536, (n, 2))
    udp = hdr[:, 34:42]
    udp[:, 0], udp[:, 1] = ports[:, 0] >> 8, ports[:, 0] & 255
    udp[:, 2], udp[:, 3] = ports[:, 1] >> 8, ports[:, 1] & 255
    udplen = iplen - 20
    udp[:, 4], udp[:, 5] = udplen >> 8, udplen & 255
    if (caplen == caplen[0]).all():
        full = np.zeros((n, int(caplen[0])), np.uint8)
        full[:, :42] = hdr
        return PacketBatch.from_arrays(full, caplen)
    # Mixed sizes: lay the frames out in one pool (payload bytes zero), headers scattered.
    slot = DEFAULT_HEADROOM + caplen + DEFAULT_TAILROOM
    off = np.zeros(n, np.int64)
    np.cumsum(slot[:-1], out=off[1:])
    off += DEFAULT_HEADROOM
    pool = np.zeros(int(slot.sum()) + POOL_GUARD, np.uint8)
    pool[off[:, None] + np.arange(42)] = hdr
    return PacketBatch(pool, off, caplen.astype(np.int64), None, DEFAULT_HEADROOM,
                       DEFAULT_TAILROOM)


def write_frames(path: Path, dst: np.ndarray, sizes: np.ndarray) -> None:
    write_pcap(path, make_batch(dst, sizes))


def verify_with_scapy(path: Path, count: int = 8) -> str:
    """Check the first ``count`` frames of a pcap with scapy: version, header length,
    total length against the frame, and the header checksum scapy computes itself.
    Returns a one-line verdict (raises AssertionError on a bad frame)."""
    try:
        from scapy.layers.inet import IP, UDP
        from scapy.layers.l2 import Ether
        from scapy.utils import RawPcapReader
    except ImportError:
        return "scapy not installed: frames not cross-checked"
    seen = 0
    for raw, _meta in RawPcapReader(str(path)):
        pkt = Ether(raw)
        ip = pkt[IP]
        assert ip.version == 4 and ip.ihl == 5, f"frame {seen}: bad version/IHL"
        assert ip.len == len(raw) - 14, f"frame {seen}: IP length {ip.len} vs {len(raw)}"
        stored = ip.chksum
        fresh = IP(bytes(ip))
        del fresh.chksum  # scapy recomputes it when the packet is built again
        want = IP(bytes(fresh)).chksum
        assert stored == want, f"frame {seen}: checksum {stored:#06x}, scapy says {want:#06x}"
        assert UDP in pkt and pkt[UDP].len == ip.len - 20, f"frame {seen}: bad UDP length"
        seen += 1
        if seen >= count:
            break
    return f"scapy: first {seen} frames OK (IPv4 version/IHL/length, header checksum)"
