"""TimedSource: one packet per INTERVAL from a router timer; LIMIT, STOP, handlers."""

from __future__ import annotations

import pytest
from stdtest_util import q, read_packets

from routebricks.elements.standard.timedsource import TimedSource, unparse_interval
from routebricks.engine.element import Element
from routebricks.engine.router import Router
from routebricks.errors import ConfigError
from routebricks.packet.batch import PacketBatch


def test_interval_and_limit_with_stop(tmp_path):
    out = tmp_path / "out.pcap"
    r = Router.from_text(f"ts :: TimedSource(40ms, \\<aabbcc>, LIMIT 4, STOP true) "
                         f"-> c :: Counter -> ToDump({q(out)});")
    reason = r.run(time_limit=5)
    r.cleanup()
    assert reason == "ts done"
    pkts = read_packets(out)
    assert [bytes(p) for p in pkts] == [b"\xaa\xbb\xcc"] * 4
    gaps = [float(b.time - a.time) for a, b in zip(pkts, pkts[1:], strict=False)]
    assert all(0.03 <= g <= 0.5 for g in gaps), gaps  # about 40 ms apart
    # four packets, then the timer after the last one stops the router: about 5 intervals
    assert 0.15 <= r.elapsed <= 2.5
    assert r.read_handler("ts.count") == "4"


def test_first_packet_after_one_interval():
    r = Router.from_text("ts :: TimedSource(0.3) -> c :: Counter -> Discard;")
    r.run(time_limit=0.2)
    assert r.read_handler("c.count") == "0"
    r.run(time_limit=0.3)  # the timer armed in the first run fires now
    assert r.read_handler("c.count") == "1"


def test_without_stop_router_still_ends_after_limit():
    r = Router.from_text("TimedSource(10ms, LIMIT 2) -> c :: Counter -> Discard;")
    assert r.run(time_limit=5) == "all sources done"
    assert r.read_handler("c.count") == "2"


def test_handlers():
    r = Router.from_text("ts :: TimedSource(INTERVAL 20ms, LIMIT 2) -> c :: Counter "
                         "-> Discard;")
    assert r.read_handler("ts.interval") == "20ms"
    assert r.read_handler("ts.limit") == "2"
    assert r.read_handler("ts.active") == "true"
    assert r.read_handler("ts.headroom") == "64"
    r.write_handler("ts.interval", "1.5")
    assert r.read_handler("ts.interval") == "1.500000s"
    r.write_handler("ts.interval", "5ms")
    r.write_handler("ts.data", "xyz")
    assert r.read_handler("ts.data") == "0x78797a"
    r.run(time_limit=5)
    assert r.read_handler("c.count") == "2"
    r.write_handler("ts.limit", "3")
    r.run(time_limit=5)
    assert r.read_handler("c.count") == "3"
    r.write_handler("ts.reset")
    assert r.read_handler("ts.count") == "0"
    r.run(time_limit=5)
    assert r.read_handler("c.count") == "6"


def test_inactive_source_is_paused_not_done():
    # A paused source keeps the router running (a handler may start it), as in Click.
    r = Router.from_text("ts :: TimedSource(10ms, ACTIVE false) -> c :: Counter -> Discard;")
    assert r.run(time_limit=0.3).startswith("time limit")
    assert r.read_handler("c.count") == "0"


def test_headroom_argument():
    src = TimedSource(0.01, LIMIT=1, HEADROOM=4)
    seen = []

    class _Catch(Element):  # records the batches it receives (not registered)
        port_count = "1/0"

        def push(self, port: int, batch: PacketBatch) -> None:
            seen.append(batch)

    src >> _Catch()
    Router.from_elements(src).run(time_limit=2)
    assert len(seen) == 1 and seen[0].headroom == 4 and seen[0].packet(0)[:6] == b"Random"


def test_unparse_interval():
    assert unparse_interval(0.5) == "500ms"
    assert unparse_interval(20e-6) == "20us"
    assert unparse_interval(7e-9) == "7ns"
    assert unparse_interval(2) == "2.000000s"
    assert unparse_interval(1.000002) == "1.000002s"


def test_config_errors():
    with pytest.raises(ConfigError, match="INTERVAL"):
        Router.from_text("TimedSource(0) -> Discard;")
    with pytest.raises(ConfigError, match="INTERVAL"):
        Router.from_text("TimedSource(soon) -> Discard;")
