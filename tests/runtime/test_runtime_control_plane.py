"""The data plane never waits on the control plane: a large route-table read or write is
served by the supervisor's copy of the table, while the workers keep moving packets; route
changes reach the workers as a whole new table, all or nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from routebricks.errors import HandlerError

ROUTES = 200_000


@pytest.fixture(scope="module")
def routes_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(7)
    nets = np.unique(rng.integers(1 << 16, 1 << 24, ROUTES * 2, dtype=np.int64))[:ROUTES]
    lines = [f"{n >> 16}.{(n >> 8) & 255}.{n & 255}.0/24 0\n" for n in nets.tolist()]
    path = tmp_path_factory.mktemp("routes") / "routes.txt"
    path.write_text("".join(lines))
    return path


@pytest.fixture(params=[1, 2], ids=["1worker", "2workers"])
def router(request: pytest.FixtureRequest, routes_file: Path) -> Iterator[object]:
    from routebricks.runtime.process import RouterProcess

    config = (f"RatedSource(RATE 20000, LIMIT -1) -> c :: Counter -> Discard;\n"
              f"Idle -> rt :: DirectIPLookup(ROUTES {routes_file}) -> Discard;\n")
    with RouterProcess(expr=config, workers=request.param, args=["--no-pin"]).start() as r:
        yield r


def sample_counts(r: object, stop: threading.Event) -> list[tuple[float, int]]:
    """(time, c.count) every 20 ms until ``stop``."""
    samples: list[tuple[float, int]] = []
    while not stop.is_set():
        samples.append((time.monotonic(), int(r.read("c.count"))))  # type: ignore[attr-defined]
        time.sleep(0.02)
    return samples


def while_counting(r: object, work: object) -> tuple[float, float, list[tuple[float, int]]]:
    """Run ``work()`` while another thread samples the counter: (start, end, samples)."""
    stop = threading.Event()
    out: dict[str, list[tuple[float, int]]] = {}
    t = threading.Thread(target=lambda: out.setdefault("s", sample_counts(r, stop)))
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    try:
        work()  # type: ignore[operator]
    finally:
        t1 = time.monotonic()
        stop.set()
        t.join(timeout=30)
    return t0, t1, out["s"]


def advanced_during(t0: float, t1: float, samples: list[tuple[float, int]]) -> bool:
    inside = [c for t, c in samples if t0 < t < t1]
    return len(inside) >= 2 and inside[-1] > inside[0]


def test_a_large_table_read_does_not_stop_the_packets(router: object) -> None:
    got: dict[str, str] = {}
    t0, t1, samples = while_counting(
        router, lambda: got.setdefault("table", router.read("rt.table")))  # type: ignore[attr-defined]
    assert got["table"].count("\n") == ROUTES
    # Packets kept moving (and the counter kept answering) while the table was produced.
    assert advanced_during(t0, t1, samples), (t1 - t0, samples[:5])


def test_a_large_route_change_is_atomic_and_does_not_stop_the_packets(router: object) -> None:
    adds = "".join(f"add 200.{i >> 8}.{i & 255}.0/24 0\n" for i in range(50_000))
    assert router.read("rt.lookup 200.1.2.3") == "-1"  # type: ignore[attr-defined]
    # A bad last line: refused before any worker saw any of it.
    with pytest.raises(HandlerError, match="bad command 'bogus'"):
        router.write("rt.ctrl", adds + "bogus 1.2.3.0/24 0\n")  # type: ignore[attr-defined]
    assert router.read("rt.lookup 200.1.2.3") == "-1"  # type: ignore[attr-defined]
    t0, t1, samples = while_counting(router, lambda: router.write("rt.ctrl", adds))  # type: ignore[attr-defined]
    assert router.read("rt.lookup 200.1.2.3") == "0"  # type: ignore[attr-defined]
    assert router.read("rt.table").count("\n") == ROUTES + 50_000  # type: ignore[attr-defined]
    assert advanced_during(t0, t1, samples), (t1 - t0, samples[:5])
