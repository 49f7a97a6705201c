"""Longest-prefix-match library: route parsing, DIR-24-8 and a reference radix trie.

A standalone library (like DPDK's ``lib/lpm``) for the IP lookup elements to build on::

    from routebricks.lookup import Dir248Table, parse_routes

    table = Dir248Table(parse_routes("10.0.0.0/8 1, 0.0.0.0/0 18.26.4.1 0"))
    nh = table.lookup(dst_addrs)             # uint32 next-hop indices, 0 = NO_ROUTE
    port, gw = table.nh_port[nh], table.nh_gw[nh]   # port -1 = no route
"""

from .dir248 import POINTER_FLAG, Dir248Table, Dir248View, dir248_lookup, dir248_lookup_numpy
from .radix import RadixTable, RadixView
from .routes import (
    NO_ROUTE,
    NextHops,
    Route,
    RouteArrays,
    RouteError,
    format_route,
    int_to_ip,
    ip_to_int,
    load_routes,
    mask_of,
    parse_route,
    parse_routes,
    unparse_routes,
)
from .tables import BOGONS, bogus_mask, load_ipasn, synthetic_table

__all__ = [
    "BOGONS",
    "NO_ROUTE",
    "POINTER_FLAG",
    "Dir248Table",
    "Dir248View",
    "NextHops",
    "RadixTable",
    "RadixView",
    "Route",
    "RouteArrays",
    "RouteError",
    "bogus_mask",
    "dir248_lookup",
    "dir248_lookup_numpy",
    "format_route",
    "int_to_ip",
    "ip_to_int",
    "load_ipasn",
    "load_routes",
    "mask_of",
    "parse_route",
    "parse_routes",
    "synthetic_table",
    "unparse_routes",
]
