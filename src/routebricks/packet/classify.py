"""Byte-pattern classification over batches: Click's Classifier patterns, compiled into flat
arrays and evaluated by one compiled kernel per batch.

A *term* tests ``(packet[offset:offset+n] & mask) == value`` (or its negation); a *pattern* is
an AND of terms (none: always true); the first matching pattern of a list gives a packet's
output. Terms that reach past a packet's end do not match (and their negations do), as in
Click. IPClassifier compiles its expressions to the same form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from routebricks.jit import precompile

#: The largest offset a pattern may test: packets are at most 65535 bytes.
MAX_OFFSET = 65535


@dataclass(frozen=True)
class Term:
    offset: int
    value: bytes
    mask: bytes
    negate: bool = False


class CompiledPatterns:
    """A list of patterns (each a list of terms) as flat arrays for :func:`classify`."""

    def __init__(self, patterns: list[list[Term]]) -> None:
        self.patterns = patterns
        t_off: list[int] = []
        t_len: list[int] = []
        t_start: list[int] = []
        t_neg: list[bool] = []
        vals = bytearray()
        masks = bytearray()
        p_first: list[int] = []
        p_count: list[int] = []
        for terms in patterns:
            p_first.append(len(t_off))
            p_count.append(len(terms))
            for t in terms:
                t_off.append(t.offset)
                t_len.append(len(t.value))
                t_start.append(len(vals))
                t_neg.append(t.negate)
                vals += bytes(v & m for v, m in zip(t.value, t.mask, strict=True))
                masks += t.mask
        self.t_off = np.array(t_off, np.int64)
        self.t_len = np.array(t_len, np.int64)
        self.t_start = np.array(t_start, np.int64)
        self.t_neg = np.array(t_neg, np.bool_)
        self.vals = np.frombuffer(bytes(vals) or b"\0", np.uint8).copy()
        self.masks = np.frombuffer(bytes(masks) or b"\0", np.uint8).copy()
        self.p_first = np.array(p_first, np.int64)
        self.p_count = np.array(p_count, np.int64)

    def classify(self, pool: np.ndarray, off: np.ndarray, length: np.ndarray) -> np.ndarray:
        """Index of the first matching pattern for each packet, or -1."""
        return _classify(
            pool,
            off,
            length,
            self.t_off,
            self.t_len,
            self.t_start,
            self.t_neg,
            self.vals,
            self.masks,
            self.p_first,
            self.p_count,
        )


@njit(cache=True, nogil=True)
def _classify(pool, off, length, t_off, t_len, t_start, t_neg, vals, masks, p_first,
              p_count):  # pragma: no cover - compiled
    # Term-major: one tight loop over the packets per term (measured ~1.7x faster than
    # packet-major); terms of up to 8 bytes compare as one masked integer.
    n = off.shape[0]
    out = np.full(n, -1, np.int64)
    ok = np.empty(n, np.bool_)
    for p in range(p_first.shape[0]):
        for k in range(n):
            ok[k] = out[k] < 0
        for t in range(p_first[p], p_first[p] + p_count[p]):
            o = t_off[t]
            w = t_len[t]
            s = t_start[t]
            neg = t_neg[t]
            if w <= 8:
                v = np.uint64(0)
                m = np.uint64(0)
                for j in range(w):
                    v = (v << np.uint64(8)) | np.uint64(vals[s + j])
                    m = (m << np.uint64(8)) | np.uint64(masks[s + j])
                for k in range(n):
                    if ok[k]:
                        if o + w > length[k]:
                            hit = False
                        else:
                            x = np.uint64(0)
                            base = off[k] + o
                            for j in range(w):
                                x = (x << np.uint64(8)) | np.uint64(pool[base + j])
                            hit = (x & m) == v
                        ok[k] = hit != neg
            else:
                for k in range(n):
                    if ok[k]:
                        if o + w > length[k]:
                            hit = False
                        else:
                            hit = True
                            base = off[k] + o
                            for j in range(w):
                                if (pool[base + j] & masks[s + j]) != vals[s + j]:
                                    hit = False
                                    break
                        ok[k] = hit != neg
        for k in range(n):
            if ok[k]:
                out[k] = p
    return out


def parse_click_pattern(text: str) -> list[Term]:
    """One Click Classifier pattern: space-separated ``[!]offset/value[%mask]`` terms (AND),
    or ``-`` (matches everything). Values and masks are hex; ``?`` in a value is a wildcard
    nibble. Raises ValueError with a message naming the bad term."""
    text = text.strip()
    if text == "-":
        return []
    if not text:
        raise ValueError("empty pattern (use '-' to match every packet)")
    terms = []
    for word in text.split():
        neg = word.startswith("!")
        w = word[1:] if neg else word
        if "/" not in w:
            raise ValueError(f"bad term {word!r}: expected OFFSET/VALUE, e.g. 12/0800")
        off_s, rest = w.split("/", 1)
        if not (off_s.isascii() and off_s.isdigit()):
            raise ValueError(f"bad term {word[:40]!r}: offset {off_s[:20]!r} is not a decimal "
                             "number")
        if len(off_s.lstrip("0")) > 5 or int(off_s) > MAX_OFFSET:  # and int() stays cheap
            raise ValueError(f"bad term {word[:40]!r}: offset {off_s[:20]!r} is larger than "
                             f"{MAX_OFFSET}")
        val_s, _, mask_s = rest.partition("%")
        if not val_s or len(val_s) % 2:
            raise ValueError(f"bad term {word!r}: the value needs an even number of hex digits")
        if mask_s and len(mask_s) != len(val_s):
            raise ValueError(f"bad term {word!r}: the mask must be as long as the value")
        value = bytearray()
        mask = bytearray()
        for i in range(0, len(val_s), 2):
            pair = val_s[i : i + 2]
            vb = mb = 0
            for j, ch in enumerate(pair):
                shift = 4 if j == 0 else 0
                if ch == "?":
                    continue
                try:
                    vb |= int(ch, 16) << shift
                except ValueError:
                    raise ValueError(f"bad term {word!r}: {ch!r} is not a hex digit") from None
                mb |= 0xF << shift
            if mask_s:
                try:
                    mb &= int(mask_s[i : i + 2], 16)
                except ValueError:
                    raise ValueError(f"bad term {word!r}: bad mask {mask_s!r}") from None
            value.append(vb)
            mask.append(mb)
        terms.append(Term(int(off_s), bytes(value), bytes(mask), neg))
    return terms


def warmup() -> None:
    """Compile the classifier kernel (see :mod:`routebricks.jit`)."""
    u8, i64 = np.zeros(16, np.uint8), np.zeros(1, np.int64)
    precompile(_classify, u8, i64, i64, i64, i64, i64, np.zeros(1, np.bool_), u8, u8, i64,
               i64)
