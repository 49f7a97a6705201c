"""IPFragmenter: RFC 791 fragments that scapy reassembles; DF packets to output 1."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from iptest_util import build, drain, header_checksum_ok, network_bytes, push
from scapy.all import IP, UDP, Ether, Raw, defragment

from routebricks.elements.ip.annotations import NEXT_MTU
from routebricks.engine.router import Router
from routebricks.errors import ConfigError
from routebricks.packet.batch import PacketBatch


def make(args: str, df_port: bool = True) -> Router:
    tail = "fr[1] -> df :: Queue -> Discard;" if df_port else ""
    return build(f"Idle -> m :: MarkIPHeader(14) -> fr :: IPFragmenter({args}) "
                 "-> out :: Queue(100000) -> Discard;" + tail)


def frame(n: int, ident: int = 1, **kw) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01") / IP(src="10.0.0.1", dst="10.0.0.2", id=ident,
                                                      **kw) / UDP(sport=5, dport=6)
                 / Raw(bytes(range(256)) * (n // 256) + bytes(n % 256)))


def ips(out: PacketBatch) -> list[bytes]:
    return [network_bytes(out, i) for i in range(len(out))]


def test_small_packets_pass_and_big_ones_fragment_in_order():
    fs = [frame(10, 1), frame(1000, 2), frame(20, 3)]
    r = make("300")
    push(r, "m", fs)
    out = drain(r, "out")
    got = ips(out)
    assert got[0] == bytes(Ether(fs[0])[IP]) and got[-1] == bytes(Ether(fs[2])[IP])
    frags = got[1:-1]
    assert len(frags) == 4 and r.find("fr").read("fragments") == "4"
    assert out.packet(1)[:14] == fs[1][:14]  # the first fragment keeps the MAC header
    offs = []
    for k, f in enumerate(frags):
        p = IP(f)
        assert len(f) <= 300 and header_checksum_ok(f) and p.len == len(f)
        assert p.id == 2 and bool(p.flags.MF) is (k < len(frags) - 1)
        if k < len(frags) - 1:
            assert (len(f) - 20) % 8 == 0
        offs.append(p.frag)
    assert offs == sorted(offs) and offs[0] == 0
    whole = defragment([IP(f) for f in frags])
    assert len(whole) == 1
    assert bytes(whole[0][UDP]) == bytes(Ether(fs[1])[UDP])


@settings(max_examples=25)
@given(st.integers(1, 3000), st.integers(68, 1500), st.booleans())
def test_reassembly_property(size, mtu, mf):
    raw = frame(size, 9, flags="MF" if mf else 0)
    r = make(str(mtu))
    push(r, "m", [raw])
    frags = ips(drain(r, "out"))
    orig = Ether(raw)[IP]
    if len(bytes(orig)) <= mtu:
        assert frags == [bytes(orig)]
        return
    data = b""
    for k, f in enumerate(frags):
        p = IP(f)
        assert len(f) <= mtu and header_checksum_ok(f)
        assert p.frag * 8 == len(data)
        last = k == len(frags) - 1
        assert bool(p.flags.MF) == (not last or mf)
        data += f[p.ihl * 4 :]
    assert data == bytes(orig)[20:]


def test_only_copied_options_repeat():
    lsrr = bytes([0x83, 7, 4, 1, 2, 3, 4])  # copy bit set
    rr = bytes([7, 7, 4]) + bytes(4)  # copy bit clear
    opts = lsrr + rr + bytes(2)
    raw = frame(600, 4, options=Raw(opts))
    r = make("200")
    push(r, "m", [raw])
    frags = ips(drain(r, "out"))
    assert frags[0][20:36] == opts
    for f in frags[1:]:
        assert (f[0] & 0xF) * 4 == 28 and f[20:27] == lsrr and f[27] == 0
        assert header_checksum_ok(f)


@pytest.mark.parametrize("with_port", [True, False])
def test_df_packets_go_to_output_1(with_port):
    fs = [frame(1000, 1, flags="DF"), frame(100, 2, flags="DF")]
    r = make("576", df_port=with_port)
    push(r, "m", fs)
    assert ips(drain(r, "out")) == [bytes(Ether(fs[1])[IP])]
    fr = r.find("fr")
    assert fr.read("drops") == "1"
    if with_port:
        df = drain(r, "df")
        assert df.to_list() == [fs[0]] and int(df.anno(NEXT_MTU)[0]) == 576
    else:
        assert dict(fr.drops) == {"DF set and packet too big": 1}


def test_honor_df_false():
    raw = frame(1000, 77, flags="DF")
    r = make("400, false")
    push(r, "m", [raw])
    frags = [IP(f) for f in ips(drain(r, "out"))]
    assert len(frags) == 3 and all(not p.flags.DF for p in frags)
    assert len({p.id for p in frags}) == 1
    assert bytes(defragment(frags)[0][UDP]) == bytes(Ether(raw)[UDP])


def test_mtu_too_small_for_header_and_errors():
    raw = frame(100, 1, options=Raw(bytes([1]) * 40))  # 60-byte header
    r = make("64")
    push(r, "m", [raw])
    assert drain(r, "df").to_list() == [raw]
    with pytest.raises(ConfigError, match="at least 8"):
        make("7")


def test_annotations_copied():
    r = build("Idle -> m :: MarkIPHeader(14) -> Paint(5) -> SetIPAddress(1.2.3.4) -> "
              "IPFragmenter(500) -> out :: Queue -> Discard;")
    push(r, "m", [frame(1400)])
    out = drain(r, "out")
    assert len(out) == 3
    assert (out.anno("paint") == 5).all() and (out.anno("dst_ip") == 0x01020304).all()
