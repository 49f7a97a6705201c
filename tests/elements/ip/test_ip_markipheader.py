"""MarkIPHeader: sets the network-header annotation, checks nothing."""

from __future__ import annotations

from iptest_util import build, drain, push
from scapy.all import IP, UDP, Ether

from routebricks.packet.batch import PacketBatch


def test_marks_at_offset_without_checking():
    r = build("Idle -> m :: MarkIPHeader(14) -> out :: Queue -> Discard;")
    frames = [bytes(Ether() / IP() / UDP()), b"\x01\x02"]  # even garbage is marked
    push(r, "m", frames)
    out = drain(r, "out")
    assert out.to_list() == frames
    assert (out.anno("nh") == out.off + 14).all()
    assert "dst_ip" not in out.annos  # Click's MarkIPHeader sets no destination


def test_default_offset_zero_then_dec_ttl_uses_it():
    r = build("Idle -> m :: MarkIPHeader -> DecIPTTL -> out :: Queue -> Discard;")
    raw = bytes(IP(ttl=7) / UDP())
    b = PacketBatch.from_bytes([raw])
    push(r, "m", b)
    out = drain(r, "out")
    assert IP(out.packet(0)).ttl == 6
    assert int(out.anno("nh")[0]) == int(out.off[0])
