"""A routebricks router on a namespace testbed, for the tests of what happens to frames on
real interfaces (not a test module): start it, send frames from a host with scapy, sniff on
another host with a packet socket, read the router's counters, stop it and read its summary.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from nstest import netns_list, stop_router

REPO = Path(__file__).resolve().parents[2]
TESTBED = REPO / "examples" / "testbed.toml"
IPROUTER = REPO / "examples" / "iprouter.click"
#: The router's MAC on each link of examples/testbed.toml (r:eth0 faces host a, ...).
ROUTER_MAC = {"a": "02:00:00:00:00:01", "b": "02:00:00:00:01:01",
              "c": "02:00:00:00:02:01", "d": "02:00:00:00:03:01"}
#: The destination port of every test frame (nothing listens there).
TEST_PORT = 9999

# Sends frames given as JSON [[dst MAC, dst IP, TTL, IP id], ...] from host eth0 with scapy,
# then prints the IP id quoted by every ICMP time exceeded that comes back (one JSON list):
# it waits up to 30 s for argv[2] of them, then argv[3] seconds more for any others.
SEND_AND_WATCH = textwrap.dedent("""
    import json, socket, sys, time
    from scapy.all import ICMP, IP, UDP, Ether, IPerror, Raw, sendp
    spec, expect, settle = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind(("eth0", 0)); s.settimeout(0.1)
    frames = [Ether(dst=d) / IP(src=sys.argv[4], dst=ip, ttl=ttl, id=i)
              / UDP(sport=4000, dport={port}) / Raw(b"routebricks test frame")
              for d, ip, ttl, i in spec]
    sendp(frames, iface="eth0", verbose=False)
    quoted = []
    deadline = time.time() + 30
    while time.time() < deadline:
        if len(quoted) >= expect:
            deadline = min(deadline, time.time() + settle)
        try:
            f = s.recv(4096)
        except TimeoutError:
            continue
        p = Ether(f)
        if ICMP in p and p[ICMP].type == 11 and IPerror in p:
            quoted.append(p[IPerror].id)
    print(json.dumps(quoted), flush=True)
""").format(port=TEST_PORT)

# Prints "ready", then collects the IP id of every UDP frame to TEST_PORT arriving on eth0,
# and prints them (one JSON list): it waits up to 30 s for argv[1] of them, then argv[2]
# seconds more for any others.
SNIFF_TEST_FRAMES = textwrap.dedent("""
    import json, socket, sys, time
    expect, settle = int(sys.argv[1]), float(sys.argv[2])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: no drops under load
    s.bind(("eth0", 0)); s.settimeout(0.1)
    print("ready", flush=True)
    seen = []
    deadline = time.time() + 30
    while time.time() < deadline:
        if len(seen) >= expect:
            deadline = min(deadline, time.time() + settle)
        try:
            f = s.recv(4096)
        except TimeoutError:
            continue
        if f[12:14] == b"\\x08\\x00" and f[23] == 17 and f[36:38] == ({port}).to_bytes(2, "big"):
            seen.append(int.from_bytes(f[18:20], "big"))
    print(json.dumps(seen), flush=True)
""").format(port=TEST_PORT)


# Sends the frames given as a JSON list of hex strings on eth0 (a raw packet socket).
SEND_RAW = textwrap.dedent("""
    import json, socket, sys
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind(("eth0", 0))
    for f in json.loads(sys.stdin.read()):
        s.send(bytes.fromhex(f))
""")


class DeviceRouter:
    """``routebricks run`` on the router namespace of a testbed (one worker)."""

    def __init__(self, tb: Any, proc: subprocess.Popen[str], sock: str) -> None:
        self.tb = tb
        self.proc = proc
        self.sock = sock
        self.summary = ""

    def handler(self, *args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "routebricks.cli", "handler", *args,
                              "-u", self.sock], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout

    def stats(self) -> dict[str, dict[str, Any]]:
        """The global ``stats`` handler (what ``top`` reads), by element name."""
        return {r["element"]: r for r in json.loads(self.handler("read", "stats"))}

    def stop(self) -> str:
        """Stop it as Ctrl-C does; its end-of-run summary (stderr)."""
        _, err = stop_router(self.proc)
        self.summary = err
        return err

    def send_and_watch(self, host: str, frames: Sequence[tuple[str, str, int, int]],
                       expect: int = 0, settle: float = 0.5, src_ip: str = "10.0.0.2"
                       ) -> list[int]:
        """Send ``(dst MAC, dst IP, TTL, IP id)`` frames from ``host`` with scapy; the IP
        ids quoted by the ICMP time exceeded errors ``host`` gets back: once ``expect`` of
        them came (at most 30 s), whatever else comes within ``settle`` seconds."""
        res = self.tb.run(host, [sys.executable, "-c", SEND_AND_WATCH,
                                 json.dumps([list(f) for f in frames]), str(expect),
                                 str(settle), src_ip], timeout=120)
        assert res.returncode == 0, res.stderr
        return list(json.loads(res.stdout))

    def send_raw(self, host: str, frames: Sequence[bytes]) -> None:
        """Send ``frames`` as they are from ``host``'s eth0."""
        res = self.tb.run(host, [sys.executable, "-c", SEND_RAW],
                          input=json.dumps([f.hex() for f in frames]), timeout=120)
        assert res.returncode == 0, res.stderr

    @contextlib.contextmanager
    def sniffing(self, host: str, expect: int, settle: float = 0.5) -> Iterator[list[int]]:
        """Collect the IP ids of test frames reaching ``host``: once ``expect`` of them came
        (at most 30 s), whatever else comes within ``settle`` seconds. The list fills when
        the body (which sends them) ends."""
        p = self.tb.popen(host, [sys.executable, "-c", SNIFF_TEST_FRAMES, str(expect),
                                 str(settle)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
        seen: list[int] = []
        try:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            yield seen
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            seen.extend(json.loads(out))
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()


def drops_in_summary(summary: str) -> dict[tuple[str, str], int]:
    """``(element class, reason) -> packets`` from the summary's ``drop:`` lines, summed
    over elements of the class."""
    out: dict[tuple[str, str], int] = {}
    for m in re.finditer(r"^  drop: \S+ \((\w+)\): (\d+) (.+)$", summary, re.M):
        key = (m[1], m[3])
        out[key] = out.get(key, 0) + int(m[2])
    return out


@contextlib.contextmanager
def device_router(tmp_path: Path, config: Path | None = None, *, text: str | None = None,
                  defines: Sequence[str] = (), workers: int = 1,
                  testbed: str | Path = TESTBED) -> Iterator[DeviceRouter]:
    """A testbed (``testbed``: a TOML file or text; examples/testbed.toml by default) with
    routebricks running ``config`` (or the configuration ``text``) on its router "r";
    everything removed afterwards, also on failure."""
    from routebricks.netns.testbed import Testbed, TestbedSpec
    from routebricks.runtime.control import wait_for_socket

    tb = Testbed(TestbedSpec.from_toml(testbed))
    sock = str(tmp_path / "rb.sock")
    source = ["-e", text] if text is not None else [str(config or IPROUTER)]
    proc = None
    try:
        tb.up()
        proc = subprocess.Popen(
            [sys.executable, "-m", "routebricks.cli", "run", *source, *defines, "--netns",
             tb.ns("r"), "-u", sock, "--workers", str(workers), "--duration", "300", "--summary"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_socket(sock, timeout=120)
        except Exception:
            proc.kill()
            _, err = proc.communicate(timeout=30)
            raise AssertionError(f"router did not start:\n{err}") from None
        router = DeviceRouter(tb, proc, sock)
        yield router
        if not router.summary:
            router.stop()
    finally:
        if proc is not None:
            stop_router(proc)
        tb.down()
    assert not any(n.startswith(tb.prefix) for n in netns_list())
