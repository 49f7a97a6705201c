"""DirectIPLookup: IP routing lookup in DIR-24-8 tables (Click's DirectIPLookup)."""

from __future__ import annotations

from routebricks.elements.ip.iproutetable import MutableIPRouteTable
from routebricks.lookup import Dir248Table


class DirectIPLookup(MutableIPRouteTable):
    """Routes IP packets by longest-prefix match in a DIR-24-8 table (one or two lookups).

    Ports: 1 push input; push outputs 0 to the highest PORT in the routes (more may be
        connected; every output must be connected, as for any push output).
    Arguments:
        ROUTE... (positional): one route per argument, ``ADDR/LEN [GATEWAY] PORT``
            (``ADDR/MASK`` and a bare ``ADDR`` (= /32) work too; GATEWAY ``-`` means none).
            Host bits are masked. One route per prefix: a second one (here or in ROUTES)
            is a configuration error naming both, as the ``add`` handler refuses it.
        ROUTES (string): a route file in the same syntax, one route per line (``#`` and
            ``//`` comments; ``.gz`` files are decompressed). Its routes come before the
            argument routes. A bad line is a configuration error naming the file and line.
    Behaviour: one vectorized lookup per batch on the ``dst_ip`` annotation (where a batch
        has no ``dst_ip`` column, on the IP destination field at the IP header, found by
        the network-header annotation or at the start of the data). A route with a gateway
        sets ``dst_ip`` to the gateway; the batch is then split by output port without
        copying packet bytes. Packets without a route are dropped and counted as "no
        route" (the first 5 are reported on stderr, like Click). The table is the
        DIR-24-8 of ``routebricks.lookup.Dir248Table``: a 2**24-entry first level plus
        256-entry second-level groups for prefixes longer than /24, so a lookup costs one
        or two memory reads; it takes 80 MiB whatever the table size, and builds 1M
        routes in well under a second (a 1M-line ROUTES file in about 3 s). Route
        changes take effect from the next batch.
    Handlers:
        table (read): the routes, one per line, ``ADDR/LEN<TAB>GW<TAB>PORT`` (GW ``-`` when
            none; an extra tab after short fields, as in Click), by prefix length.
        lookup (read/write): write an address, then read ``PORT`` or ``PORT GW`` for it
            (``-1`` when no route) from the current table. (Click's is a read handler
            with a parameter, which routebricks handlers do not have.)
        add (write): ``ADDR/LEN [GW] PORT``; an error if the prefix already has a route.
        set (write): ``ADDR/LEN [GW] PORT``, adding or replacing.
        remove (write): ``ADDR/LEN [GW [PORT]]``; with PORT, GW and PORT must match.
        ctrl (write): lines of ``add ...``, ``set ...``, ``remove ...`` run atomically: a
            failing line undoes the ones before it.
        flush (write): remove every route.
    Example:
        rt :: DirectIPLookup(18.26.4.24/32 0, 18.26.4.0/24 1, 18.26.7.0/24 2,
                             0.0.0.0/0 18.26.4.1 1);
        CheckIPHeader -> rt;
        rt[0] -> Discard; rt[1] -> q1 :: Queue; rt[2] -> q2 :: Queue;
    See also: RadixIPLookup, LinearIPLookup, StaticIPLookup, CheckIPHeader
    """

    def make_table(self) -> Dir248Table:
        return Dir248Table()
