"""``routebricks top``: live per-element rates of a running router, from its control socket.

Each refresh reads the global ``stats`` handler (calls, packets, drops and self time per
element, summed over workers) and shows the differences since the last refresh: packets per
second, drops per second, packets per call (the batch size elements really see) and
nanoseconds of the element's own work per packet (VPP's ``show runtime``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from routebricks.runtime.control import ControlClient


def snapshot(client: ControlClient) -> dict[str, dict[str, Any]]:
    return {r["element"]: r for r in json.loads(client.read("stats"))}


def table(prev: dict[str, dict[str, Any]], cur: dict[str, dict[str, Any]],
          dt: float) -> Table:
    t = Table(title=f"routebricks top — over {dt:.2f} s", expand=False)
    for col in ("element", "class", "packets/s", "drops/s", "pkts/call", "ns/pkt",
                "total packets", "total drops"):
        t.add_column(col, justify="left" if col in ("element", "class") else "right")
    rows = []
    for name, r in cur.items():
        p = prev.get(name, {"calls": 0, "packets": 0, "drops": 0, "self_ns": 0})
        dp = r["packets"] - p["packets"]
        dc = r["calls"] - p["calls"]
        dd = r["drops"] - p["drops"]
        dns = r["self_ns"] - p["self_ns"]
        rows.append((dp, name, r, dc, dd, dns))
    rows.sort(key=lambda x: (-x[0], x[1]))
    for dp, name, r, dc, dd, dns in rows:
        t.add_row(name, r["class"], f"{dp / dt:,.0f}", f"{dd / dt:,.0f}",
                  f"{dp / dc:.1f}" if dc else "-", f"{dns / dp:.1f}" if dp else "-",
                  f"{r['packets']:,}", f"{r['drops']:,}")
    return t


def run_top(client: ControlClient, interval: float, once: bool) -> None:
    with client as c:
        prev = snapshot(c)
        t0 = time.monotonic()
        if once:
            time.sleep(interval)
            # Not a terminal (a pipe, a test): wide enough that no column is cut.
            console = Console() if Console().is_terminal else Console(width=200)
            console.print(table(prev, snapshot(c), time.monotonic() - t0))
            return
        with Live(refresh_per_second=4, screen=False) as live:
            try:
                while True:
                    time.sleep(interval)
                    cur = snapshot(c)
                    t1 = time.monotonic()
                    live.update(table(prev, cur, t1 - t0))
                    prev, t0 = cur, t1
            except KeyboardInterrupt:
                pass
