"""Helpers of the cluster tests: bring a cluster up from a file (or text), wait for its BFD
sessions, run things on its hosts (pings, checked TCP transfers, a frame put on an
internal link and caught at a host), and check that `down` left nothing behind."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from nstest import CLIENT, SERVER, check_transfer, when_ready

REPO = Path(__file__).resolve().parents[2]
RB4 = REPO / "examples" / "rb4.toml"


def spec_from(text_or_path: str | Path, tmp: Path | None = None) -> Any:
    from routebricks.cluster.spec import load_cluster

    if isinstance(text_or_path, Path):
        return load_cluster(text_or_path)
    assert tmp is not None
    f = tmp / "cluster.toml"
    f.write_text(text_or_path)
    return load_cluster(f)


def rb4_text(**cluster: str) -> str:
    """examples/rb4.toml with some [cluster] keys replaced (values as TOML text)."""
    lines = RB4.read_text().splitlines()
    out = []
    for line in lines:
        key = line.split("=", 1)[0].strip()
        out.append(f"{key} = {cluster.pop(key)}" if key in cluster else line)
    text = "\n".join(out) + "\n"
    if cluster:
        text = text.replace("[cluster]\n", "[cluster]\n" + "".join(
            f"{k} = {v}\n" for k, v in cluster.items()), 1)
    return text


@contextlib.contextmanager
def running(spec: Any, routers: bool = True) -> Iterator[Any]:
    """The cluster up for the body; down afterwards, with a check that nothing is left."""
    from routebricks.cluster.launch import down, up

    state = up(spec, routers=routers)
    try:
        if routers:
            wait_bfd_up(state)
        yield state
    finally:
        down(state.prefix)
        assert_gone(state)


def assert_gone(state: Any) -> None:
    from pyroute2 import netns

    assert not [n for n in netns.listnetns() if n.startswith(state.prefix)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert state.prefix not in links
    qd = subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout
    assert state.prefix not in qd
    for s in state.servers.values():
        pid = int(s.get("pid") or 0)
        if pid:
            stat = Path(f"/proc/{pid}/stat")
            assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert not state.dir.exists()


def logs(state: Any) -> str:
    """The end of every server's log, and the cluster's status: for failure messages."""
    out = []
    for name, s in state.servers.items():
        try:
            out.append(f"--- {name} log:\n" + Path(s["log"]).read_text()[-2000:])
        except OSError as e:
            out.append(f"--- {name} log: {e}")
    status = subprocess.run([sys.executable, "-m", "routebricks.cli", "cluster", "status",
                             "--once", state.prefix], capture_output=True, text=True)
    return "\n".join(out) + "\n--- status:\n" + status.stdout + status.stderr


def read(state: Any, server: str, spec: str) -> str:
    from routebricks.runtime.control import ControlClient

    with ControlClient(state.servers[server]["socket"], timeout=10) as c:
        return c.read(spec)


def write(state: Any, server: str, spec: str, value: str) -> None:
    from routebricks.runtime.control import ControlClient

    with ControlClient(state.servers[server]["socket"], timeout=10) as c:
        c.write(spec, value)


def bfd_states(state: Any, server: str) -> dict[str, str]:
    """BFD element name -> state, on one server."""
    names = [n for n in read(state, server, "list").splitlines()[1:] if n.startswith("bfd")]
    return {n: read(state, server, f"{n}.state").strip() for n in names}


def wait_bfd_up(state: Any, timeout: float = 60.0, skip: Sequence[str] = ()) -> None:
    """Every BFD session of every (running) server is Up."""
    deadline = time.monotonic() + timeout
    while True:
        pending = {s: st for s in state.servers if s not in skip
                   for n, st in bfd_states(state, s).items() if st.lower() != "up"}
        if not pending:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"BFD sessions not up after {timeout:g} s: {pending}")
        time.sleep(0.2)


def host_popen(state: Any, host: str, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
    from routebricks.netns.core import popen_in_netns

    return popen_in_netns(state.host_netns(host), argv, **kw)


def host_run(state: Any, host: str, argv: Sequence[str], timeout: float = 60,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
    p = host_popen(state, host, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   stdin=subprocess.PIPE if input is not None else None, text=True)
    try:
        out, err = p.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise
    return subprocess.CompletedProcess(list(argv), p.returncode, out, err)


def ping(state: Any, src: str, dst_ip: str, count: int = 2) -> subprocess.CompletedProcess[str]:
    return host_run(state, src, ["ping", "-c", str(count), "-i", "0.2", "-W", "2", dst_ip])


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def ping_every_pair(state: Any, hosts: dict[str, str]) -> int:
    """Every host pings every other (name -> address) at once; every pair answers, with
    TTL 63: however many servers a packet crosses, the cluster is one router and
    decrements it once. Returns how many pairs pinged."""
    procs = {}
    for src in hosts:
        for dst, ip in hosts.items():
            if src != dst:
                procs[(src, dst)] = host_popen(
                    state, src, ["ping", "-c", "3", "-i", "0.2", "-W", "3", ip],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    failed = {}
    for pair, p in procs.items():
        out, _ = p.communicate(timeout=60)
        if p.returncode != 0:
            failed[pair] = out
        else:
            assert "ttl=63" in out, out
    assert not failed, f"{sorted(failed)}\n{logs(state)}"
    return len(procs)


def tcp_server(state: Any,
               host: str) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """nstest's SERVER on ``host``, ready for one transfer (see ``nstest.when_ready``)."""
    return when_ready(host_popen(state, host, python(SERVER), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True))


def transfer(state: Any, src: str, dst: str, dst_ip: str, data: bytes) -> float:
    """``data`` over TCP from host ``src`` to host ``dst`` (at ``dst_ip``), checked whole
    at both ends; the seconds it took, start-up included."""
    with tcp_server(state, dst) as server:
        t0 = time.monotonic()
        client = host_run(state, src, python(CLIENT, dst_ip), input=data.hex(), timeout=120)
        took = time.monotonic() - t0
        check_transfer(client, server, data)
    return took


# Sends one frame (argv[2], hex) on an interface (argv[1]).
INJECT = textwrap.dedent("""
    import socket, sys
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((sys.argv[1], 0))
    s.send(bytes.fromhex(sys.argv[2]))
""")
# Listens on eth0 for a frame that holds argv[1] (hex), and prints it (hex).
LISTEN = textwrap.dedent("""
    import socket, sys, time
    want = bytes.fromhex(sys.argv[1])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind(("eth0", 0)); s.settimeout(0.5)
    print("ready", flush=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            f = s.recv(4096)
        except TimeoutError:
            continue
        if want in f:
            print(f.hex(), flush=True)
            break
""")


def inject_and_catch(state: Any, server: str, ifname: str, frame: bytes, host: str,
                     want: bytes) -> bytes:
    """Put ``frame`` on server ``server``'s interface ``ifname`` (an internal link, as if
    its neighbour had sent it) and return the frame holding ``want`` that reaches host
    ``host`` (empty if none does within 30 s)."""
    from routebricks.netns.core import popen_in_netns

    with when_ready(host_popen(state, host, python(LISTEN, want.hex()),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)) as listener:
        inj = popen_in_netns(state.server_netns(server), python(INJECT, ifname, frame.hex()))
        assert inj.wait(timeout=30) == 0
        out, _ = listener.communicate(timeout=60)
    return bytes.fromhex(out.strip())
