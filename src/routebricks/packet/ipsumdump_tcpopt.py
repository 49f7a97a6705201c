"""TCP options as Click's IP summary dump writes them: ``mss1460;wscale7;sackok;ts5:0``,
``sack95-98;sack100-200``, ``99=0:5:10``, joined by ``;`` (fields ``tcp_opt``, ``tcp_ntopt``
and ``tcp_sack``; see :mod:`routebricks.packet.ipsumdump`).

What each field shows is a set of option kinds (a mask, as Click's): ``tcp_opt`` all but
padding, ``tcp_ntopt`` all but padding and timestamps, ``tcp_sack`` SACK-permitted and SACK
blocks. EOL ends the options; NOP and EOL are never written, but are read (``nop``, ``eol``).
A malformed option makes the whole field ``?``; no option to show is ``.``.
"""

from __future__ import annotations

PADDING, MSS, WSCALE, SACK, TIMESTAMP, UNKNOWN = 1, 2, 4, 8, 16, 32
ALL = 0xFFFFFFFF
ALL_NOPAD = ALL & ~PADDING
NTALL = ALL & ~(PADDING | TIMESTAMP)

#: The option kinds each field shows.
FIELD_MASK = {"tcp_opt": ALL_NOPAD, "tcp_ntopt": NTALL, "tcp_sack": SACK}
#: The option kinds each field reads from text.
FIELD_READS = {"tcp_opt": ALL, "tcp_ntopt": NTALL, "tcp_sack": SACK}

_EOL, _NOP, _MSS, _WSCALE, _SACKOK, _SACK, _TS = 0, 1, 2, 3, 4, 5, 8
_KIND_CLASS = {_EOL: PADDING, _NOP: PADDING, _MSS: MSS, _WSCALE: WSCALE, _SACKOK: SACK,
               _SACK: SACK, _TS: TIMESTAMP}
_FIXED_LEN = {_MSS: 4, _WSCALE: 3, _SACKOK: 2, _TS: 10}
_DIGITS = "0123456789"


def kind_class(kind: int) -> int:
    """The mask bit an option kind belongs to."""
    return _KIND_CLASS.get(kind, UNKNOWN)


def _u32(b: bytes, o: int) -> int:
    return int.from_bytes(b[o:o + 4], "big")


def unparse_tcp_opt(opt: bytes, mask: int = ALL_NOPAD) -> str:
    """Click's text for TCP options ``opt`` showing the kinds in ``mask``."""
    parts: list[str] = []
    i, n = 0, len(opt)
    while i < n:
        kind = opt[i]
        if kind == _EOL:
            if mask & PADDING:
                parts.append("eol")
            break
        if kind == _NOP:
            if mask & PADDING:
                parts.append("nop")
            i += 1
            continue
        ln = opt[i + 1] if i + 1 < n else 0
        bad = i + ln > n or (ln != _FIXED_LEN[kind] if kind in _FIXED_LEN
                             else ln % 8 != 2 if kind == _SACK else ln < 2)
        if bad:
            return "?"
        if mask & kind_class(kind):
            if kind == _MSS:
                parts.append(f"mss{opt[i + 2] << 8 | opt[i + 3]}")
            elif kind == _WSCALE:
                parts.append(f"wscale{opt[i + 2]}")
            elif kind == _SACKOK:
                parts.append("sackok")
            elif kind == _SACK:
                parts += [f"sack{_u32(opt, o)}-{_u32(opt, o + 4)}"
                          for o in range(i + 2, i + ln, 8)]
            elif kind == _TS:
                parts.append(f"ts{_u32(opt, i + 2)}:{_u32(opt, i + 6)}")
            else:
                data = opt[i + 2:i + ln]
                parts.append(str(kind) + ("=" + ":".join(map(str, data)) if data else ""))
        i += ln
    return ";".join(parts) or "."


def kept_options(opt: bytes, mask: int, class_of=kind_class) -> bytes:
    """The options of ``opt`` whose kinds are in ``mask``, as bytes (Click's binary form of
    an option field): copying stops at EOL (kept if padding is) or at an option whose length
    is impossible."""
    out = bytearray()
    i, n = 0, len(opt)
    while i < n:
        kind = opt[i]
        if kind in (0, 1):
            if mask & PADDING:
                out.append(kind)
            if kind == 0:
                break
            i += 1
            continue
        ln = opt[i + 1] if i + 1 < n else 0
        if ln < 2 or i + ln > n:
            break
        if mask & class_of(kind):
            out += opt[i:i + ln]
        i += ln
    return bytes(out)


def c_integer(s: str, i: int) -> tuple[int | None, int]:
    """The unsigned integer at ``s[i:]`` as Click's ``cp_integer`` with base 0 reads it
    (``0x`` hex, ``0b`` binary, leading ``0`` octal, ``_`` between digits; saturating at
    2**32-1): (value, index after it), or (None, i) if no digits."""
    j, n = i, len(s)
    if j < n and s[j] == "+":
        j += 1
    base = 10
    if j + 2 < n and s[j] == "0" and s[j + 1] in "xXbB":
        base, j = (16 if s[j + 1] in "xX" else 2), j + 2
    elif j < n and s[j] == "0":
        base = 8
    digits = "0123456789abcdef"[:base]
    start, last, k = j, None, j
    while k < n:
        c = s[k].lower()
        if c == "_" and last == k:
            k += 1
            continue
        if c not in digits:
            break
        k += 1
        last = k
    if last is None:
        if start > i + 1:  # "0x" with nothing after: the "0"
            return 0, start - 1
        return None, i
    v = int(s[start:last].replace("_", ""), base)
    return min(v, 0xFFFFFFFF), last


def parse_tcp_opt(text: str, reads: int = ALL) -> bytes | None:
    """TCP option bytes from Click's text (the inverse of :func:`unparse_tcp_opt`, reading
    the kinds in ``reads``); ``b""`` for ``.``; None if the text is not valid. A timestamp
    first gets two NOPs in front, as Click's; ``sackA-B,sackC-D`` is one SACK option,
    ``sackA-B;sackC-D`` two."""
    if text in ("", "."):
        return b""
    s, i, n = text, 0, len(text)
    out = bytearray()
    while True:
        if s.startswith("mss", i) and i + 3 < n and reads & MSS:
            v, i = c_integer(s, i + 3)
            if v is None or v > 0xFFFF:
                return None
            out += bytes([_MSS, 4, v >> 8, v & 0xFF])
        elif s.startswith("wscale", i) and i + 6 < n and reads & WSCALE:
            v, i = c_integer(s, i + 6)
            if v is None or v > 255:
                return None
            out += bytes([_WSCALE, 3, v])
        elif s.startswith("sackok", i) and reads & SACK:
            out += bytes([_SACKOK, 2])
            i += 6
        elif s.startswith("sack", i) and i + 4 < n and reads & SACK:
            start = len(out)
            out += bytes([_SACK, 0])
            i += 4
            while True:
                a, j = c_integer(s, i)
                if a is None or j >= n or s[j] not in ":-":
                    return None
                b, j = c_integer(s, j + 1)
                if b is None:
                    return None
                out += a.to_bytes(4, "big") + b.to_bytes(4, "big")
                i = j
                if not (s.startswith(",sack", i) and i + 5 < n):
                    break
                i += 5
            if len(out) - start > 255:
                return None
            out[start + 1] = len(out) - start
        elif s.startswith("ts", i) and i + 2 < n and reads & TIMESTAMP:
            a, j = c_integer(s, i + 2)
            if a is None or j >= n or s[j] != ":":
                return None
            b, j = c_integer(s, j + 1)
            if b is None:
                return None
            if not out:
                out += bytes([_NOP, _NOP])
            out += bytes([_TS, 10]) + a.to_bytes(4, "big") + b.to_bytes(4, "big")
            i = j
        elif i < n and s[i] in _DIGITS and reads & UNKNOWN:
            kind, i = c_integer(s, i)
            if kind is None or kind > 255:
                return None
            out.append(kind)
            if i + 1 < n and s[i] == "=" and s[i + 1] in _DIGITS:
                pos = len(out)
                out.append(0)
                while True:
                    v, i = c_integer(s, i + 1)
                    if v is None or v > 255:
                        return None
                    out.append(v)
                    if not (i + 1 < n and s[i] == ":" and s[i + 1] in _DIGITS):
                        break
                if len(out) - pos > 254:
                    return None
                out[pos] = len(out) - pos + 1
        elif s.startswith("nop", i) and reads & PADDING:
            out.append(_NOP)
            i += 3
        elif (s.startswith("eol", i) and reads & PADDING
              and (i + 3 == n or s[i + 3] != ",")):
            out.append(_EOL)
            i += 3
        else:
            return None
        if i >= n or s[i].isspace():
            while len(out) > 40 and out[0] == _NOP:  # surplus padding in front
                del out[0]
            return bytes(out) if len(out) <= 40 else None
        if s[i] not in ",;":
            return None
        i += 1
