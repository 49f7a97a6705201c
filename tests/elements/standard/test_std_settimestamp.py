"""SetTimestamp: a fixed time, the (simulated) time now, FIRST; bad values."""

from __future__ import annotations

import pytest

from routebricks.engine import clock
from routebricks.engine.router import Router
from routebricks.errors import ConfigError
from routebricks.packet.batch import PacketBatch


def stamped(conf: str) -> PacketBatch:
    r = Router.from_text(f"Idle -> s :: SetTimestamp({conf}) -> Discard")
    b = PacketBatch.from_bytes([b"a", b"b"])
    out = r.elements["s"].process(b)
    assert out is not None
    return out


def test_fixed_now_and_first() -> None:
    assert stamped("1000000000.25").anno("timestamp").tolist() == [1_000_000_000_250_000_000] * 2
    assert stamped("5, FIRST true").anno("first_timestamp").tolist() == [5 * 10**9] * 2
    clock.simulate(start=1e9)
    try:
        assert stamped("").anno("timestamp").tolist() == [10**18] * 2
    finally:
        clock.simulate(False)
    r = Router.from_text("Idle -> s :: SetTimestamp(7.5) -> Discard")
    assert r.elements["s"].read("timestamp") == "7.500000000"


@pytest.mark.parametrize("bad", ["soon", "1.2.3", "1.1234567890"])
def test_bad_timestamps(bad: str) -> None:
    with pytest.raises(ConfigError, match="bad value"):
        Router.from_text(f"Idle -> SetTimestamp({bad}) -> Discard")
