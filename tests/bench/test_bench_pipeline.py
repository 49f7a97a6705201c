"""The Fig. 6 memory-to-memory comparison's machinery (no timing is checked: benchmarks
assert nothing about speed)."""

from __future__ import annotations

from routebricks.bench.pipeline import BATCHES, _handlers, format_table, ring_only, run_config


def test_handler_output_is_read_back() -> None:
    out = "c.rate:\n1.5e+06\n\ntq.drops:\n\n\nsrc.count:\n42\n"
    assert _handlers(out, ("c.rate", "tq.drops", "src.count")) == {
        "c.rate": "1.5e+06", "tq.drops": "", "src.count": "42"}
    assert _handlers("7\n", ("c.count",)) == {"c.count": "7"}


def test_a_short_pipeline_run_reports_its_counters() -> None:
    config = ("src :: InfiniteSource(LIMIT 5000, LENGTH 64, STOP true) -> tq :: ToShmQueue(q);"
              "fsq :: FromShmQueue(q) -> c :: Counter -> Discard; StaticThreadSched(src 0, fsq 1);")
    h = run_config(config, 2, 30, ("c.count", "tq.drops"))
    dropped = sum(int(x.split("\t")[0]) for x in h["tq.drops"].splitlines() if x.strip())
    assert int(h["c.count"]) + dropped == 5000


def test_the_ring_alone_moves_packets() -> None:
    assert ring_only(32, 0.2) > 0


def test_table_has_a_row_per_batch_size() -> None:
    row = {"parallel_1core_pps": 2e6, "parallel_2cores_pps": 4e6, "pipeline_2cores_pps": 1e6,
           "pipeline_dropped": 0.5, "pipeline_1process_pps": 1e6, "ring_only_pps": 5e6,
           "pipeline_vs_parallel_per_path": 0.5, "pipeline_vs_parallel_per_core": 0.25}
    result = {"frame_bytes": 64, "seconds_per_run": 2.0, "best_of": 3, "cpus": 2,
              "queue_capacity": 8192, "rows": [dict(row, batch=b) for b in BATCHES]}
    lines = format_table(result).splitlines()
    assert len(lines) == 3 + len(BATCHES) + 1
    assert lines[3].split()[:4] == ["32", "2.00", "4.00", "1.00"]
