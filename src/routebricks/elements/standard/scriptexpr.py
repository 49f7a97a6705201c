"""The value functions of Click's Script (``$(add 1 2)``, ``$(lt $x 5)``...): pure functions
from a parameter string to a result string, with Click's number parsing and output format.

A user's bad operand raises :class:`ValueError` with Click's message ("expected list of
numbers"); the Script element turns it into a handler error. Functions that need the router
(``readable``, ``get``...) live in the element; these need nothing but their text.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable

from routebricks.engine.argtext import unquote

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INT = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPACE = " \t\n\r\f\v"


# ---------------------------------------------------------------------- words and numbers
def shift_word(text: str) -> tuple[str, str]:
    """The first space-separated word of ``text`` (quotes kept, a quoted part may hold
    spaces) and the rest without leading space (Click's ``cp_shift_spacevec``)."""
    s = text.lstrip(_SPACE)
    i, n = 0, len(s)
    while i < n and s[i] not in _SPACE:
        if s[i] == '"':
            i += 1
            while i < n and s[i] != '"':
                i += 2 if s[i] == "\\" else 1
        elif s[i] == "'":
            i += 1
            while i < n and s[i] != "'":
                i += 1
        i += 1
    i = min(i, n)
    return s[:i], s[i:].lstrip(_SPACE)


def words(text: str) -> list[str]:
    out: list[str] = []
    word, rest = shift_word(text)
    while word:
        out.append(word)
        word, rest = shift_word(rest)
    return out


def parse_int(word: str) -> int | None:
    """Click's ``IntArg`` for a 64-bit integer: decimal, ``0x`` hex or ``0`` octal; None if
    ``word`` is not one or does not fit."""
    if not _INT.fullmatch(word):
        return None
    sign = -1 if word[0] == "-" else 1
    digits = word.lstrip("+-")
    if digits[:2] in ("0x", "0X"):
        v = int(digits[2:], 16)
    elif len(digits) > 1 and digits[0] == "0":
        v = int(digits, 8)
    else:
        v = int(digits)
    v *= sign
    return v if INT64_MIN <= v <= INT64_MAX else None


def parse_real(word: str) -> float | None:
    return float(word) if _REAL.fullmatch(word) else None


def parse_bool(word: str) -> bool | None:
    """Click's ``BoolArg``: true/false, yes/no, 1/0, t/f, y/n; None otherwise."""
    if word in ("1", "y", "t", "true", "yes"):
        return True
    if word in ("0", "n", "f", "false", "no"):
        return False
    return None


def unparse_bool(b: bool) -> str:
    return "true" if b else "false"


def unparse_real(x: float) -> str:
    """C's ``%.12g`` as Click prints doubles (a NaN from 0/0 prints as x86's ``-nan``)."""
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.12g}"


def wrap64(v: int) -> int:
    """Two's-complement wrap to 64 bits, as C's int64 arithmetic at user level."""
    return (v - INT64_MIN) % 2**64 + INT64_MIN


def real_div(a: float, b: float) -> float:
    """IEEE division (Python raises on a zero divisor)."""
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return -math.nan  # what x86 produces for 0/0
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _to_int64(x: float) -> int:
    """C's (int64_t) cast of a double on x86: out of range (and NaN) gives INT64_MIN."""
    if math.isnan(x) or not INT64_MIN <= x < 2**63:
        return INT64_MIN
    return int(x)


# ---------------------------------------------------------------------- the functions
def arithmetic(op: str, text: str) -> str:
    """add sub min max mul div idiv over a space-separated list: 64-bit integer arithmetic
    while every operand is an integer, real arithmetic once one is not (always for div and
    idiv; idiv truncates the result)."""
    ints: int = 0 if op in ("add", "sub") else 1
    real: float = float(ints)
    use_real = op in ("div", "idiv")
    first = True
    for word in words(text):
        i = None if use_real else parse_int(word)
        if i is None and not use_real:
            use_real, real = True, float(ints)
        if use_real:
            d = parse_real(word) if parse_int(word) is None else float(parse_int(word) or 0)
            if d is None:
                raise ValueError("expected list of numbers")
            real = d if first else _real_step(op, real, d)
        else:
            assert i is not None
            ints = i if first else _int_step(op, ints, i)
        first = False
    if op == "idiv":
        return str(_to_int64(real))
    return unparse_real(real) if use_real else str(ints)


def _int_step(op: str, acc: int, x: int) -> int:
    if op == "add":
        return wrap64(acc + x)
    if op == "sub":
        return wrap64(acc - x)
    if op == "min":
        return min(acc, x)
    if op == "max":
        return max(acc, x)
    return wrap64(acc * x)  # mul (div and idiv are always real)


def _real_step(op: str, acc: float, x: float) -> float:
    if op == "add":
        return acc + x
    if op == "sub":
        return acc - x
    if op == "min":
        return acc if acc < x else x
    if op == "max":
        return acc if acc > x else x
    if op == "mul":
        return acc * x
    return real_div(acc, x)


def compare(op: str, text: str) -> str:
    """eq ne lt gt le ge of two operands: as numbers when both are numbers, else as
    unquoted strings in bytewise order."""
    ws = words(text)
    if len(ws) != 2:
        raise ValueError("expected two numbers")
    a, b = ws
    ia, ib = parse_int(a), parse_int(b)
    c: int
    if ia is not None and ib is not None:
        c = (ia > ib) - (ia < ib)
    else:
        ra = float(ia) if ia is not None else parse_real(a)
        rb = float(ib) if ib is not None else parse_real(b)
        if ra is not None and rb is not None:
            c = -1 if ra < rb else 0 if ra == rb else 1
        else:
            sa, sb = unquote(a).encode(), unquote(b).encode()
            c = (sa > sb) - (sa < sb)
    return unparse_bool({"eq": c == 0, "ne": c != 0, "lt": c < 0, "gt": c > 0,
                         "le": c <= 0, "ge": c >= 0}[op])


def modrem(op: str, text: str) -> str:
    ws = words(text)
    if len(ws) != 2:
        raise ValueError("expected two numbers")
    a, b = parse_int(ws[0]), parse_int(ws[1])
    if a is not None and b is not None:
        if b == 0:
            raise ValueError("division by zero")
        r = abs(a) % abs(b)  # C's %: the remainder takes the dividend's sign
        return str(-r if a < 0 else r)
    ra, rb = parse_real(ws[0]), parse_real(ws[1])
    if op == "mod" or ra is None or rb is None:
        raise ValueError("expected two numbers")
    return unparse_real(math.fmod(ra, rb) if rb != 0 else -math.nan)


def negabs(op: str, text: str) -> str:
    word = text.strip()
    i = parse_int(word)
    if i is not None:
        return str(wrap64(-i if op == "neg" or i < 0 else i))
    r = parse_real(word)
    if r is None:
        raise ValueError("expected one number")
    return unparse_real(-r if op == "neg" else abs(r))


def _bool_arg(word: str) -> bool:
    b = parse_bool(word)
    if b is None:
        raise ValueError("syntax error")
    return b


def logic(op: str, text: str) -> str:
    if op == "not":
        return unparse_bool(not _bool_arg(text.strip()))
    zero = op in ("and", "nand")
    value = zero
    rest = text
    while value == zero and rest.strip():
        word, rest = shift_word(rest)
        x = _bool_arg(word)
        value = (value and x) if op in ("and", "nand") else (value or x)
    return unparse_bool(not value if op in ("nand", "nor") else value)


def if_(text: str) -> str:
    cond, rest = shift_word(text)
    yes, rest = shift_word(rest)
    no, _ = shift_word(rest)
    return yes if _bool_arg(cond) else no


def in_(text: str) -> str:
    word, rest = shift_word(text)
    target = unquote(word)
    while word and rest:
        w, rest = shift_word(rest)
        if unquote(w) == target:
            return "true"
    return "false"


def random_(text: str) -> str:
    """No argument: 0..2**31-1; N: 0..N-1; N1 N2: N1..N2 (unsigned 32-bit bounds)."""
    ws = words(text)
    if not ws:
        return str(random.randint(0, 2**31 - 1))
    if len(ws) > 2:
        raise ValueError("too many arguments")
    ns = [parse_int(w) for w in ws]
    if any(n is None or not 0 <= n < 2**32 for n in ns):
        raise ValueError("N1 and N2 must be integers between 0 and 4294967295")
    if len(ns) == 2:
        lo, hi = ns
        assert lo is not None and hi is not None
        if hi < lo:
            raise ValueError("bad N")
        return str(random.randint(lo, hi))
    (n,) = ns
    assert n is not None
    if n == 0:
        raise ValueError("bad N")
    return str(random.randint(0, n - 1))


def now(_: str = "") -> str:
    """The current time as Click prints a Timestamp: seconds, then nanoseconds (9 digits,
    or 6 when they are whole microseconds)."""
    ns = time.time_ns()
    sec, sub = divmod(ns, 10**9)
    return f"{sec}.{sub // 1000:06d}" if sub % 1000 == 0 else f"{sec}.{sub:09d}"


def byte_order(op: str, text: str) -> str:
    """htons htonl ntohs ntohl on a little-endian host: the operand as a C int (clamped to
    32 bits, as Click's cp_integer does), bytes swapped, printed unsigned."""
    word = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]+|[+-]?0[xX][0-9a-fA-F]+", word):
        raise ValueError("syntax error")
    v = parse_int(word)
    if v is None:  # beyond 64 bits
        v = INT64_MIN if word.startswith("-") else INT64_MAX
    v = max(-(2**31), min(2**31 - 1, v))
    if op.endswith("s"):
        return str(int.from_bytes((v & 0xFFFF).to_bytes(2, "little"), "big"))
    return str(int.from_bytes((v & 0xFFFFFFFF).to_bytes(4, "little"), "big"))


def cat(text: str) -> str:
    name = unquote(text.strip())
    if not name:
        raise ValueError("bad FILE")
    try:
        with open(name, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"{name}: {e.strerror}") from None


# ---------------------------------------------------------------------- substitution
def expand(text: str, variable: Callable[[str], str | None],
           read: Callable[[str], str | None], protect: bool = False) -> str:
    """Click's substitutions: ``$VAR``, ``${VAR}``, ``$(HANDLER ARGS)`` (nested), and the
    one-character ``$?``, ``$#``, ``$$``; nothing inside single quotes. ``variable`` and
    ``read`` give a value, or None when there is no such variable or handler: the
    reference then stays as written. ``protect``: quote what is substituted, so that
    unquoting the result gives it back unchanged (Script's print)."""
    out: list[str] = []
    i, n = 0, len(text)
    in_double = False
    while i < n:
        c = text[i]
        if c == '"':
            in_double = not in_double
            out.append(c)
            i += 1
        elif c == "'" and not in_double:
            j = text.find("'", i + 1)
            j = n if j < 0 else j + 1
            out.append(text[i:j])
            i = j
        elif c == "\\" and i + 1 < n:
            out.append(text[i:i + 2])
            i += 2
        elif c == "$" and i + 1 < n:
            start = i
            value, i = _substitute(text, i, variable, read, protect)
            if protect and value != text[start:i]:
                value = _protected(value, in_double)
            out.append(value)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _substitute(text: str, i: int, variable: Callable[[str], str | None],
                read: Callable[[str], str | None], protect: bool) -> tuple[str, int]:
    """The expansion of the ``$`` reference at ``i`` and the index after it."""
    c = text[i + 1]
    if c == "(":
        depth, j = 1, i + 2
        while j < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        if depth:
            return text[i:], len(text)
        value = read(expand(text[i + 2:j - 1], variable, read).strip())
        return (text[i:j] if value is None else value), j
    if c == "{":
        j = text.find("}", i + 2)
        if j < 0:
            return "$", i + 1
        name, end = text[i + 2:j], j + 1
    elif c in "?#$":
        name, end = c, i + 2
    else:
        j = i + 1
        while j < len(text) and (text[j].isalnum() or text[j] == "_"):
            j += 1
        if j == i + 1:
            return "$", i + 1
        name, end = text[i + 1:j], j
    value = variable(name)
    return (text[i:end] if value is None else value), end


def _protected(value: str, in_double: bool) -> str:
    """``value`` quoted so that one unquoting gives it back."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    if in_double:
        return escaped
    return f"'{value}'" if "'" not in value else f'"{escaped}"'


#: name -> function of the parameter text, for every pure Script value function.
FUNCTIONS: dict[str, Callable[[str], str]] = {
    **{op: (lambda t, op=op: arithmetic(op, t))
       for op in ("add", "sub", "min", "max", "mul", "div", "idiv")},
    **{op: (lambda t, op=op: compare(op, t)) for op in ("eq", "ne", "lt", "gt", "le", "ge")},
    **{op: (lambda t, op=op: modrem(op, t)) for op in ("mod", "rem")},
    **{op: (lambda t, op=op: negabs(op, t)) for op in ("neg", "abs")},
    **{op: (lambda t, op=op: logic(op, t)) for op in ("not", "and", "or", "nand", "nor")},
    **{op: (lambda t, op=op: byte_order(op, t)) for op in ("htons", "htonl", "ntohs", "ntohl")},
    "if": if_,
    "in": in_,
    "first": lambda t: shift_word(t)[0],
    "length": lambda t: str(len(t.encode("utf-8", "surrogateescape"))),
    "unquote": unquote,
    "random": random_,
    "cat": cat,
}


def evaluate(name: str, text: str) -> str:
    """Call value function ``name`` on ``text``; ValueError for a bad operand."""
    return FUNCTIONS[name](text)
