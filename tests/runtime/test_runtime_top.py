"""``routebricks top``: the element table, the drops by reason and the ring drops, from
made-up ``stats`` rows and from a router reading a real interface (a veth in a testbed's
namespace) while frames arrive: FromDevice's row shows packets/s and its own ns/packet."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from devrouter import ROUTER_MAC, TEST_PORT, device_router
from nstest import can_make_namespaces
from rich.console import Console

from routebricks.runtime.top import ring_reasons, view

SKIP = can_make_namespaces()


def row(name: str, cls: str, packets: int, drops: dict[str, int] | None = None,
        calls: int = 0, self_ns: int = 0) -> dict[str, Any]:
    drops = drops or {}
    return {"element": name, "class": cls, "calls": calls, "packets": packets,
            "drops": sum(drops.values()), "self_ns": self_ns, "drop_reasons": drops}


def render(prev: list[dict[str, Any]], cur: list[dict[str, Any]], dt: float) -> list[str]:
    console = Console(record=True, width=200)
    console.print(view({r["element"]: r for r in prev}, {r["element"]: r for r in cur}, dt))
    return console.export_text().splitlines()


def cells(lines: list[str], title: str) -> list[list[str]]:
    """The body rows of the table titled ``title`` (each a list of cells)."""
    start = next(i for i, x in enumerate(lines) if x.strip().startswith(title))
    out = []
    for line in lines[start + 1:]:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            out.append([c.strip() for c in line.strip("│").split("│")])
    return out


def section_titles(lines: list[str]) -> list[str]:
    return [x.strip() for x in lines if x.strip().startswith(("routebricks top", "drops by",
                                                               "ring drops"))]


def test_drops_by_reason_and_ring_drops_sections() -> None:
    prev = [row("fd", "FromDevice", 1000, {"receive ring full": 10}),
            row("chk", "CheckIPHeader", 1000, {"bad IP checksum": 5, "tiny packet": 1}),
            row("c", "Counter", 990)]
    cur = [row("fd", "FromDevice", 3000, {"receive ring full": 50}, calls=20,
               self_ns=3_000_000),
           row("chk", "CheckIPHeader", 3000, {"bad IP checksum": 205, "tiny packet": 1}),
           row("c", "Counter", 2790)]
    lines = render(prev, cur, 2.0)
    assert section_titles(lines) == ["routebricks top — over 2.00 s", "drops by reason",
                                     "ring drops (lost in a device's receive ring)"]
    fd = next(c for c in cells(lines, "routebricks top") if c[0] == "fd")
    assert fd == ["fd", "FromDevice", "1,000", "20", "100.0", "1500.0", "3,000", "50"]
    # Fastest first; a reason that no longer grows still shows its total.
    assert cells(lines, "drops by reason") == [
        ["chk", "bad IP checksum", "100", "205"],
        ["fd", "receive ring full", "20", "50"],
        ["chk", "tiny packet", "0", "1"]]
    # Every ring reason FromDevice declares, the ones with no loss too.
    assert ring_reasons("FromDevice") == {"receive ring full", "too long for the ring"}
    assert cells(lines, "ring drops") == [["fd", "receive ring full", "20", "50"],
                                          ["fd", "too long for the ring", "0", "0"]]


def test_no_drops_no_devices_no_sections() -> None:
    rows = [row("src", "RatedSource", 0), row("c", "Counter", 10)]
    lines = render(rows, rows, 1.0)
    assert section_titles(lines) == ["routebricks top — over 1.00 s"]
    assert ring_reasons("Counter") == frozenset()
    assert ring_reasons("NoSuchClassAnywhere") == frozenset()


def frames(n: int, src: str) -> list[bytes]:
    from scapy.all import IP, UDP, Ether, Raw, raw

    return [raw(Ether(dst=ROUTER_MAC["a"]) / IP(src=src, dst="10.0.1.2", id=i)
                / UDP(sport=1024 + i, dport=TEST_PORT) / Raw(bytes(18))) for i in range(n)]


@pytest.mark.netns
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_top_shows_fromdevice_rates_drops_by_reason_and_ring_drops(tmp_path: Path) -> None:
    """A paused, tiny receive ring takes a burst (ring drops), then frames flow while
    ``top --once`` measures: FromDevice's row has packets/s, packets per call and its own
    ns per packet; CheckIPHeader's drops show by reason; the ring drops in their section."""
    config = ("fd :: FromDevice(eth0, BLOCK_SIZE 4096, BLOCKS 2, ACTIVE false) -> Strip(14) "
              "-> chk :: CheckIPHeader(BADSRC 10.0.0.66) -> cnt :: Counter -> Discard;")
    good, bad = frames(40, "10.0.0.2"), frames(10, "10.0.0.66")
    with device_router(tmp_path, text=config) as r:
        r.send_raw("a", good * 8)  # more than the ring holds
        time.sleep(0.3)
        r.handler("write", "fd.active", "true")
        stop = threading.Event()

        def send() -> None:
            while not stop.is_set():
                r.send_raw("a", good + bad)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            time.sleep(1)
            top = subprocess.run([sys.executable, "-m", "routebricks.cli", "top", "--once",
                                  "--interval", "1.5", "-u", r.sock],
                                 capture_output=True, text=True, timeout=60)
        finally:
            stop.set()
            sender.join()
    assert top.returncode == 0, top.stderr
    lines = top.stdout.splitlines()
    table = {c[0]: c for c in cells(lines, "routebricks top")}
    _, _, rate, _, per_call, ns, packets, _ = table["fd"]
    assert float(rate.replace(",", "")) > 0
    assert float(per_call) >= 1 and float(ns) > 0
    assert int(packets.replace(",", "")) > 0
    assert float(table["cnt"][2].replace(",", "")) > 0
    reasons = {(c[0], c[1]): c for c in cells(lines, "drops by reason")}
    assert float(reasons[("chk", "bad source address")][2].replace(",", "")) > 0
    ring = {(c[0], c[1]): c for c in cells(lines, "ring drops")}
    assert set(ring) == {("fd", "receive ring full"), ("fd", "too long for the ring")}
    assert int(ring[("fd", "receive ring full")][3].replace(",", "")) > 0
