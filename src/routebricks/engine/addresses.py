"""Names for addresses (Click's AddressInfo): ``NAME``, ``NAME:ip``, ``NAME:ipnet``,
``NAME:eth``, ``NAME:bcast``, ``NAME:gw`` wherever an argument takes an address.

The router reads every AddressInfo's entries before it configures any element (a name may
be used before its AddressInfo is declared); while an element parses its arguments,
:data:`NAMES` holds the names visible from it: those of AddressInfo elements at its own
compound level and the levels around it, the innermost first (Click's scoping).
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_ETHER = re.compile(r"[0-9a-fA-F]{1,2}(?:[:\-][0-9a-fA-F]{1,2}){5}")


@dataclass
class Named:
    """What one name stands for (any of the three kinds)."""

    ip: int | None = None
    net: tuple[int, int] | None = None  # (network, prefix length)
    eth: bytes | None = None


#: The names visible from the element being configured (empty outside configuration).
NAMES: contextvars.ContextVar[dict[str, Named] | None] = contextvars.ContextVar(
    "address_names", default=None)


def parse_entry(entry: str) -> tuple[str, Named]:
    """``NAME ADDRESS [ADDRESS...]`` → the name and its addresses; ValueError if an
    address is none of IPv4 address, IPv4 prefix, Ethernet address."""
    words = entry.split()
    if len(words) < 2:
        raise ValueError(f"{entry.strip()!r}: expected NAME ADDRESS [ADDRESS...]")
    name, named = words[0], Named()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
        raise ValueError(f"{name!r} is not a name (letters, digits, _ . -; not a number)")
    for w in words[1:]:
        if _ETHER.fullmatch(w):
            named.eth = bytes(int(p, 16) for p in re.split(r"[:\-]", w))
        elif "/" in w:
            try:
                iface = ipaddress.IPv4Interface(w)
            except ValueError:
                raise ValueError(f"{w!r} is not an IPv4 prefix") from None
            named.net = (int(iface.network.network_address), iface.network.prefixlen)
            if iface.ip != iface.network.network_address or iface.network.prefixlen == 32:
                named.ip = int(iface.ip)  # 10.0.0.1/24 names an address and a prefix
        else:
            try:
                named.ip = int(ipaddress.IPv4Address(w))
            except ValueError:
                raise ValueError(f"{w!r} is not an IPv4 or Ethernet address") from None
    return name, named


def scoped_tables(entries: Iterable[tuple[str, str]]) -> dict[str, dict[str, Named]]:
    """(element name, entry) pairs → names by compound prefix ("" for the top level)."""
    tables: dict[str, dict[str, Named]] = {}
    for element, entry in entries:
        scope = element.rpartition("/")[0]
        name, named = parse_entry(entry)
        tables.setdefault(scope, {})[name] = named
    return tables


def visible(tables: dict[str, dict[str, Named]], element: str) -> dict[str, Named]:
    """The names an element sees: outer levels first, inner ones override."""
    out: dict[str, Named] = dict(tables.get("", {}))
    parts = element.split("/")[:-1]
    for k in range(1, len(parts) + 1):
        out.update(tables.get("/".join(parts[:k]), {}))
    return out


@contextmanager
def names_for(table: dict[str, Named]) -> Iterator[None]:
    token = NAMES.set(table)
    try:
        yield
    finally:
        NAMES.reset(token)


def lookup(text: str, kind: str) -> int | tuple[int, int] | bytes | None:
    """``NAME`` or ``NAME:suffix`` as an address of ``kind`` ("ip", "ipnet", "eth"), or
    None when the name (or that kind of address for it) is not defined."""
    name, _, suffix = text.strip().partition(":")
    named = (NAMES.get() or {}).get(name)
    if named is None:
        return None
    if suffix in ("bcast", "gw") and kind == "ip" and named.net is not None:
        net, length = named.net
        host = (1 << (32 - length)) - 1
        return net | host if suffix == "bcast" else net | 1
    if suffix and suffix != {"ip": "ip", "ipnet": "ipnet", "eth": "eth"}[kind]:
        return None
    if kind == "ip":
        return named.ip
    if kind == "ipnet":
        if named.net is not None:
            return named.net
        return None if named.ip is None else (named.ip, 32)
    return named.eth
