"""numba kernels for ESP over packet batches.

Each kernel is one loop over the packets of a batch doing work that numpy cannot express as a
few whole-column operations: laying out outer IPv4 + ESP header and trailer, building AES-GCM
counter blocks, XORing keystream while folding GHASH, undoing CBC chaining, and walking the
anti-replay window in packet order. Block-cipher work itself is left to OpenSSL (one ECB call
per batch, see :mod:`routebricks.ipsec.crypto`). Kernels take whole-batch columns plus masks
rather than index subsets: each numpy gather costs about as much as a kernel call.

GHASH multiplies in GF(2^128) two ways, chosen by the shape of the hash-key argument:

* ``(16, 256, 2)`` table: ``htab[i, b]`` is the product of ``H`` and the element whose only
  non-zero byte is ``b`` at position ``i``, so ``X * H`` is the XOR of 16 table rows. Portable;
  64 KiB per key.
* ``(3,)`` ``[H_hi, H_lo, H_hi ^ H_lo]``: carry-less multiply with the x86 ``PCLMULQDQ``
  instruction (Karatsuba, 3 multiplies) and the reflected reduction of Intel's white paper
  "Carry-Less Multiplication and Its Usage for Computing the GCM Mode" (algorithm 5). About 2x
  faster; only compiled when :data:`HAVE_CLMUL` says the CPU has it.

128-bit values are kept as two ``int64`` halves (``hi`` = bytes 0..7, ``lo`` = bytes 8..15,
big-endian) because numba promotes mixed ``uint64``/``int64`` arithmetic to float.
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils, config
from numba.extending import intrinsic, overload

# Encapsulation status per inner packet.
ENC_OK = 0
ENC_NOT_IPV4 = 1
ENC_TRUNCATED = 2
ENC_TOO_BIG = 3
ENC_EXHAUSTED = 4

# Decapsulation outcome per packet (0 = accepted / still in progress).
D_OK = 0
D_TRUNCATED = 1
D_NOT_ESP = 2
D_FRAGMENT = 3
D_UNKNOWN_SPI = 4
D_BAD_LENGTH = 5
D_REPLAYED = 6
D_OUTSIDE = 7
D_BAD_ICV = 8
D_BAD_PAD = 9
D_BAD_NH = 10
D_DUMMY = 11  # next header 59: a dummy packet (RFC 4303 §2.6), dropped

# Anti-replay codes of the stand-alone window kernels.
REPLAY_OK = 0
REPLAY_DUP = 1  # inside the window and already received
REPLAY_OLD = 2  # left of the window (or sequence number 0, which is never sent)
REPLAY_BAD_ICV = 3  # new, but its ICV did not verify

IPPROTO_IPIP = 4
IPPROTO_NONE = 59
SEQ_MAX = 0xFFFFFFFF


def _host_has_clmul() -> bool:
    """PCLMULQDQ usable: x86-64 host with the feature, numba compiling for the host CPU."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    if config.CPU_NAME not in (None, "host") or config.CPU_FEATURES:
        return False  # a portable target (e.g. generic cache builds) may lack it
    try:
        import llvmlite.binding as llvm

        return bool(llvm.get_host_cpu_features().get("pclmul", False))
    except Exception:  # pragma: no cover - exotic llvmlite builds
        return False


#: Whether GHASH uses the carry-less multiply instruction (else byte tables).
HAVE_CLMUL = _host_has_clmul()


# ---------------------------------------------------------------------- byte helpers
@njit(cache=True, nogil=True)
def _be64(a: np.ndarray, p: int) -> np.int64:
    """Big-endian 64-bit load from a uint8 array (LLVM turns it into load + bswap)."""
    return ((np.int64(a[p]) << 56) | (np.int64(a[p + 1]) << 48) | (np.int64(a[p + 2]) << 40)
            | (np.int64(a[p + 3]) << 32) | (np.int64(a[p + 4]) << 24)
            | (np.int64(a[p + 5]) << 16) | (np.int64(a[p + 6]) << 8) | np.int64(a[p + 7]))


@njit(cache=True, nogil=True)
def _put_be64(a: np.ndarray, p: int, v: np.int64) -> None:
    for k in range(8):
        a[p + k] = (v >> (56 - 8 * k)) & 0xFF


@njit(cache=True, nogil=True)
def _be_partial(a: np.ndarray, p: int, n: int) -> tuple[np.int64, np.int64]:
    """The first ``n`` (< 16) bytes at ``p`` as a zero-padded block (hi, lo)."""
    hi = np.int64(0)
    lo = np.int64(0)
    for k in range(8):
        hi = (hi << 8) | (np.int64(a[p + k]) if k < n else 0)
    for k in range(8):
        lo = (lo << 8) | (np.int64(a[p + 8 + k]) if 8 + k < n else 0)
    return hi, lo


@njit(cache=True, nogil=True)
def _srl(x: np.int64, s: int) -> np.int64:
    """Logical right shift of an int64 (``>>`` is arithmetic)."""
    return (x >> s) & ((np.int64(1) << (64 - s)) - 1)


# ---------------------------------------------------------------------- GF(2^128) multiply
@intrinsic
def _clmul64(typingctx, a, b):  # type: ignore[no-untyped-def]
    """(lo, hi) of the 128-bit carry-less product of two 64-bit values (PCLMULQDQ)."""
    sig = types.UniTuple(types.int64, 2)(types.int64, types.int64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        i32 = ir.IntType(32)
        vty = ir.VectorType(ir.IntType(64), 2)
        zero = ir.Constant(vty, [0, 0])
        va = builder.insert_element(zero, args[0], ir.Constant(i32, 0))
        vb = builder.insert_element(zero, args[1], ir.Constant(i32, 0))
        fnty = ir.FunctionType(vty, [vty, vty, ir.IntType(8)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.pclmulqdq")
        r = builder.call(fn, [va, vb, ir.Constant(ir.IntType(8), 0)])
        lo = builder.extract_element(r, ir.Constant(i32, 0))
        hi = builder.extract_element(r, ir.Constant(i32, 1))
        return context.make_tuple(builder, signature.return_type, [lo, hi])

    return sig, codegen


def gf_mul(yh, yl, hkey):  # type: ignore[no-untyped-def]  # pragma: no cover - numba stub
    """Y * H in GHASH's field; implemented for numba by the overload below."""
    raise NotImplementedError


@overload(gf_mul)
def _gf_mul_impl(yh, yl, hkey):  # type: ignore[no-untyped-def]
    if hkey.ndim == 3:

        def table(yh, yl, hkey):  # type: ignore[no-untyped-def]
            zh = np.int64(0)
            zl = np.int64(0)
            for k in range(8):
                b = (yh >> (56 - 8 * k)) & 0xFF
                zh ^= hkey[k, b, 0]
                zl ^= hkey[k, b, 1]
            for k in range(8):
                b = (yl >> (56 - 8 * k)) & 0xFF
                zh ^= hkey[8 + k, b, 0]
                zl ^= hkey[8 + k, b, 1]
            return zh, zl

        return table

    def clmul(yh, yl, hkey):  # type: ignore[no-untyped-def]
        # 256-bit carry-less product of the bit-reflected operands (Karatsuba).
        c0l, c0h = _clmul64(yl, hkey[1])
        c1l, c1h = _clmul64(yh, hkey[0])
        ml, mh = _clmul64(yh ^ yl, hkey[2])
        ml ^= c0l ^ c1l
        mh ^= c0h ^ c1h
        x0 = c0l
        x1 = c0h ^ ml
        x2 = c1l ^ mh
        x3 = c1h
        # Reflected operands give a product one bit short: shift the 256 bits left by 1.
        x3 = (x3 << 1) | _srl(x2, 63)
        x2 = (x2 << 1) | _srl(x1, 63)
        x1 = (x1 << 1) | _srl(x0, 63)
        x0 = x0 << 1
        # Reduce modulo x^128 + x^7 + x^2 + x + 1 (reflected).
        d = x1 ^ (x0 << 63) ^ (x0 << 62) ^ (x0 << 57)
        h1 = d ^ _srl(d, 1) ^ _srl(d, 2) ^ _srl(d, 7)
        h0 = x0 ^ (_srl(x0, 1) | (d << 63)) ^ (_srl(x0, 2) | (d << 62)) ^ (_srl(x0, 7) | (d << 57))
        return x3 ^ h1, x2 ^ h0

    return clmul


@njit(cache=True, nogil=True)
def gf_mul_one(yh: np.int64, yl: np.int64, hkey: np.ndarray) -> tuple[np.int64, np.int64]:
    """One GHASH field multiply (tests compare the two implementations with this)."""
    return gf_mul(yh, yl, hkey)


# ---------------------------------------------------------------------- encapsulation
@njit(cache=True, nogil=True)
def encap_layout(pool: np.ndarray, off: np.ndarray, length: np.ndarray, max_inner: int,
                 align: int, iv_len: int, icv_len: int, seq0: int, ip_id0: int, spi: int,
                 src: int, dst: int, iv_prefix: int, ivs: np.ndarray, salt: np.ndarray,
                 want_ctr: bool):
    """Check inner packets, number them, and lay out outer IPv4 + ESP header and trailer.

    Pass 1 validates each inner IPv4 packet (its IP total length is what gets encapsulated:
    trailing bytes such as Ethernet padding are not) and assigns sequence numbers
    ``seq0+1, ...`` to the good ones, refusing to go past 2^32-1 (``ENC_EXHAUSTED``). Pass 2
    writes, for each good packet, in front of it (headroom) the outer header — version 4,
    IHL 5, TOS copied (DSCP copy per RFC 4301 §5.1.2.1, ECN copy per RFC 6040 normal mode), DF
    copied (as Linux does by default), IP ID from the SA counter, TTL 64, protocol 50, header
    checksum — then SPI, sequence number and IV (GCM: ``iv_prefix || seq``; CBC: ``ivs[i]``);
    behind it (tailroom) padding 1, 2, 3, ... (RFC 4303 §2.4), pad length and next header 4.
    With ``want_ctr`` it also builds the AES-GCM counter blocks ``salt || IV || ctr`` (RFC 4106
    §4): J0 (ctr 1) at row ``start[i]`` then ctr 2.. for the payload blocks.

    Returns (status, new_off, out_len, esp_pos, pay_len, kept, ctr, start).
    """
    n = off.shape[0]
    status = np.empty(n, np.int8)
    pay_len = np.zeros(n, np.int64)
    start = np.zeros(n, np.int64)
    seqs = np.zeros(n, np.int64)
    inner_len = np.zeros(n, np.int64)
    hl = 28 + iv_len
    seq = seq0
    kept = 0
    rows = 0
    for i in range(n):
        o = off[i]
        m = length[i]
        st = ENC_OK
        tot = np.int64(0)
        if m < 20:
            st = ENC_NOT_IPV4
        else:
            v = pool[o]
            ihl = np.int64(v & 15) * 4
            tot = (np.int64(pool[o + 2]) << 8) | np.int64(pool[o + 3])
            if (v >> 4) != 4 or ihl < 20 or tot < ihl:
                st = ENC_NOT_IPV4
            elif tot > m:
                st = ENC_TRUNCATED
            elif tot > max_inner:
                st = ENC_TOO_BIG
            elif seq >= SEQ_MAX:
                st = ENC_EXHAUSTED
        status[i] = st
        if st != ENC_OK:
            continue
        seq += 1
        seqs[i] = seq
        inner_len[i] = tot
        pl = tot + 2
        pl += (align - pl % align) % align
        pay_len[i] = pl
        start[i] = rows
        rows += (pl + 15) // 16 + 1
        kept += 1
    ctr = np.empty((rows if want_ctr else 0, 16), np.uint8)
    new_off = off - hl
    esp_pos = new_off + 20
    out_len = pay_len + (hl + icv_len)
    ident = ip_id0
    for i in range(n):
        if status[i] != ENC_OK:
            continue
        o = new_off[i]
        inner = o + hl
        pl = pay_len[i]
        total = out_len[i]
        pool[o] = 0x45
        pool[o + 1] = pool[inner + 1]
        pool[o + 2] = (total >> 8) & 0xFF
        pool[o + 3] = total & 0xFF
        pool[o + 4] = (ident >> 8) & 0xFF
        pool[o + 5] = ident & 0xFF
        ident = (ident + 1) & 0xFFFF
        pool[o + 6] = pool[inner + 6] & 0x40
        pool[o + 7] = 0
        pool[o + 8] = 64
        pool[o + 9] = 50
        pool[o + 10] = 0
        pool[o + 11] = 0
        for k in range(4):
            pool[o + 12 + k] = (src >> (24 - 8 * k)) & 0xFF
            pool[o + 16 + k] = (dst >> (24 - 8 * k)) & 0xFF
        s = np.int64(0)
        for k in range(0, 20, 2):
            s += (np.int64(pool[o + k]) << 8) | np.int64(pool[o + k + 1])
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        s = ~s & 0xFFFF
        pool[o + 10] = s >> 8
        pool[o + 11] = s & 0xFF
        q = seqs[i]
        for k in range(4):
            pool[o + 20 + k] = (spi >> (24 - 8 * k)) & 0xFF
            pool[o + 24 + k] = (q >> (24 - 8 * k)) & 0xFF
        if iv_len == 8:
            for k in range(4):
                pool[o + 28 + k] = (iv_prefix >> (24 - 8 * k)) & 0xFF
                pool[o + 32 + k] = (q >> (24 - 8 * k)) & 0xFF
        else:
            for k in range(iv_len):
                pool[o + 28 + k] = ivs[i, k]
        L = inner_len[i]
        pad = pl - 2 - L
        t = inner + L
        for k in range(pad):
            pool[t + k] = k + 1
        pool[t + pad] = pad
        pool[t + pad + 1] = IPPROTO_IPIP
        if want_ctr:
            r0 = start[i]
            for j in range((pl + 15) // 16 + 1):
                r = r0 + j
                for k in range(4):
                    ctr[r, k] = salt[k]
                for k in range(8):
                    ctr[r, 4 + k] = pool[o + 28 + k]
                c = j + 1
                ctr[r, 12] = (c >> 24) & 0xFF
                ctr[r, 13] = (c >> 16) & 0xFF
                ctr[r, 14] = (c >> 8) & 0xFF
                ctr[r, 15] = c & 0xFF
    return status, new_off, out_len, esp_pos, pay_len, kept, ctr, start


# ---------------------------------------------------------------------- AES-GCM
@njit(cache=True, nogil=True)
def gcm_counter_blocks(salt: np.ndarray, pool: np.ndarray, iv_pos: np.ndarray,
                       pay_len: np.ndarray, active: np.ndarray):
    """Counter blocks for opening: J0 for every packet, payload blocks for ``active`` ones.

    Returns (blocks, start): packet i's J0 is row ``start[i]``, payload counters follow.
    """
    n = iv_pos.shape[0]
    start = np.empty(n, np.int64)
    rows = 0
    for i in range(n):
        start[i] = rows
        rows += 1 + ((pay_len[i] + 15) // 16 if active[i] else 0)
    out = np.empty((rows, 16), np.uint8)
    for i in range(n):
        p = iv_pos[i]
        r0 = start[i]
        nb = (pay_len[i] + 15) // 16 if active[i] else 0
        for j in range(nb + 1):
            r = r0 + j
            for k in range(4):
                out[r, k] = salt[k]
            for k in range(8):
                out[r, 4 + k] = pool[p + k]
            c = j + 1
            out[r, 12] = (c >> 24) & 0xFF
            out[r, 13] = (c >> 16) & 0xFF
            out[r, 14] = (c >> 8) & 0xFF
            out[r, 15] = c & 0xFF
    return out, start


@njit(cache=True, nogil=True)
def gcm_crypt(pool: np.ndarray, esp_pos: np.ndarray, pay_len: np.ndarray, active: np.ndarray,
              ks: np.ndarray, start: np.ndarray, hkey: np.ndarray, encrypt: bool) -> np.ndarray:
    """AES-GCM (RFC 4106 ESP layout) over the ``active`` packets, in place.

    Packet layout from ``esp_pos``: SPI+seq (8 bytes, the AAD), IV (8), payload
    (``pay_len``), ICV (16). ``ks`` holds E(K, counter) rows from ``start[i]`` (J0 first).

    Encrypt: XOR the payload with keystream, folding the ciphertext into GHASH, and write the
    tag GHASH(A, C) xor E(K, J0). Decrypt: compute the tag over the ciphertext, compare it
    with the received ICV in constant time, and decrypt only if they match. Returns per
    packet whether it was sealed / verified.
    """
    n = esp_pos.shape[0]
    ok = np.zeros(n, np.bool_)
    ksf = ks.reshape(-1)
    for i in range(n):
        if not active[i]:
            continue
        e = esp_pos[i]
        p = e + 16
        m = pay_len[i]
        r0 = start[i]
        # AAD block: SPI || sequence number, zero-padded.
        yh, yl = gf_mul(_be64(pool, e), np.int64(0), hkey)
        nf = m // 16
        for j in range(nf):
            q = p + 16 * j
            kp = 16 * (r0 + 1 + j)
            xh = _be64(pool, q)
            xl = _be64(pool, q + 8)
            if encrypt:
                xh ^= _be64(ksf, kp)
                xl ^= _be64(ksf, kp + 8)
                _put_be64(pool, q, xh)
                _put_be64(pool, q + 8, xl)
            yh, yl = gf_mul(yh ^ xh, yl ^ xl, hkey)
        rem = m - 16 * nf
        if rem:
            q = p + 16 * nf
            kp = 16 * (r0 + 1 + nf)
            if encrypt:
                for k in range(rem):
                    pool[q + k] ^= ksf[kp + k]
            xh, xl = _be_partial(pool, q, rem)
            yh, yl = gf_mul(yh ^ xh, yl ^ xl, hkey)
        # Length block: bit lengths of A (64) and C.
        yh, yl = gf_mul(yh ^ np.int64(64), yl ^ (np.int64(m) * 8), hkey)
        th = yh ^ _be64(ksf, 16 * r0)
        tl = yl ^ _be64(ksf, 16 * r0 + 8)
        t = p + m
        if encrypt:
            _put_be64(pool, t, th)
            _put_be64(pool, t + 8, tl)
            ok[i] = True
        else:
            diff = (th ^ _be64(pool, t)) | (tl ^ _be64(pool, t + 8))
            if diff == 0:
                ok[i] = True
                for j in range(nf):
                    q = p + 16 * j
                    kp = 16 * (r0 + 1 + j)
                    for k in range(16):
                        pool[q + k] ^= ksf[kp + k]
                if rem:
                    q = p + 16 * nf
                    kp = 16 * (r0 + 1 + nf)
                    for k in range(rem):
                        pool[q + k] ^= ksf[kp + k]
    return ok


# ---------------------------------------------------------------------- AES-CBC
@njit(cache=True, nogil=True)
def cbc_gather_columns(pool: np.ndarray, iv_pos: np.ndarray, nblocks: np.ndarray,
                       grid: np.ndarray) -> None:
    """grid[j, i] = block j of packet i's ``IV | payload`` (j = 0 is the IV)."""
    for i in range(iv_pos.shape[0]):
        p = iv_pos[i]
        for j in range(nblocks[i] + 1):
            for k in range(16):
                grid[j, i, k] = pool[p + 16 * j + k]


@njit(cache=True, nogil=True)
def cbc_scatter_columns(pool: np.ndarray, iv_pos: np.ndarray, nblocks: np.ndarray,
                        grid: np.ndarray) -> None:
    """Inverse of :func:`cbc_gather_columns` for the payload blocks (the IV is unchanged)."""
    for i in range(iv_pos.shape[0]):
        p = iv_pos[i]
        for j in range(1, nblocks[i] + 1):
            for k in range(16):
                pool[p + 16 * j + k] = grid[j, i, k]


@njit(cache=True, nogil=True)
def cbc_unchain(pool: np.ndarray, pay_pos: np.ndarray, nblocks: np.ndarray, start: np.ndarray,
                cipher: np.ndarray, dec: np.ndarray) -> None:
    """CBC decryption's XOR step: P_j = D(C_j) xor C_{j-1}, written to the pool.

    ``cipher`` holds each packet's IV then its ciphertext blocks from row ``start[i]``;
    ``dec`` is the ECB decryption of ``cipher``.
    """
    for i in range(pay_pos.shape[0]):
        p = pay_pos[i]
        s = start[i]
        for j in range(nblocks[i]):
            for k in range(16):
                pool[p + 16 * j + k] = dec[s + 1 + j, k] ^ cipher[s + j, k]


@njit(cache=True, nogil=True)
def icv_compare(pool: np.ndarray, icv_pos: np.ndarray, tags: np.ndarray,
                active: np.ndarray) -> np.ndarray:
    """Per packet: received ICV equals ``tags[i]`` (every byte compared: constant time)."""
    n = icv_pos.shape[0]
    ok = np.zeros(n, np.bool_)
    w = tags.shape[1]
    for i in range(n):
        if not active[i]:
            continue
        p = icv_pos[i]
        diff = 0
        for k in range(w):
            diff |= pool[p + k] ^ tags[i, k]
        ok[i] = diff == 0
    return ok


# ---------------------------------------------------------------------- decapsulation
@njit(cache=True, nogil=True)
def parse_outer(pool: np.ndarray, off: np.ndarray, length: np.ndarray):
    """Outer IPv4 header checks and ESP header fields.

    Returns (code, esp_pos, esp_len, spi, seq); code is ``D_OK`` or why the packet is not a
    usable ESP packet (``D_TRUNCATED``, ``D_NOT_ESP``, ``D_FRAGMENT``: reassemble first).
    """
    n = off.shape[0]
    code = np.empty(n, np.int8)
    esp_pos = np.zeros(n, np.int64)
    esp_len = np.zeros(n, np.int64)
    spi = np.full(n, -1, np.int64)
    seq = np.zeros(n, np.int64)
    for i in range(n):
        o = off[i]
        m = length[i]
        if m < 20:
            code[i] = D_TRUNCATED
            continue
        v = pool[o]
        ihl = np.int64(v & 15) * 4
        if (v >> 4) != 4 or ihl < 20 or pool[o + 9] != 50:
            code[i] = D_NOT_ESP
            continue
        tot = (np.int64(pool[o + 2]) << 8) | np.int64(pool[o + 3])
        if tot > m or tot < ihl:
            code[i] = D_TRUNCATED
            continue
        if ((np.int64(pool[o + 6]) << 8 | np.int64(pool[o + 7])) & 0x3FFF) != 0:
            code[i] = D_FRAGMENT
            continue
        if tot - ihl < 8:
            code[i] = D_TRUNCATED
            continue
        e = o + ihl
        code[i] = D_OK
        esp_pos[i] = e
        esp_len[i] = tot - ihl
        w = _be64(pool, e)
        spi[i] = _srl(w, 32)
        seq[i] = w & 0xFFFFFFFF
    return code, esp_pos, esp_len, spi, seq


@njit(cache=True, nogil=True)
def decap_prepare(esp_len: np.ndarray, seq: np.ndarray, member: np.ndarray, code: np.ndarray,
                  iv_len: int, icv_len: int, align: int, window: np.ndarray) -> np.ndarray:
    """For the packets of one SA (``member``): length checks, then the anti-replay *check*.

    Sets ``code`` to ``D_TRUNCATED`` / ``D_BAD_LENGTH`` / ``D_REPLAYED`` / ``D_OUTSIDE`` or
    leaves ``D_OK`` (go on to verify); returns the payload lengths. The window is not changed.
    """
    n = esp_len.shape[0]
    pay_len = np.zeros(n, np.int64)
    min_pay = 16 if align == 16 else 4  # one block, or pad length + next header aligned
    top = window[0]
    bm = window[1]
    for i in range(n):
        if not member[i]:
            continue
        pl = esp_len[i] - 8 - iv_len - icv_len
        if pl < min_pay:
            code[i] = D_TRUNCATED
            continue
        if pl % align:
            code[i] = D_BAD_LENGTH
            continue
        pay_len[i] = pl
        c = _replay_code(seq[i], top, bm)
        code[i] = D_OK if c == REPLAY_OK else (D_REPLAYED if c == REPLAY_DUP else D_OUTSIDE)
    return pay_len


@njit(cache=True, nogil=True)
def decap_update(seq: np.ndarray, member: np.ndarray, code: np.ndarray, icv_ok: np.ndarray,
                 window: np.ndarray) -> None:
    """Anti-replay *update* for one SA's packets, in batch order (see :func:`replay_update`).

    Packets with ``code`` ``D_OK`` that verified are re-checked against the window as earlier
    packets left it and marked received (or become ``D_REPLAYED``/``D_OUTSIDE``); those that
    did not verify become ``D_BAD_ICV`` (or a replay reason, if by now they are one); those
    rejected by the first check get their reason restated against the moved window.
    """
    top = window[0]
    bm = window[1]
    for i in range(seq.shape[0]):
        if not member[i]:
            continue
        ci = code[i]
        if ci != D_OK and ci != D_REPLAYED and ci != D_OUTSIDE:
            continue  # length errors: never reached the window
        s = seq[i]
        c = _replay_code(s, top, bm)
        if ci == D_OK and icv_ok[i] and c == REPLAY_OK:
            top, bm = _replay_mark(s, top, bm)
            continue
        if c == REPLAY_DUP:
            code[i] = D_REPLAYED
        elif c == REPLAY_OLD:
            code[i] = D_OUTSIDE
        else:
            code[i] = D_BAD_ICV
    window[0] = top
    window[1] = bm


@njit(cache=True, nogil=True)
def check_trailer(pool: np.ndarray, esp_pos: np.ndarray, pay_len: np.ndarray,
                  member: np.ndarray, code: np.ndarray, iv_len: int,
                  inner_off: np.ndarray, inner_len: np.ndarray) -> None:
    """Decrypted trailer checks for accepted packets of one SA: pad length fits, pad bytes
    are 1, 2, 3, ..., next header is IPv4 (59: dummy). Fills the inner packet columns."""
    for i in range(esp_pos.shape[0]):
        if not member[i] or code[i] != D_OK:
            continue
        p = esp_pos[i] + 8 + iv_len
        m = pay_len[i]
        pad = np.int64(pool[p + m - 2])
        nh = pool[p + m - 1]
        if pad + 2 > m:
            code[i] = D_BAD_PAD
            continue
        L = m - 2 - pad
        bad = 0
        for k in range(pad):
            bad |= pool[p + L + k] ^ (k + 1)
        if bad != 0:
            code[i] = D_BAD_PAD
        elif nh == IPPROTO_NONE:
            code[i] = D_DUMMY
        elif nh != IPPROTO_IPIP:
            code[i] = D_BAD_NH
        else:
            inner_off[i] = p
            inner_len[i] = L


# ---------------------------------------------------------------------- anti-replay window
@njit(cache=True, nogil=True)
def _replay_code(s: np.int64, top: np.int64, bitmap: np.int64) -> int:
    """RFC 4303 §3.4.3 window check; ``bitmap`` bit k says ``top - k`` was received."""
    if s == 0:
        return REPLAY_OLD
    if s > top:
        return REPLAY_OK
    d = top - s
    if d >= 64:
        return REPLAY_OLD
    if (bitmap >> d) & 1:
        return REPLAY_DUP
    return REPLAY_OK


@njit(cache=True, nogil=True)
def _replay_mark(s: np.int64, top: np.int64, bitmap: np.int64) -> tuple[np.int64, np.int64]:
    """Window after receiving new sequence number ``s``: slide right or set its bit."""
    if s > top:
        sh = s - top
        bitmap = ((bitmap << sh) | 1) if sh < 64 else np.int64(1)
        return s, bitmap
    return top, bitmap | (np.int64(1) << (top - s))


@njit(cache=True, nogil=True)
def replay_check(seq: np.ndarray, window: np.ndarray, codes: np.ndarray) -> None:
    """Check each sequence number against the window ``[top, bitmap]`` (not updated)."""
    top = window[0]
    bm = window[1]
    for i in range(seq.shape[0]):
        codes[i] = _replay_code(seq[i], top, bm)


@njit(cache=True, nogil=True)
def replay_update(seq: np.ndarray, icv_ok: np.ndarray, codes: np.ndarray,
                  window: np.ndarray) -> None:
    """Update the window with the packets whose ICV verified, in batch order.

    Every packet is re-checked against the window as earlier packets of the batch left it, so
    the result (``codes``, updated in place) equals processing the batch one packet at a time:
    a duplicate of an earlier packet of the same batch is ``REPLAY_DUP``, a packet that passed
    the first check but failed its ICV is ``REPLAY_BAD_ICV`` unless it is by now a replay, and
    the reason of a rejected packet may change from duplicate to too old as the window moves
    (the window only moves forward, so a rejected packet never becomes acceptable).
    """
    top = window[0]
    bm = window[1]
    for i in range(seq.shape[0]):
        s = seq[i]
        c = _replay_code(s, top, bm)
        if codes[i] == REPLAY_OK and icv_ok[i] and c == REPLAY_OK:
            top, bm = _replay_mark(s, top, bm)
        elif codes[i] == REPLAY_OK and c == REPLAY_OK:
            codes[i] = REPLAY_BAD_ICV
        else:
            codes[i] = c
    window[0] = top
    window[1] = bm
