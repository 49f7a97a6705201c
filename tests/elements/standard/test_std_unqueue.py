"""Unqueue: BURST per task run, LIMIT, ACTIVE, inputs that return large batches."""

from __future__ import annotations

import pytest
from stdtest_util import batch_of, flow_packets, q, read_frames, write_pcap

from routebricks.elements.standard.discard import Discard
from routebricks.elements.standard.idle import Idle
from routebricks.elements.standard.nullelement import PullNull
from routebricks.elements.standard.simplequeue import Queue
from routebricks.elements.standard.unqueue import Unqueue
from routebricks.engine.router import Router


def frames(n: int = 20) -> list[bytes]:
    return [bytes(p) for p in flow_packets(4, n // 4)]


def test_burst_per_run_from_queue():
    fr = frames(20)
    r = Router.from_text("Idle -> qq :: Queue -> u :: Unqueue(7) -> c :: Counter -> Discard;")
    r.initialize()
    r.find("qq").push(0, batch_of(fr))
    u = r.find("u")
    counts = []
    while u.run_task():
        counts.append(int(r.read_handler("c.count")))
    assert counts == [7, 14, 20]
    assert r.read_handler("u.count") == "20"
    assert r.read_handler("qq.length") == "0"


def test_burst_from_input_with_big_batches_keeps_order(tmp_path):
    # FromDump pulled returns 10 packets per pull; Unqueue(3) must cut them and keep the rest.
    pkts = flow_packets(5, 5)
    src, out = write_pcap(tmp_path / "in.pcap", pkts), tmp_path / "out.pcap"
    r = Router.from_text(f"""
        FromDump({q(src)}, BURST 10) -> PullNull -> u :: Unqueue(3) -> c :: Counter
            -> ToDump({q(out)});
    """)
    r.initialize()
    u = r.find("u")
    seen = []
    while u.run_task():
        seen.append(int(r.read_handler("c.count")))
    r.cleanup()
    assert seen == list(range(3, 25, 3)) + [25]
    assert read_frames(out) == [bytes(p) for p in pkts]


def test_limit_and_reset():
    fr = frames(20)
    r = Router.from_text("Idle -> qq :: Queue -> u :: Unqueue(LIMIT 12) -> c :: Counter "
                         "-> Discard;")
    r.find("qq").push(0, batch_of(fr))
    r.run(time_limit=1)
    assert r.read_handler("c.count") == "12"
    assert r.read_handler("qq.length") == "8"
    assert r.read_handler("u.limit") == "12"
    r.write_handler("u.reset")
    r.run(time_limit=1)
    assert r.read_handler("c.count") == "20"
    r.write_handler("u.limit", "-1")
    assert r.read_handler("u.limit") == "-1"


def test_active_handler():
    fr = frames(8)
    r = Router.from_text("Idle -> qq :: Queue -> u :: Unqueue(ACTIVE false) -> c :: Counter "
                         "-> Discard;")
    r.find("qq").push(0, batch_of(fr))
    r.run(time_limit=1)
    assert r.read_handler("c.count") == "0"
    assert r.read_handler("u.active") == "false"
    r.write_handler("u.active", "true")
    r.run(time_limit=1)
    assert r.read_handler("c.count") == "8"


def test_negative_burst_drains_everything():
    fr = frames(20)
    r = Router.from_text("Idle -> qq :: Queue -> u :: Unqueue(-1) -> c :: Counter -> Discard;")
    r.kp = 4  # the queue hands out 4 packets per pull
    r.initialize()
    r.find("qq").push(0, batch_of(fr))
    assert r.find("u").run_task()
    assert r.read_handler("c.count") == "20"
    r.write_handler("u.burst", "5")
    assert r.read_handler("u.burst") == "5"


def test_python_api():
    fr = frames(12)
    qq = Queue(100, name="qq")
    u = Unqueue(5, name="u")
    d = Discard(name="d")
    Idle() >> qq >> u >> d
    r = Router.from_elements(qq)
    assert [type(e).__name__ for e in r.elements.values()].count("Unqueue") == 1
    qq.push(0, batch_of(fr))
    r.run(time_limit=1)
    assert d.count == 12
    assert u.count == 12


def test_burst_zero_warns(capfd):
    Router.from_text("Idle -> Queue -> u :: Unqueue(0) -> Discard;")
    assert "BURST size 0" in capfd.readouterr().err


def test_pull_input_required():
    with pytest.raises(Exception, match="push output 0 of .* connected to pull input"):
        Router.from_text("InfiniteSource -> Unqueue -> Discard;")


def test_pullnull_between_queue_and_unqueue():
    # Unqueue cannot take exact counts through PullNull: it cuts batches itself.
    fr = frames(8)
    qq = Queue(name="qq")
    pn, u, d = PullNull(), Unqueue(3), Discard()
    Idle() >> qq >> pn >> u >> d
    r = Router.from_elements(qq)
    r.initialize()
    qq.push(0, batch_of(fr))
    sizes = []
    while u.run_task():
        sizes.append(u.count)
    assert sizes == [3, 6, 8]
    assert d.count == 8
