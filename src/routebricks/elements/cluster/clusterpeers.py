"""ClusterPeers: what DirectVLB and ClusterSwitch share — this server's number, the
cluster's size, which servers are down, and the handlers that say so; the parsing of
such ``peer`` writes, which the n-fly elements share too."""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np

from routebricks.elements.cluster.kernels import NCODES
from routebricks.engine.args import Arg, IntRange
from routebricks.engine.element import Element, read_handler, write_handler
from routebricks.packet.batch import PacketBatch
from routebricks.packet.clustermac import MAX_SERVERS

#: Drop reasons of the cluster elements (one home for their wording).
DROP_SHORT = "too short for Ethernet"
DROP_NOT_CLUSTER = "not a cluster MAC"
DROP_SERVER_RANGE = "output server out of range"
DROP_DOWN = "output server down"
DROP_SELF = "output server is this server"
DROP_PORT_RANGE = "output port out of range"
DROP_NO_IP = "no IP header"


def emit_groups(element: Element, batch: PacketBatch, order: np.ndarray, meta: np.ndarray,
                nout: int, reasons: tuple[str, ...]) -> None:
    """Emit group ``p < nout`` of a grouped batch (``order`` and ``meta`` from
    ``kernels.group``) out of output ``p`` of ``element``; count group ``nout + c`` as
    dropped under ``reasons[c]`` (c: the kernels' drop code; the codes an element never
    produces may be left out of ``reasons``)."""
    m = meta.tolist()
    whole = len(batch)
    for g in m[nout + NCODES + 1:]:
        lo, hi = m[g], m[g + 1]
        if g >= nout:
            element.drop(hi - lo, reasons[g - nout])
        else:
            element.emit(g, batch if hi - lo == whole else batch.select(order[lo:hi]))


def parse_up_down(value: str, what: str, count: int, *, me: int | None = None,
                  span: str = "") -> list[tuple[int, bool]]:
    """The ``X down`` / ``X up`` items of a ``peer``-like write (separated by commas,
    semicolons or new lines), X a ``what`` below ``count`` and not ``me``: (X, is down)
    pairs. All are checked before the caller applies any, so a bad write changes nothing;
    ``span`` begins the range in the out-of-range message."""
    word = what.upper()
    changes = []
    for item in re.split(r"[,;\n]", value):
        words = item.split()
        if not words:
            continue
        if (len(words) != 2 or not words[0].isdigit()
                or words[1].lower() not in ("up", "down")):
            raise ValueError(f"expected '{word} down' or '{word} up', not {item.strip()!r}")
        x = int(words[0])
        if x >= count:
            raise ValueError(f"{what} {x} out of range: {span}0 to {count - 1}")
        if x == me:
            raise ValueError(f"{what} {x} is this server (SELF)")
        changes.append((x, words[1].lower() == "down"))
    if not changes:
        raise ValueError(f"expected '{word} down' or '{word} up'")
    return changes


class ClusterPeers(Element):
    """Base of the cluster elements that switch by output server: SELF, SERVERS, and the
    ``peer``/``peers`` handlers.

    Ports: as the subclass.
    Arguments:
        SELF (integer 0..255, required): this server's number in the cluster.
        SERVERS (integer 1..256, required): how many servers the cluster has (N).
    Behaviour: keeps one up/down flag per server; a subclass reads it once per batch.
    Handlers:
        peer (write): ``J down`` or ``J up`` (several, separated by commas or new lines,
            all or nothing).
        peers (read): one ``SERVER<TAB>up|down|self`` line per server.
    Example:
        see DirectVLB, ClusterSwitch
    """

    ABSTRACT = True
    port_count = "1/1-"
    processing = "h/h"
    ARGS: ClassVar[tuple[Arg, ...]] = (
        Arg("SELF", IntRange(0, MAX_SERVERS - 1), required=True, attr="me"),
        Arg("SERVERS", IntRange(1, MAX_SERVERS), required=True),
    )

    me: int
    servers: int

    def configure(self) -> None:
        if self.me >= self.servers:
            raise self.error(f"SELF {self.me} is not one of the {self.servers} servers",
                             f"number servers 0 to {self.servers - 1}")
        # Read by the compiled pass of every batch: a write takes effect at the next one.
        self.down = np.zeros(self.servers, np.bool_)

    def check_outputs(self) -> None:
        """One output per server (raise at initialization: outputs are known by then)."""
        if self.router is not None and self.noutputs != self.servers:
            raise self.error(
                f"has {self.noutputs} output{'s' if self.noutputs != 1 else ''} but "
                f"SERVERS is {self.servers}",
                f"connect outputs 0 to {self.servers - 1}, one per server "
                f"(output {self.me}, this server's, as the element's documentation says)")

    @write_handler("peer")
    def h_peer(self, value: str) -> None:
        """Mark servers down or up: ``J down``, ``J up`` (several: commas or lines)."""
        for j, is_down in parse_up_down(value, "server", self.servers, me=self.me,
                                        span="the cluster has servers "):
            self.down[j] = is_down

    @read_handler("peers")
    def h_peers(self) -> str:
        """Each server's state: ``SERVER<TAB>up``, ``down`` or ``self``."""
        return "\n".join(
            f"{j}\t{'self' if j == self.me else 'down' if self.down[j] else 'up'}"
            for j in range(self.servers))
