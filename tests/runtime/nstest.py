"""Shared pieces of the namespace tests: whether namespaces can be made here, the
namespaces that exist, and a TCP transfer whose content is checked (SERVER receives until
the client closes and answers with the SHA-256 of what it got; CLIENT sends stdin's bytes
(hex) to argv[1] and prints the server's answer)."""

import os
import secrets
import signal
import subprocess
import textwrap


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

CLIENT = textwrap.dedent("""
    import socket, sys
    data = bytes.fromhex(sys.stdin.read().strip())
    s = socket.create_connection((sys.argv[1], 5001), timeout=60)
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    print(s.recv(100).decode(), flush=True)
""")
