"""ARPQuerier: queries and encapsulation checked with scapy; queueing, release order, timeouts,
polls, rate limiting and capacity limits driven by a controlled clock (and one real timer)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest
from scapy.all import ARP, IP, UDP, Ether, Raw, raw

from routebricks.elements.ethernet.arpquerier import ARPQuerier
from routebricks.engine.element import Element
from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError
from routebricks.packet.batch import PacketBatch

MY_IP = "10.0.0.1"
MY_ETH = "02:00:00:00:00:01"
BCAST = "ff:ff:ff:ff:ff:ff"


def mac(i: int) -> str:
    return f"02:00:00:00:01:{i:02x}"


# ---------------------------------------------------------------------- harness
class _Src(Element):
    """Feeds nothing; its output only gives the tested element a connected input."""

    port_count = "0/1"
    processing = "/h"


class _Live(Element):
    """A source that never finishes, so that Router.run keeps running timers."""

    port_count = "0/1"
    processing = "/h"
    IS_SOURCE = True

    def run_task(self) -> bool:
        return False

    def is_done(self) -> bool:
        return False


class _Sink(Element):
    """Keeps every batch pushed into it."""

    port_count = "1/0"
    processing = "h/"

    def configure(self) -> None:
        self.batches: list[PacketBatch] = []

    def push(self, port: int, batch: PacketBatch) -> None:
        self.batches.append(batch)

    def frames(self) -> list[bytes]:
        return [f for b in self.batches for f in b.to_list()]

    def take(self) -> list[bytes]:
        f = self.frames()
        self.batches.clear()
        return f


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Rig:
    router: Router
    aq: ARPQuerier
    out: _Sink
    queries: _Sink
    clock: Clock

    def h(self, name: str) -> str:
        return self.router.read_handler(f"{self.aq.name}.{name}")

    def w(self, name: str, value: str = "") -> None:
        self.router.write_handler(f"{self.aq.name}.{name}", value)

    def send(
        self,
        hops: list[str],
        *,
        payloads: list[bytes] | None = None,
        timestamps: list[int] | None = None,
        headroom: int = 64,
    ) -> list[bytes]:
        """Push IP packets with these next hops on input 0; returns the IP packets."""
        pkts = payloads or [ip_packet(i, h) for i, h in enumerate(hops)]
        b = PacketBatch.from_bytes(pkts, headroom=headroom)
        b.anno("dst_ip")[:] = [ip_int(h) for h in hops]
        if timestamps is not None:
            b.anno("timestamp")[:] = timestamps
        self.aq.push(0, b)
        return pkts

    def reply(self, ip: str, eth: str, *, pad: bool = False, op: int = 2) -> None:
        f = raw(
            Ether(dst=MY_ETH, src=eth) / ARP(op=op, hwsrc=eth, psrc=ip, hwdst=MY_ETH, pdst=MY_IP)
        )
        if pad:
            f += b"\x00" * (60 - len(f))
        self.aq.push(1, PacketBatch.from_bytes([f]))


def ip_int(s: str) -> int:
    a, b, c, d = (int(x) for x in s.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def ip_packet(i: int, hop: str) -> bytes:
    return raw(
        IP(src="192.168.0.1", dst=f"172.16.{i // 256}.{i % 256}", id=i)
        / UDP(dport=9)
        / Raw(f"packet {i} via {hop}".encode())
    )


def query_for(ip: str, *, dst: str = BCAST, sender: str = MY_IP) -> bytes:
    """The ARP request scapy builds: the independent oracle for the query format."""
    return raw(
        Ether(dst=dst, src=MY_ETH, type=0x0806)
        / ARP(
            hwtype=1,
            ptype=0x0800,
            hwlen=6,
            plen=4,
            op=1,
            hwsrc=MY_ETH,
            psrc=sender,
            hwdst="00:00:00:00:00:00",
            pdst=ip,
        )
    )


def encapsulated(pkt: bytes, dst: str) -> bytes:
    return raw(Ether(dst=dst, src=MY_ETH, type=0x0800) / Raw(pkt))


def rig(
    config: str = f"{MY_IP}, {MY_ETH}",
    *,
    one_output: bool = False,
    clock: bool = True,
    live: bool = False,
) -> Rig:
    """A router around ``ARPQuerier(config)``: outputs into sinks, inputs from idle sources.
    With ``clock`` the querier reads a controlled clock; ``live`` keeps Router.run going."""
    src0, src1 = (_Live() if live else _Src()), _Src()
    aq = ARPQuerier.from_config(config, "aq")
    out, qs = _Sink(name="out"), _Sink(name="qs")
    src0 >> aq >> out
    src1 >> aq[1]
    if not one_output:
        aq[1] >> qs
    r = Router.from_elements(src0)
    c = Clock()
    if clock:
        aq.clock = c  # type: ignore[method-assign]
    r.initialize()
    assert isinstance(aq, ARPQuerier)
    return Rig(r, aq, out, out if one_output else qs, c)


# ---------------------------------------------------------------------- formats
def test_query_format_matches_scapy_and_packet_waits():
    t = rig()
    pkts = t.send(["10.0.0.7"], timestamps=[123456789])
    assert t.out.frames() == []
    assert t.queries.frames() == [query_for("10.0.0.7")]
    q = t.queries.batches[0]
    assert len(q.packet(0)) == 42
    assert q.anno("timestamp").tolist() == [123456789]
    a = Ether(q.packet(0))[ARP]
    assert (a.op, a.hwsrc, a.psrc, a.hwdst, a.pdst) == (
        1,
        MY_ETH,
        MY_IP,
        "00:00:00:00:00:00",
        "10.0.0.7",
    )
    assert t.h("length") == "1" and t.h("count") == "1" and t.h("queries") == "1"
    t.reply("10.0.0.7", mac(7))
    assert t.out.frames() == [encapsulated(pkts[0], mac(7))]
    e = Ether(t.out.frames()[0])
    assert e.type == 0x0800 and e[IP].dst == "172.16.0.0" and bytes(e[IP]) == pkts[0]
    assert t.h("length") == "0" and t.h("responses") == "1"


def test_one_output_carries_queries_too():
    t = rig(one_output=True)
    t.send(["10.0.0.7"])
    assert t.out.frames() == [query_for("10.0.0.7")]


def test_queued_packets_released_in_arrival_order():
    t = rig()
    a, b, c = "10.0.0.10", "10.0.0.11", "10.0.0.12"
    first = t.send([a, b, a, c, b, a])
    t.clock.t += 0.01
    second = t.send([c, a, b], payloads=[ip_packet(100 + i, h) for i, h in enumerate([c, a, b])])
    # One query per address (the second batch is within the rate limit), in first-seen order.
    assert t.queries.take() == [query_for(a), query_for(b), query_for(c)]
    assert t.h("length") == "9"
    t.reply(b, mac(11))
    assert t.out.take() == [encapsulated(p, mac(11)) for p in (first[1], first[4], second[2])]
    t.reply(a, mac(10), pad=True)
    assert t.out.take() == [
        encapsulated(p, mac(10)) for p in (first[0], first[2], first[5], second[1])
    ]
    assert t.h("length") == "2"
    # Known now: sent at once, in order, mixed with a still-unknown address.
    pk = t.send([a, c, b, a])
    assert t.out.take() == [
        encapsulated(pk[i], m) for i, m in ((0, mac(10)), (2, mac(11)), (3, mac(10)))
    ]
    assert t.h("length") == "3"
    t.reply(c, mac(12))
    assert t.out.take() == [encapsulated(p, mac(12)) for p in (first[3], second[0], pk[1])]
    assert t.h("length") == "0" and t.h("stats") == "0 packets killed\n3 ARP queries sent\n"
    assert not t.aq.drops


def test_large_batch_vectorized():
    t = rig()
    rng = np.random.default_rng(3)
    for i in range(40):
        t.w("insert", f"10.0.1.{i} {mac(i)}")
    hops = [f"10.0.1.{int(k)}" for k in rng.integers(0, 50, 3000)]
    pkts = t.send(hops)
    known = [(p, h) for p, h in zip(pkts, hops, strict=True) if int(h.split(".")[-1]) < 40]
    assert t.out.take() == [encapsulated(p, mac(int(h.split(".")[-1]))) for p, h in known]
    unknown = sorted({h for h in hops if int(h.split(".")[-1]) >= 40}, key=hops.index)
    assert t.queries.take() == [query_for(h) for h in unknown]
    assert t.h("length") == str(len(hops) - len(known))
    for h in unknown:
        t.reply(h, mac(int(h.split(".")[-1])))
    got = t.out.take()
    want = [
        encapsulated(p, mac(int(hh.split(".")[-1])))
        for h in unknown
        for p, hh in zip(pkts, hops, strict=True)
        if hh == h
    ]
    assert got == want


def test_no_headroom_is_made_and_annotations_kept():
    t = rig()
    t.w("insert", f"10.0.0.9 {mac(9)}")
    b = PacketBatch.from_bytes([ip_packet(0, "x"), ip_packet(1, "x")], headroom=0)
    b.anno("dst_ip")[:] = ip_int("10.0.0.9")
    b.anno("paint")[:] = [3, 4]
    t.aq.push(0, b)
    out = t.out.batches[0]
    assert out.to_list() == [encapsulated(ip_packet(i, "x"), mac(9)) for i in (0, 1)]
    assert out.anno("paint").tolist() == [3, 4]


# ---------------------------------------------------------------------- special addresses
def test_broadcast_multicast_and_zero(capsys):
    t = rig(f"{MY_IP}/24, {MY_ETH}")
    assert t.h("broadcast") == "10.0.0.255"
    hops = [
        "255.255.255.255",
        "10.0.0.255",
        "224.1.2.3",
        "239.255.255.250",
        "0.0.0.0",
        "0.0.0.0",
        "230.129.2.3",
    ]
    pkts = t.send(hops)
    assert t.out.take() == [
        encapsulated(pkts[0], BCAST),
        encapsulated(pkts[1], BCAST),
        encapsulated(pkts[2], "01:00:5e:01:02:03"),
        encapsulated(pkts[3], "01:00:5e:7f:ff:fa"),
        encapsulated(pkts[6], "01:00:5e:01:02:03"),  # only the low 23 bits
    ]
    assert t.queries.frames() == []
    assert t.h("drops") == "2"
    assert t.h("stats") == "2 packets killed\n0 ARP queries sent\n"
    assert t.aq.drops == {"dst_ip annotation is 0.0.0.0": 2}
    t.send(["0.0.0.0"])
    assert capsys.readouterr().err.count("would query for 0.0.0.0") == 1


def test_broadcast_keyword_and_handlers():
    t = rig(f"{MY_IP}, {MY_ETH}, BROADCAST 10.0.0.127")
    assert t.h("broadcast") == "10.0.0.127"
    pkts = t.send(["10.0.0.127", "10.0.0.255"])
    assert t.out.take() == [encapsulated(pkts[0], BCAST)]
    assert t.queries.take() == [query_for("10.0.0.255")]
    t.w("broadcast", "10.0.0.255")
    pkts = t.send(["10.0.0.255"])
    assert t.out.take() == [encapsulated(pkts[0], BCAST)]
    t.w("ipaddr", "10.0.0.2")
    assert t.h("ipaddr") == "10.0.0.2"
    t.send(["10.0.0.50"])
    assert t.queries.take() == [query_for("10.0.0.50", sender="10.0.0.2")]
    r = rig()
    assert r.h("broadcast") == "255.255.255.255"


# ---------------------------------------------------------------------- rate limits and polls
def test_queries_rate_limited_per_address():
    t = rig()
    t.send(["10.0.0.7", "10.0.0.7", "10.0.0.8"])
    assert t.h("queries") == "2"
    t.clock.t += 0.05
    t.send(["10.0.0.7", "10.0.0.8"])
    assert t.h("queries") == "2"  # within 100 ms: no new query
    t.clock.t += 0.06
    t.send(["10.0.0.7"])
    assert t.h("queries") == "3"
    # Unanswered: at most 10 a second, then one every 2 seconds.
    sent = []
    for _ in range(30):  # 3 seconds in steps of (just over) 100 ms
        t.clock.t += 0.101
        before = int(t.h("queries"))
        t.send(["10.0.0.7"])
        sent.append(int(t.h("queries")) - before)
    assert sum(sent[:8]) == 8 and sum(sent) <= 8 + 2
    assert t.queries.take()[:3] == [
        query_for("10.0.0.7"),
        query_for("10.0.0.8"),
        query_for("10.0.0.7"),
    ]
    # A reply resets the back-off.
    t.reply("10.0.0.7", mac(7))
    assert t.h("length") == "2"  # the 10.0.0.8 packets still wait


def test_polls_refresh_entries_before_they_expire():
    t = rig(f"{MY_IP}, {MY_ETH}, TIMEOUT 3s, POLL_TIMEOUT 1s")
    t.reply("10.0.0.7", mac(7))
    t.clock.t += 0.5
    t.send(["10.0.0.7"])
    assert len(t.out.take()) == 1 and t.queries.take() == []
    t.clock.t += 0.7  # 1.2 s since the reply: polls begin, unicast to the known address
    pk = t.send(["10.0.0.7", "10.0.0.7"], timestamps=[5, 6])
    assert t.out.take() == [encapsulated(p, mac(7)) for p in pk]
    assert t.queries.frames() == [query_for("10.0.0.7", dst=mac(7))]
    assert t.queries.batches[0].anno("timestamp").tolist() == [5]
    t.queries.take()
    t.clock.t += 0.05
    t.send(["10.0.0.7"])
    assert t.queries.take() == [] and len(t.out.take()) == 1  # sent; no poll (rate limit)
    t.clock.t += 0.05
    t.reply("10.0.0.7", mac(7))  # the poll's answer refreshes the entry
    t.clock.t += 2.5  # 3.8 s after the first reply, 2.5 s after the refresh
    pk = t.send(["10.0.0.7"])
    assert t.out.take() == [encapsulated(pk[0], mac(7))]
    assert t.queries.take() == [query_for("10.0.0.7", dst=mac(7))]


def test_broadcast_poll():
    t = rig(f"{MY_IP}, {MY_ETH}, POLL_TIMEOUT 1s, BROADCAST_POLL true")
    t.reply("10.0.0.7", mac(7))
    t.clock.t += 1.5
    t.send(["10.0.0.7"])
    assert t.queries.take() == [query_for("10.0.0.7")]


# ---------------------------------------------------------------------- timeouts
def test_entries_expire_after_timeout():
    t = rig(f"{MY_IP}, {MY_ETH}, TIMEOUT 1s, POLL_TIMEOUT 0")
    t.reply("10.0.0.7", mac(7))
    t.clock.t += 0.9
    t.send(["10.0.0.7"])
    assert len(t.out.take()) == 1
    assert t.h("table") == "10.0.0.7 1 02-00-00-00-01-07 0.900000\n"
    t.clock.t += 0.2  # 1.1 s: expired
    t.send(["10.0.0.7"])
    assert t.out.take() == [] and t.queries.take() == [query_for("10.0.0.7")]
    assert t.h("table").startswith("10.0.0.7 0 02-00-00-00-01-07 ")
    assert t.h("length") == "1"


def test_timer_drops_packets_of_expired_entries():
    """Real time: with TIMEOUT 100ms the router's timer deletes the unanswered entry."""
    t = rig(f"{MY_IP}, {MY_ETH}, TIMEOUT 100ms", clock=False, live=True)
    t.send(["10.0.0.7", "10.0.0.7", "10.0.0.8"])
    assert t.h("count") == "2" and t.h("length") == "3"
    t.router.run(time_limit=0.4)
    assert t.h("count") == "0" and t.h("length") == "0"
    assert t.aq.drops == {"no ARP reply before the entry expired": 3}
    assert t.h("stats") == "3 packets killed\n2 ARP queries sent\n"
    assert t.h("drops") == "0"  # the querier's own drops; the table's are in stats
    t.reply("10.0.0.7", mac(7))
    assert t.out.frames() == []


# ---------------------------------------------------------------------- capacity
def test_capacity_drops_oldest_and_counts():
    t = rig(f"{MY_IP}, {MY_ETH}, CAPACITY 4")
    x = t.send(["10.0.0.7"] * 4)
    t.clock.t += 1
    y = t.send(["10.0.0.8"])
    # Over capacity: trimmed to CAPACITY - CAPACITY/2 = 2, the oldest entry's oldest first.
    assert t.h("length") == "2"
    assert t.aq.drops == {"ARP queue full": 3}
    assert t.h("stats").startswith("3 packets killed\n")
    t.reply("10.0.0.7", mac(7))
    t.reply("10.0.0.8", mac(8))
    assert t.out.take() == [encapsulated(x[3], mac(7)), encapsulated(y[0], mac(8))]


def test_capacity_exact_with_large_slim_factor():
    t = rig(f"{MY_IP}, {MY_ETH}, CAPACITY 4, CAPACITY_SLIM_FACTOR 100")
    x = t.send(["10.0.0.7"] * 3)
    y = t.send(["10.0.0.8"] * 3)
    assert t.h("length") == "4"
    t.reply("10.0.0.7", mac(7))
    t.reply("10.0.0.8", mac(8))
    assert t.out.take() == [encapsulated(x[2], mac(7))] + [encapsulated(p, mac(8)) for p in y]
    big = t.send(["10.0.0.9"] * 10)
    assert t.h("length") == "4"
    t.reply("10.0.0.9", mac(9))
    assert t.out.take() == [encapsulated(p, mac(9)) for p in big[-4:]]
    assert t.aq.drops == {"ARP queue full": 2 + 6}


def test_entry_packet_capacity_keeps_newest():
    t = rig(f"{MY_IP}, {MY_ETH}, ENTRY_PACKET_CAPACITY 2")
    x = t.send(["10.0.0.7"] * 3)
    t.clock.t += 0.01
    x += t.send(["10.0.0.7", "10.0.0.8"], payloads=[ip_packet(50, "a"), ip_packet(51, "b")])
    assert t.h("length") == "3"
    t.reply("10.0.0.7", mac(7))
    assert t.out.take() == [encapsulated(x[2], mac(7)), encapsulated(x[3], mac(7))]
    assert t.aq.drops == {"ARP queue full": 2}


def test_entry_capacity_evicts_least_recently_answered():
    t = rig(f"{MY_IP}, {MY_ETH}, ENTRY_CAPACITY 2")
    t.send(["10.0.0.7", "10.0.0.7"])
    t.clock.t += 1
    t.reply("10.0.0.9", mac(9))  # unsolicited replies create entries too (as Click)
    t.clock.t += 1
    t.send(["10.0.0.8"])
    assert t.h("count") == "2"
    assert [ln.split()[0] for ln in t.h("table").splitlines()] == ["10.0.0.9", "10.0.0.8"]
    assert t.aq.drops == {"ARP table full": 2}


# ---------------------------------------------------------------------- replies and handlers
def test_only_arp_replies_update_the_table():
    t = rig()
    t.send(["10.0.0.7"])
    t.reply("10.0.0.7", mac(7), op=1)  # a request: counted as a response, ignored
    t.reply("10.0.0.7", "03:00:00:00:00:07")  # group sender address: ignored
    t.aq.push(1, PacketBatch.from_bytes([b"\x00" * 41]))  # too short: not even counted
    assert t.h("responses") == "2" and t.h("length") == "1" and t.out.frames() == []
    other = raw(
        Ether(dst=MY_ETH, src=mac(7), type=0x0806)
        / ARP(ptype=0x86DD, plen=4, op=2, hwsrc=mac(7), psrc="10.0.0.7")
    )
    t.aq.push(1, PacketBatch.from_bytes([other]))
    assert t.h("length") == "1"
    t.reply("10.0.0.7", mac(7))
    assert len(t.out.frames()) == 1 and t.h("responses") == "4"
    # Every packet on input 1 that is not a usable reply is a counted drop, by reason.
    assert t.aq.drops == {"shorter than an ARP packet": 1,
                          "not an IPv4-over-Ethernet ARP reply": 2,
                          "ARP reply from a group Ethernet address": 1}
    assert t.h("drops") == "0"  # Click's handler: the querier's drops on input 0 only


def test_short_arp_replies_are_counted_drops():
    t = rig()
    t.send(["10.0.0.7"])
    full = raw(Ether(dst=MY_ETH, src=mac(7)) / ARP(op=2, hwsrc=mac(7), psrc="10.0.0.7"))
    t.aq.push(1, PacketBatch.from_bytes([full[:30], full[:41], b"", full]))
    assert t.aq.drops == {"shorter than an ARP packet": 3}
    assert t.h("responses") == "1" and len(t.out.frames()) == 1


def test_insert_delete_clear_handlers():
    t = rig()
    pk = t.send(["10.0.0.7"])
    t.clock.t += 0.25
    t.w("insert", f"10.0.0.7 {mac(7)}")
    assert t.out.take() == [encapsulated(pk[0], mac(7))]  # waiting packets are sent
    t.clock.t += 0.5
    assert t.h("table") == "10.0.0.7 1 02-00-00-00-01-07 0.500000\n"
    t.w("delete", "10.0.0.7")
    assert t.h("table").startswith("10.0.0.7 0 FF-FF-FF-FF-FF-FF ")
    t.send(["10.0.0.7"])
    assert t.out.take() == [] and t.h("length") == "1"
    t.w("insert", "10.0.0.8 02:00:00:00:01:08")
    assert t.h("count") == "2"
    t.w("clear")
    assert (t.h("count"), t.h("length"), t.h("queries"), t.h("responses")) == ("0",) * 4
    assert t.aq.drops == {"ARP table cleared": 1}
    with pytest.raises(HandlerError, match="IP ETH"):
        t.w("insert", "10.0.0.9")
    with pytest.raises(HandlerError):
        t.w("insert", "10.0.0.9 nonsense")
    with pytest.raises(HandlerError):
        t.w("ipaddr", "300.1.1.1")


def test_no_ip_address_drops():
    t = rig()
    t.w("ipaddr", "0.0.0.0")
    t.send(["10.0.0.7"])
    assert t.h("drops") == "1" and t.aq.drops == {"no IP address configured": 1}


# ---------------------------------------------------------------------- configuration
def test_config_from_click_text():
    r = Router.from_text(
        "Idle -> [0]aq :: ARPQuerier(10.1.2.3/16, 00:11:22:33:44:55, TIMEOUT 2s, "
        "POLL_TIMEOUT 500ms, CAPACITY 10, ENTRY_CAPACITY 5) -> Discard; Idle -> [1]aq;"
    )
    aq = r.find("aq")
    assert isinstance(aq, ARPQuerier)
    assert (aq.timeout, aq.poll_timeout, aq.capacity, aq.entry_capacity) == (2.0, 0.5, 10, 5)
    assert r.read_handler("aq.ipaddr") == "10.1.2.3"
    assert r.read_handler("aq.broadcast") == "10.1.255.255"
    cls = get_class("ARPQuerier")
    assert cls is ARPQuerier and cls.GROUP == "ethernet"
    handlers_doc = cls.doc().split("Handlers:")[1].split("Example:")[0]
    for h in (
        "table",
        "stats",
        "count",
        "length",
        "queries",
        "responses",
        "drops",
        "insert",
        "delete",
        "clear",
        "ipaddr",
        "broadcast",
    ):
        assert h in handlers_doc


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("10.0.0.1", "missing required argument ETH"),
        ("10.0.0.300, 00:11:22:33:44:55", "bad value '10.0.0.300' for IP"),
        ("10.0.0.1, 00:11:22:33:44:55, CAPACITY_SLIM_FACTOR 0", "CAPACITY_SLIM_FACTOR"),
        ("10.0.0.1, 00:11:22:33:44:55, TIMEOUT soon", "TIMEOUT"),
    ],
)
def test_config_errors(config, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Router.from_text(f"Idle -> [0]aq :: ARPQuerier({config}) -> Discard; Idle -> [1]aq;")


def test_new_reply_replaces_known_address():
    t = rig()
    t.reply("10.0.0.7", mac(7))
    t.reply("10.0.0.8", mac(8))
    pk = t.send(["10.0.0.7", "10.0.0.8"])
    t.clock.t += 1
    t.reply("10.0.0.7", mac(77))  # the host moved
    t.reply("10.0.0.8", mac(8))  # a refresh: same address
    pk2 = t.send(["10.0.0.7", "10.0.0.8"])
    assert t.out.take() == [
        encapsulated(pk[0], mac(7)),
        encapsulated(pk[1], mac(8)),
        encapsulated(pk2[0], mac(77)),
        encapsulated(pk2[1], mac(8)),
    ]
    assert t.aq.lookup_ether("10.0.0.7") == "02-00-00-00-01-4D"
    assert t.aq.lookup_ether("10.0.0.9") is None
