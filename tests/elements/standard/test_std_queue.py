"""Queue and SimpleQueue: FIFO order, tail drop, output 1, handlers."""

from __future__ import annotations

import pytest
from stdtest_util import batch_of, flow_packets, q, read_frames, run_text, write_pcap

from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError


@pytest.fixture()
def pcap25(tmp_path):
    pkts = flow_packets(5, 5)
    return write_pcap(tmp_path / "in.pcap", pkts), [bytes(p) for p in pkts]


@pytest.mark.parametrize("cls", ["Queue", "SimpleQueue"])
def test_fifo_through_router(tmp_path, pcap25, cls):
    src, frames = pcap25
    out = tmp_path / "out.pcap"
    r = run_text(f"FromDump({q(src)}, BURST 4) -> qq :: {cls} -> ToDump({q(out)});")
    assert read_frames(out) == frames
    assert r.read_handler("qq.length") == "0"
    assert r.read_handler("qq.drops") == "0"
    assert int(r.read_handler("qq.highwater_length")) >= 4
    assert not r.find("qq").drops


def test_overflow_tail_drop_counted(tmp_path, pcap25, capfd):
    src, frames = pcap25
    out = tmp_path / "out.pcap"
    # One batch of 25 packets into a queue of 10: the last 15 are dropped.
    r = run_text(f"FromDump({q(src)}, BURST 100) -> qq :: Queue(10) -> ToDump({q(out)});")
    assert read_frames(out) == frames[:10]
    assert r.read_handler("qq.drops") == "15"
    assert r.find("qq").drops == {"queue full": 15}
    assert r.read_handler("qq.highwater_length") == "10"
    err = capfd.readouterr().err
    assert err.count("qq :: Queue: overflow") == 1  # only the first overflow is reported


def test_overflow_across_batches(tmp_path, pcap25):
    src, frames = pcap25
    r = Router.from_text("Idle -> qq :: Queue(CAPACITY 7) -> d :: Discard;")
    qq = r.find("qq")
    qq.push(0, batch_of(frames[:5]))
    qq.push(0, batch_of(frames[5:10]))  # 2 fit, 3 dropped
    qq.push(0, batch_of(frames[10:12]))  # all dropped
    assert r.read_handler("qq.length") == "7"
    assert r.read_handler("qq.drops") == "5"
    got = []
    while (b := qq.pull(0)) is not None:
        got.extend(b.to_list())
    assert got == frames[:7]
    assert r.read_handler("qq.length") == "0"
    assert qq.pull(0) is None


def test_dropped_packets_go_to_output_1(tmp_path, pcap25, capfd):
    src, frames = pcap25
    out, dropped = tmp_path / "out.pcap", tmp_path / "dropped.pcap"
    r = run_text(f"""
        FromDump({q(src)}, BURST 100) -> qq :: SimpleQueue(20) -> ToDump({q(out)});
        qq[1] -> ToDump({q(dropped)});
    """)
    assert read_frames(out) == frames[:20]
    assert read_frames(dropped) == frames[20:]
    assert r.read_handler("qq.drops") == "5"
    assert not r.find("qq").drops  # nothing freed: the packets went to output 1
    assert "qq :: SimpleQueue: overflow" in capfd.readouterr().err


def test_capacity_zero_drops_everything_silently(pcap25, capfd):
    _, frames = pcap25
    r = Router.from_text("Idle -> qq :: Queue(0) -> Discard;")
    r.find("qq").push(0, batch_of(frames))
    assert r.read_handler("qq.drops") == str(len(frames))
    assert "overflow" not in capfd.readouterr().err


def test_pull_returns_at_most_kp(pcap25):
    _, frames = pcap25
    r = Router.from_text("Idle -> qq :: Queue -> Discard;")
    r.kp = 4
    qq = r.find("qq")
    qq.push(0, batch_of(frames[:10]))
    sizes = []
    while (b := qq.pull(0)) is not None:
        sizes.append(len(b))
    assert sizes == [4, 4, 2]


def test_handlers_capacity_reset(pcap25):
    _, frames = pcap25
    r = Router.from_text("Idle -> qq :: Queue(100) -> d :: Discard;")
    qq = r.find("qq")
    qq.push(0, batch_of(frames[:6]))
    qq.push(0, batch_of(frames[6:12]))
    assert r.read_handler("qq.capacity") == "100"
    r.write_handler("qq.capacity", "8")  # keeps the first 8 packets
    assert r.read_handler("qq.capacity") == "8"
    assert r.read_handler("qq.length") == "8"
    assert qq.drops == {"capacity reduced": 4}
    assert r.read_handler("qq.highwater_length") == "12"
    r.write_handler("qq.reset_counts")
    assert r.read_handler("qq.highwater_length") == "8"
    assert r.read_handler("qq.drops") == "0"
    b = qq.pull(0)
    assert b is not None and b.to_list() == frames[:6]
    r.write_handler("qq.reset")
    assert r.read_handler("qq.length") == "0"
    assert qq.drops["queue reset"] == 2
    with pytest.raises(HandlerError):
        r.write_handler("qq.capacity", "-1")
    # the rest of the pipeline still runs: the Discard task finds the queue empty
    assert r.run(time_limit=1) == "all sources done"


def test_queue_drains_before_router_stops(tmp_path, pcap25):
    src, frames = pcap25
    r = run_text(f"FromDump({q(src)}) -> qq :: Queue -> Unqueue(3) -> c :: Counter -> Discard;")
    assert r.read_handler("c.count") == str(len(frames))
    assert r.read_handler("qq.length") == "0"


def test_config_errors():
    with pytest.raises(ConfigError, match="CAPACITY"):
        Router.from_text("Idle -> Queue(-5) -> Discard;")
    with pytest.raises(ConfigError, match="pull output 0 of a .* connected to push input"):
        # a Queue's output is pulled, its input pushed: two Queues in a row do not connect
        Router.from_text("Idle -> a :: Queue -> b :: Queue -> Discard;")
