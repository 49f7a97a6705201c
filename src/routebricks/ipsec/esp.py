"""ESP tunnel mode (RFC 4303) over packet batches: encapsulation and decapsulation.

Input and output packets start at their IPv4 header (no link-layer header).

Encapsulation turns each inner IPv4 packet into::

    outer IPv4 (20) | SPI (4) | seq (4) | IV | inner packet | padding | pad len | next hdr (4) | ICV

The outer header has version 4, IHL 5, TTL 64, protocol 50, the SA's tunnel addresses, TOS and
DF copied from the inner header (DSCP copy per RFC 4301 §5.1.2.1, ECN copy per RFC 6040 normal
mode, DF copy as Linux does by default), an IP ID from a per-SA 16-bit counter, and a correct
header checksum. Padding is 1, 2, 3, ... (RFC 4303 §2.4) up to 4-byte alignment (GCM) or the
16-byte AES block (CBC). Packets are rewritten in place: headers go into the batch's headroom,
the trailer and ICV into its tailroom (the batch is repacked first if either is too small).

Decapsulation checks, in this order, per packet: outer header sane and protocol 50 (``not
ESP``, ``truncated``, ``fragment``), SPI known (``unknown SPI``), ESP length fits the transform
(``truncated``, ``bad length``), anti-replay window (``replayed``, ``outside window``), ICV
(``bad ICV``), then, after the window is updated and the payload decrypted, padding contents
(``bad padding``) and next header (``bad next header``; next header 59 is a dummy packet,
``dummy``). The outer header checksum is left to the IP input stage that precedes
decapsulation. Nothing raises on a bad packet: each is dropped and counted under its reason,
in the returned dict and in the SA's ``counters``.

The window update is split as RFC 4303 §3.4.3 asks: check every sequence number (kernel) →
verify the ICV of those that passed → update the window (kernel, packet order) with those that
verified. The outcome equals processing the batch one packet at a time.

``encapsulate_reference`` / ``decapsulate_reference`` do the same one packet at a time with
``cryptography``'s ``AESGCM`` / ``Cipher(CBC)`` and ``hmac``; given the same SA state (and, for
CBC, the same IVs) they produce byte-identical packets and identical drop counts. They exist as
the yardstick of the batched path in tests and benchmarks.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Mapping

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from routebricks.ipsec import crypto as _c
from routebricks.ipsec import kernels as _k
from routebricks.ipsec.sa import ALG_GCM, SEQ_MAX, SATable, SecurityAssociation
from routebricks.packet import kernels as _pk
from routebricks.packet.batch import PacketBatch

# ---------------------------------------------------------------------- drop reasons
NOT_IPV4 = "not IPv4"  # encapsulation: inner packet is not a well-formed IPv4 packet
TRUNCATED = "truncated"
TOO_BIG = "too big"  # encapsulation: the outer packet would exceed 65535 bytes
SEQ_EXHAUSTED = "sequence exhausted"
NOT_ESP = "not ESP"
FRAGMENT = "fragment"
UNKNOWN_SPI = "unknown SPI"
BAD_LENGTH = "bad length"  # ESP payload not a multiple of the block / 4 bytes
REPLAYED = "replayed"
OUTSIDE_WINDOW = "outside window"
BAD_ICV = "bad ICV"
BAD_PADDING = "bad padding"
BAD_NEXT_HEADER = "bad next header"
DUMMY = "dummy"

#: Every reason encapsulate() may report.
ENCAP_DROP_REASONS = (NOT_IPV4, TRUNCATED, TOO_BIG, SEQ_EXHAUSTED)
#: Every reason decapsulate() may report.
DECAP_DROP_REASONS = (TRUNCATED, NOT_ESP, FRAGMENT, UNKNOWN_SPI, BAD_LENGTH, REPLAYED,
                      OUTSIDE_WINDOW, BAD_ICV, BAD_PADDING, BAD_NEXT_HEADER, DUMMY)

_ENC_REASON = {_k.ENC_NOT_IPV4: NOT_IPV4, _k.ENC_TRUNCATED: TRUNCATED, _k.ENC_TOO_BIG: TOO_BIG,
               _k.ENC_EXHAUSTED: SEQ_EXHAUSTED}
# Decapsulation outcome codes (kernels.D_*) to reasons; 0 = accepted.
_DEC_NAMES = {_k.D_TRUNCATED: TRUNCATED, _k.D_NOT_ESP: NOT_ESP, _k.D_FRAGMENT: FRAGMENT,
              _k.D_UNKNOWN_SPI: UNKNOWN_SPI, _k.D_BAD_LENGTH: BAD_LENGTH,
              _k.D_REPLAYED: REPLAYED, _k.D_OUTSIDE: OUTSIDE_WINDOW, _k.D_BAD_ICV: BAD_ICV,
              _k.D_BAD_PAD: BAD_PADDING, _k.D_BAD_NH: BAD_NEXT_HEADER, _k.D_DUMMY: DUMMY}
_NO_IVS = np.zeros((0, 16), np.uint8)
_NO_SALT = np.zeros(4, np.uint8)

SATableLike = SecurityAssociation | SATable | Mapping[int, SecurityAssociation]


def _count(codes: np.ndarray, names: Mapping[int, str]) -> dict[str, int]:
    """{reason: count} for the non-zero codes."""
    out: dict[str, int] = {}
    if codes.shape[0] == 0:
        return out
    counts = np.bincount(codes.astype(np.int64))
    for code in np.flatnonzero(counts).tolist():
        if code:
            out[names[code]] = int(counts[code])
    return out


def _max_inner(sa: SecurityAssociation) -> int:
    """Largest inner packet whose outer packet still fits in 65535 bytes."""
    p = sa.params
    room = 65535 - 28 - p.iv_len - p.icv_len
    return (room // p.align) * p.align - 2


def _check_out(sa: SecurityAssociation) -> None:
    if sa.direction == "in":
        raise ValueError(f"SA {sa.spi:#x} is inbound-only; it cannot encapsulate")


def _account(sa: SecurityAssociation, way: str, packets: int, nbytes: int,
             drops: Mapping[str, int]) -> None:
    c = sa.counters
    c[f"{way} packets"] += packets
    c[f"{way} bytes"] += nbytes
    for reason, count in drops.items():
        c[reason] += count


# ---------------------------------------------------------------------- encapsulation
def encapsulate(batch: PacketBatch, sa: SecurityAssociation, *,
                ivs: np.ndarray | None = None) -> tuple[PacketBatch, dict[str, int]]:
    """ESP tunnel-mode encapsulation of a batch of inner IPv4 packets with one SA.

    Args:
        batch: inner packets (data start at the IPv4 header); handed over and rewritten. Each
            packet's IP total length is what gets encapsulated (trailing bytes are not).
        sa: an outbound (or bidirectional) SA; its sequence and IP ID counters advance.
        ivs: CBC only, for tests: an (len(batch), 16) uint8 array of IVs, one row per input
            packet (rows of dropped packets unused). By default IVs come from ``os.urandom``.
            GCM IVs are always ``iv_prefix || seq`` (see :mod:`.sa`).

    Returns:
        (outer packets in input order, {drop reason: count}) with reasons from
        ``ENCAP_DROP_REASONS``, only those that occurred.
    """
    _check_out(sa)
    n = len(batch)
    if n == 0:
        return batch, {}
    p = sa.params
    hl = 28 + p.iv_len
    tail = p.align - 1 + 2 + p.icv_len
    batch = batch.ensure_room(hl, tail)
    pool = batch.pool
    gcm = sa.alg == ALG_GCM
    ctx = sa.ctx
    if gcm:
        iv_rows = _NO_IVS
        salt = ctx.salt
    else:
        salt = _NO_SALT
        if ivs is None:
            iv_rows = np.frombuffer(os.urandom(16 * n), np.uint8).reshape(n, 16)
        else:
            iv_rows = np.ascontiguousarray(ivs, np.uint8)
            if iv_rows.shape != (n, 16):
                raise ValueError(f"ivs must be ({n}, 16), not {iv_rows.shape}")
    status, new_off, out_len, esp_pos, pay_len, k, ctr, start = _k.encap_layout(
        pool, batch.off, batch.length, _max_inner(sa), p.align, p.iv_len, p.icv_len, sa.seq,
        sa.ip_id, sa.spi, sa.src, sa.dst, sa.iv_prefix, iv_rows, salt, gcm)
    ok = status == _k.ENC_OK
    if gcm:
        _c.gcm_seal_batch(ctx, pool, esp_pos, pay_len, ok, ctr, start)
    else:
        e, pl = (esp_pos, pay_len) if k == n else (esp_pos[ok], pay_len[ok])
        _c.cbc_encrypt_batch(ctx, pool, e + 8, pl)
        tags = _c.hmac_sha1_96_batch(ctx, pool, e, pl + 24)
        _pk.scatter_bytes(pool, e + 24 + pl, tags)
    sa.seq += k
    sa.ip_id = (sa.ip_id + k) & 0xFFFF
    annos = batch.annos
    if "nh" in annos:
        annos["nh"] = new_off.copy()
    out = PacketBatch(pool, new_off, out_len, annos, batch.headroom - hl, batch.tailroom - tail)
    drops: dict[str, int] = {}
    if k != n:
        drops = _count(status, _ENC_REASON)
        out = out.select(ok)
    _account(sa, "encap", k, int(out.length.sum()), drops)
    return out, drops


# ---------------------------------------------------------------------- decapsulation
def _groups(sas: SATableLike, spi: np.ndarray,
            live: np.ndarray) -> list[tuple[SecurityAssociation, np.ndarray]]:
    """The ``live`` packets by inbound SA: [(sa, member mask)]; the rest have no SA."""
    if isinstance(sas, SecurityAssociation):
        if sas.direction == "out":
            return []  # an outbound-only SA accepts nothing: its SPI is unknown here
        return [(sas, live & (spi == sas.spi))]
    table = sas.inbound if isinstance(sas, SATable) else sas
    groups = []
    for s in np.unique(spi[live]).tolist():
        sa = table.get(s)
        if sa is not None and sa.direction != "out":
            groups.append((sa, live & (spi == s)))
    return groups


def decapsulate(batch: PacketBatch, sas: SATableLike) -> tuple[PacketBatch, dict[str, int]]:
    """ESP tunnel-mode decapsulation: verify, decrypt and strip, returning inner packets.

    Args:
        batch: outer IPv4 packets (data start at the IPv4 header); handed over: payloads are
            decrypted in place.
        sas: one SA (packets with any other SPI are ``unknown SPI``), an :class:`SATable`, or a
            mapping SPI -> SA.

    Returns:
        (inner IPv4 packets of the accepted packets, in input order; {drop reason: count})
        with reasons from ``DECAP_DROP_REASONS``, only those that occurred. Never raises on a
        bad packet.
    """
    n = len(batch)
    if n == 0:
        return batch, {}
    pool = batch.pool
    code, esp_pos, esp_len, spi, seq = _k.parse_outer(pool, batch.off, batch.length)
    live = code == _k.D_OK
    code[live] = _k.D_UNKNOWN_SPI  # until an SA claims the packet
    inner_off = np.zeros(n, np.int64)
    inner_len = np.zeros(n, np.int64)
    head = tail = 1 << 30
    for sa, member in _groups(sas, spi, live):
        p = sa.params
        head = min(head, 28 + p.iv_len)
        tail = min(tail, 2 + p.icv_len)
        _decap_sa(pool, sa, member, code, esp_pos, esp_len, seq, inner_off, inner_len)
    acc = code == _k.D_OK
    k = int(np.count_nonzero(acc))
    drops = _count(code, _DEC_NAMES) if k != n else {}
    annos = batch.annos
    if k != n:
        annos = {name: v[acc] for name, v in annos.items()}
        inner_off = inner_off[acc]
        inner_len = inner_len[acc]
    if "nh" in annos:
        annos["nh"] = inner_off.copy()
    out = PacketBatch(pool, inner_off, inner_len, annos, batch.headroom, batch.tailroom)
    if head < (1 << 30):  # room freed by the stripped header and trailer (lower bounds)
        out.headroom += head
        out.tailroom += tail
    return out, drops


def _decap_sa(pool: np.ndarray, sa: SecurityAssociation, member: np.ndarray, code: np.ndarray,
              esp_pos: np.ndarray, esp_len: np.ndarray, seq: np.ndarray,
              inner_off: np.ndarray, inner_len: np.ndarray) -> None:
    """Decapsulate the ``member`` packets of one SA, setting their ``code`` and inner columns.

    Replay protection in three steps (RFC 4303 §3.4.3): check against the window, verify the
    ICV of the packets that passed, update the window with those that verified.
    """
    p = sa.params
    pay_len = _k.decap_prepare(esp_len, seq, member, code, p.iv_len, p.icv_len, p.align,
                               sa.window)  # lengths + step 1 (check)
    cand = member & (code == _k.D_OK)
    ctx = sa.ctx
    if sa.alg == ALG_GCM:  # step 2 (verify); GCM decrypts what verifies in the same pass
        icv_ok = _c.gcm_open_batch(ctx, pool, esp_pos, pay_len, cand)
    else:
        tags = _c.hmac_sha1_96_batch(ctx, pool, esp_pos, pay_len + 24, cand)
        icv_ok = _k.icv_compare(pool, esp_pos + 24 + pay_len, tags, cand)
    _k.decap_update(seq, member, code, icv_ok, sa.window)  # step 3 (update)
    if sa.alg != ALG_GCM:
        acc = np.flatnonzero(member & (code == _k.D_OK))
        _c.cbc_decrypt_batch(ctx, pool, esp_pos[acc] + 8, pay_len[acc])
    _k.check_trailer(pool, esp_pos, pay_len, member, code, p.iv_len, inner_off, inner_len)
    mc = code[member]
    good = mc == _k.D_OK
    _account(sa, "decap", int(np.count_nonzero(good)), int(inner_len[member].sum()),
             _count(mc, _DEC_NAMES))


# ---------------------------------------------------------------------- reference paths
def _ip_header(tos: int, total: int, ident: int, df: int, src: int, dst: int) -> bytes:
    """Outer IPv4 header, checksum computed here in plain Python (RFC 1071)."""
    h = struct.pack("!BBHHHBBHII", 0x45, tos, total, ident, df << 14, 64, 50, 0, src, dst)
    c = sum(struct.unpack("!10H", h))
    c = (c & 0xFFFF) + (c >> 16)
    c = (c & 0xFFFF) + (c >> 16)
    return h[:10] + struct.pack("!H", ~c & 0xFFFF) + h[12:]


_PADDING = [bytes(range(1, k + 1)) for k in range(16)]  # RFC 4303 default padding


def _inner_status(pkt: bytes, max_inner: int) -> tuple[int, int]:
    """Per-packet twin of kernels.inner_check: (status, inner length)."""
    if len(pkt) < 20:
        return _k.ENC_NOT_IPV4, 0
    ihl = (pkt[0] & 15) * 4
    if pkt[0] >> 4 != 4 or ihl < 20:
        return _k.ENC_NOT_IPV4, 0
    tot = int.from_bytes(pkt[2:4], "big")
    if tot < ihl:
        return _k.ENC_NOT_IPV4, 0
    if tot > len(pkt):
        return _k.ENC_TRUNCATED, 0
    if tot > max_inner:
        return _k.ENC_TOO_BIG, 0
    return _k.ENC_OK, tot


def encapsulate_reference(batch: PacketBatch, sa: SecurityAssociation, *,
                          ivs: np.ndarray | None = None) -> tuple[PacketBatch, dict[str, int]]:
    """:func:`encapsulate`, one packet at a time with ``AESGCM`` / ``Cipher(CBC)`` + ``hmac``.

    Leaves the input batch untouched and returns a fresh one.
    """
    _check_out(sa)
    p = sa.params
    ctx = sa.ctx
    gcm = sa.alg == ALG_GCM
    salt = ctx.salt.tobytes() if gcm else b""
    max_inner = _max_inner(sa)
    out: list[bytes] = []
    kept: list[int] = []
    drops: dict[str, int] = {}
    for i in range(len(batch)):
        pkt = batch.packet(i)
        st, L = _inner_status(pkt, max_inner)
        if st == _k.ENC_OK and sa.seq >= SEQ_MAX:
            st = _k.ENC_EXHAUSTED
        if st != _k.ENC_OK:
            drops[_ENC_REASON[st]] = drops.get(_ENC_REASON[st], 0) + 1
            continue
        sa.seq += 1
        inner = pkt[:L]
        pad = -(L + 2) % p.align
        plain = b"".join((inner, _PADDING[pad], bytes((pad, 4))))
        esp_hdr = struct.pack("!II", sa.spi, sa.seq)
        if gcm:
            iv = struct.pack("!II", sa.iv_prefix, sa.seq)
            body = esp_hdr + iv + ctx.aead.encrypt(salt + iv, plain, esp_hdr)
        else:
            iv = os.urandom(16) if ivs is None else bytes(np.asarray(ivs[i], np.uint8))
            enc = Cipher(algorithms.AES(ctx.key), modes.CBC(iv)).encryptor()
            signed = esp_hdr + iv + enc.update(plain) + enc.finalize()
            body = signed + hmac.new(ctx.auth_key, signed, hashlib.sha1).digest()[:12]
        hdr = _ip_header(inner[1], 20 + len(body), sa.ip_id, (inner[6] >> 6) & 1, sa.src,
                         sa.dst)
        sa.ip_id = (sa.ip_id + 1) & 0xFFFF
        out.append(hdr + body)
        kept.append(i)
    res = PacketBatch.from_bytes(out)
    sel = np.array(kept, np.int64)
    res.annos = {k: v[sel] for k, v in batch.annos.items()}
    if "nh" in res.annos:
        res.annos["nh"] = res.off.copy()
    _account(sa, "encap", len(out), sum(map(len, out)), drops)
    return res, drops


def _py_replay_code(sa: SecurityAssociation, s: int) -> int:
    """Per-packet twin of kernels._replay_code (pure Python, for the reference path)."""
    top, bm = sa.replay_top, sa.replay_bitmap
    if s == 0:
        return _k.REPLAY_OLD
    if s > top:
        return _k.REPLAY_OK
    d = top - s
    if d >= 64:
        return _k.REPLAY_OLD
    return _k.REPLAY_DUP if (bm >> d) & 1 else _k.REPLAY_OK


def _py_replay_mark(sa: SecurityAssociation, s: int) -> None:
    top, bm = sa.replay_top, sa.replay_bitmap
    if s > top:
        bm = ((bm << (s - top)) | 1) & 0xFFFFFFFFFFFFFFFF if s - top < 64 else 1
        top = s
    else:
        bm |= 1 << (top - s)
    sa.window[0] = top
    sa.window[1] = np.array([bm], np.uint64).view(np.int64)[0]


def _ref_parse(pkt: bytes) -> tuple[str, int, int]:
    """(reason or "", ESP start, ESP length) for one outer packet."""
    if len(pkt) < 20:
        return TRUNCATED, 0, 0
    ihl = (pkt[0] & 15) * 4
    if pkt[0] >> 4 != 4 or ihl < 20 or pkt[9] != 50:
        return NOT_ESP, 0, 0
    tot = int.from_bytes(pkt[2:4], "big")
    if tot > len(pkt) or tot < ihl:
        return TRUNCATED, 0, 0
    if int.from_bytes(pkt[6:8], "big") & 0x3FFF:
        return FRAGMENT, 0, 0
    if tot - ihl < 8:
        return TRUNCATED, 0, 0
    return "", ihl, tot - ihl


def _ref_open(sa: SecurityAssociation, esp: bytes) -> tuple[str, bytes]:
    """One ESP packet of a known SA: (reason or "", inner packet)."""
    p = sa.params
    ctx = sa.ctx
    pl = len(esp) - 8 - p.iv_len - p.icv_len
    if pl < (16 if p.align == 16 else 4):
        return TRUNCATED, b""
    if pl % p.align:
        return BAD_LENGTH, b""
    seq = int.from_bytes(esp[4:8], "big")
    rc = _py_replay_code(sa, seq)
    if rc != _k.REPLAY_OK:
        return (REPLAYED if rc == _k.REPLAY_DUP else OUTSIDE_WINDOW), b""
    iv = esp[8 : 8 + p.iv_len]
    if sa.alg == ALG_GCM:
        try:
            plain = ctx.aead.decrypt(ctx.salt.tobytes() + iv, esp[8 + p.iv_len :], esp[:8])
        except InvalidTag:
            return BAD_ICV, b""
        _py_replay_mark(sa, seq)
    else:
        signed, icv = esp[: -p.icv_len], esp[-p.icv_len :]
        want = hmac.new(ctx.auth_key, signed, hashlib.sha1).digest()[:12]
        if not hmac.compare_digest(want, icv):
            return BAD_ICV, b""
        _py_replay_mark(sa, seq)
        dec = Cipher(algorithms.AES(ctx.key), modes.CBC(iv)).decryptor()
        plain = dec.update(signed[8 + p.iv_len :]) + dec.finalize()
    pad, nh = plain[-2], plain[-1]
    if pad + 2 > len(plain):
        return BAD_PADDING, b""
    L = len(plain) - 2 - pad
    if plain[L : L + pad] != bytes(range(1, pad + 1)):
        return BAD_PADDING, b""
    if nh == _k.IPPROTO_NONE:
        return DUMMY, b""
    if nh != _k.IPPROTO_IPIP:
        return BAD_NEXT_HEADER, b""
    return "", plain[:L]


def decapsulate_reference(batch: PacketBatch,
                          sas: SATableLike) -> tuple[PacketBatch, dict[str, int]]:
    """:func:`decapsulate`, one packet at a time with ``AESGCM`` / ``Cipher(CBC)`` + ``hmac``.

    Leaves the input batch untouched and returns a fresh one.
    """
    if isinstance(sas, SecurityAssociation):
        table: Mapping[int, SecurityAssociation] = {sas.spi: sas}
    else:
        table = sas.inbound if isinstance(sas, SATable) else sas
    out: list[bytes] = []
    kept: list[int] = []
    drops: dict[str, int] = {}
    for i in range(len(batch)):
        pkt = batch.packet(i)
        reason, ihl, elen = _ref_parse(pkt)
        sa = None
        if not reason:
            sa = table.get(int.from_bytes(pkt[ihl : ihl + 4], "big"))
            if sa is None or sa.direction == "out":
                reason = UNKNOWN_SPI
        inner = b""
        if not reason and sa is not None:
            reason, inner = _ref_open(sa, pkt[ihl : ihl + elen])
            if reason:
                sa.counters[reason] += 1
            else:
                sa.counters["decap packets"] += 1
                sa.counters["decap bytes"] += len(inner)
        if reason:
            drops[reason] = drops.get(reason, 0) + 1
            continue
        out.append(inner)
        kept.append(i)
    res = PacketBatch.from_bytes(out)
    sel = np.array(kept, np.int64)
    res.annos = {k: v[sel] for k, v in batch.annos.items()}
    if "nh" in res.annos:
        res.annos["nh"] = res.off.copy()
    return res, drops
