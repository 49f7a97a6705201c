"""RadixIPLookup: IP routing lookup in a binary trie (Click's RadixIPLookup)."""

from __future__ import annotations

from routebricks.elements.ip.iproutetable import MutableIPRouteTable
from routebricks.lookup import RadixTable


class RadixIPLookup(MutableIPRouteTable):
    """Routes IP packets by longest-prefix match in a radix (binary) trie.

    Ports: 1 push input; push outputs 0 to the highest PORT in the routes (more may be
        connected; every output must be connected).
    Arguments:
        ROUTE... (positional): one route per argument, ``ADDR/LEN [GATEWAY] PORT``
            (``ADDR/MASK`` and a bare ``ADDR`` (= /32) work too; GATEWAY ``-`` means none).
            Host bits are masked. One route per prefix: a second one (here or in ROUTES)
            is a configuration error naming both, as the ``add`` handler refuses it.
        ROUTES (string): a route file in the same syntax, one route per line (``#`` and
            ``//`` comments; ``.gz`` decompressed); its routes come before the argument
            routes. A bad line is a configuration error naming the file and line.
    Behaviour: as DirectIPLookup (lookup on ``dst_ip``, or the IP destination field when
        the batch has no ``dst_ip`` column; ``dst_ip`` set to the gateway of routes that
        have one; split by port; "no route" drops counted, the first 5 reported on
        stderr), but the table is ``routebricks.lookup.RadixTable``: a compiled walk of up
        to 32 trie nodes per packet. Memory grows with the table instead of DIR-24-8's
        fixed 80 MiB, updates are cheap, lookups slower. Route changes take effect from
        the next batch.
    Handlers:
        table (read): the routes, ``ADDR/LEN<TAB>GW<TAB>PORT`` per line (GW ``-`` when
            none), by prefix length.
        lookup (read/write): write an address, then read ``PORT`` or ``PORT GW`` (``-1``:
            no route).
        add (write): ``ADDR/LEN [GW] PORT``; an error if the prefix already has a route.
        set (write): ``ADDR/LEN [GW] PORT``, adding or replacing.
        remove (write): ``ADDR/LEN [GW [PORT]]``; with PORT, GW and PORT must match.
        ctrl (write): ``add``/``set``/``remove`` lines, all or nothing.
        flush (write): remove every route.
    Example:
        rt :: RadixIPLookup(ROUTES routes.txt, 0.0.0.0/0 10.0.0.1 0);
    See also: DirectIPLookup, LinearIPLookup, StaticIPLookup
    """

    def make_table(self) -> RadixTable:
        return RadixTable()
