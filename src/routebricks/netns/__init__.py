"""Network-namespace plumbing (a leaf library): namespaces, veth testbeds, tc shaping.

:mod:`routebricks.netns.core` enters namespaces and runs code and processes inside them;
:mod:`routebricks.netns.testbed` describes and builds topologies of hosts and routers;
:mod:`routebricks.netns.tc` shapes links (tbf) and reads link and qdisc statistics.
"""

from routebricks.netns.core import (
    enter_netns,
    netns_context,
    netns_path,
    run_in_netns,
    stop_processes,
    sysctl_read,
    sysctl_write,
)
from routebricks.netns.tc import (
    LinkStats,
    Qdisc,
    link_rates,
    link_stats,
    parse_rate,
    qdisc_rates,
    qdiscs,
    shape,
    unshape,
)
from routebricks.netns.testbed import (
    PREFIX_RE,
    InterfaceSpec,
    LinkSpec,
    NodeSpec,
    RouteSpec,
    Testbed,
    TestbedSpec,
    cleanup,
)

__all__ = [
    "PREFIX_RE",
    "InterfaceSpec",
    "LinkSpec",
    "LinkStats",
    "NodeSpec",
    "Qdisc",
    "RouteSpec",
    "Testbed",
    "TestbedSpec",
    "cleanup",
    "enter_netns",
    "link_rates",
    "link_stats",
    "netns_context",
    "netns_path",
    "parse_rate",
    "qdisc_rates",
    "qdiscs",
    "run_in_netns",
    "shape",
    "stop_processes",
    "sysctl_read",
    "sysctl_write",
    "unshape",
]
