"""Network-namespace plumbing (a leaf library): namespaces, veth testbeds, tc shaping.

:mod:`routebricks.netns.core` enters namespaces and runs code and processes inside them;
:mod:`routebricks.netns.testbed` describes and builds topologies of hosts and routers.
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
    "NodeSpec",
    "RouteSpec",
    "Testbed",
    "TestbedSpec",
    "cleanup",
    "enter_netns",
    "netns_context",
    "netns_path",
    "run_in_netns",
    "stop_processes",
    "sysctl_read",
    "sysctl_write",
]
