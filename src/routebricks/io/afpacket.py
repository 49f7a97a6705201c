"""AF_PACKET packet I/O with PACKET_MMAP rings (Linux only): the public interface.

This is the lowest layer of the router's data path: it moves raw Ethernet frames between a
network interface and numpy arrays, in batches, with no per-packet Python code on the hot
path. The names here are all a user of the layer needs; they live in small modules:

* :mod:`routebricks.io.rxring` -- :class:`RxRing`, a ``PACKET_RX_RING`` (TPACKET_V3 blocks
  or TPACKET_V2 slots) read into batches; :func:`open_queues` opens N of them as the members
  of a ``PACKET_FANOUT`` group (member *i* plays hardware queue *i*).
* :mod:`routebricks.io.txring` -- :class:`TxRing`, a batch transmitter (``sendmmsg`` by
  default, a ``PACKET_TX_RING``, or one ``send`` per packet).
* :mod:`routebricks.io.sockets` -- interfaces (ifindex, MTU), fanout group ids, binding.
* :mod:`routebricks.io.kernels` -- the compiled copy/walk kernels and the pool layout.
* :mod:`routebricks.io.tpacket` -- the kernel ABI: constants and struct layouts from
  ``linux/if_packet.h``.

A batch is ``(pool, offsets, lengths)``: packet ``i`` is ``pool[offsets[i]:][:lengths[i]]``,
with free bytes around each packet (:func:`pool_layout`) so later elements can push or append
headers in place.
"""

from __future__ import annotations

from routebricks.io.kernels import pool_layout, warmup
from routebricks.io.rxring import RxBatch, RxRing, RxStats, open_queues
from routebricks.io.sockets import fanout_group_id, interface_mtu, resolve_ifindex
from routebricks.io.tpacket import ETH_P_ALL, FANOUT_MODES
from routebricks.io.txring import DEFAULT_TX_MODE, TxMode, TxRing, TxStats, frames_to_batch

__all__ = [
    "DEFAULT_TX_MODE",
    "ETH_P_ALL",
    "FANOUT_MODES",
    "RxBatch",
    "RxRing",
    "RxStats",
    "TxMode",
    "TxRing",
    "TxStats",
    "fanout_group_id",
    "frames_to_batch",
    "interface_mtu",
    "open_queues",
    "pool_layout",
    "resolve_ifindex",
    "warmup",
]
