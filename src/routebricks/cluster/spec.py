"""The cluster file: a RouteBricks router made of several servers, described in TOML.

::

    [cluster]
    name = "rb4"
    rate = "20Mbit"          # R: the line rate of every external port
    vlb = "direct"           # Direct VLB (default) or "classic" VLB
    flowlets = true          # keep a flow's packets within delta on one path (§6.1)
    delta = "100ms"          # the flowlet timeout δ
    topology = "mesh"        # a full mesh of internal links, or "nfly" with k = K
                             # (a k-ary n-fly: see routebricks.cluster.nfly)
    workers = 1              # worker processes per server (1 for now: BFD)
    routes = "rb4.routes"    # optional: more routes (see below)
    # internal_rate = "10Mbit"   default 2R/N, what a full mesh needs (§3.2)
    # direct_rate = "5Mbit"      most sent straight to one server; default the internal
    #                            rate (the paper's Direct VLB: R/N)
    # bfd_interval = "100ms"     liveness between servers (BFD, RFC 5880)

    [[servers]]
    name = "s1"
    ports = [{ interface = "ext0", address = "10.1.0.1/24", host = "h1" }]

    # Internal links, needed on real machines (interface names on each side); for
    # `cluster up` they default to a full mesh of veth pairs named after the peer.
    # [[links]]
    # a = "s1:eth1"
    # b = "s2:eth1"

A port: ``interface``, ``address`` (the router's address on it, ADDR/LEN), ``mac``
(optional), ``gateway`` (the neighbour beyond the port that routes are sent to; default:
the emulated host's address), ``host`` (the name of an emulated host for ``cluster up``),
``host_address`` (its address; default the first other address of the subnet),
``prefixes`` (networks reached through the gateway), ``mtu`` (default 1500).

Ports are numbered across the cluster in file order (s1's first, ...). ``routes`` is either
a route file of ``ADDR/LEN [GATEWAY] PORT`` lines whose PORT is such a cluster port number
(a route without a gateway goes to that port's gateway), or a pyasn table
(``.dat``/``.dat.gz``, e.g. the 2008 RouteViews table), whose prefixes are spread over the
ports by origin AS (AS modulo the number of ports), each via its port's gateway.

A server's ``role`` is ``io`` (it has external ports) or, in a k-ary n-fly only,
``intermediate`` (``ports = []``); inferred from its ports when absent.

Every mistake is reported with the file, the key and a hint, before anything is built.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routebricks.cluster import nfly
from routebricks.errors import RouteBricksError
from routebricks.packet.clustermac import MAX_PORTS, MAX_SERVERS

IFNAMSIZ = 16
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,11}")
_TIME = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|us|s)?\s*")


class ClusterFileError(RouteBricksError):
    """A mistake in a cluster file: names the file, the key and a hint."""

    def __init__(self, file: str, key: str, problem: str, hint: str | None = None) -> None:
        self.file, self.key, self.problem, self.hint = file, key, problem, hint
        text = f"{file}: {key}: {problem}" if key else f"{file}: {problem}"
        super().__init__(text + (f"\n  hint: {hint}" if hint else ""))


@dataclass
class Port:
    """One external port of a server."""

    interface: str
    address: ipaddress.IPv4Interface
    index: int = 0  # cluster-wide port number
    local: int = 0  # number on its server
    mac: str | None = None
    gateway: ipaddress.IPv4Address | None = None
    host: str | None = None
    host_address: ipaddress.IPv4Interface | None = None
    prefixes: list[ipaddress.IPv4Network] = field(default_factory=list)
    mtu: int = 1500

    @property
    def ip(self) -> str:
        return str(self.address.ip)

    @property
    def network(self) -> ipaddress.IPv4Network:
        return self.address.network


@dataclass
class Server:
    name: str
    index: int
    ports: list[Port] = field(default_factory=list)
    role: str = "io"  # or "intermediate" (a k-ary n-fly's switch: no external ports)


@dataclass
class Link:
    """An internal link: ``a``/``b`` are (server, interface)."""

    a: tuple[str, str]
    b: tuple[str, str]
    index: int = 0


@dataclass
class ClusterSpec:
    name: str
    servers: list[Server]
    links: list[Link]
    rate: int  # R, bits/s
    internal_rate: int  # bits/s per internal link
    vlb: str = "direct"
    flowlets: bool = True
    delta: float = 0.1  # seconds
    topology: str = "mesh"
    workers: int = 1
    routes: Path | None = None
    bfd_interval: float = 0.1
    file: str = "<cluster>"
    direct_rate: int | None = None  # bits/s; None: the internal rate
    k: int | None = None  # topology "nfly": the switches' degree
    nfly: nfly.Butterfly | None = None  # topology "nfly": who is where

    def mac_server(self, server: Server) -> int:
        """The number a cluster MAC gives an (io) server: its index, or in a k-ary n-fly
        its terminal number."""
        return self.nfly.terminal(server.name) if self.nfly is not None else server.index

    @property
    def ports(self) -> list[Port]:
        return [p for s in self.servers for p in s.ports]

    def server(self, name: str) -> Server:
        for s in self.servers:
            if s.name == name:
                return s
        names = ", ".join(s.name for s in self.servers)
        raise ClusterFileError(self.file, "servers", f"no server named {name!r}",
                               f"the servers are {names}")

    def links_of(self, server: str) -> list[tuple[Link, str, str]]:
        """(link, this side's interface, the peer server) for each link of ``server``."""
        out = []
        for link in self.links:
            if link.a[0] == server:
                out.append((link, link.a[1], link.b[0]))
            elif link.b[0] == server:
                out.append((link, link.b[1], link.a[0]))
        return out


# ---------------------------------------------------------------------- parsing values
def parse_rate(text: Any, file: str, key: str) -> int:
    """'20Mbit', '1.5Gbit', '500kbit', or a number of bits/s (tc's units)."""
    from routebricks.netns.tc import parse_rate as tc_rate

    try:
        return tc_rate(text, key)
    except RouteBricksError as e:
        problem = str(e).removeprefix(f"{key}: ")
        raise ClusterFileError(file, key, problem) from None


def parse_time(text: Any, file: str, key: str) -> float:
    """'100ms', '1s', '500us', or a number of seconds."""
    if isinstance(text, bool):
        raise ClusterFileError(file, key, f"{text!r} is not a time", "e.g. 100ms")
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _TIME.fullmatch(str(text))
        if m is None:
            raise ClusterFileError(file, key, f"{text!r} is not a time", "e.g. 100ms or 1s")
        value = float(m[1]) * {"ms": 1e-3, "us": 1e-6, "s": 1.0, None: 1.0}[m[2]]
    if not 1e-6 <= value <= 3600:
        raise ClusterFileError(file, key, f"{text!r} is out of range",
                               "between 1us and an hour")
    return value


class _Reader:
    """Typed access to the TOML tables, every error naming its key."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key: str, problem: str, hint: str | None = None) -> ClusterFileError:
        return ClusterFileError(self.file, key, problem, hint)

    def table(self, d: Any, key: str) -> dict[str, Any]:
        if not isinstance(d, dict):
            raise self.fail(key, f"expected a table, not {type(d).__name__}")
        return d

    def only(self, d: dict[str, Any], key: str, allowed: set[str]) -> None:
        for k in d:
            if k not in allowed:
                import difflib

                close = difflib.get_close_matches(k, sorted(allowed), n=1)
                raise self.fail(f"{key}.{k}" if key else k, "unknown key",
                                f"did you mean {close[0]!r}?" if close
                                else f"known keys: {', '.join(sorted(allowed))}")

    def string(self, d: dict[str, Any], key: str, name: str, default: Any = ...) -> Any:
        if name not in d:
            if default is ...:
                raise self.fail(f"{key}.{name}" if key else name, "missing")
            return default
        v = d[name]
        if not isinstance(v, str):
            raise self.fail(f"{key}.{name}" if key else name,
                            f"expected a string, not {v!r}")
        return v

    def name(self, d: dict[str, Any], key: str, what: str) -> str:
        v = self.string(d, key, "name")
        if not _NAME.fullmatch(v):
            raise self.fail(f"{key}.name", f"{v!r} is not a usable {what} name",
                            "a letter, then up to 11 letters, digits, '-' or '_'")
        return v

    def ifname(self, v: str, key: str) -> str:
        if not 0 < len(v) < IFNAMSIZ or "/" in v or " " in v or ":" in v:
            raise self.fail(key, f"{v!r} is not an interface name",
                            f"1 to {IFNAMSIZ - 1} characters, no '/', ':' or spaces")
        return v

    def interface(self, v: Any, key: str) -> ipaddress.IPv4Interface:
        try:
            if not isinstance(v, str) or "/" not in v:
                raise ValueError
            iface = ipaddress.IPv4Interface(v)
        except ValueError:
            raise self.fail(key, f"{v!r} is not an IPv4 ADDR/LEN",
                            "e.g. 10.1.0.1/24") from None
        if iface.network.prefixlen > 30:
            raise self.fail(key, f"{v} leaves no room for a neighbour", "use /30 or shorter")
        return iface


def load_cluster(path: str | Path) -> ClusterSpec:
    """Read and check a cluster file; raises ClusterFileError naming the key."""
    p = Path(path)
    file = str(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ClusterFileError(file, "", f"cannot read it: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ClusterFileError(file, "", f"byte {e.start} is not UTF-8",
                               "cluster files are UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ClusterFileError(file, "", f"not valid TOML: {e}") from None
    return cluster_from_dict(data, file, base=p.parent)


def cluster_from_dict(data: dict[str, Any], file: str = "<cluster>",
                      base: Path | None = None) -> ClusterSpec:
    r = _Reader(file)
    r.only(data, "", {"cluster", "servers", "links"})
    c = r.table(data.get("cluster", {}), "cluster")
    r.only(c, "cluster", {"name", "rate", "vlb", "flowlets", "delta", "topology", "workers",
                          "routes", "internal_rate", "bfd_interval",
                          "direct_rate", "k"})
    name = r.name(c, "cluster", "cluster") if "name" in c else "cluster"
    if "rate" not in c:
        raise r.fail("cluster.rate", "missing", "the external line rate R, e.g. 20Mbit")
    rate = parse_rate(c["rate"], file, "cluster.rate")
    vlb = r.string(c, "cluster", "vlb", "direct")
    if vlb not in ("direct", "classic"):
        raise r.fail("cluster.vlb", f"{vlb!r} is not a VLB mode", "direct or classic")
    flowlets = c.get("flowlets", True)
    if not isinstance(flowlets, bool):
        raise r.fail("cluster.flowlets", f"expected true or false, not {flowlets!r}")
    delta = parse_time(c.get("delta", "100ms"), file, "cluster.delta")
    topology = r.string(c, "cluster", "topology", "mesh")
    if topology not in ("mesh", "nfly"):
        raise r.fail("cluster.topology", f"{topology!r} is not supported",
                     "mesh (a full mesh of internal links) or nfly (a k-ary n-fly, with k)")
    if topology == "nfly" and "k" not in c:
        raise r.fail("cluster.k", "missing", "a k-ary n-fly's switch degree, e.g. k = 2")
    if topology == "mesh" and "k" in c:
        raise r.fail("cluster.k", "k is the degree of a k-ary n-fly's switches",
                     'topology = "nfly", or no k for a full mesh')
    workers = c.get("workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 64:
        raise r.fail("cluster.workers", f"{workers!r} is not a number of workers", "1 to 64")
    if workers > 1:
        raise r.fail("cluster.workers", f"{workers} workers per server are not supported yet: "
                     "a server's BFD sessions run in one process", "workers = 1")
    bfd = parse_time(c.get("bfd_interval", "100ms"), file, "cluster.bfd_interval")
    routes = None
    if "routes" in c:
        routes = Path(r.string(c, "cluster", "routes"))
        if not routes.is_absolute() and base is not None:
            routes = base / routes
        if not routes.is_file():
            raise r.fail("cluster.routes", f"no such file {str(routes)!r}",
                         "a route file, or a pyasn .dat/.dat.gz table")

    servers_raw = data.get("servers")
    if not isinstance(servers_raw, list) or not servers_raw:
        raise r.fail("servers", "missing", "one [[servers]] table per server")
    if len(servers_raw) > MAX_SERVERS:
        raise r.fail("servers", f"{len(servers_raw)} servers; at most {MAX_SERVERS}")
    servers: list[Server] = []
    seen_if: set[tuple[str, str]] = set()
    index = 0
    for si, sd in enumerate(servers_raw):
        key = f"servers[{si}]"
        sd = r.table(sd, key)
        r.only(sd, key, {"name", "ports", "role"})
        s = Server(r.name(sd, key, "server"), si)
        if any(o.name == s.name for o in servers):
            raise r.fail(f"{key}.name", f"two servers are named {s.name!r}")
        ports_raw = sd.get("ports", [])
        s.role = _role(r, sd, key, topology, ports_raw)
        if s.role == "intermediate":
            servers.append(s)
            continue
        if not isinstance(ports_raw, list) or not ports_raw:
            raise r.fail(f"{key}.ports", "missing", "each server has one external port or more"
                         + ("" if topology == "mesh" else
                            ' (or is an intermediate server: role = "intermediate")'))
        if len(ports_raw) > MAX_PORTS:
            raise r.fail(f"{key}.ports", f"at most {MAX_PORTS} ports per server")
        for pi, pd in enumerate(ports_raw):
            pkey = f"{key}.ports[{pi}]"
            port = _port(r, r.table(pd, pkey), pkey)
            port.index, port.local = index, pi
            index += 1
            if (s.name, port.interface) in seen_if:
                raise r.fail(f"{pkey}.interface", f"{port.interface!r} is used twice on "
                             f"{s.name}")
            seen_if.add((s.name, port.interface))
            s.ports.append(port)
        servers.append(s)
    _check_addresses(r, servers)
    butterfly = None
    if topology == "nfly":
        try:
            butterfly, added = nfly.arrange(
                c["k"], [s.name for s in servers if s.role == "io"],
                [(s.index, s.name) for s in servers if s.role == "intermediate"],
                {s.name for s in servers}, MAX_SERVERS)
        except nfly.ButterflyError as e:
            raise r.fail(e.key, e.problem, e.hint) from None
        servers += [Server(name, len(servers) + i, role="intermediate")
                    for i, name in enumerate(added)]
        if "direct_rate" in c:
            raise r.fail("cluster.direct_rate", "a k-ary n-fly has no direct path",
                         "every frame goes through a top-stage switch: no direct_rate")
    n = len(servers)
    if "internal_rate" in c:
        internal = parse_rate(c["internal_rate"], file, "cluster.internal_rate")
    elif butterfly is not None:  # R per direction on every link (see nfly)
        internal = rate * max(len(s.ports) for s in servers)
    else:
        internal = max(1000, 2 * rate // n)
    direct = None
    if "direct_rate" in c:
        direct = parse_rate(c["direct_rate"], file, "cluster.direct_rate")
        if direct > internal:
            raise r.fail("cluster.direct_rate",
                         f"direct_rate {direct} bit/s is more than the internal rate "
                         f"{internal} bit/s", "the direct share is part of a link")
    links = _links(r, data.get("links"), servers, seen_if, butterfly)
    return ClusterSpec(direct_rate=direct, name=name, servers=servers, links=links, rate=rate,
                       internal_rate=internal, vlb=vlb, flowlets=flowlets, delta=delta,
                       topology=topology, workers=workers, routes=routes, bfd_interval=bfd,
                       file=file, k=butterfly.k if butterfly else None, nfly=butterfly)


def _role(r: _Reader, sd: dict[str, Any], key: str, topology: str, ports: Any) -> str:
    """A server's role: as given, or io with ports and intermediate without (nfly only)."""
    has_ports = isinstance(ports, list) and bool(ports)
    if "role" not in sd:
        return "intermediate" if topology == "nfly" and not has_ports else "io"
    role = r.string(sd, key, "role")
    if role not in nfly.ROLES:
        raise r.fail(f"{key}.role", f"{role!r} is not a role", "io or intermediate")
    if role == "intermediate":
        if topology != "nfly":
            raise r.fail(f"{key}.role", "a full mesh has no intermediate servers (every "
                         "server is one)", 'topology = "nfly" for a k-ary n-fly')
        if has_ports:
            raise r.fail(f"{key}.ports", "an intermediate server has no external ports",
                         'ports = [], or role = "io"')
    return role


def _port(r: _Reader, pd: dict[str, Any], key: str) -> Port:
    r.only(pd, key, {"interface", "address", "mac", "gateway", "host", "host_address",
                     "prefixes", "mtu"})
    ifname = r.ifname(r.string(pd, key, "interface"), f"{key}.interface")
    address = r.interface(r.string(pd, key, "address"), f"{key}.address")
    port = Port(ifname, address)
    if "mac" in pd:
        mac = r.string(pd, key, "mac")
        if not re.fullmatch(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}", mac) or int(mac[:2], 16) & 1:
            raise r.fail(f"{key}.mac", f"{mac!r} is not a unicast MAC address",
                         "e.g. 02:00:00:00:01:01")
        port.mac = mac.lower()
    if "host" in pd:
        host = r.string(pd, key, "host")
        if not _NAME.fullmatch(host):
            raise r.fail(f"{key}.host", f"{host!r} is not a usable host name",
                         "a letter, then up to 11 letters, digits, '-' or '_'")
        port.host = host
    if "host_address" in pd:
        ha = r.interface(r.string(pd, key, "host_address"), f"{key}.host_address")
        if ha.network != address.network or ha.ip == address.ip:
            raise r.fail(f"{key}.host_address", f"{ha} is not another address of "
                         f"{address.network}", "the host sits on the port's subnet")
        port.host_address = ha
    elif port.host is not None:
        port.host_address = ipaddress.IPv4Interface(
            f"{next(a for a in address.network.hosts() if a != address.ip)}/"
            f"{address.network.prefixlen}")
    if "gateway" in pd:
        try:
            gw = ipaddress.IPv4Address(r.string(pd, key, "gateway"))
        except ValueError:
            raise r.fail(f"{key}.gateway", "not an IPv4 address", "e.g. 10.1.0.2") from None
        if gw not in address.network or gw == address.ip:
            raise r.fail(f"{key}.gateway", f"{gw} is not a neighbour on {address.network}")
        port.gateway = gw
    elif port.host_address is not None:
        port.gateway = port.host_address.ip
    prefixes = pd.get("prefixes", [])
    if not isinstance(prefixes, list):
        raise r.fail(f"{key}.prefixes", "expected a list of networks", '["10.101.0.0/16"]')
    for i, text in enumerate(prefixes):
        try:
            port.prefixes.append(ipaddress.IPv4Network(str(text)))
        except ValueError as e:
            raise r.fail(f"{key}.prefixes[{i}]", f"{text!r}: {e}", "e.g. 10.101.0.0/16") \
                from None
    if port.prefixes and port.gateway is None:
        raise r.fail(f"{key}.prefixes", "prefixes need a gateway to be sent to",
                     "set gateway, or host (whose address is the gateway)")
    mtu = pd.get("mtu", 1500)
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not 576 <= mtu <= 9000:
        raise r.fail(f"{key}.mtu", f"{mtu!r} is not an MTU", "576 to 9000")
    port.mtu = mtu
    return port


def _check_addresses(r: _Reader, servers: list[Server]) -> None:
    nets: dict[ipaddress.IPv4Network, str] = {}
    for s in servers:
        for p in s.ports:
            key = f"servers[{s.index}].ports[{p.local}].address"
            for net, other in nets.items():
                if net.overlaps(p.network):
                    raise r.fail(key, f"{p.network} overlaps {other}'s {net}",
                                 "each port has a subnet of its own")
            nets[p.network] = f"{s.name}:{p.interface}"


def _links(r: _Reader, raw: Any, servers: list[Server], used: set[tuple[str, str]],
           butterfly: nfly.Butterfly | None = None) -> list[Link]:
    names = [s.name for s in servers]
    if raw is None:  # veth pairs, each end named after its peer
        pairs = (butterfly.edges() if butterfly is not None
                 else [(a, b) for i, a in enumerate(names) for b in names[i + 1:]])
        return [Link((a, f"to-{b}"[:15]), (b, f"to-{a}"[:15]), i)
                for i, (a, b) in enumerate(pairs)]
    if not isinstance(raw, list):
        raise r.fail("links", "expected [[links]] tables")
    links = []
    pairs: set[frozenset[str]] = set()
    for i, ld in enumerate(raw):
        key = f"links[{i}]"
        ld = r.table(ld, key)
        r.only(ld, key, {"a", "b"})
        ends = []
        for side in ("a", "b"):
            text = r.string(ld, key, side)
            server, sep, ifname = text.partition(":")
            if not sep or server not in names:
                raise r.fail(f"{key}.{side}", f"{text!r} is not SERVER:INTERFACE",
                             f"servers: {', '.join(names)}")
            r.ifname(ifname, f"{key}.{side}")
            if (server, ifname) in used:
                raise r.fail(f"{key}.{side}", f"{text} is already used")
            used.add((server, ifname))
            ends.append((server, ifname))
        if ends[0][0] == ends[1][0]:
            raise r.fail(key, f"a link from {ends[0][0]} to itself")
        pair = frozenset((ends[0][0], ends[1][0]))
        if pair in pairs:
            raise r.fail(key, f"a second link between {' and '.join(sorted(pair))}")
        pairs.add(pair)
        links.append(Link(ends[0], ends[1], i))
    if butterfly is not None:
        try:
            nfly.check_links(butterfly, [(ln.index, ln.a[0], ln.b[0]) for ln in links])
        except nfly.ButterflyError as e:
            raise r.fail(e.key, e.problem, e.hint) from None
        return links
    missing = [f"{a}-{b}" for i, a in enumerate(names) for b in names[i + 1:]
               if frozenset((a, b)) not in pairs]
    if missing:
        raise r.fail("links", f"a full mesh needs a link between {missing[0]}"
                     + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                     "one [[links]] table per pair of servers")
    return links
