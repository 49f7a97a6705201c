"""Batched ESP cryptography: AES-128-GCM and AES-128-CBC + HMAC-SHA1-96 over many packets.

Calling OpenSSL once per packet costs more in Python call overhead than the cipher work for
small packets (a per-packet ``AESGCM.encrypt`` tops out near 0.4 Mpps per core), so:

* GCM: the CTR keystream of the whole batch comes from ONE ECB call over all counter blocks
  (``J0`` and ``J0+1..`` of every packet, built by a kernel); a numba kernel XORs it into the
  payloads and computes GHASH (PCLMULQDQ, or 64 KiB byte tables; see :mod:`.kernels`).
* CBC decryption: one ECB decryption over every ciphertext block of the batch, then XOR with
  the previous ciphertext block (kernel).
* CBC encryption is serial within a packet but parallel across packets: one in-place ECB call
  per block *column* (block j of every packet still that long, packets sorted by length and
  laid out column-major), so ``max blocks`` calls per batch; a few long packets left alone
  for many columns are finished with one chained CBC context instead.
* HMAC-SHA1: one ``hashlib`` update per packet on copies of the precomputed inner/outer pad
  states (``hmac.new`` would rehash the key pads for every packet). This per-packet loop is
  what bounds CBC-SHA1 throughput.

Everything here works on absolute pool positions and leaves packet layout to :mod:`.esp`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from routebricks.ipsec import kernels as _k
from routebricks.packet import kernels as _pk


def ghash_table(h: bytes) -> np.ndarray:
    """The (16, 256, 2) int64 table of products ``(b at byte i) * H`` in GF(2^128).

    GCM's bit order: bit j (MSB first) of byte i is the coefficient of ``x^(8i+j)``;
    multiplying by ``x`` is a right shift of the 128-bit big-endian value, reduced by
    ``R = 0xE1 || 0^120`` (NIST SP 800-38D §6.3).
    """
    v = int.from_bytes(h, "big")
    r = 0xE1 << 120
    rows = []
    for _ in range(128):  # rows[k] = H * x^k
        rows.append((v >> 64, v & 0xFFFFFFFFFFFFFFFF))
        v = (v >> 1) ^ (r if v & 1 else 0)
    powers = np.array(rows, np.uint64).reshape(16, 8, 2)
    bits = ((np.arange(256)[:, None] >> (7 - np.arange(8))[None, :]) & 1).astype(bool)
    picked = np.where(bits[None, :, :, None], powers[:, None, :, :], np.uint64(0))
    return np.ascontiguousarray(np.bitwise_xor.reduce(picked, axis=2)).view(np.int64)


def ghash_key(h: bytes, use_clmul: bool | None = None) -> np.ndarray:
    """The GHASH hash-key argument of the kernels for hash key ``h``: the byte table, or
    ``[H_hi, H_lo, H_hi ^ H_lo]`` for the carry-less multiply (default: if the CPU has it)."""
    if use_clmul is None:
        use_clmul = _k.HAVE_CLMUL
    if not use_clmul:
        return ghash_table(h)
    hi, lo = np.frombuffer(h, ">i8").astype(np.int64)
    return np.array([hi, lo, hi ^ lo], np.int64)


@dataclass(eq=False, repr=False)
class GcmContext:
    """Per-SA AES-GCM state: ECB encryptor for keystream, GHASH key, salt."""

    ecb: Any
    hkey: np.ndarray
    salt: np.ndarray
    aead: AESGCM  # per-packet reference path

    def __repr__(self) -> str:  # never show key-derived material
        return "<GcmContext>"


@dataclass(eq=False, repr=False)
class CbcContext:
    """Per-SA AES-CBC + HMAC-SHA1 state."""

    ecb_enc: Any
    ecb_dec: Any
    hmac_inner: Any  # sha1 state after absorbing key xor ipad
    hmac_outer: Any  # sha1 state after absorbing key xor opad
    key: bytes  # for the reference path's Cipher(CBC) objects
    auth_key: bytes

    def __repr__(self) -> str:
        return "<CbcContext>"


def make_context(alg: str, key: bytes, auth_key: bytes | None) -> GcmContext | CbcContext:
    """Cipher objects and key-derived tables for one SA (built once, on first use)."""
    from routebricks.ipsec.sa import ALG_CBC, ALG_GCM

    if alg == ALG_GCM:
        k, salt = key[:16], key[16:20]
        ecb = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
        h = ecb.update(bytes(16))
        return GcmContext(ecb, ghash_key(h), np.frombuffer(salt, np.uint8).copy(), AESGCM(k))
    if alg == ALG_CBC:
        assert auth_key is not None
        c = Cipher(algorithms.AES(key), modes.ECB())
        ak = auth_key.ljust(64, b"\0")  # RFC 2104: keys up to the block size are zero-padded
        inner = hashlib.sha1(bytes(b ^ 0x36 for b in ak))
        outer = hashlib.sha1(bytes(b ^ 0x5C for b in ak))
        return CbcContext(c.encryptor(), c.decryptor(), inner, outer, key, auth_key)
    raise ValueError(f"unknown algorithm {alg!r}")


def ecb(ctx: Any, data: np.ndarray) -> np.ndarray:
    """Run an ECB context over a (n, 16) uint8 array in one call; returns (n, 16)."""
    n = data.shape[0]
    out = np.empty(n * 16 + 15, np.uint8)  # update_into wants block_size - 1 spare bytes
    if n:
        ctx.update_into(data, out)
    return out[: n * 16].reshape(n, 16)


def _block_starts(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """First row of each packet when packet i takes ``rows[i]`` rows."""
    start = np.zeros(rows.shape[0], np.int64)
    if rows.shape[0]:
        np.cumsum(rows[:-1], out=start[1:])
    return start, int(rows.sum())


# ---------------------------------------------------------------------- GCM
def gcm_seal_batch(ctx: GcmContext, pool: np.ndarray, esp_pos: np.ndarray,
                   pay_len: np.ndarray, active: np.ndarray, ctr: np.ndarray,
                   start: np.ndarray) -> None:
    """Encrypt and tag in place the ``active`` packets laid out by ``kernels.encap_layout``,
    whose counter blocks ``ctr`` (rows from ``start[i]``) it also built."""
    ks = ecb(ctx.ecb, ctr)  # the whole batch's keystream in one OpenSSL call
    _k.gcm_crypt(pool, esp_pos, pay_len, active, ks, start, ctx.hkey, True)


def gcm_open_batch(ctx: GcmContext, pool: np.ndarray, esp_pos: np.ndarray,
                   pay_len: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Verify the ICV of the ``active`` packets and decrypt in place those that verify.

    Layout from ``esp_pos``: SPI+seq (8), IV (8), payload (``pay_len``), ICV (16). Returns the
    verified mask.
    """
    ctr, start = _k.gcm_counter_blocks(ctx.salt, pool, esp_pos + 8, pay_len, active)
    ks = ecb(ctx.ecb, ctr)
    return _k.gcm_crypt(pool, esp_pos, pay_len, active, ks, start, ctx.hkey, False)


# ---------------------------------------------------------------------- CBC
def cbc_encrypt_batch(ctx: CbcContext, pool: np.ndarray, iv_pos: np.ndarray,
                      pay_len: np.ndarray) -> None:
    """CBC-encrypt in place each payload (``pay_len`` bytes, a multiple of 16) that follows its
    16-byte IV at ``iv_pos``.

    Blocks are laid out column-major (``grid[j, i]`` = block j of packet i, packets sorted
    longest first), so block column j of the packets still that long is one contiguous run:
    one XOR with column j-1 and one in-place ECB call per column. When few (long) packets
    remain for many columns, their tails are finished with one CBC call per packet instead.
    """
    n = iv_pos.shape[0]
    if n == 0:
        return
    nblocks = pay_len // 16
    order = np.argsort(-nblocks, kind="stable")
    nb = nblocks[order]
    src = iv_pos[order]
    maxb = int(nb[0])
    grid = np.empty((maxb + 2, n, 16), np.uint8)  # + a spare row for update_into's slack
    _k.cbc_gather_columns(pool, src, nb, grid)
    words = grid.view(np.uint64).reshape(maxb + 2, n, 2)
    mv = memoryview(grid.reshape(-1))
    # still[j] = packets with at least j + 1 payload blocks (non-increasing).
    still = np.searchsorted(-nb, -np.arange(1, maxb + 1), side="right").tolist()
    update_into = ctx.ecb_enc.update_into
    for j in range(1, maxb + 1):
        k = still[j - 1]
        if 2 * k < maxb - j + 1:  # a call per remaining packet beats a call per column
            _cbc_tail(ctx, grid, nb, j, k)
            break
        col = words[j, :k]
        np.bitwise_xor(col, words[j - 1, :k], out=col)  # P_j xor C_{j-1} (C_0 = IV)
        a = j * n * 16
        update_into(mv[a : a + 16 * k], mv[a : a + 16 * k + 15])
    _k.cbc_scatter_columns(pool, src, nb, grid)


def _cbc_tail(ctx: CbcContext, grid: np.ndarray, nb: np.ndarray, j: int, k: int) -> None:
    """Finish blocks j.. of packets 0..k-1 of ``grid`` with one CBC context for all of them.

    A CBC context chains from its last output block ``s``; feeding it ``P_j xor C_{j-1} xor
    s`` as the first block of a packet makes it encrypt that packet as if its IV were
    ``C_{j-1}``, so no cipher object has to be built per packet.
    """
    cbc = Cipher(algorithms.AES(ctx.key), modes.CBC(bytes(16))).encryptor()
    state = 0
    for i in range(k):
        blocks = grid[j : int(nb[i]) + 1, i]
        data = blocks.tobytes()
        first = int.from_bytes(data[:16], "big") ^ int.from_bytes(grid[j - 1, i], "big") ^ state
        out = cbc.update(first.to_bytes(16, "big") + data[16:])
        blocks[...] = np.frombuffer(out, np.uint8).reshape(blocks.shape)
        state = int.from_bytes(out[-16:], "big")


def cbc_decrypt_batch(ctx: CbcContext, pool: np.ndarray, iv_pos: np.ndarray,
                      pay_len: np.ndarray) -> None:
    """CBC-decrypt in place the payloads following their IVs at ``iv_pos``: one ECB call over
    every block of the batch, then XOR with the previous ciphertext block."""
    if iv_pos.shape[0] == 0:
        return
    nblocks = pay_len // 16
    start, total = _block_starts(nblocks + 1)
    cipher = np.empty((total, 16), np.uint8)
    _pk.repack(pool, iv_pos, (nblocks + 1) * 16, cipher.reshape(-1), start * 16)
    dec = ecb(ctx.ecb_dec, cipher)
    _k.cbc_unchain(pool, iv_pos + 16, nblocks, start, cipher, dec)


def hmac_sha1_96_batch(ctx: CbcContext, pool: np.ndarray, pos: np.ndarray, nbytes: np.ndarray,
                       active: np.ndarray | None = None) -> np.ndarray:
    """(n, 12) HMAC-SHA1-96 of ``nbytes[i]`` bytes at ``pos[i]`` (zeros where not active)."""
    n = pos.shape[0]
    tags = bytearray(n * 12)
    mv = memoryview(pool)
    inner0, outer0 = ctx.hmac_inner, ctx.hmac_outer
    which = range(n) if active is None else np.flatnonzero(active).tolist()
    pl = pos.tolist()
    nl = nbytes.tolist()
    for i in which:
        p = pl[i]
        h = inner0.copy()
        h.update(mv[p : p + nl[i]])
        o = outer0.copy()
        o.update(h.digest())
        tags[12 * i : 12 * i + 12] = o.digest()[:12]
    return np.frombuffer(tags, np.uint8).reshape(n, 12)
