"""Fig. 6's scenarios on veth (routebricks.bench.fig6dev): each sends every frame offered
to it out of the right port, and each packet is read and forwarded by the workers the
scenario says (one queue: one worker reads the port; a hand-over: the other forwards).
The receivers' kernel counts the frames too. Rates are printed by the benchmark, never
asserted."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from nstest import can_make_namespaces  # noqa: E402

SKIP = can_make_namespaces()
pytestmark = [pytest.mark.netns, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]
N = 3000


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from routebricks.bench.core import Skip
    from routebricks.bench.fig6dev import fig6_bed

    try:
        with fig6_bed(tmp_path_factory.mktemp("fig6dev")) as b:
            yield b
    except Skip as e:
        pytest.skip(str(e))


def rx_packets(bed: object, ifname: str) -> int:
    res = bed.tb.run("d", ["ip", "-s", "-j", "link", "show", ifname])  # type: ignore[attr-defined]
    assert res.returncode == 0, res.stderr
    return int(json.loads(res.stdout)[0]["stats64"]["rx"]["packets"])


# scenario: (read by worker 0, 1), (forwarded by worker 0, 1), frames out of d:eth0, d:eth1;
# None: some of the N, both workers' shares adding up.
EXPECT = {
    "a": ((N, 0), (0, N), (N, 0)),
    "b": ((N, N), (N, N), (N, N)),
    "c": ((N, 0), None, (N, 0)),
    "d": (None, None, (N, 0)),
    "e": ((N, N), (2 * N, 0), (2 * N, 0)),
    "f": ((N, N), (N, N), (2 * N, 0)),
}


@pytest.mark.parametrize("key", sorted(EXPECT))
def test_scenario_forwards_everything_on_the_cores_it_names(bed: object, key: str) -> None:
    from routebricks.bench.fig6dev import SCENARIOS

    s = SCENARIOS[key]
    read, fwd, out = EXPECT[key]
    before = [rx_packets(bed, i) for i in ("eth0", "eth1")]
    r = bed.run(s, N)  # type: ignore[attr-defined]
    after = [rx_packets(bed, i) for i in ("eth0", "eth1")]
    total = N * len(s.inputs)
    assert (r.offered, r.ring_drops, r.queue_drops) == (total, 0, 0)
    assert r.forwarded == total and r.mpps > 0
    if read is not None:
        assert tuple(r.read_by_worker) == read
    else:  # two queues: each worker read a share of the port
        assert sum(r.read_by_worker) == total and min(r.read_by_worker) > 0
    if fwd is not None:
        assert tuple(r.forwarded_by_worker) == fwd
    else:  # split over the cores
        assert min(r.forwarded_by_worker) > 0
    assert [a - b for a, b in zip(after, before, strict=True)] == list(out)
