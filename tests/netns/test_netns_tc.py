"""Tests for routebricks.netns.tc: tbf shaping and link/qdisc statistics over netlink.

iproute2's JSON output (``tc -s -j -raw qdisc show``, ``ip -s -j link show``) is the
independent reader our numbers are checked against. Tests that build namespaces need root;
they skip with the reason otherwise. Every testbed made here has a random ``rbXXXXXX-``
prefix and is removed in a ``finally``, by that prefix.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routebricks.errors import RouteBricksError
from routebricks.netns import tc
from routebricks.netns.core import run_in_netns
from routebricks.netns.testbed import Testbed, TestbedSpec, cleanup

PAIR = {
    "hosts": [
        {"name": "a", "interfaces": [{"name": "e0", "addresses": ["10.77.0.1/24"]}]},
        {"name": "b", "interfaces": [{"name": "e0", "addresses": ["10.77.0.2/24"]}]},
    ],
    "links": [{"a": "a:e0", "b": "b:e0"}],
}
RATE = 10_000_000
PAYLOAD = 1400


# --------------------------------------------------------------------------
# Rates as text, defaults, rates from snapshots (no root)
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("20Mbit", 20_000_000),
        ("1.5Gbit", 1_500_000_000),
        ("500kbit", 500_000),
        ("500Kbit", 500_000),
        ("20mbit/s", 20_000_000),
        (" 20 Mbit ", 20_000_000),
        ("64000", 64_000),
        ("2e7", 20_000_000),
        (64_000, 64_000),
        (2.5e7, 25_000_000),
    ],
)
def test_parse_rate_accepts(text: object, bps: int) -> None:
    assert tc.parse_rate(text) == bps


@pytest.mark.parametrize(
    ("value", "msg"),
    [
        (0, "positive"),
        (-5, "positive"),
        ("0Mbit", "positive"),
        ("fast", "bad rate 'fast'"),
        ("", "bad rate"),
        ("20Mbps", "ambiguous"),
        ("20MBps", "ambiguous"),
        ("20", "missing unit"),
        ("40Gbit", "maximum"),
        (float("inf"), "positive"),
        (float("nan"), "positive"),
        (True, "not True"),
        ([20], "not \\[20\\]"),
    ],
)
def test_parse_rate_refuses_with_the_argument_named(value: object, msg: str) -> None:
    with pytest.raises(RouteBricksError, match=f"^link x: .*{msg}"):
        tc.parse_rate(value, "link x")


def test_parse_rate_maximum() -> None:
    assert tc.parse_rate("100Gbit", maximum=0) == 100_000_000_000  # no limit
    with pytest.raises(RouteBricksError, match="above the maximum 1Gbit$"):
        tc.parse_rate("2Gbit", "x", maximum=1_000_000_000)


@given(st.integers(tc.MIN_RATE, tc.MAX_RATE))
def test_format_rate_reads_back(bps: int) -> None:
    text = tc.format_rate(bps)
    assert text.endswith("bit") and len(text) <= 16
    assert tc.parse_rate(text) == bps
    assert tc.parse_rate(str(bps)) == bps
    assert tc.parse_rate(f"{bps / 1e6!r}Mbit") == bps


def test_defaults_hold_a_frame_and_tens_of_ms() -> None:
    # At 1 Mbit/s, 4 ms is 500 bytes: the bucket is one largest frame instead.
    assert tc.default_burst(1_000_000, 1500) == 1500 + 14 + 4 + tc.FCS_LEN
    assert tc.default_burst(1_000_000, 9000) == 9000 + 14 + 4 + tc.FCS_LEN
    assert tc.default_burst(RATE, 1500) == round(RATE / 8 * tc.DEFAULT_BURST_TIME) == 5000
    assert tc.default_limit(RATE, 5000) == 5000 + round(RATE / 8 * tc.DEFAULT_LATENCY)
    assert 0.010 <= tc.DEFAULT_LATENCY <= 0.1


def _stats(name: str, index: int, t: float, **counters: int) -> tc.LinkStats:
    base = dict.fromkeys(("rx_packets", "rx_bytes", "rx_dropped", "rx_errors", "tx_packets",
                          "tx_bytes", "tx_dropped", "tx_errors"), 0)
    return tc.LinkStats(interface=name, index=index, time=t, **(base | counters))


def test_link_rates_from_two_snapshots() -> None:
    before = [_stats("e0", 2, 10.0, tx_packets=100, tx_bytes=150_000, rx_dropped=1),
              _stats("e1", 3, 10.0, tx_packets=500),
              _stats("gone", 4, 10.0)]
    after = [_stats("e0", 2, 12.0, tx_packets=300, tx_bytes=450_000, rx_dropped=5),
             _stats("e1", 3, 12.0, tx_packets=7),  # recreated: counters restarted
             _stats("new", 5, 12.0, tx_packets=9)]
    (r,) = tc.link_rates(before, after)
    assert r.interface == "e0" and r.interval == 2.0
    assert r.tx_pps == 100 and r.tx_bps == 8 * 300_000 / 2 and r.rx_dropped_ps == 2
    assert r.rx_pps == 0 and r.tx_errors_ps == 0


# --------------------------------------------------------------------------
# Fixtures (root)
# --------------------------------------------------------------------------
def _netns_unavailable_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN/CAP_SYS_ADMIN) for network namespaces"
    from pyroute2 import netns

    probe = f"rbprobe{os.getpid()}{secrets.token_hex(2)}"
    try:
        netns.create(probe)
    except Exception as e:  # noqa: BLE001 - any failure means "cannot test here"
        return f"cannot create a network namespace: {e!r}"
    with contextlib.suppress(Exception):
        netns.remove(probe)
    return None


@pytest.fixture(scope="module")
def netns_ok() -> None:
    reason = _netns_unavailable_reason()
    if reason:
        pytest.skip(reason)


@contextlib.contextmanager
def make_testbed(spec: dict[str, Any], state_dir: Path) -> Iterator[Testbed]:
    tb = Testbed(TestbedSpec.from_dict(spec), state_dir=state_dir)
    try:
        yield tb.up()
    finally:
        tb.down()
        cleanup(tb.prefix, state_dir=state_dir)


@pytest.fixture(scope="module")
def pair(netns_ok: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """Hosts a and b joined by one veth (a:e0 -- b:e0), unshaped."""
    with make_testbed(PAIR, tmp_path_factory.mktemp("state")) as tb:
        yield tb


@pytest.fixture
def unshaped(pair: Testbed) -> Iterator[Testbed]:
    """The pair, unshaped again after the test."""
    try:
        yield pair
    finally:
        for node in ("a", "b"):
            tc.unshape(pair.ns(node), "e0")


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} (iproute2) is not installed: it is the independent reader")
    return path


def blast(tb: Testbed, seconds: float = 1.0) -> tuple[float, int]:
    """UDP from a to b as fast as a Python loop sends for ``seconds``; returns the bits per
    second b's socket received (payload, over the sending time) and the datagrams sent."""
    rx = run_in_netns(tb.ns("b"), socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
    tx = run_in_netns(tb.ns("a"), socket.socket, socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        rx.bind(("10.77.0.2", 0))
        rx.settimeout(0.5)  # quiet this long after the sender stops: all of it is in
        tx.setblocking(False)
        dst = rx.getsockname()
        got = [0]

        def receive() -> None:
            with contextlib.suppress(TimeoutError):
                while True:
                    got[0] += len(rx.recv(65535))

        t = threading.Thread(target=receive)
        t.start()
        payload = b"\x5a" * PAYLOAD
        sent = 0
        start = time.monotonic()
        end = start + seconds
        while time.monotonic() < end:
            try:
                tx.sendto(payload, dst)
                sent += 1
            except OSError as e:  # a full queue (ENOBUFS) or send buffer (EAGAIN)
                if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    raise
        elapsed = time.monotonic() - start
        t.join()
    return 8 * got[0] / elapsed, sent


def quiet(ns: str) -> None:
    """Wait until no qdisc in ``ns`` holds packets (a shaped queue drains in < 1 s)."""
    deadline = time.monotonic() + 10
    while any(q.qlen for q in tc.qdiscs(ns)) and time.monotonic() < deadline:
        time.sleep(0.05)


def read_both(ours: Any, theirs: Any) -> tuple[Any, Any]:
    """Our reading and iproute2's, taken when our counters did not move around theirs."""
    for _ in range(20):
        first, other, second = ours(), theirs(), ours()
        if first == second:  # snapshots compare without their time
            return first, other
        time.sleep(0.1)
    raise AssertionError("counters kept moving; something is sending")


# --------------------------------------------------------------------------
# Shaping is real
# --------------------------------------------------------------------------
@pytest.mark.netns
def test_shaped_link_carries_about_its_rate_and_unshaped_many_times_more(
    unshaped: Testbed,
) -> None:
    tb = unshaped
    free, _ = blast(tb)
    q = tc.shape(tb.ns("a"), "e0", RATE)
    assert (q.kind, q.rate, q.parent) == ("tbf", RATE, "root")
    shaped, sent = blast(tb)
    after = tc.qdiscs(tb.ns("a"), "e0")[0]
    # Payload bits are fewer than the frame bits the tbf counts; the excess is the bucket
    # and the queue drained after the sender stopped.
    assert shaped < 2 * RATE, f"shaped at {RATE} bit/s, received {shaped:.0f} bit/s"
    assert shaped > RATE / 4, f"shaped link carried only {shaped:.0f} bit/s"
    assert free > 4 * RATE, f"unshaped link carried only {free:.0f} bit/s"
    assert sent * PAYLOAD * 8 > 2 * RATE  # the sender did offer more than the rate
    assert after.overlimits > 0 and after.sent_packets > 0  # the shaper held packets back


@pytest.mark.netns
def test_shape_replaces_the_root_and_unshape_restores_the_default(unshaped: Testbed) -> None:
    ns = unshaped.ns("a")
    default = tc.qdiscs(ns, "e0")
    assert [q.kind for q in default] == ["noqueue"]
    assert tc.unshape(ns, "e0") is False  # nothing of ours to remove
    tc.shape(ns, "e0", "20Mbit")
    q = tc.shape(ns, "e0", "5Mbit", burst=20_000, limit=100_000, overhead=0, mpu=0)
    roots = [x for x in tc.qdiscs(ns, "e0") if x.parent == "root"]
    assert roots == [q]
    assert (q.rate, q.burst, q.limit, q.overhead, q.mpu) == (5_000_000, 20_000, 100_000, 0, 0)
    q = tc.shape(ns, "e0", 8_000_000, latency=0.010)
    assert q.burst == tc.default_burst(8_000_000, 1500) == 4000
    assert q.limit == 4000 + 10_000 and (q.overhead, q.mpu) == (tc.FCS_LEN, tc.MIN_FRAME)
    assert tc.unshape(ns, "e0") is True
    assert [x.kind for x in tc.qdiscs(ns, "e0")] == ["noqueue"]


# --------------------------------------------------------------------------
# Our readings against iproute2's
# --------------------------------------------------------------------------
@pytest.mark.netns
def test_qdiscs_agree_with_tc_json(unshaped: Testbed) -> None:
    tc_bin = need("tc")
    tb = unshaped
    tc.shape(tb.ns("a"), "e0", RATE, burst=7000)
    tc.shape(tb.ns("b"), "e0", "3Mbit", overhead=0, mpu=0, latency=0.02)
    blast(tb, 0.5)  # counters: sent, dropped, overlimits
    for node in ("a", "b"):
        ns = tb.ns(node)
        quiet(ns)
        ours, raw = read_both(
            lambda ns=ns: tc.qdiscs(ns),
            lambda node=node: tb.run(node, [tc_bin, "-s", "-j", "-raw", "qdisc", "show"],
                                     check=True).stdout)
        theirs = {(x["dev"], x["handle"]): x for x in json.loads(raw)}
        assert sorted(theirs) == sorted((q.interface, q.handle) for q in ours)
        for q in ours:
            t = theirs[(q.interface, q.handle)]
            assert q.kind == t["kind"]
            assert (q.parent == "root") == bool(t.get("root"))
            assert (q.sent_bytes, q.sent_packets, q.drops, q.overlimits, q.requeues,
                    q.backlog, q.qlen) == (t["bytes"], t["packets"], t["drops"],
                                           t["overlimits"], t["requeues"], t["backlog"],
                                           t["qlen"])
            if q.kind == "tbf":
                o = t["options"]
                # iproute2 6.x prints tbf's rate in JSON as bytes per second.
                assert (q.rate, q.burst, q.limit, q.overhead) == (
                    o["rate"] * 8, o["burst"], o["limit"], o.get("overhead", 0))
    a = next(q for q in tc.qdiscs(tb.ns("a")) if q.kind == "tbf")
    assert a.rate == RATE and a.burst == 7000 and a.sent_packets > 0 and a.overlimits > 0


@pytest.mark.netns
def test_link_stats_agree_with_ip_json(unshaped: Testbed) -> None:
    ip_bin = need("ip")
    tb = unshaped
    blast(tb, 0.3)
    for node in ("a", "b"):
        ours, raw = read_both(
            lambda node=node: tc.link_stats(tb.ns(node)),
            lambda node=node: tb.run(node, [ip_bin, "-s", "-j", "link", "show"],
                                     check=True).stdout)
        theirs = {x["ifname"]: x for x in json.loads(raw)}
        assert sorted(theirs) == sorted(s.interface for s in ours) == ["e0", "lo"]
        for s in ours:
            t = theirs[s.interface]
            rx, tx = t["stats64"]["rx"], t["stats64"]["tx"]
            assert s.index == t["ifindex"]
            assert (s.rx_packets, s.rx_bytes, s.rx_dropped, s.rx_errors) == (
                rx["packets"], rx["bytes"], rx["dropped"], rx["errors"])
            assert (s.tx_packets, s.tx_bytes, s.tx_dropped, s.tx_errors) == (
                tx["packets"], tx["bytes"], tx["dropped"], tx["errors"])
    (e0,) = tc.link_stats(tb.ns("b"), "e0")
    assert e0.rx_packets > 0


@pytest.mark.netns
def test_rates_between_snapshots_see_the_shaped_traffic(unshaped: Testbed) -> None:
    tb = unshaped
    ns = tb.ns("a")
    tc.shape(ns, "e0", RATE)
    links0, qdiscs0 = tc.link_stats(ns), tc.qdiscs(ns)
    blast(tb, 1.0)
    links1, qdiscs1 = tc.link_stats(ns), tc.qdiscs(ns)
    (link,) = [r for r in tc.link_rates(links0, links1) if r.interface == "e0"]
    (qd,) = [r for r in tc.qdisc_rates(qdiscs0, qdiscs1) if r.kind == "tbf"]
    # Over the snapshots' interval (the send, plus draining) the link sent at most its rate
    # (frame bits without the FCS are fewer than the bits the tbf counts) and the qdisc
    # sent what the link did (each snapshot has its own clock reading: compare amounts).
    assert 0 < link.tx_bps <= RATE * 1.5 and link.tx_pps > 0
    assert math.isclose(qd.bps * qd.interval, link.tx_bps * link.interval, rel_tol=1e-9)
    assert qd.overlimits_ps > 0 and qd.backlog == 0


# --------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------
@pytest.mark.netns
@pytest.mark.parametrize(
    ("where", "kwargs", "msg"),
    [
        (("a", "e9"), {"rate_bps": "10Mbit"}, r"no interface 'e9' in network namespace .*e0"),
        ((None, "e0"), {"rate_bps": "10Mbit"}, r"no network namespace 'rb000000-nope'"),
        (("a", "e0"), {"rate_bps": 0}, r"e0: rate: .*positive"),
        (("a", "e0"), {"rate_bps": "fast"}, r"e0: rate: bad rate 'fast'"),
        (("a", "e0"), {"rate_bps": "10Mbit", "burst": 1000}, r"burst must be at least"),
        (("a", "e0"), {"rate_bps": "10Mbit", "limit": 100}, r"limit must hold"),
        (("a", "e0"), {"rate_bps": "10Mbit", "latency": 0}, r"latency must be"),
        (("a", "e0"), {"rate_bps": "10Mbit", "limit": 9000, "latency": 0.1}, r"not both"),
        (("a", "e0"), {"rate_bps": "10Mbit", "overhead": -1}, r"overhead must be"),
    ],
)
def test_bad_input_is_a_clear_error(
    unshaped: Testbed, where: tuple[str | None, str], kwargs: dict[str, Any], msg: str
) -> None:
    node, ifname = where
    ns = unshaped.ns(node) if node else "rb000000-nope"
    with pytest.raises(RouteBricksError, match=msg):
        tc.shape(ns, ifname, **kwargs)
    if node:
        assert [q.kind for q in tc.qdiscs(ns, "e0")] == ["noqueue"]  # nothing half-done


@pytest.mark.netns
def test_reading_a_missing_namespace_or_interface_is_a_clear_error(pair: Testbed) -> None:
    for fn in (tc.qdiscs, tc.link_stats, tc.unshape):
        with pytest.raises(RouteBricksError, match="no network namespace 'rb000000-nope'"):
            fn("rb000000-nope", "e0")
        with pytest.raises(RouteBricksError, match="no interface 'e7'"):
            fn(pair.ns("a"), "e7")


# --------------------------------------------------------------------------
# A testbed's link rate, and nothing left behind
# --------------------------------------------------------------------------
def _root_ours(prefix: str) -> tuple[list[str], list[str]]:
    """Root-namespace qdiscs and links whose device carries ``prefix``, per iproute2."""
    qd = subprocess.run(["tc", "-j", "qdisc", "show"], capture_output=True, text=True,
                        check=True).stdout
    links = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True,
                           check=True).stdout
    return ([f"{q['kind']} {q.get('dev')}" for q in json.loads(qd)
             if str(q.get("dev", "")).startswith(prefix)],
            [x["ifname"] for x in json.loads(links) if x["ifname"].startswith(prefix)])


@pytest.mark.netns
def test_testbed_link_rate_shapes_both_ends_and_goes_with_the_namespaces(
    netns_ok: None, tmp_path: Path
) -> None:
    need("tc")
    spec = {**PAIR, "links": [{"a": "a:e0", "b": "b:e0", "rate": "20Mbit"}]}
    spec["hosts"] = [dict(h) for h in PAIR["hosts"]]
    spec["hosts"][1]["interfaces"] = [{"name": "e0", "addresses": ["10.77.0.2/24"],
                                       "mtu": 9000}]
    with make_testbed(spec, tmp_path / "state") as tb:
        prefix = tb.prefix
        for node, mtu in (("a", 1500), ("b", 9000)):
            (q,) = tc.qdiscs(tb.ns(node), "e0")
            assert (q.kind, q.rate, q.parent) == ("tbf", 20_000_000, "root")
            assert q.burst == tc.default_burst(20_000_000, mtu)
            assert q.limit == tc.default_limit(20_000_000, q.burst)
        shaped, _ = blast(tb, 0.5)
        assert shaped < 2 * 20_000_000
        assert _root_ours(prefix) == ([], [])
    for node in ("a", "b"):
        with pytest.raises(RouteBricksError, match="no network namespace"):
            tc.qdiscs(f"{prefix}{node}")
    assert _root_ours(prefix) == ([], [])
