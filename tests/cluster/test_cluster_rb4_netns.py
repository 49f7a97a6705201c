"""RB4 in network namespaces: four routebricks servers in a full mesh behave as one router
(Linux hosts ping and move data through it), read IP headers once, and clean up."""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from clustertest import (
    RB4,
    host_run,
    inject_and_catch,
    ping,
    ping_every_pair,
    running,
    spec_from,
    transfer,
)
from nstest import can_make_namespaces

SKIP = can_make_namespaces()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

HOSTS = {"h1": "10.1.0.2", "h2": "10.2.0.2", "h3": "10.3.0.2", "h4": "10.4.0.2"}


@pytest.fixture(scope="module")
def rb4() -> Iterator[Any]:
    with running(spec_from(RB4)) as state:
        yield state


def test_every_host_pings_every_other_host(rb4: Any) -> None:
    assert ping_every_pair(rb4, HOSTS) == 12  # one router: the cluster decrements TTL once


def test_the_cluster_answers_for_its_own_addresses(rb4: Any) -> None:
    # Any server answers for any port's address (they are one router).
    res = ping(rb4, "h1", "10.3.0.1")
    assert res.returncode == 0, res.stdout + res.stderr


def test_tcp_transfer_with_checked_content(rb4: Any) -> None:
    transfer(rb4, "h1", "h3", HOSTS["h3"], secrets.token_bytes(2 * 1024 * 1024))


def test_the_ip_header_is_read_once(rb4: Any) -> None:
    """A frame that arrives on an internal link with the cluster's MAC encoding and an IP
    header no router would accept leaves the encoded output server's external port with
    that header byte for byte: only the Ethernet header is rewritten for the last hop."""
    from routebricks.packet.clustermac import encode

    nh = int.from_bytes(socket.inet_aton(HOSTS["h2"]), "big")
    garbage = bytes([0x00, 0xFF]) + secrets.token_bytes(38)  # version 0: not IPv4 at all
    frame = encode(1, 0, nh) + bytes.fromhex("fe0000000099") + b"\x08\x00" + garbage
    # From s1's side of the s1-s2 link; caught at h2's interface.
    got = inject_and_catch(rb4, "s1", "to-s2", frame, "h2", garbage)
    assert got[14:14 + len(garbage)] == garbage  # the "IP header" untouched
    assert got[0:6].hex(":") == _mac_of(rb4, "h2")  # to the encoded next hop, by ARP
    assert got[6:12].hex(":") == _mac_of_port(rb4, "s2", "ext0")  # from s2's port
    assert got[12:14] == b"\x08\x00"


def _mac_of_port(state: Any, server: str, ifname: str) -> str:
    from routebricks.netns.core import popen_in_netns

    p = popen_in_netns(state.server_netns(server), ["ip", "-o", "link", "show", ifname],
                       stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=30)
    return out.split("link/ether ")[1].split()[0]


def _mac_of(state: Any, host: str) -> str:
    res = host_run(state, host, ["ip", "-o", "link", "show", "eth0"])
    return res.stdout.split("link/ether ")[1].split()[0]


def test_status_shows_roles_links_and_drops(rb4: Any) -> None:
    assert ping(rb4, "h4", HOSTS["h2"]).returncode == 0
    res = subprocess.run([sys.executable, "-m", "routebricks.cli", "cluster", "status",
                          rb4.prefix, "--json", "--interval", "0.5"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout)
    servers = d["servers"]
    assert set(servers) == {"s1", "s2", "s3", "s4"}
    assert all(s["up"] for s in servers.values())
    assert servers["s4"]["input"] > 0 and servers["s2"]["output"] > 0
    assert "to-s1" in servers["s2"]["links"] and "ext0" in servers["s2"]["links"]
    human = subprocess.run([sys.executable, "-m", "routebricks.cli", "cluster", "status",
                            rb4.prefix, "--once", "--interval", "0.2"],
                           capture_output=True, text=True, timeout=60)
    assert human.returncode == 0 and "intermediate" in human.stdout, human.stderr


def test_config_is_an_ordinary_click_configuration(tmp_path: Any) -> None:
    res = subprocess.run([sys.executable, "-m", "routebricks.cli", "cluster", "config",
                          str(RB4), "--server", "s2"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    conf = tmp_path / "s2.click"
    conf.write_text(res.stdout)
    check = subprocess.run([sys.executable, "-m", "routebricks.cli", "check", str(conf)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert "DirectVLB(SELF 1, SERVERS 4" in res.stdout
    bad = subprocess.run([sys.executable, "-m", "routebricks.cli", "cluster", "config",
                          str(RB4), "--server", "s9"], capture_output=True, text=True)
    assert bad.returncode == 1 and "no server named 's9'" in bad.stderr


def test_cluster_node_per_server_carries_the_same_traffic(tmp_path: Any) -> None:
    """Each server started on its own with `cluster node` (as separate machines would run
    it, here each in its namespace), no central process: the hosts reach each other."""
    spec = spec_from(RB4)
    with running(spec, routers=False) as state:
        nodes = []
        try:
            for name in state.servers:
                sock = tmp_path / f"{name}.sock"
                nodes.append((name, sock, subprocess.Popen(
                    [sys.executable, "-m", "routebricks.cli", "cluster", "node", str(RB4),
                     "--server", name, "--netns", state.server_netns(name), "-u", str(sock)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)))
            from routebricks.runtime.control import wait_for_socket

            for _, sock, _ in nodes:
                wait_for_socket(str(sock), timeout=120)
            for src, dst in (("h1", "h2"), ("h3", "h4"), ("h4", "h1"), ("h2", "h3")):
                ok = False
                for _ in range(10):  # until the BFD sessions are up
                    if ping(state, src, HOSTS[dst], count=1).returncode == 0:
                        ok = True
                        break
                    time.sleep(0.5)
                assert ok, f"{src} -> {dst}"
        finally:
            for _, _, p in nodes:
                p.terminate()
            for _, _, p in nodes:
                try:
                    _, err = p.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.communicate()
                else:
                    assert "Traceback" not in err
