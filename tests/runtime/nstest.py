"""Shared pieces of the namespace tests: whether namespaces can be made here, the
namespaces that exist, and a TCP transfer whose content is checked (SERVER receives until
the client closes and answers with the SHA-256 of what it got; CLIENT sends stdin's bytes
(hex) to argv[1] and prints the server's answer)."""

import contextlib
import hashlib
import os
import secrets
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

#: The four-port router and its hosts that the README's examples use.
EXAMPLE_TESTBED = Path(__file__).resolve().parents[2] / "examples" / "testbed.toml"


def can_make_namespaces() -> str | None:
    """None if this process can create network namespaces, else why not (a skip reason)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    try:
        from pyroute2 import netns

        name = f"rbprobe{secrets.token_hex(3)}"
        netns.create(name)
        netns.remove(name)
    except Exception as e:  # noqa: BLE001 - any failure means: cannot test here
        return f"cannot create network namespaces: {e}"
    return None


@contextlib.contextmanager
def example_testbed() -> Iterator[object]:
    """examples/testbed.toml, up for the block and removed after it, also on failure."""
    from routebricks.netns.testbed import Testbed, TestbedSpec

    bed = Testbed(TestbedSpec.from_toml(EXAMPLE_TESTBED))
    try:
        bed.up()
        yield bed
    finally:
        bed.down()


def stop_router(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    """Stop a ``routebricks run`` as Ctrl-C does (SIGINT: it cleans up and prints its
    counters), killing it if it has not exited within ``timeout``; its (stdout, stderr)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=30)
    return out or "", err or ""


@contextlib.contextmanager
def when_ready(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """A helper process (SERVER, a listener) once it has printed "ready"; killed afterwards
    if it still runs, so that a failed test leaves none behind."""
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def check_transfer(client: subprocess.CompletedProcess[str], server: subprocess.Popen[str],
                   data: bytes) -> None:
    """CLIENT (or PACED_CLIENT) sent ``data`` to SERVER whole: both name its SHA-256, and
    the server its length."""
    assert client.returncode == 0, client.stderr
    digest = hashlib.sha256(data).hexdigest()
    assert client.stdout.strip() == digest
    out, _ = server.communicate(timeout=60)
    assert out.split() == [str(len(data)), digest]


def netns_list() -> list[str]:
    from pyroute2 import netns

    return netns.listnetns()

SERVER = textwrap.dedent("""
    import hashlib, socket
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 5001)); s.listen(1)
    print("ready", flush=True)
    c, _ = s.accept(); h = hashlib.sha256(); n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        h.update(b); n += len(b)
    c.sendall(h.hexdigest().encode()); c.close()
    print(n, h.hexdigest(), flush=True)
""")

# Like CLIENT, but paced: argv[2] bytes per second, so a transfer lasts long enough for
# something to happen to the router while it runs.
PACED_CLIENT = textwrap.dedent("""
    import socket, sys, time
    data = bytes.fromhex(sys.stdin.read().strip())
    rate = float(sys.argv[2]); chunk = 32768
    s = socket.create_connection((sys.argv[1], 5001), timeout=60)
    t0 = time.monotonic()
    for i in range(0, len(data), chunk):
        s.sendall(data[i:i + chunk])
        ahead = t0 + (i + chunk) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    s.shutdown(socket.SHUT_WR)
    print(s.recv(100).decode(), flush=True)
""")

CLIENT = textwrap.dedent("""
    import socket, sys
    data = bytes.fromhex(sys.stdin.read().strip())
    s = socket.create_connection((sys.argv[1], 5001), timeout=60)
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    print(s.recv(100).decode(), flush=True)
""")

# UDP datagrams numbered 0..n-1 (4-byte sequence number, repeated 4 times) to DST on
# ports 9000-9006, from FLOWS sockets (so many flows, spread over the workers).
SENDER = textwrap.dedent("""
    import socket, sys
    dst, n, flows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(flows)]
    for i in range(n):
        socks[i % flows].sendto(i.to_bytes(4, "big") * 4, (dst, 9000 + i % 7))
""")

SNIFFER = textwrap.dedent("""
    import socket, sys, time
    want = int(sys.argv[1])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: no drops under load
    s.bind(("eth0", 0)); s.settimeout(0.5)
    print("ready", flush=True)
    seen = []
    deadline = time.time() + 30
    while len(seen) < want and time.time() < deadline:
        try:
            f = s.recv(2048)
        except TimeoutError:
            continue
        if f[12:14] == b"\\x08\\x00" and f[23] == 17 and f[30] == 10 and f[31] == 9:
            seen.append((f[26:30], f[34:38], int.from_bytes(f[42:46], "big")))
    print(len(seen), len(set(seen)), flush=True)
    by_flow = {}
    for src, ports, seq in seen:  # a flow: addresses and both UDP ports
        by_flow.setdefault((src, ports), []).append(seq)
    print(all(v == sorted(v) for v in by_flow.values()), flush=True)
""")

# A Linux UDP receiver on ports 9000-9006: counts datagrams until none arrived for IDLE
# seconds (after the first), then prints "total distinct".
UDP_RECEIVER = textwrap.dedent("""
    import selectors, socket, sys, time
    idle = float(sys.argv[1])
    sel = selectors.DefaultSelector()
    for port in range(9000, 9007):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
        s.bind(("0.0.0.0", port)); sel.register(s, selectors.EVENT_READ)
    print("ready", flush=True)
    got = []
    last = None
    deadline = time.time() + 60
    while time.time() < deadline:
        events = sel.select(timeout=0.2)
        for key, _ in events:
            got.append(key.fileobj.recv(2048)[:4])
            last = time.time()
        if last is not None and time.time() - last > idle:
            break
    print(len(got), len(set(got)), flush=True)
""")
