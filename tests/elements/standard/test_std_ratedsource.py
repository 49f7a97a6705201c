"""RatedSource: the rate is roughly honored, batches never exceed kp, LIMIT/STOP, handlers."""

from __future__ import annotations

import time

import pytest
from stdtest_util import q, read_packets, run_elements, run_text

from routebricks.elements.standard.discard import Discard
from routebricks.elements.standard.ratedsource import RatedSource, bucket_size
from routebricks.engine.element import Element
from routebricks.engine.router import Router
from routebricks.errors import ConfigError
from routebricks.packet.batch import PacketBatch

DEFAULT = b"Random bullshit in a packet, at least 64 bytes long. Well, now it is."


class _Sizes(Element):
    """Records the size of every batch passing through (test helper, not registered)."""

    def configure(self) -> None:
        self.sizes: list[int] = []

    def process(self, batch: PacketBatch) -> PacketBatch:
        self.sizes.append(len(batch))
        return batch


def test_rate_roughly_honored():
    r = run_text("rs :: RatedSource(RATE 200) -> c :: Counter -> Discard;", time_limit=0.5)
    n = int(r.read_handler("c.count"))
    assert 50 <= n <= 160, n  # about 100 expected; generous bounds, this is not a benchmark
    assert r.read_handler("rs.count") == str(n)


def test_bandwidth_sets_rate():
    r = run_text("rs :: RatedSource(LENGTH 100, BANDWIDTH 80kbps) -> c :: Counter -> Discard;",
                 time_limit=0.5)
    assert r.read_handler("rs.rate") == "100"  # 80 kbit/s of 100-byte packets
    assert 20 <= int(r.read_handler("c.count")) <= 85


def test_batches_sized_by_elapsed_time_never_above_kp():
    src, rec = RatedSource(RATE=200_000, LIMIT=3000, BURST=64, STOP=True), _Sizes()
    src >> rec >> Discard()
    run_elements(src, time_limit=5)
    assert sum(rec.sizes) == 3000
    assert max(rec.sizes) <= 64
    assert len(rec.sizes) < 3000  # several packets per batch, not one per call


def test_limit_stop_and_contents(tmp_path):
    out = tmp_path / "out.pcap"
    r = Router.from_text(f"rs :: RatedSource(\\<0102030405>, 1000, 7, STOP true)"
                         f" -> ToDump({q(out)});")
    t0 = time.time()
    assert r.run(time_limit=5) == "rs done"
    r.cleanup()
    pkts = read_packets(out)
    assert [bytes(p) for p in pkts] == [b"\1\2\3\4\5"] * 7
    assert all(t0 - 1 <= float(p.time) <= time.time() + 1 for p in pkts)  # timestamp = now
    assert r.read_handler("rs.count") == "7"


def test_length_repeats_data():
    r = run_text("rs :: RatedSource(ab, RATE 10000, LIMIT 3, LENGTH 5) -> Print(x) -> Discard;")
    assert r.read_handler("rs.data") == "0x6162616261"
    assert r.read_handler("rs.length") == "5"


def test_pull_mode_rate():
    r = Router.from_text("rs :: RatedSource(RATE 1000, LIMIT 60) -> PullNull "
                         "-> d :: Discard;")
    assert r.find("rs").output_modes == ["l"]
    reason = r.run(time_limit=5)
    assert reason == "all sources done"
    assert r.read_handler("d.count") == "60"
    assert 0.02 <= r.elapsed <= 2.0  # 60 packets at 1000/s take about 60 ms


def test_handlers():
    r = Router.from_text("rs :: RatedSource(RATE 50, ACTIVE false) -> c :: Counter -> Discard;")
    assert r.read_handler("rs.rate") == "50"
    assert r.read_handler("rs.limit") == "-1"
    assert r.read_handler("rs.active") == "false"
    assert r.read_handler("rs.length") == "-1"
    assert r.read_handler("rs.data") == "0x" + DEFAULT.hex()
    assert r.run(time_limit=0.2).startswith("time limit")  # inactive: paused, not done
    assert r.read_handler("c.count") == "0"
    r.write_handler("rs.rate", "2000")
    r.write_handler("rs.limit", "30")
    r.write_handler("rs.active", "true")
    r.write_handler("rs.data", "hello")
    assert r.read_handler("rs.rate") == "2000"
    r.run(time_limit=5)
    assert r.read_handler("c.count") == "30"
    assert r.read_handler("rs.count") == "30"
    r.write_handler("rs.reset")
    assert r.read_handler("rs.count") == "0"
    r.run(time_limit=5)
    assert r.read_handler("c.count") == "60"
    assert r.read_handler("rs.data") == "0x" + b"hello".hex()


def test_bucket_depth_is_clicks():
    assert bucket_size(10) == 2
    assert bucket_size(199) == 2
    assert bucket_size(200) == 2.0
    assert bucket_size(1000) == 10


def test_config_errors():
    with pytest.raises(ConfigError, match="RATE"):
        Router.from_text("RatedSource(RATE -5) -> Discard;")
    with pytest.raises(ConfigError, match="BANDWIDTH"):
        Router.from_text("RatedSource(BANDWIDTH fast) -> Discard;")
