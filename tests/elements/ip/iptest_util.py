"""Helpers shared by the tests of the IP elements (not a test module).

Packets are built and checked with scapy, an implementation independent of ours. Routers are
built from Click configuration text; a test pushes a batch into one element and drains the
Queues placed on its outputs (the router is not run, so nothing else moves the packets).
"""

from __future__ import annotations

from elementtest import (
    batch_of,
    build,
    drain,
    drop_lines,
    network_bytes,
    push,
    q,
    read_frames,
    write_pcap,
)
from elementtest import ip_checksum_ok as header_checksum_ok
from elementtest import run_text as _run_text

from routebricks.engine.router import Router

__all__ = ["batch_of", "build", "drain", "drop_lines", "header_checksum_ok", "network_bytes",
           "push", "q", "read_frames", "run_text", "write_pcap"]


def run_text(text: str, *, time_limit: float = 10.0) -> Router:
    return _run_text(text, time_limit=time_limit)
