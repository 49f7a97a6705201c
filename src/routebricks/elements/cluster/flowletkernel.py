"""What the compiled passes of DirectVLB (:mod:`.vlbkernel`) and NflyVLB
(:mod:`.nflykernel`) share: the flow hash, the element's random generator, the flowlet
table and the steps of a packet's flowlet, and the choice of the fullest bucket.

A *flowlet* is a run of a flow's packets toward one output server less than DELTA apart.
The table maps a flow (its hash) and output server to the path its flowlet took and the
time it was last seen; a packet keeps its flowlet's path while that path is live and not
*full* — the packet would take the path's bucket below minus the burst, so a flowlet may
run one burst over its path's rate. A full flowlet moves whole to a fresh choice that has
room; when none has any, its packets are spread one by one (classic VLB's rule, §6.1).
Each kernel keeps its own liveness and room rules; these functions are the rest.

The kernels call :func:`flow_hash` themselves: the helpers inlined into them call no
compiled function, as such a call from an inlined body made the kernels twice as slow.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Flowlet statistics (indices of the ``stats`` array).
STAT_NEW = 0  # flowlets begun (a flow's first packet, or one after a gap over DELTA)
STAT_KEPT = 1  # packets sent on their flowlet's path
STAT_SPREAD = 2  # packets of a flowlet whose path was full, spread on their own
STAT_MOVED = 3  # flowlets moved whole to a path with room when theirs was full

#: The parameters both kernels read from their ``ints`` array; index 5 is each kernel's
#: own (DirectVLB: SELF; NflyVLB: whether the uplink is down).
I_CLASSIC, I_FLOWLETS, I_DELTA, I_NOW, I_ELAPSED = range(5)
NINTS = 6

#: Flow table entries (uint64 pairs): the time last seen (ns) and a key, the flow's hash
#: tag (32 bits), output server (16) and path (16); an empty entry has server 0xFFFF.
F_TIME, F_KEY = 0, 1
EMPTY_KEY = np.uint64(0xFFFF << 16)
LOW16 = np.uint64(0xFFFF)

#: What a packet's flowlet does (:func:`flowlet_fate`): none kept (FLOWLETS false), a
#: new flowlet, the flowlet's path kept, or the flowlet's path full.
NO_FLOWLET, NEW, KEEP, FULL = range(4)

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_ONE = np.uint64(1)
_EIGHT = np.uint64(8)
_SIXTEEN = np.uint64(16)
_THIRTYTWO = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def _fmix(h: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    # MurmurHash3's 64-bit finalizer: every input bit flips about half the output bits.
    h ^= h >> _S33
    h *= _M1
    h ^= h >> _S33
    h *= _M2
    h ^= h >> _S33
    return h


@njit(cache=True, nogil=True, inline="always")
def _be(pool: np.ndarray, p: int, nbytes: int) -> np.uint64:  # pragma: no cover - compiled
    v = np.uint64(0)
    for q in range(p, p + nbytes):
        v = (v << _EIGHT) | np.uint64(pool[q])
    return v


@njit(cache=True, nogil=True)
def flow_hash(pool: np.ndarray, p: int, end: int) -> np.uint64:  # pragma: no cover - compiled
    """A 64-bit hash of the IPv4 5-tuple of the header at ``p`` (the packet ends at ``end``):
    addresses and protocol always, ports for TCP, UDP, DCCP and SCTP first fragments.
    0 when there is no whole IPv4 header (all such packets make one flow)."""
    if p + 20 > end:
        return np.uint64(0)
    ihl = np.int64(pool[p] & 0x0F) * 4
    proto = np.int64(pool[p + 9])
    frag = (np.int64(pool[p + 6] & 0x1F) << 8) | np.int64(pool[p + 7])
    ports = np.uint64(0)
    if ((proto == 6 or proto == 17 or proto == 33 or proto == 132) and frag == 0
            and ihl >= 20 and p + ihl + 4 <= end):
        ports = _be(pool, p + ihl, 4)
    key = (ports << _EIGHT) | np.uint64(proto) | (_ONE << np.uint64(63))
    return _fmix(_be(pool, p + 12, 8) ^ _fmix(key))


@njit(cache=True, nogil=True)
def flow_hashes(pool: np.ndarray, pos: np.ndarray,
                end: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """:func:`flow_hash` of every packet (tests and tools)."""
    out = np.empty(pos.shape[0], np.uint64)
    for k in range(pos.shape[0]):
        out[k] = flow_hash(pool, pos[k], end[k])
    return out


@njit(cache=True, nogil=True, inline="always")
def next_random(rng: np.ndarray) -> np.uint64:  # pragma: no cover - compiled
    """The next number of the element's generator (xorshift64*: its own, so that SEED
    makes a run repeatable); ``rng[0]`` is its state, never 0."""
    x = rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = x
    return x * np.uint64(2685821657736338717)


@njit(cache=True, nogil=True)
def fullest(down: np.ndarray, tokens: np.ndarray, uniform: bool, skip: int, skip2: int,
            rng: np.ndarray) -> int:  # pragma: no cover - compiled
    """The path x (not down, not ``skip`` or ``skip2``) whose bucket ``tokens[x]`` is
    fullest — with budget, or the least behind; with ``uniform`` any alike. -1 if none."""
    best = -1
    best_tokens = -np.inf
    ties = 0
    for x in range(down.shape[0]):
        if x in (skip, skip2) or down[x]:
            continue
        t = 0.0 if uniform else tokens[x]
        if t > best_tokens:
            best, best_tokens, ties = x, t, 1
        elif t == best_tokens:
            # Equal buckets (all full, all at the debt floor): each alike (reservoir
            # sampling), so no path is favoured by its number.
            ties += 1
            if (next_random(rng) >> _S33) % np.uint64(ties) == 0:
                best = x
    return best


@njit(cache=True, nogil=True, inline="always")
def flowlet_find(flows: np.ndarray, h: np.uint64, j: int, now: int,
                 delta: int) -> tuple[int, int]:  # pragma: no cover - compiled
    """The entry of the flow with hash ``h`` toward output server ``j`` (the table is
    2-way set associative: its entry in the pair the hash names, else the one to take,
    an empty one or the older), and its flowlet's path if the flow was seen at most
    ``delta`` ns before ``now``, else -1."""
    tag = h & _LOW32
    base = np.int64((h >> _THIRTYTWO) & np.uint64(flows.shape[0] - 2))  # even: a pair
    want = (tag << _THIRTYTWO) | (np.uint64(j) << _SIXTEEN)
    for e in range(base, base + 2):
        key = flows[e, F_KEY]
        if key & ~LOW16 == want:
            if now - np.int64(flows[e, F_TIME]) <= delta:
                return e, np.int64(key & LOW16)
            return e, -1
    if (flows[base, F_KEY] >> _SIXTEEN) & LOW16 == LOW16:
        return base, -1
    if ((flows[base + 1, F_KEY] >> _SIXTEEN) & LOW16 == LOW16
            or flows[base + 1, F_TIME] < flows[base, F_TIME]):
        return base + 1, -1
    return base, -1


@njit(cache=True, nogil=True, inline="always")
def flowlet_fate(live: bool, fits: bool, stats: np.ndarray) -> int:  # pragma: no cover
    """NEW unless the flowlet's path is ``live``; then KEEP while the packet ``fits`` (its
    path's bucket stays at or above minus the burst), else FULL. Counts NEW and KEEP."""
    if not live:
        stats[STAT_NEW] += 1
        return NEW
    if fits:
        stats[STAT_KEPT] += 1
        return KEEP
    return FULL


@njit(cache=True, nogil=True, inline="always")
def flowlet_moves(has_room: bool, stats: np.ndarray) -> bool:  # pragma: no cover
    """Whether a full flowlet moves whole to its fresh path (which ``has_room``: one path
    change, then it keeps to it), or that packet alone is spread."""
    if has_room:
        stats[STAT_MOVED] += 1
        return True
    stats[STAT_SPREAD] += 1
    return False


@njit(cache=True, nogil=True, inline="always")
def flowlet_record(flows: np.ndarray, e: int, h: np.uint64, j: int, p: int, now: int,
                   new: bool) -> None:  # pragma: no cover - compiled
    """The flow (hash ``h``) seen at ``now``; a ``new`` (or moved) flowlet keeps to path
    ``p``."""
    if new:
        flows[e, F_KEY] = (((h & _LOW32) << _THIRTYTWO) | (np.uint64(j) << _SIXTEEN)
                           | np.uint64(p))
    flows[e, F_TIME] = np.uint64(now)
