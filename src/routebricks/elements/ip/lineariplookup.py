"""LinearIPLookup and StaticIPLookup: small IP route tables (Click's elements of the names).

Click walks a linear list; here both keep their routes in a radix trie (the lookup is the
same compiled batch walk as RadixIPLookup's) and remember the order routes were added in,
which the ``table`` handler shows, as Click's linear list does.
"""

from __future__ import annotations

from routebricks.elements.ip.iproutetable import IPRouteTable, MutableIPRouteTable


class LinearIPLookup(MutableIPRouteTable):
    """Routes IP packets by longest-prefix match in a small, ordered route table.

    Ports: 1 push input; push outputs 0 to the highest PORT in the routes (more may be
        connected; every output must be connected).
    Arguments:
        ROUTE... (positional): one route per argument, ``ADDR/LEN [GATEWAY] PORT``
            (``ADDR/MASK`` and a bare ``ADDR`` (= /32) work too; GATEWAY ``-`` means none).
            One route per prefix: a second one (here or in ROUTES) is a configuration
            error naming both, as the ``add`` handler refuses it.
        ROUTES (string): a route file in the same syntax (before the argument routes).
    Behaviour: as DirectIPLookup (lookup on ``dst_ip``, else on the IP destination field;
        ``dst_ip`` set to the route's gateway; split by port; "no route" drops counted and
        the first 5 reported on stderr). Click's element scans a list; this one walks a
        radix trie (the same as RadixIPLookup) but keeps the order in which routes were
        added for the ``table`` handler. A route added after a removal goes at the end
        (Click reuses the freed slot).
    Handlers:
        table (read): the routes in the order added, ``ADDR/LEN<TAB>GW<TAB>PORT`` per line
            (GW ``-`` when none).
        lookup (read/write): write an address, then read ``PORT`` or ``PORT GW`` (``-1``:
            no route).
        add (write): ``ADDR/LEN [GW] PORT``; an error if the prefix already has a route.
        set (write): ``ADDR/LEN [GW] PORT``, adding or replacing in place.
        remove (write): ``ADDR/LEN [GW [PORT]]``; with PORT, GW and PORT must match.
        ctrl (write): ``add``/``set``/``remove`` lines, all or nothing.
        flush (write): remove every route (Click's LinearIPLookup has no flush).
    Example:
        rt :: LinearIPLookup(18.26.4.0/24 0, 0.0.0.0/0 18.26.4.1 1);
    See also: StaticIPLookup, RadixIPLookup, DirectIPLookup
    """

    ORDERED = True


class StaticIPLookup(IPRouteTable):
    """Routes IP packets by longest-prefix match in a fixed route table.

    Ports: 1 push input; push outputs 0 to the highest PORT in the routes (more may be
        connected; every output must be connected).
    Arguments:
        ROUTE... (positional): one route per argument, ``ADDR/LEN [GATEWAY] PORT``
            (``ADDR/MASK`` and a bare ``ADDR`` (= /32) work too; GATEWAY ``-`` means none).
            One route per prefix, as for LinearIPLookup.
        ROUTES (string): a route file in the same syntax (before the argument routes).
    Behaviour: LinearIPLookup without the handlers that change routes: the table is the
        configuration's. Lookup on ``dst_ip`` (else the IP destination field), ``dst_ip``
        set to the route's gateway, split by port, "no route" drops counted and the first
        5 reported on stderr.
    Handlers:
        table (read): the routes in configuration order, ``ADDR/LEN<TAB>GW<TAB>PORT``.
        lookup (read/write): write an address, then read ``PORT`` or ``PORT GW`` (``-1``:
            no route).
    Example:
        rt :: StaticIPLookup(18.26.4.24/32 0, 18.26.4.0/24 1, 18.26.7.0/24 2,
                             0.0.0.0/0 18.26.4.1 1);
    See also: LinearIPLookup, RadixIPLookup, DirectIPLookup
    """

    ORDERED = True
