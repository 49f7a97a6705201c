"""Vectorized synthesis of Ethernet/IPv4/UDP test frames carrying a measurement probe.

Frame size convention
    A frame's *size* is counted as on the wire **including the 4-byte FCS**, as traffic
    generators and RFC 2544 count it: a "64-byte frame" is 60 bytes built here (and handed to
    the NIC, which appends the FCS) plus 4 FCS bytes. Every size, rate in bits per second and
    byte counter in the traffic layer uses this convention (``frame_bytes``); the preamble, SFD
    and inter-frame gap (20 more bytes per frame on an Ethernet link) are never counted.
    Sizes run from 64 (the minimum, which just fits the headers and the probe) up to what the
    interface MTU allows (1518 for MTU 1500).

Layout of every frame (offsets from the frame start, all fields in network byte order)::

     0  Ethernet: dst MAC, src MAC, type 0x0800
    14  IPv4 (20 bytes, no options): TOS, total length, id = frame index & 0xFFFF, no
        fragmentation flags, TTL, protocol 17, header checksum (valid), src, dst
    34  UDP: source port, destination port, length, checksum 0 ("not computed", allowed
        for UDP over IPv4, RFC 768)
    42  probe header (PROBE_LEN = 18 bytes):
          +0  magic     u16  PROBE_MAGIC (0x5242, "RB")
          +2  flow id   u32  index of the flow (5-tuple) in the flow table, 0..flows-1
          +6  sequence  u32  per-flow sequence number, counting from 0 (wraps at 2**32)
          +10 send time u64  time.time_ns() (CLOCK_REALTIME, ns) written just before sending
    60  payload padding (zeros) up to the frame size minus FCS

    The probe carries every field at the width asked for (u32 flow, u32 sequence, u64 time),
    which with a 2-byte magic makes 18 bytes; 42 + 18 = 60 bytes is exactly a 64-byte frame.

Flows
    Flow *i* (0 <= i < flows) is a fixed UDP 5-tuple: source address ``src[i % len(src)]``
    (or drawn from the source prefixes), destination address as below, source port
    ``sport + i % (65536 - sport)`` and destination port ``dport + i // (65536 - sport)``,
    so the N 5-tuples are always distinct. Frames visit flows in order (``order="cycle"``:
    frame *k* belongs to flow ``k % flows``) or in a seeded random order (``order="random"``:
    a shuffled round robin -- each run of ``flows`` frames starting at a multiple of
    ``flows`` visits every flow once, in its own random order -- so every flow gets the
    same share of frames, but no two flows keep a fixed distance).

Destinations (:class:`AddressSpec`)
    one address; a list (flow *i* gets element ``i % len``); random within one or more
    prefixes (a prefix is chosen uniformly, then an address uniformly inside it, so each
    prefix -- each route -- gets its share); ``random`` over the whole IPv4 space; or
    ``random-unicast`` (1.0.0.0-126.255.255.255 and 128.0.0.0-223.255.255.255). By
    default a flow keeps one destination; ``dst_per_packet=True`` draws one per frame instead
    (route-lookup tests that must defeat any caching; the flow id and ports still identify
    the flow for sequence accounting).

Internet mix
    ``size="imix"``: the simple synthetic Internet mix 7:4:1 of 64-, 594- and 1518-byte
    frames (mean 361.83 bytes), laid out as a fixed 12-frame pattern so that every 12
    consecutive frames hold exactly seven 64-, four 594- and one 1518-byte frame.

Randomness is a keyed hash of (seed, index), not a stream, so frame *k* of a build does not
depend on how the frames were cut into chunks.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numba
import numpy as np

from routebricks.errors import RouteBricksError
from routebricks.io.afpacket import pool_layout
from routebricks.packet import kernels as _k
from routebricks.packet.batch import POOL_GUARD, PacketBatch

__all__ = [
    "FCS_LEN",
    "HEADERS_LEN",
    "IMIX",
    "IMIX_PATTERN",
    "MIN_FRAME",
    "PROBE_LEN",
    "PROBE_MAGIC",
    "PROBE_OFFSET",
    "AddressSpec",
    "FlowTable",
    "FrameSpec",
    "Frames",
    "TrafficError",
    "build_frames",
    "flow_table",
    "frame_sizes",
    "mean_frame_size",
    "parse_mac",
    "parse_probes",
    "parse_size",
    "stamp",
]


class TrafficError(RouteBricksError, ValueError):
    """A bad traffic specification (address, size, rate, flow count...) given by the user."""


FCS_LEN: Final = 4
ETH_HLEN: Final = 14
IP_HLEN: Final = 20
UDP_HLEN: Final = 8
#: Ethernet + IPv4 + UDP header bytes before the probe.
HEADERS_LEN: Final = ETH_HLEN + IP_HLEN + UDP_HLEN  # 42
#: Where the probe header starts in every frame we build.
PROBE_OFFSET: Final = HEADERS_LEN
PROBE_MAGIC: Final = 0x5242
PROBE_LEN: Final = 18
#: Smallest frame size (FCS included) that holds the headers and the probe.
MIN_FRAME: Final = HEADERS_LEN + PROBE_LEN + FCS_LEN  # 64
#: Largest frame size accepted (IPv4 total length is 16 bits).
MAX_FRAME: Final = ETH_HLEN + 65535 + FCS_LEN

#: The Internet mix: (frame size, weight) pairs, 7:4:1 of 64/594/1518-byte frames.
IMIX: Final[tuple[tuple[int, int], ...]] = ((64, 7), (594, 4), (1518, 1))
#: One period of the mix, interleaved so that short runs are mixed too.
IMIX_PATTERN: Final[tuple[int, ...]] = (
    64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 64, 594,
)  # fmt: skip
assert sorted(IMIX_PATTERN) == sorted(s for s, w in IMIX for _ in range(w))

# The header template as a packed big-endian record; viewed as bytes it is the frame prefix.
_HDR = np.dtype(
    {
        "names": [
            "dst_mac", "src_mac", "ethertype",
            "vhl", "tos", "ip_len", "ip_id", "ip_off", "ttl", "proto", "ip_sum", "src", "dst",
            "sport", "dport", "udp_len", "udp_sum",
            "magic", "flow", "seq", "ts",
        ],
        "formats": [
            "(6,)u1", "(6,)u1", ">u2",
            "u1", "u1", ">u2", ">u2", ">u2", "u1", "u1", ">u2", ">u4", ">u4",
            ">u2", ">u2", ">u2", ">u2",
            ">u2", ">u4", ">u4", ">u8",
        ],
        "offsets": [
            0, 6, 12,
            14, 15, 16, 18, 20, 22, 23, 24, 26, 30,
            34, 36, 38, 40,
            42, 44, 48, 52,
        ],
        "itemsize": HEADERS_LEN + PROBE_LEN,
    }
)  # fmt: skip

_MAC_RE = re.compile(r"^([0-9a-fA-F]{1,2})([:-][0-9a-fA-F]{1,2}){5}$")


def parse_mac(text: str) -> bytes:
    """``"02:00:00:00:00:01"`` (or with ``-``) -> 6 bytes; TrafficError if malformed."""
    if not _MAC_RE.match(text.strip()):
        raise TrafficError(f"bad MAC address {text!r} (want six hex bytes like 02:00:00:00:00:01)")
    return bytes(int(p, 16) for p in re.split(r"[:-]", text.strip()))


# --------------------------------------------------------------------------
# Keyed hashing (deterministic per-index randomness)
# --------------------------------------------------------------------------
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer over a uint64 array (wrapping arithmetic)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _hash(idx: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """A 64-bit pseudo-random value per index, fixed by (seed, salt)."""
    key = _mix64(np.array([(seed & 0xFFFFFFFF) << 8 | (salt & 0xFF)], np.uint64))[0]
    with np.errstate(over="ignore"):
        return _mix64(idx.astype(np.uint64) ^ key)


# --------------------------------------------------------------------------
# Address specifications
# --------------------------------------------------------------------------
_UNICAST_LO = 126 << 24  # 1.0.0.0 .. 126.255.255.255
_UNICAST_HI = 96 << 24  # 128.0.0.0 .. 223.255.255.255

AddressKind = Literal["fixed", "list", "prefixes", "random", "random-unicast"]


@dataclass(frozen=True)
class AddressSpec:
    """Where addresses come from: one, a list, random within prefixes, or random anywhere.

    Build with :meth:`parse`: ``"10.0.0.1"``, ``"10.0.0.1,10.0.0.2"``, ``"10.0.0.0/8"``,
    ``"10.0.0.0/8,192.168.0.0/16"`` (a list mixing addresses and prefixes counts addresses as
    /32 prefixes), ``"random"`` (all of IPv4) or ``"random-unicast"``.
    """

    kind: AddressKind
    #: fixed/list: the addresses; prefixes: the network addresses (host-order u32).
    values: tuple[int, ...] = ()
    #: prefixes: the number of addresses in each prefix.
    sizes: tuple[int, ...] = ()

    @classmethod
    def parse(cls, spec: str | Sequence[str] | AddressSpec) -> AddressSpec:
        if isinstance(spec, AddressSpec):
            return spec
        items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
        items = [s for s in items if s]
        if not items:
            raise TrafficError("empty address specification")
        low = [s.lower() for s in items]
        if len(items) == 1 and low[0] in ("random", "random-unicast"):
            return cls(low[0])  # type: ignore[arg-type]
        if any(s in ("random", "random-unicast") for s in low):
            raise TrafficError("'random' cannot be combined with other addresses")
        try:
            if all("/" not in s for s in items):
                addrs = tuple(int(ipaddress.IPv4Address(s)) for s in items)
                return cls("fixed" if len(addrs) == 1 else "list", addrs)
            nets = [ipaddress.IPv4Network(s, strict=False) for s in items]
        except ValueError as e:
            raise TrafficError(
                f"bad IPv4 address or prefix in {','.join(items)!r}: {e} "
                "(want e.g. 10.0.0.1, 10.0.0.0/8, a comma-separated list, or random)"
            ) from None
        return cls(
            "prefixes",
            tuple(int(n.network_address) for n in nets),
            tuple(n.num_addresses for n in nets),
        )

    def pick(self, idx: np.ndarray, seed: int, salt: int) -> np.ndarray:
        """The address (host-order uint32) for each index (flow or frame number)."""
        idx = np.asarray(idx, np.int64)
        if self.kind == "fixed":
            return np.full(idx.shape, self.values[0], np.uint32)
        if self.kind == "list":
            return np.asarray(self.values, np.uint32)[idx % len(self.values)]
        h = _hash(idx, seed, salt)
        if self.kind == "random":
            return (h >> np.uint64(32)).astype(np.uint32)
        if self.kind == "random-unicast":
            x = (h >> np.uint64(16)) % np.uint64(_UNICAST_LO + _UNICAST_HI)
            x = x.astype(np.int64)
            out = np.where(x < _UNICAST_LO, x + (1 << 24), x - _UNICAST_LO + (128 << 24))
            return out.astype(np.uint32)
        base = np.asarray(self.values, np.int64)
        size = np.asarray(self.sizes, np.int64)
        # 32 bits choose the prefix (16 would reach only the first 65,536 of a large
        # table), the other 32 the address inside it.
        which = ((h >> np.uint64(32)) % np.uint64(len(base))).astype(np.int64)
        within = ((h & np.uint64(0xFFFFFFFF)) % size[which].astype(np.uint64)).astype(np.int64)
        return (base[which] + within).astype(np.uint32)

    def __str__(self) -> str:
        if self.kind in ("random", "random-unicast"):
            return self.kind
        if self.kind == "prefixes":
            return ",".join(
                str(ipaddress.IPv4Network((v, 32 - (s.bit_length() - 1))))
                for v, s in zip(self.values, self.sizes, strict=True)
            )
        return ",".join(str(ipaddress.IPv4Address(v)) for v in self.values)


# --------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------
SizeSpec = int | str | Sequence[int]


def parse_size(spec: SizeSpec) -> tuple[int, ...]:
    """The size pattern (frame sizes with FCS, cycled over frames) of a size spec.

    ``64`` or ``"64"`` -> (64,); ``"imix"`` -> :data:`IMIX_PATTERN`; ``"64,1518"`` or a list
    -> that pattern.
    """
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s == "imix":
            return IMIX_PATTERN
        try:
            pattern = tuple(int(p) for p in s.split(",") if p.strip())
        except ValueError:
            raise TrafficError(
                f"bad frame size {spec!r} (want a number of bytes such as 64, a list "
                "such as 64,1518, or imix)"
            ) from None
    elif isinstance(spec, int):
        pattern = (spec,)
    else:
        pattern = tuple(int(p) for p in spec)
    if not pattern:
        raise TrafficError("empty frame size list")
    for p in pattern:
        if not MIN_FRAME <= p <= MAX_FRAME:
            raise TrafficError(
                f"frame size {p} out of range: sizes count the 4-byte FCS and must be "
                f"{MIN_FRAME}..{MAX_FRAME} ({MIN_FRAME} holds headers and probe)"
            )
    return pattern


def frame_sizes(spec: SizeSpec, n: int, start: int = 0) -> np.ndarray:
    """Sizes (FCS included, int64) of frames ``start .. start+n-1``."""
    pattern = np.asarray(parse_size(spec), np.int64)
    return pattern[(np.arange(start, start + n, dtype=np.int64)) % pattern.size]


def mean_frame_size(spec: SizeSpec) -> float:
    """Average frame size (FCS included) of a size spec; 361.83 for imix."""
    return float(np.mean(parse_size(spec)))


# --------------------------------------------------------------------------
# Frame specification and flow table
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameSpec:
    """What to put in the frames (see the module docstring for every convention).

    ``src_mac``/``src_ip`` None mean "the sending interface's own" when a
    :class:`~routebricks.traffic.gen.Generator` resolves them, and ``02:00:00:00:00:01`` /
    ``198.18.0.1`` (RFC 2544 benchmarking space) when frames are built directly.
    """

    dst: str | Sequence[str] | AddressSpec = "198.19.0.1"
    src_ip: str | Sequence[str] | AddressSpec | None = None
    src_mac: str | None = None
    dst_mac: str = "ff:ff:ff:ff:ff:ff"
    flows: int = 1
    order: Literal["cycle", "random"] = "cycle"
    size: SizeSpec = 64
    sport: int = 1024
    dport: int = 9
    ttl: int = 64
    tos: int = 0
    dst_per_packet: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        parse_size(self.size)
        AddressSpec.parse(self.dst)
        if self.src_ip is not None:
            AddressSpec.parse(self.src_ip)
        if self.src_mac is not None:
            parse_mac(self.src_mac)
        parse_mac(self.dst_mac)
        if self.order not in ("cycle", "random"):
            raise TrafficError(f"order must be 'cycle' or 'random', not {self.order!r}")
        if not 0 <= self.sport <= 65535 or not 0 <= self.dport <= 65535:
            raise TrafficError("ports must be 0..65535")
        if not 1 <= self.flows <= self.max_flows():
            raise TrafficError(
                f"flows must be 1..{self.max_flows()} (distinct ports from sport={self.sport}, "
                f"dport={self.dport}), not {self.flows}"
            )
        if not 0 <= self.ttl <= 255 or not 0 <= self.tos <= 255:
            raise TrafficError("ttl and tos must be 0..255")

    def max_flows(self) -> int:
        """How many distinct 5-tuples the port ranges allow (capped at 2**24)."""
        return min((65536 - self.sport) * (65536 - self.dport), 1 << 24)


@dataclass
class FlowTable:
    """Per-flow 5-tuple columns (addresses host-order uint32, ports uint16)."""

    src: np.ndarray
    dst: np.ndarray
    sport: np.ndarray
    dport: np.ndarray

    def __len__(self) -> int:
        return int(self.src.shape[0])


_SALT_SRC, _SALT_DST, _SALT_ORDER, _SALT_PKT_DST = 1, 2, 3, 4


def flow_table(spec: FrameSpec) -> FlowTable:
    """The 5-tuple of every flow of ``spec`` (vectorized)."""
    i = np.arange(spec.flows, dtype=np.int64)
    span = 65536 - spec.sport
    src = AddressSpec.parse(spec.src_ip if spec.src_ip is not None else "198.18.0.1")
    return FlowTable(
        src=src.pick(i, spec.seed, _SALT_SRC),
        dst=AddressSpec.parse(spec.dst).pick(i, spec.seed, _SALT_DST),
        sport=(spec.sport + i % span).astype(np.uint16),
        dport=(spec.dport + i // span).astype(np.uint16),
    )


def flow_order(spec: FrameSpec, n: int, start: int = 0) -> np.ndarray:
    """The flow id (uint32) of frames ``start .. start+n-1``."""
    k = np.arange(start, start + n, dtype=np.int64)
    nf = spec.flows
    if spec.order == "cycle" or nf == 1 or n == 0:
        return (k % nf).astype(np.uint32)
    # Shuffled round robin: block b (frames b*nf .. b*nf+nf-1) visits every flow once, in
    # the order of a permutation keyed by (seed, b).
    first, last = int(k[0] // nf), int(k[-1] // nf)
    blocks = np.arange(first, last + 1, dtype=np.int64)
    keys = _hash(blocks[:, None] * nf + np.arange(nf, dtype=np.int64), spec.seed, _SALT_ORDER)
    perms = np.argsort(keys, axis=1, kind="stable")
    return perms[k // nf - first, k % nf].astype(np.uint32)


def _ranks(flow: np.ndarray, nflows: int) -> tuple[np.ndarray, np.ndarray]:
    """For each frame, how many earlier frames have its flow; and frames per flow."""
    order = np.argsort(flow, kind="stable")
    counts = np.bincount(flow, minlength=nflows).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(flow.size, np.int64)
    rank[order] = np.arange(flow.size, dtype=np.int64) - np.repeat(starts, counts)
    return rank, counts


@dataclass
class Frames:
    """Frames built by :func:`build_frames`: the batch plus per-frame columns.

    ``size`` is the wire size with FCS; ``batch.length`` is ``size - 4`` (what is sent).
    ``seq`` is each frame's probe sequence number as built; ``rank``/``per_flow`` let a sender
    renumber repeats of the same frames (pass *p*: ``seq = seq + p * per_flow[flow]``).
    """

    batch: PacketBatch
    flow: np.ndarray
    seq: np.ndarray
    size: np.ndarray
    per_flow: np.ndarray
    flows: FlowTable

    def __len__(self) -> int:
        return len(self.batch)

    @property
    def probe_pos(self) -> np.ndarray:
        """Absolute pool offset of each frame's probe header."""
        return self.batch.off + PROBE_OFFSET

    def to_list(self) -> list[bytes]:
        return self.batch.to_list()


def build_frames(
    spec: FrameSpec,
    n: int,
    *,
    start: int = 0,
    seq_base: np.ndarray | None = None,
    headroom: int = 0,
    tailroom: int = 0,
    timestamp_ns: int = 0,
) -> Frames:
    """Build frames ``start .. start+n-1`` of ``spec`` into one pool (vectorized).

    Frames are packed back to back (``headroom``/``tailroom`` free bytes around each, as
    :func:`~routebricks.io.afpacket.pool_layout` describes), ready for
    :meth:`~routebricks.io.afpacket.TxRing.send_batch`. Sequence numbers count each flow's
    frames within this build, from ``seq_base[flow]`` (default 0). The probe send time is
    ``timestamp_ns`` (0: the sender stamps it with :func:`stamp`).
    """
    if n < 0:
        raise TrafficError("frame count must be >= 0")
    sizes = frame_sizes(spec.size, n, start)
    flow = flow_order(spec, n, start)
    table = flow_table(spec)
    rank, per_flow = _ranks(flow, spec.flows)
    seq64 = rank if seq_base is None else rank + np.asarray(seq_base, np.int64)[flow]
    seq = (seq64 & 0xFFFFFFFF).astype(np.uint32)

    hdr = np.zeros(n, _HDR)
    hdr["dst_mac"] = np.frombuffer(parse_mac(spec.dst_mac), np.uint8)
    hdr["src_mac"] = np.frombuffer(parse_mac(spec.src_mac or "02:00:00:00:00:01"), np.uint8)
    hdr["ethertype"] = 0x0800
    hdr["vhl"] = 0x45
    hdr["tos"] = spec.tos
    hdr["ip_len"] = sizes - FCS_LEN - ETH_HLEN
    hdr["ip_id"] = np.arange(start, start + n, dtype=np.int64) & 0xFFFF
    hdr["ttl"] = spec.ttl
    hdr["proto"] = 17
    hdr["src"] = table.src[flow]
    if spec.dst_per_packet:
        k = np.arange(start, start + n, dtype=np.int64)
        hdr["dst"] = AddressSpec.parse(spec.dst).pick(k, spec.seed, _SALT_PKT_DST)
    else:
        hdr["dst"] = table.dst[flow]
    hdr["sport"] = table.sport[flow]
    hdr["dport"] = table.dport[flow]
    hdr["udp_len"] = sizes - FCS_LEN - ETH_HLEN - IP_HLEN
    hdr["magic"] = PROBE_MAGIC
    hdr["flow"] = flow
    hdr["seq"] = seq
    hdr["ts"] = timestamp_ns
    raw = hdr.view(np.uint8).reshape(n, _HDR.itemsize)
    hdr["ip_sum"] = ip_header_checksums(raw[:, ETH_HLEN : ETH_HLEN + IP_HLEN])

    lengths = sizes - FCS_LEN
    offsets, total = pool_layout(lengths, headroom, tailroom)
    pool = np.zeros(total + POOL_GUARD, np.uint8)
    if n:
        _k.scatter_bytes(pool, offsets, np.ascontiguousarray(raw))
    batch = PacketBatch(
        pool, offsets, lengths.astype(np.int64), headroom=headroom, tailroom=tailroom
    )
    return Frames(batch, flow, seq, sizes, per_flow, table)


def ip_header_checksums(headers: np.ndarray) -> np.ndarray:
    """RFC 1071 checksums of an (n, 20k) uint8 matrix of IPv4 headers (checksum field 0)."""
    words = headers.reshape(headers.shape[0], headers.shape[1] // 2, 2).astype(np.uint32)
    s = (words[:, :, 0] << 8 | words[:, :, 1]).sum(axis=1, dtype=np.uint32)
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return (~s & 0xFFFF).astype(np.uint16)


# --------------------------------------------------------------------------
# Probe stamping and parsing (numba)
# --------------------------------------------------------------------------
@numba.njit(cache=True, nogil=True)
def stamp(
    pool: np.ndarray,
    probe_pos: np.ndarray,
    seq0: np.ndarray,
    step: np.ndarray,
    npass: int,
    ts: int,
) -> None:  # pragma: no cover - compiled
    """Write ``seq = seq0 + npass * step`` (mod 2**32) and send time ``ts`` into each probe."""
    for i in range(probe_pos.shape[0]):
        p = probe_pos[i] + 6
        s = (np.int64(seq0[i]) + np.int64(npass) * np.int64(step[i])) & 0xFFFFFFFF
        pool[p] = (s >> 24) & 0xFF
        pool[p + 1] = (s >> 16) & 0xFF
        pool[p + 2] = (s >> 8) & 0xFF
        pool[p + 3] = s & 0xFF
        t = np.uint64(ts)
        for j in range(8):
            pool[p + 4 + j] = np.uint8((t >> np.uint64(56 - 8 * j)) & np.uint64(0xFF))


@numba.njit(cache=True, nogil=True)
def _parse(
    pool: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    flow: np.ndarray,
    seq: np.ndarray,
    txts: np.ndarray,
    ok: np.ndarray,
) -> int:  # pragma: no cover - compiled
    found = 0
    for i in range(offsets.shape[0]):
        o = offsets[i]
        end = o + lengths[i]
        ok[i] = False
        if lengths[i] < HEADERS_LEN + PROBE_LEN:
            continue
        if pool[o + 12] != 0x08 or pool[o + 13] != 0x00:
            continue
        vhl = pool[o + 14]
        ihl = np.int64(vhl & 0xF) * 4
        if (vhl >> 4) != 4 or ihl < 20 or pool[o + 23] != 17:
            continue
        if ((np.int64(pool[o + 20]) & 0x1F) << 8 | np.int64(pool[o + 21])) != 0:
            continue  # a non-first fragment: no UDP header
        # The probe must lie inside the IP datagram (not in Ethernet padding).
        ip_end = o + ETH_HLEN + (np.int64(pool[o + 16]) << 8 | np.int64(pool[o + 17]))
        if ip_end < end:
            end = ip_end
        p = o + ETH_HLEN + ihl + UDP_HLEN
        if p + PROBE_LEN > end:
            continue
        if (np.int64(pool[p]) << 8 | np.int64(pool[p + 1])) != PROBE_MAGIC:
            continue
        f = np.int64(0)
        s = np.int64(0)
        for j in range(4):
            f = (f << 8) | np.int64(pool[p + 2 + j])
            s = (s << 8) | np.int64(pool[p + 6 + j])
        t = np.uint64(0)
        for j in range(8):
            t = (t << np.uint64(8)) | np.uint64(pool[p + 10 + j])
        flow[i] = f
        seq[i] = s
        txts[i] = np.int64(t)
        ok[i] = True
        found += 1
    return found


def parse_probes(
    pool: np.ndarray, offsets: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Find the probe of every frame: ``(ok, flow, seq, send_ns)`` columns.

    ``ok`` is False for frames that are not IPv4/UDP with a probe (ARP, other traffic); the
    IP header may carry options (the probe follows the UDP header wherever that is).
    """
    n = offsets.shape[0]
    flow = np.zeros(n, np.int64)
    seq = np.zeros(n, np.int64)
    txts = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    if n:
        _parse(
            pool,
            np.asarray(offsets, np.int64),
            np.asarray(lengths, np.int64),
            flow,
            seq,
            txts,
            ok,
        )
    return ok, flow, seq, txts


def warmup() -> None:
    """Compile (or load from numba's cache) the probe kernels with the types used."""
    pool = np.zeros(128, np.uint8)
    pos = np.zeros(1, np.int64)
    u32 = np.zeros(1, np.uint32)
    stamp(pool, pos, u32, u32, 0, 1)
    stamp(pool, pos, u32, u32, 0, 1)
    parse_probes(pool, pos, np.full(1, 60, np.int64))
