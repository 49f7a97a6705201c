"""AddressInfo: names for IPv4 addresses, prefixes and Ethernet addresses."""

from __future__ import annotations

from typing import ClassVar

from routebricks.engine import addresses
from routebricks.engine.element import Element, read_handler


class AddressInfo(Element):
    """Gives names to addresses, for other elements' arguments.

    Ports: none.
    Arguments:
        NAME ADDRESS [ADDRESS...] (repeated, positional): NAME stands for each ADDRESS
            given: an IPv4 address, an IPv4 prefix (10.0.0.1/24 names both the address
            and the prefix) or an Ethernet address.
    Behaviour: wherever an argument takes an address, NAME may be written instead;
        NAME:ip, NAME:ipnet and NAME:eth pick the kind, NAME:bcast is the prefix's
        broadcast address and NAME:gw its first address. Names are local to the compound
        element that declares them (and the compounds inside it), as in Click; a name
        may be used before its AddressInfo is declared. A bad entry is a configuration
        error.
    Handlers:
        names (read): one NAME<TAB>kind<TAB>address line per address.
    Example:
        AddressInfo(mauer 10.0.0.1 00:50:ba:85:84:a9, net0 10.0.0.0/24);
        ... -> EtherEncap(0x0800, mauer, 00:00:00:00:00:01) -> ...
    See also: ARPResponder, EtherEncap
    """

    port_count = "0/0"
    REST = True
    DEFINES_ADDRESS_NAMES: ClassVar[bool] = True

    def configure(self) -> None:
        self.table = {}
        for entry in self.rest:
            try:
                name, named = addresses.parse_entry(entry)
            except ValueError as e:
                raise self.error(str(e), "write NAME ADDRESS [ADDRESS...]") from None
            self.table[name] = named

    @read_handler("names")
    def h_names(self) -> str:
        """The names and what they stand for."""
        import ipaddress

        lines = []
        for name, n in self.table.items():
            if n.ip is not None:
                lines.append(f"{name}\tip\t{ipaddress.IPv4Address(n.ip)}")
            if n.net is not None:
                lines.append(f"{name}\tipnet\t{ipaddress.IPv4Address(n.net[0])}/{n.net[1]}")
            if n.eth is not None:
                lines.append(f"{name}\teth\t{n.eth.hex(':')}")
        return "\n".join(lines)
