"""The Linux packet-socket ABI: constants and struct layouts from ``linux/if_packet.h``.

Everything here is data: socket option numbers, ring status bits, and the ring headers as numpy
dtypes (so a ring is read through strided numpy views) or :mod:`struct` formats. The layouts
were checked against the kernel UAPI header with ``offsetof`` (see the io tests).
"""

from __future__ import annotations

import mmap
import struct
from typing import Final

import numpy as np

ETH_P_ALL: Final = 0x0003
ETH_HLEN: Final = 14
SOL_PACKET: Final = 263

PACKET_ADD_MEMBERSHIP: Final = 1
PACKET_RX_RING: Final = 5
PACKET_STATISTICS: Final = 6
PACKET_VERSION: Final = 10
PACKET_HDRLEN: Final = 11
PACKET_RESERVE: Final = 12
PACKET_TX_RING: Final = 13
PACKET_LOSS: Final = 14
PACKET_TIMESTAMP: Final = 17
PACKET_FANOUT: Final = 18
PACKET_QDISC_BYPASS: Final = 20
PACKET_IGNORE_OUTGOING: Final = 23

PACKET_MR_PROMISC: Final = 1

TPACKET_V1: Final = 0
TPACKET_V2: Final = 1
TPACKET_V3: Final = 2

PACKET_FANOUT_HASH: Final = 0
PACKET_FANOUT_LB: Final = 1
PACKET_FANOUT_CPU: Final = 2
PACKET_FANOUT_ROLLOVER: Final = 3
PACKET_FANOUT_RND: Final = 4
PACKET_FANOUT_QM: Final = 5
PACKET_FANOUT_FLAG_ROLLOVER: Final = 0x1000
PACKET_FANOUT_FLAG_UNIQUEID: Final = 0x2000
PACKET_FANOUT_FLAG_IGNORE_OUTGOING: Final = 0x4000
PACKET_FANOUT_FLAG_DEFRAG: Final = 0x8000

#: ``fanout_mode`` names accepted by :class:`RxRing`.
FANOUT_MODES: Final[dict[str, int]] = {
    "hash": PACKET_FANOUT_HASH,
    "lb": PACKET_FANOUT_LB,
    "cpu": PACKET_FANOUT_CPU,
    "rollover": PACKET_FANOUT_ROLLOVER,
    "rnd": PACKET_FANOUT_RND,
    "qm": PACKET_FANOUT_QM,
}

# RX ring status bits
TP_STATUS_KERNEL: Final = 0
TP_STATUS_USER: Final = 1 << 0
TP_STATUS_COPY: Final = 1 << 1
TP_STATUS_LOSING: Final = 1 << 2
TP_STATUS_CSUMNOTREADY: Final = 1 << 3
TP_STATUS_BLK_TMO: Final = 1 << 5
# TX ring status values
TP_STATUS_AVAILABLE: Final = 0
TP_STATUS_SEND_REQUEST: Final = 1 << 0
TP_STATUS_SENDING: Final = 1 << 1
TP_STATUS_WRONG_FORMAT: Final = 1 << 2

TPACKET_ALIGNMENT: Final = 16


def tpacket_align(x: int) -> int:
    """``TPACKET_ALIGN``: ring headers and frames start on 16-byte boundaries."""
    return (x + TPACKET_ALIGNMENT - 1) & ~(TPACKET_ALIGNMENT - 1)


SOCKADDR_LL_SIZE: Final = 20

#: ``struct tpacket2_hdr`` (32 bytes).
TPACKET2_HDR: Final = np.dtype(
    {
        "names": [
            "tp_status",
            "tp_len",
            "tp_snaplen",
            "tp_mac",
            "tp_net",
            "tp_sec",
            "tp_nsec",
            "tp_vlan_tci",
            "tp_vlan_tpid",
        ],
        "formats": ["=u4", "=u4", "=u4", "=u2", "=u2", "=u4", "=u4", "=u2", "=u2"],
        "offsets": [0, 4, 8, 12, 14, 16, 20, 24, 26],
        "itemsize": 32,  # + __u8 tp_padding[4]
    }
)

#: ``struct tpacket3_hdr`` (48 bytes) including the ``hv1`` variant.
TPACKET3_HDR: Final = np.dtype(
    {
        "names": [
            "tp_next_offset",
            "tp_sec",
            "tp_nsec",
            "tp_snaplen",
            "tp_len",
            "tp_status",
            "tp_mac",
            "tp_net",
            "tp_rxhash",
            "tp_vlan_tci",
            "tp_vlan_tpid",
        ],
        "formats": [
            "=u4",
            "=u4",
            "=u4",
            "=u4",
            "=u4",
            "=u4",
            "=u2",
            "=u2",
            "=u4",
            "=u4",
            "=u2",
        ],
        "offsets": [0, 4, 8, 12, 16, 20, 24, 26, 28, 32, 36],
        "itemsize": 48,  # + __u16 hv1.tp_padding, __u8 tp_padding[8]
    }
)

#: ``struct tpacket_block_desc`` with the ``tpacket_hdr_v1`` header (48 bytes).
TPACKET_BLOCK_DESC: Final = np.dtype(
    {
        "names": [
            "version",
            "offset_to_priv",
            "block_status",
            "num_pkts",
            "offset_to_first_pkt",
            "blk_len",
            "seq_num",
            "ts_first_sec",
            "ts_first_nsec",
            "ts_last_sec",
            "ts_last_nsec",
        ],
        "formats": [
            "=u4",
            "=u4",
            "=u4",
            "=u4",
            "=u4",
            "=u4",
            "=u8",
            "=u4",
            "=u4",
            "=u4",
            "=u4",
        ],
        "offsets": [0, 4, 8, 12, 16, 20, 24, 32, 36, 40, 44],
        "itemsize": 48,
    }
)

#: ``struct tpacket_req``: block_size, block_nr, frame_size, frame_nr.
TPACKET_REQ: Final = struct.Struct("=4I")
#: ``struct tpacket_req3``: the above + retire_blk_tov, sizeof_priv, feature_req_word.
TPACKET_REQ3: Final = struct.Struct("=7I")
#: ``struct sockaddr_ll``: family, protocol (network order), ifindex, hatype,
#: pkttype, halen, addr[8].
SOCKADDR_LL: Final = struct.Struct("=HHiHBB8s")
#: ``struct packet_mreq``: ifindex, type, alen, address[8].
PACKET_MREQ: Final = struct.Struct("=iHH8s")

TPACKET2_HDRLEN: Final = tpacket_align(TPACKET2_HDR.itemsize) + SOCKADDR_LL_SIZE  # 52
TPACKET3_HDRLEN: Final = tpacket_align(TPACKET3_HDR.itemsize) + SOCKADDR_LL_SIZE  # 68
#: Where a TX frame's data starts (no PACKET_TX_HAS_OFF): after the aligned header.
TX_DATA_OFFSET: Final = TPACKET2_HDRLEN - SOCKADDR_LL_SIZE  # 32

#: Where ``sll_pkttype`` (``PACKET_HOST``, ``PACKET_BROADCAST``, ...) lies in the
#: ``sockaddr_ll`` that the kernel writes right after each receive ring header.
SLL_PKTTYPE_OFFSET: Final = 10
#: ``sll_pkttype`` values (linux/if_packet.h): how a frame met the interface.
PACKET_HOST: Final = 0
PACKET_BROADCAST: Final = 1
PACKET_MULTICAST: Final = 2
PACKET_OTHERHOST: Final = 3
PACKET_OUTGOING: Final = 4

assert SOCKADDR_LL.size == SOCKADDR_LL_SIZE
assert TPACKET_REQ3.size == 28

PAGE_SIZE: Final = mmap.PAGESIZE
