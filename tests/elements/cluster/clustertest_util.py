"""Helpers of the cluster elements' tests (not a test module): cluster frames built with
scapy, and a DirectVLB on a virtual clock whose outputs are read back packet by packet."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import numpy as np
from elementtest import batch_of, build, drain, drop_lines, q, read_frames, run_text, write_pcap
from scapy.all import IP, UDP, Ether, Raw

from routebricks.engine.router import Router
from routebricks.packet.batch import PacketBatch
from routebricks.packet.clustermac import encode, format_mac

__all__ = ["batch_of", "build", "cluster_frame", "drain", "drop_lines", "ip_int", "ip_packet", "q",
           "read_frames", "run_text", "write_pcap", "VLB"]

IP_ID = 14 + 4  # the IP identification field of a frame: our per-packet tag


def ip_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def ip_packet(dst: str = "10.9.0.1", *, src: str = "10.0.0.1", sport: int = 1000,
              dport: int = 80, size: int = 100, ttl: int = 64) -> bytes:
    """An IPv4/UDP packet of ``size`` bytes."""
    p = IP(src=src, dst=dst, ttl=ttl) / UDP(sport=sport, dport=dport)
    return bytes(p / Raw(b"x" * max(0, size - len(p))))


def cluster_frame(j: int, k: int = 0, next_hop: str = "10.9.0.254", **ip: object) -> bytes:
    """An Ethernet frame to cluster MAC (server j, port k, next hop) around ip_packet(**ip)."""
    size = int(ip.pop("size", 100))  # type: ignore[call-overload]
    mac = format_mac(encode(j, k, ip_int(next_hop)))
    return bytes(Ether(dst=mac, src="fe:00:00:00:ff:ff", type=0x0800)
                 / Raw(ip_packet(size=size - 14, **ip)))  # type: ignore[arg-type]


class VLB:
    """A DirectVLB(SELF me, SERVERS n, ARGS) with a Queue on every output and a virtual
    clock. :meth:`send` pushes frames at a time and says which output each one took."""

    def __init__(self, n: int = 4, me: int = 0, args: str = "LINK_RATE 8Mbps",
                 nworkers: int = 1) -> None:
        outs = "\n".join(f"vlb[{x}] -> q{x} :: Queue(100000) -> Discard;" for x in range(n))
        self.router = Router.from_text(
            f"Idle -> vlb :: DirectVLB(SELF {me}, SERVERS {n}, {args});\n{outs}")
        self.router.nworkers = nworkers
        self.router.initialize()
        self.vlb = self.router.find("vlb")
        self.now = 0
        self.vlb.clock = lambda: self.now  # type: ignore[method-assign]
        self.n = n

    def send(self, frames: Sequence[bytes] | PacketBatch, t_ms: float) -> np.ndarray:
        """Push ``frames`` at time ``t_ms``; the output each took (-1: dropped), in order.
        Frames are told apart by their IP identification field, rewritten here."""
        b = frames if isinstance(frames, PacketBatch) else batch_of(list(frames))
        tags = np.arange(len(b), dtype=np.uint32)
        b.set_u16(IP_ID, tags)
        self.now = int(round(t_ms * 1e6))
        self.vlb.push(0, b)
        port = np.full(len(b), -1, np.int64)
        for x in range(self.n):
            got = drain(self.router, f"q{x}")
            if len(got):
                port[got.u16(IP_ID)] = x
        return port

    def read(self, handler: str) -> dict[str, int]:
        return drop_lines(self.router.read_handler(f"vlb.{handler}"))


def flow_batch(templates: np.ndarray, flows: np.ndarray) -> PacketBatch:
    """A batch of frames ``templates[flows[i]]`` (an (F, width) matrix of equal-size frames)."""
    rows = templates[flows]
    return PacketBatch.from_arrays(rows, np.full(len(flows), templates.shape[1], np.int64))


def flow_templates(nflows: int, j: int, size: int) -> np.ndarray:
    """``nflows`` frames toward server ``j``, flow f with UDP source port 1000 + f."""
    return np.stack([np.frombuffer(cluster_frame(j, 0, sport=1000 + f, size=size), np.uint8)
                     for f in range(nflows)])
