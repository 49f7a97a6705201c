"""A device read on one worker only (StaticThreadSched): that worker gets every frame. The
other workers open no socket on the interface, since a fanout member that nobody polls
would take its share of the frames and lose them silently. Real namespaces and veth."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from nstest import can_make_namespaces, example_testbed

SKIP = can_make_namespaces()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

# Sends argv[1] UDP frames to port 9999 from 64 source ports (64 flows, so that a fanout
# hash would spread them over every member) on eth0.
SEND = textwrap.dedent("""
    import socket, struct, sys
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    eth = bytes.fromhex("020000000001" "020000000a02" "0800")
    for i in range(int(sys.argv[1])):
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 46, i, 0, 64, 17, 0,
                         bytes([10, 0, 0, 2]), bytes([10, 0, 1, 2]))
        udp = struct.pack("!HHHH", 20000 + i % 64, 9999, 26, 0)
        s.send(eth + ip + udp + bytes(18))
""")


@pytest.fixture
def tb() -> Iterator[object]:
    with example_testbed() as bed:
        yield bed


CONFIG = "fd :: FromDevice(eth0) -> Classifier(12/0800 36/270f) -> c :: Counter -> Discard;"


def send_and_count(tb: object, c: object) -> tuple[list[int], int]:
    """Send 400 test frames from host a; each worker's count of them, and ring drops."""
    c.write("c.reset", "")  # type: ignore[attr-defined]
    res = tb.run("a", [sys.executable, "-c", SEND, "400"], timeout=60)  # type: ignore[attr-defined]
    assert res.returncode == 0, res.stderr
    counts: list[int] = []
    for _ in range(100):
        counts = [int(line.split(":")[1]) for line in
                  c.read("c.count", each=True).splitlines()]  # type: ignore[attr-defined]
        if sum(counts) >= 400:
            break
        time.sleep(0.05)
    return counts, int(c.read("fd.kernel_drops"))  # type: ignore[attr-defined]


@contextlib.contextmanager
def running(tb: object, config: str, sock: str, *args: str) -> Iterator[object]:
    from routebricks.runtime.control import ControlClient, wait_for_socket

    proc = subprocess.Popen([sys.executable, "-m", "routebricks.cli", "run", "-e", config,
                             "--netns", tb.ns("r"), "--workers", "2", "-u", sock, *args],  # type: ignore[attr-defined]
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_socket(sock, timeout=180)
        with ControlClient(sock, timeout=30) as c:
            c.read("c.count")  # every worker runs its loop
            yield c
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


@pytest.mark.parametrize("home", [0, 1])
def test_a_device_placed_on_one_worker_is_read_whole_there(tb: object, home: int,
                                                           tmp_path: Path) -> None:
    with running(tb, CONFIG + f"StaticThreadSched(fd {home});", str(tmp_path / "s")) as c:
        counts, drops = send_and_count(tb, c)
    assert drops == 0
    assert counts[home] == 400 and counts[1 - home] == 0, counts


def test_a_new_configuration_places_its_devices_by_its_own_rules(tb: object,
                                                                 tmp_path: Path) -> None:
    # Placed on worker 1, then (hotconfig) on none: every worker reads a queue again; then
    # on worker 0 alone. No frame is lost to a socket that no task polls.
    with running(tb, CONFIG + "StaticThreadSched(fd 1);", str(tmp_path / "s"), "-R") as c:
        assert send_and_count(tb, c) == ([0, 400], 0)
        c.write("hotconfig", CONFIG)
        counts, drops = send_and_count(tb, c)
        assert drops == 0 and sum(counts) == 400 and min(counts) > 0, counts
        c.write("hotconfig", CONFIG + "StaticThreadSched(fd 0);")
        assert send_and_count(tb, c) == ([400, 0], 0)
