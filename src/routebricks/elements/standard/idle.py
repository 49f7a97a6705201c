"""Idle: a placeholder that never sends packets."""

from __future__ import annotations

from routebricks.engine.element import Element
from routebricks.packet.batch import PacketBatch


class Idle(Element):
    """Never sends packets; fills ports that must be connected.

    Ports: any number of inputs and outputs (agnostic).
    Arguments: none.
    Behaviour: pushed packets are dropped and counted as "pushed to Idle"; pulls return
        nothing; it never pushes. It has no task and is not a source, so it does not keep
        the router running.
    Handlers: none of its own (drops (read): dropped packets by reason).
    Example:
        Idle -> q :: Queue -> ToDump(out.pcap);   // a Queue nothing is put into
        c :: Classifier(12/0800, -); c[1] -> Idle;
    See also: Discard, Null
    """

    port_count = "-/-"
    processing = "a/a"
    INDEPENDENT_PORTS = True  # each port pushes or pulls as its neighbour does

    def push(self, port: int, batch: PacketBatch) -> None:
        self.drop(batch, "pushed to Idle")

    def pull(self, port: int) -> PacketBatch | None:
        return None
