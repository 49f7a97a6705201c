"""A k-ary n-fly cluster: the configurations it generates (intermediate servers switch on
MACs alone: no element of theirs that a frame can reach reads an IP header) and, in network
namespaces, examples/nfly4.toml — four hosts over a 2-ary 2-fly of eight servers — pinging
and moving data as one router, frames counted at every stage, the IP header read once, and
a dead top-stage switch routed around."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clustertest import (
    REPO,
    host_run,
    inject_and_catch,
    logs,
    ping_every_pair,
    python,
    read,
    running,
    spec_from,
    tcp_server,
    transfer,
)
from nstest import PACED_CLIENT, SENDER, can_make_namespaces, check_transfer

NFLY4 = REPO / "examples" / "nfly4.toml"
HOSTS = {"h1": "10.1.0.2", "h2": "10.2.0.2", "h3": "10.3.0.2", "h4": "10.4.0.2"}
SKIP = can_make_namespaces()


# ---------------------------------------------------------------------- configurations
def graph_of(text: str) -> Any:
    from routebricks.engine.parser import parse_config
    from routebricks.engine.registry import class_exists

    return parse_config(text, "<cluster>", class_exists=class_exists)


def cluster_frame_path(graph: Any) -> set[str]:
    """The classes of every element a cluster frame can reach: from the FromDevice of each
    internal link, through its Classifier's outputs other than the one for the interface's
    own address (BFD's), up to the ToDevice or Discard it leaves by. Classifiers on the way
    may only look at the Ethernet header."""
    out: dict[str, list[str]] = {}
    for c in graph.connections:
        out.setdefault(c.src, []).append((c.sport, c.dst))  # type: ignore[arg-type]
    els = graph.elements
    seen: set[str] = set()
    todo = deque(name for name, d in els.items()
                 if d.class_name == "FromDevice" and d.config.startswith("to-"))
    while todo:
        name = todo.popleft()
        if name in seen:
            continue
        seen.add(name)
        d = els[name]
        if d.class_name in ("ToDevice", "Discard"):
            continue
        nexts = out.get(name, [])
        if d.class_name == "Classifier":
            patterns = [p.strip() for p in d.config.split(",")]
            for p in patterns:
                for clause in p.split():
                    if clause != "-":
                        offset, value = clause.split("/")
                        assert int(offset) + len(value) // 2 <= 14, d.config
            own = {i for i, p in enumerate(patterns) if re.fullmatch(r"0/fe[0-9a-f]{10}", p)}
            nexts = [(port, dst) for port, dst in nexts if port not in own]
        todo.extend(dst for _, dst in nexts)
    return {els[n].class_name for n in seen}


def test_intermediate_servers_read_only_ethernet_headers() -> None:
    from routebricks.cluster.config import all_configs
    from routebricks.engine.registry import get_class

    spec = spec_from(NFLY4)
    configs = all_configs(spec)
    for s in spec.servers:
        if s.role != "intermediate":
            continue
        g = graph_of(configs[s.name])
        classes = {d.class_name for d in g.elements.values()}
        # The whole configuration: devices, the switch, and BFD on the frames addressed
        # to the interfaces themselves. No IP element at all.
        assert classes == {"FromDevice", "Classifier", "BFD", "NflySwitch", "ToDevice"}, (
            s.name, classes)
        reached = cluster_frame_path(g)
        assert reached == {"FromDevice", "Classifier", "NflySwitch", "ToDevice"}
        for cls in reached - {"FromDevice", "Classifier", "ToDevice"}:
            assert get_class(cls).READS == "ethernet", cls  # declared on the class
    # At an io server, frames from the butterfly meet ClusterDecap (Ethernet only), then
    # the port's ARPQuerier, which takes the next hop ClusterDecap put in the annotation.
    reached = cluster_frame_path(graph_of(configs["s1"]))
    assert reached == {"FromDevice", "Classifier", "ClusterDecap", "ARPQuerier", "ToDevice",
                       "Discard"}
    assert get_class("ClusterDecap").READS == "ethernet"


def test_configurations_check_and_name_the_butterfly(tmp_path: Path) -> None:
    from routebricks.cluster.config import all_configs

    spec = spec_from(NFLY4)
    configs = all_configs(spec)
    assert "NflyVLB(PATHS 2, LINK_RATE 20Mbps" in configs["s1"]
    assert "ClusterEncap(SERVER 2, PORT 0)" in configs["s1"]  # s3 is terminal 2
    assert "DirectVLB" not in configs["s1"] and "ClusterSwitch" not in configs["s1"]
    assert "NflySwitch(K 2, STAGES 2, STAGE 2)" in configs["i2-1"]
    for name in ("s1", "i1-0", "i2-0"):
        f = tmp_path / f"{name}.click"
        f.write_text(configs[name])
        res = subprocess.run([sys.executable, "-m", "routebricks.cli", "check", str(f)],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr


# ---------------------------------------------------------------------- in namespaces
@pytest.fixture(scope="module")
def nfly4() -> Iterator[Any]:
    with running(spec_from(NFLY4)) as state:
        yield state


def total(state: Any, server: str, handler: str = "sw.counts") -> int:
    """The sum of what a ``COUNT<TAB>...`` handler lists: a switch's frames by default."""
    text = read(state, server, handler)
    return sum(int(line.split("\t")[0]) for line in text.splitlines() if line)


@pytest.mark.netns
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_every_host_pings_every_other_host(nfly4: Any) -> None:
    assert ping_every_pair(nfly4, HOSTS) == 12  # eight servers, one router: TTL 63


@pytest.mark.netns
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_tcp_transfer_with_checked_content(nfly4: Any) -> None:
    data = secrets.token_bytes(2 * 1024 * 1024)
    took = transfer(nfly4, "h1", "h3", HOSTS["h3"], data)
    print(f"\n2 MiB h1 -> h3 across the butterfly in {took:.2f} s "
          f"({len(data) * 8 / took / 1e6:.1f} Mbit/s incl. start-up)")


@pytest.mark.netns
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_frames_cross_every_stage(nfly4: Any) -> None:
    """Many flows from h1 to h4: both top-stage switches carry some, and every server on
    the way counts them (the input's paths, the switches, the output's ClusterDecap)."""
    import json

    names = ("i1-0", "i2-0", "i2-1", "i1-1")
    before = {s: total(nfly4, s) for s in names}
    decap_before = total(nfly4, "s4", "dec.counts")
    res = host_run(nfly4, "h1", python(SENDER, HOSTS["h4"], "256", "64"))
    assert res.returncode == 0, res.stderr
    time.sleep(1.0)
    grew = {s: total(nfly4, s) - before[s] for s in names}
    assert grew["i1-0"] >= 256 and grew["i1-1"] >= 200, grew  # up, and down to s4
    assert grew["i2-0"] > 0 and grew["i2-1"] > 0, grew  # both paths: VLB's first phase
    assert grew["i2-0"] + grew["i2-1"] >= 200, grew
    assert total(nfly4, "s4", "dec.counts") - decap_before >= 200
    paths = read(nfly4, "s1", "vlb.paths")
    assert "path 0" in paths and "path 1" in paths, paths
    res2 = subprocess.run([sys.executable, "-m", "routebricks.cli", "cluster", "status",
                           nfly4.prefix, "--json", "--interval", "0.3"],
                          capture_output=True, text=True, timeout=60)
    servers = json.loads(res2.stdout)["servers"]
    for s in names:
        assert servers[s]["intermediate"] > 0 and servers[s]["input"] == 0, servers[s]
        assert servers[s]["output"] == 0
    assert servers["s1"]["input"] > 0 and servers["s4"]["output"] > 0
    assert servers["s1"]["intermediate"] == 0  # io servers are never intermediates


@pytest.mark.netns
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_the_ip_header_is_read_once(nfly4: Any) -> None:
    """A frame put on the link from i1-0 up to i2-0, with a cluster MAC for s3's port, a
    path, and an "IP header" no router would accept, leaves s3's port with that header
    byte for byte: i2-0, i1-1 and s3 read its Ethernet header only."""
    from routebricks.packet.clustermac import encode, source

    nh = int.from_bytes(socket.inet_aton(HOSTS["h3"]), "big")
    garbage = bytes([0x00, 0xFF]) + secrets.token_bytes(38)  # version 0: not IPv4 at all
    frame = encode(2, 0, nh) + source(2, 0) + b"\x08\x00" + garbage
    before = total(nfly4, "i2-0")
    got = inject_and_catch(nfly4, "i1-0", "to-i2-0", frame, "h3", garbage)
    assert got[14:14 + len(garbage)] == garbage
    assert got[12:14] == b"\x08\x00"
    assert total(nfly4, "i2-0") > before


@pytest.mark.netns
@pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
def test_a_dead_top_switch_is_routed_around(nfly4: Any) -> None:
    """A paced TCP transfer from h1 to h3; the top-stage switch carrying it dies (its
    router killed): BFD tells i1-0 and i1-1, which send the path's frames up the other
    top switch, and the transfer completes intact. The last test of the module: the
    switch stays dead."""
    data = secrets.token_bytes(3 * 1024 * 1024)
    result: dict[str, Any] = {}

    def send() -> None:  # 8 Mbit/s for 3 s
        result["c"] = host_run(nfly4, "h1", python(PACED_CLIENT, HOSTS["h3"], "1000000"),
                               input=data.hex(), timeout=120)

    with tcp_server(nfly4, "h3") as server:
        before = {s: total(nfly4, s) for s in ("i2-0", "i2-1")}
        t = threading.Thread(target=send)
        t.start()
        time.sleep(1.0)
        grew = {s: total(nfly4, s) - before[s] for s in before}
        dead = max(grew, key=lambda s: grew[s])
        assert grew[dead] > 50, grew
        os.kill(int(nfly4.servers[dead]["pid"]), signal.SIGKILL)
        t.join(timeout=120)
        check_transfer(result["c"], server, data)
    port = 2 + int(dead[-1])  # i1-0's up port toward the dead switch
    assert read(nfly4, "i1-0", "sw.peers").splitlines()[port] == f"{port}\tdown"
    assert int(read(nfly4, "i1-0", "sw.rerouted")) > 0  # h1's frames went up the other
    # Every pair still reaches every other, all through the live top switch.
    for src, dst in (("h1", "h3"), ("h4", "h2"), ("h2", "h1"), ("h3", "h4")):
        res = host_run(nfly4, src, ["ping", "-c", "2", "-i", "0.2", "-W", "3", HOSTS[dst]])
        assert res.returncode == 0, res.stdout + logs(nfly4)
