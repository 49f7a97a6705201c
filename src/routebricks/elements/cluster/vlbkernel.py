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

from routebricks.elements.cluster.kernels import (
    CODE_DOWN,
    CODE_RANGE,
    CODE_SELF,
    NCODES,
    frame_code,
    group,
)
from routebricks.jit import precompile

#: Flowlet statistics (indices of the ``stats`` array).
STAT_NEW = 0  # flowlets begun (a flow's first packet, or one after a gap over DELTA)
STAT_KEPT = 1  # packets sent on their flowlet's path
STAT_SPREAD = 2  # packets of a flowlet whose path was full, spread on their own
STAT_MOVED = 3  # flowlets moved whole to a path with room when theirs was full

_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_ONE = np.uint64(1)
_EIGHT = np.uint64(8)


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
def _random(rng: np.ndarray) -> np.uint64:  # pragma: no cover - compiled
    # xorshift64*: the element's own generator, so SEED makes a run repeatable.
    x = rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = x
    return x * np.uint64(2685821657736338717)


@njit(cache=True, nogil=True)
def _intermediate(j: int, me: int, down: np.ndarray, link: np.ndarray,
                  rng: np.ndarray) -> int:  # pragma: no cover - compiled
    """Direct VLB past the direct budget: the intermediate (not ``me``, not ``j``, not
    down) whose link bucket is fullest — with budget, or the least behind; ``j`` if
    none."""
    best = -1
    best_tokens = -np.inf
    ties = 0
    for x in range(down.shape[0]):
        if x in (me, j) or down[x]:
            continue
        t = link[x]
        if t > best_tokens:
            best, best_tokens, ties = x, t, 1
        elif t == best_tokens:
            # Equal buckets (all full, all at the debt floor): each alike (reservoir
            # sampling), so no intermediate is favoured by its number.
            ties += 1
            if (_random(rng) >> _S33) % np.uint64(ties) == 0:
                best = x
    return j if best < 0 else best


@njit(cache=True, nogil=True)
def _classic(j: int, me: int, down: np.ndarray, rng: np.ndarray) -> int:  # pragma: no cover
    """Classic VLB: a node uniformly at random among the N (down ones excluded); this server
    or ``j`` itself mean straight to ``j``."""
    n = down.shape[0]
    nn = np.uint64(n)
    for _ in range(4 * n):
        x = np.int64((_random(rng) >> _S33) % nn)
        if x in (me, j):
            return j
        if not down[x]:
            return x
    return j


#: Parameters of :func:`vlb_route`: indices of its ``ints`` array ...
I_ME, I_CLASSIC, I_FLOWLETS, I_DELTA, I_NOW, I_ELAPSED = range(6)
#: ... and of its ``rates`` array (rates in bytes per nanosecond, burst in bytes).
R_DIRECT, R_LINK, R_BURST = range(3)
#: Flow table entries (uint64 pairs): the time last seen (ns) and a key, the flow's hash
#: tag (32 bits), output server (16) and path (16); an empty entry has server 0xFFFF.
F_TIME, F_KEY = 0, 1
EMPTY_KEY = np.uint64(0xFFFF << 16)
_SIXTEEN = np.uint64(16)
_LOW16 = np.uint64(0xFFFF)


@njit(cache=True, nogil=True, inline="always")
def _flow_slot(flows: np.ndarray, base: int, tag: np.uint64,
               j: int) -> tuple[int, bool]:  # pragma: no cover - compiled
    """The flow table is 2-way set associative: the flow's entry in the pair at ``base``
    and whether it was there; else the entry to take (an empty one, or the older)."""
    want = (tag << np.uint64(32)) | (np.uint64(j) << _SIXTEEN)
    for e in range(base, base + 2):
        if flows[e, F_KEY] & ~_LOW16 == want:
            return e, True
    if (flows[base, F_KEY] >> _SIXTEEN) & _LOW16 == _LOW16:
        return base, False
    if ((flows[base + 1, F_KEY] >> _SIXTEEN) & _LOW16 == _LOW16
            or flows[base + 1, F_TIME] < flows[base, F_TIME]):
        return base + 1, False
    return base, False


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
    mask = np.uint64(flows.shape[0] - 2)  # even entries: the first of each pair
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
        p = -1
        fresh = True  # the packet needs a path of its own
        new = False
        full = False
        if flowlets:
            ip = nh[k] if has_nh and nh[k] >= 0 else o + 14
            h = flow_hash(pool, ip, o + size)
            tag = h & np.uint64(0xFFFFFFFF)
            e, found = _flow_slot(flows, np.int64((h >> np.uint64(32)) & mask), tag, j)
            q = np.int64(flows[e, F_KEY] & _LOW16)
            if (found and now - np.int64(flows[e, F_TIME]) <= delta
                    and (q == j or not down[q])):
                # A flowlet may run one burst over its path's rate before it is spread;
                # a packet spread keeps the flowlet's path, where the flowlet resumes
                # once the bucket has refilled.
                room = min(direct[j], link[j]) if q == j else link[q]
                if room - size >= -burst:
                    p = q
                    fresh = False
                    stats[STAT_KEPT] += 1
                else:
                    full = True
            else:
                new = True
                stats[STAT_NEW] += 1
        if fresh:
            # The common case (direct budget) inline: a call per packet costs more than
            # the choice itself.
            if classic:
                p = _classic(j, me, down, rng)
            elif direct[j] > 0.0 and link[j] > 0.0:
                p = j
            else:
                p = _intermediate(j, me, down, link, rng)
        if full:
            # The flowlet's path is full. A path with room takes the whole flowlet (one
            # path change, then it keeps to it); with no room anywhere its packets are
            # spread one by one, as classic VLB (the paper's rule, §6.1).
            if (min(direct[j], link[j]) if p == j else link[p]) > 0.0:
                new = True
                stats[STAT_MOVED] += 1
            else:
                stats[STAT_SPREAD] += 1
        if new:
            flows[e, F_KEY] = (tag << np.uint64(32)) | (np.uint64(j) << _SIXTEEN) | np.uint64(p)
        if flowlets:
            flows[e, F_TIME] = np.uint64(now)
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
