"""Testbeds: hosts and routers in network namespaces, joined by veth links (pyroute2 only).

A testbed is a declared topology (Mininet's *topo*): nodes -- hosts (a namespace with
interfaces, addresses and routes) and any number of router nodes (namespaces whose
interfaces a software router drives) -- and point-to-point links (veth pairs) between
``node:interface`` endpoints. :class:`Testbed` instantiates it (Mininet's *net*):
:meth:`Testbed.up` builds it, :meth:`Testbed.down` removes it, and it is a context manager.

Naming and crash recovery
    Every object we create carries a per-testbed prefix ``rb<6 hex>-``: namespaces are
    ``<prefix><node>``, and a veth end is called ``<prefix><link#><a|b>`` while it still
    sits in the creating namespace. Before anything is created, the prefix, pid and object
    names go to a state file ``/run/routebricks/<prefix>.json`` (or
    ``$ROUTEBRICKS_STATE_DIR``, or a temp dir if /run is not writable). A prefix that is
    in use (a namespace or a live testbed's state file) is refused, and the running testbed
    is left alone. :func:`cleanup` removes every namespace, leftover veth and state file
    with our prefix (or one given prefix), like ``mn -c``, stopping the processes inside
    first (SIGTERM, then SIGKILL after a timeout); with ``stale_only=True`` only testbeds
    whose recorded process is dead (crashed runs).

Line rates
    A link with a ``rate`` gets a tbf on the egress of both ends (see
    :mod:`routebricks.netns.tc` for what the rate counts and the defaults of bucket and
    queue); the namespaces' removal removes it.

Offloads
    Segmentation/aggregation offloads, TX checksum offload and VLAN tag offload are
    switched off on every veth end (see :data:`routebricks.netns.core.OFFLOADS_OFF`), so
    packet sockets see frames as a wire would carry them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import secrets
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pyroute2 import IPRoute, NetNS
from pyroute2 import netns as pr_netns

from routebricks.errors import RouteBricksError
from routebricks.netns.core import (
    disable_offloads,
    get_ip_forward,
    namespace_pids,
    netns_context,
    offload_state,
    pid_alive,
    popen_in_netns,
    process_name,
    run_in_netns,
    set_ip_forward,
    stop_processes,
    sysctl_write,
)
from routebricks.netns.tc import parse_rate, shape

__all__ = [
    "InterfaceSpec",
    "LinkSpec",
    "NodeSpec",
    "PREFIX_RE",
    "RouteSpec",
    "Testbed",
    "TestbedSpec",
    "StoppedProcess",
    "cleanup",
    "prefix_in_use",
]

T = TypeVar("T")

#: What every testbed prefix looks like; cleanup() only touches names matching it.
PREFIX_RE = re.compile(r"^rb[0-9a-f]{6}-")
IFNAMSIZ = 16


# --------------------------------------------------------------------------
# Declarative description
# --------------------------------------------------------------------------
@dataclass
class InterfaceSpec:
    """One interface of a node.

    ``addresses`` are ``"addr/prefixlen"`` strings (IPv4 or IPv6). ``mac``
    None means a deterministic locally administered address (see
    :meth:`Testbed.up`).
    """

    name: str
    addresses: list[str] = field(default_factory=list)
    mac: str | None = None
    mtu: int | None = None


@dataclass
class RouteSpec:
    """A static route: ``dst`` (``"10.0.0.0/8"`` or ``"default"``) via ``gateway``."""

    dst: str
    gateway: str


@dataclass
class NodeSpec:
    """A host or router: one network namespace."""

    name: str
    interfaces: list[InterfaceSpec] = field(default_factory=list)
    default_route: str | None = None
    routes: list[RouteSpec] = field(default_factory=list)
    ip_forward: bool = False

    def interface(self, name: str) -> InterfaceSpec:
        for i in self.interfaces:
            if i.name == name:
                return i
        raise KeyError(f"node {self.name!r} has no interface {name!r}")


@dataclass
class LinkSpec:
    """A veth pair between endpoints ``"node:ifname"`` ``a`` and ``b``.

    ``rate`` (bits/s; None: unshaped) is the line rate of each direction: :meth:`Testbed.up`
    shapes both ends' egress with :func:`routebricks.netns.tc.shape`. A string such as
    ``"20Mbit"`` is parsed (:func:`~routebricks.netns.tc.parse_rate`) on construction.
    """

    a: str
    b: str
    rate: int | None = None

    def __post_init__(self) -> None:
        self.rate = self.checked_rate()

    def checked_rate(self) -> int | None:
        """``rate`` in bits/s; ValueError naming the link and the key if it is not one."""
        if self.rate is None:
            return None
        try:
            return parse_rate(self.rate, "rate")
        except RouteBricksError as e:
            raise ValueError(f"link {self.a} -- {self.b}: {e}") from None

    @staticmethod
    def split(endpoint: str) -> tuple[str, str]:
        node, sep, ifname = endpoint.partition(":")
        if not sep or not node or not ifname:
            raise ValueError(f"link endpoint {endpoint!r} is not 'node:ifname'")
        return node, ifname


@dataclass
class TestbedSpec:
    """Hosts, router nodes (any number), and links between them."""

    __test__ = False  # not a pytest test class despite the name

    hosts: list[NodeSpec] = field(default_factory=list)
    routers: list[NodeSpec] = field(default_factory=list)
    links: list[LinkSpec] = field(default_factory=list)
    disable_ipv6: bool = True
    disable_offloads: bool = True

    @property
    def router(self) -> NodeSpec | None:
        """The router node of a one-router testbed (the first, if there are several)."""
        return self.routers[0] if self.routers else None

    def nodes(self) -> list[NodeSpec]:
        """All nodes, routers first."""
        return list(self.routers) + list(self.hosts)

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes():
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r}")

    def validate(self) -> None:
        """Raise ValueError on duplicate names, dangling or reused endpoints, bad values."""
        names = [n.name for n in self.nodes()]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate node names in {names}")
        for n in self.nodes():
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", n.name):
                raise ValueError(f"bad node name {n.name!r}")
            ifs = [i.name for i in n.interfaces]
            if len(set(ifs)) != len(ifs):
                raise ValueError(f"duplicate interface names on {n.name!r}")
            for i in n.interfaces:
                if not 0 < len(i.name) < IFNAMSIZ or "/" in i.name or " " in i.name:
                    raise ValueError(f"bad interface name {i.name!r}")
                for a in i.addresses:
                    if ipaddress.ip_interface(a).version == 6 and self.disable_ipv6:
                        raise ValueError(f"IPv6 address {a} but disable_ipv6 is set")
            for gw in [n.default_route] + [r.gateway for r in n.routes]:
                if gw is not None:
                    ipaddress.ip_address(gw)
        used: set[str] = set()
        for link in self.links:
            link.rate = link.checked_rate()
            for ep in (link.a, link.b):
                node, ifname = LinkSpec.split(ep)
                self.node(node).interface(ifname)
                if ep in used:
                    raise ValueError(f"endpoint {ep} used by two links")
                used.add(ep)
        if len(self.links) > 999:
            raise ValueError("at most 999 links")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestbedSpec:
        """Build from the structure of the TOML format (see :meth:`from_toml`)."""

        def node(nd: dict[str, Any]) -> NodeSpec:
            return NodeSpec(
                name=str(nd["name"]),
                interfaces=[
                    InterfaceSpec(
                        name=str(i["name"]),
                        addresses=[str(a) for a in i.get("addresses", [])],
                        mac=i.get("mac"),
                        mtu=i.get("mtu"),
                    )
                    for i in nd.get("interfaces", [])
                ],
                default_route=nd.get("default_route"),
                routes=[RouteSpec(str(r["dst"]), str(r["gateway"])) for r in nd.get("routes", [])],
                ip_forward=bool(nd.get("ip_forward", False)),
            )

        links = []
        for ld in d.get("links", []):
            if isinstance(ld, dict):
                links.append(LinkSpec(str(ld["a"]), str(ld["b"]), rate=ld.get("rate")))
            else:
                a, b = ld
                links.append(LinkSpec(str(a), str(b)))
        opts = d.get("testbed", {})
        spec = cls(
            hosts=[node(h) for h in d.get("hosts", [])],
            routers=[node(r) for r in ([d["router"]] if "router" in d else [])]
            + [node(r) for r in d.get("routers", [])],
            links=links,
            disable_ipv6=bool(opts.get("disable_ipv6", True)),
            disable_offloads=bool(opts.get("disable_offloads", True)),
        )
        spec.validate()
        return spec

    @classmethod
    def from_toml(cls, source: str | os.PathLike[str]) -> TestbedSpec:
        """Load a spec from a TOML file path, or from TOML text if it contains a newline.

        Format::

            [testbed]                 # optional
            disable_ipv6 = true       # less noise on packet sockets (RS/MLD/DAD)
            disable_offloads = true

            [router]                  # one router; or [[routers]] tables for several
            name = "r"
            ip_forward = false        # true = the kernel forwards (no software router)
            interfaces = [
              { name = "eth0", addresses = ["10.0.1.1/24"], mac = "02:00:00:00:01:01" },
              { name = "eth1", addresses = ["10.0.2.1/24"] },
            ]

            [[hosts]]
            name = "a"
            default_route = "10.0.1.1"
            routes = [{ dst = "192.168.0.0/16", gateway = "10.0.1.1" }]
            interfaces = [{ name = "eth0", addresses = ["10.0.1.2/24"], mtu = 1500 }]

            [[links]]
            a = "a:eth0"
            b = "r:eth0"
            rate = "20Mbit"           # optional line rate, each direction (tbf on both
                                      # ends); a number is bits/s; "1.5Gbit", "500kbit"
            # or: links = [["a:eth0", "r:eth0"], ...]
        """
        text = str(source)
        if "\n" not in text:
            text = Path(source).read_text()
        return cls.from_dict(tomllib.loads(text))


# --------------------------------------------------------------------------
# State files and cleanup
# --------------------------------------------------------------------------
def _state_dir(state_dir: str | os.PathLike[str] | None = None) -> Path:
    if state_dir is not None:
        return Path(state_dir)
    env = os.environ.get("ROUTEBRICKS_STATE_DIR")
    if env:
        return Path(env)
    run = Path("/run/routebricks")
    try:
        run.mkdir(parents=True, exist_ok=True)
        if os.access(run, os.W_OK):
            return run
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "routebricks"


def _root_links() -> list[tuple[int, str]]:
    with IPRoute() as ipr:
        return [(link["index"], link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]


#: Seconds processes inside a testbed get to stop after SIGTERM before SIGKILL.
STOP_TIMEOUT = 10.0


@dataclass
class StoppedProcess:
    """A process that was running inside a testbed namespace when it was removed."""

    pid: int
    namespace: str
    command: str
    signal: str  # "SIGTERM" (it exited when asked) or "SIGKILL"

    def __str__(self) -> str:
        return f"pid {self.pid} in {self.namespace} ({self.command}): {self.signal}"


def _stop_inside(namespaces: Sequence[str], timeout: float) -> list[StoppedProcess]:
    """Stop every process inside these namespaces: SIGTERM (a router stops cleanly and
    prints its summary), SIGKILL after ``timeout``. Processes left inside would keep a
    namespace (and its veths) alive."""
    me = os.getpid()
    where = {pid: ns for ns, pids in namespace_pids(namespaces).items() for pid in pids
             if pid != me}
    names = {pid: process_name(pid) for pid in where}
    how = stop_processes(list(where), timeout=timeout)
    return [StoppedProcess(pid, where[pid], names[pid], sig) for pid, sig in how.items()]


def _remove_prefix(prefix: str, state_dir: Path, stopped: list[StoppedProcess] | None = None,
                   timeout: float = STOP_TIMEOUT) -> list[str]:
    """Remove namespaces, root-namespace links and the state file of ``prefix``; the
    processes inside are stopped first (and appended to ``stopped``)."""
    removed: list[str] = []
    ours = [n for n in pr_netns.listnetns() if n.startswith(prefix)]
    if ours:
        gone = _stop_inside(ours, timeout)
        if stopped is not None:
            stopped.extend(gone)
    for name in ours:
        with contextlib.suppress(FileNotFoundError):
            pr_netns.remove(name)
            removed.append(name)
    with IPRoute() as ipr:
        links = [(link["index"], link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]
        for index, name in links:
            if name.startswith(prefix):
                # Deleting one veth end deletes its peer; ENODEV is fine then.
                with contextlib.suppress(Exception):
                    ipr.link("del", index=index)
                removed.append(name)
    with contextlib.suppress(FileNotFoundError):
        (state_dir / f"{prefix}.json").unlink()
    return removed


def cleanup(
    prefix: str | None = None,
    *,
    stale_only: bool = False,
    state_dir: str | os.PathLike[str] | None = None,
    stopped: list[StoppedProcess] | None = None,
    timeout: float = STOP_TIMEOUT,
) -> list[str]:
    """Remove testbed leftovers; returns the namespace/interface names removed.

    * ``cleanup(prefix)``: everything of that one testbed.
    * ``cleanup()``: every namespace and interface whose name matches
      :data:`PREFIX_RE`, and every state file -- all testbeds of all
      processes, like ``mn -c``.
    * ``cleanup(stale_only=True)``: only testbeds whose state file (in
      ``state_dir``) names a process that no longer exists, i.e. crashed
      runs; testbeds of live processes, and names without a state file here
      (which may belong to a run using another state dir), are left alone.

    Processes still running inside a removed namespace are stopped first (they
    would keep it alive): SIGTERM, then SIGKILL after ``timeout`` seconds; each
    is appended to ``stopped``. Interfaces are looked for in the caller's
    namespace, where up() creates veths before moving them.
    """
    sdir = _state_dir(state_dir)
    if prefix is not None:
        return _remove_prefix(prefix, sdir, stopped, timeout)
    state: dict[str, int] = {}
    if sdir.is_dir():
        for f in sdir.glob("rb*.json"):
            if PREFIX_RE.fullmatch(f.stem):
                try:
                    state[f.stem] = int(json.loads(f.read_text()).get("pid", 0))
                except (ValueError, OSError, AttributeError):
                    state[f.stem] = 0
    if stale_only:
        prefixes = {p for p, pid in state.items() if not (pid and pid_alive(pid))}
    else:
        names = pr_netns.listnetns() + [n for _, n in _root_links()]
        prefixes = {m.group(0) for n in names if (m := PREFIX_RE.match(n))} | set(state)
    removed: list[str] = []
    for p in sorted(prefixes):
        removed += _remove_prefix(p, sdir, stopped, timeout)
    return removed


def prefix_in_use(prefix: str, state_dir: str | os.PathLike[str] | None = None) -> str | None:
    """Why ``prefix`` cannot be used for a new testbed (None if it can): a namespace or
    a root-namespace link with that prefix exists, or a state file records it."""
    ns = sorted(n for n in pr_netns.listnetns() if n.startswith(prefix))
    if ns:
        return f"namespaces {', '.join(ns[:4])}{' ...' if len(ns) > 4 else ''} exist"
    links = sorted(n for _, n in _root_links() if n.startswith(prefix))
    if links:
        return f"interfaces {', '.join(links[:4])} exist"
    if (_state_dir(state_dir) / f"{prefix}.json").exists():
        return f"its state file {_state_dir(state_dir) / f'{prefix}.json'} exists"
    return None


# --------------------------------------------------------------------------
# Testbed
# --------------------------------------------------------------------------
class Testbed:
    """A namespace topology built from a :class:`TestbedSpec`.

    Usage::

        with Testbed(TestbedSpec.from_toml("topo.toml")) as tb:
            tb.run("a", ["ping", "-c1", "10.0.2.2"], check=True)

    ``tb.ns(node)`` is a node's namespace name; ``tb.call``/``tb.run``/
    ``tb.popen`` run code inside one. The object does not clean up when it is
    garbage collected; use ``down()``, ``with``, or :func:`cleanup`.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        spec: TestbedSpec,
        *,
        prefix: str | None = None,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        spec.validate()
        self.spec = spec
        self.prefix: str = prefix or f"rb{secrets.token_hex(3)}-"
        if not PREFIX_RE.fullmatch(self.prefix):
            raise ValueError(f"prefix must match {PREFIX_RE.pattern}")
        self.state_dir: Path = _state_dir(state_dir)
        self.state_file: Path = self.state_dir / f"{self.prefix}.json"
        self._procs: list[subprocess.Popen[Any]] = []
        self.is_up = False

    # -- names --------------------------------------------------------------
    def ns(self, node: str) -> str:
        """Namespace name of ``node``."""
        self.spec.node(node)
        return f"{self.prefix}{node}"

    @property
    def namespaces(self) -> list[str]:
        return [self.ns(n.name) for n in self.spec.nodes()]

    def _tmp_ifname(self, link_no: int, side: str) -> str:
        return f"{self.prefix}{link_no}{side}"

    @staticmethod
    def default_mac(link_no: int, side: int) -> str:
        """Deterministic locally administered MAC for link ``link_no``, end 0 (a) or 1 (b)."""
        return f"02:72:62:{(link_no >> 8) & 0xFF:02x}:{link_no & 0xFF:02x}:{side + 1:02x}"

    # -- lifecycle ----------------------------------------------------------
    def _write_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "prefix": self.prefix,
            "pid": os.getpid(),
            "created": time.time(),
            "namespaces": self.namespaces,
            "tmp_links": [
                self._tmp_ifname(i, s) for i in range(len(self.spec.links)) for s in "ab"
            ],
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.state_file)

    def up(self) -> Testbed:
        """Create namespaces, veths, addresses and routes. Undoes itself on failure."""
        if self.is_up:
            return self
        busy = prefix_in_use(self.prefix, self.state_dir)
        if busy is not None:
            # Never touch what is there: it may be a running testbed.
            raise RouteBricksError(
                f"testbed prefix {self.prefix} is in use ({busy}); choose another prefix, "
                f"or remove that testbed first with: routebricks testbed down {self.prefix}")
        self._write_state()
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        self.is_up = True
        return self

    def _build(self) -> None:
        spec = self.spec
        for node in spec.nodes():
            pr_netns.create(self.ns(node.name))
        for node in spec.nodes():
            ns = self.ns(node.name)
            if spec.disable_ipv6:
                # Before interfaces arrive so they inherit it ("default").
                for k in ("all", "default"):
                    sysctl_write(ns, f"net.ipv6.conf.{k}.disable_ipv6", 1)
            set_ip_forward(ns, node.ip_forward)
            with NetNS(ns, flags=0) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

        # veth pairs: created here under prefixed names (so a crash leaves only
        # names cleanup() recognises), then moved into their namespaces.
        with IPRoute() as ipr:
            for i, link in enumerate(spec.links):
                ta, tb = self._tmp_ifname(i, "a"), self._tmp_ifname(i, "b")
                ipr.link("add", ifname=ta, kind="veth", peer={"ifname": tb})
                for tmp, ep in ((ta, link.a), (tb, link.b)):
                    node, _ = LinkSpec.split(ep)
                    idx = ipr.link_lookup(ifname=tmp)[0]
                    ipr.link("set", index=idx, net_ns_fd=self.ns(node))

        for i, link in enumerate(spec.links):
            for side, ep in enumerate((link.a, link.b)):
                node, ifname = LinkSpec.split(ep)
                self._configure_if(node, self._tmp_ifname(i, "ab"[side]), ifname, i, side)

        # After the MTUs are set: the default tbf burst holds one largest frame.
        for link in spec.links:
            if link.rate is not None:
                for ep in (link.a, link.b):
                    node, ifname = LinkSpec.split(ep)
                    shape(self.ns(node), ifname, link.rate)

        for node in spec.nodes():
            with NetNS(self.ns(node.name), flags=0) as ipr:
                if node.default_route:
                    ipr.route(
                        "add", dst=_default_dst(node.default_route), gateway=node.default_route
                    )
                for r in node.routes:
                    dst = _default_dst(r.gateway) if r.dst == "default" else r.dst
                    ipr.route("add", dst=dst, gateway=r.gateway)

    def _configure_if(self, node: str, tmp: str, ifname: str, link_no: int, side: int) -> None:
        ispec = self.spec.node(node).interface(ifname)
        ns = self.ns(node)
        with NetNS(ns, flags=0) as ipr:
            idx = ipr.link_lookup(ifname=tmp)[0]
            kw: dict[str, Any] = {
                "ifname": ifname,
                "address": ispec.mac or self.default_mac(link_no, side),
            }
            if ispec.mtu:
                kw["mtu"] = ispec.mtu
            ipr.link("set", index=idx, **kw)
            for a in ispec.addresses:
                iface = ipaddress.ip_interface(a)
                ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        if self.spec.disable_offloads:
            still_on = run_in_netns(ns, disable_offloads, ifname)
            if still_on:
                raise RuntimeError(f"{node}:{ifname}: could not disable offloads {still_on}")
        with NetNS(ns, flags=0) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], state="up")

    def down(self, timeout: float = STOP_TIMEOUT) -> list[StoppedProcess]:
        """Stop our processes, delete namespaces (and with them the veths), leftovers, state.
        Other processes found inside get SIGTERM, then SIGKILL after ``timeout``; returns
        those."""
        for p in self._procs:
            if p.poll() is None:
                p.kill()
            with contextlib.suppress(Exception):
                p.wait(timeout=5)
        self._procs.clear()
        stopped: list[StoppedProcess] = []
        _remove_prefix(self.prefix, self.state_dir, stopped, timeout)
        self.is_up = False
        return stopped

    def __enter__(self) -> Testbed:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- running things inside ---------------------------------------------
    def call(self, node: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a helper thread inside ``node``'s namespace."""
        return run_in_netns(self.ns(node), fn, *args, **kwargs)

    @contextlib.contextmanager
    def inside(self, node: str) -> Iterator[None]:
        """Context manager: the calling thread is in ``node``'s namespace."""
        with netns_context(self.ns(node)):
            yield

    def popen(self, node: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside ``node``'s namespace; killed by :meth:`down`."""
        p = popen_in_netns(self.ns(node), argv, **kwargs)
        self._procs.append(p)
        return p

    def run(
        self, node: str, argv: Sequence[str], *, timeout: float | None = 60, **kwargs: Any
    ) -> subprocess.CompletedProcess[Any]:
        """Like :func:`subprocess.run` inside ``node``'s namespace."""
        check = kwargs.pop("check", False)
        kwargs.pop("capture_output", None)  # output is always captured
        data = kwargs.pop("input", None)
        if data is not None:
            kwargs.setdefault("stdin", subprocess.PIPE)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        kwargs.setdefault("text", True)
        p = self.popen(node, argv, **kwargs)
        try:
            out, err = p.communicate(input=data, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise
        finally:
            self._procs.remove(p)
        res = subprocess.CompletedProcess(list(argv), p.returncode, out, err)
        if check:
            res.check_returncode()
        return res

    def set_ip_forward(self, node: str, enabled: bool = True) -> None:
        set_ip_forward(self.ns(node), enabled)

    def get_ip_forward(self, node: str) -> bool:
        return get_ip_forward(self.ns(node))

    def ifindex(self, node: str, ifname: str) -> int:
        with NetNS(self.ns(node), flags=0) as ipr:
            return int(ipr.link_lookup(ifname=ifname)[0])

    def mac(self, node: str, ifname: str) -> str:
        with NetNS(self.ns(node), flags=0) as ipr:
            link = ipr.get_links(ipr.link_lookup(ifname=ifname)[0])[0]
            return str(link.get_attr("IFLA_ADDRESS"))

    def offloads(self, node: str, ifname: str) -> dict[str, bool]:
        """ethtool feature name -> active, for ``node:ifname``."""
        return self.call(node, offload_state, ifname)


def _default_dst(gateway: str) -> str:
    return "::/0" if ipaddress.ip_address(gateway).version == 6 else "0.0.0.0/0"
