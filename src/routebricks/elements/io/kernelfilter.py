"""KernelFilter: keeps the host's kernel from handling the packets a router reads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from routebricks.engine.args import Arg, Word
from routebricks.engine.element import Element, read_handler

_SPEC = re.compile(r"drop\s+dev\s+(\S+)")


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
        workers, worker 0 installs it. If the router dies without cleaning up (kill -9),
        delete the table by hand (``nft list tables``; it is named rb_kernelfilter_PID), as
        with Click's iptables rules. A device that does not exist, or a missing nft, is an
        error before any packet moves.
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
        chains = "".join(
            f"  chain dev{i} {{\n"
            f'    type filter hook ingress device "{dev}" priority 0; policy drop;\n'
            "  }\n"
            for i, dev in enumerate(self.devices)
        )
        return f"table netdev {table} {{\n{chains}}}\n"

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
        table = f"rb_kernelfilter_{os.getpid()}"
        text = self.ruleset_text(table)
        res = self._run("-f", "-", stdin=text)
        if res.returncode != 0:
            raise self.error(f"nft refused the filter: {res.stderr.strip()}",
                             "the kernel needs nftables with netdev ingress hooks "
                             "(CONFIG_NF_TABLES_NETDEV)")
        self.table, self.installed = table, text

    def cleanup(self) -> None:
        if self.table:
            self._run("delete", "table", "netdev", self.table)
            self.table = self.installed = ""

    @read_handler("ruleset")
    def h_ruleset(self) -> str:
        """The nftables ruleset installed (empty before the router starts)."""
        return self.installed
