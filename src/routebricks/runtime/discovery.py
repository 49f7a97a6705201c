"""Where running routers' control sockets live, and finding one (as vppctl finds VPP's).

Every supervised router serves Click's ControlSocket protocol at a predictable path,
``SOCKET_DIR/NAME.sock``: NAME is ``run --name``, else the network namespace it runs in
(``--netns``), else ``router`` (``router-PID`` when a live router already has that name).
``SOCKET_DIR`` is ``/run/routebricks`` for root, ``$XDG_RUNTIME_DIR/routebricks`` (or
``/tmp/routebricks-UID``) for other users, or ``$ROUTEBRICKS_RUN_DIR``; it is owner-only.
Clients (``handler``, ``top``, ``graph --socket``) connect to ``--name``'s socket when
given, else to ``$ROUTEBRICKS_SOCKET`` when it is set, else to the one router that runs;
``-u PATH`` overrides all of this.
"""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

from routebricks.errors import RouteBricksError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def socket_dir() -> Path:
    """The directory of control sockets for this user (``$ROUTEBRICKS_RUN_DIR`` moves it:
    a test, or routers kept apart from the system's)."""
    env = os.environ.get("ROUTEBRICKS_RUN_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/run/routebricks")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "routebricks"
    return Path(f"/tmp/routebricks-{os.getuid()}")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise RouteBricksError(
            f"bad router name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit")
    return name


def socket_for(name: str) -> str:
    """The control socket of the router called ``name``."""
    return str(socket_dir() / f"{check_name(name)}.sock")


def prepare_dir() -> Path:
    """Create the socket directory (owner-only) or check that it is ours and private."""
    d = socket_dir()
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = d.lstat()
    except OSError as e:
        raise RouteBricksError(f"cannot create the control socket directory {d}: "
                               f"{e.strerror or e}") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise RouteBricksError(f"{d} is not a directory owned by this user: give the "
                               "router a socket path with -u")
    if st.st_mode & 0o077:
        os.chmod(d, 0o700)
    return d


def alive(path: str) -> bool:
    """Whether something accepts connections on the control socket at ``path``."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(0.5)
        s.connect(path)
        return True
    except BlockingIOError:  # EAGAIN: a listener whose backlog is full
        return True
    except OSError:
        return False
    finally:
        s.close()


def server_path(name: str | None, netns: str | None) -> str:
    """Where a new router serves its control socket: its name's path, or for an unnamed
    router ``router`` (``router-PID`` if a live router has that one already)."""
    prepare_dir()
    if name is not None:
        return socket_for(name)
    if netns:
        return socket_for(netns)
    path = socket_for("router")
    return socket_for(f"router-{os.getpid()}") if alive(path) else path


def running_routers() -> dict[str, str]:
    """Name → socket path of every router answering in :func:`socket_dir`."""
    d = socket_dir()
    try:
        entries = sorted(d.glob("*.sock"))
    except OSError:
        return {}
    return {p.name[:-5]: str(p) for p in entries if _is_socket(p) and alive(str(p))}


def default_socket_path(name: str | None = None) -> str:
    """The socket a client connects to: ``$ROUTEBRICKS_SOCKET``, ``name``'s socket, or
    the only router running."""
    env = os.environ.get("ROUTEBRICKS_SOCKET")
    if name is not None:
        return socket_for(name)
    if env:
        return env
    routers = running_routers()
    if len(routers) == 1:
        return next(iter(routers.values()))
    if not routers:
        raise RouteBricksError(
            f"no running router found (no live control socket in {socket_dir()}): start "
            "one with 'routebricks run' (a run that reads no device serves a socket with "
            "--name or -u), or give its socket with -u PATH")
    raise RouteBricksError("several routers are running: " + ", ".join(routers)
                           + "; choose one with --name NAME (or -u PATH)")


def _is_socket(p: Path) -> bool:
    try:
        return stat.S_ISSOCK(p.lstat().st_mode)
    except OSError:
        return False
