"""Compiling numba kernels before the first packet.

A kernel compiles on its first call, which on a cold cache (a fresh clone, a new
version) takes seconds: a router that does so on its first batch stops for that long
with packets waiting, its BFD sessions time out and its peers declare it down. Elements
therefore name the warm-up functions of the kernels they run (``Element.JIT_WARMUP``) and
the router calls each once while it initializes, before it reports ready.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numba

#: Set to 1 to let numba find scipy's BLAS (for np.dot and np.linalg in user kernels).
BLAS_ENV = "ROUTEBRICKS_NUMBA_BLAS"


def skip_blas_probe() -> None:
    """Load numba's numpy support without its probe for scipy's BLAS.

    The first kernel a process compiles or loads from the cache makes numba import its numpy
    support, which imports ``scipy.linalg`` (when scipy is installed) to see whether np.dot
    can call BLAS: measured 165 ms of every router's start-up, for functions no kernel of
    ours uses. With the probe answered "no BLAS", scipy stays importable as usual; only
    numba's np.dot/np.linalg are unavailable in compiled code (set ROUTEBRICKS_NUMBA_BLAS=1
    for user elements that need them).
    """
    name = "scipy.linalg.cython_blas"
    if os.environ.get(BLAS_ENV) == "1" or "numba.np.arraymath" in sys.modules:
        return
    if name in sys.modules:
        return  # scipy's BLAS is loaded already: the probe costs nothing
    sys.modules[name] = None  # type: ignore[assignment]  # "import" raises ImportError
    try:
        import numba.np.arraymath  # noqa: F401 - the module that probes
    finally:
        del sys.modules[name]


def precompile(kernel: Any, *examples: Any) -> None:
    """Compile (or load from numba's on-disk cache) ``kernel`` for the types of
    ``examples``, the arguments of a real call, without running it."""
    kernel.compile(tuple(numba.typeof(x) for x in examples))
