"""ARPQuerier: encapsulates IP packets in Ethernet headers, finding next hops' addresses by ARP."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable

import numpy as np

from routebricks.elements.ethernet.arptable import (
    ARP_FRAME_LEN,
    ARPHRD_ETHER,
    ARPOP_REPLY,
    ARPOP_REQUEST,
    BROADCAST_ETHER,
    ETHER_HLEN,
    ETHERTYPE_ARP,
    ETHERTYPE_IP,
    OFF_ARP_HRD,
    OFF_ARP_OP,
    OFF_ARP_PRO,
    OFF_ARP_SHA,
    OFF_ARP_SPA,
    OFF_ETHER_SRC,
    OFF_ETHER_TYPE,
    ZERO_ETHER,
    ArpEntry,
    ArpTable,
    build_arp_frames,
    ether_rows,
    ip_rows,
    multicast_ether_rows,
    parse_ip_or_prefix,
    unparse_ether,
)
from routebricks.engine import clock
from routebricks.engine.args import (
    Arg,
    Bool,
    EtherAddress,
    IPAddress,
    PosInt,
    Raw,
    Seconds,
    UInt,
)
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch

DROP_ZERO = "dst_ip annotation is 0.0.0.0"
DROP_NO_IP = "no IP address configured"
DROP_SHORT_REPLY = "shorter than an ARP packet"
DROP_NOT_REPLY = "not an IPv4-over-Ethernet ARP reply"
DROP_GROUP_SENDER = "ARP reply from a group Ethernet address"


class ARPQuerier(Element):
    """Encapsulates IP packets in Ethernet headers, finding next hops' addresses by ARP.

    Ports: 2 push inputs (0: IP packets, 1: ARP replies); 1 or 2 push outputs (0: Ethernet
        packets; ARP queries on the last output).
    Arguments:
        IP (IPv4 address or prefix, positional, required): this interface's address, the
            ARP queries' sender address. A prefix (``10.0.0.1/24``) also sets BROADCAST.
        ETH (Ethernet address, positional, required): this interface's Ethernet address.
        TIMEOUT (time, default 5min): how long an entry lives after its last reply; 0
            means entries never expire. Packets still waiting when their entry expires are
            dropped.
        POLL_TIMEOUT (time, default 1min): age of an entry after which each use of it also
            sends a query (a poll) to refresh it before it expires; 0 means never poll.
        CAPACITY (unsigned, default 2048): packets waiting for ARP replies, over all
            addresses; 0 means unlimited.
        CAPACITY_SLIM_FACTOR (positive integer, default 2): when CAPACITY is exceeded,
            waiting packets are dropped down to CAPACITY - CAPACITY / CAPACITY_SLIM_FACTOR.
        ENTRY_CAPACITY (unsigned, default 0): most entries in the table (the least recently
            answered are deleted first); 0 means unlimited.
        ENTRY_PACKET_CAPACITY (unsigned, default 0): packets waiting per address (the
            oldest are dropped); 0 means unlimited.
        BROADCAST (IPv4 address): the local broadcast address, sent to FF-FF-FF-FF-FF-FF.
            Default: from the IP prefix, or 255.255.255.255 only.
        BROADCAST_POLL (bool, default false): send polls to the broadcast address instead
            of the known Ethernet address.
        TABLE (element name): an ARPTable element to use (and share with other queriers)
            instead of a table of its own; the capacity and timeout arguments are then
            the ARPTable's.
    Behaviour: every packet on input 0 gets a 14-byte Ethernet header (type 0x0800, source
        ETH; room is made only if a packet lacks it). The next hop is the packet's dst_ip
        annotation. The whole batch of next hops is resolved at once against the table (a
        sorted address array, one ``searchsorted``); known, unexpired addresses get their
        Ethernet address. Other destinations are mapped as Click does: 255.255.255.255 and
        BROADCAST to FF-FF-FF-FF-FF-FF, multicast 224.0.0.0/4 to 01-00-5E plus the low 23
        address bits; 0.0.0.0 is dropped and counted (warning once). Packets for unknown
        addresses are copied into a pool of their own (waiting packets do not pin the input
        batch) and wait in their address's queue; an ARP query for the address goes out
        of the last output, at most 10 a second per address (after 10 unanswered queries,
        one every 2 s). A packet for an expired entry makes it unknown again, with a whole
        TIMEOUT for the answer. Resolved packets leave on output 0 in arrival order. ARP queries
        are 42-byte frames (Ethernet + ARP, unpadded, as Click sends them): broadcast
        destination, sender ETH/IP, target hardware address zero, target the wanted
        address; their timestamp annotation is the triggering packet's. On input 1,
        packets of at least 42 bytes count as responses; those that are ARP replies for
        IPv4 over Ethernet with a unicast sender hardware address create or refresh the
        entry of the sender protocol address, and that address's waiting packets are
        sent on output 0 in arrival order; such replies are consumed. Every other input 1
        packet is dropped and counted: "shorter than an ARP packet", "not an
        IPv4-over-Ethernet ARP reply", "ARP reply from a group Ethernet address". A timer
        deletes expired entries every TIMEOUT while the router runs; lookups never use an
        expired entry.
    Handlers:
        table (read): one line per entry, least recently answered first: ``IP OK ETH AGE``
            (OK 1 when known and unexpired; AGE seconds since the last reply).
        stats (read): ``N packets killed`` and ``M ARP queries sent`` lines (killed counts
            the querier's and the table's drops).
        count (read): entries in the table. length (read): packets waiting.
        queries (read): ARP queries sent. responses (read): packets received on input 1.
        drops (read): packets the querier itself dropped (0.0.0.0, unconfigured); drops by
            the table (capacity, timeouts) are in stats.
        insert (write): ``IP ETH`` adds or refreshes an entry; packets waiting for IP are
            sent.
        delete (write): ``IP`` marks the entry unknown (its waiting packets keep waiting).
        clear (write): deletes every entry (waiting packets are dropped) and zeroes
            queries, responses and drops.
        ipaddr (read/write): this interface's IP address.
        broadcast (read/write): the local broadcast address.
    Example:
        c :: Classifier(12/0806 20/0002, 12/0800, -);
        aq :: ARPQuerier(10.0.0.1/24, 02:00:00:00:00:01);
        c[0] -> [1]aq;
        c[1] -> Strip(14) -> CheckIPHeader -> ... -> [0]aq;
        aq -> Queue -> ToDevice(eth0);
    See also: ARPResponder, EtherEncap
    """

    port_count = "2/1-2"
    processing = "h/h"
    ARGS = (
        Arg("IP", Raw, positional=True, required=True, attr="ip_arg"),
        Arg("ETH", EtherAddress, positional=True, required=True, attr="eth"),
        Arg("TIMEOUT", Seconds, 300.0),
        Arg("POLL_TIMEOUT", Seconds, 60.0),
        Arg("CAPACITY", UInt, 2048),
        Arg("CAPACITY_SLIM_FACTOR", PosInt, 2),
        Arg("ENTRY_CAPACITY", UInt, 0),
        Arg("ENTRY_PACKET_CAPACITY", UInt, 0),
        Arg("BROADCAST", IPAddress, None),
        Arg("BROADCAST_POLL", Bool, False),
        Arg("TABLE", Raw, None, attr="table_name"),
    )

    #: The clock (seconds, monotonic); tests may replace it on an instance.
    clock: Callable[[], float] = staticmethod(clock.monotonic)

    def configure(self) -> None:
        try:
            self.my_ip, mask = parse_ip_or_prefix(self.ip_arg)
        except ValueError as e:
            raise self.error(f"bad value {self.ip_arg!r} for IP: {e}") from None
        self.eth = bytes(self.eth)
        if self.broadcast is None:
            bcast = self.my_ip | (~mask & 0xFFFFFFFF)
            self.broadcast = 0xFFFFFFFF if bcast == self.my_ip else bcast
        if self.table_name:  # an ARPTable element shared with other queriers
            shared = self.router.elements.get(self.table_name.strip()) if self.router else None
            if not getattr(shared, "DEFINES_ARP_TABLE", False):
                what = "no element" if shared is None else f"a {type(shared).__name__}"
                raise self.error(f"TABLE {self.table_name.strip()!r} is {what}, not an "
                                 "ARPTable", "declare one: arpt :: ARPTable; then TABLE arpt")
            if getattr(shared, "table", None) is None:
                shared.parse_config()  # configured after us: its table, made now
                shared.configure()
            self.table = shared.table
        else:
            self.table = ArpTable(
                timeout=self.timeout,
                capacity=self.capacity,
                entry_capacity=self.entry_capacity,
                entry_packet_capacity=self.entry_packet_capacity,
                slim_factor=self.capacity_slim_factor,
                on_drop=self.drop,
            )
        self.queries = 0
        self.responses = 0
        self.drop_count = 0  # the querier's own drops (Click's ``drops``)
        self._zero_warned = False
        self._timer_armed = False

    def take_state(self, old: Element) -> None:
        super().take_state(old)
        assert isinstance(old, ARPQuerier)
        self.queries, self.responses, self.drop_count = (old.queries, old.responses,
                                                         old.drop_count)
        if not self.table_name:  # its own table, with the packets waiting for replies
            self.table = old.table
            self.table.on_drop = self.drop
        # (a shared ARPTable was taken by its own element, before this one: see HOT_ORDER)

    def initialize(self) -> None:
        if self.timeout and self.router is not None and not self._timer_armed:
            self._timer_armed = True
            self.router.schedule(self.timeout, self._expire)

    def _expire(self) -> None:
        self.table.slim(self.clock())
        if self.router is not None and self.timeout:
            self.router.schedule(self.timeout, self._expire)

    # ------------------------------------------------------------------ packet flow
    def push(self, port: int, batch: PacketBatch) -> None:
        if not len(batch):
            return
        if port == 0:
            self._handle_ip(batch)
        else:
            self._handle_replies(batch)

    def _own_drop(self, n: int, reason: str) -> None:
        self.drop_count += n
        self.drop(n, reason)

    def _handle_ip(self, batch: PacketBatch) -> None:
        n = len(batch)
        if not self.my_ip:
            self._own_drop(n, DROP_NO_IP)
            return
        now = self.clock()
        dst = batch.anno("dst_ip").astype(np.uint32, copy=False)
        batch = batch.ensure_room(head=ETHER_HLEN)
        batch.push_front(ETHER_HLEN)
        # Source and type for every packet (queued ones get the source again when sent).
        batch.set_bytes(OFF_ETHER_SRC, self.eth + ETHERTYPE_IP.to_bytes(2, "big"))

        idx = self.table.lookup(dst, now)
        hit = idx >= 0
        if hit.all():  # the common case: every next hop is known
            batch.set_bytes_at(batch.off, self.table.macs(idx))
            polls = self.table.due_polls(idx, now, self.poll_timeout)
            self.emit(0, batch)
            if polls:
                self._send_queries(self._poll_queries(polls, batch, dst), batch)
            return
        dmac = np.empty((n, 6), np.uint8)
        polls: list[ArpEntry] = []
        if hit.any():
            hidx = idx[hit]
            dmac[hit] = self.table.macs(hidx)
            polls = self.table.due_polls(hidx, now, self.poll_timeout)
        rest = ~hit
        bcast = rest & ((dst == 0xFFFFFFFF) | (dst == self.broadcast))
        dmac[bcast] = 0xFF
        rest &= ~bcast
        mcast = rest & ((dst & 0xF0000000) == 0xE0000000)
        if mcast.any():
            dmac[mcast] = multicast_ether_rows(dst[mcast])
        rest &= ~mcast
        zero = rest & (dst == 0)
        if zero.any():
            if not self._zero_warned:
                self._zero_warned = True
                sys.stderr.write(
                    f"{self.name} :: ARPQuerier: would query for 0.0.0.0; "
                    "missing dest IP addr annotation?\n"
                )
            self._own_drop(int(np.count_nonzero(zero)), DROP_ZERO)
        unknown = rest & ~zero
        out = hit | bcast | mcast

        # Unknown next hops: queue per address, in arrival order, and query.
        wanted = self._poll_queries(polls, batch, dst)
        if unknown.any():
            wanted.extend(self._enqueue(batch, np.flatnonzero(unknown), dst, now))

        k = int(np.count_nonzero(out))
        if k:
            sent = batch if k == n else batch.select(out)
            sent.set_bytes_at(sent.off, np.ascontiguousarray(dmac if k == n else dmac[out]))
            self.emit(0, sent)
        if wanted:
            self._send_queries(wanted, batch)

    def _poll_queries(
        self, polls: list[ArpEntry], batch: PacketBatch, dst: np.ndarray
    ) -> list[tuple[int, bytes, int]]:
        """The queries (ip, Ethernet destination, timestamp) that poll ``polls``: unicast to
        the known address unless BROADCAST_POLL; timestamp of the first packet using it."""
        ts = batch.anno_or_none("timestamp")
        return [
            (
                e.ip,
                BROADCAST_ETHER if self.broadcast_poll else e.eth,
                int(ts[np.argmax(dst == e.ip)]) if ts is not None else -1,
            )
            for e in polls
        ]

    def _enqueue(
        self, batch: PacketBatch, where: np.ndarray, dst: np.ndarray, now: float
    ) -> list[tuple[int, bytes, int]]:
        """Queue packets ``where`` (unknown next hops) by address; the queries to send."""
        waiting = batch.select(where).compact()  # own pool: do not pin the input's pool
        addrs = dst[where]
        uniq, first, inverse = np.unique(addrs, return_index=True, return_inverse=True)
        order = np.argsort(inverse, kind="stable")  # members of each address, in order
        bounds = np.concatenate(([0], np.cumsum(np.bincount(inverse, minlength=len(uniq)))))
        ts = waiting.anno_or_none("timestamp")
        wanted = []
        for j in np.argsort(first, kind="stable").tolist():  # addresses by first packet
            members = order[bounds[j] : bounds[j + 1]]
            ip = int(uniq[j])
            if self.table.append_query(ip, waiting.select(members), now):
                stamp = int(ts[members[0]]) if ts is not None else -1
                wanted.append((ip, BROADCAST_ETHER, stamp))
        return wanted

    def _send_queries(self, wanted: list[tuple[int, bytes, int]], batch: PacketBatch) -> None:
        ips = np.array([w[0] for w in wanted], np.uint32)
        dsts = np.frombuffer(b"".join(w[1] for w in wanted), np.uint8).reshape(-1, 6)
        q = build_arp_frames(
            ARPOP_REQUEST,
            ether_dst=dsts,
            ether_src=ether_rows(self.eth),
            sha=ether_rows(self.eth),
            spa=ip_rows(np.array([self.my_ip], np.uint32)),
            tha=ether_rows(ZERO_ETHER),
            tpa=ip_rows(ips),
        )
        stamps = np.array([w[2] for w in wanted], np.int64)
        if (stamps >= 0).any():
            q.anno("timestamp")[:] = np.maximum(stamps, 0)
        self.queries += len(wanted)
        self.emit(self.noutputs - 1, q)

    def _handle_replies(self, batch: PacketBatch) -> None:
        long = batch.length >= ARP_FRAME_LEN
        k = int(np.count_nonzero(long))
        self.responses += k
        self.drop(len(batch) - k, DROP_SHORT_REPLY)
        if not k:
            return
        b = batch if k == len(batch) else batch.select(long)
        sha = b.field_bytes(OFF_ARP_SHA, 6)
        reply = (
            (b.u16(OFF_ETHER_TYPE) == ETHERTYPE_ARP)
            & (b.u16(OFF_ARP_HRD) == ARPHRD_ETHER)
            & (b.u16(OFF_ARP_PRO) == ETHERTYPE_IP)
            & (b.u16(OFF_ARP_OP) == ARPOP_REPLY)
        )
        ok = reply & ((sha[:, 0] & 1) == 0)
        nok = int(np.count_nonzero(ok))
        if nok < k:
            not_reply = k - int(np.count_nonzero(reply))
            self.drop(not_reply, DROP_NOT_REPLY)
            self.drop(k - nok - not_reply, DROP_GROUP_SENDER)
        if not nok:
            return
        spa = b.u32(OFF_ARP_SPA)[ok].tolist()
        macs = sha[ok]
        now = self.clock()
        for ip, mac in zip(spa, macs, strict=True):
            self._release(ip, self.table.insert(int(ip), mac.tobytes(), now))
            # The reply reached this worker's queue only; the others may be waiting too.
            self.tell_peers("insert", f"{IPAddress.unparse(ip)} {EtherAddress.unparse(mac)}")

    def _release(self, ip: int, chunks: list[PacketBatch]) -> None:
        """Send the packets that waited for ``ip`` (now known) on output 0, in order."""
        if not chunks:
            return
        e = self.table.entries[ip]
        out = PacketBatch.concat(chunks)
        out.set_bytes(0, e.eth + self.eth)
        self.emit(0, out)

    # ------------------------------------------------------------------ handlers
    @read_handler("table")
    def h_table(self) -> str:
        """The ARP table: ``IP OK ETH AGE`` per entry."""
        return self.table.table_text(self.clock())

    @read_handler("stats")
    def h_stats(self) -> str:
        """Packets killed and ARP queries sent."""
        return (
            f"{self.drop_count + self.table.drops} packets killed\n"
            f"{self.queries} ARP queries sent\n"
        )

    @read_handler("count")
    def h_count(self) -> int:
        """Entries in the ARP table."""
        return len(self.table)

    @read_handler("length", combine="sum")
    def h_length(self) -> int:
        """Packets waiting for ARP replies."""
        return self.table.packet_count

    @read_handler("queries", combine="sum")
    def h_queries(self) -> int:
        """ARP queries sent."""
        return self.queries

    @read_handler("responses", combine="sum")
    def h_responses(self) -> int:
        """Packets received on input 1 (ARP responses)."""
        return self.responses

    @read_handler("drops", combine="sum")
    def h_drops(self) -> int:
        """Packets the querier dropped itself (0.0.0.0 next hop, no IP address)."""
        return self.drop_count

    @write_handler("insert")
    def h_insert(self, v: str) -> None:
        """Add or refresh an entry: ``IP ETH``; packets waiting for IP are sent."""
        words = v.split()
        if len(words) != 2:
            raise ValueError("expected 'IP ETH'")
        ip = IPAddress.parse(words[0])
        eth = EtherAddress.parse(words[1])
        if eth == BROADCAST_ETHER:  # Click: the entry becomes unknown; packets keep waiting
            self.table.insert(ip, eth, self.clock(), release=False)
        else:
            self._release(ip, self.table.insert(ip, eth, self.clock()))

    @write_handler("delete")
    def h_delete(self, v: str) -> None:
        """Mark an entry unknown: ``IP``."""
        words = v.split()
        if len(words) != 1:
            raise ValueError("expected 'IP'")
        self.table.insert(IPAddress.parse(words[0]), BROADCAST_ETHER, self.clock(), release=False)

    @write_handler("clear")
    def h_clear(self, _: str) -> None:
        """Delete every entry and zero the counters."""
        self.queries = self.responses = self.drop_count = 0
        self.table.clear()

    @read_handler("ipaddr")
    def h_ipaddr(self) -> str:
        """This interface's IP address."""
        return str(ipaddress.IPv4Address(self.my_ip))

    @write_handler("ipaddr")
    def h_set_ipaddr(self, v: str) -> None:
        """Set this interface's IP address."""
        self.my_ip = IPAddress.parse(v.strip())

    @read_handler("broadcast")
    def h_broadcast(self) -> str:
        """The local broadcast address."""
        return str(ipaddress.IPv4Address(self.broadcast))

    @write_handler("broadcast")
    def h_set_broadcast(self, v: str) -> None:
        """Set the local broadcast address."""
        self.broadcast = IPAddress.parse(v.strip())

    # ------------------------------------------------------------------ Python API
    def lookup_ether(self, ip: str | int) -> str | None:
        """The known Ethernet address of ``ip`` (``XX-XX-...``), or None."""
        v = int(ipaddress.IPv4Address(ip))
        idx = self.table.lookup(np.array([v], np.uint32), self.clock())
        return unparse_ether(self.table.macs(idx)[0].tobytes()) if idx[0] >= 0 else None
