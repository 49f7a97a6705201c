"""The README's console examples are tests: every ``$ routebricks ...`` block is run (from a
scratch directory that sees the repository's examples) and its output compared with the
README's, timings aside (stderr first: a run prints its summary before the handler
values). A run's summary is what a terminal shows, so ``run`` gets
``--summary`` here (stderr is a pipe in a test)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```\n\$ (routebricks [^\n]*)\n(.*?)```", re.S)


def examples() -> list[tuple[str, str]]:
    return BLOCK.findall((REPO / "README.md").read_text())


def normal(text: str) -> str:
    return re.sub(r"after \d+\.\d+ s", "after T s", text).strip()


def test_the_readme_has_console_examples() -> None:
    assert len(examples()) >= 3


@pytest.mark.parametrize(("command", "shown"), examples(), ids=lambda v: v[:50])
def test_console_example(command: str, shown: str, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    args = shlex.split(command)[1:]
    if args[0] == "run":
        args.insert(1, "--summary")
    res = subprocess.run([sys.executable, "-m", "routebricks.cli", *args], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert normal(res.stderr + res.stdout) == normal(shown), (
        f"README example drifted: {command}\n--- README\n{shown}\n--- now\n"
        f"{res.stderr}{res.stdout}")
