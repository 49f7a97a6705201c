"""An emulated cluster on one machine: one network namespace per server and per external
host, veth links shaped to their line rates, and each server's router.

:func:`up` builds it from a :class:`ClusterSpec` (the topology is a
:class:`~routebricks.netns.testbed.Testbed`: servers are its router nodes), writes each
server's configuration and starts its router (:class:`~routebricks.runtime.process.
RouterProcess`, detached: the routers outlive ``cluster up``), and records everything in a
state directory, ``/run/routebricks/clusters/<prefix>/`` (configurations, control sockets,
logs, ``state.json``). :func:`down` stops the routers (SIGTERM, so they print their
summaries; SIGKILL after a timeout) and removes every namespace, link and qdisc — also after
a crash, from the prefix alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routebricks.cluster.config import all_configs, internal_mac, port_mac
from routebricks.cluster.spec import ClusterSpec
from routebricks.errors import RouteBricksError

#: Seconds routers get to stop after SIGTERM before SIGKILL.
STOP_TIMEOUT = 15.0


def clusters_dir() -> Path:
    env = os.environ.get("ROUTEBRICKS_STATE_DIR")
    base = Path(env) if env else Path("/run/routebricks")
    d = base / "clusters"
    d.mkdir(parents=True, exist_ok=True)
    return d


@dataclass
class ClusterState:
    """What :func:`up` made, as ``state.json`` records it."""

    prefix: str
    file: str
    name: str
    dir: Path
    servers: dict[str, dict[str, Any]]  # name -> netns, socket, log, config, pid
    hosts: dict[str, dict[str, Any]]  # name -> netns, address, port
    started: float = 0.0

    def save(self) -> None:
        d = {"prefix": self.prefix, "file": self.file, "name": self.name,
             "servers": self.servers, "hosts": self.hosts, "started": self.started}
        tmp = self.dir / "state.json.tmp"
        tmp.write_text(json.dumps(d, indent=1))
        tmp.replace(self.dir / "state.json")

    @classmethod
    def load(cls, prefix: str | None = None) -> ClusterState:
        """The cluster with this prefix (or the only one running)."""
        found = sorted(p for p in clusters_dir().iterdir() if (p / "state.json").is_file())
        if prefix is not None:
            found = [p for p in found if p.name == prefix]
            if not found:
                raise RouteBricksError(f"no cluster with prefix {prefix!r} is up "
                                       "(routebricks cluster status lists them)")
        if not found:
            raise RouteBricksError("no cluster is up (start one with: routebricks cluster up "
                                   "FILE)")
        if len(found) > 1:
            raise RouteBricksError("several clusters are up: name one by its prefix ("
                                   + ", ".join(p.name for p in found) + ")")
        d = json.loads((found[0] / "state.json").read_text())
        return cls(d["prefix"], d["file"], d["name"], found[0], d["servers"], d["hosts"],
                   d.get("started", 0.0))

    def server_netns(self, name: str) -> str:
        return str(self.servers[name]["netns"])

    def host_netns(self, name: str) -> str:
        return str(self.hosts[name]["netns"])


def testbed_spec(spec: ClusterSpec) -> Any:
    """The cluster's topology as a testbed: servers are router nodes; every port with a
    ``host`` gets one; links carry their line rates (R outside, the internal rate inside)."""
    from routebricks.netns.testbed import InterfaceSpec, LinkSpec, NodeSpec, TestbedSpec

    routers, hosts, links = [], [], []
    for s in spec.servers:
        ifaces = [InterfaceSpec(p.interface, mac=port_mac(spec, p), mtu=p.mtu)
                  for p in s.ports]
        ifaces += [InterfaceSpec(mine, mac=internal_mac(spec, s.name, mine))
                   for _, mine, _ in spec.links_of(s.name)]
        routers.append(NodeSpec(s.name, ifaces))
        for p in s.ports:
            if p.host is None or p.host_address is None:
                continue
            hosts.append(NodeSpec(p.host, [InterfaceSpec("eth0", [str(p.host_address)],
                                                         mtu=p.mtu)],
                                  default_route=p.ip))
            links.append(LinkSpec(f"{p.host}:eth0", f"{s.name}:{p.interface}",
                                  rate=spec.rate))
    for link in spec.links:
        links.append(LinkSpec(f"{link.a[0]}:{link.a[1]}", f"{link.b[0]}:{link.b[1]}",
                              rate=spec.internal_rate))
    names = [n.name for n in routers + hosts]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise RouteBricksError(f"{spec.file}: {sorted(dup)[0]!r} names both a server and a "
                               "host (or two hosts): give every host its own name")
    return TestbedSpec(hosts=hosts, routers=routers, links=links)


def up(spec: ClusterSpec, *, prefix: str | None = None, routers: bool = True,
       timeout: float = 180.0) -> ClusterState:
    """Build the cluster and start its routers; undoes everything if anything fails."""
    from routebricks.netns.testbed import Testbed

    configs = all_configs(spec)  # every configuration mistake before anything is built
    tb = Testbed(testbed_spec(spec), prefix=prefix)
    state_dir = clusters_dir() / tb.prefix
    if state_dir.exists():
        raise RouteBricksError(f"cluster prefix {tb.prefix} is in use ({state_dir})")
    tb.up()
    state = ClusterState(tb.prefix, str(Path(spec.file).resolve()), spec.name, state_dir,
                         {}, {}, time.time())
    try:
        state_dir.mkdir(parents=True)
        for s in spec.servers:
            conf = state_dir / f"{s.name}.click"
            conf.write_text(configs[s.name])
            state.servers[s.name] = {"netns": tb.ns(s.name), "config": str(conf),
                                     "socket": str(state_dir / f"{s.name}.sock"),
                                     "log": str(state_dir / f"{s.name}.log"), "pid": 0,
                                     "index": s.index}
        for p in spec.ports:
            if p.host is not None:
                state.hosts[p.host] = {"netns": tb.ns(p.host), "port": p.index,
                                       "address": str(p.host_address.ip)  # type: ignore[union-attr]
                                       if p.host_address else None}
        state.save()
        if routers:
            procs = [start_router(state, s.name, spec.workers) for s in spec.servers]
            deadline = time.monotonic() + timeout
            for proc in procs:
                proc.wait_ready(max(1.0, deadline - time.monotonic()))
        state.save()
    except BaseException:
        down(state.prefix)
        raise
    return state


def start_router(state: ClusterState, server: str, workers: int = 1) -> Any:
    """Start (or restart) one server's router, detached; records its pid."""
    from routebricks.runtime.process import RouterProcess

    info = state.servers[server]
    with contextlib.suppress(FileNotFoundError):
        os.unlink(info["socket"])
    proc = RouterProcess(info["config"], netns=info["netns"], workers=workers,
                         socket_path=info["socket"], log_path=info["log"], detach=True,
                         args=_router_args(workers))
    proc.launch()
    info["pid"] = proc.pid
    state.save()
    return proc


def _router_args(workers: int) -> list[str]:
    """Servers share this machine's cores: a single worker is not pinned (all would land on
    the first core), and none busy-polls after traffic (--spin 0), which would take the
    cores the other servers and the hosts need."""
    return ["--spin", "0"] + (["--no-pin"] if workers == 1 else [])


def stop_router(state: ClusterState, server: str, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM one server's router (it prints its summary to its log); SIGKILL after
    ``timeout``."""
    pid = int(state.servers[server].get("pid") or 0)
    if pid and _is_router(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    state.servers[server]["pid"] = 0
    state.save()


def down(prefix: str | None = None, timeout: float = STOP_TIMEOUT) -> list[str]:
    """Stop the routers and remove the cluster (also after a crash). Returns what was
    removed (router pids, namespaces, links)."""
    from routebricks.netns.testbed import PREFIX_RE, cleanup

    removed: list[str] = []
    try:
        state = ClusterState.load(prefix)
    except RouteBricksError:
        if prefix is None or not PREFIX_RE.fullmatch(prefix):
            raise
        state = None  # a crash before state.json: remove by prefix alone
    if state is not None:
        for name in state.servers:
            pid = int(state.servers[name].get("pid") or 0)
            if pid and _alive(pid):
                removed.append(f"router {name} (pid {pid})")
            stop_router(state, name, timeout)
        prefix = state.prefix
    assert prefix is not None
    removed += cleanup(prefix, timeout=timeout)
    if state is not None:
        shutil.rmtree(state.dir, ignore_errors=True)
    return removed


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _is_router(pid: int) -> bool:
    """A pid from a state file may have been reused: only signal our own routers."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"routebricks" in cmd and b"run" in cmd
