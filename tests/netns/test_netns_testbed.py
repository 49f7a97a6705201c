"""Tests for routebricks.netns.testbed (network-namespace testbeds via pyroute2).

Tests that build namespaces need root; they skip with the reason otherwise.
Every testbed made here is removed in a ``finally`` (by its own prefix, so a
concurrently running testbed of someone else is never touched).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from routebricks.netns import testbed as tbm
from routebricks.netns.core import sysctl_read
from routebricks.netns.testbed import (
    InterfaceSpec,
    LinkSpec,
    NodeSpec,
    Testbed,
    TestbedSpec,
    cleanup,
)

TOPO = textwrap.dedent(
    """
    [router]
    name = "r"
    ip_forward = true
    interfaces = [
      { name = "eth0", addresses = ["10.0.1.1/24"], mac = "02:00:00:00:01:01" },
      { name = "eth1", addresses = ["10.0.2.1/24"] },
    ]

    [[hosts]]
    name = "a"
    default_route = "10.0.1.1"
    interfaces = [{ name = "eth0", addresses = ["10.0.1.2/24"] }]

    [[hosts]]
    name = "b"
    default_route = "10.0.2.1"
    interfaces = [{ name = "eth0", addresses = ["10.0.2.2/24"], mtu = 1400 }]

    [[links]]
    a = "a:eth0"
    b = "r:eth0"

    [[links]]
    a = "b:eth0"
    b = "r:eth1"
    """
)

# Used when the `ping` binary is missing: one ICMP echo over a raw socket.
PY_PING = textwrap.dedent(
    """
    import socket, struct, sys, time
    dst = sys.argv[1]
    def csum(b):
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        s = (s >> 16) + (s & 0xFFFF); s += s >> 16
        return ~s & 0xFFFF
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(1.0)
    for seq in range(1, 4):
        body = struct.pack("!BBHHH", 8, 0, 0, 0x5242, seq) + b"routebricks-ping"
        body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
        s.sendto(body, (dst, 0))
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                data, addr = s.recvfrom(2048)
            except TimeoutError:
                break
            icmp = data[(data[0] & 15) * 4:]
            if addr[0] == dst and icmp[0] == 0 and icmp[4:8] == struct.pack("!HH", 0x5242, seq):
                print("reply from", dst); sys.exit(0)
    sys.exit(1)
    """
)


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------
def _netns_unavailable_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN/CAP_SYS_ADMIN) for network namespaces"
    from pyroute2 import netns

    probe = f"rbprobe{os.getpid()}{secrets.token_hex(2)}"
    try:
        netns.create(probe)
    except Exception as e:  # noqa: BLE001 - any failure means "cannot test here"
        return f"cannot create a network namespace: {e!r}"
    with contextlib.suppress(Exception):
        netns.remove(probe)
    return None


@pytest.fixture(scope="module")
def netns_ok() -> None:
    reason = _netns_unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def prefixes(state_dir: Path) -> Iterator[list[str]]:
    """Prefixes a test creates; all of them are cleaned up afterwards, pass or fail."""
    made: list[str] = []
    try:
        yield made
    finally:
        for p in made:
            cleanup(p, state_dir=state_dir)


def ns_with(prefix: str) -> list[str]:
    from pyroute2 import netns

    return [n for n in netns.listnetns() if n.startswith(prefix)]


def root_links_with(prefix: str) -> list[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return [
            link.get_attr("IFLA_IFNAME")
            for link in ipr.get_links()
            if link.get_attr("IFLA_IFNAME").startswith(prefix)
        ]


def ping(tb: Testbed, node: str, dst: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("ping"):
        return tb.run(node, ["ping", "-c", "3", "-i", "0.2", "-W", "1", dst], timeout=30)
    return tb.run(node, [sys.executable, "-c", PY_PING, dst], timeout=30)


# --------------------------------------------------------------------------
# Spec (no root)
# --------------------------------------------------------------------------
def test_spec_from_toml_text_and_file(tmp_path: Path) -> None:
    spec = TestbedSpec.from_toml(TOPO)
    assert [n.name for n in spec.nodes()] == ["r", "a", "b"]
    assert spec.router is not None and spec.router.ip_forward
    assert spec.node("a").default_route == "10.0.1.1"
    assert spec.node("r").interface("eth0").mac == "02:00:00:00:01:01"
    assert spec.node("b").interface("eth0").mtu == 1400
    assert spec.links == [LinkSpec("a:eth0", "r:eth0"), LinkSpec("b:eth0", "r:eth1")]
    f = tmp_path / "topo.toml"
    f.write_text(TOPO)
    assert TestbedSpec.from_toml(f) == spec


def test_spec_links_as_pairs_and_routes() -> None:
    spec = TestbedSpec.from_dict(
        {
            "hosts": [
                {
                    "name": "x",
                    "interfaces": [{"name": "e0"}],
                    "routes": [{"dst": "192.168.0.0/16", "gateway": "10.0.0.1"}],
                },
                {"name": "y", "interfaces": [{"name": "e0"}]},
            ],
            "links": [["x:e0", "y:e0"]],
            "testbed": {"disable_ipv6": False},
        }
    )
    assert spec.router is None and not spec.disable_ipv6
    assert spec.node("x").routes[0].gateway == "10.0.0.1"


@pytest.mark.parametrize(
    ("mutate", "msg"),
    [
        (lambda d: d["links"].append({"a": "a:eth9", "b": "r:eth1"}), "eth9"),
        (lambda d: d["links"].append({"a": "a:eth0", "b": "b:eth0"}), "two links"),
        (lambda d: d["hosts"].append({"name": "a"}), "duplicate"),
        (lambda d: d["hosts"][0].update(default_route="not-an-ip"), "not-an-ip"),
        (lambda d: d["links"].append({"a": "zzz", "b": "r:eth1"}), "node:ifname"),
    ],
)
def test_spec_validation(mutate, msg: str) -> None:  # type: ignore[no-untyped-def]
    import tomllib

    d = tomllib.loads(TOPO)
    mutate(d)
    with pytest.raises((ValueError, KeyError), match=msg):
        TestbedSpec.from_dict(d)


def test_spec_link_rate() -> None:
    import tomllib

    d = tomllib.loads(TOPO)
    d["links"][0]["rate"] = "20Mbit"
    d["links"][1]["rate"] = 1_500_000_000
    spec = TestbedSpec.from_dict(d)
    assert [link.rate for link in spec.links] == [20_000_000, 1_500_000_000]
    text = TOPO.replace('b = "r:eth0"', 'b = "r:eth0"\nrate = "1.5Gbit"')
    assert [link.rate for link in TestbedSpec.from_toml(text).links] == [1_500_000_000, None]
    assert LinkSpec("a:eth0", "r:eth0", rate="500kbit").rate == 500_000
    assert LinkSpec("a:eth0", "r:eth0") == LinkSpec("a:eth0", "r:eth0", rate=None)


@pytest.mark.parametrize(
    ("rate", "msg"),
    [
        ("fast", "bad rate 'fast'"),
        (0, "positive"),
        ("20Mbps", "ambiguous"),
        (20, "missing unit"),
        (True, "not True"),
    ],
)
def test_spec_link_rate_errors_name_the_link_and_the_key(rate: object, msg: str) -> None:
    import tomllib

    d = tomllib.loads(TOPO)
    d["links"][1]["rate"] = rate
    with pytest.raises(ValueError, match=f"^link b:eth0 -- r:eth1: rate: .*{msg}"):
        TestbedSpec.from_dict(d)
    spec = TestbedSpec.from_toml(TOPO)
    spec.links[1].rate = rate  # type: ignore[assignment]  # set after construction
    with pytest.raises(ValueError, match=f"^link b:eth0 -- r:eth1: rate: .*{msg}"):
        Testbed(spec)


def test_prefix_and_names() -> None:
    tb = Testbed(TestbedSpec.from_toml(TOPO))
    assert tbm.PREFIX_RE.fullmatch(tb.prefix)
    assert tb.ns("a") == f"{tb.prefix}a"
    assert len(tb._tmp_ifname(998, "b")) < tbm.IFNAMSIZ
    assert Testbed.default_mac(258, 1) == "02:72:62:01:02:02"
    with pytest.raises(ValueError):
        Testbed(TestbedSpec(), prefix="nope-")
    with pytest.raises(KeyError):
        tb.ns("nonexistent")


# --------------------------------------------------------------------------
# Building and tearing down (root)
# --------------------------------------------------------------------------
@pytest.mark.netns
def test_ping_through_kernel_router_then_down(
    netns_ok: None, state_dir: Path, prefixes: list[str]
) -> None:
    tb = Testbed(TestbedSpec.from_toml(TOPO), state_dir=state_dir)
    prefixes.append(tb.prefix)
    with tb:
        assert sorted(ns_with(tb.prefix)) == sorted(tb.namespaces)
        state = json.loads(tb.state_file.read_text())
        assert state["pid"] == os.getpid() and state["prefix"] == tb.prefix
        assert root_links_with(tb.prefix) == []  # every veth end was moved

        assert tb.get_ip_forward("r") and not tb.get_ip_forward("a")
        res = ping(tb, "a", "10.0.2.2")
        assert res.returncode == 0, res.stdout + res.stderr
        assert ping(tb, "b", "10.0.1.2").returncode == 0

        assert tb.mac("r", "eth0") == "02:00:00:00:01:01"
        assert tb.mac("a", "eth0") == Testbed.default_mac(0, 0)
        off = tb.offloads("a", "eth0")
        for feat in ("tx-tcp-segmentation", "tx-generic-segmentation", "rx-gro"):
            if feat in off:
                assert off[feat] is False, feat
        assert off.get("tx-checksum-ip-generic") is not True

        # Forwarding off in the router: hosts can no longer reach each other.
        tb.set_ip_forward("r", False)
        assert ping(tb, "a", "10.0.2.2").returncode != 0
        tb.set_ip_forward("r", True)

        # A long-running process is killed by down().
        proc = tb.popen("a", ["sleep", "60"])
    assert proc.poll() is not None
    assert ns_with(tb.prefix) == []
    assert root_links_with(tb.prefix) == []
    assert not tb.state_file.exists()


@pytest.mark.netns
def test_run_call_and_interfaces_inside(
    netns_ok: None, state_dir: Path, prefixes: list[str]
) -> None:
    import socket

    from pyroute2 import NetNS

    spec = TestbedSpec.from_toml(TOPO)
    tb = Testbed(spec, state_dir=state_dir)
    prefixes.append(tb.prefix)
    with tb:
        # call(): runs in a helper thread inside the namespace.
        names = tb.call("r", lambda: sorted(n for _, n in socket.if_nameindex()))
        assert names == ["eth0", "eth1", "lo"]
        assert tb.ifindex("r", "eth1") == tb.call("r", socket.if_nametoindex, "eth1")
        # inside(): the calling thread is moved and restored.
        before = os.readlink("/proc/thread-self/ns/net")
        with tb.inside("b"):
            assert socket.if_nametoindex("eth0") > 0
            assert os.readlink("/proc/thread-self/ns/net") != before
        assert os.readlink("/proc/thread-self/ns/net") == before
        with NetNS(tb.ns("b"), flags=0) as ipr:
            link = ipr.get_links(ipr.link_lookup(ifname="eth0")[0])[0]
            assert link.get_attr("IFLA_MTU") == 1400
        assert sysctl_read(tb.ns("a"), "net.ipv6.conf.all.disable_ipv6") == "1"
        # run(): a subprocess in the namespace sees the namespace's interfaces.
        out = tb.run("a", [sys.executable, "-c", "import socket; print(socket.if_nameindex())"])
        assert "eth0" in out.stdout and "eth1" not in out.stdout
        with pytest.raises(subprocess.CalledProcessError):
            tb.run("a", [sys.executable, "-c", "raise SystemExit(3)"], check=True)


@pytest.mark.netns
def test_up_failure_rolls_back(netns_ok: None, state_dir: Path, prefixes: list[str]) -> None:
    spec = TestbedSpec(
        hosts=[
            NodeSpec("x", [InterfaceSpec("e0", ["10.9.0.1/24"])], default_route="10.8.0.1"),
            NodeSpec("y", [InterfaceSpec("e0")]),
        ],
        links=[LinkSpec("x:e0", "y:e0")],
    )
    tb = Testbed(spec, state_dir=state_dir)
    prefixes.append(tb.prefix)
    with pytest.raises(Exception):  # noqa: B017 - gateway unreachable: netlink error
        tb.up()
    assert ns_with(tb.prefix) == [] and root_links_with(tb.prefix) == []
    assert not tb.state_file.exists()


@pytest.mark.netns
def test_cleanup_after_dropped_object(netns_ok: None, state_dir: Path, prefixes: list[str]) -> None:
    """Simulated crash in-process: the object is dropped without down()."""
    import gc

    tb = Testbed(TestbedSpec.from_toml(TOPO), state_dir=state_dir)
    prefix = tb.prefix
    prefixes.append(prefix)
    tb.up()
    del tb
    gc.collect()
    assert len(ns_with(prefix)) == 3  # nothing cleans up by itself
    removed = cleanup(prefix, state_dir=state_dir)
    assert sorted(removed) == sorted(f"{prefix}{n}" for n in ("r", "a", "b"))
    assert ns_with(prefix) == [] and root_links_with(prefix) == []
    assert not (state_dir / f"{prefix}.json").exists()


CRASHER = textwrap.dedent(
    """
    import os, subprocess, sys
    from pathlib import Path
    from routebricks.netns.testbed import Testbed, TestbedSpec
    tb = Testbed(TestbedSpec.from_toml(sys.argv[1]), state_dir=sys.argv[2])
    Path(sys.argv[3]).write_text(tb.prefix)  # lets the test clean up whatever happens
    tb.up()
    # A stray veth in the creating namespace, as if we died in the middle of up().
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        ipr.link("add", ifname=tb.prefix + "9a", kind="veth", peer={"ifname": tb.prefix + "9b"})
    d = subprocess.DEVNULL  # must not hold our stdout open after we die
    p = tb.popen("a", ["sleep", "300"], stdin=d, stdout=d, stderr=d)
    print(tb.prefix, p.pid, flush=True)
    os._exit(1)  # crash: no down(), no finally
    """
)


@pytest.mark.netns
def test_cleanup_after_process_crash(
    netns_ok: None, state_dir: Path, prefixes: list[str], tmp_path: Path
) -> None:
    """A process that dies without down(): cleanup(stale_only=True) removes its testbed."""
    topo = tmp_path / "topo.toml"
    topo.write_text(TOPO)
    # A live testbed of our own process must survive a stale-only cleanup.
    live = Testbed(TestbedSpec.from_toml(TOPO), state_dir=state_dir)
    prefixes.append(live.prefix)
    live.up()

    prefix_file = tmp_path / "crashed-prefix"
    try:
        res = subprocess.run(
            [sys.executable, "-c", CRASHER, str(topo), str(state_dir), str(prefix_file)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        if prefix_file.exists():
            prefixes.append(prefix_file.read_text())
    prefix, sleep_pid = res.stdout.split()
    assert res.returncode == 1 and tbm.PREFIX_RE.fullmatch(prefix), res.stderr
    assert len(ns_with(prefix)) == 3
    assert sorted(root_links_with(prefix)) == [prefix + "9a", prefix + "9b"]
    assert (state_dir / f"{prefix}.json").exists()

    removed = cleanup(stale_only=True, state_dir=state_dir)
    assert set(removed) >= {f"{prefix}{n}" for n in ("r", "a", "b")}
    assert ns_with(prefix) == [] and root_links_with(prefix) == []
    assert not (state_dir / f"{prefix}.json").exists()
    # The orphaned `sleep` in the crashed testbed's namespace was killed.
    assert _dead_or_zombie(int(sleep_pid))
    assert len(ns_with(live.prefix)) == 3  # the live one was spared
    live.down()
    assert ns_with(live.prefix) == []


def _dead_or_zombie(pid: int) -> bool:
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False
