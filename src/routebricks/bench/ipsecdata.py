"""IPsec inputs: inner IPv4 packets (64 B or the synthetic IMIX), the benchmark SA, and pcaps
of them in the clear and ESP-encapsulated (benchmarks/ipsec.py, fig8, fig9).

The keys are the benchmark's own, not secrets.
"""

from __future__ import annotations

import gzip
import os
import platform
import secrets
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np

from routebricks.ipsec import ALG_GCM, SecurityAssociation, encapsulate
from routebricks.packet.batch import PacketBatch
from routebricks.packet.checksum import inet_checksum
from routebricks.packet.pcap import LINKTYPE_RAW, PcapWriter, read_pcap

__all__ = ["AUTH_KEY", "CBC_KEY", "ETH_OVERHEAD", "GCM_KEY", "IMIX_FRAMES", "SPI", "TEMPLATE",
           "TUN_DST", "TUN_SRC", "ip_packet", "kernel_config_line", "kernel_esp_unavailable",
           "make_sa", "sa_args", "sizes_for", "template_batch", "write_esp_pcap",
           "write_inner_pcap", "xfrm_state"]

GCM_KEY = bytes(range(1, 21))
CBC_KEY = bytes(range(1, 17))
AUTH_KEY = bytes(range(100, 120))
TUN_SRC, TUN_DST = "192.0.2.1", "192.0.2.2"
SPI = 0x1001
IMIX_FRAMES = [64] * 7 + [594] * 4 + [1518]  # 7:4:1
ETH_OVERHEAD = 18  # Ethernet header + FCS
TEMPLATE = 4096  # distinct packets, repeated to fill the pcap


def sizes_for(mix: str, n: int, seed: int = 12) -> list[int]:
    """Inner IPv4 packet sizes of ``mix`` ("64B" or "IMIX")."""
    if mix == "64B":
        return [64] * n
    rng = np.random.default_rng(seed)
    frames = (IMIX_FRAMES * (n // len(IMIX_FRAMES) + 1))[:n]
    rng.shuffle(frames)
    return [f - ETH_OVERHEAD for f in frames]


def ip_packet(i: int, size: int) -> bytes:
    """An IPv4/UDP packet of ``size`` bytes from 10.1.x to 10.2.x."""
    h = bytearray(struct.pack("!BBHHHBBHII", 0x45, 0, size, i & 0xFFFF, 0x4000, 64, 17, 0,
                              0x0A010002 + (i & 0xFF), 0x0A020002 + ((i >> 8) & 0xFF)))
    h[10:12] = struct.pack("!H", inet_checksum(bytes(h)))
    udp = struct.pack("!HHHH", 40000 + (i & 0xFF), 9, size - 20, 0)
    return bytes(h) + udp + bytes((i + k) & 0xFF for k in range(size - 28))


def template_batch(mix: str) -> PacketBatch:
    return PacketBatch.from_bytes([ip_packet(i, s)
                                   for i, s in enumerate(sizes_for(mix, TEMPLATE))])


def make_sa(alg: str) -> SecurityAssociation:
    if alg == ALG_GCM:
        return SecurityAssociation(SPI, alg, GCM_KEY, TUN_SRC, TUN_DST)
    return SecurityAssociation(SPI, alg, CBC_KEY, TUN_SRC, TUN_DST, auth_key=AUTH_KEY)


def sa_args(alg: str) -> str:
    """The SA as ESPEncap/ESPDecap arguments."""
    keys = (f"KEY 0x{GCM_KEY.hex()}" if alg == ALG_GCM
            else f"KEY 0x{CBC_KEY.hex()}, AUTHKEY 0x{AUTH_KEY.hex()}")
    return f"SPI {SPI:#x}, ALG {alg}, {keys}, SRC {TUN_SRC}, DST {TUN_DST}"


def write_inner_pcap(path: Path, mix: str, n: int) -> int:
    """``n`` inner packets (the template repeated); returns their total bytes."""
    tmpl = template_batch(mix)
    total = 0
    with PcapWriter(path, LINKTYPE_RAW) as w:
        left = n
        while left > 0:
            k = min(left, len(tmpl))
            part = tmpl.slice(0, k)
            w.write(part)
            total += part.total_bytes()
            left -= k
    return total


def write_esp_pcap(inner: Path, path: Path, alg: str) -> None:
    """The packets of ``inner`` encapsulated with a twin SA (sequence numbers 1..N)."""
    sa = make_sa(alg)
    batch = read_pcap(inner).batch
    with PcapWriter(path, LINKTYPE_RAW) as w:
        for start in range(0, len(batch), 65536):
            part = batch.slice(start, min(len(batch), start + 65536)).copy()
            out, drops = encapsulate(part, sa)
            if drops:
                raise RuntimeError(f"encapsulation dropped packets: {drops}")
            w.write(out)


# ---------------------------------------------------------------------- the Linux kernel's ESP
def kernel_config_line(option: str) -> str | None:
    release = platform.release()
    for path in (Path("/proc/config.gz"), Path(f"/boot/config-{release}")):
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode(errors="replace")
        for line in text.splitlines():
            if line.startswith(f"{option}=") or line == f"# {option} is not set":
                return f"{path}: '{line}'"
        return f"{path}: no {option} line"
    return None


def xfrm_state(alg: str, src: str, dst: str) -> list[str]:
    args = ["src", src, "dst", dst, "proto", "esp", "spi", f"{SPI:#x}", "reqid", "1",
            "mode", "tunnel"]
    if alg == ALG_GCM:
        return args + ["aead", "rfc4106(gcm(aes))", f"0x{GCM_KEY.hex()}", "128"]
    return args + ["enc", "cbc(aes)", f"0x{CBC_KEY.hex()}", "auth-trunc", "hmac(sha1)",
                   f"0x{AUTH_KEY.hex()}", "96"]


def kernel_esp_unavailable(alg: str) -> str | None:
    """None if this kernel takes an ESP SA of ``alg`` (tried in a scratch namespace)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    ip = shutil.which("ip")
    if ip is None:
        return "needs iproute2's ip command"
    from pyroute2 import netns

    name = f"rbxfrm{secrets.token_hex(3)}"
    netns.create(name)
    try:
        res = subprocess.run([ip, "-n", name, "xfrm", "state", "add",
                              *xfrm_state(alg, TUN_SRC, TUN_DST)],
                             capture_output=True, text=True, timeout=30)
    finally:
        netns.remove(name)
    if res.returncode == 0:
        return None
    why = (f"`ip xfrm state add ... proto esp` ({alg}) in a scratch namespace failed: "
           f"{(res.stderr or res.stdout).strip()!r}")
    for opt in ("CONFIG_INET_ESP", "CONFIG_CRYPTO_GCM" if alg == ALG_GCM
                else "CONFIG_CRYPTO_AUTHENC"):
        line = kernel_config_line(opt)
        if line is not None:
            why += f"; {line}"
    return why
