"""KernelFilter: keeps the host's kernel from handling the packets a router reads."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence

from routebricks.engine.args import Arg, Word
from routebricks.engine.element import Element, read_handler
from routebricks.errors import RouteBricksError

_SPEC = re.compile(r"drop\s+dev\s+(\S+)")
_serial = itertools.count()  # each KernelFilter of a process gets a table of its own


def netdev_drop_ruleset(table: str, devices: Sequence[str]) -> str:
    """An nftables ruleset: table ``table`` (family netdev) with one ingress chain of policy
    drop per device. Ingress hooks run after the packet taps: packet sockets still see
    every frame, the host's stack none."""
    chains = "".join(
        f"  chain dev{i} {{\n"
        f'    type filter hook ingress device "{dev}" priority 0; policy drop;\n'
        "  }\n"
        for i, dev in enumerate(devices)
    )
    return f"table netdev {table} {{\n{chains}}}\n"


class KernelFilter(Element):
    """Blocks the Linux kernel from handling the packets that arrive on devices.

    Click's KernelFilter, with nftables instead of iptables.

    Ports: none.
    Arguments:
        FILTERSPEC... (positional, at least one): ``drop dev DEVNAME``: the kernel handles no
            packet arriving on DEVNAME. Packet sockets still see every one of them (FromDevice,
            tcpdump): the filter sits at the device's ingress hook, after the packet taps.
        NFT_COMMAND (word, default nft): the nft program (Debian package nftables).
    Behaviour: a packet socket receives a copy of each frame, and without this the host's
        own IP stack handles the frame as well: it answers pings to its addresses, and on a
        router namespace without addresses it still looks every destination up before
        dropping it, work done on the core that received the frame. When the router starts,
        KernelFilter installs one nftables table (family netdev) with an ingress chain of
        policy drop per device; when the router stops, it deletes the table. With several
        workers, worker 0 installs it. The table is also removed when the router is
        interrupted or terminated (SIGINT, SIGTERM) or fails; only if it is killed outright
        (SIGKILL) does the table stay: delete it by hand (``nft list tables``; it is named
        rb_kernelfilter_PID_N, PID being the process that installed it), as with Click's
        iptables rules. A device that does not exist, or a missing nft, is an error before
        any packet moves.
    Handlers:
        ruleset (read): the nftables ruleset installed (empty before the router starts).
    Example:
        KernelFilter(drop dev eth0, drop dev eth1);
        FromDevice(eth0) -> ... -> ToDevice(eth1);
    See also: FromDevice, ToDevice
    """

    port_count = "0/0"
    processing = "a/a"
    REST = True
    ARGS = (Arg("NFT_COMMAND", Word, "nft"),)

    def configure(self) -> None:
        self.devices: list[str] = []
        for spec in self.rest:
            m = _SPEC.fullmatch(spec.strip())
            if m is None:
                raise self.error(f"bad filter {spec!r}", "the one form is 'drop dev DEVNAME'")
            self.devices.append(m.group(1))
        if not self.devices:
            raise self.error("no filter given", "e.g. KernelFilter(drop dev eth0)")
        self.table = ""
        self.installed = ""

    def _nft(self) -> str:
        exe = shutil.which(self.nft_command)
        if exe is None:
            raise self.error(f"cannot find {self.nft_command!r}",
                             "install nftables (Debian: apt install nftables) or give "
                             "NFT_COMMAND")
        return exe

    def _run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self._nft(), *args], input=stdin, capture_output=True,
                              text=True, timeout=30)

    def ruleset_text(self, table: str) -> str:
        """The nftables ruleset for ``table`` (one ingress chain per device)."""
        return netdev_drop_ruleset(table, self.devices)

    def _script(self, table: str) -> str:
        # A table of this name can only be left over from a dead process whose pid we
        # now have: replace it (declare, delete, define: one nft transaction).
        return (f"table netdev {table}\ndelete table netdev {table}\n"
                + self.ruleset_text(table))

    def initialize(self) -> None:
        if getattr(self.router, "worker_id", 0) != 0:
            return  # one table for the whole router: worker 0's
        from routebricks.io.afpacket import resolve_ifindex

        for dev in self.devices:
            try:
                resolve_ifindex(dev)
            except OSError:
                raise self.error(f"no device {dev!r}",
                                 "is the interface in this network namespace?") from None
        table = f"rb_kernelfilter_{os.getpid()}_{next(_serial)}"
        try:
            res = self._run("-f", "-", stdin=self._script(table))
        except (OSError, subprocess.TimeoutExpired) as e:
            raise self.error(f"cannot run {self.nft_command!r}: {e}") from None
        if res.returncode != 0:
            said = (res.stderr or res.stdout).strip() or "(no message)"
            hint = ("run as root (nftables needs CAP_NET_ADMIN)"
                    if "not permitted" in said.lower() else
                    "the kernel needs nftables with netdev ingress hooks "
                    "(CONFIG_NF_TABLES_NETDEV)")
            raise self.error(f"nft refused the filter (exit {res.returncode}): {said}", hint)
        self.table, self.installed = table, self.ruleset_text(table)

    def cleanup(self) -> None:
        if not self.table:
            return
        table, self.table, self.installed = self.table, "", ""
        try:
            res = self._run("delete", "table", "netdev", table)
            ok, why = res.returncode == 0, (res.stderr or res.stdout).strip()
        except (OSError, subprocess.TimeoutExpired, RouteBricksError) as e:
            ok, why = False, str(e)
        if not ok:  # never raise here: the other elements still need their cleanup
            print(f"{self.name}: could not remove nftables table {table} ({why}); remove "
                  f"it with: nft delete table netdev {table}", file=sys.stderr)

    @read_handler("ruleset")
    def h_ruleset(self) -> str:
        """The nftables ruleset installed (empty before the router starts)."""
        return self.installed
