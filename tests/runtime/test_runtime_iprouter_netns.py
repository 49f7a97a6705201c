"""routebricks as a real router: Linux hosts in network namespaces ping each other and move
data over TCP through routebricks running examples/iprouter.click on the router namespace's
interfaces (ARP included), with one and with two workers."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nstest import CLIENT, SENDER, SERVER, SNIFFER, can_make_namespaces, netns_list, stop_router

REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "examples" / "testbed.toml"
CONFIG = REPO / "examples" / "iprouter.click"




SKIP = can_make_namespaces()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


class RunningRouter:
    def __init__(self, tb: object, proc: subprocess.Popen[str], sock: str) -> None:
        self.tb = tb
        self.proc = proc
        self.sock = sock

    def handler(self, *args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "routebricks.cli", "handler", *args,
                              "-u", self.sock], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout


@pytest.fixture(params=[(1, "V3"), (2, "V3"), (2, "V2")],
                ids=["1worker", "2workers", "2workers-V2rings"])
def router(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningRouter]:
    from routebricks.netns.testbed import Testbed, TestbedSpec
    from routebricks.runtime.control import wait_for_socket

    workers, method = request.param  # METHOD: the receive rings (iprouter.click's define)
    tb = Testbed(TestbedSpec.from_toml(TESTBED))
    sock = str(tmp_path / "rb.sock")
    proc = None
    try:
        tb.up()
        proc = subprocess.Popen(
            [sys.executable, "-m", "routebricks.cli", "run", str(CONFIG), "--netns",
             tb.ns("r"), "-u", sock, "--workers", str(workers), "--duration", "300",
             "--kp", "64", f"METHOD={method}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_socket(sock, timeout=120)
        except Exception:
            proc.kill()
            out, err = proc.communicate(timeout=30)
            pytest.fail(f"router did not start:\n{err}")
        yield RunningRouter(tb, proc, sock)
    finally:
        if proc is not None:
            stop_router(proc)
        tb.down()
    assert not any(n.startswith(tb.prefix) for n in netns_list())




def ping(tb: object, host: str, dst: str, count: int = 3) -> subprocess.CompletedProcess[str]:
    return tb.run(host, ["ping", "-c", str(count), "-i", "0.2", "-W", "2", dst],  # type: ignore[attr-defined]
                  capture_output=True, text=True, timeout=60)


def test_ping_through_the_router_and_to_it(router: RunningRouter) -> None:
    tb = router.tb
    res = ping(tb, "a", "10.0.2.2")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ttl=63" in res.stdout  # one hop: our DecIPTTL
    res = ping(tb, "b", "10.0.1.1")  # the router's own address: ICMPPingResponder
    assert res.returncode == 0, res.stdout + res.stderr
    neigh = tb.run("a", ["ip", "neigh", "show", "10.0.0.1"], capture_output=True,  # type: ignore[attr-defined]
                   text=True).stdout
    assert "02:00:00:00:00:01" in neigh  # learned from our ARPResponder




def test_tcp_transfer_with_checked_content(router: RunningRouter) -> None:
    tb = router.tb
    data = secrets.token_bytes(3 * 1024 * 1024)
    server = tb.popen("d", [sys.executable, "-c", SERVER], stdout=subprocess.PIPE,  # type: ignore[attr-defined]
                      stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        client = tb.run("a", [sys.executable, "-c", CLIENT, "10.0.3.2"], input=data.hex(),  # type: ignore[attr-defined]
                        capture_output=True, text=True, timeout=120)
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip() == hashlib.sha256(data).hexdigest()
        out, _ = server.communicate(timeout=60)
        assert out.split() == [str(len(data)), hashlib.sha256(data).hexdigest()]
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


def test_route_added_through_handler_is_used_by_every_worker(router: RunningRouter) -> None:
    tb = router.tb
    n, flows = 300, 24
    sniff = tb.popen("d", [sys.executable, "-c", SNIFFER, str(n)], stdout=subprocess.PIPE,  # type: ignore[attr-defined]
                     stderr=subprocess.PIPE, text=True)
    try:
        assert sniff.stdout is not None
        assert sniff.stdout.readline().strip() == "ready"
        assert ping(tb, "a", "10.0.3.2", 1).returncode == 0  # ARP for d resolved
        router.handler("write", "rt.add", "10.9.0.0/16", "10.0.3.2", "3")
        assert "10.9.0.0/16" in router.handler("read", "rt.table")
        res = tb.run("a", [sys.executable, "-c", SENDER, "10.9.1.1", str(n), str(flows)],  # type: ignore[attr-defined]
                     capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        out, err = sniff.communicate(timeout=60)
        lines = out.split("\n")
        got, distinct = map(int, lines[0].split())
        assert got == n, (got, err)  # every packet arrived: every worker has the route
        assert distinct == n  # and none twice: each packet one core
        assert lines[1] == "True"  # per-flow order kept
    finally:
        if sniff.poll() is None:
            sniff.kill()
            sniff.communicate()
    each = router.handler("read", "--each", "p0/FromDevice@4.count")
    counts = [int(line.split(": ")[1]) for line in each.strip().splitlines()]
    assert len(counts) == int(router.proc.args[router.proc.args.index("--workers") + 1])  # type: ignore[union-attr]
    assert sum(counts) >= n


def test_each_worker_is_pinned_to_its_own_core(router: RunningRouter) -> None:
    # The paper's rule, each queue one core: worker i runs on the i-th core only (one
    # worker on the first).
    n = int(router.proc.args[router.proc.args.index("--workers") + 1])  # type: ignore[union-attr]
    cpus = sorted(os.sched_getaffinity(0))
    lines = router.handler("read", "--each", "placement").strip().splitlines()
    assert len(lines) == n
    pids = set()
    for i, line in enumerate(lines):
        m = re.fullmatch(r"worker (\d+): pid (\d+) on cpus ([\d,]+)", line)
        assert m is not None and int(m[1]) == i, line
        assert m[3] == str(cpus[i % len(cpus)]), line
        pids.add(m[2])
    assert len(pids) == n  # one process per worker


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2,
                    reason="with one core, pinned and unpinned look the same")
def test_no_pin_leaves_the_worker_on_every_core(tmp_path: Path) -> None:
    from routebricks.netns.testbed import Testbed, TestbedSpec
    from routebricks.runtime.control import wait_for_socket

    tb = Testbed(TestbedSpec.from_toml(TESTBED))
    sock = str(tmp_path / "rb.sock")
    proc = None
    try:
        tb.up()
        proc = subprocess.Popen(
            [sys.executable, "-m", "routebricks.cli", "run", "-e",
             "FromDevice(eth0) -> Discard", "--netns", tb.ns("r"), "-u", sock,
             "--workers", "1", "--no-pin", "--duration", "120"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_socket(sock, timeout=120)
        res = subprocess.run([sys.executable, "-m", "routebricks.cli", "handler", "read",
                              "placement", "-u", sock], capture_output=True, text=True,
                             timeout=60)
        cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
        m = re.fullmatch(r"pid (\d+) on cpus ([\d,]+)", res.stdout.strip())
        assert m is not None, (res.stdout, res.stderr)
        assert m[2] == cpus
        # The worker is a child of the supervisor (the process we started).
        stat = Path(f"/proc/{m[1]}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[1]) == proc.pid
    finally:
        if proc is not None:
            stop_router(proc)
        tb.down()
    assert not any(n.startswith(tb.prefix) for n in netns_list())
