"""Arrays in anonymous shared memory, handed between processes by file descriptor.

The control plane builds read-mostly state (a route table's lookup arrays) off the data
path, copies it into one ``memfd`` and passes the descriptor to every worker over its pipe
(SCM_RIGHTS); each worker maps it and swaps its lookups over in one assignment. The memory
has no name anywhere, so nothing can be left behind: it is freed when the last process that
maps it unmaps it or dies, SIGKILL included.

A segment made before the workers fork (:meth:`SharedArrays.allocate`, a packet ring between
two workers) needs no handing over: ``MAP_SHARED`` memory stays shared across ``fork``.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

_ALIGN = 64  # each array starts on a cache line


@dataclass(frozen=True)
class ArrayLayout:
    """Where each array lives in the segment: name -> (dtype string, shape, byte offset)."""

    arrays: tuple[tuple[str, str, tuple[int, ...], int], ...]
    size: int


class SharedArrays:
    """A set of named numpy arrays in one anonymous shared-memory segment."""

    def __init__(self, fd: int, layout: ArrayLayout, *, writable: bool = False) -> None:
        self.layout = layout
        self.fd = fd
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        self._map = mmap.mmap(fd, max(layout.size, 1), mmap.MAP_SHARED, prot)
        self.arrays: dict[str, np.ndarray] = {}
        for name, dtype, shape, off in layout.arrays:
            count = int(np.prod(shape, dtype=np.int64))
            a = np.frombuffer(self._map, dtype=np.dtype(dtype), count=count, offset=off)
            self.arrays[name] = a.reshape(shape)

    @classmethod
    def create(cls, arrays: dict[str, np.ndarray], name: str = "routebricks") -> SharedArrays:
        """Copy ``arrays`` into a new segment (the creator's copy is writable)."""
        seg = cls.allocate({k: (a.dtype.str, tuple(a.shape)) for k, a in arrays.items()}, name)
        for key, a in arrays.items():
            seg.arrays[key][...] = a
        return seg

    @classmethod
    def allocate(cls, shapes: dict[str, tuple[str, tuple[int, ...]]],
                 name: str = "routebricks") -> SharedArrays:
        """A new writable segment of zero-filled arrays, ``name -> (dtype, shape)``, with
        nothing copied in: a memfd reads as zeros, and its pages take memory only once
        written (a packet ring sized for bursts costs what it holds). Mapped ``MAP_SHARED``,
        so processes forked afterwards share it (and may lock it: :meth:`lock`)."""
        entries = []
        off = 0
        for key, (dtype, shape) in shapes.items():
            dt = np.dtype(dtype)
            off = -(-off // _ALIGN) * _ALIGN
            entries.append((key, dt.str, tuple(shape), off))
            off += int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        layout = ArrayLayout(tuple(entries), off)
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            os.ftruncate(fd, max(off, 1))
            return cls(fd, layout, writable=True)
        except BaseException:
            os.close(fd)
            raise

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive POSIX record lock on the segment (between processes: a lock
        is the process's, so threads of one process do not exclude each other). For rare
        updates of several words at once, never the data path. Needs the descriptor."""
        if self.fd < 0:
            raise ValueError("the segment's descriptor is closed: it cannot be locked")
        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)

    @classmethod
    def attach(cls, fd: int, layout: ArrayLayout) -> SharedArrays:
        """Map a segment received as ``fd`` read-only; the descriptor is closed (the
        mapping keeps the memory)."""
        try:
            seg = cls(fd, layout)
        finally:
            os.close(fd)
        seg.fd = -1
        return seg

    def close(self) -> None:
        """Drop this process's descriptor (arrays handed out stay valid while referenced:
        numpy holds the mapping)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
