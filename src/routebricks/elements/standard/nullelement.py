"""Null, PushNull and PullNull: pass packets through unchanged."""

from __future__ import annotations

from routebricks.engine.element import Element


class Null(Element):
    """Passes packets through unchanged.

    Ports: 1 input, 1 output (agnostic).
    Arguments: none.
    Behaviour: every batch pushed in is pushed out, and every pull is passed upstream; the
        packets are not touched.
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        FromDump(in.pcap) -> Null -> Discard;
    See also: PushNull, PullNull
    """

    port_count = "1/1"
    processing = "a/a"
    PASSES_ALL = True


class PushNull(Null):
    """Passes pushed packets through unchanged.

    Ports: 1 push input, 1 push output.
    Arguments: none.
    Behaviour: as Null, but only in push context (connecting it to pull ports is a
        configuration error).
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        FromDump(in.pcap) -> PushNull -> Queue -> Discard;
    See also: Null, PullNull
    """

    processing = "h/h"


class PullNull(Null):
    """Passes pulled packets through unchanged.

    Ports: 1 pull input, 1 pull output.
    Arguments: none.
    Behaviour: as Null, but only in pull context (connecting it to push ports is a
        configuration error).
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        FromDump(in.pcap) -> Queue -> PullNull -> Discard;
    See also: Null, PushNull
    """

    processing = "l/l"
