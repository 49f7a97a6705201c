"""Tests for routebricks.ipsec: SAs and their file format, batched ESP tunnel mode against the
per-packet reference path, the anti-replay window, and every drop reason."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import pickle
import struct

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routebricks.errors import ConfigError
from routebricks.ipsec import (
    ALG_CBC,
    ALG_GCM,
    SEQ_MAX,
    SAFileError,
    SATable,
    SecurityAssociation,
    decapsulate,
    decapsulate_reference,
    encapsulate,
    encapsulate_reference,
    format_sa_file,
    load_sa_file,
    parse_sa_line,
    parse_sa_text,
)
from routebricks.ipsec import crypto as ipsec_crypto
from routebricks.ipsec import kernels as ipsec_kernels
from routebricks.packet.batch import PacketBatch
from routebricks.packet.checksum import inet_checksum

GCM_KEY = bytes.fromhex("4c80cdefbb5d10da906ac73c3613a634" "2e443b68")  # key || salt
CBC_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
AUTH_KEY = bytes.fromhex("0102030405060708090a0b0c0d0e0f1011121314")
TUN_SRC, TUN_DST = "192.0.2.1", "192.0.2.2"
ALGS = (ALG_GCM, ALG_CBC)


def make_sa(alg: str, spi: int = 0x1001, **kw: object) -> SecurityAssociation:
    if alg == ALG_GCM:
        return SecurityAssociation(spi, alg, GCM_KEY, TUN_SRC, TUN_DST, **kw)  # type: ignore[arg-type]
    return SecurityAssociation(spi, alg, CBC_KEY, TUN_SRC, TUN_DST, auth_key=AUTH_KEY,
                               **kw)  # type: ignore[arg-type]


def inner_packet(i: int, payload: int, *, df: bool = True, tos: int = 0, proto: int = 17,
                 dst: int = 0x0A010002) -> bytes:
    """A valid IPv4 packet with ``payload`` bytes after the header."""
    tot = 20 + payload
    h = bytearray(struct.pack("!BBHHHBBHII", 0x45, tos, tot, i & 0xFFFF, 0x4000 if df else 0,
                              64, proto, 0, 0x0A000001, dst))
    h[10:12] = struct.pack("!H", inet_checksum(bytes(h)))
    return bytes(h) + bytes((i * 7 + k) & 0xFF for k in range(payload))


def ip_header(total: int, proto: int = 50, frag: int = 0, src: str = TUN_SRC,
              dst: str = TUN_DST) -> bytes:
    h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, frag, 64, proto, 0,
                              bytes(map(int, src.split("."))), bytes(map(int, dst.split(".")))))
    h[10:12] = struct.pack("!H", inet_checksum(bytes(h)))
    return bytes(h)


def craft_esp(alg: str, seq: int, plain: bytes, spi: int = 0x1001, iv: bytes | None = None,
              tamper: bool = False) -> bytes:
    """An outer packet sealing arbitrary ESP plaintext (payload + trailer), built
    independently of the library with cryptography's AESGCM / CBC and hmac."""
    hdr = struct.pack("!II", spi, seq)
    if alg == ALG_GCM:
        iv = iv or struct.pack("!Q", seq)
        body = hdr + iv + AESGCM(GCM_KEY[:16]).encrypt(GCM_KEY[16:] + iv, plain, hdr)
    else:
        iv = iv or os.urandom(16)
        enc = Cipher(algorithms.AES(CBC_KEY), modes.CBC(iv)).encryptor()
        signed = hdr + iv + enc.update(plain) + enc.finalize()
        body = signed + hmac.new(AUTH_KEY, signed, hashlib.sha1).digest()[:12]
    if tamper:
        body = body[:-1] + bytes([body[-1] ^ 0x80])
    return ip_header(20 + len(body)) + body


def trailer(inner: bytes, align: int, nh: int = 4, pad_bytes: bytes | None = None) -> bytes:
    pad = -(len(inner) + 2) % align
    pb = bytes(range(1, pad + 1)) if pad_bytes is None else pad_bytes
    return inner + pb + bytes([len(pb), nh])


def encap_list(pkts: list[bytes], sa: SecurityAssociation, **kw: object) -> list[bytes]:
    out, drops = encapsulate(PacketBatch.from_bytes(pkts), sa, **kw)  # type: ignore[arg-type]
    assert drops == {}
    return out.to_list()


def fresh_rx(sa: SecurityAssociation) -> SecurityAssociation:
    rx = sa.copy()
    rx.window[:] = 0
    return rx


def decap_list(pkts: list[bytes], sa: object) -> tuple[list[bytes], dict[str, int]]:
    out, drops = decapsulate(PacketBatch.from_bytes(pkts), sa)  # type: ignore[arg-type]
    return out.to_list(), drops


def both_decaps(pkts: list[bytes], rx: SecurityAssociation) -> tuple[list[bytes], dict[str, int]]:
    """Run batched and reference decapsulation on twin SAs; they must agree exactly."""
    twin = rx.copy()
    got, drops = decap_list(pkts, rx)
    ref, ref_drops = decapsulate_reference(PacketBatch.from_bytes(pkts), twin)
    assert got == ref.to_list()
    assert drops == ref_drops
    assert rx.replay_top == twin.replay_top and rx.replay_bitmap == twin.replay_bitmap
    return got, drops


# ---------------------------------------------------------------------- SA object
def test_sa_validation() -> None:
    with pytest.raises(ValueError, match="20-byte key"):
        SecurityAssociation(0x1001, ALG_GCM, GCM_KEY[:16], TUN_SRC, TUN_DST)
    with pytest.raises(ValueError, match="auth key"):
        SecurityAssociation(0x1001, ALG_CBC, CBC_KEY, TUN_SRC, TUN_DST)
    with pytest.raises(ValueError, match="takes no auth key"):
        SecurityAssociation(0x1001, ALG_GCM, GCM_KEY, TUN_SRC, TUN_DST, auth_key=AUTH_KEY)
    with pytest.raises(ValueError, match="unknown algorithm"):
        SecurityAssociation(0x1001, "des", CBC_KEY, TUN_SRC, TUN_DST)
    with pytest.raises(ValueError, match="SPI"):
        SecurityAssociation(0, ALG_GCM, GCM_KEY, TUN_SRC, TUN_DST)
    with pytest.raises(ValueError, match="direction"):
        make_sa(ALG_GCM, direction="both")
    sa = make_sa(ALG_GCM, selectors=["10.1.0.0/16"])
    assert sa.src == 0xC0000201 and sa.dst == 0xC0000202
    assert sa.selectors == ((0x0A010000, 16),)


@pytest.mark.parametrize("alg", ALGS)
def test_keys_never_shown(alg: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sa = make_sa(alg, selectors=["10.1.0.0/16"], direction="out")
    secrets = [GCM_KEY.hex(), GCM_KEY[:16].hex(), CBC_KEY.hex(), AUTH_KEY.hex()]
    encapsulate(PacketBatch.from_bytes([inner_packet(1, 30)]), sa)
    shown = [repr(sa), str(sa), sa.redacted(), sa.format_line(include_keys=False),
             repr(sa.ctx), repr(SATable([sa])), format_sa_file([sa], include_keys=False),
             f"{sa}", str(sa.counters), caplog.text]
    for text in shown:
        for s in secrets:
            assert s not in text.lower()
    assert "key=<redacted>" in sa.redacted()
    assert "spi=0x1001" in repr(sa)
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(sa)


def test_copy_is_independent() -> None:
    sa = make_sa(ALG_GCM, seq=5)
    c = sa.copy()
    assert c.iv_prefix == sa.iv_prefix and c.seq == 5
    encapsulate(PacketBatch.from_bytes([inner_packet(1, 10)]), c)
    assert c.seq == 6 and sa.seq == 5
    c.window[0] = 9
    assert sa.replay_top == 0


# ---------------------------------------------------------------------- SA file format
GOOD_FILE = f"""\
# routebricks SAs
spi=0x1001 alg=aes128gcm key=0x{GCM_KEY.hex()} src=192.0.2.1 dst=192.0.2.2 dir=out \
selector=10.1.0.0/16,10.2.0.0/24   # trailing comment

spi=4098 alg=aes128cbc-sha1 key=0x{CBC_KEY.hex()} authkey=0x{AUTH_KEY.hex()} src=192.0.2.2 \
dst=192.0.2.1 dir=in
  spi=0x2001 alg=AES128GCM key=0X{GCM_KEY.hex().upper()} dst=198.51.100.2 src=198.51.100.1
"""


def test_parse_good_file(tmp_path: object) -> None:
    sas = parse_sa_text(GOOD_FILE, "sa.conf")
    assert [s.spi for s in sas] == [0x1001, 4098, 0x2001]
    a, b, c = sas
    assert a.alg == ALG_GCM and a.direction == "out"
    assert a.selectors == ((0x0A010000, 16), (0x0A020000, 24))
    assert b.alg == ALG_CBC and b.direction == "in" and b.src == 0xC0000202
    assert c.direction is None and c.alg == ALG_GCM
    table = SATable(sas)
    assert table.get(4098) is b and table.get(0x2001) is c and table.get(0x1001) is None
    assert table.outbound == [a, c]
    # Round trip through the writer (keys only on request).
    again = parse_sa_text(format_sa_file(sas, include_keys=True))
    assert [s.format_line(include_keys=True) for s in again] == [
        s.format_line(include_keys=True) for s in sas]
    # A round-tripped SA really has the same keys: it decrypts the original's packets.
    wire = encap_list([inner_packet(3, 40)], a)
    rx = fresh_rx(again[0])
    rx.direction = "in"  # the file's SA is outbound-only; its peer holds the inbound twin
    got, _ = decap_list(wire, rx)
    assert got == [inner_packet(3, 40)]


def test_load_sa_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "sa.conf"
    p.write_text(GOOD_FILE)
    assert len(load_sa_file(p)) == 3
    assert len(SATable.from_file(p).inbound) == 2
    with pytest.raises(SAFileError, match="cannot read"):
        load_sa_file(tmp_path / "missing.conf")


BASE = f"spi=0x1001 alg=aes128gcm key=0x{GCM_KEY.hex()} src=192.0.2.1 dst=192.0.2.2"


@pytest.mark.parametrize(
    ("line", "message", "column"),
    [
        (BASE + " color=blue", "unknown field 'color'", len(BASE) + 2),
        (BASE.replace("spi=0x1001", "spi=0x10"), "out of range", 1),
        (BASE.replace("spi=0x1001", "spi=abc"), "bad spi", 1),
        (BASE.replace("alg=aes128gcm", "alg=rot13"), "unknown alg", 12),
        (BASE.replace(GCM_KEY.hex(), GCM_KEY.hex()[:32]), "key is 16 bytes, aes128gcm needs 20",
         26),
        (BASE.replace(GCM_KEY.hex(), GCM_KEY.hex()[:-1]), "even number of hex digits", 26),
        (BASE + f" authkey=0x{AUTH_KEY.hex()}", "takes no authkey", len(BASE) + 2),
        (BASE.replace("aes128gcm", "aes128cbc-sha1").replace(GCM_KEY.hex(), CBC_KEY.hex()),
         "needs authkey", 1),
        (BASE.replace("src=192.0.2.1", "src=192.0.2.300"), "bad src address", None),
        (BASE + " dir=sideways", "bad dir", None),
        (BASE + " selector=10.1.0.1/16", "bad selector '10.1.0.1/16'", None),
        (BASE + " spi=0x1002", "field 'spi' given twice", None),
        (BASE.replace(" dst=192.0.2.2", ""), "missing field(s): dst", 1),
        (BASE + " " + GCM_KEY.hex(), "expected name=value", len(BASE) + 2),
    ],
)
def test_parse_errors_name_file_line_and_hide_keys(line: str, message: str,
                                                   column: int | None) -> None:
    text = "# header\n\n" + line + "\n"
    with pytest.raises(SAFileError) as ei:
        parse_sa_text(text, "tunnels.sa")
    err = ei.value
    assert isinstance(err, ConfigError)
    assert message in str(err)
    assert str(err).startswith("tunnels.sa:3:")
    assert err.pos is not None and err.pos.line == 3
    if column is not None:
        assert err.pos.column == column
    for secret in (GCM_KEY.hex(), GCM_KEY.hex()[:32], GCM_KEY.hex()[:-1], AUTH_KEY.hex(),
                   CBC_KEY.hex()):
        assert secret not in str(err)
        assert err.__cause__ is None or secret not in str(err.__cause__)


def test_parse_duplicate_inbound_spi() -> None:
    text = BASE + "\n" + BASE.replace("192.0.2.1", "192.0.2.9") + "\n"
    with pytest.raises(SAFileError, match=r"f:2:1: spi 0x1001 already used .* line 1"):
        parse_sa_text(text, "f")
    # Two outbound SAs may share nothing with the inbound table: allowed.
    ok = parse_sa_text(BASE + " dir=out\n" + BASE + " dir=in\n")
    assert len(ok) == 2
    with pytest.raises(ValueError, match="duplicate inbound SPI"):
        SATable([make_sa(ALG_GCM), make_sa(ALG_GCM)])


def test_parse_blank_and_comment_lines() -> None:
    assert parse_sa_line("   # nothing here") is None
    assert parse_sa_line("") is None
    assert parse_sa_text("# only comments\n\n") == []


def test_selectors_first_match() -> None:
    a = make_sa(ALG_GCM, spi=0x1001, selectors=["10.1.0.0/16"], direction="out")
    b = make_sa(ALG_GCM, spi=0x1002, selectors=["10.0.0.0/8", "192.168.1.0/24"],
                direction="out")
    c = make_sa(ALG_GCM, spi=0x1003, direction="out")  # no selectors: matches nothing
    t = SATable([a, b, c])
    dst = np.array([0x0A010203, 0x0A020304, 0xC0A80105, 0xC0A80205, 0x0B000000], np.uint32)
    assert t.select(dst).tolist() == [0, 1, 1, -1, -1]
    assert a.matches(dst).tolist() == [True, False, False, False, False]
    assert make_sa(ALG_GCM, selectors=["0.0.0.0/0"]).matches(dst).all()


# ---------------------------------------------------------------------- GHASH
def _gf_mul_reference(x: int, y: int) -> int:
    """NIST SP 800-38D algorithm 1, bit by bit."""
    r = 0xE1 << 120
    z, v = 0, y
    for i in range(128):
        if (x >> (127 - i)) & 1:
            z ^= v
        v = (v >> 1) ^ (r if v & 1 else 0)
    return z


def _s64(x: int) -> int:
    return x - (1 << 64) if x >= 1 << 63 else x


@pytest.mark.parametrize("use_clmul", [False, True])
def test_gf_multiply_matches_spec(use_clmul: bool) -> None:
    if use_clmul and not ipsec_kernels.HAVE_CLMUL:
        pytest.skip("CPU (or numba target) without PCLMULQDQ")
    rng = np.random.default_rng(1)
    for _ in range(50):
        h = rng.bytes(16)
        x = int.from_bytes(rng.bytes(16), "big")
        key = ipsec_crypto.ghash_key(h, use_clmul)
        zh, zl = ipsec_kernels.gf_mul_one(_s64(x >> 64), _s64(x & (2**64 - 1)), key)
        got = ((zh & (2**64 - 1)) << 64) | (zl & (2**64 - 1))
        assert got == _gf_mul_reference(x, int.from_bytes(h, "big"))


def test_table_and_clmul_paths_agree() -> None:
    """Force the portable table path on one SA and compare whole packets."""
    if not ipsec_kernels.HAVE_CLMUL:
        pytest.skip("only the table path exists on this CPU")
    pkts = [inner_packet(i, n) for i, n in enumerate([0, 1, 15, 16, 17, 100, 1400])]
    a = make_sa(ALG_GCM)
    b = a.copy()
    h = b.ctx.ecb.update(bytes(16))
    b.ctx.hkey = ipsec_crypto.ghash_key(h, use_clmul=False)
    assert b.ctx.hkey.shape == (16, 256, 2)
    assert encap_list(pkts, a) == encap_list(pkts, b)


# ---------------------------------------------------------------------- batched vs reference
SIZES = [0, 1, 2, 3, 4, 13, 14, 15, 16, 17, 30, 44, 100, 555, 1480]


@pytest.mark.parametrize("alg", ALGS)
def test_batched_encap_is_byte_identical_to_reference(alg: str) -> None:
    pkts = [inner_packet(i, n, df=i % 2 == 0, tos=i * 4) for i, n in enumerate(SIZES)]
    sa = make_sa(alg, seq=41)
    sa.ip_id = 65530  # wraps inside the batch
    twin = sa.copy()
    ivs = np.frombuffer(os.urandom(16 * len(pkts)), np.uint8).reshape(-1, 16)
    out, drops = encapsulate(PacketBatch.from_bytes(pkts), sa, ivs=ivs)
    ref, ref_drops = encapsulate_reference(PacketBatch.from_bytes(pkts), twin, ivs=ivs)
    assert drops == ref_drops == {}
    assert out.to_list() == ref.to_list()
    assert (sa.seq, sa.ip_id) == (twin.seq, twin.ip_id) == (41 + len(pkts), 65530 + 15 - 65536)
    assert sa.counters == twin.counters
    # ...and both decapsulate to the inputs, with equal windows.
    got, d = both_decaps(out.to_list(), fresh_rx(sa))
    assert got == pkts and d == {}


@pytest.mark.parametrize("shape", ["short", "mixed", "long"])
def test_cbc_column_and_tail_paths(shape: str) -> None:
    """CBC encryption runs block columns across packets, and finishes a few long packets
    with one chained context; every mix must equal per-packet CBC."""
    sizes = {"short": [26] * 300, "mixed": [26] * 200 + [1480] * 3 + [556] * 20,
             "long": [1480, 7, 1000]}[shape]
    pkts = [inner_packet(i, n) for i, n in enumerate(sizes)]
    sa = make_sa(ALG_CBC)
    twin = sa.copy()
    ivs = np.frombuffer(os.urandom(16 * len(pkts)), np.uint8).reshape(-1, 16)
    out, _ = encapsulate(PacketBatch.from_bytes(pkts), sa, ivs=ivs)
    ref, _ = encapsulate_reference(PacketBatch.from_bytes(pkts), twin, ivs=ivs)
    assert out.to_list() == ref.to_list()


@pytest.mark.parametrize("alg", ALGS)
def test_outer_header_and_trailer_layout(alg: str) -> None:
    sa = make_sa(alg)
    sa.ip_id = 7
    p = sa.params
    pkts = [inner_packet(1, 33, df=True, tos=0xB8), inner_packet(2, 40, df=False, tos=0x03)]
    wire = encap_list(pkts, sa)
    for k, (w, inner) in enumerate(zip(wire, pkts, strict=True)):
        assert w[0] == 0x45
        assert w[1] == inner[1]  # TOS copied
        assert int.from_bytes(w[2:4], "big") == len(w)
        assert int.from_bytes(w[4:6], "big") == 7 + k  # IP ID counter
        assert w[6] & 0x40 == inner[6] & 0x40 and w[6] & 0xBF == 0 and w[7] == 0  # DF copied
        assert w[8] == 64 and w[9] == 50
        assert inet_checksum(w[:20]) == 0
        assert w[12:16] == bytes([192, 0, 2, 1]) and w[16:20] == bytes([192, 0, 2, 2])
        assert int.from_bytes(w[20:24], "big") == 0x1001
        assert int.from_bytes(w[24:28], "big") == k + 1
        pay = len(w) - 28 - p.iv_len - p.icv_len
        assert pay % p.align == 0 and pay >= len(inner) + 2
        if alg == ALG_GCM:  # explicit IV = iv_prefix || seq
            assert w[28:36] == struct.pack("!II", sa.iv_prefix, k + 1)
    # Decrypt independently to see the padding: 1, 2, 3, ..., pad length, next header 4.
    if alg == ALG_GCM:
        w = wire[0]
        plain = AESGCM(GCM_KEY[:16]).decrypt(GCM_KEY[16:] + w[28:36], w[36:], w[20:28])
    else:
        w = wire[0]
        dec = Cipher(algorithms.AES(CBC_KEY), modes.CBC(w[28:44])).decryptor()
        plain = dec.update(w[44:-12]) + dec.finalize()
    pad = plain[-2]
    assert plain[-1] == 4
    assert plain[: len(pkts[0])] == pkts[0]
    assert plain[len(pkts[0]) : -2] == bytes(range(1, pad + 1))


def test_gcm_nonces_unique_across_batches() -> None:
    sa = make_sa(ALG_GCM)
    ivs = set()
    for _ in range(5):
        for w in encap_list([inner_packet(i, 20) for i in range(50)], sa):
            ivs.add(w[28:36])
    assert len(ivs) == 250
    prefixes = {make_sa(ALG_GCM).iv_prefix for _ in range(8)}
    assert len(prefixes) > 1  # drawn at random per SA object


def test_cbc_ivs_are_random_per_packet() -> None:
    wire = encap_list([inner_packet(1, 20)] * 20, make_sa(ALG_CBC))
    assert len({w[28:44] for w in wire}) == 20


@pytest.mark.parametrize("alg", ALGS)
def test_encap_trims_to_ip_length_and_keeps_annotations(alg: str) -> None:
    inner = inner_packet(5, 10)
    b = PacketBatch.from_bytes([inner + b"\0" * 16, inner_packet(6, 3)])  # Ethernet padding
    b.set_anno("paint", np.array([3, 4], np.uint8))
    b.anno("nh")
    sa = make_sa(alg)
    out, drops = encapsulate(b, sa)
    assert drops == {}
    assert out.anno("paint").tolist() == [3, 4]
    assert out.anno("nh").tolist() == out.off.tolist()
    got, _ = decapsulate(out, fresh_rx(sa))
    assert got.to_list() == [inner, inner_packet(6, 3)]
    assert got.anno("paint").tolist() == [3, 4]
    assert got.anno("nh").tolist() == got.off.tolist()


@pytest.mark.parametrize("alg", ALGS)
def test_encap_without_room_repacks(alg: str) -> None:
    pkts = [inner_packet(i, 50 + i) for i in range(5)]
    b = PacketBatch.from_bytes(pkts, headroom=0, tailroom=0)
    sa = make_sa(alg)
    out, _ = encapsulate(b, sa)
    assert out.headroom >= 0 and out.tailroom >= 0
    assert [len(x) for x in out.to_list()] == out.length.tolist()
    got, _ = decapsulate(out, fresh_rx(sa))
    assert got.to_list() == pkts


@pytest.mark.parametrize("alg", ALGS)
def test_encap_drops_bad_inner_packets(alg: str) -> None:
    good = inner_packet(1, 10)
    v6 = bytes([0x60]) + good[1:]
    short = good[:19]
    truncated = good[:-1]  # IP total length says one byte more
    bad_ihl = bytes([0x44]) + good[1:]
    huge = inner_packet(2, 65535 - 20)
    sa = make_sa(alg)
    twin = sa.copy()
    batch = [good, v6, short, truncated, bad_ihl, huge, good]
    out, drops = encapsulate(PacketBatch.from_bytes(batch), sa)
    ref, ref_drops = encapsulate_reference(PacketBatch.from_bytes(batch), twin)
    assert drops == ref_drops == {"not IPv4": 3, "truncated": 1, "too big": 1}
    assert len(out) == 2 and sa.seq == 2
    if alg == ALG_GCM:
        assert out.to_list() == ref.to_list()
    assert sa.counters["not IPv4"] == 3
    # The largest inner packet that fits still goes through.
    from routebricks.ipsec.esp import _max_inner

    biggest = inner_packet(3, _max_inner(sa) - 20)
    out, drops = encapsulate(PacketBatch.from_bytes([biggest]), sa)
    assert drops == {} and out.length.tolist()[0] <= 65535


@pytest.mark.parametrize("alg", ALGS)
def test_sequence_number_exhaustion(alg: str) -> None:
    sa = make_sa(alg, seq=SEQ_MAX - 3)
    twin = sa.copy()
    pkts = [inner_packet(i, 20) for i in range(5)]
    out, drops = encapsulate(PacketBatch.from_bytes(pkts), sa)
    ref, ref_drops = encapsulate_reference(PacketBatch.from_bytes(pkts), twin)
    assert drops == ref_drops == {"sequence exhausted": 2}
    assert [int.from_bytes(w[24:28], "big") for w in out.to_list()] == [
        SEQ_MAX - 2, SEQ_MAX - 1, SEQ_MAX]
    assert sa.seq == twin.seq == SEQ_MAX and sa.seq_remaining == 0
    out, drops = encapsulate(PacketBatch.from_bytes(pkts), sa)  # never wraps to 0
    assert len(out) == 0 and drops == {"sequence exhausted": 5}
    assert sa.counters["sequence exhausted"] == 7 and sa.counters["encap packets"] == 3
    # The receiver accepts the last numbers.
    rx = make_sa(alg, iv_prefix=sa.iv_prefix)
    got, d = decap_list(ref.to_list(), rx)
    assert d == {} and rx.replay_top == SEQ_MAX


def test_direction_is_enforced() -> None:
    inbound = make_sa(ALG_GCM, direction="in")
    with pytest.raises(ValueError, match="inbound-only"):
        encapsulate(PacketBatch.from_bytes([inner_packet(1, 10)]), inbound)
    out_sa = make_sa(ALG_GCM, direction="out")
    wire = encap_list([inner_packet(1, 10)], out_sa)
    got, drops = decap_list(wire, out_sa)
    assert got == [] and drops == {"unknown SPI": 1}


def test_empty_batches() -> None:
    sa = make_sa(ALG_GCM)
    out, drops = encapsulate(PacketBatch.empty(), sa)
    assert len(out) == 0 and drops == {}
    out, drops = decapsulate(PacketBatch.empty(), sa)
    assert len(out) == 0 and drops == {}


# ---------------------------------------------------------------------- decapsulation drops
@pytest.mark.parametrize("alg", ALGS)
def test_tampered_icv_and_data_are_dropped(alg: str) -> None:
    sa = make_sa(alg)
    wire = encap_list([inner_packet(i, 40) for i in range(4)], sa)
    bad_icv = wire[1][:-1] + bytes([wire[1][-1] ^ 1])
    bad_data = bytearray(wire[2])
    bad_data[60] ^= 0x10
    bad_seq = bytearray(wire[3])
    bad_seq[27] ^= 0x40  # the sequence number is authenticated too
    got, drops = both_decaps([wire[0], bad_icv, bytes(bad_data), bytes(bad_seq)], fresh_rx(sa))
    assert drops == {"bad ICV": 3}
    assert got == [inner_packet(0, 40)]


@pytest.mark.parametrize("alg", ALGS)
def test_unknown_spi_and_sa_tables(alg: str) -> None:
    a = make_sa(alg, spi=0x1001)
    b = make_sa(alg, spi=0x2002)
    wa = encap_list([inner_packet(i, 30) for i in range(3)], a)
    wb = encap_list([inner_packet(10 + i, 30) for i in range(3)], b)
    mixed = [wa[0], wb[0], wa[1], wb[1], wb[2], wa[2]]
    got, drops = both_decaps(mixed, fresh_rx(a))
    assert drops == {"unknown SPI": 3} and got == [inner_packet(i, 30) for i in range(3)]
    ra, rb = fresh_rx(a), fresh_rx(b)
    for table in (SATable([ra, rb]), {0x1001: ra.copy(), 0x2002: rb.copy()}):
        got, drops = decap_list(mixed, table)
        assert drops == {}
        assert got == [inner_packet(i, 30) for i in (0, 10, 1, 11, 12, 2)]
    assert ra.counters["decap packets"] == 3 and rb.counters["decap packets"] == 3
    got, drops = decap_list(mixed, SATable([ra]))
    assert drops == {"unknown SPI": 3, "replayed": 3}


@pytest.mark.parametrize("alg", ALGS)
def test_truncated_and_malformed_packets(alg: str) -> None:
    sa = make_sa(alg)
    w = encap_list([inner_packet(1, 40)], sa)[0]
    p = sa.params
    cases: dict[str, list[bytes]] = {"truncated": [], "not ESP": [], "fragment": [],
                                     "bad length": []}
    cases["truncated"] += [b"", w[:1], w[:19], w[:-1], w[:27]]  # IP total length > captured
    for esp_len in (0, 7, 8 + p.iv_len + p.icv_len, 8 + p.iv_len + p.icv_len + 2):
        cases["truncated"].append(ip_header(20 + esp_len) + w[20 : 20 + esp_len])
    cases["truncated"].append(ip_header(10) + w[20:])  # total length < header length
    cases["not ESP"] += [ip_header(len(w), proto=17) + w[20:], bytes([0x65]) + w[1:],
                         bytes([0x44]) + w[1:]]
    cases["fragment"] += [ip_header(len(w), frag=0x2000) + w[20:],
                          ip_header(len(w), frag=0x0001) + w[20:]]
    cut = 5 if alg == ALG_CBC else 2  # no longer a whole number of blocks / 4-byte words
    cases["bad length"].append(ip_header(len(w) - cut) + w[20:-cut])
    everything = [x for v in cases.values() for x in v]
    got, drops = both_decaps(everything + [w], fresh_rx(sa))
    assert got == [inner_packet(1, 40)]
    assert drops == {k: len(v) for k, v in cases.items()}


@pytest.mark.parametrize("alg", ALGS)
def test_trailing_bytes_after_ip_total_length_are_ignored(alg: str) -> None:
    sa = make_sa(alg)
    w = encap_list([inner_packet(1, 5)], sa)[0]
    got, drops = both_decaps([w + b"\0" * 12], fresh_rx(sa))
    assert drops == {} and got == [inner_packet(1, 5)]


@pytest.mark.parametrize("alg", ALGS)
def test_bad_padding_next_header_and_dummy(alg: str) -> None:
    align = make_sa(alg).params.align
    inner = inner_packet(9, 21)  # 41 bytes + 2: GCM pads 1, CBC pads 5
    good = trailer(inner, align)
    pad = good[-2]
    assert pad > 0
    wrong_bytes = trailer(inner, align, pad_bytes=bytes(range(2, pad + 2)))
    zero_bytes = trailer(inner, align, pad_bytes=bytes(pad))
    too_long = inner + bytes(range(1, pad + 1)) + bytes([250, 4])  # pad length > payload
    bad_nh = trailer(inner, align, nh=17)
    dummy = trailer(inner, align, nh=59)
    pkts = [craft_esp(alg, 1, good), craft_esp(alg, 2, wrong_bytes),
            craft_esp(alg, 3, zero_bytes), craft_esp(alg, 4, too_long),
            craft_esp(alg, 5, bad_nh), craft_esp(alg, 6, dummy)]
    rx = make_sa(alg)
    got, drops = both_decaps(pkts, rx)
    assert got == [inner]
    assert drops == {"bad padding": 3, "bad next header": 1, "dummy": 1}
    # They all verified, so the window moved past them.
    assert rx.replay_top == 6 and rx.replay_bitmap == 0b111111


@pytest.mark.parametrize("alg", ALGS)
def test_zero_padding_and_max_padding_accepted(alg: str) -> None:
    """Senders may pad more than needed (RFC 4303 §2.4), up to 255 bytes."""
    align = make_sa(alg).params.align
    inner = inner_packet(9, 22)  # 42 + 2 = 44 bytes: GCM needs no padding
    pad = (-(len(inner) + 2) % align) + 4 * align
    plain = inner + bytes(range(1, pad + 1)) + bytes([pad, 4])
    got, drops = both_decaps([craft_esp(alg, 1, trailer(inner, align)),
                              craft_esp(alg, 2, plain)], make_sa(alg))
    assert drops == {} and got == [inner, inner]


@pytest.mark.parametrize("seed", range(3))
def test_garbage_never_raises(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sa = make_sa(ALG_GCM)
    w = encap_list([inner_packet(1, 40)], sa)[0]
    pkts = []
    for _ in range(200):
        kind = rng.integers(4)
        if kind == 0:
            pkts.append(rng.bytes(int(rng.integers(0, 120))))
        elif kind == 1:
            pkts.append(ip_header(20 + int(rng.integers(0, 100))) + rng.bytes(int(
                rng.integers(0, 100))))
        else:
            b = bytearray(w)
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(0, len(b)))] ^= int(rng.integers(1, 256))
            pkts.append(bytes(b[: int(rng.integers(0, len(b) + 1))]))
    table = SATable([fresh_rx(sa), make_sa(ALG_CBC, spi=0x3003)])
    out, drops = decapsulate(PacketBatch.from_bytes(pkts), table)
    assert len(out) + sum(drops.values()) == len(pkts)
    ref, ref_drops = decapsulate_reference(PacketBatch.from_bytes(pkts),
                                           SATable([fresh_rx(sa),
                                                    make_sa(ALG_CBC, spi=0x3003)]))
    assert out.to_list() == ref.to_list() and drops == ref_drops


# ---------------------------------------------------------------------- anti-replay window
@pytest.fixture(params=ALGS)
def stream(request: pytest.FixtureRequest) -> tuple[SecurityAssociation, list[bytes]]:
    """An SA and its packets with sequence numbers 1..300 (index i has seq i + 1)."""
    sa = make_sa(request.param)
    return sa, encap_list([inner_packet(i, 20) for i in range(300)], sa)


def test_window_duplicate_inside_is_replayed(stream) -> None:  # type: ignore[no-untyped-def]
    sa, w = stream
    rx = fresh_rx(sa)
    got, drops = both_decaps([w[0], w[0], w[4], w[2], w[4]], rx)
    assert drops == {"replayed": 2} and len(got) == 3
    got, drops = both_decaps([w[2], w[1]], rx)  # seq 3 again: replayed; seq 2: new
    assert drops == {"replayed": 1} and len(got) == 1
    assert rx.replay_top == 5 and rx.replay_bitmap == 0b11101  # 1, 2, 3, 5 (not 4)


def test_window_edges(stream) -> None:  # type: ignore[no-untyped-def]
    sa, w = stream
    rx = fresh_rx(sa)
    both_decaps([w[99]], rx)  # seq 100: top
    # seq 37 is the oldest inside a 64-wide window (100 - 63); 36 is outside.
    got, drops = both_decaps([w[36], w[35], w[99]], rx)
    assert drops == {"outside window": 1, "replayed": 1} and len(got) == 1
    # A newer packet advances the window; a jump of >= 64 clears the bitmap.
    got, drops = both_decaps([w[199], w[136], w[135], w[150]], rx)
    assert drops == {"outside window": 1} and len(got) == 3
    assert rx.replay_top == 200
    assert rx.replay_bitmap == (1 | 1 << (200 - 137) | 1 << (200 - 151))
    both_decaps([w[299]], rx)
    assert rx.replay_top == 300 and rx.replay_bitmap == 1


def test_window_reason_restated_as_window_moves(stream) -> None:  # type: ignore[no-untyped-def]
    """A duplicate that, by its turn in the batch, has left the window is 'outside window'
    (one-at-a-time semantics), even though it was inside when the batch started."""
    sa, w = stream
    rx = fresh_rx(sa)
    both_decaps([w[9]], rx)  # seq 10 received
    got, drops = both_decaps([w[200], w[9]], rx)  # 201 moves the window past 10
    assert drops == {"outside window": 1}
    rx2 = fresh_rx(sa)
    both_decaps([w[9]], rx2)
    got, drops = both_decaps([w[9], w[200]], rx2)
    assert drops == {"replayed": 1}


def test_bad_icv_does_not_move_window(stream) -> None:  # type: ignore[no-untyped-def]
    sa, w = stream
    rx = fresh_rx(sa)
    forged = w[250][:-1] + bytes([w[250][-1] ^ 1])
    got, drops = both_decaps([w[0], forged, w[1]], rx)
    assert drops == {"bad ICV": 1} and rx.replay_top == 2
    got, drops = both_decaps([w[250]], rx)  # the genuine 251 still gets through
    assert drops == {} and rx.replay_top == 251
    # A forged copy of an already received packet counts as a replay (checked first).
    got, drops = both_decaps([forged], rx)
    assert drops == {"replayed": 1}
    # A genuine packet after its forged twin in the same batch is accepted; the reverse
    # order makes the forgery a replay.
    rx2 = fresh_rx(sa)
    got, drops = both_decaps([forged, w[250], forged], rx2)
    assert drops == {"bad ICV": 1, "replayed": 1} and len(got) == 1


def test_sequence_number_zero_is_never_accepted() -> None:
    rx = make_sa(ALG_GCM)
    inner = inner_packet(1, 20)
    got, drops = both_decaps([craft_esp(ALG_GCM, 0, trailer(inner, 4))], rx)
    assert drops == {"outside window": 1}


def test_replay_kernels_directly() -> None:
    sa = make_sa(ALG_GCM)
    seqs = np.array([5, 3, 5, 70, 6, 2, 0], np.int64)
    codes = sa.replay_check(seqs)
    assert codes.tolist() == [0, 0, 0, 0, 0, 0, 2]  # window empty: only 0 is refused
    assert sa.replay_top == 0  # check does not update
    icv = np.array([True, True, True, True, False, True, True])
    final = sa.replay_update(seqs, codes, icv)
    K = ipsec_kernels
    assert final.tolist() == [K.REPLAY_OK, K.REPLAY_OK, K.REPLAY_DUP, K.REPLAY_OK,
                              K.REPLAY_OLD, K.REPLAY_OLD, K.REPLAY_OLD]
    assert sa.replay_top == 70
    assert sa.replay_bitmap == 1  # 5 and 3 slid out (70 - 5 >= 64)
    codes = sa.replay_check(np.array([70, 69, 7, 6], np.int64))
    assert codes.tolist() == [K.REPLAY_DUP, K.REPLAY_OK, K.REPLAY_OK, K.REPLAY_OLD]
    final = sa.replay_update(np.array([70, 69, 7, 6], np.int64), codes,
                             np.array([True, False, True, True]))
    assert final.tolist() == [K.REPLAY_DUP, K.REPLAY_BAD_ICV, K.REPLAY_OK, K.REPLAY_OLD]
    assert sa.replay_bitmap == 1 | 1 << 63


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.integers(1, 200), st.booleans(), st.booleans()), min_size=1,
                    max_size=60),
       alg=st.sampled_from(ALGS), split=st.integers(1, 60))
def test_window_matches_set_model(ops: list[tuple[int, bool, bool]], alg: str,
                                  split: int) -> None:
    """Batched decapsulation (in batches of ``split``) agrees with a model of RFC 4303's
    window written with a set, and with the per-packet reference path."""
    inner = inner_packet(1, 12)
    align = make_sa(alg).params.align
    pkts = [craft_esp(alg, s, trailer(inner, align), tamper=forged) for s, forged, _ in ops]
    rx = make_sa(alg)
    got_drops: dict[str, int] = {}
    for a in range(0, len(pkts), split):
        _, d = both_decaps(pkts[a : a + split], rx)
        for k, v in d.items():
            got_drops[k] = got_drops.get(k, 0) + v
    received: set[int] = set()
    want: dict[str, int] = {}
    for s, forged, _ in ops:
        top = max(received, default=0)
        if s <= top and top - s >= 64:
            r = "outside window"
        elif s in received:
            r = "replayed"
        elif forged:
            r = "bad ICV"
        else:
            received.add(s)
            continue
        want[r] = want.get(r, 0) + 1
    assert got_drops == want
    top = max(received, default=0)
    assert rx.replay_top == top
    assert rx.replay_bitmap == sum(1 << (top - s) for s in received if top - s < 64)


# ---------------------------------------------------------------------- round-trip property
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(0, 1480), min_size=1, max_size=40),
       alg=st.sampled_from(ALGS), seq0=st.integers(0, 1000), room=st.integers(0, 80),
       tos=st.integers(0, 255), data=st.data())
def test_round_trip_property(sizes: list[int], alg: str, seq0: int, room: int, tos: int,
                             data: st.DataObject) -> None:
    pkts = [inner_packet(i, n, df=bool(i % 3), tos=tos,
                         proto=data.draw(st.sampled_from([1, 6, 17, 47])))
            for i, n in enumerate(sizes)]
    sa = make_sa(alg, seq=seq0)
    twin = sa.copy()
    batch = PacketBatch.from_bytes(pkts, headroom=room, tailroom=room)
    ivs = np.frombuffer(os.urandom(16 * len(pkts)), np.uint8).reshape(-1, 16)
    out, drops = encapsulate(batch, sa, ivs=ivs)
    ref, _ = encapsulate_reference(PacketBatch.from_bytes(pkts), twin, ivs=ivs)
    assert drops == {} and out.to_list() == ref.to_list()
    rx = fresh_rx(sa)
    inner, drops = decapsulate(out, rx)
    assert drops == {}
    assert inner.to_list() == pkts
    assert rx.replay_top == seq0 + len(pkts)
    assert rx.counters["decap packets"] == len(pkts)
    assert rx.counters["decap bytes"] == sum(map(len, pkts))
