"""RangeIPLookup: Click's name for a fast static-leaning IP lookup; same routes, handlers
and answers as DirectIPLookup."""

from __future__ import annotations

from routebricks.elements.ip.directiplookup import DirectIPLookup


class RangeIPLookup(DirectIPLookup):
    """Routes IP packets by longest-prefix match, as DirectIPLookup (Click's RangeIPLookup).

    Ports: 1 push input; push outputs 0 to the highest PORT in the routes.
    Arguments:
        ROUTE... (positional), ROUTES (string): as DirectIPLookup.
    Behaviour: the same routes, answers, drops ("no route") and handlers as
        DirectIPLookup. Click's RangeIPLookup keeps a sorted table of address ranges
        beside a small DIR-style index; routebricks answers from its DIR-24-8 table
        (one or two memory reads per packet, batch-vectorized), so configurations
        written for Click's RangeIPLookup run unchanged.
    Handlers:
        table, lookup, add, set, remove, ctrl, flush: as DirectIPLookup.
    Example:
        rt :: RangeIPLookup(18.26.4.0/24 0, 0.0.0.0/0 18.26.4.1 1);
    See also: DirectIPLookup, RadixIPLookup
    """
