"""Paint and PaintSwitch: set the paint annotation, switch on it, broadcast on 255."""

from __future__ import annotations

import pytest
from scapy.all import ARP, IP, Ether
from stdtest_util import MAC_A, batch_of, flow_packets, q, read_frames, run_text, write_pcap

from routebricks.elements.standard.discard import Discard
from routebricks.elements.standard.idle import Idle
from routebricks.elements.standard.paint import Paint
from routebricks.elements.standard.simplequeue import Queue
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError


@pytest.fixture()
def mixed(tmp_path):
    ip = flow_packets(3, 3)
    arp = [Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=f"10.1.1.{i}") for i in range(4)]
    pkts = []
    for i, p in enumerate(ip):
        pkts.append(p)
        if i < len(arp):
            pkts.append(arp[i])
    return write_pcap(tmp_path / "in.pcap", pkts), [bytes(p) for p in pkts]


def test_paint_then_switch(tmp_path, mixed):
    src, frames = mixed
    o0, o1 = tmp_path / "o0.pcap", tmp_path / "o1.pcap"
    r = run_text(f"""
        FromDump({q(src)}, BURST 3) -> c :: Classifier(12/0800, -);
        c[0] -> Paint(1) -> ps :: PaintSwitch;
        c[1] -> Paint(COLOR 0) -> ps;
        ps[0] -> ToDump({q(o0)});
        ps[1] -> ToDump({q(o1)});
    """)
    ip = [f for f in frames if IP in Ether(f)]
    other = [f for f in frames if IP not in Ether(f)]
    assert ip and other
    assert read_frames(o1) == ip
    assert read_frames(o0) == other
    assert not r.find("ps").drops


def test_unpainted_packets_go_to_output_0():
    r = Router.from_text("Idle -> ps :: PaintSwitch; ps[0] -> q0 :: Queue -> Discard;"
                         "ps[1] -> q1 :: Queue -> Discard;")
    r.find("ps").push(0, batch_of([b"\0" * 20] * 3))
    assert r.read_handler("q0.length") == "3"
    assert r.read_handler("q1.length") == "0"


def test_out_of_range_dropped_and_counted():
    r = Router.from_text("Idle -> ps :: PaintSwitch; ps[0] -> q0 :: Queue -> Discard;"
                         "ps[1] -> q1 :: Queue -> Discard;")
    b = batch_of([bytes([i]) * 20 for i in range(6)])
    b.anno("paint")[:] = [0, 1, 2, 7, 1, 254]
    r.find("ps").push(0, b)
    assert r.find("ps").drops == {"no such output": 3}
    assert [p[0] for p in r.find("q0").pull(0).to_list()] == [0]
    assert [p[0] for p in r.find("q1").pull(0).to_list()] == [1, 4]
    assert "3\tno such output" in r.read_handler("ps.drops")


def test_255_broadcasts_independent_copies(tmp_path):
    pkts = flow_packets(2, 3)
    src = write_pcap(tmp_path / "in.pcap", pkts)
    frames = [bytes(p) for p in pkts]
    outs = [tmp_path / f"o{i}.pcap" for i in range(3)]
    run_text(f"""
        FromDump({q(src)}) -> Paint(255) -> ps :: PaintSwitch;
        ps[0] -> EtherRewrite(00:00:00:00:00:01, 00:00:00:00:00:02) -> ToDump({q(outs[0])});
        ps[1] -> ToDump({q(outs[1])});
        ps[2] -> Strip(14) -> ToDump({q(outs[2])}, ENCAP IP);
    """)
    assert [Ether(f).src for f in read_frames(outs[0])] == ["00:00:00:00:00:01"] * len(frames)
    assert read_frames(outs[1]) == frames
    assert [bytes(IP(f)) for f in read_frames(outs[2])] == [f[14:] for f in frames]


def test_mixed_broadcast_and_unicast():
    r = Router.from_text("Idle -> ps :: PaintSwitch; ps[0] -> q0 :: Queue -> Discard;"
                         "ps[1] -> q1 :: Queue -> Discard;")
    b = batch_of([bytes([i]) * 20 for i in range(5)])
    b.anno("paint")[:] = [1, 255, 0, 255, 1]
    r.find("ps").push(0, b)
    b0, b1 = r.find("q0").pull(0), r.find("q1").pull(0)
    assert [p[0] for p in b0.to_list()] == [1, 2, 3]
    assert [p[0] for p in b1.to_list()] == [0, 1, 3, 4]
    assert b0.pool is not b1.pool


def test_other_annotation(tmp_path):
    r = Router.from_text("""
        Idle -> Paint(2, ANNO USER) -> Paint(0) -> ps :: PaintSwitch(USER);
        ps[0] -> q0 :: Queue -> Discard; ps[1] -> q1 :: Queue -> Discard;
        ps[2] -> q2 :: Queue -> Discard;
    """)
    first = next(e for e in r.elements.values() if isinstance(e, Paint))
    first.push(0, batch_of([b"x" * 30] * 4))
    assert r.read_handler("q2.length") == "4"


def test_color_handler_and_python_api():
    p = Paint(3, name="p")
    Idle() >> p >> Queue(name="q0") >> Discard()
    r = Router.from_elements(p)
    assert r.read_handler("p.color") == "3"
    r.write_handler("p.color", "200")
    assert r.read_handler("p.color") == "200"
    r.find("p").push(0, batch_of([b"y" * 20] * 2))
    assert r.find("q0").pull(0).anno("paint").tolist() == [200, 200]
    with pytest.raises(HandlerError):
        r.write_handler("p.color", "256")


def test_config_errors():
    with pytest.raises(ConfigError, match="COLOR"):
        Router.from_text("Idle -> Paint -> Discard;")
    with pytest.raises(ConfigError, match="COLOR"):
        Router.from_text("Idle -> Paint(300) -> Discard;")
    with pytest.raises(ConfigError, match="push output"):
        Router.from_text("Idle -> q :: Queue -> PaintSwitch -> Discard;")
