"""Annotation columns and helpers shared by the IP and ICMP elements.

Click keeps these annotations in its packet annotation area; here each is a column of the
batch (declared in ``routebricks.packet.batch.ANNOTATIONS``):

* ``fix_ip_src`` (uint8): Click's FIX_IP_SRC annotation. ICMPError sets it on the errors it
  makes; FixIPSrc rewrites the source address of such packets and clears it.
* ``icmp_paramprob`` (uint8): Click's ICMP_PARAMPROB annotation, the offset of the bad byte
  in the IP header. IPGWOptions sets it; ICMPError (parameterproblem) quotes it.
* ``packet_type`` (uint8): Click's packet type annotation (HOST 0, BROADCAST 1,
  MULTICAST 2, OTHERHOST 3, OUTGOING 4, LOOPBACK 5, FASTROUTE 6): how the packet arrived at
  the link level. FromDevice sets it from the kernel's classification (``sll_pkttype``);
  readers without one (FromDump) from the Ethernet destination (:func:`ether_packet_types`).
  DropBroadcasts and ICMPError read it.
* ``next_mtu`` (uint16): the MTU that IPFragmenter could not fit a don't-fragment packet
  into; ICMPError (unreachable, needfrag) reports it when its PMTU is 0.
"""

from __future__ import annotations

import sys

import numpy as np

from routebricks.engine.element import Element
from routebricks.packet.batch import PacketBatch

FIX_IP_SRC = "fix_ip_src"
ICMP_PARAMPROB = "icmp_paramprob"
PARAMPROB_ANNO = ICMP_PARAMPROB
PACKET_TYPE = "packet_type"
NEXT_MTU = "next_mtu"

PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4
PACKET_LOOPBACK = 5
PACKET_FASTROUTE = 6

def annotation_name(text: str) -> str:
    """The annotation column an ANNO argument names: Click's upper-case names (``DST_IP``,
    ``PAINT``, optionally with ``_ANNO``) map to our lower-case columns."""
    t = text.strip().lower()
    return t[: -len("_anno")] if t.endswith("_anno") else t


def network_lengths(batch: PacketBatch, pos: np.ndarray) -> np.ndarray:
    """Bytes from each packet's network header (absolute ``pos``) to its end (Click's
    ``network_length``)."""
    return batch.off + batch.length - pos


def ether_packet_types(batch: PacketBatch) -> np.ndarray:
    """The packet type of Ethernet frames (packets starting at the Ethernet header) by their
    destination address, as Click's pcap FromDevice sets it: BROADCAST for
    ff:ff:ff:ff:ff:ff, MULTICAST for other group addresses (low bit of the first byte), HOST
    otherwise -- without the interface's own address, OTHERHOST cannot be told apart."""
    n = len(batch)
    types = np.full(n, PACKET_HOST, np.uint8)
    whole = np.flatnonzero(batch.length >= 6)
    if whole.size:
        dst = batch.bytes_at(batch.off[whole], 6)
        group = (dst[:, 0] & 1) != 0
        types[whole[group]] = PACKET_MULTICAST
        types[whole[group & (dst == 0xFF).all(axis=1)]] = PACKET_BROADCAST
    return types


def link_broadcast(batch: PacketBatch) -> np.ndarray | None:
    """Mask of packets that arrived as link-level broadcast or multicast, or None when no
    packet of the batch carries a packet-type annotation."""
    pt = batch.anno_or_none(PACKET_TYPE)
    if pt is None:
        return None
    m = (pt == PACKET_BROADCAST) | (pt == PACKET_MULTICAST)
    return m if m.any() else None


def reject(
    element: Element,
    batch: PacketBatch,
    codes: np.ndarray,
    texts: dict[int, str],
    port: int = 1,
) -> None:
    """Send the packets of ``batch`` (all rejected) to output ``port`` if it exists, else
    drop them, counted under ``texts[codes[i]]`` per packet."""
    if not len(batch):
        return
    if port < element.noutputs and element._out[port] is not None:
        element.emit(port, batch)
        return
    values, counts = np.unique(codes, return_counts=True)
    for v, c in zip(values.tolist(), counts.tolist(), strict=True):
        element.drop(int(c), texts[int(v)])


def chatter(element: Element, message: str) -> None:
    """Click's click_chatter for an element: one line on stderr."""
    sys.stderr.write(f"{element.name}: {message}\n")
