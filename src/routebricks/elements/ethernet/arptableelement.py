"""ARPTable: an ARP table that several ARPQueriers share (their TABLE argument)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from routebricks.elements.ethernet.arptable import BROADCAST_ETHER, ArpTable
from routebricks.engine import clock
from routebricks.engine.args import Arg, EtherAddress, IPAddress, PosInt, Seconds, UInt
from routebricks.engine.element import Element, read_handler, write_handler


class ARPTable(Element):
    """Stores IP-to-Ethernet mappings and the packets waiting for them, for ARPQueriers.

    Ports: none.
    Arguments:
        CAPACITY (unsigned, default 2048): packets held at a time over all addresses (0:
            unlimited).
        ENTRY_CAPACITY (unsigned, default 0): entries held at a time (0: unlimited).
        ENTRY_PACKET_CAPACITY (unsigned, default 0): packets held per address (0:
            unlimited).
        CAPACITY_SLIM_FACTOR (positive integer, default 2): past CAPACITY, drop
            1/CAPACITY_SLIM_FACTOR of the held packets.
        TIMEOUT (time, default 300s): an entry expires this long after its last reply (0:
            never).
    Behaviour: an information element: ARPQueriers given TABLE NAME use this table
        instead of their own, so they share what they learn and hold (Click's ARPTable).
        Packets it drops (capacity, expiry) are counted here.
    Handlers:
        table (read): ``IP VALID ETH AGE`` per entry, as ARPQuerier's.
        drops (read): packets dropped (timeouts, capacity).
        count (read): entries; length (read): packets held.
        insert (write): ``IP ETH`` adds or refreshes an entry (held packets stay held
            until a querier sends to IP again).
        delete (write): ``IP`` makes the entry unknown.
        clear (write): delete every entry.
    Example:
        arpt :: ARPTable;
        q0 :: ARPQuerier(10.0.0.1, 02:00:00:00:00:01, TABLE arpt);
        q1 :: ARPQuerier(10.0.1.1, 02:00:00:00:00:02, TABLE arpt);
    See also: ARPQuerier, ARPResponder
    """

    port_count = "0/0"
    DEFINES_ARP_TABLE: ClassVar[bool] = True  # ARPQuerier's TABLE may name it
    HOT_ORDER = -1  # taken before the queriers that share it
    ARGS = (
        Arg("CAPACITY", UInt, 2048),
        Arg("ENTRY_CAPACITY", UInt, 0),
        Arg("ENTRY_PACKET_CAPACITY", UInt, 0),
        Arg("CAPACITY_SLIM_FACTOR", PosInt, 2),
        Arg("TIMEOUT", Seconds, 300.0),
    )
    #: The clock (seconds, monotonic); tests may replace it on an instance.
    clock: Callable[[], float] = staticmethod(clock.monotonic)

    table: ArpTable | None = None

    def configure(self) -> None:
        if self.table is not None:  # made already for an ARPQuerier configured first
            return
        self.table = ArpTable(timeout=self.timeout, capacity=self.capacity,
                              entry_capacity=self.entry_capacity,
                              entry_packet_capacity=self.entry_packet_capacity,
                              slim_factor=self.capacity_slim_factor, on_drop=self.drop)

    def take_state(self, old: Element) -> None:
        super().take_state(old)
        self.table = old.table  # type: ignore[attr-defined]
        self.table.on_drop = self.drop

    @read_handler("table")
    def h_table(self) -> str:
        """The entries: ``IP VALID ETH AGE`` per line."""
        return self.table.table_text(self.clock())

    @read_handler("drops", combine="sum")
    def h_drops(self) -> int:
        """Packets dropped because of timeouts or capacity limits."""
        return self.table.drops

    @read_handler("count")
    def h_count(self) -> int:
        """Entries in the table."""
        return len(self.table)

    @read_handler("length", combine="sum")
    def h_length(self) -> int:
        """Packets held, waiting for ARP replies."""
        return self.table.packet_count

    @write_handler("insert")
    def h_insert(self, v: str) -> None:
        """Add or refresh an entry: ``IP ETH``."""
        words = v.split()
        if len(words) != 2:
            raise ValueError("expected 'IP ETH'")
        self.table.insert(IPAddress.parse(words[0]), EtherAddress.parse(words[1]),
                          self.clock(), release=False)

    @write_handler("delete")
    def h_delete(self, v: str) -> None:
        """Make an entry unknown: ``IP``."""
        words = v.split()
        if len(words) != 1:
            raise ValueError("expected 'IP'")
        self.table.insert(IPAddress.parse(words[0]), BROADCAST_ETHER, self.clock(),
                          release=False)

    @write_handler("clear")
    def h_clear(self, _: str) -> None:
        """Delete every entry."""
        self.table.clear()
