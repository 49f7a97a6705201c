"""Compiled passes of the cluster elements: classify every frame by its cluster MAC and
group the batch by output, in one loop each (no per-packet Python).

Each kernel returns a per-group packet order and the group bounds (a counting sort,
stable; see :func:`group`): outputs ``0 .. n-1`` first, then one group per drop reason, so
the element emits or drops each group with one ``select``. The MAC layout is
:mod:`routebricks.packet.clustermac`'s.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from routebricks.jit import precompile
from routebricks.packet.clustermac import INTERFACE_BYTE0

#: Frames shorter than an Ethernet header.
CODE_SHORT = 0
#: The destination MAC is not a cluster MAC (clustermac.decode's rule).
CODE_NOT_CLUSTER = 1
#: The MAC names a server (ClusterSwitch, DirectVLB) or port (ClusterDecap) out of range.
CODE_RANGE = 2
#: The output server is marked down.
CODE_DOWN = 3
#: The output server is this server (DirectVLB only: a misconfiguration).
CODE_SELF = 4
NCODES = 5

ETHER_HLEN = 14


@njit(cache=True, nogil=True)
def group(code: np.ndarray, ngroups: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Packet indices grouped by ``code`` (stable), and one array of the ``ngroups + 1``
    group bounds followed by the groups that have packets (so that the caller loops over
    those only; one array, as each array handed back to Python costs the call time)."""
    n = code.shape[0]
    counts = np.zeros(ngroups, np.int64)
    for k in range(n):
        counts[code[k]] += 1
    nonempty = 0
    for g in range(ngroups):
        if counts[g]:
            nonempty += 1
    meta = np.empty(ngroups + 1 + nonempty, np.int64)
    meta[0] = 0
    i = ngroups + 1
    for g in range(ngroups):
        meta[g + 1] = meta[g] + counts[g]
        if counts[g]:
            meta[i] = g
            i += 1
    fill = meta[:ngroups].copy()
    order = np.empty(n, np.int64)
    for k in range(n):
        c = code[k]
        order[fill[c]] = k
        fill[c] += 1
    return order, meta


@njit(cache=True, nogil=True, inline="always")
def frame_code(pool: np.ndarray, o: int, length: int) -> int:  # pragma: no cover - compiled
    """-1 for a cluster frame, else the drop code of a short or non-cluster frame."""
    if length < ETHER_HLEN:
        return CODE_SHORT
    b0 = pool[o]
    if (b0 & 0x03) != 0x02 or b0 == INTERFACE_BYTE0:
        return CODE_NOT_CLUSTER
    return -1


@njit(cache=True, nogil=True)
def switch_frames(pool: np.ndarray, off: np.ndarray, length: np.ndarray, down: np.ndarray,
                  counts: np.ndarray, nbytes: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """ClusterSwitch: output = byte 1 of the destination MAC (``down.shape[0]`` servers);
    ``counts[j]`` counts frames switched to server j, ``nbytes[j]`` their bytes."""
    n = off.shape[0]
    nservers = down.shape[0]
    code = np.empty(n, np.int64)
    for k in range(n):
        o = off[k]
        c = frame_code(pool, o, length[k])
        if c < 0:
            j = np.int64(pool[o + 1])
            if j >= nservers:
                c = CODE_RANGE
            elif down[j]:
                c = CODE_DOWN
            else:
                code[k] = j
                counts[j] += 1
                nbytes[j] += length[k]
                continue
        code[k] = nservers + c
    return group(code, nservers + NCODES)


@njit(cache=True, nogil=True)
def decap_frames(pool: np.ndarray, off: np.ndarray, length: np.ndarray, counts: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover
    """ClusterDecap: output = byte 0 >> 2 (``counts.shape[0]`` ports; ``counts[k]`` counts
    frames sent to port k); also each frame's next hop (bytes 2-5)."""
    n = off.shape[0]
    nports = counts.shape[0]
    code = np.empty(n, np.int64)
    next_hop = np.zeros(n, np.uint32)
    for k in range(n):
        o = off[k]
        c = frame_code(pool, o, length[k])
        if c < 0:
            port = np.int64(pool[o] >> 2)
            if port >= nports:
                c = CODE_RANGE
            else:
                code[k] = port
                counts[port] += 1
                next_hop[k] = ((np.uint32(pool[o + 2]) << 24) | (np.uint32(pool[o + 3]) << 16)
                               | (np.uint32(pool[o + 4]) << 8) | np.uint32(pool[o + 5]))
                continue
        code[k] = nports + c
    order, meta = group(code, nports + NCODES)
    return next_hop, order, meta


@njit(cache=True, nogil=True)
def encap_frames(pool: np.ndarray, off: np.ndarray, length: np.ndarray, header: np.ndarray,
                 anno: np.ndarray, has_anno: bool, nh: np.ndarray, has_nh: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:  # pragma: no cover
    """ClusterEncap: write ``header`` (14 bytes) in front of each packet with bytes 2-5 set
    to its next hop: ``anno[k]`` (dst_ip) unless absent or 0, else the IPv4 destination at
    the network header (``nh[k]``, else the data start). The caller has made 14 bytes of
    headroom. Returns the new offsets and lengths, which packets were written (those with
    no IP header to read are not), and how many were not."""
    n = off.shape[0]
    new_off = np.empty(n, np.int64)
    new_len = np.empty(n, np.int64)
    ok = np.ones(n, np.bool_)
    bad = 0
    for k in range(n):
        o = off[k]
        hop = np.uint32(anno[k]) if has_anno else np.uint32(0)
        if hop == 0:
            ip = nh[k] if has_nh and nh[k] >= 0 else o
            if o + length[k] - ip < 20:
                ok[k] = False
                bad += 1
                new_off[k] = o
                new_len[k] = length[k]
                continue
            q = ip + 16
            hop = ((np.uint32(pool[q]) << 24) | (np.uint32(pool[q + 1]) << 16)
                   | (np.uint32(pool[q + 2]) << 8) | np.uint32(pool[q + 3]))
        p = o - ETHER_HLEN
        for b in range(ETHER_HLEN):
            pool[p + b] = header[b]
        pool[p + 2] = (hop >> 24) & 0xFF
        pool[p + 3] = (hop >> 16) & 0xFF
        pool[p + 4] = (hop >> 8) & 0xFF
        pool[p + 5] = hop & 0xFF
        new_off[k] = p
        new_len[k] = length[k] + ETHER_HLEN
    return new_off, new_len, ok, bad


def warmup() -> None:
    """Compile the cluster elements' kernels (see :mod:`routebricks.jit`)."""
    u8, i64 = np.zeros(16, np.uint8), np.zeros(1, np.int64)
    precompile(switch_frames, u8, i64, i64, np.zeros(1, np.bool_), i64, i64)
    precompile(decap_frames, u8, i64, i64, i64)
    precompile(encap_frames, u8, i64, i64, u8, np.zeros(1, np.uint32), True, i64, True)
