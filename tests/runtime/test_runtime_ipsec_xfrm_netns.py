"""Interoperability with the Linux kernel's IPsec (xfrm): an ESP tunnel between routebricks
(examples/ipsec-gateway.click, the "west" gateway) and a Linux namespace whose kernel does
ESP (``ip xfrm state``/``policy``), carrying ping and a TCP transfer (content checked)
between a host behind each.

    a 10.1.0.2 -- [west: routebricks] 192.0.2.1 ==ESP== 192.0.2.2 [k: Linux xfrm] -- b 10.2.0.2

Skipped, saying why, where the kernel cannot do ESP (CONFIG_INET_ESP off, or the cipher
missing): that is detected for real, by reading the kernel configuration and by adding the
SA with ``ip xfrm state add`` in a throwaway namespace.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import platform
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nstest import CLIENT, SERVER, stop_router

from routebricks.ipsec import ALG_CBC, ALG_GCM, SecurityAssociation, format_sa_file

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "examples" / "ipsec-gateway.click"
WEST_IP, KERNEL_IP = "192.0.2.1", "192.0.2.2"
WEST_NET, EAST_NET = "10.1.0.0/16", "10.2.0.0/16"
SPI_OUT, SPI_IN = 0x1001, 0x2001  # as seen from west

TOPOLOGY = f"""
[[hosts]]
name = "a"
default_route = "10.1.0.1"
interfaces = [{{ name = "eth0", addresses = ["10.1.0.2/24"] }}]

[[hosts]]
name = "west"
interfaces = [
  {{ name = "eth0", mac = "02:00:00:01:00:01" }},
  {{ name = "eth1", mac = "02:00:00:01:01:01" }},
]

[[hosts]]
name = "k"
ip_forward = true
routes = [{{ dst = "{WEST_NET}", gateway = "{WEST_IP}" }}]
interfaces = [
  {{ name = "eth1", addresses = ["{KERNEL_IP}/24"] }},
  {{ name = "eth0", addresses = ["10.2.0.1/24"] }},
]

[[hosts]]
name = "b"
default_route = "10.2.0.1"
interfaces = [{{ name = "eth0", addresses = ["10.2.0.2/24"] }}]

[[links]]
a = "a:eth0"
b = "west:eth0"

[[links]]
a = "west:eth1"
b = "k:eth1"

[[links]]
a = "k:eth0"
b = "b:eth0"
"""


# ---------------------------------------------------------------------- what the kernel can do
def kernel_config_line(option: str) -> str | None:
    """``option``'s line in the running kernel's configuration ('CONFIG_X=y' or '# CONFIG_X
    is not set'), with where it was read; None if no configuration is readable."""
    release = platform.release()
    for path in (Path("/proc/config.gz"), Path(f"/boot/config-{release}"),
                 Path(f"/lib/modules/{release}/build/.config")):
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


def xfrm_state_args(alg: str, spi: int, src: str, dst: str, key: bytes,
                    auth_key: bytes | None) -> list[str]:
    """``ip xfrm state add`` arguments for one tunnel-mode SA."""
    args = ["src", src, "dst", dst, "proto", "esp", "spi", f"{spi:#x}", "reqid", str(spi),
            "mode", "tunnel", "replay-window", "64"]
    if alg == ALG_GCM:  # key material = AES key || salt; 128-bit ICV
        return args + ["aead", "rfc4106(gcm(aes))", f"0x{key.hex()}", "128"]
    assert auth_key is not None
    return args + ["enc", "cbc(aes)", f"0x{key.hex()}",
                   "auth-trunc", "hmac(sha1)", f"0x{auth_key.hex()}", "96"]


def probe_kernel_esp(alg: str) -> str | None:
    """None if the kernel accepts an ESP SA of ``alg``; else why not (what was detected)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, ip xfrm)"
    ip = shutil.which("ip")
    if ip is None:
        return "needs iproute2's ip command (ip xfrm)"
    from pyroute2 import netns

    config = kernel_config_line("CONFIG_INET_ESP")
    name = f"rbxfrm{secrets.token_hex(3)}"
    try:
        netns.create(name)
    except Exception as e:  # noqa: BLE001 - any failure means: cannot test here
        return f"cannot create network namespaces: {e}"
    try:
        key = os.urandom(20 if alg == ALG_GCM else 16)
        auth = os.urandom(20) if alg == ALG_CBC else None
        cmd = [ip, "-n", name, "xfrm", "state", "add",
               *xfrm_state_args(alg, SPI_OUT, WEST_IP, KERNEL_IP, key, auth)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    finally:
        netns.remove(name)
    if res.returncode == 0:
        return None
    algo = "aead rfc4106(gcm(aes))" if alg == ALG_GCM else "enc cbc(aes) auth-trunc hmac(sha1)"
    why = (f"the Linux kernel ({platform.release()}) cannot do ESP with {alg}: "
           f"`ip xfrm state add ... proto esp ... {algo}` in a scratch namespace failed: "
           f"{(res.stderr or res.stdout).strip()!r}")
    if config is not None:
        why += f"; kernel configuration {config}"
        if "is not set" in config:
            why += " (CONFIG_INET_ESP off: the kernel lacks ESP)"
    if alg == ALG_GCM and (gcm := kernel_config_line("CONFIG_CRYPTO_GCM")) is not None:
        why += f"; {gcm}"
    return why


SKIP_ROOT = None if os.geteuid() == 0 else "needs root (network namespaces, ip xfrm)"
PROBES = {alg: probe_kernel_esp(alg) for alg in (ALG_GCM, ALG_CBC)} if SKIP_ROOT is None \
    else {ALG_GCM: SKIP_ROOT, ALG_CBC: SKIP_ROOT}
pytestmark = [pytest.mark.netns]


def test_kernel_configuration_detection_reads_a_real_line() -> None:
    """The detection itself works here (whatever the kernel can do)."""
    line = kernel_config_line("CONFIG_XFRM")
    if line is None:
        pytest.skip("no readable kernel configuration (/proc/config.gz, /boot/config-*)")
    assert "CONFIG_XFRM" in line


# ---------------------------------------------------------------------- the tunnel
class KernelTunnel:
    def __init__(self, tb: object, sock: str, alg: str) -> None:
        self.tb = tb
        self.sock = sock
        self.alg = alg

    def run(self, node: str, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        return self.tb.run(node, argv, **kw)  # type: ignore[attr-defined,no-any-return]

    def popen(self, node: str, argv: list[str], **kw: object) -> subprocess.Popen[str]:
        return self.tb.popen(node, argv, **kw)  # type: ignore[attr-defined,no-any-return]

    def handler(self, spec: str) -> str:
        res = subprocess.run([sys.executable, "-m", "routebricks.cli", "handler", "read", spec,
                              "-u", self.sock], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout


def make_sas(alg: str) -> list[SecurityAssociation]:
    """Fresh random keys for both directions: (west -> kernel, kernel -> west)."""
    def one(spi: int, src: str, dst: str, sel: str) -> SecurityAssociation:
        if alg == ALG_GCM:
            return SecurityAssociation(spi, alg, os.urandom(20), src, dst, selectors=[sel])
        return SecurityAssociation(spi, alg, os.urandom(16), src, dst,
                                   auth_key=os.urandom(20), selectors=[sel])

    return [one(SPI_OUT, WEST_IP, KERNEL_IP, EAST_NET), one(SPI_IN, KERNEL_IP, WEST_IP, WEST_NET)]


def kernel_side_commands(sas: list[SecurityAssociation]) -> list[list[str]]:
    """``ip xfrm`` commands for the kernel end (k) of the tunnel."""
    cmds = []
    for line, sa in zip(format_sa_file(sas, include_keys=True).splitlines(), sas, strict=True):
        fields = dict(f.split("=", 1) for f in line.split())
        key = bytes.fromhex(fields["key"][2:])
        auth = bytes.fromhex(fields["authkey"][2:]) if "authkey" in fields else None
        cmds.append(["ip", "xfrm", "state", "add",
                     *xfrm_state_args(sa.alg, sa.spi, fields["src"], fields["dst"], key, auth)])
    # k sends 10.2/16 -> 10.1/16 through SPI_IN; takes (and forwards) 10.1/16 -> 10.2/16
    # arriving through SPI_OUT.
    tmpl_out = ["tmpl", "src", KERNEL_IP, "dst", WEST_IP, "proto", "esp", "reqid", str(SPI_IN),
                "mode", "tunnel"]
    tmpl_in = ["tmpl", "src", WEST_IP, "dst", KERNEL_IP, "proto", "esp", "reqid", str(SPI_OUT),
               "mode", "tunnel"]
    cmds.append(["ip", "xfrm", "policy", "add", "src", EAST_NET, "dst", WEST_NET, "dir", "out",
                 *tmpl_out])
    for d in ("in", "fwd"):
        cmds.append(["ip", "xfrm", "policy", "add", "src", WEST_NET, "dst", EAST_NET, "dir", d,
                     *tmpl_in])
    return cmds


@pytest.fixture(scope="module", params=[ALG_GCM, ALG_CBC])
def kernel_tunnel(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[KernelTunnel]:
    alg = request.param
    if PROBES[alg] is not None:
        pytest.skip(PROBES[alg])
    from routebricks.netns.testbed import Testbed, TestbedSpec
    from routebricks.runtime.control import wait_for_socket

    tmp = tmp_path_factory.mktemp(f"xfrm-{alg}")
    sas = make_sas(alg)
    sa_file = tmp / "sas.txt"
    sa_file.write_text(format_sa_file(sas, include_keys=True))
    sa_file.chmod(0o600)
    sock = str(tmp / "west.sock")
    tb = Testbed(TestbedSpec.from_toml(TOPOLOGY))
    proc = None
    try:
        tb.up()
        for cmd in kernel_side_commands(sas):
            res = tb.run("k", cmd, capture_output=True, text=True, timeout=30)
            assert res.returncode == 0, f"{cmd[:4]}: {res.stderr}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "routebricks.cli", "run", str(CONFIG), "--netns",
             tb.ns("west"), "-u", sock, "--workers", "1", "--duration", "600", "--kp", "64",
             f"SAS={sa_file}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_socket(sock, timeout=120)
        except Exception:  # noqa: BLE001 - report the router's own words
            proc.kill()
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"west gateway did not start:\n{err}")
        yield KernelTunnel(tb, sock, alg)
    finally:
        if proc is not None:
            stop_router(proc)
        tb.down()
    from pyroute2 import netns

    assert not any(n.startswith(tb.prefix) for n in netns.listnetns())


def ping(t: KernelTunnel, host: str, dst: str, count: int = 3) -> subprocess.CompletedProcess[str]:
    return t.run(host, ["ping", "-c", str(count), "-i", "0.2", "-W", "2", dst],
                 capture_output=True, text=True, timeout=60)


def xfrm_state_packets(t: KernelTunnel) -> dict[int, int]:
    """Packets per SPI from the kernel's ``ip -s xfrm state``."""
    out = t.run("k", ["ip", "-s", "xfrm", "state"], capture_output=True, text=True).stdout
    counts: dict[int, int] = {}
    spi = None
    for line in out.splitlines():
        words = line.split()
        if "spi" in words:
            spi = int(words[words.index("spi") + 1].split("(")[0], 16)  # 0x00001001(4097)
        if spi is not None and "packets" in line and "bytes" in line and "lifetime" not in line:
            # "  123(bytes), 4(packets)" style lines of the current lifetime usage
            for w in words:
                if w.endswith("(packets)"):
                    counts[spi] = counts.get(spi, 0) + int(w.split("(")[0])
    return counts


def test_ping_through_a_kernel_esp_endpoint(kernel_tunnel: KernelTunnel) -> None:
    res = ping(kernel_tunnel, "a", "10.2.0.2", 5)
    assert res.returncode == 0, res.stdout + res.stderr
    res = ping(kernel_tunnel, "b", "10.1.0.2", 3)
    assert res.returncode == 0, res.stdout + res.stderr
    assert int(kernel_tunnel.handler("encap.count")) >= 5
    assert int(kernel_tunnel.handler("decap.count")) >= 5
    assert kernel_tunnel.handler("decap.drops").strip() == ""
    counts = xfrm_state_packets(kernel_tunnel)
    assert counts.get(SPI_OUT, 0) >= 5 and counts.get(SPI_IN, 0) >= 5, counts




@pytest.mark.parametrize("src, dst, dst_ip", [("a", "b", "10.2.0.2"), ("b", "a", "10.1.0.2")])
def test_tcp_through_a_kernel_esp_endpoint(kernel_tunnel: KernelTunnel, src: str, dst: str,
                                           dst_ip: str) -> None:
    data = secrets.token_bytes(2 << 20)
    server = kernel_tunnel.popen(dst, [sys.executable, "-c", SERVER], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        client = kernel_tunnel.run(src, [sys.executable, "-c", CLIENT, dst_ip],
                                   input=data.hex(), capture_output=True, text=True,
                                   timeout=180)
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == hashlib.sha256(data).hexdigest()
        out, _ = server.communicate(timeout=60)
        assert out.split() == [str(len(data)), hashlib.sha256(data).hexdigest()]
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert kernel_tunnel.handler("decap.drops").strip() == ""
