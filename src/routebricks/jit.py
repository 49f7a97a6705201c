"""Compiling numba kernels before the first packet.

A kernel compiles on its first call, which on a cold cache (a fresh clone, a new
version) takes seconds: a router that does so on its first batch stops for that long
with packets waiting, its BFD sessions time out and its peers declare it down. Elements
therefore name the warm-up functions of the kernels they run (``Element.JIT_WARMUP``) and
the router calls each once while it initializes, before it reports ready.
"""

from __future__ import annotations

from typing import Any

import numba


def precompile(kernel: Any, *examples: Any) -> None:
    """Compile (or load from numba's on-disk cache) ``kernel`` for the types of
    ``examples``, the arguments of a real call, without running it."""
    kernel.compile(tuple(numba.typeof(x) for x in examples))
