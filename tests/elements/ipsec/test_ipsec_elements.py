"""ESPEncap, ESPDecap and IPsecLookup as elements in routers.

* What ESPEncap emits through a router (pushed, and run from a pcap to a pcap) decrypts with
  scapy's independent ESP implementation to the original packets, for both algorithms, with
  one SA in arguments and with an SA file choosing the SA by destination.
* ESPDecap takes scapy's packets back; bad packets (tampered ICV, replays, unknown SPI,
  truncated, bad padding, ...) are dropped and counted by reason, never raised; arbitrary
  bytes never raise either.
* Keys never show: not in the ``config``/``sa`` handlers, ``unparse``, error messages (and
  the configuration line they quote), nor in what ``routebricks run`` prints.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from elementtest import drain, drop_lines
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.ipsec import ESP
from scapy.layers.ipsec import SecurityAssociation as ScapySA
from scapy.packet import Raw
from scapy.utils import rdpcap, wrpcap

from routebricks.engine.router import Router
from routebricks.errors import ConfigError, RouteBricksError
from routebricks.ipsec import ALG_CBC, ALG_GCM
from routebricks.packet.batch import PacketBatch
from routebricks.runtime.workers import check_multiworker

# Test keys only.
GCM_KEY = bytes.fromhex("7e577e577e577e577e577e577e571001" "5a171001")  # key || salt
CBC_KEY = bytes.fromhex("7e577e577e577e577e577e577e571002")
AUTH_KEY = bytes.fromhex("7e57a07e57a07e57a07e57a07e57a07e57a01002")
SECRETS = [GCM_KEY.hex(), CBC_KEY.hex(), AUTH_KEY.hex()]
TUN_SRC, TUN_DST = "192.0.2.1", "192.0.2.2"
ALGS = (ALG_GCM, ALG_CBC)
SPI = 0x1001


def sa_args(alg: str, spi: int = SPI, src: str = TUN_SRC, dst: str = TUN_DST) -> str:
    if alg == ALG_GCM:
        keys = f"KEY 0x{GCM_KEY.hex()}"
    else:
        keys = f"KEY 0x{CBC_KEY.hex()}, AUTHKEY 0x{AUTH_KEY.hex()}"
    return f"SPI {spi:#x}, ALG {alg}, {keys}, SRC {src}, DST {dst}"


def sa_line(alg: str, spi: int, src: str, dst: str, selector: str = "") -> str:
    if alg == ALG_GCM:
        keys = f"key=0x{GCM_KEY.hex()}"
    else:
        keys = f"key=0x{CBC_KEY.hex()} authkey=0x{AUTH_KEY.hex()}"
    sel = f" selector={selector}" if selector else ""
    return f"spi={spi:#x} alg={alg} {keys} src={src} dst={dst}{sel}\n"


def scapy_sa(alg: str, spi: int = SPI, seq_num: int = 1, src: str = TUN_SRC,
             dst: str = TUN_DST) -> ScapySA:
    tunnel = IP(src=src, dst=dst)
    if alg == ALG_GCM:
        return ScapySA(ESP, spi=spi, seq_num=seq_num, crypt_algo="AES-GCM", crypt_key=GCM_KEY,
                       tunnel_header=tunnel)
    return ScapySA(ESP, spi=spi, seq_num=seq_num, crypt_algo="AES-CBC", crypt_key=CBC_KEY,
                   auth_algo="HMAC-SHA1-96", auth_key=AUTH_KEY, tunnel_header=tunnel)


def inner_packets(dst: str = "10.2.0.2", n: int = 12) -> list[bytes]:
    pkts = []
    for i in range(n):
        ip = IP(src="10.1.0.2", dst=dst, id=i + 1, tos=(i * 4) & 0xFC,
                flags="DF" if i % 2 else 0)
        if i % 3 == 0:
            p = ip / ICMP(id=9, seq=i) / Raw(bytes(range(i * 13 % 200)))
        elif i % 3 == 1:
            p = ip / UDP(sport=4000 + i, dport=53) / Raw(b"u" * (i * 41))
        else:
            p = ip / TCP(sport=4000, dport=80, flags="S", seq=i)
        pkts.append(bytes(p))
    pkts.append(bytes(IP(src="10.1.0.2", dst=dst) / UDP(sport=1, dport=2) / Raw(b"z" * 1400)))
    return pkts


def to(dst: str, n: int) -> list[bytes]:
    """``n`` assorted inner packets to ``dst``."""
    return inner_packets(dst, n)[:n]


def build(text: str, filename: str = "<config>") -> Router:
    return Router.from_text(text, filename)


def push(r: Router, name: str, pkts: list[bytes]) -> None:
    r.find(name).push(0, PacketBatch.from_bytes(pkts))


def no_secret_in(text: str) -> None:
    low = text.lower()
    for s in SECRETS:
        assert s not in low
        assert s[:16] not in low  # not even part of one


def encap_router(args: str) -> Router:
    return build(f"Idle -> e :: ESPEncap({args}) -> q :: Queue(100000) -> Discard;")


def decap_router(args: str) -> Router:
    return build(f"Idle -> d :: ESPDecap({args}) -> q :: Queue(100000) -> Discard;")


# ---------------------------------------------------------------------- crafting ESP by hand
def trailer(inner: bytes, align: int, nh: int = 4, pad: bytes | None = None) -> bytes:
    k = -(len(inner) + 2) % align
    pb = bytes(range(1, k + 1)) if pad is None else pad
    return inner + pb + bytes([len(pb), nh])


def seal(alg: str, seq: int, plain: bytes, spi: int = SPI, tamper: bool = False,
         frag: bool = False, extra: bytes = b"") -> bytes:
    """An outer packet carrying arbitrary ESP plaintext, sealed independently of the library
    (cryptography's AESGCM / AES-CBC and hmac); scapy builds the outer header."""
    hdr = struct.pack("!II", spi, seq)
    if alg == ALG_GCM:
        iv = os.urandom(8)
        body = hdr + iv + AESGCM(GCM_KEY[:16]).encrypt(GCM_KEY[16:] + iv, plain, hdr)
    else:
        iv = os.urandom(16)
        enc = Cipher(algorithms.AES(CBC_KEY), modes.CBC(iv)).encryptor()
        signed = hdr + iv + enc.update(plain) + enc.finalize()
        body = signed + hmac.new(AUTH_KEY, signed, hashlib.sha1).digest()[:12]
    if tamper:
        body = body[:-1] + bytes([body[-1] ^ 0x40])
    outer = IP(src=TUN_SRC, dst=TUN_DST, proto=50, flags="MF" if frag else 0)
    return bytes(outer / Raw(body + extra))


def align(alg: str) -> int:
    return 4 if alg == ALG_GCM else 16


# ---------------------------------------------------------------------- (a) interop
@pytest.mark.parametrize("alg", ALGS)
def test_encap_output_decrypts_with_scapy(alg: str) -> None:
    r = encap_router(sa_args(alg))
    pkts = inner_packets()
    push(r, "e", pkts)
    out = drain(r, "q")
    assert len(out) == len(pkts)
    ssa = scapy_sa(alg)
    for i, (raw, inner) in enumerate(zip(out.to_list(), pkts, strict=True)):
        outer = IP(raw)
        assert (outer.src, outer.dst, outer.proto, outer.ttl) == (TUN_SRC, TUN_DST, 50, 64)
        assert outer[ESP].spi == SPI and outer[ESP].seq == i + 1
        assert outer.tos == IP(inner).tos and outer.flags == IP(inner).flags
        assert bytes(ssa.decrypt(outer)) == inner  # verifies the ICV
    # The next hop of an ESP packet is the tunnel's far end.
    assert set(out.anno("dst_ip").tolist()) == {int.from_bytes(bytes([192, 0, 2, 2]), "big")}
    e = r.find("e")
    assert e.read("count") == str(len(pkts))
    assert e.read("byte_count") == str(out.total_bytes())
    assert e.read("drops") == ""


@pytest.mark.parametrize("alg", ALGS)
def test_router_run_pcap_to_pcap_decrypts_with_scapy(alg: str, tmp_path: Path) -> None:
    pkts = inner_packets(n=30)
    wrpcap(str(tmp_path / "in.pcap"), [IP(p) for p in pkts])
    r = build(f'FromDump("{tmp_path / "in.pcap"}", STOP true, BURST 7) -> '
              f"e :: ESPEncap({sa_args(alg)}) -> "
              f'ToDump("{tmp_path / "out.pcap"}", ENCAP IP);')
    r.run(time_limit=60)
    r.cleanup()
    got = rdpcap(str(tmp_path / "out.pcap"))
    assert len(got) == len(pkts)
    ssa = scapy_sa(alg)
    for k, (pkt, inner) in enumerate(zip(got, pkts, strict=True)):
        outer = IP(bytes(pkt))
        assert outer[ESP].seq == k + 1
        assert bytes(ssa.decrypt(outer)) == inner


@pytest.mark.parametrize("alg", ALGS)
def test_encap_then_decap_in_one_router(alg: str, tmp_path: Path) -> None:
    pkts = inner_packets(n=40)
    wrpcap(str(tmp_path / "in.pcap"), [IP(p) for p in pkts])
    r = build(f'FromDump("{tmp_path / "in.pcap"}", STOP true, BURST 16) -> '
              f"ESPEncap({sa_args(alg)}) -> d :: ESPDecap({sa_args(alg)}) -> "
              f'ToDump("{tmp_path / "out.pcap"}", ENCAP IP);')
    r.run(time_limit=60)
    r.cleanup()
    assert [bytes(p) for p in rdpcap(str(tmp_path / "out.pcap"))] == pkts
    assert r.find("d").read("count") == str(len(pkts))


@pytest.mark.parametrize("alg", ALGS)
def test_decap_takes_scapy_packets(alg: str) -> None:
    pkts = inner_packets()
    ssa = scapy_sa(alg, seq_num=500)
    wire = [bytes(ssa.encrypt(IP(p))) for p in pkts]
    r = decap_router(sa_args(alg))
    push(r, "d", wire)
    out = drain(r, "q")
    assert out.to_list() == pkts
    assert out.anno("nh").tolist() == out.off.tolist()
    assert out.anno("dst_ip").tolist() == [int.from_bytes(bytes([10, 2, 0, 2]), "big")] * len(pkts)
    d = r.find("d")
    assert d.read("count") == str(len(pkts))
    assert d.read("byte_count") == str(sum(map(len, pkts)))
    assert f"replay_top={500 + len(pkts) - 1}" in d.read("sa")


def test_encap_with_sa_file_chooses_sa_by_destination(tmp_path: Path) -> None:
    sas = tmp_path / "sas.txt"
    sas.write_text(
        "# two tunnels from 192.0.2.1, and one SA of the peer (not ours: src differs)\n"
        + sa_line(ALG_GCM, 0x1001, TUN_SRC, TUN_DST, "10.2.0.0/16")
        + sa_line(ALG_CBC, 0x3001, TUN_SRC, "198.51.100.7", "10.3.0.0/16,10.4.4.0/24")
        + sa_line(ALG_GCM, 0x2001, TUN_DST, TUN_SRC, "10.1.0.0/16"))
    r = build(f'Idle -> e :: ESPEncap(SAS "{sas}", LOCAL {TUN_SRC}) -> q :: Queue -> Discard;'
              "e[1] -> other :: Queue -> Discard;")
    to2, to3, to4 = to("10.2.9.9", 4), to("10.3.0.1", 4), to("10.4.4.4", 2)
    stray = to("10.1.0.9", 2) + to("10.4.5.1", 1)
    mixed = [to2[0], to3[0], stray[0], to4[0], to2[1], to3[1], stray[1], to3[2], to4[1],
             stray[2], to2[2], to3[3], to2[3]]
    push(r, "e", mixed)
    out = [IP(p) for p in drain(r, "q").to_list()]
    by_spi: dict[int, list[IP]] = {}
    for p in out:
        by_spi.setdefault(p[ESP].spi, []).append(p)
    assert sorted(by_spi) == [0x1001, 0x3001]
    gcm = scapy_sa(ALG_GCM, 0x1001)
    cbc = scapy_sa(ALG_CBC, 0x3001, dst="198.51.100.7")
    assert [bytes(gcm.decrypt(p)) for p in by_spi[0x1001]] == to2  # in order within an SA
    assert all(p.dst == "198.51.100.7" for p in by_spi[0x3001])
    want3 = [to3[0], to4[0], to3[1], to3[2], to4[1], to3[3]]
    assert [bytes(cbc.decrypt(p)) for p in by_spi[0x3001]] == want3
    assert drain(r, "other").to_list() == stray  # no SA covers them: output 1
    e = r.find("e")
    assert e.read("count") == "10"
    sa_text = e.read("sa")
    assert "spi=0x1001" in sa_text and "spi=0x3001" in sa_text and "spi=0x2001" not in sa_text
    no_secret_in(sa_text)
    # Without output 1 they are dropped as "no SA".
    r = build(f'Idle -> e :: ESPEncap(SAS "{sas}", LOCAL {TUN_SRC}) -> q :: Queue -> Discard;')
    push(r, "e", mixed)
    assert len(drain(r, "q")) == 10
    assert dict(r.find("e").drops) == {"no SA": 3}


def test_two_gateways_share_one_file(tmp_path: Path) -> None:
    """west encapsulates with its SA, east decapsulates with the same file and its LOCAL."""
    sas = tmp_path / "sas.txt"
    sas.write_text(sa_line(ALG_GCM, 0x1001, TUN_SRC, TUN_DST, "10.2.0.0/16")
                   + sa_line(ALG_CBC, 0x2001, TUN_DST, TUN_SRC, "10.1.0.0/16"))
    west = build(f'Idle -> e :: ESPEncap(SAS "{sas}", LOCAL {TUN_SRC}) -> q :: Queue -> Discard;'
                 f'Idle -> d :: ESPDecap(SAS "{sas}", LOCAL {TUN_SRC}) -> q2 :: Queue -> Discard;')
    east = build(f'Idle -> e :: ESPEncap(SAS "{sas}", LOCAL {TUN_DST}) -> q :: Queue -> Discard;'
                 f'Idle -> d :: ESPDecap(SAS "{sas}", LOCAL {TUN_DST}) -> q2 :: Queue -> Discard;')
    there, back = inner_packets("10.2.0.2"), inner_packets("10.1.0.2")
    push(west, "e", there)
    push(east, "d", drain(west, "q").to_list())
    assert drain(east, "q2").to_list() == there
    push(east, "e", back)
    wire = drain(east, "q").to_list()
    assert {IP(p)[ESP].spi for p in wire} == {0x2001}
    push(west, "d", wire)
    assert drain(west, "q2").to_list() == back


# ---------------------------------------------------------------------- (d) bad packets
@pytest.mark.parametrize("alg", ALGS)
def test_bad_packets_are_dropped_and_counted_by_reason(alg: str) -> None:
    a = align(alg)
    inner = inner_packets()[1]
    good = seal(alg, 100, trailer(inner, a))
    unknown = bytes(scapy_sa(alg, spi=0x7777, seq_num=101).encrypt(IP(inner)))
    cut_ip = good[:-9]  # IP total length says more than there is
    cut_esp = bytes(IP(src=TUN_SRC, dst=TUN_DST, proto=50) / Raw(struct.pack("!II", SPI, 106)
                                                                   + b"\0" * 12))
    k = -(len(inner) + 2) % a or a  # at least one pad byte, to get it wrong
    bad_pad = seal(alg, 102, inner + bytes([9] * k) + bytes([k, 4]))
    batch = [
        good,                                                # accepted
        seal(alg, 101, trailer(inner, a), tamper=True),      # bad ICV
        good,                                                # replayed
        seal(alg, 5, trailer(inner, a)),                     # outside window (top is 100)
        unknown,                                             # unknown SPI
        cut_ip,                                              # truncated
        cut_esp,                                             # truncated (no room for IV+ICV)
        bad_pad,                                             # bad padding
        seal(alg, 103, trailer(inner, a, nh=17)),            # bad next header
        seal(alg, 104, trailer(inner, a, nh=59)),            # dummy
        inner,                                               # not ESP
        seal(alg, 105, trailer(inner, a), extra=b"x"),       # bad length
        seal(alg, 107, trailer(inner, a), frag=True),        # fragment
        b"\x45",                                             # truncated (1 byte)
        seal(alg, 108, trailer(b"\x60" + inner[1:], a)),     # bad inner packet (IPv6 nibble)
        seal(alg, 109, trailer(inner[:12], a)),              # bad inner packet (12 bytes)
        seal(alg, 110, trailer(inner, a)),                   # accepted
    ]
    r = decap_router(sa_args(alg))
    push(r, "d", batch)  # must not raise
    assert drain(r, "q").to_list() == [inner, inner]
    d = r.find("d")
    want = {"bad ICV": 1, "replayed": 1, "outside window": 1, "unknown SPI": 1,
            "truncated": 3, "bad next header": 1, "dummy": 1, "not ESP": 1, "bad length": 1,
            "fragment": 1, "bad inner packet": 2, "bad padding": 1}
    assert dict(d.drops) == want
    assert drop_lines(d.read("drops")) == want
    assert d.read("count") == "2"
    # The same packets again: everything that verified before is now a replay.
    push(r, "d", [good, batch[-1], batch[8]])
    assert len(drain(r, "q")) == 0
    assert d.drops["replayed"] == 4


def test_bad_padding_alone() -> None:
    inner = inner_packets()[0]  # 20 + 8 + 0 bytes: pad to 4 needs 2 bytes
    k = -(len(inner) + 2) % 4
    assert k >= 1
    plain = inner + bytes([7] * k) + bytes([k, 4])
    r = decap_router(sa_args(ALG_GCM))
    too_long = inner + bytes(range(1, k + 1)) + bytes([200, 4])  # pad length past the start
    push(r, "d", [seal(ALG_GCM, 1, plain), seal(ALG_GCM, 2, too_long)])
    assert len(drain(r, "q")) == 0
    assert dict(r.find("d").drops) == {"bad padding": 2}


def test_selector_check_on_decap(tmp_path: Path) -> None:
    sas = tmp_path / "sas.txt"
    sas.write_text(sa_line(ALG_GCM, SPI, TUN_SRC, TUN_DST, "10.2.0.0/16"))
    inside, outside = to("10.2.3.4", 3), to("10.9.9.9", 2)
    ssa = scapy_sa(ALG_GCM)
    wire = [bytes(ssa.encrypt(IP(p))) for p in [inside[0], outside[0], inside[1], outside[1],
                                                 inside[2]]]
    r = decap_router(f'SAS "{sas}", LOCAL {TUN_DST}')
    push(r, "d", wire)
    assert drain(r, "q").to_list() == inside
    assert dict(r.find("d").drops) == {"selector mismatch": 2}
    r = decap_router(f'SAS "{sas}", LOCAL {TUN_DST}, CHECK_SELECTOR false')
    push(r, "d", wire)
    assert len(drain(r, "q")) == 5


def test_inner_packet_trimmed_to_its_ip_length() -> None:
    """TFC padding (RFC 4303 2.7) after the inner packet is not delivered."""
    inner = inner_packets()[2]
    r = decap_router(sa_args(ALG_GCM))
    push(r, "d", [seal(ALG_GCM, 1, trailer(inner + b"\0" * 37, 4))])
    assert drain(r, "q").to_list() == [inner]


def test_encap_drops_bad_inner_packets() -> None:
    good = inner_packets()[3]
    long_claim = bytearray(good)
    long_claim[2:4] = (len(good) + 50).to_bytes(2, "big")
    r = encap_router(sa_args(ALG_GCM))
    push(r, "e", [b"", b"\x45\x00", b"\x60" + good[1:], bytes(long_claim), good])
    out = drain(r, "q").to_list()
    assert len(out) == 1 and bytes(scapy_sa(ALG_GCM).decrypt(IP(out[0]))) == good
    assert dict(r.find("e").drops) == {"not IPv4": 3, "truncated": 1}


@settings(max_examples=60)
@given(st.lists(st.binary(min_size=0, max_size=120), min_size=1, max_size=20),
       st.sampled_from(ALGS))
def test_arbitrary_bytes_never_raise(frames: list[bytes], alg: str) -> None:
    # Some frames become plausible ESP: the outer header of a valid packet over random bytes.
    head = bytes(IP(src=TUN_SRC, dst=TUN_DST, proto=50, len=20 + 64))[:20]
    frames = [head + (struct.pack("!I", SPI) + f + b"\0" * 64)[:64] if i % 2 else f
              for i, f in enumerate(frames)]
    r = decap_router(sa_args(alg))
    push(r, "d", frames)
    d = r.find("d")
    assert sum(d.drops.values()) + int(d.read("count")) == len(frames)
    r = encap_router(sa_args(alg))
    push(r, "e", frames)
    e = r.find("e")
    assert sum(e.drops.values()) + int(e.read("count")) == len(frames)


# ---------------------------------------------------------------------- IPsecLookup
def test_ipseclookup_dispatch(tmp_path: Path) -> None:
    sas = tmp_path / "sas.txt"
    sas.write_text(sa_line(ALG_GCM, 0x1001, TUN_SRC, TUN_DST, "10.2.0.0/16")
                   + sa_line(ALG_GCM, 0x2001, TUN_DST, TUN_SRC, "10.1.0.0/16"))
    text = (f'Idle -> s :: IPsecLookup("{sas}", LOCAL {TUN_SRC});'
            "s[0] -> p :: Queue -> Discard; s[1] -> e :: Queue -> Discard;")
    r = build(text + "s[2] -> b :: Queue -> Discard;")
    protect = to("10.2.0.7", 3)
    esp_in = bytes(IP(src=TUN_DST, dst=TUN_SRC) / ESP(spi=0x2001, seq=1) / Raw(b"x" * 40))
    esp_other = bytes(IP(src=TUN_DST, dst="192.0.2.99") / ESP(spi=0x2001, seq=1)
                      / Raw(b"x" * 40))
    bypass = to("10.1.0.9", 2)
    push(r, "s", [protect[0], esp_in, bypass[0], protect[1], esp_other, protect[2], bypass[1],
                  b"\x45\x00"])
    assert drain(r, "p").to_list() == protect
    assert drain(r, "e").to_list() == [esp_in]
    assert drain(r, "b").to_list() == [bypass[0], esp_other, bypass[1]]
    s = r.find("s")
    assert drop_lines(s.read("counts")) == {"protect": 3, "esp": 1, "bypass": 3}
    assert dict(s.drops) == {"no IP header": 1}
    assert s.read("policy") == ("10.2.0.0/16\tspi=0x1001 src=192.0.2.1 dst=192.0.2.2 "
                                "alg=aes128gcm")
    r = build(text)  # no output 2: DISCARD
    push(r, "s", bypass + protect)
    assert len(drain(r, "p")) == 3
    assert dict(r.find("s").drops) == {"no policy": 2}


# ---------------------------------------------------------------------- keys stay hidden
@pytest.mark.parametrize("alg", ALGS)
def test_keys_never_in_handlers_or_unparse(alg: str) -> None:
    for r, name in ((encap_router(sa_args(alg)), "e"), (decap_router(sa_args(alg)), "d")):
        e = r.find(name)
        push(r, name, inner_packets())
        shown = [e.read(h) for h, spec in e.HANDLERS.items() if spec.read is not None]
        shown += [e.unparse(), repr(e), e.unparse_config()]  # type: ignore[attr-defined]
        for text in shown:
            no_secret_in(text)
        assert "KEY <redacted>" in e.read("config")
        assert f"SPI {SPI:#x}" in e.read("config")
        if alg == ALG_CBC:
            assert "AUTHKEY <redacted>" in e.read("config")


@pytest.mark.parametrize("bad, why", [
    ("KEY 0x7e577e577e577e577e577e577e5710015a1710", "is 19 bytes; aes128gcm needs 20"),
    ("KEY 0x7e577e577e577e577e577e577e5710015a17100Z", "must be 0x followed by 40 hex"),
    ("KEY 7e577e577e577e577e577e577e5710015a171001", "must be 0x followed by 40 hex"),
])
def test_bad_keys_are_errors_that_do_not_show_them(bad: str, why: str) -> None:
    text = f"Idle -> ESPEncap(SPI 0x1001, ALG aes128gcm, {bad},\n SRC 1.2.3.4, DST 5.6.7.8)" \
           " -> Discard;"
    with pytest.raises(ConfigError) as ei:
        build(text, "gw.click")
    msg = str(ei.value)
    assert why in msg and "gw.click:1" in msg
    assert "7e577e577e577e57" not in msg  # neither the message nor the quoted line


def test_other_errors_on_a_line_with_a_key_do_not_quote_it() -> None:
    text = (f"Idle -> ESPEncap({sa_args(ALG_GCM)}, LOCAL 1.2.3.4) -> Discard;\n"
            f"Idle -> ESPDecap(0x{GCM_KEY.hex()}) -> Discard;\n"  # a key in the wrong place
            f"Idle -> ESPDecap({sa_args(ALG_GCM)}, ALG aes256) -> Discard;\n")
    with pytest.raises(ConfigError) as ei:
        build(text, "gw.click")
    msg = str(ei.value)
    assert "LOCAL only narrows an SAS file" in msg
    assert "too many arguments" in msg and "ALG" in msg
    no_secret_in(msg)


@pytest.mark.parametrize("args, why", [
    (f"SAS x.txt, {sa_args(ALG_GCM)}", "give either SAS or the SA arguments"),
    ("SPI 0x1001, ALG aes128gcm", "missing SA argument(s) KEY, SRC, DST"),
    (f"SPI 0x1001, ALG aes128cbc-sha1, KEY 0x{CBC_KEY.hex()}, SRC 1.1.1.1, DST 2.2.2.2",
     "aes128cbc-sha1 needs AUTHKEY"),
    (f"SPI 0x1001, ALG aes128gcm, KEY 0x{GCM_KEY.hex()}, AUTHKEY 0x{AUTH_KEY.hex()}, "
     "SRC 1.1.1.1, DST 2.2.2.2", "takes no AUTHKEY"),
    (f"SPI 12, ALG aes128gcm, KEY 0x{GCM_KEY.hex()}, SRC 1.1.1.1, DST 2.2.2.2",
     "SPI from 256 to 0xffffffff"),
    ("SAS /nonexistent/sas.txt", "cannot read SA file"),
])
def test_configuration_errors(args: str, why: str) -> None:
    with pytest.raises(ConfigError) as ei:
        build(f"Idle -> ESPEncap({args}) -> Discard;")
    assert why in str(ei.value)
    no_secret_in(str(ei.value))


def test_sa_file_errors(tmp_path: Path) -> None:
    sas = tmp_path / "sas.txt"
    sas.write_text("# comment\n" + sa_line(ALG_GCM, 0x1001, TUN_SRC, TUN_DST, "10.2.0.0/16")
                   .replace("key=0x", "key=0xzz"))
    with pytest.raises(ConfigError) as ei:
        build(f'Idle -> ESPEncap(SAS "{sas}") -> Discard;')
    assert f"{sas}:2:" in str(ei.value)
    no_secret_in(str(ei.value))
    sas.write_text(sa_line(ALG_GCM, 0x1001, TUN_SRC, TUN_DST, "10.2.0.0/16"))
    with pytest.raises(ConfigError, match="has no outbound SA with src=9.9.9.9"):
        build(f'Idle -> ESPEncap(SAS "{sas}", LOCAL 9.9.9.9) -> Discard;')
    with pytest.raises(ConfigError, match="has no inbound SA with dst=192.0.2.1"):
        build(f'Idle -> ESPDecap(SAS "{sas}", LOCAL {TUN_SRC}) -> Discard;')
    sas.write_text(sa_line(ALG_GCM, 0x1001, TUN_SRC, TUN_DST))
    with pytest.raises(ConfigError, match="has a selector"):
        build(f'Idle -> ESPEncap(SAS "{sas}") -> Discard;')


def test_cli_run_prints_no_keys(tmp_path: Path) -> None:
    """What `routebricks run` prints (handlers, final counters) never shows a key."""
    pcap = tmp_path / "in.pcap"
    wrpcap(str(pcap), [IP(p) for p in inner_packets()])
    config = (f'FromDump("{pcap}", STOP true) -> e :: ESPEncap({sa_args(ALG_CBC)}) '
              f"-> d :: ESPDecap({sa_args(ALG_CBC)}) -> c :: Counter -> Discard;")
    res = subprocess.run(
        [sys.executable, "-m", "routebricks.cli", "run", "-e", config, "--stats",
         "-h", "e.config", "-h", "e.sa", "-h", "d.sa", "-h", "d.config", "-h", "c.count"],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "KEY <redacted>" in res.stdout + res.stderr
    no_secret_in(res.stdout + res.stderr)


def test_flat_config_hides_inline_keys() -> None:
    r = encap_router(sa_args(ALG_GCM))
    no_secret_in(r.flat_config())
    assert "KEY <redacted>" in r.flat_config()


def test_syntax_errors_quote_the_line_without_its_key() -> None:
    from routebricks.engine.router import parse_text
    from routebricks.errors import ConfigError

    key = "0x" + "ab" * 20
    with pytest.raises(ConfigError) as ei:
        parse_text(f"Idle -> ESPEncap(SPI 0x1001, KEY {key}) -> ]")
    assert "ab" * 20 not in str(ei.value)
    assert "KEY <redacted>" in str(ei.value)


def test_flat_config_with_an_sa_file_holds_no_keys(tmp_path: Path) -> None:
    sas = tmp_path / "sas.txt"
    sas.write_text(sa_line(ALG_GCM, 0x1001, TUN_SRC, TUN_DST, "10.2.0.0/16"))
    r = build(f'Idle -> ESPEncap(SAS "{sas}") -> Discard;')
    assert str(sas) in r.flat_config()
    no_secret_in(r.flat_config())


def test_refuses_several_workers() -> None:
    r = encap_router(sa_args(ALG_GCM))
    with pytest.raises(RouteBricksError, match="ESPEncap runs in one process only"):
        check_multiworker(r, 2)
    check_multiworker(r, 1)
    with pytest.raises(RouteBricksError, match="ESPDecap runs in one process only"):
        check_multiworker(decap_router(sa_args(ALG_GCM)), 4)
