"""`run -q` (Click's --quit): the router is checked and initialized, its handlers answer, and
no worker process is started — even for a configuration that reads devices, which would
otherwise run one worker per core."""

from __future__ import annotations

import io
import os

import pytest

from routebricks.runtime import supervisor, workers
from routebricks.runtime.launch import RunOptions, run_router


def test_quit_on_a_device_config_forks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork(*_a: object, **_k: object) -> None:
        raise AssertionError("run -q started a process")

    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setattr(supervisor, "fork_context", no_fork)
    monkeypatch.setattr(workers, "fork_context", no_fork)
    out, err = io.StringIO(), io.StringIO()
    rc = run_router(RunOptions(expr="c :: Counter; FromDevice(lo) -> c -> Discard",
                               quit=True, workers=2, handlers=("c.count",)), out, err)
    assert rc == 0, err.getvalue()
    assert out.getvalue() == "0\n"
    assert "Traceback" not in err.getvalue()
