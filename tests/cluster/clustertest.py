"""Helpers of the cluster tests: bring a cluster up from a file (or text), wait for its BFD
sessions, run things on its hosts, and check that `down` left nothing behind."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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
