"""DirectVLB's per-packet path choice, compiled: one loop over the batch that reads each
frame's output server (byte 1 of its cluster MAC), hashes its flow, keeps or re-picks its
flowlet's path, charges the path's token bucket and groups the batch by output.

A *path* toward output server ``j`` is named by the server the frame is sent to: ``j``
itself (direct) or an intermediate ``x`` (phase 1 of VLB, which ``x`` forwards to ``j``).
Token buckets count bytes: ``link[x]`` meters everything this server sends on its link to
``x`` (direct traffic, phase 1, and the phase-2 frames its switch forwards, charged before
each batch), at the link's rate; ``direct[j]`` also caps what goes straight to ``j`` (the
direct share, DIRECT_RATE). Both are refilled by the time since the last batch, capped at
the burst: a bucket is a link queue seen from the sender (full bucket: empty queue), so
a cap that never moves keeps batches that come in quick succession from different ports
from clipping each other's refills. The direct path to ``j`` has
budget while both ``direct[j]`` and ``link[j]`` are positive, a path through ``x`` while
``link[x]`` is; a packet sent on a path takes its length out of the bucket, which may then go
negative, down to minus the burst (a link queue's worth of debt: an overload long past is
not held against a path forever). A flowlet's path is *full* when its next packet would
take the bucket below minus the burst: a flowlet may run one burst over its path's rate
before it is moved whole to a path with room, or, when no path has room, spread packet by
packet.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from routebricks.elements.cluster.flowletkernel import (
    FULL,
    I_CLASSIC,
    I_DELTA,
    I_ELAPSED,
    I_FLOWLETS,
    I_NOW,
    KEEP,
    NEW,
    NINTS,
    NO_FLOWLET,
    flow_hash,
    flowlet_fate,
    flowlet_find,
    flowlet_moves,
    flowlet_record,
    fullest,
    next_random,
)
from routebricks.elements.cluster.kernels import (
    CODE_DOWN,
    CODE_RANGE,
    CODE_SELF,
    NCODES,
    frame_code,
    group,
)
from routebricks.jit import precompile


@njit(cache=True, nogil=True)
def _classic(j: int, me: int, down: np.ndarray, rng: np.ndarray) -> int:  # pragma: no cover
    """Classic VLB: a node uniformly at random among the N (down ones excluded); this server
    or ``j`` itself mean straight to ``j``."""
    n = down.shape[0]
    nn = np.uint64(n)
    for _ in range(4 * n):
        x = np.int64((next_random(rng) >> np.uint64(33)) % nn)
        if x in (me, j):
            return j
        if not down[x]:
            return x
    return j


#: Parameters of :func:`vlb_route`: its ``ints`` array holds :mod:`.flowletkernel`'s
#: ``I_*`` and this server's number ...
I_ME = NINTS - 1
#: ... and its ``rates`` array (rates in bytes per nanosecond, burst in bytes).
R_DIRECT, R_LINK, R_BURST = range(3)


@njit(cache=True, nogil=True)
def vlb_route(pool: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray,
              has_nh: bool, down: np.ndarray, ints: np.ndarray, rates: np.ndarray,
              buckets: np.ndarray, flows: np.ndarray, rng: np.ndarray, counts: np.ndarray,
              stats: np.ndarray, forwarded: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Choose the next server of every frame; return the batch grouped by output (``n``
    outputs, then the drop codes of :mod:`.kernels`; see ``kernels.group``). ``ints`` and
    ``rates`` hold the parameters (``I_*``, ``R_*``; ``I_ELAPSED``: ns since the previous
    batch); ``buckets`` the direct (row 0) and link (row 1) buckets; ``forwarded`` the
    bytes the switch sent on each link since the last batch (charged to the links first);
    ``flows`` the flow table (a power of two of entries, at least 2); ``counts[p, j]``
    counts packets sent toward ``j`` through ``p``. Few arguments: each costs the
    dispatcher time per call."""
    n = down.shape[0]
    me = ints[I_ME]
    classic = ints[I_CLASSIC] != 0
    flowlets = ints[I_FLOWLETS] != 0
    delta = ints[I_DELTA]
    now = ints[I_NOW]
    elapsed = ints[I_ELAPSED]
    burst = rates[R_BURST]
    direct = buckets[0]
    link = buckets[1]
    d_earned = rates[R_DIRECT] * elapsed
    s_earned = rates[R_LINK] * elapsed
    for x in range(n):
        direct[x] = min(burst, direct[x] + d_earned)
        link[x] = max(min(burst, link[x] + s_earned) - forwarded[x], -burst)
    m = off.shape[0]
    code = np.empty(m, np.int64)
    for k in range(m):
        o = off[k]
        size = length[k]
        c = frame_code(pool, o, size)
        if c < 0:
            j = np.int64(pool[o + 1])
            if j >= n:
                c = CODE_RANGE
            elif j == me:
                c = CODE_SELF
            elif down[j]:
                c = CODE_DOWN
        if c >= 0:
            code[k] = n + c
            continue
        fate = NO_FLOWLET
        if flowlets:
            ip = nh[k] if has_nh and nh[k] >= 0 else o + 14
            h = flow_hash(pool, ip, o + size)
            e, q = flowlet_find(flows, h, j, now, delta)
            live = q >= 0 and (q == j or not down[q])
            # A flowlet may run one burst over its path's rate before it is spread; a
            # packet spread keeps the flowlet's path, where the flowlet resumes once the
            # bucket has refilled.
            room = (min(direct[j], link[j]) if q == j else link[q]) if live else 0.0
            fate = flowlet_fate(live, room - size >= -burst, stats)
        # The common case (direct budget) inline: a call per packet costs more than the
        # choice itself.
        if fate == KEEP:
            p = q
        elif classic:
            p = _classic(j, me, down, rng)
        elif direct[j] > 0.0 and link[j] > 0.0:
            p = j
        else:
            # Past the direct budget: the intermediate (not me, not j, not down) whose
            # link bucket is fullest; straight to j when there is none.
            p = fullest(down, link, False, me, j, rng)
            if p < 0:
                p = j
        if fate == FULL and flowlet_moves(
                (min(direct[j], link[j]) if p == j else link[p]) > 0.0, stats):
            fate = NEW
        if flowlets:
            flowlet_record(flows, e, h, j, p, now, fate == NEW)
        if p == j:
            direct[j] = max(direct[j] - size, -burst)
        link[p] = max(link[p] - size, -burst)
        counts[p, j] += 1
        code[k] = p
    return group(code, n + NCODES)


def warmup() -> None:
    """Compile DirectVLB's kernel (see :mod:`routebricks.jit`)."""
    u8, i64, f64 = np.zeros(16, np.uint8), np.zeros(1, np.int64), np.zeros(1)
    precompile(vlb_route, u8, i64, i64, i64, True, np.zeros(1, np.bool_), i64, f64,
               np.zeros((2, 1)), np.zeros((2, 2), np.uint64), np.zeros(1, np.uint64),
               np.zeros((1, 1), np.int64), i64, f64)
