"""A device read on one worker only (StaticThreadSched): that worker gets every frame. The
other workers open no socket on the interface, since a fanout member that nobody polls
would take its share of the frames and lose them silently. Real namespaces and veth."""

from __future__ import annotations

import subprocess
import sys
import textwrap
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


@pytest.mark.parametrize("home", [0, 1])
def test_a_device_placed_on_one_worker_is_read_whole_there(tb: object, home: int,
                                                           tmp_path: Path) -> None:
    from routebricks.runtime.control import ControlClient, wait_for_socket

    sock = str(tmp_path / "ctl.sock")
    config = ("fd :: FromDevice(eth0) -> Classifier(12/0800 36/270f) -> c :: Counter -> Discard; "
              f"StaticThreadSched(fd {home});")
    proc = subprocess.Popen([sys.executable, "-m", "routebricks.cli", "run", "-e", config,
                             "--netns", tb.ns("r"), "--workers", "2", "-u", sock],  # type: ignore[attr-defined]
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_socket(sock, timeout=180)
        with ControlClient(sock, timeout=30) as c:
            c.read("c.count")  # every worker runs its loop
            res = tb.run("a", [sys.executable, "-c", SEND, "400"], timeout=60)  # type: ignore[attr-defined]
            assert res.returncode == 0, res.stderr
            counts: list[int] = []
            for _ in range(100):
                counts = [int(line.split(":")[1]) for line in
                          c.read("c.count", each=True).splitlines()]
                if sum(counts) >= 400:
                    break
                subprocess.run(["sleep", "0.05"], check=True)
            drops = int(c.read("fd.kernel_drops"))
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert drops == 0
    assert counts[home] == 400 and counts[1 - home] == 0, counts
