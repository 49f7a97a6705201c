"""Link-level broadcasts and multicasts on real interfaces: FromDevice marks each frame with
the kernel's packet type, so a router does not forward what arrived as a link-level broadcast
or multicast (RFC 1812 5.3.4; DropBroadcasts in examples/iprouter.click) and draws no ICMP
error for it (RFC 1812 4.3.2.7; ICMPError). Frames are sent by scapy from host a's namespace;
host c's packet socket is the far side."""

from __future__ import annotations

from pathlib import Path

import pytest
from devrouter import ROUTER_MAC, device_router, drops_in_summary
from nstest import can_make_namespaces

SKIP = can_make_namespaces()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

BROADCAST = "ff:ff:ff:ff:ff:ff"
MULTICAST = "01:00:5e:00:00:05"  # an IPv4 group's Ethernet address
C = "10.0.2.2"  # host c, behind the router's eth2


def test_iprouter_forwards_no_link_level_broadcast_or_multicast(tmp_path: Path) -> None:
    with device_router(tmp_path) as r:
        with r.sniffing("c", expect=1) as seen:
            r.send_and_watch("a", [(BROADCAST, C, 64, 1), (MULTICAST, C, 64, 2),
                                   (ROUTER_MAC["a"], C, 64, 3)], settle=0)
        assert seen == [3]  # only the unicast control crossed the router
        rows = r.stats()
        bc = [row for row in rows.values() if row["class"] == "DropBroadcasts"]
        assert sum(row["drop_reasons"].get("link-level broadcast", 0) for row in bc) == 2
        summary = r.stop()
    assert drops_in_summary(summary)[("DropBroadcasts", "link-level broadcast")] == 2


def test_iprouter_draws_no_time_exceeded_for_a_broadcast(tmp_path: Path) -> None:
    with device_router(tmp_path) as r:
        quoted = r.send_and_watch("a", [(BROADCAST, C, 1, 11), (ROUTER_MAC["a"], C, 1, 12)],
                                  expect=1)
        assert quoted == [12]  # the unicast frame's time exceeded, none for the broadcast
        summary = r.stop()
    assert drops_in_summary(summary)[("DropBroadcasts", "link-level broadcast")] == 1


# No DropBroadcasts in front of DecIPTTL: here ICMPError's own rule is what keeps quiet.
TTL_ONLY = """
FromDevice(eth0) -> c :: Classifier(12/0800, -);
c[1] -> Discard;
c[0] -> Strip(14) -> CheckIPHeader -> dt :: DecIPTTL -> Discard;
dt[1] -> err :: ICMPError(10.0.0.1, timeexceeded)
      -> EtherEncap(0x0800, 02:00:00:00:00:01, $AMAC) -> ToDevice(eth0);
"""


def test_icmperror_ignores_link_level_broadcasts_on_a_device(tmp_path: Path) -> None:
    from routebricks.netns.testbed import Testbed

    a_mac = Testbed.default_mac(0, 0)  # link 0 is a:eth0 <-> r:eth0; a is side 0
    config = tmp_path / "ttl.click"
    config.write_text(f"define($AMAC {a_mac})\n" + TTL_ONLY)
    with device_router(tmp_path, config) as r:
        assert r.tb.mac("a", "eth0") == a_mac
        quoted = r.send_and_watch("a", [(BROADCAST, C, 1, 21), (MULTICAST, C, 1, 22),
                                        (ROUTER_MAC["a"], C, 1, 23)], expect=1)
        assert quoted == [23]
        summary = r.stop()
    assert drops_in_summary(summary)[("ICMPError", "link-level broadcast")] == 2
