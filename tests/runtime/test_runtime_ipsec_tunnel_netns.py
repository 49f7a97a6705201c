"""An ESP tunnel between two routebricks gateways (examples/ipsec-gateway.click), in network
namespaces made by the test (examples/ipsec-testbed.toml): hosts on either side ping each
other and move data over TCP (content checked, path MTU discovery through the tunnel); only
ESP crosses the link between the gateways; an ESP frame replayed or tampered with on that
link is dropped and counted by the receiving gateway. With AES-128-GCM (the example's SA
file) and AES-128-CBC + HMAC-SHA1-96 (a generated SA file)."""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nstest import CLIENT, SERVER, can_make_namespaces, netns_list, stop_router

REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "examples" / "ipsec-testbed.toml"
CONFIG = REPO / "examples" / "ipsec-gateway.click"
EXAMPLE_SAS = REPO / "examples" / "ipsec-sas.txt"
WEST = {"LAN_IP": "10.1.0.1", "LAN_NET": "10.1.0.0/24", "LAN_MAC": "02:00:00:01:00:01",
        "WAN_IP": "192.0.2.1", "WAN_MAC": "02:00:00:01:01:01"}
EAST = {"LAN_IP": "10.2.0.1", "LAN_NET": "10.2.0.0/24", "LAN_MAC": "02:00:00:02:00:01",
        "WAN_IP": "192.0.2.2", "WAN_MAC": "02:00:00:02:01:01"}




SKIP = can_make_namespaces()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]




def cbc_sa_file(path: Path) -> Path:
    """The example's tunnel with AES-128-CBC + HMAC-SHA1-96 and fresh random keys."""
    from routebricks.ipsec import ALG_CBC, SecurityAssociation, format_sa_file

    sas = [SecurityAssociation(0x1002, ALG_CBC, os.urandom(16), "192.0.2.1", "192.0.2.2",
                               auth_key=os.urandom(20), selectors=["10.2.0.0/16"]),
           SecurityAssociation(0x2002, ALG_CBC, os.urandom(16), "192.0.2.2", "192.0.2.1",
                               auth_key=os.urandom(20), selectors=["10.1.0.0/16"])]
    path.write_text(format_sa_file(sas, include_keys=True))
    path.chmod(0o600)
    return path


class Tunnel:
    def __init__(self, tb: object, socks: dict[str, str], procs: dict[str, subprocess.Popen[str]],
                 alg: str) -> None:
        self.tb = tb
        self.socks = socks
        self.procs = procs
        self.alg = alg

    def handler(self, gw: str, spec: str) -> str:
        res = subprocess.run([sys.executable, "-m", "routebricks.cli", "handler", "read", spec,
                              "-u", self.socks[gw]], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def run(self, node: str, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        return self.tb.run(node, argv, **kw)  # type: ignore[attr-defined,no-any-return]

    def popen(self, node: str, argv: list[str], **kw: object) -> subprocess.Popen[str]:
        return self.tb.popen(node, argv, **kw)  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="module", params=["aes128gcm", "aes128cbc-sha1"])
def tunnel(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Tunnel]:
    from routebricks.netns.testbed import Testbed, TestbedSpec
    from routebricks.runtime.control import wait_for_socket

    alg = request.param
    tmp = tmp_path_factory.mktemp(f"ipsec-{alg}")
    sas = EXAMPLE_SAS if alg == "aes128gcm" else cbc_sa_file(tmp / "sas.txt")
    tb = Testbed(TestbedSpec.from_toml(TESTBED))
    procs: dict[str, subprocess.Popen[str]] = {}
    socks = {gw: str(tmp / f"{gw}.sock") for gw in ("west", "east")}
    try:
        tb.up()
        for gw, defs in (("west", WEST), ("east", EAST)):
            procs[gw] = subprocess.Popen(
                [sys.executable, "-m", "routebricks.cli", "run", str(CONFIG), "--netns",
                 tb.ns(gw), "-u", socks[gw], "--workers", "1", "--duration", "600", "--kp", "64",
                 f"SAS={sas}", *(f"{k}={v}" for k, v in defs.items())],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for gw, proc in procs.items():
            try:
                wait_for_socket(socks[gw], timeout=120)
            except Exception:  # noqa: BLE001 - report the router's own words
                proc.kill()
                _, err = proc.communicate(timeout=30)
                pytest.fail(f"{gw} gateway did not start:\n{err}")
        yield Tunnel(tb, socks, procs, alg)
    finally:
        logs = {gw: stop_router(p, timeout=30)[1] for gw, p in procs.items()}
        tb.down()
        for gw, err in logs.items():  # nothing either gateway printed shows a key
            assert "key=0x" not in err and "KEY 0x" not in err, gw
    assert not any(n.startswith(tb.prefix) for n in netns_list())


def ping(t: Tunnel, host: str, dst: str, count: int = 3) -> subprocess.CompletedProcess[str]:
    return t.run(host, ["ping", "-c", str(count), "-i", "0.2", "-W", "2", dst],
                 capture_output=True, text=True, timeout=60)


def test_ping_through_the_tunnel(tunnel: Tunnel) -> None:
    drops_before = {gw: _drops(tunnel.handler(gw, "decap.drops")) for gw in ("west", "east")}
    res = ping(tunnel, "a", "10.2.0.2", 5)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ttl=62" in res.stdout  # two gateways, each one hop
    res = ping(tunnel, "b", "10.1.0.2")
    assert res.returncode == 0, res.stdout + res.stderr
    # The far gateway's LAN address through the tunnel, the near one's directly.
    for host, dst in (("a", "10.2.0.1"), ("b", "10.1.0.1"), ("a", "10.1.0.1")):
        res = ping(tunnel, host, dst, 2)
        assert res.returncode == 0, (host, dst, res.stdout + res.stderr)
    for gw in ("west", "east"):
        assert int(tunnel.handler(gw, "encap.count")) >= 5
        assert int(tunnel.handler(gw, "decap.count")) >= 5
        assert _drops(tunnel.handler(gw, "decap.drops")) == drops_before[gw]
        sa = tunnel.handler(gw, "encap.sa")
        assert f"alg={tunnel.alg}" in sa and "key=<redacted>" in sa and "0x7e57" not in sa




@pytest.mark.parametrize("src, dst, dst_ip, size", [("a", "b", "10.2.0.2", 3 << 20),
                                                     ("b", "a", "10.1.0.2", 1 << 20)])
def test_tcp_transfer_with_checked_content(tunnel: Tunnel, src: str, dst: str, dst_ip: str,
                                           size: int) -> None:
    data = secrets.token_bytes(size)
    near, far = ("west", "east") if src == "a" else ("east", "west")
    drops_before = _drops(tunnel.handler(far, "decap.drops"))
    server = tunnel.popen(dst, [sys.executable, "-c", SERVER], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        client = tunnel.run(src, [sys.executable, "-c", CLIENT, dst_ip], input=data.hex(),
                            capture_output=True, text=True, timeout=180)
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == hashlib.sha256(data).hexdigest()
        out, _ = server.communicate(timeout=60)
        assert out.split() == [str(len(data)), hashlib.sha256(data).hexdigest()]
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    # a's full-size segments did not fit the tunnel: a learned the tunnel MTU from west's
    # ICMP "fragmentation needed" (path MTU discovery). (b's transfer, later, may already
    # be offered a smaller MSS by a, whose route to b caches that MTU.)
    if src == "a":
        route = tunnel.run(src, ["ip", "route", "get", dst_ip], capture_output=True, text=True)
        assert "mtu 1438" in route.stdout, route.stdout
    # No packet was lost to a bad ICV, a replay or bad padding on the way.
    assert _drops(tunnel.handler(far, "decap.drops")) == drops_before
    assert int(tunnel.handler(near, "encap.count")) > size // 1438


SNIFFER = textwrap.dedent("""
    import socket, sys, time
    want = int(sys.argv[1])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind(("eth1", 0)); s.settimeout(0.5)
    print("ready", flush=True)
    frames = []
    deadline = time.time() + 30
    while time.time() < deadline and sum(f[23] == 50 and not out for f, out in frames) < want:
        try:
            f, addr = s.recvfrom(4096)
        except TimeoutError:
            continue
        if f[12:14] == b"\\x08\\x00":
            frames.append((f, addr[2] == socket.PACKET_OUTGOING))
    for f, out in frames:
        print("out" if out else "in", f.hex(), flush=True)
""")

INJECT = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth1", 0))
    for h in sys.argv[1:]:
        s.send(bytes.fromhex(h))
""")

UDP_SEND = textwrap.dedent("""
    import socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(int(sys.argv[2])):
        s.sendto(b"PLAINTEXT-MARKER-%04d" % i, (sys.argv[1], 9999))
        time.sleep(0.01)
""")


def test_only_esp_on_the_wan_and_replays_are_dropped(tunnel: Tunnel) -> None:
    n = 10
    assert ping(tunnel, "a", "10.2.0.2", 1).returncode == 0  # ARP done on every link
    sniff = tunnel.popen("east", [sys.executable, "-c", SNIFFER, str(n)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert sniff.stdout is not None
        assert sniff.stdout.readline().strip() == "ready"
        res = tunnel.run("a", [sys.executable, "-c", UDP_SEND, "10.2.0.2", str(n)],
                         capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        out, err = sniff.communicate(timeout=60)
    finally:
        if sniff.poll() is None:
            sniff.kill()
            sniff.communicate()
    seen = [line.split() for line in out.splitlines() if line.strip()]
    frames = [bytes.fromhex(h) for _, h in seen]
    assert all(f[23] == 50 for f in frames)  # every IPv4 frame on the WAN, both ways, is ESP
    assert not any(b"PLAINTEXT-MARKER" in f for f in frames)
    esp = [bytes.fromhex(h) for way, h in seen if way == "in"]  # west -> east
    assert len(esp) >= n, err
    assert {f[26:34] for f in esp} == {bytes([192, 0, 2, 1, 192, 0, 2, 2])}
    before = _drops(tunnel.handler("east", "decap.drops"))
    # A forgery: a fresh sequence number (else it is a replay, checked first) that the
    # ICV does not cover.
    tampered = bytearray(esp[-1])
    tampered[38:42] = (0x7FFFFF00).to_bytes(4, "big")
    replays = [f.hex() for f in esp[:3]]
    res = tunnel.run("west", [sys.executable, "-c", INJECT, *replays, bytes(tampered).hex()],
                     capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    after = before
    for _ in range(50):  # the gateway handles them within a poll or two
        after = _drops(tunnel.handler("east", "decap.drops"))
        if after.get("replayed", 0) >= before.get("replayed", 0) + 3 \
                and after.get("bad ICV", 0) > before.get("bad ICV", 0):
            break
        time.sleep(0.1)
    assert after.get("replayed", 0) - before.get("replayed", 0) == 3
    assert after.get("bad ICV", 0) - before.get("bad ICV", 0) == 1


def _drops(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        if line.strip():
            k, why = line.split("\t", 1)
            out[why] = int(k)
    return out
