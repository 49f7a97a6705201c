"""Internet checksums over batches: full (RFC 1071) and incremental (RFC 1624).

The full sum runs in a compiled kernel over each packet's header bytes; the incremental update
is plain numpy arithmetic over whole columns.
"""

from __future__ import annotations

import numpy as np

from routebricks.packet import kernels as _k


def inet_checksum_at(pool: np.ndarray, pos: np.ndarray, nbytes: np.ndarray | int) -> np.ndarray:
    """Internet checksum of ``nbytes`` bytes at each absolute position ``pos`` (uint16 array).

    Over data that include a correct checksum field the result is 0; over data whose checksum
    field is zero it is the value to store there.
    """
    nb = np.broadcast_to(np.asarray(nbytes, np.int64), pos.shape)
    return _k.inet_checksum(pool, np.asarray(pos, np.int64), np.ascontiguousarray(nb))


def inet_checksum(data: bytes) -> int:
    """Internet checksum of one byte string (control plane: ICMP errors, ARP, tests)."""
    if len(data) & 1:
        data += b"\0"
    s = int(np.frombuffer(data, ">u2").sum(dtype=np.uint64))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def incremental_update(
    old_sum: np.ndarray, old_word: np.ndarray, new_word: np.ndarray
) -> np.ndarray:
    """RFC 1624 eqn. 3: the checksum after one 16-bit word changes from ``old_word`` to
    ``new_word``: HC' = ~(~HC + ~m + m'). All arguments are uint16-valued arrays."""
    s = (
        (~np.asarray(old_sum, np.uint32) & 0xFFFF)
        + (~np.asarray(old_word, np.uint32) & 0xFFFF)
        + np.asarray(new_word, np.uint32)
    )
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return (~s & 0xFFFF).astype(np.uint16)
