"""Exclusive claims on the devices a router reads.

Two routers reading one interface would each forward every frame: the receivers would see
every packet twice. A router therefore claims each device it reads with an advisory lock
(``flock``) on a file named after the network namespace and the interface, held by the
supervisor and inherited by its workers. The kernel releases it when the last of them
exits, however it exits, so a crashed router never blocks the next one; a router started
while another live one holds the claim is refused, naming that process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
from pathlib import Path

from routebricks.closing import Closing
from routebricks.errors import RouteBricksError


def _claims_dir() -> Path:
    env = os.environ.get("ROUTEBRICKS_STATE_DIR")
    base = Path(env) if env else Path("/run/routebricks")
    for d in (base / "devices", Path(tempfile.gettempdir()) / "routebricks" / "devices"):
        try:
            d.mkdir(parents=True, exist_ok=True)
            if os.access(d, os.W_OK):
                return d
        except OSError:
            continue
    raise RouteBricksError("no writable directory for device claims (/run/routebricks)")


def _netns_id() -> str:
    """The calling thread's network namespace, as the inode of its nsfs file."""
    try:
        return str(os.stat("/proc/thread-self/ns/net").st_ino)
    except OSError:
        return "0"


class DeviceClaims(Closing):
    """Claims on devices, released by :meth:`close` (or by the process exiting)."""

    def __init__(self) -> None:
        self.fds: dict[str, int] = {}

    def close(self) -> None:
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()


def claim_devices(names: list[str], what: str | None = None) -> DeviceClaims:
    """Claim every device in ``names`` (in the calling thread's network namespace), or
    raise naming the process that drives one already. ``what`` describes this router in
    the claim files (the command line by default)."""
    claims = DeviceClaims()
    if not names:
        return claims
    where = _claims_dir()
    ns = _netns_id()
    me = f"{os.getpid()} {what or ' '.join(sys.argv)[:200]}\n".encode(errors="replace")
    try:
        for name in sorted(set(names)):
            path = where / f"{ns}-{name}.claim"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 512, 0).decode(errors="replace").strip()
                os.close(fd)
                pid, _, cmd = holder.partition(" ")
                who = f"routebricks pid {pid}" + (f" ({cmd})" if cmd else "")
                raise RouteBricksError(
                    f"device {name} is already driven by {who}; two routers reading one "
                    f"device would forward every packet twice: stop that one first "
                    f"(kill {pid})") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, me, 0)
            claims.fds[name] = fd
    except BaseException:
        claims.close()
        raise
    return claims
