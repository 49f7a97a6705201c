"""Click's argument conventions, typed: split a configuration string into arguments, sort them
into positional and ``KEYWORD value`` arguments, and convert each by its declared type.

Each element declares its arguments once, as data (``ARGS = (Arg("FILENAME", Filename,
positional=True), Arg("STOP", Bool, default=False))``); parsing and type errors are reported
here, in one place, naming the argument and the value.
"""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from routebricks.engine import addresses
from routebricks.engine.argtext import quote, split_args, split_keyword, unquote
from routebricks.errors import ConfigError, shown
from routebricks.lookup.routes import int_to_ip, prefix_address


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

#: A ``$variable`` left in a value: no define gave it one (named in the type error).
_UNSET_VARIABLE = re.compile(r"\$(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")


# ---------------------------------------------------------------------- value types
class ArgType:
    """A named conversion from a configuration string to a Python value."""

    name = "value"

    def parse(self, text: str) -> Any:
        raise NotImplementedError

    def unparse(self, value: Any) -> str:
        return quote(str(value))

    def __repr__(self) -> str:
        return self.name


class _Bool(ArgType):
    name = "bool"
    TRUE = {"true", "yes", "1", "on", "t", "y"}
    FALSE = {"false", "no", "0", "off", "f", "n"}

    def parse(self, text: str) -> bool:
        t = unquote(text).lower()
        if t in self.TRUE:
            return True
        if t in self.FALSE:
            return False
        raise ValueError("expected a boolean (true or false)")

    def unparse(self, value: Any) -> str:
        return "true" if value else "false"


#: The widest integer an argument may hold: values land in numpy's 64-bit columns.
INT64_MAX = 2**63 - 1
#: Longest numeric argument text read (digits, sign, prefix, underscores): a longer one is
#: a mistake, and Python refuses to convert numbers of 4300 digits and more anyway.
MAX_NUMBER_TEXT = 64
#: The largest packet (and header offset or length) arguments may name: IPv4's limit.
MAX_PACKET = 65535
#: The most packets per batch (BURST, kp) an argument may ask for: ~100 MB of 64-byte
#: packets, beyond any useful batch.
MAX_BURST = 1 << 20


class _Int(ArgType):
    """An integer, decimal or ``0x``/``0o``/``0b``, between ``minimum`` and ``maximum``
    (by default the 64-bit range)."""

    def __init__(
        self, name: str = "integer", minimum: int | None = -(2**63), maximum: int | None = INT64_MAX
    ) -> None:
        self.name = name
        self.minimum = -(2**63) if minimum is None else minimum
        self.maximum = INT64_MAX if maximum is None else maximum

    def parse(self, text: str) -> int:
        t = unquote(text).replace("_", "")
        if len(t) > MAX_NUMBER_TEXT:
            raise ValueError(f"expected {self.expected()}, not a {len(t)}-character number")
        try:
            v = int(t, 0)
        except ValueError:
            raise ValueError(f"expected {self.expected()}") from None
        if not self.minimum <= v <= self.maximum:
            raise ValueError(f"expected {self.expected(too_large=v > self.maximum)}")
        return v

    def expected(self, too_large: bool = False) -> str:
        """The name with the range, unless the name says it (``color from 0 to 255``, or
        ``non-negative integer`` for a negative value)."""
        if " from " in self.name:
            return self.name
        if self.maximum == INT64_MAX and self.minimum in (-(2**63), 0, 1):
            return f"{self.name} (at most {self.maximum})" if too_large else self.name
        return f"{self.name} from {self.minimum} to {self.maximum}"

    def unparse(self, value: Any) -> str:
        return str(int(value))


class _Double(ArgType):
    """A finite real number from ``minimum`` to ``maximum``."""

    def __init__(self, name: str = "real number", minimum: float = -math.inf,
                 maximum: float = math.inf) -> None:
        self.name = name
        self.minimum = minimum
        self.maximum = maximum

    def parse(self, text: str) -> float:
        t = unquote(text)
        if len(t) > MAX_NUMBER_TEXT:
            raise ValueError(f"expected {self.name}, not a {len(t)}-character number")
        try:
            v = float(t)
        except ValueError:
            raise ValueError(f"expected {self.name}") from None
        if not math.isfinite(v):
            raise ValueError(f"expected a finite {self.name}")
        if not self.minimum <= v <= self.maximum:
            raise ValueError(f"expected {self.name} from {self.minimum:g} to {self.maximum:g}")
        return v

    def unparse(self, value: Any) -> str:
        return repr(float(value))


_TIME_UNITS = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "ms": 1e-3,
    "msec": 1e-3,
    "us": 1e-6,
    "usec": 1e-6,
    "ns": 1e-9,
    "nsec": 1e-9,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
}


#: The longest time an argument may give (about 31 years): longer ones are mistakes, and
#: timers and token buckets compute with them.
MAX_SECONDS = 1e9


class _Seconds(ArgType):
    name = "time (e.g. 1.5s, 10ms)"

    def parse(self, text: str) -> float:
        t = unquote(text)
        m = (re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]*)\s*", t)
             if len(t) <= MAX_NUMBER_TEXT else None)
        if not m or m.group(2) not in _TIME_UNITS:
            raise ValueError("expected a time such as 2, 1.5s, 100ms or 20us")
        v = float(m.group(1)) * _TIME_UNITS[m.group(2)]
        if not v <= MAX_SECONDS:  # also catches inf (1e400)
            raise ValueError(f"expected a time of at most {MAX_SECONDS:g} seconds")
        return v

    def unparse(self, value: Any) -> str:
        return f"{float(value)!r}s"


_RATE_UNITS = {
    "bps": 1,
    "kbps": 1e3,
    "mbps": 1e6,
    "gbps": 1e9,
    "tbps": 1e12,
    "bps8": 8,
    "kbps8": 8e3,
    "mbps8": 8e6,
    "gbps8": 8e9,
}


#: The largest bandwidth an argument may give, in bytes per second (8 Tbps).
MAX_BANDWIDTH = 1e12


class _Bandwidth(ArgType):
    """A rate, in bytes per second as Click stores it: ``10Gbps`` and ``500Mbps`` (bits),
    ``1.5GBps`` (bytes), ``b/s``, ``B/s``, ``baud``; a bare number is bytes per second."""

    name = "bandwidth (e.g. 10Gbps)"

    def parse(self, text: str) -> float:
        t = unquote(text)
        m = (re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kKMGT]?)"
                          r"(bps|b/s|baud|Bps|B/s)?\s*", t)
             if len(t) <= MAX_NUMBER_TEXT else None)
        if not m:
            raise ValueError("expected a bandwidth such as 10Gbps, 500Mbps or 1GBps")
        scale = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[m.group(2)]
        unit = m.group(3) or "Bps"
        value = float(m.group(1)) * scale
        value = value / 8 if unit in ("bps", "b/s", "baud") else value
        if not value <= MAX_BANDWIDTH:  # also catches inf (1e400)
            raise ValueError(f"expected a bandwidth of at most {MAX_BANDWIDTH * 8:g} bits/s")
        return value

    def unparse(self, value: Any) -> str:
        return f"{float(value) * 8:g}bps"


class _String(ArgType):
    name = "string"

    def parse(self, text: str) -> str:
        return unquote(text)


class _Word(ArgType):
    name = "word"

    def parse(self, text: str) -> str:
        t = unquote(text)
        if not t or any(c.isspace() for c in t):
            raise ValueError("expected a single word")
        return t

    def unparse(self, value: Any) -> str:
        return str(value)


class _Raw(ArgType):
    """The argument text exactly as written (for elements that parse it themselves)."""

    name = "text"

    def parse(self, text: str) -> str:
        return text

    def unparse(self, value: Any) -> str:
        return str(value)


class _IPAddress(ArgType):
    name = "IPv4 address"

    def parse(self, text: str) -> int:
        try:
            return int(ipaddress.IPv4Address(unquote(text)))
        except ValueError:
            named = addresses.lookup(unquote(text), "ip")
            if isinstance(named, int):
                return named
            raise ValueError("expected an IPv4 address such as 10.0.0.1 (or an AddressInfo "
                             "name)") from None

    def unparse(self, value: Any) -> str:
        return str(ipaddress.IPv4Address(int(value)))


class _IPPrefix(ArgType):
    """``10.0.0.0/8`` or ``10.0.0.0 255.0.0.0`` → (network as int, prefix length)."""

    name = "IPv4 prefix"

    def parse(self, text: str) -> tuple[int, int]:
        t = " ".join(unquote(text).split())
        if " " in t:
            t = t.replace(" ", "/")
        addr, slash, length = t.partition("/")
        if slash and length.isdecimal() and int(length) <= 32:
            with contextlib.suppress(ValueError):  # Click's 18.26/16
                t = f"{int_to_ip(prefix_address(addr, int(length)))}/{length}"
        try:
            net = ipaddress.IPv4Network(t, strict=False)
        except ValueError:
            named = addresses.lookup(t, "ipnet")
            if isinstance(named, tuple):
                return named
            raise ValueError("expected an IPv4 prefix such as 10.0.0.0/8 (or 10.0/16, or an "
                             "AddressInfo name)") from None
        return int(net.network_address), net.prefixlen

    def unparse(self, value: Any) -> str:
        return f"{ipaddress.IPv4Address(value[0])}/{value[1]}"


class _EtherAddress(ArgType):
    name = "Ethernet address"

    def parse(self, text: str) -> bytes:
        t = unquote(text)
        parts = re.split(r"[:\-]", t)
        if len(parts) == 6 and all(re.fullmatch(r"[0-9a-fA-F]{1,2}", p) for p in parts):
            return bytes(int(p, 16) for p in parts)
        if re.fullmatch(r"[0-9a-fA-F]{12}", t):
            return bytes.fromhex(t)
        named = addresses.lookup(t, "eth")
        if isinstance(named, bytes):
            return named
        raise ValueError("expected an Ethernet address such as 00:11:22:33:44:55 (or an "
                         "AddressInfo name)")

    def unparse(self, value: Any) -> str:
        return ":".join(f"{b:02x}" for b in value)


class _Bytes(ArgType):
    """Binary data: ``0x0011aabb``, Click's ``\\<00 11 aa>`` or a quoted string."""

    name = "bytes"

    def parse(self, text: str) -> bytes:
        t = text.strip()
        if t.lower().startswith("0x"):
            try:
                return bytes.fromhex(t[2:].replace("_", ""))
            except ValueError:
                raise ValueError("expected hex bytes such as 0x00112233") from None
        if t.startswith("\\<") and t.endswith(">"):
            try:
                return bytes.fromhex(t[2:-1].replace(" ", ""))
            except ValueError:
                raise ValueError("expected hex bytes such as \\<00 11 22>") from None
        return unquote(t).encode("latin-1")

    def unparse(self, value: Any) -> str:
        return "0x" + bytes(value).hex()


Bool = _Bool()
Int = _Int()
UInt = _Int("non-negative integer", minimum=0)
PosInt = _Int("positive integer", minimum=1)
Double = _Double()
#: A length or offset in a packet, in bytes.
PacketLength = _Int("byte count", minimum=0, maximum=MAX_PACKET)
#: Packets per batch.
Burst = _Int("packet count", minimum=1, maximum=MAX_BURST)
Seconds = _Seconds()
Bandwidth = _Bandwidth()
String = _String()
Filename = _String()
Word = _Word()
Raw = _Raw()
IPAddress = _IPAddress()
IPPrefix = _IPPrefix()
EtherAddress = _EtherAddress()
Bytes = _Bytes()


def IntRange(lo: int, hi: int, name: str | None = None) -> _Int:  # noqa: N802 - a type
    return _Int(name or "integer", lo, hi)


def DoubleRange(lo: float, hi: float, name: str | None = None) -> _Double:  # noqa: N802
    """A finite real number from ``lo`` to ``hi``."""
    return _Double(name or "real number", lo, hi)


class Choice(ArgType):
    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.name = "one of " + ", ".join(choices)

    def parse(self, text: str) -> str:
        t = unquote(text)
        for c in self.choices:
            if t.lower() == c.lower():
                return c
        raise ValueError(f"expected {self.name}")

    def unparse(self, value: Any) -> str:
        return str(value)


# ---------------------------------------------------------------------- declarations
@dataclass
class Arg:
    """One declared argument of an element.

    ``name`` is its keyword (upper case); ``positional`` arguments may also be given by
    position, in declaration order. Values land on the element as ``attr`` (default: the
    lower-cased name).
    """

    name: str
    type: ArgType = field(default_factory=lambda: Raw)
    default: Any = None
    positional: bool = False
    required: bool = False
    help: str = ""
    attr: str | None = None

    @property
    def attribute(self) -> str:
        return self.attr or self.name.lower()


@dataclass
class ParsedArgs:
    values: dict[str, Any]  # attribute name -> value
    rest: list[str]  # extra positional arguments (for elements with REST)
    given: set[str]  # keywords given explicitly


def parse_args(
    config: str,
    specs: Sequence[Arg],
    *,
    rest: bool = False,
    where: Callable[[str, str | None], ConfigError] | None = None,
) -> ParsedArgs:
    """Parse ``config`` against ``specs`` (Click's ``cp_va_kparse``).

    Positional arguments fill the positional specs in order; ``KEYWORD value`` arguments fill
    any spec by name. With ``rest`` true, surplus positional arguments are returned instead of
    rejected. ``where(message, hint)`` builds the error (so it can carry a position).
    """

    def fail(msg: str, hint: str | None = None) -> ConfigError:
        return where(msg, hint) if where else ConfigError(msg, hint=hint)

    by_name = {s.name: s for s in specs}
    positional = [s for s in specs if s.positional]
    values: dict[str, Any] = {}
    given: set[str] = set()
    extra: list[str] = []
    pos_i = 0
    args = split_args(config)
    # Only an argument that starts with a capital can be "KEYWORD value". Runs of other
    # arguments that can only be surplus (REST) are taken in one slice: a route table
    # has 270K of them.
    caps = [k for k, a in enumerate(args) if "A" <= a[:1] <= "Z"]
    caps.append(len(args))
    next_cap = 0
    i = 0
    while i < len(args):
        if caps[next_cap] < i:
            next_cap += 1
            continue
        if rest and i < caps[next_cap] and (extra or pos_i >= len(positional)):
            extra.extend(args[i : caps[next_cap]])
            i = caps[next_cap]
            continue
        arg = args[i]
        i += 1
        kw = split_keyword(arg) if "A" <= arg[:1] <= "Z" else None
        if kw and kw[0] in by_name:
            spec = by_name[kw[0]]
            if spec.name in given:
                raise fail(f"argument {spec.name} given twice")
            values[spec.attribute] = _convert(spec, kw[1], fail)
            given.add(spec.name)
            continue
        # As in Click: an optional positional never takes a keyword-looking argument
        # ("FOO 3"), so a misspelt keyword is reported instead of parsed as a value.
        keyword_like = kw is not None and bool(kw[1])
        if (pos_i < len(positional) and not extra
                and not (keyword_like and not positional[pos_i].required)):
            spec = positional[pos_i]
            pos_i += 1
            if spec.name in given:
                raise fail(f"argument {spec.name} given twice (by position and by keyword)")
            hint = None
            if kw and kw[1]:
                close = difflib.get_close_matches(kw[0], list(by_name), n=1)
                hint = f"{kw[0]} is not a keyword here" + (
                    f"; did you mean {close[0]}?"
                    if close
                    else f"; keywords: {', '.join(by_name)}"
                    if by_name
                    else ""
                )
            values[spec.attribute] = _convert(spec, arg, fail, hint)
            given.add(spec.name)
            continue
        if rest:
            extra.append(arg)
            continue
        if kw:
            close = difflib.get_close_matches(kw[0], list(by_name), n=1)
            hint = (
                f"did you mean {close[0]}?"
                if close
                else (
                    "keywords: " + ", ".join(by_name)
                    if by_name
                    else "this element takes no arguments"
                )
            )
            raise fail(f"unknown keyword {kw[0]!r}", hint)
        raise fail(
            f"too many arguments: {arg!r}",
            f"takes {len(positional)} positional argument(s)"
            + (f" ({', '.join(s.name for s in positional)})" if positional else "")
            + (f"; keywords: {', '.join(by_name)}" if by_name else ""),
        )
    for spec in specs:
        if spec.attribute in values:
            continue
        if spec.required:
            raise fail(
                f"missing required argument {spec.name}",
                f"give it {'by position or ' if spec.positional else ''}as "
                f"'{spec.name} <{spec.type.name}>'",
            )
        values[spec.attribute] = spec.default
    return ParsedArgs(values, extra, given)


def _convert(
    spec: Arg, text: str, fail: Callable[..., ConfigError], hint: str | None = None
) -> Any:
    if not text.strip() and spec.type is not Raw and spec.type is not String:
        raise fail(f"argument {spec.name} has no value", f"expected {spec.type.name}")
    try:
        return spec.type.parse(text)
    except ValueError as e:
        var = _UNSET_VARIABLE.search(text)
        if var and hint is None:
            hint = (f"{var.group()} is not defined: define({var.group()} value), or "
                    f"{var.group().lstrip('$').strip('{}')}=value on the command line")
        raise fail(f"bad value {shown(text)} for {spec.name}: {e}", hint) from None


def unparse_value(value: Any) -> str:
    """The configuration form of a Python value given through the Python API."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value)
