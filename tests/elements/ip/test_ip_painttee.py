"""PaintTee: every packet on output 0, an independent copy of COLOR ones on output 1."""

from __future__ import annotations

import pytest
from iptest_util import batch_of, build, drain, push
from scapy.all import IP, UDP

from routebricks.errors import ConfigError

CONF = ("Idle -> p :: PaintTee({args}) -> out :: Queue -> Discard;"
        "p[1] -> copies :: Queue -> Discard;")


def test_copies_painted_packets():
    r = build(CONF.format(args="2"))
    raws = [bytes(IP(id=i) / UDP()) for i in range(5)]
    b = batch_of(raws)
    b.anno("paint")[:] = [1, 2, 2, 0, 2]
    push(r, "p", b)
    out, copies = drain(r, "out"), drain(r, "copies")
    assert out.to_list() == raws
    assert copies.to_list() == [raws[1], raws[2], raws[4]]
    assert copies.pool is not out.pool  # copies never share bytes with the originals
    assert (copies.anno("paint") == 2).all()


def test_color_handler_anno_and_errors():
    r = build(CONF.format(args="COLOR 7, ANNO user"))
    p = r.find("p")
    assert p.read("color") == "7"
    p.write("color", "3")
    b = batch_of([b"a" * 20, b"b" * 20])
    b.anno("user")[:] = [3, 7]
    push(r, "p", b)
    assert drain(r, "copies").to_list() == [b"a" * 20]
    with pytest.raises(ConfigError):
        build(CONF.format(args="256"))
    with pytest.raises(ConfigError, match="output 1 is not connected"):
        build("Idle -> PaintTee(1) -> Discard;")
