"""Each server's share of the cluster as an ordinary Click configuration.

``routebricks cluster config FILE --server NAME`` prints it; ``routebricks run`` runs it. A
server of a RouteBricks cluster plays three roles at once (§6.1):

* **input** — for packets arriving on its external ports it is the whole IPv4 router:
  header checks, the route lookup over the cluster's full table, TTL, options, ICMP errors,
  fragmentation — done once per packet, here. A packet for a port of another server is then
  given a destination MAC that names that server, the port and the next hop
  (:mod:`routebricks.packet.clustermac`), and ``DirectVLB`` picks the internal link: straight
  to the output server while that path has room, else through an intermediate;
* **intermediate** — frames arriving on an internal link for another server go on to it,
  switched by their destination MAC alone (``ClusterSwitch``);
* **output** — frames for itself are put out of the named port to the named next hop
  (``ClusterDecap``, then the port's ARPQuerier rewrites the Ethernet header): the IP header
  is never read again.

One BFD session per internal link (RFC 5880) tells ``DirectVLB`` and ``ClusterSwitch`` which
servers are alive.

In a k-ary n-fly (:mod:`routebricks.cluster.nfly`) the io servers are input and output
only, with one internal link: ``NflyVLB`` picks each frame's path (a top-stage switch) and
writes it into the frame; the intermediate servers are switches and nothing else — their
configurations (``NflySwitch``, links, BFD) hold no IP element at all.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from routebricks.cluster.spec import ClusterFileError, ClusterSpec, Port
from routebricks.packet.clustermac import interface_mac

#: MAC prefix of external ports without a configured MAC: 02:rb:<server>:<port>.
_EXT_MAC = "02:72:62:{server:02x}:{port:02x}:01"
#: Receive-ring block timeout (ms): at tens of Mbit/s a router woken for every packet or
#: two spends its CPU on per-batch costs (measured: four servers and their hosts saturate
#: two cores at 0.9 R with 1 ms); a few ms more per hop buys batches several times larger.
RX_TIMEOUT_MS = 4
RX_RING = f"BLOCK_SIZE 16384, BLOCKS 1024, TIMEOUT {RX_TIMEOUT_MS}"


#: The compound element of an external port in a server's configuration: ``ext<local>``.
EXTERNAL_PORT = "ext"


def is_external_input(element: str, class_name: str) -> bool:
    """Whether a stats row's element (``element`` of class ``class_name``) is a device read
    of one of the external ports :func:`server_config` writes: the cluster's input."""
    outer = element.split("/", 1)[0]
    return (class_name == "FromDevice" and outer.startswith(EXTERNAL_PORT)
            and outer[len(EXTERNAL_PORT):].isdigit())


def port_mac(spec: ClusterSpec, port: Port) -> str:
    if port.mac:
        return port.mac
    server = next(s for s in spec.servers if port in s.ports)
    return _EXT_MAC.format(server=server.index, port=port.local)


def link_addresses(link_index: int) -> tuple[str, str]:
    """The BFD addresses of the a and b ends of internal link ``link_index`` (link-local
    169.254/16: they never leave the link, and no kernel is given them)."""
    hi, lo = divmod(link_index, 127)
    return f"169.254.{hi + 1}.{2 * lo + 1}", f"169.254.{hi + 1}.{2 * lo + 2}"


def internal_mac(spec: ClusterSpec, server: str, ifname: str) -> str:
    """The MAC of a server's internal interface (never mistaken for a cluster MAC)."""
    index = spec.server(server).index
    for link, mine, _ in spec.links_of(server):
        if mine == ifname:
            return interface_mac(index, link.index)
    raise KeyError(f"{server} has no internal interface {ifname}")


def bps(rate: int) -> str:
    """A rate in bits/s as Click writes it: 10Mbps, 1.5Gbps, 64000bps."""
    for scale, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale and (rate / scale) == round(rate / scale, 3):
            return f"{rate / scale:.10g}{unit}bps"
    return f"{rate}bps"


# ---------------------------------------------------------------------- routes
def cache_dir() -> Path:
    env = os.environ.get("ROUTEBRICKS_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    d = base / "routebricks" if not env else base
    d.mkdir(parents=True, exist_ok=True)
    return d


def routes_file(spec: ClusterSpec) -> Path | None:
    """The cluster's ``routes`` as a route file every server's lookup can read: cluster port
    numbers, every route with its gateway (written once to the cache, by content)."""
    if spec.routes is None:
        return None
    from routebricks.lookup import RouteArrays, RouteError, load_ipasn

    ports = spec.ports
    gws = np.array([int(p.gateway) if p.gateway else 0 for p in ports], np.uint32)
    src = spec.routes
    name = src.name
    try:
        if name.endswith((".dat", ".dat.gz")):
            arrays = load_ipasn(src, nports=len(ports))
        else:
            from routebricks.elements.ip.iproutetable import read_route_file

            arrays = read_route_file(src)
    except (RouteError, OSError, ValueError) as e:
        raise ClusterFileError(spec.file, "cluster.routes", f"{src}: {e}") from None
    bad = np.flatnonzero((arrays.port < 0) | (arrays.port >= len(ports)))
    if bad.size:
        i = int(bad[0])
        raise ClusterFileError(
            spec.file, "cluster.routes",
            f"{src}: route {i + 1} names port {int(arrays.port[i])}; the cluster has "
            f"{len(ports)} ports (0..{len(ports) - 1})",
            "ports are numbered across the cluster in file order")
    gateway = arrays.gateway.astype(np.uint32).copy()
    none = gateway == 0
    gateway[none] = gws[arrays.port[none]]
    missing = np.flatnonzero(gateway == 0)
    if missing.size:
        p = int(arrays.port[missing[0]])
        raise ClusterFileError(spec.file, f"port {p}",
                               f"routes go to port {p}, which has no gateway",
                               "give the port a gateway (or a host)")
    arrays = RouteArrays(arrays.net, arrays.length, arrays.port, gateway)
    digest = hashlib.sha256(src.read_bytes() + gws.tobytes()).hexdigest()[:12]
    out = cache_dir() / f"{spec.name}-{digest}.routes"
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        tmp.write_text(_format_routes(arrays))
        tmp.replace(out)
    return out


def _format_routes(a: object) -> str:
    def dotted(x: np.ndarray) -> list[str]:
        x = x.astype(np.int64)
        parts = [((x >> s) & 255).astype(str) for s in (24, 16, 8, 0)]
        return [".".join(t) for t in zip(*parts, strict=True)]

    nets = dotted(a.net)  # type: ignore[attr-defined]
    gws = dotted(a.gateway)  # type: ignore[attr-defined]
    lens = a.length.astype(np.int64).tolist()  # type: ignore[attr-defined]
    ports = a.port.astype(np.int64).tolist()  # type: ignore[attr-defined]
    return "".join(f"{n}/{ln} {g} {p}\n" for n, ln, g, p in zip(nets, lens, gws, ports,
                                                                   strict=True))


# ---------------------------------------------------------------------- the configuration
def server_config(spec: ClusterSpec, name: str, routes: Path | None = ...) -> str:  # type: ignore[assignment]
    """Server ``name``'s share of the cluster, as Click configuration text."""
    me = spec.server(name)
    if me.role == "intermediate":
        return _switch_config(spec, name)
    if routes is ...:
        routes = routes_file(spec)
    ports = spec.ports
    nports = len(ports)
    local_delivery = nports
    owner = {p.index: s for s in spec.servers for p in s.ports}
    n = len(spec.servers)
    out: list[str] = []
    w = out.append
    w(f"// routebricks cluster {spec.name!r}: server {me.name} ({me.index + 1} of {n}), "
      f"from {spec.file}")
    w(f"// Generated by: routebricks cluster config {spec.file} --server {me.name}")
    w("// Ports (cluster-wide numbers): " + ", ".join(
        f"{p.index}={owner[p.index].name}:{p.interface}" for p in ports))
    w(f"// R = {bps(spec.rate)} per port; internal links {bps(spec.internal_rate)}; "
      f"VLB {spec.vlb}{', flowlets' if spec.flowlets else ''} (delta {spec.delta * 1000:g} ms)")
    if spec.nfly is not None:
        w(f"// Topology: {spec.nfly.describe()}; this is io server "
          f"{spec.nfly.terminal(me.name)} (the number its frames' MACs carry).")
    w(f"// Receive rings of 1024 small blocks, each handed over when full or after "
      f"{RX_TIMEOUT_MS} ms: room")
    w("// for a server that waits for a shared core, and batches of several packets "
      "at low rates")
    w("// (a wake-up per packet would cost more CPU than the packets).")
    w("")
    w(_ELEMENTCLASSES.format(interfaces=" ".join(str(p.address) for p in ports),
                             rx_ring=RX_RING))
    # The route table: every server holds the whole cluster's.
    entries = []
    for p in ports:
        entries.append(f"{p.ip}/32 {local_delivery}")
        entries.append(f"{p.network.broadcast_address}/32 {local_delivery}")
    for p in ports:
        entries.append(f"{p.network} {p.index}")
        for pre in p.prefixes:
            entries.append(f"{pre} {p.gateway} {p.index}")
    args = ",\n    ".join(entries)
    if routes is not None:
        args += f',\n    ROUTES "{routes}"'
    w(f"rt :: DirectIPLookup(\n    {args});")
    w("")
    w("// Packets for the router itself (any port's address): answer pings, drop the rest.")
    w(f"rt [{local_delivery}] -> ping :: ICMPPingResponder -> GetIPAddress(16) -> rt;")
    w("ping [1] -> Discard;")
    w("")
    w("// This server's external ports: in to the lookup, out to the next hop.")
    for p in me.ports:
        w(f"{EXTERNAL_PORT}{p.local} :: ExternalPort({p.interface}, {p.ip}, {port_mac(spec, p)}, "
          f"{p.index + 1});")
        w(f"{EXTERNAL_PORT}{p.local} -> rt;")
    w("")
    w("// Every port's output processing, done here, at the input server.")
    for p in ports:
        w(f"rt [{p.index}] -> out{p.index} :: PortOutput({p.ip}, {p.index + 1}, {p.mtu});")
        w(f"out{p.index} [1] -> rt;")
        s = owner[p.index]
        if s is me:
            w(f"out{p.index} -> {EXTERNAL_PORT}{p.local};")
        else:
            w(f"out{p.index} -> ClusterEncap(SERVER {spec.mac_server(s)}, PORT {p.local}) "
              "-> vlb;")
    if n == 1:
        return "\n".join(out) + "\n"  # one server: no internal links, no VLB
    if spec.nfly is not None:
        _nfly_io_tail(spec, name, w)
        return "\n".join(out) + "\n"
    w("")
    w("// Direct VLB: straight to the output server while that link has room, else via an")
    w("// intermediate; a flow's packets within delta keep their path (flowlets). The")
    w("// switch's phase-2 frames are charged to the same links (SWITCH).")
    direct = "" if spec.direct_rate is None else f"DIRECT_RATE {bps(spec.direct_rate)}, "
    w(f"vlb :: DirectVLB(SELF {me.index}, SERVERS {n}, LINK_RATE {bps(spec.internal_rate)}, "
      f"{direct}"
      f"DELTA {spec.delta * 1000:g}ms, MODE {spec.vlb}, "
      f"FLOWLETS {str(spec.flowlets).lower()}, SWITCH sw);")
    w(f"sw :: ClusterSwitch(SELF {me.index}, SERVERS {n});")
    w(f"dec :: ClusterDecap(PORTS {len(me.ports)});")
    w(f"vlb [{me.index}] -> Discard;")
    w(f"sw [{me.index}] -> dec;")
    for p in me.ports:
        w(f"dec [{p.local}] -> {EXTERNAL_PORT}{p.local};")
    w("")
    w("// The internal links: data frames to the switch, BFD between the two ends.")
    notify = '"vlb.peer sw.peer"'
    for link, ifname, peer in spec.links_of(me.name):
        other = spec.server(peer)
        mine_ip, peer_ip = link_addresses(link.index)
        peer_if = link.b[1]
        if link.a[0] != me.name:
            mine_ip, peer_ip, peer_if = peer_ip, mine_ip, link.a[1]
        mac = internal_mac(spec, me.name, ifname)
        peer_mac = internal_mac(spec, peer, peer_if)
        x = other.index
        w(f"to{x} :: ToDevice({ifname});")
        own = mac.replace(":", "")
        w(f"FromDevice({ifname}, PROMISC true, {RX_RING}) "
          f"-> in{x} :: Classifier(0/{own}, -);")
        w(f"in{x} [0] -> bfd{x} :: BFD(LOCAL {mine_ip}, PEER {peer_ip}, SRC_MAC {mac}, "
          f"DST_MAC {peer_mac}, INTERVAL {spec.bfd_interval * 1000:g}ms, MULTIPLIER 3, "
          f"NOTIFY {notify}, NOTIFY_START true, PEER_ID {x}) -> to{x};")
        w(f"in{x} [1] -> sw;")
        w(f"vlb [{x}] -> to{x};")
        w(f"sw [{x}] -> to{x};")
    return "\n".join(out) + "\n"


def _link_ends(spec: ClusterSpec, name: str, ifname: str, peer: str,
               link_index: int) -> tuple[str, str, str, str]:
    """(my BFD address, the peer's, my interface's MAC, the peer's) of one internal link."""
    link = spec.links[link_index]
    mine_ip, peer_ip = link_addresses(link.index)
    peer_if = link.b[1]
    if link.a[0] != name:
        mine_ip, peer_ip, peer_if = peer_ip, mine_ip, link.a[1]
    return mine_ip, peer_ip, internal_mac(spec, name, ifname), internal_mac(spec, peer, peer_if)


def _nfly_io_tail(spec: ClusterSpec, name: str, w: Callable[[str], None]) -> None:
    """An n-fly io server's path choice and its one internal link."""
    b = spec.nfly
    assert b is not None
    me = spec.server(name)
    ((link, ifname, peer),) = spec.links_of(name)
    mine_ip, peer_ip, mac, peer_mac = _link_ends(spec, name, ifname, peer, link.index)
    w("")
    w(f"// VLB over the {b.paths} paths of the {b.k}-ary {b.n}-fly (one per top-stage "
      "switch): a flow's packets")
    w("// within delta keep their path (flowlets). No direct path: every frame goes up to "
      "the top.")
    w(f"vlb :: NflyVLB(PATHS {b.paths}, LINK_RATE {bps(spec.internal_rate)}, "
      f"DELTA {spec.delta * 1000:g}ms, MODE {spec.vlb}, "
      f"FLOWLETS {str(spec.flowlets).lower()});")
    w(f"dec :: ClusterDecap(PORTS {len(me.ports)});")
    for p in me.ports:
        w(f"dec [{p.local}] -> {EXTERNAL_PORT}{p.local};")
    w("")
    w(f"// The link to stage-1 switch {peer}: frames for this server (MAC byte 1 = "
      f"{b.terminal(name)}) to")
    w("// ClusterDecap, BFD between the two ends; anything else is not ours.")
    x = spec.server(peer).index
    own = mac.replace(":", "")
    w(f"to{x} :: ToDevice({ifname});")
    w(f"FromDevice({ifname}, PROMISC true, {RX_RING}) "
      f"-> in{x} :: Classifier(0/{own}, 1/{b.terminal(name):02x}, -);")
    w(f"in{x} [0] -> bfd{x} :: BFD(LOCAL {mine_ip}, PEER {peer_ip}, SRC_MAC {mac}, "
      f"DST_MAC {peer_mac}, INTERVAL {spec.bfd_interval * 1000:g}ms, MULTIPLIER 3, "
      f'NOTIFY "vlb.peer", NOTIFY_START true, PEER_ID 0) -> to{x};')
    w(f"in{x} [1] -> dec;")
    w(f"in{x} [2] -> Discard;")
    w(f"vlb -> to{x};")


def _switch_config(spec: ClusterSpec, name: str) -> str:
    """An n-fly intermediate server: one NflySwitch, its links and their BFD sessions."""
    b = spec.nfly
    assert b is not None
    stage, index = b.position(name)
    me = spec.server(name)
    out: list[str] = []
    w = out.append
    w(f"// routebricks cluster {spec.name!r}: server {me.name}, switch {index} of stage "
      f"{stage} of {b.describe()}, from {spec.file}")
    w(f"// Generated by: routebricks cluster config {spec.file} --server {me.name}")
    w("// An intermediate server: frames go up by their path (source MAC bytes 1-2) and "
      "down by their")
    w("// output server (destination MAC byte 1); nothing here reads an IP header.")
    w(f"// Internal links {bps(spec.internal_rate)}; receive rings as every server's "
      f"({RX_TIMEOUT_MS} ms block timeout).")
    w("")
    w(f"sw :: NflySwitch(K {b.k}, STAGES {b.n}, STAGE {stage});")
    ifnames = {peer: ifname for _, ifname, peer in spec.links_of(name)}
    links = {peer: link for link, _, peer in spec.links_of(name)}
    for port, peer in b.ports(name):
        ifname = ifnames[peer]
        mine_ip, peer_ip, mac, peer_mac = _link_ends(spec, name, ifname, peer,
                                                     links[peer].index)
        x = spec.server(peer).index
        side = 0 if port < b.k else 1  # frames from below / from above
        w("")
        w(f"// {'down' if side == 0 else 'up'} {port % b.k}: {peer}")
        w(f"to{x} :: ToDevice({ifname});")
        w(f"FromDevice({ifname}, PROMISC true, {RX_RING}) "
          f"-> in{x} :: Classifier(0/{mac.replace(':', '')}, -);")
        w(f"in{x} [0] -> bfd{x} :: BFD(LOCAL {mine_ip}, PEER {peer_ip}, SRC_MAC {mac}, "
          f"DST_MAC {peer_mac}, INTERVAL {spec.bfd_interval * 1000:g}ms, MULTIPLIER 3, "
          f'NOTIFY "sw.peer", NOTIFY_START true, PEER_ID {port}) -> to{x};')
        w(f"in{x} [1] -> [{side}] sw;")
        w(f"sw [{port}] -> to{x};")
    return "\n".join(out) + "\n"


_ELEMENTCLASSES = """\
// One external port: ARP, header checks, into the lookup (output 0); IP packets for this
// port come in on input 0 with their next hop in the dst_ip annotation.
elementclass ExternalPort {{ $dev, $ip, $mac, $color |
    out :: ToDevice($dev);
    c :: Classifier(12/0806 20/0001, 12/0806 20/0002, 12/0800, -);
    arpq :: ARPQuerier($ip, $mac);
    FromDevice($dev, {rx_ring}) -> c;
    c [0] -> ARPResponder($ip $mac) -> out;
    c [1] -> [1] arpq;
    c [2] -> Paint($color) -> Strip(14) -> CheckIPHeader(INTERFACES {interfaces}) -> output;
    c [3] -> Discard;
    input -> arpq -> out;
}}

// What a router does to a packet leaving by a port, wherever that port is in the cluster:
// output 0 the packet, output 1 ICMP errors (back to the lookup).
elementclass PortOutput {{ $ip, $color, $mtu |
    input -> DropBroadcasts
          -> cp :: PaintTee($color)
          -> gio :: IPGWOptions($ip)
          -> FixIPSrc($ip)
          -> dt :: DecIPTTL
          -> fr :: IPFragmenter($mtu)
          -> [0] output;
    cp [1] -> ICMPError($ip, redirect, host) -> [1] output;
    gio [1] -> ICMPError($ip, parameterproblem) -> [1] output;
    dt [1] -> ICMPError($ip, timeexceeded) -> [1] output;
    fr [1] -> ICMPError($ip, unreachable, needfrag) -> [1] output;
}}
"""


def all_configs(spec: ClusterSpec) -> dict[str, str]:
    routes = routes_file(spec)
    return {s.name: server_config(spec, s.name, routes) for s in spec.servers}
