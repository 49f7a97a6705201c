"""UDPIPEncap: headers read back by scapy (and tshark) with addresses, ports, lengths and
both checksums recomputed by them, over odd and even payload sizes up to IPv4's limit;
DST_ANNO, CHECKSUM false, the 0xFFFF checksum, too-long packets, handlers, errors."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from elementtest import drain, drop_lines, ip_checksum_ok, write_pcap
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP

from routebricks.elements.ip.udpipencap import UDPIPEncap
from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError
from routebricks.packet.batch import PacketBatch

SRC, DST = "18.26.4.24", "140.247.60.147"
SIZES = [0, 1, 2, 3, 7, 8, 9, 17, 100, 1471, 1472, 1473, 9001, 65506, 65507]
PATTERN = bytes(range(256)) * 256


def payload(n: int, salt: int = 0) -> bytes:
    return PATTERN[salt % 256 : salt % 256 + n]


def router(conf: str) -> Router:
    r = Router.from_text(f"Idle -> e :: UDPIPEncap({conf}) -> q :: Queue(100000) -> Discard")
    r.initialize()
    return r


def encap_batch(r: Router, frames: list[bytes], dst_anno: list[int] | None = None,
                headroom: int = 0) -> PacketBatch:
    b = PacketBatch.from_bytes(frames, headroom=headroom)  # no room: UDPIPEncap makes it
    if dst_anno is not None:
        b.anno("dst_ip")[:] = dst_anno
    r.elements["e"].push(0, b)
    return drain(r, "q")


def encap(conf: str, frames: list[bytes], dst_anno: list[int] | None = None) -> list[bytes]:
    r = router(conf)
    try:
        return encap_batch(r, frames, dst_anno).to_list()
    finally:
        r.cleanup()


def check(raw: bytes, inner: bytes, *, src: str = SRC, dst: str = DST, sport: int = 1234,
          dport: int = 5678, ident: int | None = None, checksum: bool = True) -> None:
    """scapy as the oracle: every field, and both checksums recomputed by scapy."""
    ip = IP(raw)
    assert (ip.version, ip.ihl, ip.tos, ip.ttl, ip.proto) == (4, 5, 0, 250, 17)
    assert (int(ip.flags), ip.frag) == (0, 0)
    assert (ip.src, ip.dst) == (src, dst)
    assert ip.len == len(raw) == len(inner) + 28
    if ident is not None:
        assert ip.id == ident
    assert ip_checksum_ok(raw)
    udp = ip[UDP]
    assert (udp.sport, udp.dport, udp.len) == (sport, dport, len(inner) + 8)
    assert raw[28:] == inner
    if not checksum:
        assert udp.chksum == 0
        return
    stored = udp.chksum
    again = IP(raw)
    del again.chksum
    del again[UDP].chksum
    assert IP(bytes(again))[UDP].chksum == stored  # scapy computes the same checksum
    assert stored != 0


@pytest.mark.parametrize("size", SIZES)
def test_scapy_reads_headers_and_checksums(size: int) -> None:
    inner = payload(size, size)
    (raw,) = encap(f"{SRC}, 1234, {DST}, 5678", [inner])
    check(raw, inner, ident=0)


def test_one_batch_of_every_size() -> None:
    inners = [payload(n, k) for k, n in enumerate(SIZES)]
    got = encap(f"{SRC}, 1234, {DST}, 5678, true", inners)
    assert len(got) == len(inners)
    for k, (raw, inner) in enumerate(zip(got, inners, strict=True)):
        check(raw, inner, ident=k)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=600),
                          st.integers(0, 65507).map(lambda n: payload(n, n))),
                min_size=1, max_size=6),
       st.integers(0, 65535), st.integers(0, 65535), st.booleans())
def test_property_any_payload(inners: list[bytes], sport: int, dport: int,
                              checksum: bool) -> None:
    got = encap(f"{SRC}, {sport}, {DST}, {dport}, CHECKSUM {str(checksum).lower()}", inners)
    assert len(got) == len(inners)
    for k, (raw, inner) in enumerate(zip(got, inners, strict=True)):
        check(raw, inner, sport=sport, dport=dport, ident=k, checksum=checksum)


def test_tshark_validates_both_checksums(tmp_path) -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("needs tshark (Debian's tshark package)")
    r = Router.from_text(f"Idle -> u :: UDPIPEncap({SRC}, 4000, {DST}, 4001) -> "
                         "e :: EtherEncap(0x0800, 02:00:00:00:00:01, 02:00:00:00:00:02) "
                         "-> q :: Queue(100) -> Discard")
    r.initialize()
    sizes = [0, 1, 2, 3, 99, 100, 1000, 1473]
    r.find("u").push(0, PacketBatch.from_bytes([payload(n, n) for n in sizes]))
    frames = drain(r, "q").to_list()
    r.cleanup()
    pcap = write_pcap(tmp_path / "udp.pcap", frames)
    fields = ["ip.src", "ip.dst", "ip.len", "udp.srcport", "udp.dstport", "udp.length",
              "ip.checksum.status", "udp.checksum.status"]
    cmd = [tshark, "-r", str(pcap), "-T", "fields", "-E", "separator=,",
           "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
           "-d", "udp.port==4001,data"]
    for f in fields:
        cmd += ["-e", f]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = [line.split(",") for line in res.stdout.splitlines() if line.strip()]
    assert len(rows) == len(sizes)
    for row, n in zip(rows, sizes, strict=True):
        assert row == [SRC, DST, str(n + 28), "4000", "4001", str(n + 8), "1", "1"]  # 1: good


def test_dst_anno_per_packet() -> None:
    dsts = [0x0A000001, 0xC0A80102, 0x7F000001, 0xFFFFFFFF]
    inners = [payload(n, n) for n in (5, 6, 0, 333)]
    r = router(f"{SRC}, 1234, DST_ANNO, 5678")
    out = encap_batch(r, inners, dsts, headroom=64)
    r.cleanup()
    assert list(out.anno("dst_ip")) == dsts
    for k, inner in enumerate(inners):
        raw = out.packet(k)
        check(raw, inner, dst=str(IP(raw).dst), ident=k)
        assert IP(raw).dst == ".".join(str(b) for b in dsts[k].to_bytes(4, "big"))


def test_annotations_and_ids_across_batches() -> None:
    r = router(f"{SRC}, 1234, {DST}, 5678")
    first = encap_batch(r, [b"a", b"bb"])
    second = encap_batch(r, [b"ccc"])
    r.cleanup()
    assert [IP(p).id for p in first.to_list() + second.to_list()] == [0, 1, 2]
    assert list(first.anno("nh")) == list(first.off)  # the new header is the network header
    assert set(first.anno("dst_ip")) == {0x8CF73C93}


def test_id_wraps_at_16_bits() -> None:
    r = router(f"{SRC}, 1234, {DST}, 5678")
    r.find("e")._next_id = 0xFFFF
    out = encap_batch(r, [b"x", b"y"])
    r.cleanup()
    assert [IP(p).id for p in out.to_list()] == [0xFFFF, 0]


def test_a_zero_checksum_is_sent_as_ffff() -> None:
    # The checksum of a 2-byte zero payload, as payload, makes the sum all ones: the
    # checksum computes to 0, which RFC 768 sends as 0xFFFF (0 means "none").
    (raw,) = encap(f"{SRC}, 1234, {DST}, 5678", [b"\0\0"])
    c0 = IP(raw)[UDP].chksum
    inner = c0.to_bytes(2, "big")
    (raw,) = encap(f"{SRC}, 1234, {DST}, 5678", [inner])
    assert IP(raw)[UDP].chksum == 0xFFFF
    check(raw, inner)


def test_checksum_false() -> None:
    (raw,) = encap(f"{SRC}, 1234, {DST}, 5678, false", [b"hello"])
    check(raw, b"hello", checksum=False)
    (raw,) = encap(f"{SRC}, 1234, {DST}, 5678, CHECKSUM false", [b"hello!"])
    check(raw, b"hello!", checksum=False)


def test_too_long_packets_dropped_and_counted() -> None:
    r = router(f"{SRC}, 1234, {DST}, 5678")
    inners = [payload(65507), bytes(65508), b"ok", bytes(65535)]
    out = encap_batch(r, inners, headroom=64).to_list()
    assert len(out) == 2
    check(out[0], inners[0], ident=0)
    check(out[1], b"ok", ident=1)
    assert drop_lines(r.read_handler("e.drops")) == {"too long for IPv4": 2}
    assert set(r.find("e").drops) <= set(UDPIPEncap.DROPS)
    assert encap_batch(r, [bytes(70000)]).to_list() == []  # a batch of only those
    r.cleanup()


def test_handlers_read_and_write() -> None:
    r = Router.from_text("AddressInfo(me 10.1.1.1, you 10.2.2.2/24); "
                         "Idle -> e :: UDPIPEncap(me:ip, domain, you, 4000) -> q :: Queue "
                         "-> Discard")
    r.initialize()
    assert [r.read_handler(f"e.{h}") for h in ("src", "sport", "dst", "dport")] == [
        "10.1.1.1", "53", "10.2.2.2", "4000"]
    r.write_handler("e.src", "192.168.0.1")
    r.write_handler("e.sport", "ntp")
    r.write_handler("e.dst", "me")  # AddressInfo names work in writes too
    r.write_handler("e.dport", "65535")
    assert [r.read_handler(f"e.{h}") for h in ("src", "sport", "dst", "dport")] == [
        "192.168.0.1", "123", "10.1.1.1", "65535"]
    out = encap_batch(r, [b"after"])
    check(out.packet(0), b"after", src="192.168.0.1", dst="10.1.1.1", sport=123,
          dport=65535)
    r.write_handler("e.dst", "DST_ANNO")
    assert r.read_handler("e.dst") == "DST_ANNO"
    out = encap_batch(r, [b"anno"], [0x01020304])
    check(out.packet(0), b"anno", src="192.168.0.1", dst="1.2.3.4", sport=123, dport=65535)
    for h, v in (("sport", "65536"), ("dport", "nope"), ("src", "1.2.3"), ("dst", "x")):
        with pytest.raises(HandlerError):
            r.write_handler(f"e.{h}", v)
    assert r.read_handler("e.dst") == "DST_ANNO"  # a bad write changes nothing
    r.cleanup()


@pytest.mark.parametrize(("conf", "says"), [
    (f"{SRC}, 1234, {DST}", "missing required argument DPORT"),
    (f"{SRC}, 70000, {DST}, 1", "bad value '70000' for SPORT"),
    (f"{SRC}, 1, {DST}, -1", "for DPORT"),
    (f"nowhere, 1, {DST}, 1", "for SRC"),
    (f"{SRC}, 1, nowhere, 1", "bad value 'nowhere' for DST"),
    (f"{SRC}, 1, {DST}, 1, maybe", "for CHECKSUM"),
])
def test_bad_arguments(conf: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        Router.from_text(f"Idle -> UDPIPEncap({conf}) -> Discard")


def test_documents_itself() -> None:
    cls = get_class("UDPIPEncap")
    assert cls is UDPIPEncap and cls.GROUP == "ip"
    doc = " ".join(cls.doc().split())
    assert all(reason in doc for reason in cls.DROPS)
    assert {"src", "sport", "dst", "dport"} <= set(cls.HANDLERS)
    assert all(cls.HANDLERS[h].read and cls.HANDLERS[h].write
               for h in ("src", "sport", "dst", "dport"))
