"""results.json and report.md: what a ``routebricks bench`` run leaves in its folder.

``results.json``::

    {"machine": {cores, cpu_model, kernel, python, numpy, numba, date, ...},
     "experiments": {ID: {"title", "status": "ok" | "skipped" | "failed" | "interrupted",
                          "reason", "quick", "workers", "date", "seconds", "command",
                          "summary", "ratios": [{"name", "paper", "ours", "note"}],
                          "data": {...every number...}, "plots": ["ID.png", ...],
                          "notes": [...]}}}

A run of some experiments into a folder that already holds results keeps the others'
entries (each says when and how it was measured), so one section can be rerun alone.
report.md is written from results.json: one section per experiment in the paper's order.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from routebricks.bench.core import Experiment

__all__ = ["fmt_ratio", "load_results", "write_report", "write_results"]


def _plain(x: Any) -> Any:
    """JSON for numpy scalars and arrays, paths, and non-finite floats (as null)."""
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, set | tuple):
        return list(x)
    raise TypeError(f"not JSON: {type(x).__name__}")


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def load_results(out: Path) -> dict[str, Any]:
    path = out / "results.json"
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"machine": {}, "experiments": {}}
    if not isinstance(d, dict) or not isinstance(d.get("experiments"), dict):
        return {"machine": {}, "experiments": {}}
    return d


def write_results(out: Path, results: dict[str, Any]) -> None:
    text = json.dumps(_finite(json.loads(json.dumps(results, default=_plain))), indent=1)
    tmp = out / "results.json.tmp"
    tmp.write_text(text + "\n")
    tmp.replace(out / "results.json")


def fmt_ratio(x: float | None, unit: str = "×") -> str:
    """3.40×, 26.2×, 144×; a count (unit "") as an integer when it is one."""
    if x is None:
        return "–"
    if unit == "" and float(x).is_integer():
        return f"{int(x)}"
    if abs(x) >= 100:
        return f"{x:.0f}{unit}"
    if abs(x) >= 10:
        return f"{x:.1f}{unit}"
    if abs(x) >= 0.01 or x == 0:
        return f"{x:.2f}{unit}"
    return f"{x:.3g}{unit}"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(out: Path, results: dict[str, Any], experiments: dict[str, Experiment]) -> Path:
    """report.md from ``results`` (the experiments known now give the paper's side)."""
    m = results.get("machine", {})
    exps = results.get("experiments", {})
    lines = [
        "# RouteBricks' experiments on this machine",
        "",
        "What the paper (Dobrescu et al., *RouteBricks: Exploiting Parallelism to Scale "
        "Software Routers*, SOSP 2009) measured, what `routebricks bench` measured here, and "
        "the ratio that can be compared: absolute rates depend on the hardware (a 2009 "
        "8-core Nehalem with 10G NICs there, this machine's cores and veth links here), so "
        "the ratios are the claim.",
        "",
        f"Last run: `{results.get('command', 'routebricks bench')}` on {m.get('date', '?')}, "
        f"{_wall(results.get('wall_s'))}.",
        "",
        "| machine | |",
        "|---|---|",
    ]
    for key, label in (("cpu_model", "CPU"), ("cores", "cores"), ("cpu_mhz", "clock (MHz)"),
                       ("memory_gib", "memory (GiB)"), ("kernel", "Linux"),
                       ("python", "Python"), ("numpy", "numpy"), ("numba", "numba"),
                       ("matplotlib", "matplotlib"), ("routebricks", "routebricks"),
                       ("commit", "commit"), ("load_average", "load average at start")):
        if m.get(key) is not None:
            lines.append(f"| {label} | {_md_cell(str(m[key]))} |")
    lines += ["", "## Summary", "", "| experiment | paper | here | status |", "|---|---|---|---|"]
    order = [k for k in experiments if k in exps] + [k for k in exps if k not in experiments]
    for key in order:
        e = exps[key]
        paper = experiments[key].paper_ratio if key in experiments else ""
        reason = e.get("reason", "")
        status = e["status"] if e["status"] == "ok" else f"{e['status']}: {_cut(reason, 120)}"
        lines.append(f"| [{_md_cell(e['title'])}](#{_anchor(key)}) | {_md_cell(paper)} | "
                     f"{_md_cell(e.get('summary') or '–')} | {_md_cell(status)} |")
    for key in order:
        lines += ["", *_section(key, exps[key], experiments.get(key))]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rsplit(" ", 1)[0] + " …"


def _anchor(key: str) -> str:
    return f"exp-{key}"


def _wall(s: float | None) -> str:
    if s is None:
        return "wall time not recorded"
    return f"{s / 60:.1f} min wall time" if s >= 120 else f"{s:.0f} s wall time"


def _section(key: str, e: dict[str, Any], exp: Experiment | None) -> list[str]:
    mode = "quick run" if e.get("quick") else "full run"
    workers = e.get("workers")
    lines = [f'<a id="{_anchor(key)}"></a>', "", f"## {e['title']} (`{key}`)", ""]
    if exp is not None:
        lines += [f"**The paper.** {exp.paper}", "", f"Its ratio: {exp.paper_ratio}.", ""]
    head = f"**Here** ({mode}, {e.get('date', '?')}, {e.get('seconds', 0):.0f} s"
    if workers and exp is not None and exp.uses_workers:
        head += f", workers {','.join(map(str, workers))}"
    lines.append(head + ").")
    lines.append("")
    if e["status"] != "ok":
        lines += [f"**{e['status'].capitalize()}:** {e.get('reason', '')}", ""]
    if e.get("summary"):
        lines += [e["summary"], ""]
    if e.get("body"):
        lines += [e["body"].rstrip(), ""]
    ratios = e.get("ratios") or []
    if ratios:
        lines += ["**Comparable ratios.**", "", "| ratio | paper | here | note |",
                  "|---|---:|---:|---|"]
        for r in ratios:
            unit = r.get("unit", "×")
            lines.append(f"| {_md_cell(r['name'])} | {fmt_ratio(r.get('paper'), unit)} | "
                         f"{fmt_ratio(r.get('ours'), unit)} | {_md_cell(r.get('note') or '')} |")
        lines.append("")
    for p in e.get("plots") or []:
        lines += [f"![{key}]({p})", ""]
    for n in e.get("notes") or []:
        lines.append(f"- {n}")
    if e.get("notes"):
        lines.append("")
    lines += ["Rerun this section:", "", "```", e.get("command", f"routebricks bench {key}"),
              "```"]
    return lines
