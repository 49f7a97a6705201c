"""Packet-socket helpers: interfaces (ifindex, MTU), binding by ifindex, socket options,
``PACKET_FANOUT`` group ids, and unmapping a ring. No ring layout lives here (see
:mod:`routebricks.io.tpacket` for the ABI, :mod:`routebricks.io.rxring` and
:mod:`routebricks.io.txring` for the rings)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct
from typing import Any, Final

from routebricks.io.tpacket import SOCKADDR_LL, SOL_PACKET

SIOCGIFNAME: Final = 0x8910
SIOCGIFMTU: Final = 0x8921
#: ``struct ifreq`` with an int member: name[16], int, padding to its 40 bytes.
_IFREQ_INT: Final = struct.Struct("16si20x")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.bind.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.bind.restype = ctypes.c_int
# ctypes.CDLL releases the GIL around foreign calls, so sendmmsg does not block other threads.
_libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
_libc.sendmmsg.restype = ctypes.c_int
#: ``sendmmsg(fd, msgvec, vlen, flags)`` from libc (errno in ``ctypes.get_errno()``).
sendmmsg = _libc.sendmmsg


def resolve_ifindex(ifname: str | int) -> int:
    """Return the ifindex of ``ifname`` in the calling thread's network namespace.

    An ``int`` is taken to be an ifindex already and returned unchanged.
    """
    if isinstance(ifname, int):
        return ifname
    return socket.if_nametoindex(ifname)


def interface_mtu(ifname: str | int) -> int:
    """MTU of an interface (SIOCGIFMTU on a socket of the calling thread's netns).

    Read with an ioctl rather than from /sys because sysfs shows the namespace
    it was mounted in, not the one this thread is in.
    """
    name = socket.if_indextoname(ifname) if isinstance(ifname, int) else ifname
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        res = fcntl.ioctl(s.fileno(), SIOCGIFMTU, _IFREQ_INT.pack(name.encode(), 0))
    return int(_IFREQ_INT.unpack(res)[1])


def bound_interface_mtu(sock: socket.socket, ifindex: int) -> int:
    """MTU of interface ``ifindex`` in the namespace ``sock`` was made in (SIOCGIFNAME, then
    SIOCGIFMTU, both on ``sock``), whichever namespace the calling thread is in."""
    res = fcntl.ioctl(sock.fileno(), SIOCGIFNAME, _IFREQ_INT.pack(b"", ifindex))
    name = _IFREQ_INT.unpack(res)[0]
    res = fcntl.ioctl(sock.fileno(), SIOCGIFMTU, _IFREQ_INT.pack(name, 0))
    return int(_IFREQ_INT.unpack(res)[1])


def fanout_group_id(ifindex: int, instance: int = 0) -> int:
    """Deterministic 16-bit ``PACKET_FANOUT`` group id for (interface, router instance).

    ``id = (instance & 0xF) << 12 | (ifindex & 0xFFF)``.

    Fanout groups are per network namespace and the kernel matches a join by
    id alone (then checks that device, protocol and mode agree), so two router
    instances on the same interface must use different ids or they would
    silently share one group. Packing the ifindex and an instance number gives
    ids that independent worker processes can compute without coordination; it
    is collision-free for ifindex < 4096 and instance < 16 (ifindexes are
    allocated per namespace, so they stay small in a router's own netns). Pass
    an explicit id, or let :func:`routebricks.io.rxring.open_queues` obtain a
    kernel-assigned unique id, when these limits do not hold.
    """
    if ifindex <= 0:
        raise ValueError(f"invalid ifindex {ifindex}")
    return ((instance & 0xF) << 12) | (ifindex & 0xFFF)


def unmap_ring(owner: Any, views: tuple[str, ...]) -> None:
    """Unmap ``owner._mm`` (if mapped), dropping ``owner``'s numpy views of it first: an
    mmap with exported buffers cannot close."""
    mm, owner._mm = owner._mm, None
    if mm is None:
        return
    for name in views:
        owner.__dict__.pop(name, None)
    with contextlib.suppress(BufferError):  # a view escaped: the GC unmaps it later
        mm.close()


def bind_ll(sock: socket.socket, ifindex: int, protocol: int) -> None:
    """bind(2) a packet socket to ``ifindex`` with a raw ``sockaddr_ll``.

    Python's AF_PACKET address form takes an interface *name*; binding by index
    avoids a name lookup race and works with ifindex-only callers.
    """
    addr = SOCKADDR_LL.pack(socket.AF_PACKET, socket.htons(protocol), ifindex, 0, 0, 0, b"")
    if _libc.bind(sock.fileno(), addr, len(addr)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bind(AF_PACKET, ifindex={ifindex}): {os.strerror(err)}")


def setsockopt_int(sock: socket.socket, opt: int, value: int, what: str) -> None:
    """``setsockopt(SOL_PACKET, opt, value)``; a failure names the option (``what``)."""
    try:
        sock.setsockopt(SOL_PACKET, opt, value)
    except OSError as e:
        raise OSError(e.errno, f"setsockopt(SOL_PACKET, {what}={value}): {e.strerror}") from e


def fanout_arg(group_id: int, mode: int, flags: int) -> int:
    """The ``PACKET_FANOUT`` option value: low 16 bits group id, high 16 bits mode | flags."""
    if not 0 <= group_id <= 0xFFFF:
        raise ValueError(f"fanout group id {group_id} does not fit in 16 bits")
    return group_id | ((mode | flags) << 16)
