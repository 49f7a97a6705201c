"""``routebricks lossfree``: end to end between the two namespaces of the ``testbed`` fixture
(conftest.py; short trials), its help, and bad options turned into usage errors.

The end-to-end searches are chosen so that their verdicts do not depend on how fast this
machine is: the top of the range is far above what any Python generator can send (it fails
as generator-limited), the bottom is a rate any can pace (with a deep token bucket, --kp
1024, so a busy machine does not make it fall short), and loss on a bare veth pair at a few
thousand frames a second is none.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest
from click.testing import CliRunner


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "routebricks.cli", *args]


def _lossfree(testbed: Any, *args: str) -> Any:
    """``routebricks lossfree a:eth0 -> b:eth0``, run from outside both namespaces."""
    argv = _cli(
        "lossfree", "eth0", "eth0",
        "--gen-netns", testbed.ns("a"), "--sink-netns", testbed.ns("b"),
        "--duration", "0.3", "--settle", "0.1", "--kp", "1024", *args,
    )  # fmt: skip
    import subprocess

    return subprocess.run(argv, capture_output=True, text=True, timeout=180)


@pytest.mark.netns
def test_lossfree_end_to_end_json(testbed: Any) -> None:
    # 50 Mpps (generator-limited), 5 kpps (passes), then two halvings (still far too high).
    p = _lossfree(
        testbed, "--low", "5kpps", "--high", "50Mpps", "--precision", "50%",
        "--max-trials", "4", "--json",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)  # stdout is the JSON alone
    trials = d["trials"]
    assert [t["rate"] for t in trials[:2]] == [50e6, 5e3] and len(trials) == 4
    assert [t["passed"] for t in trials] == [False, True, False, False]
    assert "generator-limited" in trials[0]["reason"]
    assert trials[1]["result"]["sent"] > 1000 and trials[1]["loss_fraction"] == 0
    assert d["rate_pps"] == d["rate"] == 5e3 and d["mpps"] == pytest.approx(0.005)
    assert d["gbps"] == pytest.approx(5e3 * 64 * 8 / 1e9)
    assert d["generator_limited"] is True and d["probe"] is None
    assert d["gen"] == {"interface": "eth0", "netns": testbed.ns("a")}
    assert d["sink"] == {"interface": "eth0", "netns": testbed.ns("b")}
    assert d["summary"].startswith("loss-free rate: ")
    # stderr is not a terminal: one line per trial, as each ends.
    lines = [line for line in p.stderr.splitlines() if line.startswith("trial ")]
    assert [line.split(":")[0] for line in lines] == [f"trial {i}" for i in range(1, 5)]
    assert "offered 50.000 Mpps" in lines[0] and "-> fail: generator-limited" in lines[0]
    assert lines[1].endswith("-> pass")


@pytest.mark.netns
def test_lossfree_human_output(testbed: Any) -> None:
    # The top of the range passes at once: the answer is a lower bound, and it says so.
    p = _lossfree(testbed, "--low", "5kpps", "--high", "20kpps")
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(
        r"loss-free rate: ≥ 0\.02000 Mpps = ≥ 0\.01024 Gbps \(64-byte frames, loss ≤ "
        r"0\.100%, precision 2\.0%, 1 trial, [0-9.]+ s\)\n",
        p.stdout,
    ), p.stdout
    assert "trial 1: offered 0.02000 Mpps, achieved 0.0" in p.stderr
    assert "-> pass" in p.stderr and "a higher --high may find more" in p.stderr


# --------------------------------------------------------------------------
# Help and errors (in-process; nothing opens a socket or starts an agent)
# --------------------------------------------------------------------------
def _main() -> Any:
    from routebricks.cli import main

    return main


def test_lossfree_help() -> None:
    res = CliRunner().invoke(_main(), ["lossfree", "--help"])
    assert res.exit_code == 0
    assert "Examples:" in res.output and "routebricks lossfree " in res.output
    for option in ("--gen-netns", "--sink-netns", "--low", "--high", "--precision",
                   "--tolerance", "--duration", "--size", "--json"):
        assert option in res.output
    assert "lossfree" in CliRunner().invoke(_main(), ["--help"]).output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--low", "fast"], "Invalid value for '--low': bad rate 'fast'"),
        (["--low", "max"], "Invalid value for '--low': the search needs a lowest rate"),
        (["--high", "1kpps"], "--low (0.01000 Mpps) is above --high (0.001000 Mpps)"),
        (["--tolerance", "2"], "Invalid value for '--tolerance': '2' must be"),
        (["--tolerance", "a lot"], "is not a fraction"),
        (["--precision", "0%"], "Invalid value for '--precision'"),
        (["--duration", "0"], "Invalid value for '--duration'"),
        (["--max-trials", "0"], "Invalid value for '--max-trials'"),
        (["--size", "10"], "Invalid value for '--size': frame size 10"),
        (["--dst", "10.0.0.300"], "Invalid value for '--dst'"),
        (["--dst-mac", "02:00"], "Invalid value for '--dst-mac'"),
        (["--gen-netns", "rbt-no-such-ns-0"], "no network namespace 'rbt-no-such-ns-0'"),
        (["--sink-netns", "rbt-no-such-ns-0"], "no network namespace 'rbt-no-such-ns-0'"),
    ],
)
def test_lossfree_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    res = CliRunner().invoke(_main(), ["lossfree", "lo", "lo", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Usage: " in res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lo"], "Missing argument 'SINK_IFACE'"),
        (["rbtnosuchif0", "lo"], "no interface 'rbtnosuchif0' in this network namespace"),
        (["lo", "rbtnosuchif0"], "(see SINK_IFACE and --sink-netns)"),
    ],
)
def test_lossfree_bad_arguments_are_usage_errors(args: list[str], message: str) -> None:
    res = CliRunner().invoke(_main(), ["lossfree", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_lossfree_summary_lines() -> None:
    """The result line says '≥' only for a lower bound, and the note says why."""
    from routebricks.traffic.lossfree import TrialResult, loss_free_rate
    from routebricks.traffic.lossfree_cli import _lossfree_summary

    def dut(capacity: float, generator: float = 1e9) -> Any:
        def trial(rate: float) -> TrialResult:
            got = min(rate, generator)
            delivered = 1.0 if got <= capacity else capacity / got
            return TrialResult(100_000, int(100_000 * delivered), achieved_rate=got)

        return trial

    exact = loss_free_rate(dut(3e5), 1e4, 1e6, tolerance=0.0, precision=0.02)
    line, note = _lossfree_summary(exact, "64", 64.0, 1.0)
    assert line.startswith("loss-free rate: 0.29") and " Mpps = 0.1" in line and note is None
    assert "(64-byte frames, loss ≤ 0.000%, precision 2.0%, " in line

    short = loss_free_rate(dut(1e7, generator=4e5), 1e4, 1e6)
    line, note = _lossfree_summary(short, "imix", 361.83, 1.0)
    assert line.startswith("loss-free rate: ≥ ") and "imix frames, 361.8 bytes" in line
    assert note is not None and note.startswith("generator limited: the rates above")

    top = loss_free_rate(dut(1e7), 1e4, 1e6)
    assert _lossfree_summary(top, "64", 64.0, 1.0)[1] == (
        "the highest rate tried passed: a higher --high may find more"
    )

    none = loss_free_rate(dut(1e3), 1e4, 1e6)
    line, note = _lossfree_summary(none, "64", 64.0, 1.0)
    assert line.startswith("loss-free rate: none found -- even 0.01000 Mpps failed (loss ")
    assert note is None
