"""EtherMirror: source and destination swapped (read back by scapy), type and payload kept,
short packets counted under a declared reason, push and pull alike."""

from __future__ import annotations

import pytest
from ethtest_util import batch_of, q, read_frames, run_elements, run_text, write_pcap
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import ARP, IP, UDP, Dot1Q, Ether, Raw

from routebricks.elements.ethernet.ethermirror import EtherMirror
from routebricks.elements.io.fromdump import FromDump
from routebricks.elements.io.todump import ToDump
from routebricks.elements.standard.simplequeue import Queue
from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError


def frames() -> list[Ether]:
    out = []
    for i in range(12):
        src, dst = f"02:00:00:00:01:{i:02x}", f"0a:bb:cc:dd:ee:{255 - i:02x}"
        if i % 3 == 0:
            p = Ether(src=src, dst=dst) / IP(src="10.0.0.1", dst=f"10.0.1.{i}") / UDP(
                sport=1000 + i, dport=53) / Raw(b"q" * i)
        elif i % 3 == 1:
            p = Ether(src=src, dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=f"10.0.0.{i}")
        else:
            p = Ether(src=src, dst=dst) / Dot1Q(vlan=i) / IP() / Raw(b"v" * (3 * i))
        out.append(p)
    return out


def test_addresses_swapped_rest_kept(tmp_path):
    pkts = frames()
    src, out = write_pcap(tmp_path / "in.pcap", pkts), tmp_path / "out.pcap"
    r = run_text(f"FromDump({q(src)}, BURST 5) -> m :: EtherMirror -> ToDump({q(out)});")
    got = [Ether(f) for f in read_frames(out)]
    assert len(got) == len(pkts)
    for g, p in zip(got, pkts, strict=True):
        assert (g.src, g.dst, g.type) == (p.dst, p.src, p.type)
        assert bytes(g)[12:] == bytes(p)[12:]
    assert not r.find("m").drops


def test_mirroring_twice_is_the_identity(tmp_path):
    pkts = frames()
    src, out = write_pcap(tmp_path / "in.pcap", pkts), tmp_path / "out.pcap"
    run_text(f"FromDump({q(src)}) -> EtherMirror -> EtherMirror -> ToDump({q(out)});")
    assert read_frames(out) == [bytes(p) for p in pkts]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=14, max_size=200), min_size=1, max_size=20))
def test_any_frame(raw: list[bytes]) -> None:
    m = EtherMirror()
    m.name = "m"
    out = m.process(batch_of(raw))
    assert out.to_list() == [f[6:12] + f[0:6] + f[12:] for f in raw]


def test_short_packets_dropped_and_counted(tmp_path):
    raw = [bytes(range(14)), bytes(13), b"", bytes(range(60)), bytes(6)]
    src, out = write_pcap(tmp_path / "in.pcap", raw), tmp_path / "out.pcap"
    r = run_text(f"FromDump({q(src)}) -> m :: EtherMirror -> ToDump({q(out)});")
    mirror = bytes(range(6, 12)) + bytes(range(6))
    assert read_frames(out) == [mirror + bytes([12, 13]), mirror + bytes(range(12, 60))]
    m = r.find("m")
    assert m.drops == {"shorter than an Ethernet header": 3}
    assert set(m.drops) <= set(EtherMirror.DROPS)
    assert "3\tshorter than an Ethernet header" in r.read_handler("m.drops")


def test_python_api_pull_context(tmp_path):
    pkts = frames()
    src, out = write_pcap(tmp_path / "in.pcap", pkts), tmp_path / "out.pcap"
    fd = FromDump(str(src), BURST=4)
    fd >> Queue() >> EtherMirror() >> ToDump(str(out))
    run_elements(fd)
    assert [Ether(f).src for f in read_frames(out)] == [p.dst for p in pkts]


def test_takes_no_arguments_and_documents_itself():
    with pytest.raises(ConfigError):
        Router.from_text("Idle -> EtherMirror(00:00:00:00:00:01) -> Discard;")
    cls = get_class("EtherMirror")
    assert cls is EtherMirror and cls.GROUP == "ethernet"
    doc = cls.doc()
    for section in ("Ports:", "Arguments:", "Behaviour:", "Handlers:", "Example:",
                    "See also:"):
        assert section in doc
    assert all(reason in " ".join(doc.split()) for reason in cls.DROPS)
