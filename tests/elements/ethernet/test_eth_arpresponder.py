"""ARPResponder: replies are checked against scapy's ARP implementation, and against a real
Linux host in a network namespace (the host must accept our reply into its neighbour table)."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scapy.all import ARP, IP, UDP, Ether, Raw, raw

from routebricks.elements.ethernet.arpresponder import ARPResponder
from routebricks.engine.element import Element
from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError
from routebricks.packet.batch import PacketBatch

OUR = "02:00:00:00:00:01"
OTHER = "02:00:00:00:00:07"
PEER = "02:00:00:00:00:99"
BCAST = "ff:ff:ff:ff:ff:ff"


# ---------------------------------------------------------------------- harness
class _Src(Element):
    """Feeds nothing; its output only gives the tested element a connected input."""

    port_count = "0/1"
    processing = "/h"


class _Sink(Element):
    """Keeps every batch pushed into it."""

    port_count = "1/0"
    processing = "h/"

    def configure(self) -> None:
        self.batches: list[PacketBatch] = []

    def push(self, port: int, batch: PacketBatch) -> None:
        self.batches.append(batch)

    def frames(self) -> list[bytes]:
        return [f for b in self.batches for f in b.to_list()]


@dataclass
class Rig:
    router: Router
    ar: ARPResponder
    out0: _Sink
    out1: _Sink | None

    def push(self, frames: list[bytes], **annos: list[int]) -> None:
        b = PacketBatch.from_bytes(frames)
        for k, v in annos.items():
            b.anno(k)[:] = v
        self.ar.push(0, b)


def rig(*entries: str, second_output: bool = True) -> Rig:
    src, ar, out0 = _Src(), ARPResponder(*entries), _Sink()
    src >> ar >> out0
    out1 = None
    if second_output:
        out1 = _Sink()
        ar[1] >> out1
    r = Router.from_elements(src)
    r.initialize()
    return Rig(r, ar, out0, out1)


def request(
    target: str, *, sender_ip: str = "10.0.0.5", sender_mac: str = PEER, pad: bool = False
) -> bytes:
    f = raw(
        Ether(dst=BCAST, src=sender_mac)
        / ARP(op=1, hwsrc=sender_mac, psrc=sender_ip, hwdst="00:00:00:00:00:00", pdst=target)
    )
    return f + b"\x00" * (60 - len(f)) if pad else f


def expected_reply(req: bytes, our_mac: str) -> bytes:
    """The reply scapy builds for a request: the independent oracle."""
    a = Ether(req)[ARP]
    return raw(
        Ether(dst=a.hwsrc, src=our_mac, type=0x0806)
        / ARP(
            hwtype=1,
            ptype=0x0800,
            hwlen=6,
            plen=4,
            op=2,
            hwsrc=our_mac,
            psrc=a.pdst,
            hwdst=a.hwsrc,
            pdst=a.psrc,
        )
    )


# ---------------------------------------------------------------------- formats
def test_reply_format_matches_scapy():
    t = rig(f"10.0.0.1 {OUR}")
    reqs = [
        request("10.0.0.1"),
        request("10.0.0.1", sender_ip="10.0.0.77", sender_mac="02:aa:bb:cc:dd:ee", pad=True),
    ]
    t.push(reqs)
    got = t.out0.frames()
    assert got == [expected_reply(r, OUR) for r in reqs]
    for g in got:
        assert len(g) == 42  # Ethernet + ARP, unpadded (as Click)
        a = Ether(g)[ARP]
        assert a.op == 2 and a.hwsrc == OUR and a.psrc == "10.0.0.1"
    assert Ether(got[1])[ARP].pdst == "10.0.0.77" and Ether(got[1]).dst == "02:aa:bb:cc:dd:ee"
    assert t.out1 is not None and not t.out1.batches


def test_only_matching_requests_answered_others_to_output_1_in_order():
    t = rig(f"10.0.0.1 10.0.1.0/24 {OUR}", f"10.0.1.7 {OTHER}")
    ip_pkt = raw(
        Ether(dst=OUR, src=PEER) / IP(src="10.0.0.5", dst="10.0.0.1") / UDP() / Raw(b"x" * 20)
    )
    arp_reply = raw(
        Ether(dst=OUR, src=PEER)
        / ARP(op=2, hwsrc=PEER, psrc="10.0.0.5", hwdst=OUR, pdst="10.0.0.1")
    )
    wrong_hrd = raw(
        Ether(dst=BCAST, src=PEER)
        / ARP(hwtype=6, op=1, hwsrc=PEER, psrc="10.0.0.5", pdst="10.0.0.1")
    )
    frames = [
        request("10.0.0.1"),  # answered, OUR
        ip_pkt,
        request("10.0.2.1"),  # nobody's
        request("10.0.1.7", pad=True),  # /32 beats /24: OTHER
        arp_reply,
        request("10.0.0.1")[:41],  # too short
        wrong_hrd,
        request("10.0.1.200"),  # the /24: OUR
    ]
    t.push(frames)
    assert t.out0.frames() == [
        expected_reply(frames[0], OUR),
        expected_reply(frames[3], OTHER),
        expected_reply(frames[7], OUR),
    ]
    assert t.out1 is not None
    assert t.out1.frames() == [frames[i] for i in (1, 2, 4, 5, 6)]
    assert not t.ar.drops


def test_unanswered_dropped_and_counted_without_output_1():
    t = rig(f"10.0.0.1 {OUR}", second_output=False)
    t.push([request("10.0.0.1"), request("10.0.0.2"), b"\x00" * 30])
    assert len(t.out0.frames()) == 1
    assert t.ar.drops == {"not an ARP request for our addresses": 2}


def test_large_batch_vectorized_against_scapy():
    rng = np.random.default_rng(7)
    t = rig(f"10.1.0.0/16 {OUR}", f"10.1.2.0/24 {OTHER}", "10.1.2.3 02:00:00:00:00:03")
    targets = [
        f"10.{rng.integers(0, 3)}.{rng.integers(0, 4)}.{rng.integers(0, 6)}" for _ in range(600)
    ]
    frames = [
        request(
            tg,
            sender_ip=f"192.168.{i // 256}.{i % 256}",
            sender_mac=f"02:10:00:00:{i // 256:02x}:{i % 256:02x}",
            pad=bool(i % 2),
        )
        for i, tg in enumerate(targets)
    ]
    t.push(frames, in_port=list(range(600)))

    def owner(tg: str) -> str | None:
        if tg == "10.1.2.3":
            return "02:00:00:00:00:03"
        if tg.startswith("10.1.2."):
            return OTHER
        if tg.startswith("10.1."):
            return OUR
        return None

    want = [
        expected_reply(f, owner(tg)) for f, tg in zip(frames, targets, strict=True) if owner(tg)
    ]
    assert len(want) > 100
    assert t.out0.frames() == want
    assert t.out1 is not None
    assert t.out1.frames() == [f for f, tg in zip(frames, targets, strict=True) if not owner(tg)]
    # The in_port annotation travels with each reply.
    got_ports = np.concatenate([b.anno("in_port") for b in t.out0.batches])
    assert got_ports.tolist() == [i for i, tg in enumerate(targets) if owner(tg)]


# ---------------------------------------------------------------------- configuration
def test_table_order_and_duplicates(capsys):
    t = rig(f"10.0.0.0/8 10.0.0.1 {OUR}", f"10.0.0.0/8 {OTHER}")
    assert "multiple entries for 10.0.0.0/8" in capsys.readouterr().err
    assert t.router.read_handler(f"{t.ar.name}.table") == (
        "10.0.0.1/32 02-00-00-00-00-01\n10.0.0.0/8 02-00-00-00-00-07\n"
    )
    assert t.ar.lookup("10.9.9.9") == "02-00-00-00-00-07"
    assert t.ar.lookup("10.0.0.1") == "02-00-00-00-00-01"
    assert t.ar.lookup("11.0.0.1") is None


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        (f"10.0.0.1 {OUR} {OTHER}", "more than one ETH"),
        ("10.0.0.1", "missing ETH"),
        (OUR, "missing IP/MASK"),
        (f"10.0.0.1 bogus {OUR}", "expected IP/MASK ETH"),
        (f"10.0.0.1/33 {OUR}", "expected IP/MASK ETH"),
    ],
)
def test_config_errors(arg, message):
    with pytest.raises(ConfigError, match=re.escape(f"argument 0: {message}")):
        Router.from_text(f"Idle -> ARPResponder({arg}) -> Discard;")


def test_add_and_remove_handlers():
    t = rig(f"10.0.0.1 {OUR}")
    name = t.ar.name
    t.router.write_handler(f"{name}.add", f"10.0.5.0/24 10.0.6.6 {OTHER}")
    assert t.router.read_handler(f"{name}.table") == (
        "10.0.0.1/32 02-00-00-00-00-01\n10.0.6.6/32 02-00-00-00-00-07\n"
        "10.0.5.0/24 02-00-00-00-00-07\n"
    )
    t.push([request("10.0.5.9")])
    assert t.out0.frames() == [expected_reply(request("10.0.5.9"), OTHER)]
    t.router.write_handler(f"{name}.remove", "10.0.5.0/24")
    t.push([request("10.0.5.9")])
    assert len(t.out0.frames()) == 1
    with pytest.raises(HandlerError, match=re.escape("10.0.5.0/24 not found")):
        t.router.write_handler(f"{name}.remove", "10.0.5.0/24")
    with pytest.raises(HandlerError, match="missing ETH"):
        t.router.write_handler(f"{name}.add", "10.0.9.9")


def test_click_text_configuration_and_docstring():
    r = Router.from_text(
        f"Idle -> ar :: ARPResponder(18.26.4.24 {OUR}, 18.26.7.0/24 {OUR}) -> Discard;"
    )
    assert r.read_handler("ar.table").splitlines() == [
        "18.26.4.24/32 02-00-00-00-00-01",
        "18.26.7.0/24 02-00-00-00-00-01",
    ]
    cls = get_class("ARPResponder")
    assert cls is ARPResponder and cls.GROUP == "ethernet"
    handlers_doc = cls.doc().split("Handlers:")[1].split("Example:")[0]
    for h in ("table", "add", "remove"):
        assert h in handlers_doc


# ---------------------------------------------------------------------- a real Linux peer
PEER_IP = "10.9.0.2"
OUR_IP = "10.9.0.1"
OUR_NS_MAC = "02:00:00:09:00:01"
ETH_P_ALL = 0x0003


def _netns_unavailable_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN/CAP_SYS_ADMIN) for network namespaces"
    for tool in ("nsenter", "ping", "ip"):
        if shutil.which(tool) is None:
            return f"needs the {tool!r} command"
    try:
        from pyroute2 import netns
    except ImportError as e:  # pragma: no cover
        return f"pyroute2 missing: {e}"
    probe = f"rbarpprobe{os.getpid()}{secrets.token_hex(2)}"
    try:
        netns.create(probe)
    except Exception as e:  # noqa: BLE001 - any failure means "cannot test here"
        return f"cannot create a network namespace: {e!r}"
    with contextlib.suppress(Exception):
        netns.remove(probe)
    return None


@dataclass
class PeerNet:
    """Two namespaces joined by a veth pair: ``peer`` (a Linux host, 10.9.0.2/24 on
    ``peer_if``) and ``ours`` (``our_if``, no IP address: the router's side)."""

    peer: str
    ours: str
    peer_if: str = "rbarpp"
    our_if: str = "rbarpo"

    def run_in_peer(self, *cmd: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["nsenter", f"--net=/var/run/netns/{self.peer}", *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen_in_peer(self, *cmd: str) -> subprocess.Popen:
        return subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{self.peer}", *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def packet_socket(self) -> socket.socket:
        """An AF_PACKET socket on ``our_if`` (created inside our namespace)."""
        from pyroute2 import netns

        netns.pushns(self.ours)
        try:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((self.our_if, ETH_P_ALL))
        finally:
            netns.popns()
        s.settimeout(0.2)
        return s


def _disable_ipv6(ns: str) -> None:
    from pyroute2 import netns

    netns.pushns(ns)
    try:
        for k in ("all", "default"):
            with contextlib.suppress(OSError):
                Path(f"/proc/sys/net/ipv6/conf/{k}/disable_ipv6").write_text("1\n")
    finally:
        netns.popns()


@pytest.fixture
def peernet() -> Iterator[PeerNet]:
    reason = _netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from pyroute2 import NetNS, netns

    tag = f"{os.getpid()}{secrets.token_hex(2)}"
    net = PeerNet(peer=f"rbarp-peer-{tag}", ours=f"rbarp-ours-{tag}")
    made: list[str] = []
    try:
        for ns in (net.peer, net.ours):
            netns.create(ns)
            made.append(ns)
            _disable_ipv6(ns)
        with NetNS(net.ours, flags=0) as ipr:
            ipr.link("add", ifname=net.our_if, kind="veth", peer={"ifname": net.peer_if})
            peer_idx = ipr.link_lookup(ifname=net.peer_if)[0]
            ipr.link("set", index=peer_idx, net_ns_fd=net.peer)
            idx = ipr.link_lookup(ifname=net.our_if)[0]
            ipr.link("set", index=idx, address=OUR_NS_MAC)
            ipr.link("set", index=idx, state="up")
        with NetNS(net.peer, flags=0) as ipr:
            idx = ipr.link_lookup(ifname=net.peer_if)[0]
            ipr.addr("add", index=idx, address=PEER_IP, prefixlen=24)
            for i in (idx, ipr.link_lookup(ifname="lo")[0]):
                ipr.link("set", index=i, state="up")
        yield net
    finally:
        for ns in made:  # removing a namespace also removes its end of the veth pair
            with contextlib.suppress(Exception):
                netns.remove(ns)


def _is_request_for(frame: bytes, ip: str) -> bool:
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        return False
    a = Ether(frame)[ARP]
    return a.op == 1 and a.pdst == ip


@pytest.mark.netns
def test_linux_host_accepts_our_reply(peernet: PeerNet):
    t = rig(f"{OUR_IP} {OUR_NS_MAC}")
    s = peernet.packet_socket()
    ping = None
    try:
        ping = peernet.popen_in_peer("ping", "-c1", "-W1", OUR_IP)
        frame = None
        deadline = time.monotonic() + 5.0
        while frame is None and time.monotonic() < deadline:
            try:
                f = s.recv(65536)
            except TimeoutError:
                continue
            if _is_request_for(f, OUR_IP):
                frame = f
        assert frame is not None, "no ARP request for 10.9.0.1 from the peer"
        t.push([frame])
        replies = t.out0.frames()
        assert replies == [expected_reply(frame, OUR_NS_MAC)]
        for r in replies:
            s.send(r)
        ping.wait(timeout=10)
    finally:
        if ping is not None and ping.poll() is None:
            ping.kill()
            ping.wait()
        s.close()
    shown = peernet.run_in_peer("ip", "neigh", "show", OUR_IP).stdout
    assert OUR_NS_MAC in shown.lower(), shown
    state = shown.split()[-1]
    assert state in {"REACHABLE", "STALE", "DELAY", "PROBE"}, shown
