"""Helpers shared by the tests of the Ethernet elements (not a test module)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scapy.all import Packet, RawPcapReader, RawPcapWriter, wrpcap

from routebricks.engine.element import Element
from routebricks.engine.router import Router
from routebricks.packet.batch import PacketBatch


def write_pcap(path: Path, packets: Sequence[Packet | bytes], linktype: int = 1) -> Path:
    """Write scapy packets, or raw frames of any length with ``linktype``, to a pcap file."""
    if all(isinstance(p, bytes | bytearray) for p in packets):
        with RawPcapWriter(str(path), linktype=linktype) as w:
            for p in packets:
                w.write(bytes(p))
    else:
        wrpcap(str(path), list(packets))
    return path


def read_frames(path: Path) -> list[bytes]:
    """The frames of a pcap file, as bytes, read by scapy (without dissecting them)."""
    with RawPcapReader(str(path)) as rd:
        return [bytes(data) for data, _meta in rd]


def run_text(text: str, *, time_limit: float = 5.0) -> Router:
    r = Router.from_text(text)
    try:
        r.run(time_limit=time_limit)
    finally:
        r.cleanup()
    return r


def run_elements(*elements: Element, time_limit: float = 5.0) -> Router:
    r = Router.from_elements(*elements)
    try:
        r.run(time_limit=time_limit)
    finally:
        r.cleanup()
    return r


def batch_of(frames: Sequence[bytes], headroom: int = 64) -> PacketBatch:
    return PacketBatch.from_bytes(frames, headroom=headroom)


def q(path: Path) -> str:
    """A file name as a quoted Click configuration string."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'
