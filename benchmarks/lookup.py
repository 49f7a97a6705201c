"""Benchmark the LPM tables: build times and lookup rates (prints, never asserts).

Tables: the real RouteViews 2008 table (``ipasn_20080501_v12.dat.gz``, 270K prefixes;
found via $ROUTEBRICKS_DATA or <repo>/../shared/data, skipped if absent) and a synthetic
1M-prefix table.  Lookups: uniformly random IPv4 destination addresses, fed in batches of
32, 256 and 4096 (the per-call overhead matters at small batches), single-threaded.

    python benchmarks/lookup.py [--addresses N] [--synthetic N] [--updates N]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from routebricks.lookup import (
    Dir248Table,
    RadixTable,
    Route,
    RouteArrays,
    load_ipasn,
    synthetic_table,
)

IPASN_NAME = "ipasn_20080501_v12.dat.gz"
BATCHES = (32, 256, 4096)


def data_file(name: str) -> Path | None:
    """Locate a shared data file: $ROUTEBRICKS_DATA, else <repo>/../shared/data."""
    dirs = []
    if os.environ.get("ROUTEBRICKS_DATA"):
        dirs.append(Path(os.environ["ROUTEBRICKS_DATA"]))
    dirs.append(Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    for d in dirs:
        if (d / name).is_file():
            return d / name
    return None


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def lookup_rate(
    lookup: Callable[[np.ndarray, np.ndarray], np.ndarray], addrs: np.ndarray, batch: int
) -> float:
    """Lookups per second over all of ``addrs`` in batches (best of 3 passes)."""
    out = np.empty(batch, dtype=np.uint32)
    n = len(addrs) // batch * batch
    chunks = [addrs[i : i + batch] for i in range(0, n, batch)]
    lookup(chunks[0], out)  # compile / warm up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for chunk in chunks:
            lookup(chunk, out)
        best = min(best, time.perf_counter() - t0)
    return n / best


def bench_table(name: str, arrays: RouteArrays, addrs: np.ndarray, radix_addrs: int) -> None:
    print(f"\n== {name}: {len(arrays):,} routes ==")
    d248 = Dir248Table()
    d248.load(arrays.take(slice(0, 1000)))  # warm up allocations outside the timing
    t_dir, _ = timed(lambda: d248.load(arrays))
    print(f"Dir248Table build: {t_dir:7.3f} s   ({d248.n_groups:,} tbl8 groups, "
          f"{d248.nbytes / 2**20:.0f} MiB arrays)")
    radix = RadixTable()
    radix.load(arrays.take(slice(0, 1000)))  # load compiled kernels outside the timing
    t_rx, _ = timed(lambda: radix.load(arrays))
    print(f"RadixTable  build: {t_rx:7.3f} s   ({radix.n_nodes:,} trie nodes)")
    check = d248.nh_port[d248.lookup(addrs[:100_000])]
    assert (check == radix.nh_port[radix.lookup(addrs[:100_000])]).all(), "tables disagree"

    def dir_numba(a: np.ndarray, out: np.ndarray) -> np.ndarray:
        return d248.lookup(a, out)

    def dir_numpy(a: np.ndarray, out: np.ndarray) -> np.ndarray:
        return d248.lookup_numpy(a, out)

    def rx(a: np.ndarray, out: np.ndarray) -> np.ndarray:
        return radix.lookup(a, out)

    print(f"{'lookup (Mlookups/s)':28s}" + "".join(f"{'batch ' + str(b):>13s}" for b in BATCHES))
    for label, fn, sample in (
        ("Dir248 numba (default)", dir_numba, addrs),
        ("Dir248 numpy", dir_numpy, addrs),
        ("Radix numba", rx, addrs[:radix_addrs]),
    ):
        rates = [lookup_rate(fn, sample, b) / 1e6 for b in BATCHES]
        print(f"{label:28s}" + "".join(f"{r:13.1f}" for r in rates))
    n_all = len(addrs)
    t_one, _ = timed(lambda: d248.lookup(addrs))
    print(f"Dir248 numba, one batch of {n_all:,}: {n_all / t_one / 1e6:.1f} Mlookups/s")


def bench_updates(arrays: RouteArrays, n: int) -> None:
    """Incremental add/remove rates of both tables on top of a loaded table."""
    rng = np.random.default_rng(99)
    extra = synthetic_table(n, seed=12345, nports=16)
    present = set(zip(arrays.net.tolist(), arrays.length.tolist(), strict=True))
    routes = [r for r in extra.to_routes() if (r.prefix, r.length) not in present]
    routes = [routes[i] for i in rng.permutation(len(routes))]
    print(f"\n== incremental updates: {len(routes):,} new routes on {len(arrays):,} ==")
    for cls in (Dir248Table, RadixTable):
        table = cls(arrays)
        t_add, _ = timed(lambda t=table: [t.add(r) for r in routes])
        t_rm, _ = timed(lambda t=table: [t.remove(r.prefix, r.length) for r in routes])
        print(f"{cls.__name__:12s} add {len(routes) / t_add:10,.0f}/s   "
              f"remove {len(routes) / t_rm:10,.0f}/s")
    # A default route touches all 2**24 tbl24 entries: the worst single update.
    table = Dir248Table(arrays)
    t_def, _ = timed(lambda: table.set(Route(0, 0, 0, 1)))
    print(f"Dir248Table set 0.0.0.0/0 on the loaded table: {t_def * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=1 << 22,
                        help="random addresses per lookup run (default 4M)")
    parser.add_argument("--radix-addresses", type=int, default=1 << 20,
                        help="addresses for the slower radix runs (default 1M)")
    parser.add_argument("--synthetic", type=int, default=1_000_000,
                        help="size of the synthetic table (default 1M)")
    parser.add_argument("--updates", type=int, default=20_000,
                        help="routes to add/remove incrementally (default 20K)")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    addrs = rng.integers(0, 2**32, args.addresses, dtype=np.uint32)
    print(f"numpy {np.__version__}; {args.addresses:,} uniformly random addresses; "
          "single thread")

    path = data_file(IPASN_NAME)
    real = None
    if path is None:
        print(f"\n(skipping the real table: {IPASN_NAME} not found)")
    else:
        t_load, real = timed(lambda: load_ipasn(path, nports=16))
        print(f"\nload_ipasn({path.name}): {t_load:.3f} s")
        assert isinstance(real, RouteArrays)
        bench_table("real table, RouteViews 2008 (bogons dropped)", real, addrs,
                    args.radix_addresses)

    t_gen, syn = timed(lambda: synthetic_table(args.synthetic, seed=1, default_route=True))
    print(f"\nsynthetic_table({args.synthetic:,}): {t_gen:.3f} s")
    assert isinstance(syn, RouteArrays)
    bench_table(f"synthetic {args.synthetic:,}", syn, addrs, args.radix_addresses)
    bench_updates(real if real is not None else syn, args.updates)


if __name__ == "__main__":
    main()
