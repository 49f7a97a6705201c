"""Idle: never sends, frees what is pushed to it, pulls return nothing, any number of ports."""

from __future__ import annotations

from stdtest_util import batch_of, flow_packets, q, read_frames, run_text, write_pcap

from routebricks.engine.router import Router


def test_idle_feeding_queue_lets_router_stop(tmp_path):
    out = tmp_path / "out.pcap"
    r = Router.from_text(f"Idle -> qq :: Queue -> ToDump({q(out)});")
    assert r.run(time_limit=5) == "all sources done"
    r.cleanup()
    assert r.elapsed < 2
    assert read_frames(out) == []
    assert not any(getattr(e, "IS_SOURCE", False) for e in r.elements.values())


def test_pushed_packets_are_counted_drops(tmp_path):
    pkts = flow_packets(2, 3)
    src = write_pcap(tmp_path / "in.pcap", pkts)
    ip = tmp_path / "ip.pcap"
    r = run_text(f"""
        FromDump({q(src)}) -> c :: Classifier(23/06, -);  // TCP to the file, rest to Idle
        c[0] -> ToDump({q(ip)});
        c[1] -> i :: Idle;
    """)
    assert len(read_frames(ip)) == 3
    assert r.find("i").drops == {"pushed to Idle": 3}


def test_many_ports():
    r = Router.from_text("""
        i :: Idle;
        i[0] -> q0 :: Queue -> Discard;
        i[1] -> q1 :: Queue -> Discard;
        Idle -> [0] i; Idle -> [1] i; Idle -> [2] i;
    """)
    i = r.find("i")
    assert (i.ninputs, i.noutputs) == (3, 2)
    i.push(2, batch_of([b"z" * 20]))
    assert i.pull(0) is None
    r.run(time_limit=1)
    assert r.read_handler("q0.length") == r.read_handler("q1.length") == "0"
    assert i.drops == {"pushed to Idle": 1}


def test_idle_as_pull_input():
    r = Router.from_text("Idle -> d :: Discard;")  # unconstrained agnostic ports push
    assert r.find("d").input_modes == ["h"]
    r = Router.from_text("Idle -> PullNull -> d :: Discard;")
    assert r.find("d").input_modes == ["l"]
    assert r.run(time_limit=1) == "all sources done"
    assert r.read_handler("d.count") == "0"
