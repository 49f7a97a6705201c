"""Every frame that reaches a router on a real interface ends in an output or in a named,
counted drop, and the end-of-run summary, the ``drops`` and ``stats`` handlers and ``top``
show each drop by reason: receive-ring overflow and frames too long for the ring
(FromDevice), malformed ARP and IP frames through examples/iprouter.click, and a transmit
interface that is down (ToDevice). Frames are sent from a host's namespace."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from devrouter import ROUTER_MAC, TEST_PORT, DeviceRouter, device_router, drops_in_summary
from nstest import can_make_namespaces

SKIP = can_make_namespaces()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

# One host on a jumbo-frame link to the router's eth0, one on a plain link to its eth1.
JUMBO = """
[router]
name = "r"
interfaces = [{ name = "eth0", mac = "02:00:00:00:00:01", mtu = 9000 },
              { name = "eth1", mac = "02:00:00:00:01:01" }]

[[hosts]]
name = "a"
interfaces = [{ name = "eth0", addresses = ["10.0.0.2/24"], mtu = 9000 }]

[[hosts]]
name = "b"
interfaces = [{ name = "eth0", addresses = ["10.0.1.2/24"] }]

[[links]]
a = "a:eth0"
b = "r:eth0"

[[links]]
a = "b:eth0"
b = "r:eth1"
"""


def udp_frames(n: int, size: int = 60, first_id: int = 0, dst_mac: str = ROUTER_MAC["a"],
               dst: str = "10.0.1.2") -> list[bytes]:
    """``n`` UDP frames of ``size`` bytes to TEST_PORT, each its own flow (source port)."""
    from scapy.all import IP, UDP, Ether, Raw, raw

    out = []
    for i in range(n):
        head = Ether(dst=dst_mac) / IP(src="10.0.0.2", dst=dst, id=first_id + i) / UDP(
            sport=1024 + (first_id + i) % 30000, dport=TEST_PORT)
        out.append(raw(head / Raw(bytes(max(size - len(head), 0)))))
    return out


def wait_for(r: DeviceRouter, done: Any, timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """The router's stats (the global ``stats`` handler) once ``done(stats)`` holds, or
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        rows = r.stats()
        if done(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.mark.parametrize("workers", [1, 2])
def test_ring_overflow_and_oversize_are_named_drops_everywhere(tmp_path: Path,
                                                               workers: int) -> None:
    """A burst into a paused, tiny receive ring, then frames longer than its blocks: what
    the kernel could not store shows as FromDevice drops "receive ring full" and "too long
    for the ring" in the stats (and so in top), the handlers and the summary, and received +
    dropped = sent."""
    from rich.console import Console

    from routebricks.runtime.top import table

    burst, big, late = 300, 2, 20
    config = ("fd :: FromDevice(eth0, BLOCK_SIZE 4096, BLOCKS 2, ACTIVE false) "
              "-> cnt :: Counter -> Discard;")
    with device_router(tmp_path, text=config, testbed=JUMBO, workers=workers) as r:
        r.send_raw("a", udp_frames(burst))
        time.sleep(0.3)  # all of the burst has met the ring
        r.handler("write", "fd.active", "true")
        wait_for(r, lambda rows: rows["fd"]["count"] + rows["fd"]["drops"] == burst)
        before = r.stats()
        for i in range(big):  # one at a time: each takes a whole block of this small ring
            r.send_raw("a", udp_frames(1, size=6000, first_id=burst + i))
            wait_for(r, lambda rows, n=burst + i + 1: rows["fd"]["count"] + rows["fd"]["drops"]
                     == n)
        r.send_raw("a", udp_frames(late, first_id=burst + big))
        sent = burst + big + late
        rows = wait_for(r, lambda rows: rows["fd"]["count"] + rows["fd"]["drops"] == sent)
        fd = rows["fd"]
        full = fd["drop_reasons"].get("receive ring full", 0)
        assert full > 0 and fd["drop_reasons"].get("too long for the ring") == big
        assert fd["count"] + full + big == sent == fd["count"] + fd["drops"]
        assert fd["drop_reasons"].keys() == {"receive ring full", "too long for the ring"}
        assert rows["cnt"]["count"] == fd["count"]
        assert int(r.handler("read", "fd.kernel_drops")) == full
        assert int(r.handler("read", "fd.oversize_drops")) == big
        drops = dict(line.split("\t")[::-1] for line in
                     r.handler("read", "fd.drops").strip().splitlines())
        assert drops == {"receive ring full": str(full), "too long for the ring": str(big)}
        # top's table from the same handler: the FromDevice row shows the drops.
        console = Console(record=True, width=200)
        console.print(table(before, rows, 1.0))
        line = next(x for x in console.export_text().splitlines() if x.startswith("│ fd "))
        assert line.replace(",", "").split("│")[-2].strip() == str(full + big)
        summary = r.stop()
    found = drops_in_summary(summary)
    assert found[("FromDevice", "receive ring full")] == full
    assert found[("FromDevice", "too long for the ring")] == big


def test_iprouter_accounts_for_every_frame(tmp_path: Path) -> None:
    """Good and malformed frames through examples/iprouter.click: the frames sent equal
    those forwarded to the far host plus every counted drop plus what the configuration
    discards on purpose (Discard)."""
    from scapy.all import ARP, IP, UDP, Ether, raw

    me, router = "02:72:62:00:00:01", ROUTER_MAC["a"]
    good = udp_frames(20, dst_mac=router, dst="10.0.2.2")
    bad_sum = [raw(Ether(dst=router) / IP(dst="10.0.2.2", chksum=0x1234) / UDP(dport=TEST_PORT))
               for _ in range(3)]
    short_ip = [raw(Ether(dst=router, type=0x0800))[:14] + raw(IP(dst="10.0.2.2"))[:10]] * 2
    arp_reply = raw(Ether(dst=router, src=me) / ARP(op=2, hwsrc=me, psrc="10.0.0.2",
                                                    hwdst=router, pdst="10.0.0.1"))
    short_reply = [arp_reply[:30]] * 2  # a reply cut short: it used to vanish uncounted
    wrong_hw = [raw(Ether(dst=router, src=me) / ARP(hwtype=6, op=2, hwsrc=me,
                                                    psrc="10.0.0.2", pdst="10.0.0.1"))]
    short_request = [raw(Ether(dst="ff:ff:ff:ff:ff:ff", src=me)
                         / ARP(op=1, hwsrc=me, psrc="10.0.0.2", pdst="10.0.0.1"))[:30]]
    other_type = [raw(Ether(dst=router, src=me, type=0x88B5)) + bytes(46)] * 2
    broadcast = udp_frames(2, first_id=100, dst_mac="ff:ff:ff:ff:ff:ff", dst="10.0.2.2")
    frames = (good + bad_sum + short_ip + short_reply + wrong_hw + short_request + other_type
              + broadcast)
    not_forwarded = len(frames) - len(good)

    def ends(rows: dict[str, dict[str, Any]]) -> int:
        return sum(row["drops"] + ((row["count"] or 0) if row["class"] == "Discard" else 0)
                   for row in rows.values())

    with device_router(tmp_path) as r:
        with r.sniffing("c", expect=len(good)) as seen:
            r.send_raw("a", frames)
        assert sorted(seen) == list(range(len(good)))  # each good frame forwarded, once
        rows = wait_for(r, lambda rows: ends(rows) >= not_forwarded)
        assert ends(rows) == not_forwarded  # sent = forwarded + drops + discarded
        summary = r.stop()
    found = drops_in_summary(summary)
    assert found[("ARPQuerier", "shorter than an ARP packet")] == 2
    assert found[("ARPQuerier", "not an IPv4-over-Ethernet ARP reply")] == 1
    assert found[("ARPResponder", "not an ARP request for our addresses")] == 1
    assert found[("DropBroadcasts", "link-level broadcast")] == 2
    assert sum(n for (cls, _), n in found.items() if cls == "CheckIPHeader") == 5
    assert sum(found.values()) + 2 == not_forwarded  # the summary shows them all


def test_todevice_on_a_down_interface_drops_and_counts(tmp_path: Path) -> None:
    """Sending on an interface that is down is a counted drop ("device down"), not the end
    of the router: once the interface is up again, frames flow."""
    config = ("FromDevice(eth0) -> c :: Classifier(12/0800, -); c[1] -> Discard; "
              "c[0] -> out :: ToDevice(eth1);")
    with device_router(tmp_path, text=config, testbed=JUMBO) as r:
        r.tb.run("r", ["ip", "link", "set", "eth1", "down"], check=True)
        r.send_raw("a", udp_frames(10))
        rows = wait_for(r, lambda rows: rows["out"]["drops"] >= 10)
        assert rows["out"]["drop_reasons"] == {"device down": 10}
        r.tb.run("r", ["ip", "link", "set", "eth1", "up"], check=True)
        time.sleep(0.5)  # the carrier comes back a moment after the link
        with r.sniffing("b", expect=5) as seen:
            r.send_raw("a", udp_frames(5, first_id=10))
        assert seen == list(range(10, 15))
        summary = r.stop()
    assert drops_in_summary(summary)[("ToDevice", "device down")] == 10
