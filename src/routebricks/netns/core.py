"""Network-namespace plumbing: entering namespaces, running code and processes inside them,
sysctls, and interface offloads. A leaf library: it knows nothing of routers or elements,
and anything above it (the runtime, traffic agents, testbeds, the cluster) may use it.

Running things inside a namespace
    * :func:`enter_netns` moves the calling thread (the process, before it starts threads)
      into a namespace for good: ``routebricks run --netns``.
    * :func:`netns_context` switches the *calling thread* (``setns(2)`` is per thread) into
      a namespace and back; sockets opened inside stay in that namespace.
    * :func:`run_in_netns` runs a function in a helper thread inside a namespace, leaving
      the caller's thread untouched.
    * :func:`netns_preexec` is a ``preexec_fn`` that enters a namespace between fork and
      exec: one syscall, no ``ip netns exec``/``nsenter`` binary needed. Unlike ``ip netns
      exec`` it does not remount /sys, so tools that read /sys/class/net see the parent's
      view.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pyroute2 import netns as pr_netns

from routebricks.errors import RouteBricksError

T = TypeVar("T")

NETNS_RUN_DIR = Path("/run/netns")

#: ethtool feature names switched off on every veth end of a testbed: otherwise the host
#: stack hands 64 KB TSO super-frames, frames with a not yet computed checksum
#: (``CHECKSUM_PARTIAL``) or VLAN tags held outside the frame to the veth, and a packet
#: socket sees frames that are not what a wire would carry.
OFFLOADS_OFF: frozenset[str] = frozenset(
    {
        "tx-generic-segmentation",
        "tx-gso-list",
        "rx-gro",
        "rx-gro-list",
        "rx-udp-gro-forwarding",
        "rx-gro-hw",
        "rx-lro",
        "tx-checksum-ip-generic",
        "tx-checksum-ipv4",
        "tx-checksum-ipv6",
        "tx-checksum-sctp",
        "tx-checksum-fcoe-crc",
        "tx-vlan-hw-insert",
        "tx-vlan-stag-hw-insert",
        "rx-vlan-hw-parse",
        "rx-vlan-stag-hw-parse",
    }
)


def netns_path(name: str) -> str:
    """Path of a named network namespace (as ``ip netns`` and pyroute2 use)."""
    return str(NETNS_RUN_DIR / name)


def enter_netns(ns: str) -> None:
    """Move this process (its calling thread) into network namespace ``ns``.

    ``ns`` is a name under /run/netns (as ``ip netns`` and pyroute2 create them) or a path
    such as ``/proc/PID/ns/net``. Uses pyroute2's ``netns.setns`` on an fd we open, so a
    missing namespace is an error rather than silently created.
    """
    path = ns if "/" in ns else netns_path(ns)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise RouteBricksError(f"no network namespace {ns!r} ({path} does not exist)") from None
    except PermissionError:
        raise RouteBricksError(f"cannot open {path}: permission denied (run as root)") from None
    try:
        pr_netns.setns(fd, flags=0)
    except OSError as e:
        raise RouteBricksError(f"cannot enter network namespace {ns!r}: {e}") from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def netns_context(name: str) -> Iterator[None]:
    """Run the body with the calling thread inside network namespace ``name``.

    Saves the thread's own namespace (``/proc/thread-self``, unlike pyroute2's
    ``pushns`` which saves the process's main thread namespace in a global
    stack) so it is safe in any thread.
    """
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(netns_path(name), os.O_RDONLY)
        try:
            pr_netns.setns(target, flags=0)
        finally:
            os.close(target)
        try:
            yield
        finally:
            pr_netns.setns(saved, flags=0)
    finally:
        os.close(saved)


def run_in_netns(name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn(*args, **kwargs)`` in a helper thread inside namespace ``name``.

    Returns its result or re-raises its exception. Objects it creates (e.g.
    sockets) stay bound to that namespace.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            with netns_context(name):
                box["result"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=target, name=f"netns-{name}", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def sysctl_write(ns: str, key: str, value: str | int) -> None:
    """Write ``/proc/sys/<key with dots as slashes>`` from inside namespace ``ns``.

    /proc/sys/net resolves against the network namespace of the thread that
    opens the file, hence the helper thread.
    """
    path = "/proc/sys/" + key.replace(".", "/")

    def write() -> None:
        with open(path, "w") as f:
            f.write(f"{value}\n")

    run_in_netns(ns, write)


def sysctl_read(ns: str, key: str) -> str:
    """Read ``/proc/sys/<key>`` from inside namespace ``ns``."""
    path = "/proc/sys/" + key.replace(".", "/")
    return run_in_netns(ns, lambda: Path(path).read_text().strip())


def set_ip_forward(ns: str, enabled: bool = True) -> None:
    """Enable/disable IPv4 forwarding (``net.ipv4.ip_forward``) in namespace ``ns``."""
    sysctl_write(ns, "net.ipv4.ip_forward", 1 if enabled else 0)


def get_ip_forward(ns: str) -> bool:
    """Whether IPv4 forwarding is on in namespace ``ns``."""
    return sysctl_read(ns, "net.ipv4.ip_forward") == "1"


def netns_preexec(fd: int) -> Callable[[], None]:
    """A ``preexec_fn`` entering the namespace open as ``fd`` (opened by the parent)."""

    def preexec() -> None:  # runs in the child between fork and exec
        pr_netns.setns(fd, flags=0)

    return preexec


def disable_offloads(ifname: str) -> list[str]:
    """Switch off :data:`OFFLOADS_OFF` (+ all ``*-segmentation``) on ``ifname``.

    Must run inside the interface's namespace (the ioctl socket is opened in
    the calling thread's namespace). Returns the features still on afterwards
    among those requested (fixed features cannot be changed).
    """
    from pyroute2.ethtool.ioctl import IoctlEthtool, NotSupportedError

    eth = IoctlEthtool(ifname)
    try:
        feats = eth.get_features()
        names: list[str] = list(feats.keys())  # iterating feats itself yields tuples
        wanted = [
            name
            for name in names
            if (name in OFFLOADS_OFF or name.endswith("-segmentation"))
            and feats.is_available(name)
            and feats.is_active(name)
        ]
        for name in wanted:
            feats.set_value(name, False)
        if wanted:
            # A positive return (ETHTOOL_F_WISH etc.) makes pyroute2 raise; the
            # read-back below is what counts.
            with contextlib.suppress(NotSupportedError):
                eth.set_features(feats)
        after = eth.get_features()
        return [n for n in wanted if after.is_active(n)]
    finally:
        eth.close()


def offload_state(ifname: str) -> dict[str, bool]:
    from pyroute2.ethtool.ioctl import IoctlEthtool

    eth = IoctlEthtool(ifname)
    try:
        feats = eth.get_features()
        names: list[str] = list(feats.keys())
        return {name: feats.is_active(name) for name in names}
    finally:
        eth.close()


def popen_in_netns(ns: str | None, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """:class:`subprocess.Popen` of ``argv`` inside namespace ``ns`` (None: here)."""
    if ns is None:
        return subprocess.Popen(list(argv), **kwargs)
    try:
        fd = os.open(netns_path(ns), os.O_RDONLY)
    except FileNotFoundError:
        raise RouteBricksError(f"no network namespace {ns!r}") from None
    try:
        return subprocess.Popen(list(argv), preexec_fn=netns_preexec(fd), **kwargs)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespace_pids(names: Sequence[str]) -> dict[str, list[int]]:
    """The processes inside each of these namespaces (by namespace name)."""
    pids = pr_netns.ns_pids()
    return {n: list(pids.get(n, [])) for n in names}


def process_name(pid: int) -> str:
    """A process's command line, shortened for a message ('?' if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    text = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return text[:120] or "?"


def stop_processes(pids: Sequence[int], timeout: float = 10.0) -> dict[int, str]:
    """Stop processes as a service manager does: SIGTERM (they clean up and print their
    summary), SIGKILL for those still alive after ``timeout`` seconds. Returns how each
    was stopped: ``pid -> "SIGTERM" | "SIGKILL"`` (processes already gone are left out)."""
    me = os.getpid()
    how: dict[int, str] = {}
    for pid in pids:
        if pid == me:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            how[pid] = "SIGTERM"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive_not_zombie(p) for p in how):
        time.sleep(0.05)
    for pid in how:
        if _alive_not_zombie(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                how[pid] = "SIGKILL"
    return how


def _alive_not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
