"""Interoperability of routebricks.ipsec with independent ESP implementations.

* scapy (``scapy.layers.ipsec``) decrypts our tunnel-mode packets to the original inner
  packets, and we decrypt and verify what scapy encrypts (both algorithms).
* tshark's ESP dissector decrypts our packets (inner addresses visible) and reports the ICV as
  good, and as bad for a tampered copy.

The tshark SA is given with ``-o uat:esp_sa:<record>``; the record's fields (protocol, src,
dst, SPI, encryption algorithm, key, authentication algorithm, key) and algorithm labels are
those of Wireshark 4.0 (``epan/dissectors/packet-ipsec.c``), checked against tshark 4.0.17.
Inner packets are well-formed ICMP/UDP without a payload dissector: a dissector exception in
the inner packet (e.g. DNS on junk) would stop tshark before it adds the ICV verdict.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.ipsec import ESP
from scapy.layers.ipsec import SecurityAssociation as ScapySA
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from routebricks.ipsec import ALG_CBC, ALG_GCM, SecurityAssociation, decapsulate, encapsulate
from routebricks.packet.batch import PacketBatch

GCM_KEY = bytes.fromhex("feffe9928665731c6d6a8f9467308308" "cafebabe")  # key || salt
CBC_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
AUTH_KEY = bytes.fromhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b")
TUN_SRC, TUN_DST = "198.51.100.1", "198.51.100.2"
SPI = {ALG_GCM: 0x0000A001, ALG_CBC: 0x0000B002}
ALGS = (ALG_GCM, ALG_CBC)


def our_sa(alg: str) -> SecurityAssociation:
    if alg == ALG_GCM:
        return SecurityAssociation(SPI[alg], alg, GCM_KEY, TUN_SRC, TUN_DST)
    return SecurityAssociation(SPI[alg], alg, CBC_KEY, TUN_SRC, TUN_DST, auth_key=AUTH_KEY)


def scapy_sa(alg: str, seq_num: int = 1) -> ScapySA:
    tunnel = IP(src=TUN_SRC, dst=TUN_DST)
    if alg == ALG_GCM:  # scapy takes the RFC 4106 key material: key || salt (20 bytes)
        return ScapySA(ESP, spi=SPI[alg], seq_num=seq_num, crypt_algo="AES-GCM",
                       crypt_key=GCM_KEY, tunnel_header=tunnel)
    return ScapySA(ESP, spi=SPI[alg], seq_num=seq_num, crypt_algo="AES-CBC", crypt_key=CBC_KEY,
                   auth_algo="HMAC-SHA1-96", auth_key=AUTH_KEY, tunnel_header=tunnel)


def inner_packets() -> list[bytes]:
    """Well-formed inner IPv4 packets of assorted protocols and sizes."""
    pkts = []
    for i in range(12):
        ip = IP(src="10.1.0.5", dst=f"10.2.0.{i + 1}", id=100 + i, tos=i * 8,
                flags="DF" if i % 2 else 0)
        if i % 3 == 0:
            p = ip / ICMP(id=7, seq=i) / Raw(bytes(range(i * 11 % 256)) * 1)
        elif i % 3 == 1:
            p = ip / UDP(sport=40000 + i, dport=40001) / Raw(b"u" * (i * 37))
        else:
            p = ip / TCP(sport=40000, dport=40002, flags="S", seq=i)
        pkts.append(bytes(p))
    pkts.append(bytes(IP(src="10.1.0.5", dst="10.2.0.99") / UDP(sport=40000, dport=40001)
                      / Raw(b"z" * 1400)))
    return pkts


# ---------------------------------------------------------------------- scapy
@pytest.mark.parametrize("alg", ALGS)
def test_scapy_decrypts_our_packets(alg: str) -> None:
    pkts = inner_packets()
    out, drops = encapsulate(PacketBatch.from_bytes(pkts), our_sa(alg))
    assert drops == {}
    ssa = scapy_sa(alg)
    for raw, inner in zip(out.to_list(), pkts, strict=True):
        outer = IP(raw)
        assert outer.proto == 50 and outer.src == TUN_SRC and outer.dst == TUN_DST
        assert outer.ttl == 64 and outer.ihl == 5 and outer.len == len(raw)
        fresh = IP(raw)  # scapy recomputes a deleted checksum: ours must equal it
        del fresh.chksum
        assert IP(bytes(fresh)).chksum == outer.chksum
        dec = ssa.decrypt(outer)  # verifies the ICV (raises on mismatch)
        assert bytes(dec) == inner


@pytest.mark.parametrize("alg", ALGS)
def test_we_decrypt_scapy_packets(alg: str) -> None:
    pkts = inner_packets()
    ssa = scapy_sa(alg, seq_num=1000)
    wire = [bytes(ssa.encrypt(IP(p))) for p in pkts]
    rx = our_sa(alg)
    got, drops = decapsulate(PacketBatch.from_bytes(wire), rx)
    assert drops == {}
    assert got.to_list() == pkts
    assert rx.replay_top == 1000 + len(pkts) - 1
    # The same packets again are replays; a tampered one fails its ICV.
    forged = bytearray(bytes(ssa.encrypt(IP(pkts[0]))))
    forged[-3] ^= 0x01
    got, drops = decapsulate(PacketBatch.from_bytes([*wire[:3], bytes(forged)]), rx)
    assert len(got) == 0 and drops == {"replayed": 3, "bad ICV": 1}


@pytest.mark.parametrize("alg", ALGS)
def test_we_decrypt_scapy_packets_out_of_order(alg: str) -> None:
    pkts = inner_packets()
    ssa = scapy_sa(alg)
    wire = [bytes(ssa.encrypt(IP(p))) for p in pkts]
    order = [5, 0, 3, 1, 12, 2, 4, 9, 6, 8, 7, 11, 10]
    got, drops = decapsulate(PacketBatch.from_bytes([wire[i] for i in order]), our_sa(alg))
    assert drops == {}
    assert got.to_list() == [pkts[i] for i in order]


# ---------------------------------------------------------------------- tshark
TSHARK = shutil.which("tshark")
UAT_ALGS = {
    ALG_GCM: ("AES-GCM with 16 octet ICV [RFC4106]", GCM_KEY, "NULL", b""),
    ALG_CBC: ("AES-CBC [RFC3602]", CBC_KEY, "HMAC-SHA-1-96 [RFC2404]", AUTH_KEY),
}


def esp_sa_record(alg: str) -> str:
    enc, key, auth, akey = UAT_ALGS[alg]
    fields = ["IPv4", TUN_SRC, TUN_DST, f"0x{SPI[alg]:08x}", enc, f"0x{key.hex()}", auth,
              f"0x{akey.hex()}" if akey else ""]
    return ",".join(f'"{f}"' for f in fields)


def run_tshark(pcap: Path, alg: str, home: Path) -> list[list[str]]:
    assert TSHARK is not None
    # A private HOME/XDG_CONFIG_HOME: no user profile or preference can change the result.
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    cmd = [TSHARK, "-n", "-r", str(pcap),
           "-o", "esp.enable_encryption_decode:TRUE",
           "-o", "esp.enable_authentication_check:TRUE",
           "-o", f"uat:esp_sa:{esp_sa_record(alg)}",
           "-T", "fields", "-E", "separator=|",
           "-e", "esp.spi", "-e", "esp.sequence", "-e", "ip.src", "-e", "ip.dst",
           "-e", "esp.icv_good", "-e", "esp.icv_bad", "-e", "esp.protocol"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return [line.split("|") for line in r.stdout.splitlines() if line.strip()]


@pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (apt-get install tshark)")
@pytest.mark.parametrize("alg", ALGS)
def test_tshark_decrypts_and_verifies_our_packets(alg: str, tmp_path: Path) -> None:
    pkts = inner_packets()
    out, drops = encapsulate(PacketBatch.from_bytes(pkts), our_sa(alg))
    assert drops == {}
    wire = out.to_list()
    tampered = bytearray(wire[1])
    tampered[-1] ^= 0x55
    frames = [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(w)
              for w in [*wire, bytes(tampered)]]
    pcap = tmp_path / f"esp-{alg}.pcap"
    wrpcap(str(pcap), frames)
    rows = run_tshark(pcap, alg, tmp_path)
    assert len(rows) == len(frames)
    for k, (row, inner) in enumerate(zip(rows, [*pkts, pkts[1]], strict=True)):
        spi, seq, src, dst, good, bad, nh = row
        assert int(spi, 0) == SPI[alg]
        inner_ip = IP(inner)
        if k < len(pkts):
            assert int(seq) == k + 1
            # Decrypted: the inner header is dissected after the outer one.
            assert src == f"{TUN_SRC},{inner_ip.src}"
            assert dst == f"{TUN_DST},{inner_ip.dst}"
            assert int(nh, 0) == 4
            assert (good, bad) == ("1", "0"), f"packet {k}: ICV not reported good: {row}"
        else:
            assert (good, bad) == ("0", "1"), f"tampered packet not flagged: {row}"
