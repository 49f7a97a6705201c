"""Interoperability with a real BFD implementation: FRR's bfdd in one namespace, facing a
routebricks router running the BFD element in another, over a veth pair.

    [r: routebricks, no kernel address] eth0 ---- eth0 [f: FRR bfdd, 169.254.1.2/24]
                     BFD LOCAL 169.254.1.1                  peer 169.254.1.1

The session comes Up on both sides (FRR's own ``show bfd peers json``, our ``bfd.session``),
with each side knowing the other's discriminator and timers; an administrative shutdown on
either side takes the other Down with the right diagnostic and back Up after; stopping the
routebricks router takes FRR's side Down (control detection time expired), and starting it
again brings the session back. As in the cluster, the routebricks side answers no ARP: FRR's
kernel gets a static neighbour entry for 169.254.1.1.

Skipped, saying why, without root, or without FRR's bfdd and vtysh (Debian's ``frr``).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

BFDD = Path("/usr/lib/frr/bfdd")
RB_IP, FRR_IP = "169.254.1.1", "169.254.1.2"
RB_MAC, FRR_MAC = "fe:00:00:00:00:01", "fe:00:00:01:00:01"

TOPOLOGY = f"""
[router]
name = "r"
interfaces = [{{ name = "eth0", mac = "{RB_MAC}" }}]

[[hosts]]
name = "f"
interfaces = [{{ name = "eth0", addresses = ["{FRR_IP}/24"], mac = "{FRR_MAC}" }}]

[[links]]
a = "r:eth0"
b = "f:eth0"
"""

BFDD_CONF = f"""\
bfd
 peer {RB_IP} local-address {FRR_IP}
  receive-interval 100
  transmit-interval 100
  detect-multiplier 3
  no shutdown
 !
!
"""

# The NOTIFY target: remembers what BFD writes to it ("2 up", "2 down"), read back as `log`.
PEERLOG = textwrap.dedent('''
    from routebricks import Element, read_handler, write_handler

    class PeerLog(Element):
        """Records peer up/down messages.

        Ports: none. Arguments: none. Behaviour: keeps the writes.
        Handlers: peer (write), log (read). Example: l :: PeerLog;
        """

        port_count = "0/0"

        def configure(self):
            self.lines = []

        @write_handler("peer")
        def h_peer(self, v):
            """Record one message."""
            self.lines.append(v)

        @read_handler("log")
        def h_log(self):
            """The messages, ';'-separated."""
            return ";".join(self.lines)
''')

CONFIG = f"""
require(python "peerlog.py");
rec :: PeerLog;
FromDevice(eth0, PROMISC true) -> c :: Classifier(0/{RB_MAC.replace(":", "")}, -);
c[0] -> bfd :: BFD(LOCAL {RB_IP}, PEER {FRR_IP}, SRC_MAC {RB_MAC}, DST_MAC {FRR_MAC},
                   INTERVAL 100ms, MULTIPLIER 3, NOTIFY "rec.peer", PEER_ID 2)
       -> ToDevice(eth0);
c[1] -> Discard;
"""


def why_no_frr() -> str | None:
    """None if FRR's bfdd can be run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, FRR's bfdd)"
    if not BFDD.exists():
        return f"needs FRR's bfdd ({BFDD} not found; Debian: apt-get install -y frr)"
    if shutil.which("vtysh") is None:
        return "needs FRR's vtysh (Debian: apt-get install -y frr)"
    try:
        pwd.getpwnam("frr")
    except KeyError:
        return "needs the 'frr' user that FRR's daemons run as (Debian's frr package)"
    return None


SKIP = why_no_frr()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Pair:
    """The testbed, FRR's bfdd in f, and (when started) routebricks in r."""

    def __init__(self, tb: Any, frr_dir: Path, work: Path) -> None:
        self.tb = tb
        self.frr_dir = frr_dir
        self.work = work
        self.sock = str(work / "rb.sock")
        self.router: subprocess.Popen[str] | None = None

    # FRR
    def vtysh(self, *commands: str) -> str:
        argv = ["vtysh", "--vty_socket", str(self.frr_dir), "-d", "bfdd"]
        for c in commands:
            argv += ["-c", c]
        res = self.tb.run("f", argv, timeout=30)
        assert res.returncode == 0, res.stdout + res.stderr
        return str(res.stdout)

    def frr_peer(self) -> dict[str, Any]:
        peers = json.loads(self.vtysh("show bfd peers json"))
        match = [p for p in peers if p.get("peer") == RB_IP]
        assert len(match) == 1, peers
        return dict(match[0])

    def frr_shutdown(self, down: bool) -> None:
        self.vtysh("configure terminal", "bfd", f"peer {RB_IP} local-address {FRR_IP}",
                   "shutdown" if down else "no shutdown")

    # routebricks
    def start_router(self) -> None:
        from routebricks.runtime.control import wait_for_socket

        self.router = subprocess.Popen(
            [sys.executable, "-m", "routebricks.cli", "run", str(self.work / "bfd.click"),
             "--netns", self.tb.ns("r"), "-u", self.sock],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_socket(self.sock, timeout=120)
        except Exception:  # noqa: BLE001 - report the router's own words
            self.router.kill()
            _, err = self.router.communicate(timeout=30)
            pytest.fail(f"routebricks did not start:\n{err}")

    def stop_router(self) -> str:
        """SIGINT (Ctrl-C), as a user stops it; its stderr."""
        assert self.router is not None
        if self.router.poll() is None:
            self.router.send_signal(signal.SIGINT)
        try:
            _, err = self.router.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.router.kill()
            _, err = self.router.communicate(timeout=30)
        self.router = None
        return err or ""

    def handler(self, spec: str, value: str | None = None) -> str:
        argv = [sys.executable, "-m", "routebricks.cli", "handler",
                "read" if value is None else "write", spec]
        argv += [] if value is None else [value]
        res = subprocess.run(argv + ["-u", self.sock], capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    def session(self) -> dict[str, str]:
        return dict(line.split(" ", 1) for line in self.handler("bfd.session").splitlines())


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    from routebricks.netns.testbed import Testbed, TestbedSpec

    work = tmp_path_factory.mktemp("bfd-frr")
    (work / "peerlog.py").write_text(PEERLOG)
    (work / "bfd.click").write_text(CONFIG)
    # bfdd drops to the 'frr' user: its directory must be its own (pytest's are root's 0700)
    frr_dir = Path(tempfile.mkdtemp(prefix="rb-frr-"))
    (frr_dir / "bfdd.conf").write_text(BFDD_CONF)
    frr = pwd.getpwnam("frr")
    for p in (frr_dir, frr_dir / "bfdd.conf"):
        os.chown(p, frr.pw_uid, frr.pw_gid)
    frr_dir.chmod(0o755)
    tb = Testbed(TestbedSpec.from_toml(TOPOLOGY))
    bfdd = None
    p = None
    try:
        tb.up()
        tb.run("f", ["ip", "neigh", "replace", RB_IP, "lladdr", RB_MAC, "dev", "eth0",
                     "nud", "permanent"], check=True)
        bfdd = tb.popen("f", [str(BFDD), "-f", str(frr_dir / "bfdd.conf"),
                              "-i", str(frr_dir / "bfdd.pid"), "--vty_socket", str(frr_dir),
                              "-z", str(frr_dir / "zserv.api"),
                              "--bfdctl", str(frr_dir / "bfdd.sock"),
                              "--log", "stdout", "-A", "127.0.0.1"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for("bfdd's vty socket", lambda: (frr_dir / "bfdd.vty").exists()
                     or bfdd.poll() is not None, timeout=30)
        except AssertionError:
            bfdd.kill()
        if bfdd.poll() is not None:
            out = bfdd.communicate(timeout=10)[0]
            pytest.fail(f"FRR's bfdd did not start here: {out.strip()!r}")
        p = Pair(tb, frr_dir, work)
        yield p
    finally:
        if p is not None and p.router is not None:
            p.stop_router()
        if bfdd is not None and bfdd.poll() is None:
            bfdd.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                bfdd.wait(timeout=10)
        tb.down()
        shutil.rmtree(frr_dir, ignore_errors=True)
    from pyroute2 import netns

    assert not any(n.startswith(tb.prefix) for n in netns.listnetns())


def test_session_with_frr_bfdd(pair: Pair) -> None:
    pair.start_router()
    # Up on both sides, each knowing the other
    peer = wait_for("FRR's session Up", lambda: (pair.frr_peer()["status"] == "up"
                                                 and pair.frr_peer()))
    ours = wait_for("our session Up", lambda: pair.session()["state"] == "Up"
                    and pair.session())
    assert peer["remote-id"] == int(ours["local_discriminator"])
    assert int(ours["remote_discriminator"]) == peer["id"]
    assert (peer["remote-receive-interval"], peer["remote-transmit-interval"],
            peer["remote-detect-multiplier"]) == (100, 100, 3)
    assert ours["remote_desired_min_tx"] == "100ms" and ours["remote_min_rx"] == "100ms"
    assert ours["detect_time"] == "300ms" and ours["tx_interval"] == "100ms"
    assert pair.handler("rec.log") == "2 up"
    time.sleep(1.0)  # it stays Up: the rates agree
    assert pair.frr_peer()["status"] == "up" and pair.handler("bfd.state") == "Up"
    assert pair.handler("bfd.drops") == ""

    # FRR shuts its end: it says AdminDown, we go Down (neighbor signaled session down)
    pair.frr_shutdown(True)
    ours = wait_for("our session Down", lambda: pair.session()["state"] == "Down"
                    and pair.session())
    assert ours["local_diag"] == "3 (neighbor signaled session down)"
    assert ours["remote_state"] == "AdminDown"
    assert pair.handler("rec.log") == "2 up;2 down"
    pair.frr_shutdown(False)
    wait_for("Up after FRR's no shutdown", lambda: pair.handler("bfd.state") == "Up")

    # we hold ours AdminDown: FRR goes Down, hearing why
    pair.handler("bfd.admin", "down")
    peer = wait_for("FRR Down after our AdminDown",
                    lambda: pair.frr_peer()["status"] == "down" and pair.frr_peer())
    assert peer["remote-diagnostic"] == "administratively down"
    pair.handler("bfd.admin", "up")
    wait_for("FRR Up after our admin up", lambda: pair.frr_peer()["status"] == "up")
    wait_for("ours Up after our admin up", lambda: pair.handler("bfd.state") == "Up")

    # stopping routebricks: FRR detects it (control detection time expired)
    err = pair.stop_router()
    assert f"bfd :: BFD: session to {FRR_IP} up" in err
    peer = wait_for("FRR Down after routebricks stopped",
                    lambda: pair.frr_peer()["status"] == "down" and pair.frr_peer())
    assert peer["diagnostic"] == "control detection time expired"

    # and starting it again brings the session back
    pair.start_router()
    wait_for("FRR Up after routebricks restarted", lambda: pair.frr_peer()["status"] == "up")
    wait_for("ours Up after restart", lambda: pair.handler("bfd.state") == "Up")
    pair.stop_router()
