"""KernelFilter: with it, the router namespace's own kernel stops answering on the device
while routebricks still receives every frame; the filter goes away when the router stops."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from nstest import can_make_namespaces, netns_list, stop_router

SKIP = (can_make_namespaces()
        or (None if shutil.which("nft") else "needs nft (Debian package nftables)")
        or (None if shutil.which("ping") else "needs ping (Debian package iputils-ping)"))


def rb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "routebricks.cli", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("config, words", [
    ("KernelFilter(allow dev eth0)", "bad filter 'allow dev eth0'"),
    ("KernelFilter()", "no filter given"),
    ("KernelFilter(drop dev eth0, FOO 1)", "bad filter"),
])
def test_bad_filters_fail_before_any_packet(config: str, words: str) -> None:
    res = rb("check", "-e", config)
    assert res.returncode != 0
    assert words in res.stderr and "drop dev" in res.stderr  # the one valid form as a hint


@pytest.fixture
def testbed() -> Iterator[object]:
    if SKIP:
        pytest.skip(SKIP)
    from routebricks.netns.testbed import Testbed, TestbedSpec

    tb = Testbed(TestbedSpec.from_dict({
        "router": {"name": "r", "interfaces": [
            {"name": "eth0", "addresses": ["10.9.0.1/24"]}]},
        "hosts": [{"name": "a", "interfaces": [
            {"name": "eth0", "addresses": ["10.9.0.2/24"]}]}],
        "links": [["a:eth0", "r:eth0"]],
    }))
    try:
        tb.up()
        yield tb
    finally:
        tb.down()
    assert not any(n.startswith(tb.prefix) for n in netns_list())


def ping(tb: object, count: int) -> int:
    return tb.run("a", ["ping", "-c", str(count), "-i", "0.2", "-W", "1",  # type: ignore[attr-defined]
                        "10.9.0.1"], capture_output=True, timeout=60).returncode


def tables(tb: object) -> str:
    return tb.run("r", ["nft", "list", "tables"], capture_output=True,  # type: ignore[attr-defined]
                  text=True, timeout=30).stdout


@pytest.mark.netns
@pytest.mark.parametrize("workers", [1, 2])
def test_kernel_stops_answering_while_routebricks_sees_every_frame(
        testbed: object, tmp_path: Path, workers: int) -> None:
    from routebricks.runtime.control import ControlClient, wait_for_socket

    tb = testbed
    assert ping(tb, 1) == 0  # the router namespace's kernel answers on its own
    sock = str(tmp_path / "rb.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "routebricks.cli", "run", "-e",
         "kf :: KernelFilter(drop dev eth0); FromDevice(eth0) -> c :: Counter -> Discard",
         "--netns", tb.ns("r"), "-u", sock, "--duration", "120",  # type: ignore[attr-defined]
         "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_socket(sock, timeout=120)
        with ControlClient(sock) as c:
            assert "policy drop" in c.read("kf.ruleset")
            assert tables(tb).count("rb_kernelfilter_") == 1  # one table, not one per worker
            assert ping(tb, 3) != 0  # no echo reply: the kernel never saw the requests
            assert int(c.read("c.count")) >= 3  # routebricks did
    finally:
        stop_router(proc)
    assert proc.returncode == 0
    assert "rb_kernelfilter_" not in tables(tb)  # removed when the router stopped
    assert ping(tb, 1) == 0


@pytest.mark.netns
def test_a_missing_device_is_an_error_before_any_packet(testbed: object) -> None:
    res = rb("run", "-e", "KernelFilter(drop dev nosuch0); FromDevice(eth0) -> Discard",
             "--netns", testbed.ns("r"), "--duration", "5")  # type: ignore[attr-defined]
    assert res.returncode != 0
    assert "no device 'nosuch0'" in res.stderr
    assert "rb_kernelfilter_" not in tables(testbed)


@pytest.mark.netns
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_to_the_whole_process_group_still_removes_the_table(
        testbed: object, tmp_path: Path, workers: int) -> None:
    # A service manager stops a service by signalling its whole process group: every
    # worker gets SIGTERM too, and must still unwind and delete the table it installed.
    import os

    from routebricks.runtime.control import wait_for_socket

    tb = testbed
    sock = str(tmp_path / "rb.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "routebricks.cli", "run", "-e",
         "KernelFilter(drop dev eth0); FromDevice(eth0) -> Discard",
         "--netns", tb.ns("r"), "-u", sock, "--duration", "120",  # type: ignore[attr-defined]
         "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_socket(sock, timeout=120)
        assert "rb_kernelfilter_" in tables(tb)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert "rb_kernelfilter_" not in tables(tb)
    assert ping(tb, 1) == 0
