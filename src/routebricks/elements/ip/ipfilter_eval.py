"""IPFilter/IPClassifier trees evaluated over whole batches: every header field the
patterns use is gathered once per batch (numba gathers at the IP header position from
:func:`routebricks.packet.ip.ip_positions`, the transport header ``4 * hl`` bytes later),
with a "readable" mask (the field lies inside the packet); each comparison is then one
numpy expression over the batch, and a comparison on a field that a packet does not
contain is false (its negation true), as in Click's Classifier.
"""

from __future__ import annotations

import numba
import numpy as np

from routebricks.elements.ip.ipfilter_tree import (
    And,
    Cmp,
    Cond,
    Const,
    FieldSpec,
    Node,
    Not,
    Or,
)
from routebricks.packet.batch import PacketBatch
from routebricks.packet.ip import ip_positions

__all__ = ["CompiledFilter"]

# --------------------------------------------------------------------------- evaluation


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _gather_fields(
    pool: np.ndarray,
    ip_pos: np.ndarray,
    rel: np.ndarray,
    length: np.ndarray,
    transport: np.ndarray,
    offs: np.ndarray,
    widths: np.ndarray,
) -> np.ndarray:  # pragma: no cover - compiled
    """Every requested field of every packet in one pass: ``out[f, k]`` is field ``f`` of
    packet ``k`` (big-endian, ``widths[f]`` bytes at ``offs[f]`` of the IP header, or of the
    transport header ``4 * hl`` bytes after it), or -1 where the packet does not hold it
    (nothing outside a packet is read)."""
    nf = offs.shape[0]
    n = ip_pos.shape[0]
    out = np.empty((nf, n), np.int64)
    for k in range(n):
        r = rel[k]
        size = length[k]
        p = ip_pos[k]
        ok = r >= 0 and r < size
        hl = np.int64(pool[p] & 15) * 4 if ok else np.int64(0)
        for f in range(nf):
            t = transport[f]
            avail = size - r - hl if t else size - r
            o = offs[f]
            w = widths[f]
            if ok and o + w <= avail:
                q = (p + hl if t else p) + o
                if w == 1:
                    v = np.int64(pool[q])
                elif w == 2:
                    v = (np.int64(pool[q]) << 8) | np.int64(pool[q + 1])
                else:
                    v = np.int64(0)
                    for j in range(w):
                        v = (v << 8) | np.int64(pool[q + j])
                out[f, k] = v
            else:
                out[f, k] = -1
    return out


def _fields_of(node: Node, out: set[FieldSpec]) -> None:
    if isinstance(node, Cmp):
        out.add(node.field)
    elif isinstance(node, Not):
        _fields_of(node.child, out)
    elif isinstance(node, And | Or):
        for c in node.children:
            _fields_of(c, out)
    elif isinstance(node, Cond):
        for c in (node.test, node.yes, node.no):
            _fields_of(c, out)


#: A field read: (transport header?, byte offset, width).
_ReadKey = tuple[bool, int, int]


class CompiledFilter:
    """A list of (tree, output slot) pairs, evaluated over whole batches.

    The trees are flattened into one straight-line program of numpy steps, with equal
    subtrees (the same comparison in several patterns) computed once.  ``classify(batch)``
    returns each packet's slot (that of the first tree that holds), -1 if none holds;
    slots may be :data:`DROP`.
    """

    def __init__(self, trees: list[Node], slots: list[int]) -> None:
        self.trees = trees
        self.slots = slots
        fields: set[FieldSpec] = set()
        for t in trees:
            _fields_of(t, fields)
        # Gather each (header, offset, width) once, whatever the shifts and masks.
        reads = sorted({(f.transport, f.offset, f.width) for f in fields})
        self._read_index = {key: i for i, key in enumerate(reads)}
        self._transport = np.array([r[0] for r in reads], np.bool_)
        self._offs = np.array([r[1] for r in reads], np.int64)
        self._widths = np.array([r[2] for r in reads], np.int64)
        self.program: list[tuple] = []  # type: ignore[type-arg]
        self._memo: dict[object, int] = {}
        self.outputs = [self._emit(t) for t in trees]
        # The whole list, for the common "first tree is constant true" case.
        self.constant: int | None = None
        for t, s in zip(trees, slots, strict=True):
            if t == Const(True):
                self.constant = s
                break
            if t != Const(False):
                break

    def _emit(self, node: Node) -> int:
        """Append the steps computing ``node``; return its register."""
        hit = self._memo.get(node)
        if hit is not None:
            return hit
        if isinstance(node, Const):
            step: tuple = ("const", node.value)  # type: ignore[type-arg]
        elif isinstance(node, Cmp):
            f = node.field
            mask = node.mask & f.full_mask
            plain = f.shift == 0 and mask == (1 << (8 * f.width)) - 1
            read = self._read_index[(f.transport, f.offset, f.width)]
            step = ("cmp", read, f.shift, mask, node.op, node.value, plain)
        elif isinstance(node, Not):
            step = ("not", self._emit(node.child))
        elif isinstance(node, And | Or):
            regs = tuple(self._emit(c) for c in node.children)
            step = ("and" if isinstance(node, And) else "or", regs)
        else:
            step = ("cond", self._emit(node.test), self._emit(node.yes), self._emit(node.no))
        self.program.append(step)
        reg = self._memo[node] = len(self.program) - 1
        return reg

    def gather(self, batch: PacketBatch) -> np.ndarray:
        """Every needed field of every packet: int64 ``[field, packet]``, -1 if absent."""
        ip_pos = ip_positions(batch)
        return _gather_fields(
            batch.pool,
            ip_pos,
            ip_pos - batch.off,
            batch.length,
            self._transport,
            self._offs,
            self._widths,
        )

    def run(self, batch: PacketBatch) -> list[np.ndarray]:
        """The value (boolean array over the batch) of every step of the program."""
        n = len(batch)
        vals = self.gather(batch) if len(self._offs) else None
        regs: list[np.ndarray] = []
        for step in self.program:
            op = step[0]
            if op == "cmp":
                _, read, shift, mask, cop, value, plain = step
                x = vals[read]  # type: ignore[index]
                y = x if plain else ((x >> shift) & mask if shift else x & mask)
                if cop == "eq":
                    r = y == value
                elif cop == "gt":
                    r = y > value
                elif cop == "ne":
                    r = y != value
                else:
                    r = y <= value
                if not plain or cop in ("ne", "le"):
                    # absent fields are -1: plain == and > are false there already
                    r &= x >= 0
            elif op == "const":
                r = np.full(n, step[1], np.bool_)
            elif op == "not":
                r = ~regs[step[1]]
            elif op == "and":
                r = regs[step[1][0]] & regs[step[1][1]]
                for i in step[1][2:]:
                    r &= regs[i]
            elif op == "or":
                r = regs[step[1][0]] | regs[step[1][1]]
                for i in step[1][2:]:
                    r |= regs[i]
            else:
                r = np.where(regs[step[1]], regs[step[2]], regs[step[3]])
            regs.append(r)
        return regs

    def evaluate(self, batch: PacketBatch) -> list[np.ndarray]:
        """Whether each tree holds, per packet (one boolean array per tree)."""
        regs = self.run(batch)
        return [regs[i] for i in self.outputs]

    def classify(self, batch: PacketBatch) -> np.ndarray:
        """Slot of the first matching tree for each packet (-1: none matched)."""
        n = len(batch)
        if self.constant is not None:
            return np.full(n, self.constant, np.int64)
        regs = self.run(batch)
        out = np.full(n, -1, np.int64)
        todo: np.ndarray | None = None
        for reg, slot in zip(self.outputs, self.slots, strict=True):
            m = regs[reg]
            if todo is None:
                out[m] = slot
                todo = ~m
            else:
                m = m & todo
                out[m] = slot
                todo &= ~m
            if not todo.any():
                break
        return out
