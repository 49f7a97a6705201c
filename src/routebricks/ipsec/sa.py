"""IPsec security associations (SAs), their text file format and the SA table.

A :class:`SecurityAssociation` holds what RFC 4303 tunnel mode needs for one direction of one
tunnel: the SPI, the algorithm and its keys, the outer (tunnel) addresses, the outbound sequence
number counter and the inbound 64-packet anti-replay window, and optional traffic selectors.

Algorithms
----------
``aes128gcm``
    AES-128-GCM with a 16-byte ICV (RFC 4106). Key material is 20 bytes: the 16-byte AES key
    followed by the 4-byte salt (RFC 4106 §8.1, as Linux ``rfc4106(gcm(aes))`` and scapy take
    it). The 8-byte explicit IV is ``iv_prefix (32 bits) || sequence number (32 bits)``: the
    sequence number never repeats within an SA (it refuses to wrap), so neither does the nonce;
    RFC 4106 §3.1 allows the IV to be derived from the sequence number. ``iv_prefix`` is drawn at
    random when the SA object is created, so that an SA reloaded with the same key and its
    counter reset to 0 (a configuration mistake: rekey instead) is still unlikely to repeat a
    nonce.
``aes128cbc-sha1``
    AES-128-CBC (RFC 3602, random 16-byte IV per packet from ``os.urandom``) with
    HMAC-SHA1-96 (RFC 2404, 20-byte key, 12-byte ICV).

SA file format
--------------
One SA per line, ``name=value`` fields separated by blanks, in any order; ``#`` starts a
comment (whole line or after the fields); blank lines are ignored::

    # to the peer, for traffic to 10.1/16 and 10.2/24 (no dir=: usable both ways)
    spi=0x1001 alg=aes128gcm key=0x... src=192.0.2.1 dst=192.0.2.2 selector=10.1.0.0/16,10.2.0.0/24
    spi=0x2001 alg=aes128cbc-sha1 key=0x... authkey=0x... src=192.0.2.2 dst=192.0.2.1  # 2nd tunnel

=========  ========  =========================================================================
field      required  value
=========  ========  =========================================================================
spi        yes       256..0xffffffff, decimal or ``0x`` hex (1..255 are reserved, RFC 4303 §2.1)
alg        yes       ``aes128gcm`` or ``aes128cbc-sha1``
key        yes       ``0x`` + hex: 20 bytes (key || salt) for GCM, 16 bytes for CBC
authkey    CBC only  ``0x`` + 40 hex digits: the HMAC-SHA1 key
src, dst   yes       outer (tunnel) IPv4 addresses, dotted quad
dir        no        ``in`` or ``out``; omitted: the SA may be used both ways
selector   no        comma-separated inner destination prefixes ``a.b.c.d/len`` that this SA
                     carries (outbound SA selection: the first SA in file order whose
                     selector matches wins; an SA without selectors matches nothing)
=========  ========  =========================================================================

Errors name the file, line and column (:class:`SAFileError`). Key values never appear in any
message, ``repr``, ``str`` or :meth:`SecurityAssociation.redacted` output: they are shown as
``<redacted>``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from routebricks.errors import ConfigError, Position, shown
from routebricks.ipsec import kernels as _k
from routebricks.textfile import NotUTF8Error, read_text

#: Algorithm names (the ``alg=`` values of the SA file).
ALG_GCM = "aes128gcm"
ALG_CBC = "aes128cbc-sha1"
ALGORITHMS = (ALG_GCM, ALG_CBC)

#: Anti-replay window size in packets (RFC 4303 §3.4.3 default; one 64-bit bitmap).
REPLAY_WINDOW = 64
#: Largest sequence number of an SA without extended sequence numbers; never wraps.
SEQ_MAX = 0xFFFFFFFF


class AlgParams:
    """Fixed sizes of one ESP transform (bytes)."""

    __slots__ = ("name", "key_len", "auth_key_len", "iv_len", "icv_len", "align")

    def __init__(self, name: str, key_len: int, auth_key_len: int, iv_len: int, icv_len: int,
                 align: int) -> None:
        self.name = name
        self.key_len = key_len  # encryption key material (GCM: key + salt)
        self.auth_key_len = auth_key_len  # 0: combined-mode (AEAD) transform
        self.iv_len = iv_len
        self.icv_len = icv_len
        self.align = align  # payload+trailer length is a multiple of this


PARAMS: dict[str, AlgParams] = {
    # GCM is a stream mode: RFC 4303 only asks for 4-byte alignment of the trailer.
    ALG_GCM: AlgParams(ALG_GCM, key_len=20, auth_key_len=0, iv_len=8, icv_len=16, align=4),
    ALG_CBC: AlgParams(ALG_CBC, key_len=16, auth_key_len=20, iv_len=16, icv_len=12, align=16),
}


class SAFileError(ConfigError):
    """A bad line in an SA file: the message names file, line and column, never a key."""


def ip_to_int(addr: str | int) -> int:
    """An IPv4 address (dotted quad or int) as an int; ValueError if it is not one."""
    if isinstance(addr, int):
        if not 0 <= addr <= 0xFFFFFFFF:
            raise ValueError(f"IPv4 address out of range: {addr}")
        return addr
    return int(ipaddress.IPv4Address(addr))


def int_to_ip(addr: int) -> str:
    return str(ipaddress.IPv4Address(addr))


def _parse_selectors(sel: Iterable[str | tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out = []
    for s in sel:
        if isinstance(s, tuple):
            net, plen = s
        else:
            n = ipaddress.IPv4Network(s, strict=True)
            net, plen = int(n.network_address), n.prefixlen
        if not 0 <= plen <= 32:
            raise ValueError(f"bad prefix length {plen}")
        out.append((int(net), int(plen)))
    return tuple(out)


class SecurityAssociation:
    """One IPsec ESP tunnel-mode SA: identity, keys, and per-direction state.

    Outbound state is the sequence counter ``seq`` (last number used; the next packet gets
    ``seq + 1``) and the outer IP ID counter ``ip_id``. Inbound state is the anti-replay window
    (``replay_top``: highest authenticated sequence number; ``replay_bitmap``: bit ``k`` set
    when ``replay_top - k`` was received). ``counters`` accumulates packet/byte counts and drops
    by reason (keys ``"encap packets"``, ``"encap bytes"``, ``"decap packets"``, ``"decap
    bytes"`` and the drop reasons of :mod:`.esp`). One object may serve both directions
    (tests); routers use one SA per direction. An SA's state is not locked: one worker owns it.

    Keys are held privately and never shown: ``repr``/``str`` give :meth:`redacted`.
    """

    __slots__ = (
        "spi", "alg", "params", "src", "dst", "direction", "selectors", "iv_prefix", "seq",
        "ip_id", "window", "counters", "_key", "_auth_key", "_ctx",
    )

    def __init__(
        self,
        spi: int,
        alg: str,
        key: bytes,
        src: str | int,
        dst: str | int,
        *,
        auth_key: bytes | None = None,
        direction: str | None = None,
        selectors: Iterable[str | tuple[int, int]] = (),
        iv_prefix: int | None = None,
        seq: int = 0,
    ) -> None:
        if alg not in PARAMS:
            raise ValueError(f"unknown algorithm {alg!r} (known: {', '.join(ALGORITHMS)})")
        p = PARAMS[alg]
        if not 0 < spi <= 0xFFFFFFFF:
            raise ValueError(f"SPI {spi:#x} out of range 1..0xffffffff")
        key = bytes(key)
        if len(key) != p.key_len:
            raise ValueError(f"{alg} needs a {p.key_len}-byte key, got {len(key)} bytes")
        if p.auth_key_len:
            if auth_key is None or len(auth_key) != p.auth_key_len:
                got = "none" if auth_key is None else f"{len(auth_key)} bytes"
                raise ValueError(f"{alg} needs a {p.auth_key_len}-byte auth key, got {got}")
            auth_key = bytes(auth_key)
        elif auth_key is not None:
            raise ValueError(f"{alg} is a combined-mode transform and takes no auth key")
        if direction not in (None, "in", "out"):
            raise ValueError(f"direction must be 'in', 'out' or None, not {direction!r}")
        if not 0 <= seq <= SEQ_MAX:
            raise ValueError(f"sequence number {seq} out of range")
        self.spi = int(spi)
        self.alg = alg
        self.params = p
        self.src = ip_to_int(src)
        self.dst = ip_to_int(dst)
        self.direction = direction
        self.selectors = _parse_selectors(selectors)
        self.iv_prefix = (int.from_bytes(os.urandom(4), "big") if iv_prefix is None
                          else int(iv_prefix) & 0xFFFFFFFF)
        self.seq = int(seq)
        self.ip_id = 0
        # [top, bitmap] as int64 so the numba kernels update it in place.
        self.window = np.zeros(2, np.int64)
        self.counters: Counter[str] = Counter()
        self._key = key
        self._auth_key = auth_key
        self._ctx: Any = None  # per-SA crypto context, built on first use (see crypto.py)

    # ------------------------------------------------------------------ display (no keys)
    def redacted(self) -> str:
        """A one-line description with every key replaced by ``<redacted>``."""
        parts = [f"spi={self.spi:#x}", f"alg={self.alg}", "key=<redacted>"]
        if self._auth_key is not None:
            parts.append("authkey=<redacted>")
        parts += [f"src={int_to_ip(self.src)}", f"dst={int_to_ip(self.dst)}"]
        if self.direction:
            parts.append(f"dir={self.direction}")
        if self.selectors:
            parts.append("selector=" + ",".join(f"{int_to_ip(n)}/{p}" for n, p in self.selectors))
        parts.append(f"seq={self.seq}")
        parts.append(f"replay_top={self.replay_top}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"<SecurityAssociation {self.redacted()}>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Pickling would carry keys into places (queues, caches, logs of them) we do not audit.
        raise TypeError("SecurityAssociation objects are not picklable (they hold keys)")

    def format_line(self, *, include_keys: bool) -> str:
        """This SA as an SA-file line; keys appear only with ``include_keys=True``."""
        if not include_keys:
            return self.redacted()
        parts = [f"spi={self.spi:#x}", f"alg={self.alg}", f"key=0x{self._key.hex()}"]
        if self._auth_key is not None:
            parts.append(f"authkey=0x{self._auth_key.hex()}")
        parts += [f"src={int_to_ip(self.src)}", f"dst={int_to_ip(self.dst)}"]
        if self.direction:
            parts.append(f"dir={self.direction}")
        if self.selectors:
            parts.append("selector=" + ",".join(f"{int_to_ip(n)}/{p}" for n, p in self.selectors))
        return " ".join(parts)

    # ------------------------------------------------------------------ state
    @property
    def replay_top(self) -> int:
        return int(self.window[0])

    @property
    def replay_bitmap(self) -> int:
        return int(self.window[1]) & 0xFFFFFFFFFFFFFFFF

    @property
    def seq_remaining(self) -> int:
        """Outbound packets this SA can still send before it must be replaced."""
        return SEQ_MAX - self.seq

    def copy(self) -> SecurityAssociation:
        """An independent SA with the same keys, IV prefix and current state."""
        c = SecurityAssociation(
            self.spi, self.alg, self._key, self.src, self.dst, auth_key=self._auth_key,
            direction=self.direction, selectors=self.selectors, iv_prefix=self.iv_prefix,
            seq=self.seq,
        )
        c.ip_id = self.ip_id
        c.window[:] = self.window
        return c

    @property
    def ctx(self) -> Any:
        """The SA's crypto context (cipher objects, GHASH table), built once."""
        if self._ctx is None:
            from routebricks.ipsec.crypto import make_context

            self._ctx = make_context(self.alg, self._key, self._auth_key)
        return self._ctx

    # ------------------------------------------------------------------ anti-replay window
    def replay_check(self, seqs: np.ndarray) -> np.ndarray:
        """Step 1 of inbound replay protection: per-packet codes against the current window
        (``kernels.REPLAY_OK``/``REPLAY_DUP``/``REPLAY_OLD``); the window is not changed."""
        seqs = np.ascontiguousarray(seqs, np.int64)
        codes = np.empty(seqs.shape[0], np.int8)
        _k.replay_check(seqs, self.window, codes)
        return codes

    def replay_update(self, seqs: np.ndarray, codes: np.ndarray, icv_ok: np.ndarray) -> np.ndarray:
        """Step 3: walk the packets in order, marking received those whose ICV verified and that
        are still new given earlier packets of the batch; returns final codes (``REPLAY_OK``,
        ``REPLAY_DUP``, ``REPLAY_OLD`` or ``REPLAY_BAD_ICV``). Equivalent to checking,
        verifying and updating one packet at a time."""
        seqs = np.ascontiguousarray(seqs, np.int64)
        out = np.ascontiguousarray(codes, np.int8).copy()
        _k.replay_update(seqs, np.ascontiguousarray(icv_ok, np.bool_), out, self.window)
        return out

    # ------------------------------------------------------------------ selectors
    def matches(self, dst: np.ndarray) -> np.ndarray:
        """Boolean mask: inner destination addresses covered by this SA's selectors."""
        d = np.asarray(dst, np.uint32)
        m = np.zeros(d.shape, bool)
        for net, plen in self.selectors:
            mask = np.uint32((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF)
            m |= (d & mask) == np.uint32(net)
        return m


class SATable:
    """The SAs of a router: inbound ones by SPI, outbound ones in selection order."""

    def __init__(self, sas: Iterable[SecurityAssociation] = ()) -> None:
        self.inbound: dict[int, SecurityAssociation] = {}
        self.outbound: list[SecurityAssociation] = []
        for sa in sas:
            self.add(sa)

    def add(self, sa: SecurityAssociation) -> None:
        if sa.direction in (None, "in"):
            if sa.spi in self.inbound:
                raise ValueError(f"duplicate inbound SPI {sa.spi:#x}")
            self.inbound[sa.spi] = sa
        if sa.direction in (None, "out"):
            self.outbound.append(sa)

    def __iter__(self) -> Iterator[SecurityAssociation]:
        seen: set[int] = set()
        for sa in [*self.outbound, *self.inbound.values()]:
            if id(sa) not in seen:
                seen.add(id(sa))
                yield sa

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def get(self, spi: int) -> SecurityAssociation | None:
        """The inbound SA with this SPI, or None."""
        return self.inbound.get(spi)

    def select(self, dst: np.ndarray) -> np.ndarray:
        """Per inner destination address, the index into ``outbound`` of the first SA whose
        selectors match, or -1 (RFC 4301 SPD order: first match wins)."""
        d = np.asarray(dst, np.uint32)
        res = np.full(d.shape, -1, np.int64)
        for i, sa in enumerate(self.outbound):
            free = res < 0
            if not free.any():
                break
            res[free & sa.matches(d)] = i
        return res

    def __repr__(self) -> str:
        return f"<SATable inbound={len(self.inbound)} outbound={len(self.outbound)}>"

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SATable:
        return cls(load_sa_file(path))


# ---------------------------------------------------------------------- SA file parsing
_FIELDS = ("spi", "alg", "key", "authkey", "src", "dst", "dir", "selector")
_SECRET = frozenset({"key", "authkey"})
_REQUIRED = ("spi", "alg", "key", "src", "dst")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,15}")
_HEX_RE = re.compile(r"0[xX]((?:[0-9a-fA-F]{2})+)")
_INT_RE = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")


def parse_sa_line(line: str, file: str = "<string>", lineno: int = 1) -> SecurityAssociation | None:
    """Parse one SA-file line; None for blank and comment lines; SAFileError if bad."""

    def fail(msg: str, col: int, hint: str | None = None) -> SAFileError:
        return SAFileError(msg, Position(file, lineno, col), hint=hint)

    body = line.split("#", 1)[0]
    fields: dict[str, tuple[str, int]] = {}
    for m in re.finditer(r"\S+", body):
        tok, col = m.group(), m.start() + 1
        name, eq, value = tok.partition("=")
        if not eq or not _NAME_RE.fullmatch(name):
            # Do not echo the token: it may be a pasted key.
            raise fail("expected name=value", col, hint=f"fields are {', '.join(_FIELDS)}")
        name = name.lower()
        if name not in _FIELDS:
            raise fail(f"unknown field {name!r}", col, hint=f"fields are {', '.join(_FIELDS)}")
        if name in fields:
            raise fail(f"field {name!r} given twice", col)
        fields[name] = (value, col)
    if not fields:
        return None
    missing = [f for f in _REQUIRED if f not in fields]
    if missing:
        raise fail(f"missing field(s): {', '.join(missing)}", 1)

    def value(name: str) -> tuple[str, int]:
        return fields[name]

    v, c = value("spi")
    if not _INT_RE.fullmatch(v):
        raise fail(f"bad spi {shown(v)}", c, hint="decimal or 0x-prefixed hex")
    # Longer than any 32-bit number: out of range without converting (int() refuses
    # numbers of 4300 digits and more).
    spi = -1 if len(v.lstrip("0xX") or "0") > 10 else int(v, 16 if v[:2] in ("0x", "0X") else 10)
    if not 256 <= spi <= 0xFFFFFFFF:
        raise fail(f"spi {shown(v)} out of range", c,
                   hint="256..0xffffffff (1..255 are reserved)")
    alg, c = value("alg")
    alg = alg.lower()
    if alg not in PARAMS:
        raise fail(f"unknown alg {shown(alg)}", c, hint=f"one of {', '.join(ALGORITHMS)}")
    p = PARAMS[alg]

    def hexkey(name: str, want: int) -> bytes:
        v, c = value(name)
        m = _HEX_RE.fullmatch(v)
        if m is None:
            raise fail(f"{name} must be 0x followed by an even number of hex digits", c)
        b = bytes.fromhex(m.group(1))
        if len(b) != want:
            raise fail(f"{name} is {len(b)} bytes, {alg} needs {want}", c)
        return b

    key = hexkey("key", p.key_len)
    auth_key = None
    if p.auth_key_len:
        if "authkey" not in fields:
            raise fail(f"{alg} needs authkey=0x... ({p.auth_key_len} bytes)", 1)
        auth_key = hexkey("authkey", p.auth_key_len)
    elif "authkey" in fields:
        raise fail(f"{alg} takes no authkey (the ICV comes from GCM)", fields["authkey"][1])
    addrs = []
    for name in ("src", "dst"):
        v, c = value(name)
        try:
            addrs.append(int(ipaddress.IPv4Address(v)))
        except ValueError:
            raise fail(f"bad {name} address {shown(v)}", c, hint="an IPv4 dotted quad") from None
    direction = None
    if "dir" in fields:
        v, c = value("dir")
        if v not in ("in", "out"):
            raise fail(f"bad dir {shown(v)}", c, hint="in or out")
        direction = v
    selectors: list[tuple[int, int]] = []
    if "selector" in fields:
        v, c = value("selector")
        for part in v.split(","):
            try:
                n = ipaddress.IPv4Network(part, strict=True)
            except ValueError as e:
                raise fail(f"bad selector {shown(part)}: {shown(str(e), 80)}", c,
                           hint="a.b.c.d/len") from None
            selectors.append((int(n.network_address), n.prefixlen))
    return SecurityAssociation(spi, alg, key, addrs[0], addrs[1], auth_key=auth_key,
                               direction=direction, selectors=selectors)


def parse_sa_text(text: str, file: str = "<string>") -> list[SecurityAssociation]:
    """Parse a whole SA file's text; checks that inbound SPIs are unique."""
    sas: list[SecurityAssociation] = []
    inbound: dict[int, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        sa = parse_sa_line(line, file, lineno)
        if sa is None:
            continue
        if sa.direction in (None, "in"):
            if sa.spi in inbound:
                raise SAFileError(
                    f"spi {sa.spi:#x} already used by the inbound SA on line {inbound[sa.spi]}",
                    Position(file, lineno, 1),
                )
            inbound[sa.spi] = lineno
        sas.append(sa)
    return sas


def load_sa_file(path: str | os.PathLike[str]) -> list[SecurityAssociation]:
    """Read an SA file (see the module docstring for the format)."""
    p = Path(path)
    try:
        text = read_text(str(p))
    except OSError as e:
        raise SAFileError(f"cannot read SA file: {e.strerror}", Position(str(p), 0, 0)) from None
    except NotUTF8Error as e:
        # No source line: SA files hold keys, and errors never quote them.
        raise SAFileError(f"byte 0x{e.byte:02x} is not UTF-8 text",
                          Position(str(p), e.line, e.column),
                          hint="an SA file is UTF-8 text: is this the right file?") from None
    return parse_sa_text(text, str(p))


def format_sa_file(sas: Sequence[SecurityAssociation], *, include_keys: bool) -> str:
    """SA-file text for ``sas`` (round-trips through :func:`parse_sa_text` with keys)."""
    return "".join(sa.format_line(include_keys=include_keys) + "\n" for sa in sas)
