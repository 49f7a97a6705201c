"""``routebricks bench``: a quick run of two experiments (and one that cannot run under
--memory-only) writes a well-formed report, results.json and plots. The numbers themselves
are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("bench") / "results"
    res = subprocess.run(
        [sys.executable, "-m", "routebricks.cli", "bench", "table1", "fig3", "rb4", "--quick",
         "--memory-only", "--out", str(out)],
        capture_output=True, text=True, timeout=180)
    return out, res


def test_quick_run_succeeds_with_one_line_each(quick_run) -> None:
    out, res = quick_run
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    for key, status in (("fig3", "ok"), ("table1", "ok"), ("rb4", "skipped")):
        line = next((x for x in lines if x.startswith(key + " ")), None)
        assert line is not None, res.stdout
        assert line.split()[1] == status, line
    assert "Traceback" not in res.stdout + res.stderr
    assert "report.md" in lines[-1]


def test_results_json_is_well_formed(quick_run) -> None:
    out, _ = quick_run
    d = json.loads((out / "results.json").read_text())
    for key in ("date", "cores", "cpu_model", "kernel", "python", "numpy", "numba"):
        assert key in d["machine"], key
    exps = d["experiments"]
    assert set(exps) == {"table1", "fig3", "rb4"}
    for key in ("table1", "fig3"):
        e = exps[key]
        assert e["status"] == "ok", e
        assert e["quick"] is True
        for field in ("title", "summary", "data", "plots", "ratios", "seconds", "command"):
            assert field in e, (key, field)
        assert e["ratios"], key
        for r in e["ratios"]:
            assert {"name", "paper", "ours", "note", "unit"} <= set(r)
        assert e["plots"] == [f"{key}.png"]
    assert "memory" in exps["table1"]["data"]
    assert exps["rb4"]["status"] == "skipped"
    assert "--memory-only" in exps["rb4"]["reason"]


def test_report_has_a_section_per_experiment(quick_run) -> None:
    out, _ = quick_run
    text = (out / "report.md").read_text()
    assert text.startswith("# RouteBricks' experiments on this machine")
    assert "## Summary" in text
    sections = text.split('<a id="exp-')[1:]
    assert [s.split('"', 1)[0] for s in sections] == ["fig3", "table1", "rb4"]  # paper order
    for sec in sections:
        key = sec.split('"', 1)[0]
        assert "**The paper.**" in sec, key
        assert "Rerun this section:" in sec, key
        rerun = f"routebricks bench {key} --out {out} --quick"
        assert rerun in sec, (key, rerun)
        if key != "rb4":
            assert "**Comparable ratios.**" in sec, key
            assert f"![{key}]({key}.png)" in sec, key
        else:
            assert "**Skipped:**" in sec
    assert (out / "logs" / "table1.log").is_file()


def test_plots_are_pngs(quick_run) -> None:
    import matplotlib.image

    out, _ = quick_run
    for name in ("table1.png", "fig3.png"):
        data = (out / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        img = matplotlib.image.imread(out / name)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100, name


def test_rerunning_one_section_keeps_the_others(quick_run) -> None:
    from routebricks.bench.cli import bench

    out, _ = quick_run
    before = json.loads((out / "results.json").read_text())["experiments"]
    res = CliRunner().invoke(bench, ["fig3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    after = json.loads((out / "results.json").read_text())["experiments"]
    assert set(after) == set(before)
    assert after["fig3"]["quick"] is False and after["table1"] == before["table1"]
    assert "routebricks bench fig3 --out" in (out / "report.md").read_text()


def test_list_and_unknown_experiment() -> None:
    from routebricks.bench.cli import bench

    res = CliRunner().invoke(bench, ["--list"])
    assert res.exit_code == 0
    ids = [line.split()[0] for line in res.output.splitlines() if not line.startswith(" ")]
    assert ids == ["fig3", "table1", "fig6", "fig7", "fig8", "fig9", "rb4"]
    res = CliRunner().invoke(bench, ["tabel1"])
    assert res.exit_code == 2
    assert "did you mean 'table1'" in res.output
