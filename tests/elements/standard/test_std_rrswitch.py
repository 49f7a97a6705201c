"""RoundRobinSwitch: packet i goes to output i mod n, across batch boundaries."""

from __future__ import annotations

from stdtest_util import batch_of, flow_packets, q, read_frames, run_elements, run_text, write_pcap

from routebricks.elements.io.fromdump import FromDump
from routebricks.elements.io.todump import ToDump
from routebricks.elements.standard.rrswitch import RoundRobinSwitch
from routebricks.engine.router import Router


def test_round_robin_continues_across_batches(tmp_path):
    pkts = flow_packets(5, 4)  # 20 packets, sent in batches of 4 to 3 outputs
    src = write_pcap(tmp_path / "in.pcap", pkts)
    frames = [bytes(p) for p in pkts]
    outs = [tmp_path / f"o{i}.pcap" for i in range(3)]
    run_text(f"FromDump({q(src)}, BURST 4) -> rr :: RoundRobinSwitch;\n"
             + "\n".join(f"rr[{i}] -> ToDump({q(o)});" for i, o in enumerate(outs)))
    for i, o in enumerate(outs):
        assert read_frames(o) == frames[i::3]


def test_python_api_and_single_packet_batches(tmp_path):
    pkts = flow_packets(7, 1)
    src = write_pcap(tmp_path / "in.pcap", pkts)
    frames = [bytes(p) for p in pkts]
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    fd, rr = FromDump(str(src), BURST=1), RoundRobinSwitch()
    fd >> rr
    rr[0] >> ToDump(str(a))
    rr[1] >> ToDump(str(b))
    run_elements(fd)
    assert read_frames(a) == frames[0::2]
    assert read_frames(b) == frames[1::2]


def test_reset_handler():
    r = Router.from_text("Idle -> rr :: RoundRobinSwitch; rr[0] -> q0 :: Queue -> Discard;"
                         "rr[1] -> q1 :: Queue -> Discard;")
    rr = r.find("rr")
    rr.push(0, batch_of([b"a" * 20]))  # output 0; next is 1
    r.write_handler("rr.reset")
    rr.push(0, batch_of([b"b" * 20, b"c" * 20, b"d" * 20]))
    assert [p[:1] for p in r.find("q0").pull(0).to_list()] == [b"a"]
    assert [p[:1] for p in r.find("q0").pull(0).to_list()] == [b"b", b"d"]
    assert [p[:1] for p in r.find("q1").pull(0).to_list()] == [b"c"]
