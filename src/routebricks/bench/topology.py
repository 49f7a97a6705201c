"""The veth topologies of the real-I/O experiments: testbeds, the kernel FIB loaded with the
real table, router configurations, CPU accounting and traffic agents (used by
routebricks.bench's table1, fig7, fig8 and benchmarks/veth_*.py).

Topologies (all built with :class:`routebricks.netns.testbed.Testbed`, offloads off)::

    three nodes:  s:eth0 ---- r:eth0   r:eth1 ---- d:eth0
    pair:         s:eth0 ---- d:eth0                        (the sender's ceiling)

``s`` sends, ``d`` receives (the sink), ``r`` forwards: either the Linux kernel
(``kernel=True``: the router's interfaces have addresses, ``ip_forward=1``, static
neighbours) or routebricks (no addresses on the router: its kernel drops what it sees
and only the packet sockets of routebricks handle frames).

Traffic agents: the generator and the sink each run in a long-lived process inside their
host's namespace (:mod:`routebricks.traffic.agents`), which keeps interpreter start-up and
numba warm-up out of the trials.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

# Addresses. Only the benchmark's own namespaces ever see any of them.
SENDER_IP, ROUTER_IP0 = "10.0.1.2", "10.0.1.1"
RECEIVER_IP, ROUTER_IP1 = "10.0.2.2", "10.0.2.1"
SENDER_MAC = "02:00:00:00:01:02"
ROUTER_MAC0 = "02:00:00:00:01:01"
ROUTER_MAC1 = "02:00:00:00:02:01"
RECEIVER_MAC = "02:00:00:00:02:02"


# --------------------------------------------------------------------------
# Topologies
# --------------------------------------------------------------------------
def three_node_spec(kernel: bool, mtu: int | None = None) -> Any:
    """Sender -- router -- receiver. ``kernel``: the router's kernel forwards. ``mtu``: of
    the router-receiver link (an ESP tunnel's packets are longer than what enters it)."""
    from routebricks.netns.testbed import TestbedSpec

    def addrs(a: str) -> list[str]:
        return [f"{a}/24"] if kernel else []

    spec = _three_node_dict(kernel, addrs)
    if mtu is not None:
        spec["router"]["interfaces"][1]["mtu"] = mtu
        spec["hosts"][1]["interfaces"][0]["mtu"] = mtu
    return TestbedSpec.from_dict(spec)


def _three_node_dict(kernel: bool, addrs: Any) -> dict[str, Any]:
    return {
            "router": {
                "name": "r",
                "ip_forward": kernel,
                "interfaces": [
                    {"name": "eth0", "addresses": addrs(ROUTER_IP0), "mac": ROUTER_MAC0},
                    {"name": "eth1", "addresses": addrs(ROUTER_IP1), "mac": ROUTER_MAC1},
                ],
            },
            "hosts": [
                {
                    "name": "s",
                    "interfaces": [
                        {"name": "eth0", "addresses": [f"{SENDER_IP}/24"], "mac": SENDER_MAC}
                    ],
                },
                {
                    "name": "d",
                    "interfaces": [
                        {"name": "eth0", "addresses": [f"{RECEIVER_IP}/24"], "mac": RECEIVER_MAC}
                    ],
                },
            ],
            "links": [["s:eth0", "r:eth0"], ["r:eth1", "d:eth0"]],
        }


def pair_spec() -> Any:
    """Sender -- receiver on one veth pair (the generator's ceiling with a real sink)."""
    from routebricks.netns.testbed import TestbedSpec

    return TestbedSpec.from_dict(
        {
            "hosts": [
                {
                    "name": "s",
                    "interfaces": [
                        {"name": "eth0", "addresses": [f"{SENDER_IP}/24"], "mac": SENDER_MAC}
                    ],
                },
                {
                    "name": "d",
                    "interfaces": [
                        {
                            "name": "eth0",
                            "addresses": [f"{SENDER_IP[:-1]}3/24"],
                            "mac": RECEIVER_MAC,
                        }
                    ],
                },
            ],
            "links": [["s:eth0", "d:eth0"]],
        }
    )


def kernel_router_setup(tb: Any) -> None:
    """Static neighbours on the kernel router (no ARP during trials) and a default route
    via the receiver, so every destination is forwarded to it (the small table)."""
    from pyroute2 import NetNS

    nud_permanent = 0x80
    with NetNS(tb.ns("r"), flags=0) as ipr:
        for ifname, ip, mac in (
            ("eth0", SENDER_IP, SENDER_MAC),
            ("eth1", RECEIVER_IP, RECEIVER_MAC),
        ):
            idx = ipr.link_lookup(ifname=ifname)[0]
            ipr.neigh("replace", dst=ip, lladdr=mac, ifindex=idx, state=nud_permanent)
        ipr.route("add", dst="0.0.0.0/0", gateway=RECEIVER_IP)
    # Reverse-path filtering would look each source up too; keep it off (the default in a
    # new namespace, made explicit here).
    from routebricks.netns.core import sysctl_write

    for k in ("all", "default", "eth0", "eth1"):
        sysctl_write(tb.ns("r"), f"net.ipv4.conf.{k}.rp_filter", 0)


def set_rps(ns: str, ifname: str, cpus: set[int]) -> bool:
    """Receive packet steering: the receive processing of ``ifname`` (in namespace ``ns``)
    moves to ``cpus``, as a NIC interrupting those cores would. sysfs shows a namespace's
    devices only to a sysfs mounted inside it, hence ``ip netns exec`` (which mounts one in
    a private mount namespace). Returns False when that is not possible here."""
    mask = sum(1 << c for c in cpus)
    path = f"/sys/class/net/{ifname}/queues/rx-0/rps_cpus"
    ip = shutil.which("ip")
    if ip is None:
        return False
    r = subprocess.run(
        [ip, "netns", "exec", ns, "sh", "-c", f"echo {mask:x} > {path} && cat {path}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return r.returncode == 0 and int(r.stdout.strip().replace(",", "") or "0", 16) == mask


def drop_at_ingress(ns: str, ifname: str) -> bool:
    """Make ``ifname`` (in namespace ``ns``) a pure traffic sink: an nftables netdev ingress
    chain drops every frame after the packet taps (so a sink's packet socket still counts
    it) and before the host's IP stack. On veth the receiver's stack runs inside the
    *sender's* transmit call, so without this a router measured on veth also pays for the
    receiving host's route lookup and ICMP rate limiter on every frame -- work a router
    behind a real link never does. Returns False when nft is missing (Debian: nftables)."""
    nft = shutil.which("nft")
    ip = shutil.which("ip")
    if nft is None or ip is None:
        return False
    from routebricks.elements.io.kernelfilter import netdev_drop_ruleset

    rules = netdev_drop_ruleset("rb_sink", [ifname])
    r = subprocess.run([ip, "netns", "exec", ns, nft, "-f", "-"], input=rules,
                       capture_output=True, text=True, timeout=30)
    return r.returncode == 0


# --------------------------------------------------------------------------
# CPU time (what each party used during a trial)
# --------------------------------------------------------------------------
CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (all their threads); gone ones count 0."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, softirq) CPU seconds of the whole machine, from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / CLK_TCK, v[6] / CLK_TCK


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (the worker processes of ``routebricks run``)."""
    out: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                out += [int(x) for x in (task / "children").read_text().split()]
    return out


# --------------------------------------------------------------------------
# The kernel FIB: 270K routes over netlink, in big batches
# --------------------------------------------------------------------------
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x400
NLMSG_ERROR = 2
RTM_NEWROUTE = 24


def _route_messages(net: np.ndarray, length: np.ndarray, gateway: str, seq0: int) -> bytes:
    """RTM_NEWROUTE messages (one per route, all via ``gateway``), encoded with pyroute2's
    rtmsg for the first route and then stamped vectorized for the rest (same layout)."""
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    msg = rtmsg()
    msg["family"] = socket.AF_INET
    msg["dst_len"] = 24
    msg["table"] = 254  # main
    msg["proto"] = 4  # static
    msg["scope"] = 0  # universe
    msg["type"] = 1  # unicast
    msg["attrs"] = [("RTA_DST", "1.2.3.0"), ("RTA_GATEWAY", gateway)]
    msg["header"]["type"] = RTM_NEWROUTE
    msg["header"]["flags"] = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    msg["header"]["sequence_number"] = 0
    msg.encode()
    tmpl = np.frombuffer(bytes(msg.data), np.uint8)
    size = tmpl.size
    # Where the fields sit in the template: dst_len is byte 1 of the rtmsg after the 16-byte
    # nlmsghdr; RTA_DST's value follows its 4-byte rtattr header.
    dst_at = bytes(msg.data).find(socket.inet_aton("1.2.3.0"))
    if dst_at < 0 or tmpl[17] != 24:
        raise RuntimeError("unexpected rtmsg layout")
    n = net.shape[0]
    out = np.tile(tmpl, n).reshape(n, size)
    out[:, 17] = length.astype(np.uint8)
    out[:, dst_at : dst_at + 4] = net.astype(">u4").view(np.uint8).reshape(n, 4)
    seq = (np.arange(n, dtype=np.int64) + seq0).astype("<u4")
    out[:, 8:12] = seq.view(np.uint8).reshape(n, 4)
    return out.tobytes()


def install_kernel_routes(
    ns: str, net: np.ndarray, length: np.ndarray, gateway: str, chunk: int = 2000
) -> int:
    """Add every route ``net/length via gateway`` to namespace ``ns``'s main table.

    Sends ``chunk`` RTM_NEWROUTE messages per ``sendmsg`` on one netlink socket opened in
    the namespace and reads their acknowledgements before the next chunk. Returns the
    number acknowledged without error; raises on the first error.
    """
    from routebricks.netns.core import run_in_netns

    def work() -> int:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
            s.setsockopt(socket.SOL_SOCKET, 32, 8 << 20)  # SO_SNDBUFFORCE
            s.bind((0, 0))
            done = 0
            for a in range(0, net.shape[0], chunk):
                z = min(a + chunk, net.shape[0])
                s.sendall(_route_messages(net[a:z], length[a:z], gateway, a + 1))
                want = z - a
                while want:
                    data = s.recv(1 << 20)
                    off = 0
                    while off + 16 <= len(data):
                        mlen, mtype = struct.unpack_from("=IH", data, off)
                        if mtype == NLMSG_ERROR:
                            (err,) = struct.unpack_from("=i", data, off + 16)
                            if err:
                                (seq,) = struct.unpack_from("=I", data, off + 8 + 16)
                                i = seq - 1
                                raise OSError(
                                    -err,
                                    f"route {ipaddress.IPv4Address(int(net[i]))}/"
                                    f"{int(length[i])}: {os.strerror(-err)}",
                                )
                            want -= 1
                            done += 1
                        off += (mlen + 3) & ~3
            return done
        finally:
            s.close()

    return run_in_netns(ns, work)


def kernel_route_count(ns: str) -> int:
    """Routes in the namespace's main table, from /proc/net/fib_triestat ("Prefixes")."""
    from routebricks.netns.core import run_in_netns

    text = run_in_netns(ns, lambda: Path("/proc/thread-self/net/fib_triestat").read_text())
    main = text.split("Main:")[1] if "Main:" in text else text
    for line in main.splitlines():
        if "Prefixes:" in line:
            return int(line.split()[-1])
    return -1


# --------------------------------------------------------------------------
# Route file and destinations for routebricks
# --------------------------------------------------------------------------
def write_route_file(path: Path, net: np.ndarray, length: np.ndarray) -> None:
    """Every prefix to port 0, plus a default route to port 0."""
    o = [((net >> s) & 255).astype(np.int64).tolist() for s in (24, 16, 8, 0)]
    lines = ["0.0.0.0/0 0"]
    lines += [
        f"{a}.{b}.{c}.{d}/{n} 0"
        for a, b, c, d, n in zip(*o, length.astype(np.int64).tolist(), strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")


def destinations(net: np.ndarray, length: np.ndarray, n: int, seed: int = 1) -> list[int]:
    """``n`` addresses (host-order ints): a route drawn uniformly, then an address uniformly
    inside it, so the lookups cover the whole table (and its cache misses)."""
    rng = np.random.default_rng(seed)
    which = rng.integers(0, net.shape[0], n)
    size = np.left_shift(np.int64(1), 32 - length[which].astype(np.int64))
    within = (rng.random(n) * size).astype(np.int64)
    return (net[which].astype(np.int64) + within).tolist()


def click_config(kind: str, method: str, routes: Path | None = None,
                 kernel_filter: bool = True, ipsec_alg: str = "aes128cbc-sha1") -> str:
    """(b) ``minimal``: FromDevice -> EtherRewrite -> ToDevice; (c) ``iproute``: the IP
    routing path with a DIR-24-8 lookup of ``routes``; ``ipsec``: ESP tunnel encapsulation
    with ``ipsec_alg`` (the receiver needs a larger MTU). ``kernel_filter``: with
    KernelFilter, so the router namespace's own kernel does not also handle every frame (on
    veth that work lands on the sender's core)."""
    kf = "KernelFilter(drop dev eth0, drop dev eth1);\n" if kernel_filter else ""
    return kf + _click_path(kind, method, routes, ipsec_alg)


def _click_path(kind: str, method: str, routes: Path | None, ipsec_alg: str) -> str:
    rx = f"rx :: FromDevice(eth0, METHOD {method})"
    tx = "tx :: ToDevice(eth1)"
    if kind == "minimal":
        return f"{rx}\n  -> EtherRewrite(SRC {ROUTER_MAC1}, DST {RECEIVER_MAC})\n  -> {tx};\n"
    if kind == "iproute":
        assert routes is not None
        return (
            f"{rx}\n  -> Strip(14)\n  -> CheckIPHeader\n"
            f'  -> rt :: DirectIPLookup(ROUTES "{routes}")\n  -> DecIPTTL\n'
            f"  -> EtherEncap(0x0800, {ROUTER_MAC1}, {RECEIVER_MAC})\n  -> {tx};\n"
        )
    if kind == "ipsec":
        from routebricks.bench.ipsecdata import sa_args

        return (f"{rx}\n  -> Strip(14)\n  -> ESPEncap({sa_args(ipsec_alg)})\n"
                f"  -> EtherEncap(0x0800, {ROUTER_MAC1}, {RECEIVER_MAC})\n  -> {tx};\n")
    raise ValueError(kind)


# --------------------------------------------------------------------------
# Agents (routebricks.traffic.agents), in a testbed node's namespace
# --------------------------------------------------------------------------
def Agent(tb: Any, node: str, role: str, ifname: str, *, cpu: int | None, log: Path,  # noqa: N802
          timeout: float = 120.0) -> Any:
    """A generator or sink agent in ``node``'s namespace (see routebricks.traffic.agents)."""
    from routebricks.traffic.agents import GenAgent, SinkAgent

    cls = GenAgent if role == "gen" else SinkAgent
    return cls(ifname, netns=tb.ns(node), cpu=cpu, log=log, timeout=timeout)
