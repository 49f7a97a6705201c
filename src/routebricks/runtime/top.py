"""``routebricks top``: live per-element rates of a running router, from its control socket.

Each refresh reads the global ``stats`` handler (calls, packets, drops and self time per
element, summed over workers) and shows the differences since the last refresh: packets per
second, drops per second, packets per call (the batch size elements really see) and
nanoseconds of the element's own work per packet (VPP's ``show runtime``). Under that table,
the drops by reason (VPP's ``show errors``) and the ring drops: the packets a device's receive
ring lost before the router saw them (the reasons an element class declares as
``RING_DROPS``; FromDevice's "receive ring full" and "too long for the ring").
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

from rich.console import Console, Group
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


def _reason_rows(prev: dict[str, dict[str, Any]], cur: dict[str, dict[str, Any]],
                 dt: float, pairs: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
    """(element, reason, drops/s, total) for each (element, reason), fastest first."""
    out = []
    for name, why in pairs:
        n = cur[name]["drop_reasons"].get(why, 0)
        before = prev.get(name, {}).get("drop_reasons", {}).get(why, 0)
        out.append((-(n - before), -n, name, why))
    out.sort()
    return [(name, why, f"{-dn / dt:,.0f}", f"{-n:,}") for dn, n, name, why in out]


def _reason_table(title: str, rows: list[tuple[str, str, str, str]]) -> Table:
    t = Table(title=title, expand=False)
    for col in ("element", "reason", "drops/s", "total"):
        t.add_column(col, justify="left" if col in ("element", "reason") else "right")
    for row in rows:
        t.add_row(*row)
    return t


@functools.cache
def ring_reasons(class_name: str) -> frozenset[str]:
    """The drop reasons an element class declares as receive-ring losses (``RING_DROPS``);
    none for a class this program does not know (one a router loaded with --load)."""
    from routebricks.engine.registry import get_class

    cls = get_class(class_name)
    return frozenset(getattr(cls, "RING_DROPS", ())) if cls is not None else frozenset()


def drops_table(prev: dict[str, dict[str, Any]], cur: dict[str, dict[str, Any]],
                dt: float) -> Table | None:
    """Every element's drops by reason (those it dropped any for), or None."""
    pairs = [(name, why) for name, r in cur.items()
             for why, n in r["drop_reasons"].items() if n > 0]
    rows = _reason_rows(prev, cur, dt, pairs)
    return _reason_table("drops by reason", rows) if rows else None


def ring_table(prev: dict[str, dict[str, Any]], cur: dict[str, dict[str, Any]],
               dt: float) -> Table | None:
    """The receive-ring losses of every element that reads a device (zeros too: no loss
    is news as well), or None if no element reads one."""
    # Every reason the class declares, dropped yet or not.
    pairs = [(name, why) for name, r in cur.items() for why in sorted(ring_reasons(r["class"]))]
    rows = _reason_rows(prev, cur, dt, pairs)
    return _reason_table("ring drops (lost in a device's receive ring)",
                         rows) if rows else None


def view(prev: dict[str, dict[str, Any]], cur: dict[str, dict[str, Any]],
         dt: float) -> Group:
    """What ``top`` shows: the element table, the drops by reason, the ring drops."""
    parts = [table(prev, cur, dt), drops_table(prev, cur, dt), ring_table(prev, cur, dt)]
    return Group(*(p for p in parts if p is not None))


def run_top(client: ControlClient, interval: float, once: bool) -> None:
    with client as c:
        prev = snapshot(c)
        t0 = time.monotonic()
        if once:
            time.sleep(interval)
            # Not a terminal (a pipe, a test): wide enough that no column is cut.
            console = Console() if Console().is_terminal else Console(width=200)
            console.print(view(prev, snapshot(c), time.monotonic() - t0))
            return
        with Live(refresh_per_second=4, screen=False) as live:
            try:
                while True:
                    time.sleep(interval)
                    cur = snapshot(c)
                    t1 = time.monotonic()
                    live.update(view(prev, cur, t1 - t0))
                    prev, t0 = cur, t1
            except KeyboardInterrupt:
                pass
