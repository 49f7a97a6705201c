"""ARPResponder: answers ARP requests for configured addresses."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

from routebricks.elements.ethernet.arptable import (
    ARP_FRAME_LEN,
    ARPHRD_ETHER,
    ARPOP_REPLY,
    ARPOP_REQUEST,
    ETHERTYPE_ARP,
    ETHERTYPE_IP,
    OFF_ARP_HRD,
    OFF_ARP_OP,
    OFF_ARP_PRO,
    OFF_ARP_SHA,
    OFF_ARP_SPA,
    OFF_ARP_TPA,
    OFF_ETHER_TYPE,
    build_arp_frames,
    parse_ip_or_prefix,
    unparse_ether,
)
from routebricks.engine import addresses
from routebricks.engine.args import EtherAddress
from routebricks.engine.argtext import split_args
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch

DROP_OTHER = "not an ARP request for our addresses"


@dataclass(frozen=True)
class ArpResponderEntry:
    dst: int  # masked address
    mask: int
    eth: bytes

    @property
    def prefix_len(self) -> int:
        return bin(self.mask).count("1")

    def unparse_prefix(self) -> str:
        return f"{ipaddress.IPv4Address(self.dst)}/{self.prefix_len}"


def parse_entry(text: str) -> list[ArpResponderEntry]:
    """One configuration argument: ``IP/MASK [IP/MASK...] ETH`` (a bare IP is /32)."""
    prefixes: list[tuple[int, int]] = []
    eth: bytes | None = None
    for word in text.split():
        both = addresses.lookup(word, "eth") if ":" not in word else None
        if isinstance(both, bytes) and isinstance(addresses.lookup(word, "ip"), int):
            # A name with an IP and an Ethernet address stands for both, as in Click.
            ip, mask = parse_ip_or_prefix(word)
            prefixes.append((ip & mask, mask))
            if eth is not None:
                raise ValueError("more than one ETH")
            eth = both
            continue
        try:
            ip, mask = parse_ip_or_prefix(word)
        except ValueError:
            try:
                e = EtherAddress.parse(word)
            except ValueError:
                raise ValueError("expected IP/MASK ETH") from None
            if eth is not None:
                raise ValueError("more than one ETH") from None
            eth = e
            continue
        prefixes.append((ip & mask, mask))
    if not prefixes:
        raise ValueError("missing IP/MASK")
    if eth is None:
        raise ValueError("missing ETH")
    return [ArpResponderEntry(d, m, bytes(eth)) for d, m in prefixes]


class _PrefixLookup:
    """Vectorized first-match lookup over entries sorted most specific first: one sorted
    array of masked addresses per distinct mask, searched from the longest mask down."""

    def __init__(self, entries: list[ArpResponderEntry]) -> None:
        self.macs = (
            np.frombuffer(b"".join(e.eth for e in entries), np.uint8).reshape(-1, 6).copy()
            if entries
            else np.zeros((0, 6), np.uint8)
        )
        self.levels: list[tuple[np.uint32, np.ndarray, np.ndarray]] = []
        masks = sorted({e.mask for e in entries}, key=lambda m: -bin(m).count("1"))
        for m in masks:
            ids = np.array([i for i, e in enumerate(entries) if e.mask == m], np.int64)
            keys = np.array([entries[i].dst for i in ids.tolist()], np.uint32)
            order = np.argsort(keys, kind="stable")
            self.levels.append((np.uint32(m), keys[order], ids[order]))

    def find(self, ips: np.ndarray) -> np.ndarray:
        """Index of each address's entry, or -1."""
        res = np.full(ips.shape[0], -1, np.int64)
        todo = np.arange(ips.shape[0])
        for mask, keys, ids in self.levels:
            if not todo.shape[0]:
                break
            want = ips[todo] & mask
            pos = np.minimum(np.searchsorted(keys, want), keys.shape[0] - 1)
            hit = keys[pos] == want
            res[todo[hit]] = ids[pos[hit]]
            todo = todo[~hit]
        return res


class ARPResponder(Element):
    """Answers ARP requests for configured addresses with ARP replies.

    Ports: 1 input (agnostic); output 0 (agnostic) for replies, optional push output 1 for
        every other packet.
    Arguments:
        ENTRY... (positional, one or more): ``IP/MASK [IP/MASK...] ETH``: the addresses (a
            bare IP means /32) answered with Ethernet address ETH. Exactly one ETH per
            argument. Entries are kept most specific first; for a prefix given twice the
            later entry wins (with a warning ``multiple entries for PREFIX``).
    Behaviour: the whole batch is classified at once: packets of at least 42 bytes with
        Ethernet type 0x0806, hardware type 1, protocol 0x0800 and operation 1 (request)
        whose target protocol address falls in an entry (longest prefix first, one sorted
        array search per prefix length) are answered. Replies are built in one byte matrix
        and one new pool: 42-byte frames (Ethernet + ARP, unpadded, as Click makes them;
        the sending device pads short frames, and Linux accepts 42-byte ARP frames):
        Ethernet destination = the requester's sender hardware address, source = the
        entry's ETH, type 0x0806; operation 2, sender = (ETH, requested address), target =
        (requester's hardware and protocol addresses). The in_port annotation is copied
        from the request. Requests are consumed; all other packets go to output 1 if it is
        connected, else are dropped and counted as "not an ARP request for our addresses".
    Handlers:
        table (read): one ``PREFIX ETH`` line per entry, most specific first (ETH as
            ``00-1A-2B-3C-4D-5E``).
        add (write): add entries, ``IP/MASK [IP/MASK...] ETH`` (replacing equal prefixes).
        remove (write): remove the entry for ``IP/MASK`` (error ``PREFIX not found``).
        lookup (read, with IP): the Ethernet address answered for IP (error if none).
        config (read/write): the configuration; writing replaces every entry, all or
            nothing (Click's live reconfiguration).
    Example:
        c :: Classifier(12/0806 20/0001, 12/0806 20/0002, 12/0800, -);
        c[0] -> ARPResponder(10.0.0.1 10.0.1.0/24 02:00:00:00:00:01) -> Queue
             -> ToDevice(eth0);
    See also: ARPQuerier, Classifier
    """

    port_count = "1/1-2"
    processing = "a/ah"
    REST = True

    def configure(self) -> None:
        entries: list[ArpResponderEntry] = []
        for i, arg in enumerate(self.rest):
            try:
                entries.extend(parse_entry(arg))
            except ValueError as e:
                raise self.error(
                    f"argument {i}: {e}", "each argument is 'IP/MASK [IP/MASK...] ETH'"
                ) from None
        self._set_entries(entries, warn=True)

    def _set_entries(self, entries: list[ArpResponderEntry], warn: bool = False) -> None:
        """Keep the later of equal prefixes; order most specific first; rebuild the lookup."""
        by_prefix: dict[tuple[int, int], tuple[int, ArpResponderEntry]] = {}
        for i, e in enumerate(entries):
            key = (e.dst, e.mask)
            if key in by_prefix and warn:
                self.warn(f"multiple entries for {e.unparse_prefix()}")
            first = by_prefix[key][0] if key in by_prefix else i
            by_prefix[key] = (first, e)
        ordered = sorted(by_prefix.values(), key=lambda t: (-t[1].prefix_len, t[0]))
        self.entries = [e for _, e in ordered]
        self._lookup = _PrefixLookup(self.entries)

    # ------------------------------------------------------------------ packet flow
    def process(self, batch: PacketBatch) -> PacketBatch | None:
        n = len(batch)
        if not n:
            return None
        cand = np.flatnonzero(batch.length >= ARP_FRAME_LEN)
        answer = np.full(n, -1, np.int64)
        if cand.shape[0] and self.entries:
            pos = batch.off[cand]
            req = (
                (batch.u16_at(pos + OFF_ETHER_TYPE) == ETHERTYPE_ARP)
                & (batch.u16_at(pos + OFF_ARP_HRD) == ARPHRD_ETHER)
                & (batch.u16_at(pos + OFF_ARP_PRO) == ETHERTYPE_IP)
                & (batch.u16_at(pos + OFF_ARP_OP) == ARPOP_REQUEST)
            )
            cand = cand[req]
            if cand.shape[0]:
                answer[cand] = self._lookup.find(batch.u32_at(batch.off[cand] + OFF_ARP_TPA))
        mine = answer >= 0
        k = int(np.count_nonzero(mine))
        if k < n:
            others = batch if k == 0 else batch.select(~mine)
            self.emit_or_drop(1, others, DROP_OTHER)
        if not k:
            return None
        which = np.flatnonzero(mine)
        pos = batch.off[which]
        sha = batch.bytes_at(pos + OFF_ARP_SHA, 6)
        spa = batch.bytes_at(pos + OFF_ARP_SPA, 4)
        tpa = batch.bytes_at(pos + OFF_ARP_TPA, 4)
        eth = self._lookup.macs[answer[which]]
        replies = build_arp_frames(
            ARPOP_REPLY, ether_dst=sha, ether_src=eth, sha=eth, spa=tpa, tha=sha, tpa=spa
        )
        in_port = batch.anno_or_none("in_port")
        if in_port is not None:
            replies.anno("in_port")[:] = in_port[which]
        return replies

    # ------------------------------------------------------------------ handlers
    @read_handler("table")
    def h_table(self) -> str:
        """The entries: ``PREFIX ETH`` per line, most specific first."""
        return "".join(f"{e.unparse_prefix()} {unparse_ether(e.eth)}\n" for e in self.entries)

    @write_handler("add")
    def h_add(self, v: str) -> None:
        """Add entries: ``IP/MASK [IP/MASK...] ETH``."""
        self._set_entries(self.entries + parse_entry(v))

    @write_handler("remove")
    def h_remove(self, v: str) -> None:
        """Remove the entry for ``IP/MASK``."""
        try:
            ip, mask = parse_ip_or_prefix(v.strip())
        except ValueError:
            raise ValueError("expected IP/MASK") from None
        rest = [e for e in self.entries if (e.dst, e.mask) != (ip & mask, mask)]
        if len(rest) == len(self.entries):
            probe = ArpResponderEntry(ip & mask, mask, b"")
            raise ValueError(f"{probe.unparse_prefix()} not found")
        self._set_entries(rest)

    @read_handler("lookup", param=True)
    def h_lookup(self, ip: str) -> str:
        """The Ethernet address answered for IP (``lookup 10.0.0.1``)."""
        try:
            eth = self.lookup(ip.strip())
        except ValueError:
            raise ValueError(f"expected an IPv4 address, not {ip.strip()!r}") from None
        if eth is None:
            raise ValueError(f"no entry for {ip.strip()}")
        return eth

    @write_handler("config")
    def h_config_write(self, v: str) -> None:
        """Replace every entry with a new configuration (all or nothing, as Click's live
        reconfiguration)."""
        entries: list[ArpResponderEntry] = []
        for i, arg in enumerate(a for a in split_args(v) if a.strip()):
            try:
                entries.extend(parse_entry(arg))
            except ValueError as e:
                raise ValueError(f"argument {i}: {e}") from None
        if not entries:
            raise ValueError("no entries: each argument is 'IP/MASK [IP/MASK...] ETH'")
        self._set_entries(entries)
        self.config = v

    # ------------------------------------------------------------------ Python API
    def lookup(self, ip: str | int) -> str | None:
        """The Ethernet address answered for ``ip`` (``XX-XX-...``), or None (Click's
        ``lookup`` read handler with a parameter)."""
        v = np.array([int(ipaddress.IPv4Address(ip))], np.uint32)
        i = int(self._lookup.find(v)[0])
        return unparse_ether(self.entries[i].eth) if i >= 0 else None
