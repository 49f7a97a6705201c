"""The experiment framework: what an experiment is, what it returns, and where it is listed.

An :class:`Experiment` names one of the paper's measurements (``table1``, ``fig8`` ...), says
what the paper measured and the ratio it reported, and has a ``run(ctx)`` that measures the
same thing on this machine and returns a :class:`Result`: the numbers (for results.json), a
markdown body (for report.md), the ratios that can be compared with the paper's (absolute
rates differ by hardware; ratios are the claim), and the plots it wrote. An experiment that
cannot run here (no root, a missing tool or data file, a part not built yet) raises
:class:`Skip` with the reason; the report shows the reason, never a traceback.

Experiments register themselves with :func:`experiment` in their modules, which
:func:`registry` imports in the paper's order.
"""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from routebricks.errors import RouteBricksError

__all__ = [
    "Context",
    "Experiment",
    "Ratio",
    "Result",
    "Skip",
    "data_file",
    "experiment",
    "machine_facts",
    "need_root",
    "need_tool",
    "registry",
]

#: The experiment modules, in the paper's order (each registers its experiment on import).
MODULES = ("fig3", "table1", "fig6", "fig7", "fig8", "fig9", "rb4")
IPASN_NAME = "ipasn_20080501_v12.dat.gz"


class Skip(RouteBricksError):  # noqa: N818 - an outcome, not a failure
    """This experiment cannot run here; the message says why (and what would make it run)."""


@dataclass
class Ratio:
    """A ratio the paper reports beside ours on this machine (None: not measured);
    ``unit`` "×" for a ratio, "" for a count (ports, servers), or a unit such as "%"."""

    name: str
    paper: float | None
    ours: float | None
    note: str = ""
    unit: str = "×"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Result:
    """What one experiment measured.

    ``summary``: one line for the terminal; ``body``: markdown for the report (tables of
    what we measured); ``ratios``: the comparable claims; ``data``: every number, for
    results.json; ``plots``: PNG file names in the output folder; ``notes``: caveats.
    """

    summary: str
    body: str = ""
    ratios: list[Ratio] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    plots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Experiment:
    """One of the paper's experiments.

    ``paper``: what the paper measured and found (markdown, a paragraph); ``paper_ratio``:
    its comparable ratio in a few words; ``seconds``: rough (quick, full) durations, for the
    user's expectations in ``--list``.
    """

    id: str
    title: str
    paper: str
    paper_ratio: str
    run: Callable[[Context], Result]
    seconds: tuple[float, float] = (10.0, 60.0)
    uses_workers: bool = False


_REGISTRY: dict[str, Experiment] = {}


def experiment(id: str, title: str, *, paper: str, paper_ratio: str,  # noqa: A002
               seconds: tuple[float, float] = (10.0, 60.0),
               uses_workers: bool = False) -> Callable[[Callable[[Context], Result]],
                                                       Callable[[Context], Result]]:
    """Register the decorated ``run(ctx) -> Result`` as experiment ``id``."""

    def wrap(fn: Callable[[Context], Result]) -> Callable[[Context], Result]:
        _REGISTRY[id] = Experiment(id, title, paper.strip(), paper_ratio, fn, seconds,
                                   uses_workers)
        return fn

    return wrap


def registry() -> dict[str, Experiment]:
    """Every experiment, in the paper's order."""
    for m in MODULES:
        importlib.import_module(f"routebricks.bench.{m}")
    return {k: _REGISTRY[k] for k in MODULES if k in _REGISTRY}


# ---------------------------------------------------------------------- the run's context
class Progress:
    """What an experiment reports while it runs (the runner draws it; this one is silent)."""

    def total(self, steps: int) -> None:
        """This experiment will take about ``steps`` steps."""

    def step(self, text: str) -> None:
        """One step done; ``text`` says what runs now."""

    def log(self, text: str) -> None:
        """A line worth keeping (shown with --verbose, always in the experiment's log)."""


@dataclass
class Context:
    """What an experiment runs with: the mode, the output folder, the workers to try."""

    quick: bool
    out: Path
    workers: list[int] = field(default_factory=lambda: [1])
    #: --memory-only: skip the parts that need namespaces (no root, faster).
    memory_only: bool = False
    progress: Progress = field(default_factory=Progress)
    #: A scratch folder for this experiment (removed after it).
    tmp: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))

    def pick(self, quick: Any, full: Any) -> Any:
        return quick if self.quick else full

    def total(self, steps: int) -> None:
        self.progress.total(steps)

    def step(self, text: str) -> None:
        self.progress.step(text)

    def log(self, text: str) -> None:
        self.progress.log(text)

    def plot_path(self, name: str) -> Path:
        return self.out / name

    @property
    def cores(self) -> list[int]:
        return sorted(os.sched_getaffinity(0))


# ---------------------------------------------------------------------- what runs here
def need_root(what: str) -> None:
    """Skip unless root (network namespaces, packet sockets)."""
    if os.geteuid() != 0:
        raise Skip(f"{what} needs root (network namespaces and packet sockets): run "
                   "`sudo routebricks bench ...`")


def need_tool(name: str, package: str = "") -> str:
    """The path of a program, or Skip saying which package provides it."""
    path = shutil.which(name)
    if path is None:
        hint = f" (Debian: apt install {package})" if package else ""
        raise Skip(f"needs the {name} command{hint}")
    return path


def data_file(name: str = IPASN_NAME) -> Path | None:
    """A shared data file: under $ROUTEBRICKS_DATA, else <checkout>/../shared/data, else
    ../shared/data from the current folder."""
    dirs = []
    if os.environ.get("ROUTEBRICKS_DATA"):
        dirs.append(Path(os.environ["ROUTEBRICKS_DATA"]))
    dirs.append(Path(__file__).resolve().parents[3].parent / "shared" / "data")
    dirs.append(Path.cwd().parent / "shared" / "data")
    for d in dirs:
        if (d / name).is_file():
            return d / name
    return None


def need_data(name: str = IPASN_NAME) -> Path:
    path = data_file(name)
    if path is None:
        raise Skip(f"{name} not found: set ROUTEBRICKS_DATA to the folder that holds it "
                   "(or put it in <checkout>/../shared/data)")
    return path


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """``with timed() as t: ...; t()`` -> seconds since the block started."""
    t0 = time.perf_counter()
    yield lambda: time.perf_counter() - t0


def machine_facts() -> dict[str, Any]:
    """What the numbers were measured on."""
    import numpy

    facts: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpuinfo("model name") or platform.processor() or platform.machine(),
        "cpu_mhz": _float(_cpuinfo("cpu MHz")),
        "memory_gib": _mem_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "numba": _version("numba"),
        "matplotlib": _version("matplotlib"),
        "routebricks": _version("routebricks"),
        "commit": _git_commit(),
        "load_average": round(os.getloadavg()[0], 2),
        "root": os.geteuid() == 0,
    }
    return facts


def _cpuinfo(key: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _mem_gib() -> float | None:
    try:
        kb = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        return round(kb / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def _version(module: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parents[3]
    if not (here / ".git").exists() or shutil.which("git") is None:
        return None
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # read only: never take the index lock
    r = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True, timeout=10, env=env)
    if r.returncode != 0:
        return None
    dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "-uno"],
                           capture_output=True, text=True, timeout=10, env=env).stdout.strip()
    return r.stdout.strip() + ("+changes" if dirty else "")
