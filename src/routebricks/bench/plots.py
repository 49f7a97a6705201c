"""The report's plots: small matplotlib helpers (Agg, no pyplot, imported when first used).

Each helper writes one PNG and returns its file name; with matplotlib missing it returns
None and the report says how to get the plots (``pip install 'routebricks[bench]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["MISSING", "available", "bars", "lines"]

MISSING = "no plot: matplotlib is not installed (pip install 'routebricks[bench]')"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float = 7.0, height: float = 4.2, cols: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # no pyplot: no backend state; PNG goes to Agg

    fig = Figure(figsize=(width * cols if cols > 1 else width, height))
    axes = fig.subplots(1, cols) if cols > 1 else fig.subplots()
    return fig, axes


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path.name


def bars(path: Path, title: str, groups: Sequence[str], series: dict[str, Sequence[float | None]],
         ylabel: str, *, log: bool = False, labels: bool = True,
         note: str | None = None) -> str | None:
    """Grouped bars: one group per ``groups`` entry, one bar per series (None: no bar)."""
    if not available():
        return None
    fig, ax = _figure(max(6.0, 1.1 * len(groups) * max(1, len(series)) ** 0.5 + 3))
    n = max(1, len(series))
    width = 0.8 / n
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        pts = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        if not pts:
            continue
        rects = ax.bar([p[0] for p in pts], [p[1] for p in pts], width, label=name)
        if labels:
            ax.bar_label(rects, fmt=_fmt, fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)), groups, rotation=15 if len(groups) > 4 else 0)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend(fontsize=8)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="grey")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def lines(path: Path, title: str, x: Sequence[float], series: dict[str, Sequence[float | None]],
          xlabel: str, ylabel: str, *, logx: bool = False, logy: bool = False,
          xticks: Sequence[str] | None = None, note: str | None = None) -> str | None:
    """One line per series over ``x`` (None: a gap)."""
    if not available():
        return None
    fig, ax = _figure()
    for (name, values), marker in zip(series.items(), "os^vDx*P", strict=False):
        pts = [(a, b) for a, b in zip(x, values, strict=True) if b is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=name)
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log", base=2 if logx else 10)
    if xticks is not None:
        ax.set_xticks(list(x), list(xticks))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="grey")
    return _save(fig, path)


def _fmt(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"
