"""Link shaping (a tc ``tbf`` on an interface's egress) and link and qdisc statistics,
inside network namespaces, over netlink (pyroute2 only; no ``tc``/``ip`` binaries).

Why a tbf on each veth end
    A veth carries whatever its sender hands it, as fast as the CPU allows, so a cluster on
    one machine has no line rates unless we give it some. Packets a router sends through an
    AF_PACKET socket (without ``PACKET_QDISC_BYPASS``) pass through the interface's root
    qdisc, so a token bucket filter there makes the link a line of that rate: it sends at
    most ``rate`` on average, queues up to ``limit`` bytes behind it, and drops the rest
    (counted in the qdisc's ``drops``; a packet socket's ``send`` sees ``ENOBUFS``).
    Shaping is per direction: a link is shaped by shaping both of its ends.

What a rate counts
    By default each frame costs its length plus :data:`FCS_LEN` (the 4-byte FCS the wire
    carries and a veth does not), and at least :data:`MIN_FRAME` (64) bytes -- the traffic
    layer's convention (frame bits with FCS, without preamble and gap), so a generator
    sending at 20 Mbit/s fills a 20 Mbit/s link exactly. ``overhead=0, mpu=0`` counts bare
    frames as ``tc`` does by default.

The defaults, and why
    * ``burst`` (the bucket) is the larger of one largest frame (MTU + Ethernet header +
      a VLAN tag + the overhead; the kernel drops every frame larger than the bucket) and
      :data:`DEFAULT_BURST_TIME` of traffic at the rate. tbf refills the bucket when a
      timer fires; a timer that fires late (a loaded machine) cannot send the time it lost
      unless the bucket holds it, so a bucket of a few ms keeps the average at the rate
      (tc-tbf(8)'s "burst at least rate/HZ", for a kernel tick of HZ=250 (4 ms)) while
      bursts stay short against the tens of ms of queue.
    * ``limit`` (the queue, bytes) is :data:`DEFAULT_LATENCY` of traffic at the rate plus
      the burst, as ``tc ... latency 50ms`` computes it: long enough that from 10 Mbit/s
      up a whole batch of a router (1024 minimum-size frames, 61 KB) fits, so drops mean
      a link is overloaded rather than that a batch arrived at once; short enough that an
      overloaded link shows loss within a fraction of a second.

Statistics
    :func:`qdiscs` lists every qdisc with its parameters (tbf's rate, burst, limit) and its
    counters (sent bytes and packets, drops, overlimits, requeues, backlog); :func:`link_stats`
    lists every interface's counters (rx/tx packets, bytes, dropped, errors). Each snapshot
    carries the monotonic time it was read, and :func:`link_rates`/:func:`qdisc_rates` turn
    two snapshots into per-second rates. Link byte counters count frames without the FCS.
"""

from __future__ import annotations

import contextlib
import errno
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute, NetNS
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_DELQDISC, RTM_NEWQDISC, TC_H_ROOT
from pyroute2.netlink.rtnl.tcmsg import common as tc_common
from pyroute2.netlink.rtnl.tcmsg import tcmsg

from routebricks.errors import RouteBricksError

__all__ = [
    "DEFAULT_BURST_TIME",
    "DEFAULT_LATENCY",
    "FCS_LEN",
    "MAX_RATE",
    "MIN_FRAME",
    "MIN_RATE",
    "LinkRates",
    "LinkStats",
    "Qdisc",
    "QdiscRates",
    "default_burst",
    "default_limit",
    "format_rate",
    "link_rates",
    "link_stats",
    "parse_rate",
    "qdisc_rates",
    "qdiscs",
    "shape",
    "unshape",
]

#: Bytes a frame costs beyond its length in the kernel: the Ethernet FCS.
FCS_LEN = 4
#: The smallest Ethernet frame, FCS included: what a shorter frame costs on a wire.
MIN_FRAME = 64
ETH_HLEN = 14
VLAN_HLEN = 4
#: Seconds of traffic the default bucket holds (see the module docstring).
DEFAULT_BURST_TIME = 0.004
#: Seconds of traffic the default queue holds beyond the bucket.
DEFAULT_LATENCY = 0.050
#: Below this a full frame takes over a second: a missing unit ("20" for "20Mbit").
MIN_RATE = 8_000
#: tbf's rate is a 32-bit count of bytes per second (pyroute2 sends no 64-bit rate).
MAX_RATE = (2**32 - 1) * 8
_U32 = 2**32 - 1
_U16 = 2**16 - 1
_TC_LINKLAYER_ETHERNET = 1
_TIME_UNITS_PER_SEC = 1_000_000


# --------------------------------------------------------------------------
# Rates as text
# --------------------------------------------------------------------------
_RATE_RE = re.compile(
    r"^\s*(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e(?P<exp>[+-]?[0-9]+))?\s*"
    r"(?P<mult>[kmgt]?)(?P<unit>bit(?:/s)?|bps|b/s)?\s*$",
    re.IGNORECASE,
)
_MULT = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_rate(value: object, what: str = "rate", maximum: int | None = None) -> int:
    """Bits per second from a number (bits/s) or a string: ``"20Mbit"``, ``"1.5Gbit"``,
    ``"500kbit"``, ``"64000"``, ``"20Mbit/s"`` (k/M/G are powers of 1000). ``maximum``
    (default :data:`MAX_RATE`, tbf's) is the largest rate taken; ``0``: no limit (a rate
    that no qdisc shapes, such as a planner's).

    Strings ending in ``bps`` are refused: ``tc`` reads them as *bytes* per second and our
    traffic tools as bits, so they are ambiguous. Raises :class:`RouteBricksError`, naming
    ``what``, for anything else, 0, negatives, and rates outside
    [:data:`MIN_RATE`, :data:`MAX_RATE`].
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RouteBricksError(
            f"{what}: want bits per second as a number or a string such as '20Mbit', "
            f"not {value!r}")
    if isinstance(value, str):
        m = _RATE_RE.match(value)
        if not m:
            raise RouteBricksError(
                f"{what}: bad rate {value!r} (want e.g. 20Mbit, 1.5Gbit, 500kbit or 64000 "
                f"bits per second)")
        if m["unit"] and m["unit"].lower() in ("bps", "b/s"):
            raise RouteBricksError(
                f"{what}: {value!r} is ambiguous (tc reads 'bps' as bytes per second); "
                f"write bits per second as e.g. {m['num']}{m['mult']}bit")
        number = float(m["num"]) * 10 ** int(m["exp"] or 0) * _MULT[m["mult"].lower()]
    else:
        number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise RouteBricksError(f"{what}: a rate must be a positive number of bits/s, "
                               f"not {value!r}")
    bps = round(number)
    if bps < MIN_RATE:
        raise RouteBricksError(
            f"{what}: {value!r} is {bps} bit/s, below the minimum {format_rate(MIN_RATE)}"
            + (f" (a missing unit? e.g. {value}Mbit)" if isinstance(value, int | float)
               or str(value).strip().replace(".", "", 1).isdigit() else ""))
    limit = MAX_RATE if maximum is None else maximum
    if limit and bps > limit:
        raise RouteBricksError(
            f"{what}: {value!r} is above the maximum {format_rate(limit)}"
            + (" (tbf counts bytes per second in 32 bits)" if limit == MAX_RATE else ""))
    return bps


def format_rate(bps: float) -> str:
    """``20000000`` -> ``"20Mbit"``, ``1500000`` -> ``"1.5Mbit"``: exact, and read back
    by :func:`parse_rate`."""
    for mult, prefix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if bps >= mult:
            return f"{bps / mult:.12g}{prefix}bit"
    return f"{bps:.12g}bit"


# --------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Qdisc:
    """One qdisc and its counters, as the kernel reports them.

    ``rate`` (bits/s), ``burst``, ``limit`` (bytes), ``overhead`` and ``mpu`` are tbf's
    parameters (None for other kinds). ``handle``/``parent`` are in tc's notation (``"1:"``,
    ``"root"``). ``time`` is :func:`time.monotonic` when the snapshot was read.
    """

    interface: str
    index: int
    kind: str
    handle: str
    parent: str
    rate: int | None
    burst: int | None
    limit: int | None
    overhead: int | None
    mpu: int | None
    sent_bytes: int
    sent_packets: int
    drops: int
    overlimits: int
    requeues: int
    backlog: int  # bytes queued
    qlen: int  # packets queued
    time: float = field(compare=False)  # snapshots of the same state are equal


@dataclass(frozen=True)
class LinkStats:
    """One interface's counters (``IFLA_STATS64``); ``time`` as in :class:`Qdisc`."""

    interface: str
    index: int
    rx_packets: int
    rx_bytes: int
    rx_dropped: int
    rx_errors: int
    tx_packets: int
    tx_bytes: int
    tx_dropped: int
    tx_errors: int
    time: float = field(compare=False)  # snapshots of the same state are equal


@dataclass(frozen=True)
class LinkRates:
    """Per-second rates of one interface between two :func:`link_stats` snapshots."""

    interface: str
    interval: float
    rx_pps: float
    rx_bps: float
    rx_dropped_ps: float
    rx_errors_ps: float
    tx_pps: float
    tx_bps: float
    tx_dropped_ps: float
    tx_errors_ps: float


@dataclass(frozen=True)
class QdiscRates:
    """Per-second rates of one qdisc between two :func:`qdiscs` snapshots; ``backlog``
    and ``qlen`` are the later snapshot's."""

    interface: str
    kind: str
    handle: str
    interval: float
    pps: float
    bps: float
    drops_ps: float
    overlimits_ps: float
    backlog: int
    qlen: int


# --------------------------------------------------------------------------
# Netlink plumbing
# --------------------------------------------------------------------------
@contextlib.contextmanager
def _rtnl(ns: str | None) -> Iterator[IPRoute]:
    """A netlink socket in namespace ``ns`` (None: the caller's); a missing namespace is an
    error (``flags=0``: pyroute2 would otherwise create it)."""
    try:
        sock = IPRoute() if ns is None else NetNS(ns, flags=0)
    except FileNotFoundError:
        raise RouteBricksError(f"no network namespace {ns!r}") from None
    with sock:
        yield sock


def _where(ns: str | None, ifname: str) -> str:
    return f"{ns}:{ifname}" if ns is not None else ifname


def _link(ipr: IPRoute, ns: str | None, ifname: str) -> Any:
    idx = ipr.link_lookup(ifname=ifname)
    if not idx:
        names = sorted(str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links())
        raise RouteBricksError(
            f"no interface {ifname!r} in network namespace {ns or '(this one)'!r} "
            f"(it has: {', '.join(names)})")
    return ipr.get_links(idx[0])[0]


def _request(ipr: IPRoute, msg: tcmsg, msg_type: int, flags: int) -> None:
    # pyroute2 0.9's synchronous nlm_request reads status["nlm_generator"], which
    # IPRoute/NetNS never set; tc()'s tbf plugin cannot send overhead/mpu, hence the raw
    # message.
    if "nlm_generator" not in ipr.status:
        ipr.status["nlm_generator"] = False
    list(ipr.nlm_request(msg, msg_type=msg_type, msg_flags=flags))


def _ticks(rate_bytes: int, size: int) -> int:
    """tc's psched ticks to send ``size`` bytes at ``rate_bytes`` bytes/s."""
    return int(tc_common.calc_xmittime(rate_bytes, size))


def _xmitsize(rate_bytes: int, ticks: int) -> int:
    """Bytes sent in ``ticks`` at ``rate_bytes`` (tc_calc_xmitsize, truncating as tc does,
    so a burst reads back as ``tc`` prints it)."""
    usec = int(ticks / tc_common.tick_in_usec)
    return int(rate_bytes * usec / _TIME_UNITS_PER_SEC)


def default_burst(rate_bps: int, mtu: int, overhead: int = FCS_LEN) -> int:
    """The bucket :func:`shape` uses by default: one largest frame or
    :data:`DEFAULT_BURST_TIME` at the rate, whichever is larger (bytes)."""
    return max(mtu + ETH_HLEN + VLAN_HLEN + overhead,
               math.ceil(rate_bps / 8 * DEFAULT_BURST_TIME))


def default_limit(rate_bps: int, burst: int, latency: float = DEFAULT_LATENCY) -> int:
    """The queue :func:`shape` uses by default: ``latency`` at the rate plus the burst
    (bytes), as ``tc ... tbf latency`` computes it."""
    return math.ceil(rate_bps / 8 * latency) + burst


# --------------------------------------------------------------------------
# Shaping
# --------------------------------------------------------------------------
def shape(
    ns: str | None,
    ifname: str,
    rate_bps: int | float | str,
    *,
    burst: int | None = None,
    limit: int | None = None,
    latency: float | None = None,
    overhead: int = FCS_LEN,
    mpu: int = MIN_FRAME,
) -> Qdisc:
    """Replace ``ifname``'s root qdisc (in namespace ``ns``; None: the caller's) with a
    tbf at ``rate_bps`` (bits/s, or a string such as ``"20Mbit"``; tbf keeps whole bytes
    per second), and return it as read back from the kernel.

    ``burst`` (bytes) defaults to :func:`default_burst`; the queue is ``limit`` bytes, or
    ``latency`` seconds at the rate plus the burst (default :data:`DEFAULT_LATENCY`).
    ``overhead`` and ``mpu`` (bytes) are what each frame costs beyond its length, and at
    least (see the module docstring). Errors a user can cause are
    :class:`RouteBricksError`\\ s naming the argument.
    """
    where = _where(ns, ifname)
    rate = parse_rate(rate_bps, f"{where}: rate")
    if limit is not None and latency is not None:
        raise RouteBricksError(f"{where}: give limit (bytes) or latency (seconds), not both")
    for name, v in (("overhead", overhead), ("mpu", mpu)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _U16:
            raise RouteBricksError(f"{where}: {name} must be 0..{_U16} bytes, not {v!r}")
    rate_bytes = round(rate / 8)
    with _rtnl(ns) as ipr:
        link = _link(ipr, ns, ifname)
        mtu = int(link.get_attr("IFLA_MTU") or 1500)
        frame = mtu + ETH_HLEN + VLAN_HLEN + overhead
        if burst is None:
            burst = default_burst(rate, mtu, overhead)
        elif isinstance(burst, bool) or not isinstance(burst, int) or burst < frame:
            raise RouteBricksError(
                f"{where}: burst must be at least one full frame, {frame} bytes (MTU {mtu} "
                f"+ headers + overhead {overhead}): tbf drops every frame larger than its "
                f"bucket; not {burst!r}")
        ticks = _ticks(rate_bytes, burst)
        if ticks > _U32:
            raise RouteBricksError(
                f"{where}: burst {burst} bytes is {burst / rate_bytes:.0f} s at "
                f"{format_rate(rate)}, too long for tbf; use a smaller burst")
        if latency is not None:
            if isinstance(latency, bool) or not isinstance(latency, int | float) or not (
                    0 < latency <= 60):
                raise RouteBricksError(
                    f"{where}: latency must be 0 < seconds <= 60, not {latency!r}")
            limit = default_limit(rate, burst, latency)
        elif limit is None:
            limit = default_limit(rate, burst)
        elif isinstance(limit, bool) or not isinstance(limit, int) or not (
                frame <= limit <= _U32):
            raise RouteBricksError(
                f"{where}: limit must hold at least one full frame, {frame} bytes, and fit "
                f"32 bits; not {limit!r}")
        limit = min(limit, _U32)

        msg = tcmsg()
        msg["index"] = link["index"]
        msg["handle"] = 0x10000  # 1:
        msg["parent"] = TC_H_ROOT
        parms = {
            "rate": rate_bytes,
            "buffer": ticks,
            "limit": limit,
            "mtu": 0,
            "rate_overhead": overhead,
            "rate_mpu": mpu,
            "rate___reserved": _TC_LINKLAYER_ETHERNET,  # tc_ratespec.linklayer
        }
        msg["attrs"] = [
            ["TCA_KIND", "tbf"],
            ["TCA_OPTIONS", {"attrs": [["TCA_TBF_PARMS", parms], ["TCA_TBF_RTAB", True]]}],
        ]
        try:
            _request(ipr, msg, RTM_NEWQDISC,
                     NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
        except NetlinkError as e:
            raise RouteBricksError(
                f"{where}: the kernel refused a tbf at {format_rate(rate)} (burst {burst}, "
                f"limit {limit}): {e} (is sch_tbf available?)") from None
        now = [q for q in _dump_qdiscs(ipr) if q.index == link["index"] and q.parent == "root"]
    if not now or now[0].kind != "tbf":
        raise RouteBricksError(f"{where}: the tbf did not take (root qdisc is "
                               f"{now[0].kind if now else 'missing'})")
    return now[0]


def unshape(ns: str | None, ifname: str) -> bool:
    """Remove ``ifname``'s root qdisc, restoring the kernel's default (``noqueue`` on a
    veth). Returns False if it had none of its own to remove."""
    where = _where(ns, ifname)
    with _rtnl(ns) as ipr:
        link = _link(ipr, ns, ifname)
        msg = tcmsg()
        msg["index"] = link["index"]
        msg["handle"] = 0
        msg["parent"] = TC_H_ROOT
        try:
            _request(ipr, msg, RTM_DELQDISC, NLM_F_REQUEST | NLM_F_ACK)
        except NetlinkError as e:
            # ENOENT/EINVAL: the root is the default qdisc (handle 0), which cannot go.
            if e.code in (errno.ENOENT, errno.EINVAL):
                return False
            raise RouteBricksError(f"{where}: could not remove the root qdisc: {e}") from None
    return True


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------
def _handle(h: int) -> str:
    major, minor = h >> 16, h & 0xFFFF
    return f"{major:x}:{minor:x}" if minor else f"{major:x}:"


def _names(ipr: IPRoute) -> dict[int, str]:
    return {int(link["index"]): str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()}


def _dump_qdiscs(ipr: IPRoute) -> list[Qdisc]:
    names = _names(ipr)
    msgs = list(ipr.tc("dump"))
    now = time.monotonic()
    out = []
    for m in msgs:
        kind = str(m.get_attr("TCA_KIND"))
        sent_bytes = sent_packets = drops = overlimits = requeues = backlog = qlen = 0
        stats2 = m.get_attr("TCA_STATS2")
        basic = stats2.get_attr("TCA_STATS_BASIC") if stats2 else None
        queue = stats2.get_attr("TCA_STATS_QUEUE") if stats2 else None
        if basic is not None and queue is not None:
            sent_bytes, sent_packets = basic["bytes"], basic["packets"]
            drops, overlimits = queue["drops"], queue["overlimits"]
            requeues, backlog, qlen = queue["requeues"], queue["backlog"], queue["qlen"]
        elif (st := m.get_attr("TCA_STATS")) is not None:  # kernels without TCA_STATS2
            sent_bytes, sent_packets = st["bytes"], st["packets"]
            drops, overlimits, backlog, qlen = st["drop"], st["overlimits"], st["backlog"], \
                st["qlen"]
        rate = burst = limit = overhead = mpu = None
        opts = m.get_attr("TCA_OPTIONS") if kind == "tbf" else None
        parms = opts.get_attr("TCA_TBF_PARMS") if opts is not None else None
        if parms is not None:
            rate = parms["rate"] * 8
            burst = _xmitsize(parms["rate"], parms["buffer"])
            limit, overhead, mpu = parms["limit"], parms["rate_overhead"], parms["rate_mpu"]
        index = int(m["index"])
        out.append(Qdisc(
            interface=names.get(index, f"if{index}"), index=index, kind=kind,
            handle=_handle(m["handle"]),
            parent="root" if m["parent"] == TC_H_ROOT else _handle(m["parent"]),
            rate=rate, burst=burst, limit=limit, overhead=overhead, mpu=mpu,
            sent_bytes=sent_bytes, sent_packets=sent_packets, drops=drops,
            overlimits=overlimits, requeues=requeues, backlog=backlog, qlen=qlen, time=now,
        ))
    return out


def qdiscs(ns: str | None, ifname: str | None = None) -> list[Qdisc]:
    """Every qdisc in namespace ``ns`` (None: the caller's), or of interface ``ifname``."""
    with _rtnl(ns) as ipr:
        if ifname is not None:
            index = int(_link(ipr, ns, ifname)["index"])
            return [q for q in _dump_qdiscs(ipr) if q.index == index]
        return _dump_qdiscs(ipr)


def link_stats(ns: str | None, ifname: str | None = None) -> list[LinkStats]:
    """Every interface's counters in namespace ``ns`` (None: the caller's), or ``ifname``'s."""
    with _rtnl(ns) as ipr:
        links = [_link(ipr, ns, ifname)] if ifname is not None else list(ipr.get_links())
    now = time.monotonic()
    out = []
    for link in links:
        s = link.get_attr("IFLA_STATS64") or link.get_attr("IFLA_STATS") or {}
        out.append(LinkStats(
            interface=str(link.get_attr("IFLA_IFNAME")), index=int(link["index"]),
            rx_packets=s.get("rx_packets", 0), rx_bytes=s.get("rx_bytes", 0),
            rx_dropped=s.get("rx_dropped", 0), rx_errors=s.get("rx_errors", 0),
            tx_packets=s.get("tx_packets", 0), tx_bytes=s.get("tx_bytes", 0),
            tx_dropped=s.get("tx_dropped", 0), tx_errors=s.get("tx_errors", 0),
            time=now,
        ))
    return out


# --------------------------------------------------------------------------
# Rates from two snapshots
# --------------------------------------------------------------------------
def _pairs(before: Sequence[Any], after: Sequence[Any], key: Any,
           counters: Sequence[str]) -> Iterator[tuple[Any, Any, float]]:
    """Matching entries of two snapshots with the seconds between them; an entry that
    appeared, disappeared, or was recreated (a counter went backwards) is left out."""
    old = {key(x): x for x in before}
    for new in after:
        prev = old.get(key(new))
        if prev is None:
            continue
        dt = new.time - prev.time
        if dt <= 0 or any(getattr(new, c) < getattr(prev, c) for c in counters):
            continue
        yield prev, new, dt


def link_rates(before: Sequence[LinkStats], after: Sequence[LinkStats]) -> list[LinkRates]:
    """Per-second rates per interface between two :func:`link_stats` snapshots (``after``
    taken later). Bits per second count frames without the FCS."""
    counters = ("rx_packets", "rx_bytes", "rx_dropped", "rx_errors",
                "tx_packets", "tx_bytes", "tx_dropped", "tx_errors")
    out = []
    for a, b, dt in _pairs(before, after, lambda x: (x.index, x.interface), counters):
        d = {c: (getattr(b, c) - getattr(a, c)) / dt for c in counters}
        out.append(LinkRates(
            interface=b.interface, interval=dt,
            rx_pps=d["rx_packets"], rx_bps=8 * d["rx_bytes"],
            rx_dropped_ps=d["rx_dropped"], rx_errors_ps=d["rx_errors"],
            tx_pps=d["tx_packets"], tx_bps=8 * d["tx_bytes"],
            tx_dropped_ps=d["tx_dropped"], tx_errors_ps=d["tx_errors"],
        ))
    return out


def qdisc_rates(before: Sequence[Qdisc], after: Sequence[Qdisc]) -> list[QdiscRates]:
    """Per-second rates per qdisc between two :func:`qdiscs` snapshots: what it sent
    (packets, bits without the FCS), dropped, and held back for lack of tokens."""
    counters = ("sent_packets", "sent_bytes", "drops", "overlimits")
    out = []
    for a, b, dt in _pairs(before, after, lambda x: (x.index, x.handle, x.parent, x.kind),
                           counters):
        out.append(QdiscRates(
            interface=b.interface, kind=b.kind, handle=b.handle, interval=dt,
            pps=(b.sent_packets - a.sent_packets) / dt,
            bps=8 * (b.sent_bytes - a.sent_bytes) / dt,
            drops_ps=(b.drops - a.drops) / dt,
            overlimits_ps=(b.overlimits - a.overlimits) / dt,
            backlog=b.backlog, qlen=b.qlen,
        ))
    return out
