"""The compiled passes of a k-ary n-fly's elements: the input server's choice of a path
(NflyVLB) and a switch's step up or down (NflySwitch), one loop over the batch each.

A *path* is a top-stage switch X (0..k^(n-1)-1, see :mod:`routebricks.cluster.nfly`); a
frame carries 1 + X in bytes 1-2 of its source address (``clustermac.PATH_OFFSET``) and
its output server d (a terminal number) in byte 1 of its destination address. Both
kernels return the batch grouped as :func:`kernels.group` does.
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
from routebricks.packet.clustermac import PATH_OFFSET

#: NflyVLB's drop codes beyond kernels' (CODE_DOWN: the uplink is down or every path is).
#: NflySwitch: CODE_RANGE for an output server (or path) out of range; CODE_DOWN for a
#: next server down; CODE_SELF for a frame without a path (a mesh frame).
CODE_NO_PATH = CODE_SELF

#: Parameters of :func:`nfly_route`: its ``ints`` array holds :mod:`.flowletkernel`'s
#: ``I_*`` and whether the uplink is down ...
I_UPLINK_DOWN = NINTS - 1
#: ... and its ``rates`` array (bytes per nanosecond; bytes).
R_PATH, R_BURST = range(2)


@njit(cache=True, nogil=True)
def nfly_route(pool: np.ndarray, off: np.ndarray, length: np.ndarray, nh: np.ndarray,
               has_nh: bool, ints: np.ndarray, rates: np.ndarray, buckets: np.ndarray,
               down: np.ndarray, flows: np.ndarray, rng: np.ndarray, counts: np.ndarray,
               stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Pick every frame's path, write it in the frame, and group the batch: output 0 (the
    uplink), then the drop codes. ``buckets[x]`` meters path x at ``rates[R_PATH]``
    (refilled by ``ints[I_ELAPSED]`` ns, within +-burst); ``flows`` is the flowlet table
    of :mod:`.flowletkernel` (keyed by flow and output server, valued by path);
    ``counts[x]`` packets per path."""
    npaths = down.shape[0]
    classic = ints[I_CLASSIC] != 0
    flowlets = ints[I_FLOWLETS] != 0
    delta = ints[I_DELTA]
    now = ints[I_NOW]
    burst = rates[R_BURST]
    earned = rates[R_PATH] * ints[I_ELAPSED]
    for x in range(npaths):
        buckets[x] = min(burst, buckets[x] + earned)
    m = off.shape[0]
    code = np.empty(m, np.int64)
    for k in range(m):
        o = off[k]
        size = length[k]
        c = frame_code(pool, o, size)
        if c < 0 and ints[I_UPLINK_DOWN] != 0:
            c = CODE_DOWN
        if c >= 0:
            code[k] = 1 + c
            continue
        j = np.int64(pool[o + 1])
        fate = NO_FLOWLET
        if flowlets:
            ip = nh[k] if has_nh and nh[k] >= 0 else o + 14
            h = flow_hash(pool, ip, o + size)
            e, q = flowlet_find(flows, h, j, now, delta)
            live = q >= 0 and q < npaths and not down[q]
            fate = flowlet_fate(live, live and buckets[q] - size >= -burst, stats)
        if fate == KEEP:
            p = q
        else:
            p = fullest(down, buckets, classic, -1, -1, rng)
            if p < 0:
                code[k] = 1 + CODE_DOWN
                continue
        if fate == FULL and flowlet_moves(buckets[p] > 0.0, stats):
            fate = NEW
        if flowlets:
            flowlet_record(flows, e, h, j, p, now, fate == NEW)
        buckets[p] = max(buckets[p] - size, -burst)
        counts[p] += 1
        field = p + 1
        pool[o + PATH_OFFSET] = (field >> 8) & 0xFF
        pool[o + PATH_OFFSET + 1] = field & 0xFF
        code[k] = 0
    return group(code, 1 + NCODES)


#: Parameters of :func:`nfly_switch` (indices of its ``ints`` array).
S_K, S_STAGE, S_STAGES, S_TERMINALS, S_PATHS, S_FROM_ABOVE = range(6)


@njit(cache=True, nogil=True)
def nfly_switch(pool: np.ndarray, off: np.ndarray, length: np.ndarray, ints: np.ndarray,
                down: np.ndarray, counts: np.ndarray,
                rerouted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """One switch's step for a batch from one side: from below (``ints[S_FROM_ABOVE]``
    0), up port k + X_(stage-1) (a dead one: another live up port, the path's digit
    rewritten), or at the top stage down port d_(n-1); from above, down port d_(stage-1).
    Outputs: 0..k-1 down, k..2k-1 up; then the drop codes. ``down[p]``: output p's
    neighbour is down; ``counts[p]`` frames per output; ``rerouted[0]`` frames sent up
    another port than their path's."""
    k = ints[S_K]
    stage = ints[S_STAGE]
    top = stage == ints[S_STAGES]
    terminals = ints[S_TERMINALS]
    npaths = ints[S_PATHS]
    up = ints[S_FROM_ABOVE] == 0 and not top
    nout = down.shape[0]
    scale = np.int64(1)  # k^(stage-1): the place of the digit this stage reads
    for _ in range(stage - 1):
        scale *= k
    m = off.shape[0]
    code = np.empty(m, np.int64)
    for i in range(m):
        o = off[i]
        c = frame_code(pool, o, length[i])
        if c < 0:
            d = np.int64(pool[o + 1])
            if d >= terminals:
                c = CODE_RANGE
            elif up:
                field = ((np.int64(pool[o + PATH_OFFSET]) << 8)
                         | np.int64(pool[o + PATH_OFFSET + 1]))
                if field == 0:
                    c = CODE_NO_PATH
                elif field > npaths:
                    c = CODE_RANGE
                else:
                    x = field - 1
                    j = (x // scale) % k
                    if down[k + j]:
                        # Another live up port, the same for every frame of this path and
                        # output (a flow keeps its order): the live ones, counted from j.
                        live = 0
                        for t in range(k):
                            if not down[k + t]:
                                live += 1
                        if live == 0:
                            c = CODE_DOWN
                        else:
                            pick = (x + d) % live
                            t = j
                            while True:
                                t = (t + 1) % k
                                if not down[k + t]:
                                    if pick == 0:
                                        break
                                    pick -= 1
                            x += (t - j) * scale
                            field = x + 1
                            pool[o + PATH_OFFSET] = (field >> 8) & 0xFF
                            pool[o + PATH_OFFSET + 1] = field & 0xFF
                            rerouted[0] += 1
                            j = t
                    if c < 0:
                        code[i] = k + j
                        counts[k + j] += 1
                        continue
            else:
                # Down (or turning at the top): destination-tag routing.
                j = (d // scale) % k
                if down[j]:
                    c = CODE_DOWN
                else:
                    code[i] = j
                    counts[j] += 1
                    continue
        code[i] = nout + c
    return group(code, nout + NCODES)


def warmup() -> None:
    """Compile the n-fly kernels (see :mod:`routebricks.jit`)."""
    u8, i64, f64 = np.zeros(16, np.uint8), np.zeros(1, np.int64), np.zeros(1)
    b = np.zeros(1, np.bool_)
    precompile(nfly_route, u8, i64, i64, i64, True, i64, f64, f64, b,
               np.zeros((2, 2), np.uint64), np.zeros(1, np.uint64), i64, i64)
    precompile(nfly_switch, u8, i64, i64, i64, b, i64, i64)
