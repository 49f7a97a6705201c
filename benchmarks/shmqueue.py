"""Parallel vs pipeline (the paper's Fig. 6) memory to memory: packets per second through a
shared-memory queue between two worker processes (ToShmQueue -> FromShmQueue), beside the
same path run whole on each core, for 64-byte frames at batch sizes 32, 256 and 1024.

Prints a table (and the JSON with --json); asserts nothing. The measuring is
:func:`routebricks.bench.pipeline.run_fig6`, which ``routebricks bench`` also calls.

    python benchmarks/shmqueue.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json

from routebricks.bench.pipeline import format_table, run_fig6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="0.5 s per run instead of 2 s")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = ap.parse_args()
    result = run_fig6(quick=args.quick)
    print(format_table(result))
    if args.json:
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
