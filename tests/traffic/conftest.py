"""The traffic tests' testbed: hosts ``a`` and ``b`` in their own network namespaces, joined
by one veth pair (the testbed library, unique ``rbXXXXXX-`` prefix, state file in a temp
dir). Tests send only between them. It needs root and network namespaces and skips with the
reason otherwise, and it is always torn down, also when a test fails."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from typing import Any

import pytest


def netns_unavailable_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "AF_PACKET and network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN/CAP_SYS_ADMIN) for network namespaces"
    from pyroute2 import netns

    probe = f"rbtprobe{os.getpid()}{secrets.token_hex(2)}"
    try:
        netns.create(probe)
    except Exception as e:  # noqa: BLE001 - any failure means "cannot test here"
        return f"cannot create a network namespace: {e!r}"
    with contextlib.suppress(Exception):
        netns.remove(probe)
    return None


@pytest.fixture(scope="module")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Hosts ``a`` and ``b`` in their own namespaces, ``a:eth0`` <-> ``b:eth0``."""
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from routebricks.netns.testbed import Testbed, TestbedSpec, cleanup

    spec = TestbedSpec.from_dict(
        {
            "hosts": [
                {"name": "a", "interfaces": [{"name": "eth0", "addresses": ["10.77.0.1/24"]}]},
                {"name": "b", "interfaces": [{"name": "eth0", "addresses": ["10.77.0.2/24"]}]},
            ],
            "links": [["a:eth0", "b:eth0"]],
        }
    )
    state = tmp_path_factory.mktemp("testbed-state")
    tb = Testbed(spec, state_dir=state)
    try:
        tb.up()
        yield tb
    finally:
        tb.down()
        cleanup(tb.prefix, state_dir=state)  # belt and braces: nothing of ours survives
