"""DriverManager: a Script that decides when the router stops (Click's DriverManager)."""

from __future__ import annotations

from routebricks.elements.standard.script import Script
from routebricks.engine.args import Arg, Choice


class DriverManager(Script):
    """Manages the router's stop requests with a script (Click's DriverManager).

    Ports: none.
    Arguments:
        INSTRUCTION... (positional): as for Script. ``wait``/``wait_stop [N]``/``pause`` wait
            for N stop requests (a source with STOP true finishing, every source done, the
            global ``stop`` handler, a Script's ``stop``); ``wait TIME`` sleeps (a stop
            request also ends the sleep); ``write``, ``read``, ``print``, ``stop`` as in
            Script. An implicit ``stop`` ends the list.
    Behaviour: without a DriverManager the first stop request stops the router; with one,
        stop requests step its script, and the router stops when the script reaches
        ``stop`` (or its end). At most one per router. A failed handler call is reported
        as ``While calling 'ELEM.H VALUE':`` and the reason; the script carries on.
    Handlers:
        step (write): advance the script as a stop request would.
        run, goto, set (write), vars, now (read): as for Script.
        add, sub, min, max, mul, div, idiv, mod, rem, neg, abs, eq, ne, lt, gt, le, ge,
            not, and, or, nand, nor, if, in, first, length, unquote, random, htons,
            htonl, ntohs, ntohl, cat, readable, writable, get, shift, run (read with
            parameters): as for Script.
    Example:
        DriverManager(wait_stop, read c.count, write c.reset, wait 10ms, stop);
    See also: Script
    """

    port_count = "0/0"
    ARGS = (Arg("TYPE", Choice("ACTIVE", "PASSIVE", "DRIVER"), "DRIVER"),)
    FINAL = "stop"
