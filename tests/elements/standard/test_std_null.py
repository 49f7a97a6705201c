"""Null, PushNull, PullNull: packets pass unchanged; push/pull checked."""

from __future__ import annotations

import pytest
from stdtest_util import flow_packets, q, read_frames, run_elements, run_text, write_pcap

from routebricks.elements.io.fromdump import FromDump
from routebricks.elements.io.todump import ToDump
from routebricks.elements.standard.nullelement import Null, PushNull
from routebricks.engine.router import Router
from routebricks.errors import ConfigError


@pytest.fixture()
def trace(tmp_path):
    pkts = flow_packets(3, 3)
    return write_pcap(tmp_path / "in.pcap", pkts), [bytes(p) for p in pkts]


def test_push_path(tmp_path, trace):
    src, frames = trace
    out = tmp_path / "out.pcap"
    r = run_text(f"FromDump({q(src)}) -> Null -> PushNull -> ToDump({q(out)});")
    assert read_frames(out) == frames
    assert all(not e.drops for e in r.elements.values())


def test_pull_path(tmp_path, trace):
    src, frames = trace
    out = tmp_path / "out.pcap"
    run_text(f"FromDump({q(src)}, BURST 2) -> Queue -> Null -> PullNull -> ToDump({q(out)});")
    assert read_frames(out) == frames


def test_python_api(tmp_path, trace):
    src, frames = trace
    out = tmp_path / "out.pcap"
    fd = FromDump(str(src))
    fd >> Null() >> PushNull() >> ToDump(str(out))
    run_elements(fd)
    assert read_frames(out) == frames


def test_mode_errors():
    with pytest.raises(ConfigError, match="connected to"):
        Router.from_text("Idle -> Queue -> PushNull -> Discard;")
    with pytest.raises(ConfigError, match="connected to"):
        Router.from_text("InfiniteSource -> PullNull -> Discard;")
    with pytest.raises(ConfigError, match="too many arguments|unknown"):
        Router.from_text("Idle -> Null(3) -> Discard;")
    assert Null.HANDLERS.keys() >= {"name", "class", "drops"}
