"""ARP helpers shared by ARPQuerier and ARPResponder: frame layout, vectorized frame building,
and the ARP table (Click's ARPTable, without being an element of its own).

The table keeps two views of the same entries:

* a ``dict`` from IPv4 address (``int``) to :class:`ArpEntry`, for the control plane: replies,
  handlers, queued packets, polling state and the age order (Click's age list);
* a sorted ``uint32`` array of the addresses whose Ethernet address is known, with parallel
  arrays of Ethernet addresses (``(n, 6) uint8``) and last-reply times, for the data plane:
  :meth:`ArpTable.lookup` resolves a whole batch of next hops with one ``np.searchsorted``.

The arrays are rebuilt lazily, on the first lookup after a change; entries change on ARP
replies and handler writes, which are rare next to data packets.
"""

from __future__ import annotations

import collections
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from routebricks.engine import addresses
from routebricks.engine.argtext import unquote
from routebricks.packet.batch import PacketBatch

# ---------------------------------------------------------------------- frame layout
ETHER_HLEN = 14
ETHERTYPE_IP = 0x0800
ETHERTYPE_ARP = 0x0806
ARPHRD_ETHER = 1
ARPOP_REQUEST = 1
ARPOP_REPLY = 2
#: Ethernet header + ARP for IPv4 over Ethernet (RFC 826), unpadded: what Click sends.
ARP_FRAME_LEN = 42

# Offsets from the start of the Ethernet frame.
OFF_ETHER_DST = 0
OFF_ETHER_SRC = 6
OFF_ETHER_TYPE = 12
OFF_ARP_HRD = 14
OFF_ARP_PRO = 16
OFF_ARP_HLN = 18
OFF_ARP_PLN = 19
OFF_ARP_OP = 20
OFF_ARP_SHA = 22
OFF_ARP_SPA = 28
OFF_ARP_THA = 32
OFF_ARP_TPA = 38

BROADCAST_ETHER = b"\xff" * 6
ZERO_ETHER = b"\x00" * 6

#: Ethernet type, hardware type, protocol type, hln, pln: the fixed bytes 12..19.
_ARP_FIXED = bytes.fromhex("0806000108000604")


def unparse_ether(addr: bytes) -> str:
    """An Ethernet address as Click prints it: upper-case hex with dashes."""
    return "-".join(f"{b:02X}" for b in addr)


def ether_rows(addr: bytes) -> np.ndarray:
    """One Ethernet address as a (1, 6) ``uint8`` row (broadcasts in ``set_bytes_at``)."""
    return np.frombuffer(bytes(addr), np.uint8).reshape(1, 6)


def ip_rows(ips: np.ndarray) -> np.ndarray:
    """IPv4 addresses (``uint32``, host order) as (n, 4) network-order byte rows."""
    return np.ascontiguousarray(np.asarray(ips, ">u4").view(np.uint8).reshape(-1, 4))


def multicast_ether_rows(ips: np.ndarray) -> np.ndarray:
    """RFC 1112 mapping of multicast IPv4 addresses: 01-00-5E and the low 23 address bits."""
    ips = np.asarray(ips, np.uint32)
    rows = np.empty((ips.shape[0], 6), np.uint8)
    rows[:, 0] = 0x01
    rows[:, 1] = 0x00
    rows[:, 2] = 0x5E
    rows[:, 3] = (ips >> 16) & 0x7F
    rows[:, 4] = (ips >> 8) & 0xFF
    rows[:, 5] = ips & 0xFF
    return rows


def build_arp_frames(
    op: int,
    ether_dst: np.ndarray,
    ether_src: np.ndarray,
    sha: np.ndarray,
    spa: np.ndarray,
    tha: np.ndarray,
    tpa: np.ndarray,
) -> PacketBatch:
    """A batch of 42-byte Ethernet/ARP frames, one per row, built in one byte matrix.

    Address arguments are ``(n, 6)`` / ``(n, 4)`` byte rows, or single ``(1, w)`` rows shared
    by every frame; ``n`` is the largest row count given.
    """
    n = max(a.shape[0] for a in (ether_dst, ether_src, sha, spa, tha, tpa))
    data = np.empty((n, ARP_FRAME_LEN), np.uint8)
    data[:, OFF_ETHER_DST : OFF_ETHER_DST + 6] = ether_dst
    data[:, OFF_ETHER_SRC : OFF_ETHER_SRC + 6] = ether_src
    data[:, OFF_ETHER_TYPE:OFF_ARP_OP] = np.frombuffer(_ARP_FIXED, np.uint8)
    data[:, OFF_ARP_OP] = (op >> 8) & 0xFF
    data[:, OFF_ARP_OP + 1] = op & 0xFF
    data[:, OFF_ARP_SHA : OFF_ARP_SHA + 6] = sha
    data[:, OFF_ARP_SPA : OFF_ARP_SPA + 4] = spa
    data[:, OFF_ARP_THA : OFF_ARP_THA + 6] = tha
    data[:, OFF_ARP_TPA : OFF_ARP_TPA + 4] = tpa
    return PacketBatch.from_arrays(data, np.full(n, ARP_FRAME_LEN, np.int64))


def parse_ip_or_prefix(text: str) -> tuple[int, int]:
    """``10.0.0.1`` or ``10.0.0.1/24`` (or ``10.0.0.1/255.255.255.0``): the address (not
    masked) and the mask, as integers; a bare address has mask 255.255.255.255."""
    t = unquote(text).strip()
    addr, _, mask = t.partition("/")
    try:
        ip = int(ipaddress.IPv4Address(addr.strip()))
        if not mask:
            return ip, 0xFFFFFFFF
        net = ipaddress.IPv4Network(f"0.0.0.0/{mask.strip()}")
        return ip, int(net.netmask)
    except ValueError:
        # An AddressInfo name: its address if it has one (Click prefers it), else its prefix.
        ip_n = addresses.lookup(t, "ip") if not mask else None
        if isinstance(ip_n, int):
            return ip_n, 0xFFFFFFFF
        net_n = addresses.lookup(t, "ipnet")
        if isinstance(net_n, tuple):
            return net_n[0], (0xFFFFFFFF << (32 - net_n[1])) & 0xFFFFFFFF
        raise ValueError("expected an IPv4 address or prefix such as 10.0.0.1/24") from None


# ---------------------------------------------------------------------- the table
@dataclass(eq=False)
class ArpEntry:
    """One address: its Ethernet address once known, timers, and packets waiting for it."""

    ip: int
    live_at: float  # last reply (or creation); the entry expires TIMEOUT after it
    polled_at: float  # last query sent for it
    eth: bytes = BROADCAST_ETHER
    known: bool = False
    polls: int = 0  # queries since the last reply
    queue: collections.deque[PacketBatch] = field(default_factory=collections.deque)
    qlen: int = 0  # packets in ``queue``

    def expired(self, now: float, timeout: float) -> bool:
        return bool(timeout) and self.live_at + timeout < now

    def is_known(self, now: float, timeout: float) -> bool:
        return self.known and not self.expired(now, timeout)

    def allow_poll(self, now: float) -> bool:
        """At most 10 queries a second; every 2 s after 10 unanswered ones (Click)."""
        return now >= self.polled_at + (2.0 if self.polls >= 10 else 0.1)

    def mark_poll(self, now: float) -> None:
        self.polled_at = now
        if self.polls < 255:
            self.polls += 1

    def take(self) -> list[PacketBatch]:
        """Remove and return the queued packets, oldest first."""
        out = list(self.queue)
        self.queue.clear()
        self.qlen = 0
        return out

    def drop_oldest(self, n: int) -> int:
        """Drop up to ``n`` of the oldest queued packets; return how many were dropped."""
        done = 0
        while done < n and self.queue:
            head = self.queue[0]
            k = len(head)
            if k <= n - done:
                self.queue.popleft()
                done += k
            else:
                cut = n - done
                self.queue[0] = head.slice(cut, k)
                done += cut
        self.qlen -= done
        return done


DropFn = Callable[[int, str], None]

#: Drop reasons (the ``drops`` breakdown of the owning element).
DROP_EXPIRED = "no ARP reply before the entry expired"
DROP_QUEUE_FULL = "ARP queue full"
DROP_TABLE_FULL = "ARP table full"
DROP_CLEARED = "ARP table cleared"


class ArpTable:
    """IP-to-Ethernet mappings with per-address packet queues (Click's ARPTable).

    Arguments: ``timeout`` seconds until an entry expires (0: never); ``capacity`` packets
    queued over all addresses (0: unlimited), trimmed down to ``capacity - capacity //
    slim_factor`` when exceeded; ``entry_capacity`` entries (0: unlimited);
    ``entry_packet_capacity`` packets queued per address (0: unlimited). ``on_drop(n, reason)``
    is told about every packet the table drops.
    """

    def __init__(
        self,
        *,
        timeout: float = 300.0,
        capacity: int = 2048,
        entry_capacity: int = 0,
        entry_packet_capacity: int = 0,
        slim_factor: int = 2,
        on_drop: DropFn | None = None,
    ) -> None:
        self.timeout = timeout
        self.capacity = capacity
        self.entry_capacity = entry_capacity
        self.entry_packet_capacity = entry_packet_capacity
        self.slim_factor = slim_factor
        self.on_drop = on_drop
        self.entries: dict[int, ArpEntry] = {}
        self.packet_count = 0
        self.drops = 0
        self._dirty = True
        self._keys = np.zeros(0, np.uint32)
        self._macs = np.zeros((0, 6), np.uint8)
        self._live = np.zeros(0, np.float64)
        self._ents: list[ArpEntry] = []

    # ------------------------------------------------------------------ bookkeeping
    def __len__(self) -> int:
        return len(self.entries)

    def _drop(self, n: int, reason: str) -> None:
        if n:
            self.drops += n
            self.packet_count -= n
            if self.on_drop is not None:
                self.on_drop(n, reason)

    def _remove(self, e: ArpEntry, reason: str) -> None:
        del self.entries[e.ip]
        n = e.qlen
        e.take()
        self._drop(n, reason)
        if e.known:
            self._dirty = True

    def _age_order(self) -> list[ArpEntry]:
        """Entries oldest first: by last reply time, ties in insertion/refresh order."""
        return sorted(self.entries.values(), key=lambda e: e.live_at)

    # ------------------------------------------------------------------ data plane
    def _rebuild(self) -> None:
        ents = sorted((e for e in self.entries.values() if e.known), key=lambda e: e.ip)
        self._ents = ents
        self._keys = np.fromiter((e.ip for e in ents), np.uint32, len(ents))
        self._macs = (
            np.frombuffer(b"".join(e.eth for e in ents), np.uint8).reshape(-1, 6).copy()
            if ents
            else np.zeros((0, 6), np.uint8)
        )
        self._live = np.fromiter((e.live_at for e in ents), np.float64, len(ents))
        self._dirty = False

    def lookup(self, ips: np.ndarray, now: float) -> np.ndarray:
        """For each address, the index of its known, unexpired entry (see :meth:`macs`),
        or -1. One sorted-array search for the whole batch."""
        if self._dirty:
            self._rebuild()
        n = ips.shape[0]
        m = self._keys.shape[0]
        if not m or not n:
            return np.full(n, -1, np.int64)
        pos = np.minimum(np.searchsorted(self._keys, ips), m - 1)
        hit = self._keys[pos] == ips
        if self.timeout:
            hit &= self._live[pos] + self.timeout >= now
        return np.where(hit, pos, -1)

    def macs(self, idx: np.ndarray) -> np.ndarray:
        """The Ethernet addresses of entries ``idx`` (from :meth:`lookup`), (k, 6) rows."""
        return self._macs[idx]

    def due_polls(self, idx: np.ndarray, now: float, poll_timeout: float) -> list[ArpEntry]:
        """The entries among ``idx`` (hits from :meth:`lookup`) whose last reply is at least
        ``poll_timeout`` old and that may be polled now; they are marked as polled."""
        if not poll_timeout or not idx.shape[0]:
            return []
        old = np.unique(idx[self._live[idx] + poll_timeout <= now])
        out = []
        for i in old.tolist():
            e = self._ents[i]
            if e.allow_poll(now):
                e.mark_poll(now)
                out.append(e)
        return out

    def append_query(self, ip: int, packets: PacketBatch, now: float) -> bool:
        """Queue ``packets`` (all for ``ip``, oldest first) until ``ip`` is resolved.

        Returns whether a query for ``ip`` should be sent now (rate-limited per address).
        The caller has checked, at time ``now``, that ``ip`` has no known entry.
        """
        e = self._ensure(ip, now)
        if e.known and e.expired(now, self.timeout):
            # An expired mapping is resolved afresh: unknown from now on, and the packets
            # get a whole TIMEOUT to wait for the reply.
            e.known = False
            e.live_at = now
            self._dirty = True
        k = len(packets)
        if k:
            if self.capacity and self.packet_count + k > self.capacity:
                self._slim_packets(k)
            e.queue.append(packets)
            e.qlen += k
            self.packet_count += k
            if self.capacity:
                over = self.packet_count - self._slim_target()
                if over > 0 and self.packet_count > self.capacity:
                    # The new packets alone exceed the trimmed capacity: keep the newest.
                    self._drop(e.drop_oldest(over), DROP_QUEUE_FULL)
            if self.entry_packet_capacity and e.qlen > self.entry_packet_capacity:
                self._drop(e.drop_oldest(e.qlen - self.entry_packet_capacity), DROP_QUEUE_FULL)
        if e.allow_poll(now):
            e.mark_poll(now)
            return True
        return False

    # ------------------------------------------------------------------ control plane
    def _ensure(self, ip: int, now: float) -> ArpEntry:
        e = self.entries.get(ip)
        if e is None:
            if self.entry_capacity and len(self.entries) + 1 > self.entry_capacity:
                self.slim(now, extra_entries=1)
            e = ArpEntry(ip, live_at=now, polled_at=now - 1.0)
            self.entries[ip] = e
        return e

    def insert(self, ip: int, eth: bytes, now: float, *, release: bool = True) -> list[PacketBatch]:
        """Record ``ip`` at ``eth`` (a reply); return the packets that waited for it, oldest
        first (left queued if ``release`` is false). ``eth`` = FF-FF-FF-FF-FF-FF marks the
        entry unknown (Click's ``delete``)."""
        e = self._ensure(ip, now)
        was = (e.known, e.eth, e.live_at)
        e.eth = bytes(eth)
        e.known = e.eth != BROADCAST_ETHER
        e.live_at = now
        e.polls = 0
        e.polled_at = now - 1.0
        # Move to the young end of the age order.
        del self.entries[ip]
        self.entries[ip] = e
        if was[:2] == (True, e.eth) and e.known and not self._dirty:
            # A refresh (typically a poll's answer): update the lookup arrays in place.
            self._live[np.searchsorted(self._keys, np.uint32(ip))] = now
        elif was != (e.known, e.eth, e.live_at):
            self._dirty = True
        if not release:
            return []
        n = e.qlen
        out = e.take()
        self.packet_count -= n
        return out

    def clear(self) -> None:
        """Delete every entry; queued packets are dropped."""
        for e in list(self.entries.values()):
            self._remove(e, DROP_CLEARED)
        self._dirty = True

    def _slim_target(self) -> int:
        return max(self.capacity - self.capacity // self.slim_factor, 1)

    def _slim_packets(self, incoming: int) -> None:
        """Drop queued packets, oldest entries first, so that ``incoming`` new ones fit
        under the trimmed capacity (Click's ARPTable::slim)."""
        keep = max(self._slim_target() - incoming, 0)
        for e in self._age_order():
            if self.packet_count <= keep:
                break
            if e.qlen:
                self._drop(e.drop_oldest(self.packet_count - keep), DROP_QUEUE_FULL)

    def slim(self, now: float, extra_entries: int = 0) -> None:
        """Delete expired entries (dropping their packets) and, beyond ``entry_capacity``,
        the oldest entries; then trim queued packets to the capacity."""
        for e in self._age_order():
            if e.expired(now, self.timeout):
                self._remove(e, DROP_EXPIRED)
            elif self.entry_capacity and len(self.entries) + extra_entries > self.entry_capacity:
                self._remove(e, DROP_TABLE_FULL)
            else:
                break
        if self.capacity and self.packet_count > self.capacity:
            self._slim_packets(0)

    def table_text(self, now: float) -> str:
        """Click's ``table`` format: ``IP OK ETH AGE`` per entry, oldest first."""
        lines = []
        for e in self._age_order():
            ok = 1 if e.is_known(now, self.timeout) else 0
            lines.append(
                f"{_ip_str(e.ip)} {ok} {unparse_ether(e.eth)} {max(now - e.live_at, 0.0):.6f}\n"
            )
        return "".join(lines)


def _ip_str(v: int) -> str:
    return f"{(v >> 24) & 255}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"
