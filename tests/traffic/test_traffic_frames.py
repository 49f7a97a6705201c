"""Frame synthesis (routebricks.traffic.frames), checked with scapy as an independent parser."""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.utils import checksum

from routebricks.traffic import frames as fr
from routebricks.traffic.frames import (
    IMIX_PATTERN,
    PROBE_MAGIC,
    AddressSpec,
    FrameSpec,
    TrafficError,
    build_frames,
    flow_order,
    flow_table,
    mean_frame_size,
    parse_probes,
    parse_size,
)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    fr.warmup()


def probe(frame: bytes) -> tuple[int, int, int, int]:
    """(magic, flow, seq, send_ns) read with struct from the UDP payload start."""
    udp = Ether(frame)[UDP]
    return struct.unpack(">HIIQ", bytes(udp.payload)[: fr.PROBE_LEN])


def check_frame(frame: bytes, size: int) -> Ether:
    """Assert what every frame must be; returns the scapy packet."""
    assert len(frame) == size - 4  # sizes count the FCS, which the NIC appends
    p = Ether(frame)
    assert p.type == 0x0800
    ip = p[IP]
    assert ip.version == 4 and ip.ihl == 5 and ip.proto == 17
    assert ip.len == len(frame) - 14
    assert checksum(frame[14:34]) == 0  # header including its checksum sums to 0
    stored = ip.chksum
    del ip.chksum
    assert Ether(bytes(p))[IP].chksum == stored  # scapy computes the same value
    udp = Ether(frame)[UDP]
    assert udp.len == len(frame) - 34
    assert udp.chksum == 0
    return Ether(frame)


@pytest.mark.parametrize("size", [64, 65, 128, 594, 1518])
def test_fixed_size_frames_are_valid(size: int) -> None:
    spec = FrameSpec(
        dst="10.1.2.3",
        src_ip="10.9.9.9",
        src_mac="02:00:00:00:00:aa",
        dst_mac="02:00:00:00:00:bb",
        flows=3,
        size=size,
        sport=5000,
        dport=7000,
        ttl=17,
    )
    frames = build_frames(spec, 9, timestamp_ns=123456789)
    assert (frames.size == size).all()
    assert (frames.batch.length == size - 4).all()
    for k, f in enumerate(frames.to_list()):
        p = check_frame(f, size)
        assert p.src == "02:00:00:00:00:aa" and p.dst == "02:00:00:00:00:bb"
        assert p[IP].src == "10.9.9.9" and p[IP].dst == "10.1.2.3" and p[IP].ttl == 17
        assert p[UDP].sport == 5000 + k % 3 and p[UDP].dport == 7000
        assert probe(f) == (PROBE_MAGIC, k % 3, k // 3, 123456789)


def test_imix_sizes() -> None:
    frames = build_frames(FrameSpec(size="imix", flows=7), 1200)
    assert Counter(frames.size.tolist()) == {64: 700, 594: 400, 1518: 100}
    # Every 12 consecutive frames hold the exact mix, whatever the starting frame.
    for s in range(0, 24):
        assert sorted(frames.size[s : s + 12].tolist()) == sorted(IMIX_PATTERN)
    assert mean_frame_size("imix") == pytest.approx(4342 / 12)
    for f, size in zip(frames.to_list()[:24], frames.size[:24].tolist(), strict=True):
        check_frame(f, size)


def test_size_specs() -> None:
    assert parse_size(64) == (64,)
    assert parse_size("64, 1518") == (64, 1518)
    assert parse_size("IMIX") == IMIX_PATTERN
    for bad in (63, "0", "abc", "", "64,10"):
        with pytest.raises(TrafficError):
            parse_size(bad)


def test_flows_cycle_with_per_flow_sequences() -> None:
    spec = FrameSpec(flows=5, sport=65534, dport=100)  # 2 source ports, then dport varies
    frames = build_frames(spec, 23)
    assert frames.flow.tolist() == [k % 5 for k in range(23)]
    assert frames.seq.tolist() == [k // 5 for k in range(23)]
    tuples = set()
    for k, f in enumerate(frames.to_list()):
        p = Ether(f)
        assert probe(f)[1:3] == (k % 5, k // 5)
        tuples.add((p[IP].src, p[IP].dst, p[UDP].sport, p[UDP].dport))
    assert len(tuples) == 5
    assert sorted((s, d) for _, _, s, d in tuples) == [
        (65534, 100), (65534, 101), (65534, 102), (65535, 100), (65535, 101)
    ]  # fmt: skip


def test_random_order_and_seq_base() -> None:
    spec = FrameSpec(flows=6, order="random", seed=7)
    frames = build_frames(spec, 300, seq_base=np.arange(6) * 1000)
    flows = frames.flow.tolist()
    assert flows != [k % 6 for k in range(300)]
    for b in range(50):  # a shuffled round robin: every 6 frames visit each flow once
        assert sorted(flows[6 * b : 6 * b + 6]) == list(range(6))
    assert len({tuple(flows[6 * b : 6 * b + 6]) for b in range(50)}) > 10
    for f in range(6):
        seqs = frames.seq[frames.flow == f].tolist()
        assert seqs == list(range(1000 * f, 1000 * f + len(seqs)))
    # The order is a function of the frame index: building in chunks gives the same flows.
    assert np.array_equal(
        np.concatenate([flow_order(spec, 100, 0), flow_order(spec, 200, 100)]), frames.flow
    )


def test_destination_kinds() -> None:
    n = 4000
    k = np.arange(n)
    fixed = AddressSpec.parse("10.0.0.1").pick(k, 0, 1)
    assert (fixed == int(ipaddress.IPv4Address("10.0.0.1"))).all()
    lst = AddressSpec.parse("10.0.0.1, 10.0.0.2,10.0.0.3")
    assert lst.kind == "list" and lst.pick(k, 0, 1)[:4].tolist() == [
        int(ipaddress.IPv4Address(a)) for a in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.1")
    ]
    pre = AddressSpec.parse("10.0.0.0/8,192.168.7.0/24,172.16.0.1")
    got = [ipaddress.IPv4Address(int(a)) for a in pre.pick(k, 3, 1)]
    nets = [ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "192.168.7.0/24", "172.16.0.1/32")]
    hits = Counter(next(i for i, net in enumerate(nets) if a in net) for a in got)
    assert set(hits) == {0, 1, 2} and min(hits.values()) > n / 6  # each prefix its share
    assert len(set(got)) > 1000  # addresses spread inside the prefixes
    rnd = AddressSpec.parse("random").pick(k, 0, 1) >> 24
    assert len(set(rnd.tolist())) > 200  # first octets cover the space
    uni = AddressSpec.parse("random-unicast").pick(np.arange(20000), 0, 1) >> 24
    assert uni.min() >= 1 and uni.max() <= 223 and 127 not in set(uni.tolist())
    assert str(pre) == "10.0.0.0/8,192.168.7.0/24,172.16.0.1/32"
    for bad in ("", "10.0.0.256", "random,10.0.0.1", "10.0.0.0/33", "nonsense"):
        with pytest.raises(TrafficError):
            AddressSpec.parse(bad)


def test_random_destinations_per_flow_and_per_packet() -> None:
    per_flow = build_frames(FrameSpec(dst="random", flows=4), 40)
    dsts = [Ether(f)[IP].dst for f in per_flow.to_list()]
    assert dsts[:4] == dsts[4:8] and len(set(dsts)) == 4  # a flow keeps its destination
    table = flow_table(FrameSpec(dst="random", flows=4))
    assert [str(ipaddress.IPv4Address(int(a))) for a in table.dst] == dsts[:4]
    per_pkt = build_frames(FrameSpec(dst="10.0.0.0/8", flows=4, dst_per_packet=True), 40)
    dsts = [Ether(f)[IP].dst for f in per_pkt.to_list()]
    assert len(set(dsts)) == 40 and all(d.startswith("10.") for d in dsts)
    for f in per_pkt.to_list():
        check_frame(f, 64)


def test_parse_and_stamp_probes() -> None:
    frames = build_frames(FrameSpec(flows=2), 6)
    b = frames.batch
    u32 = np.ones(6, np.uint32)
    fr.stamp(b.pool, frames.probe_pos, frames.seq, u32 * 2, 3, 987654321012)
    ok, flow, seq, ts = parse_probes(b.pool, b.off, b.length)
    assert ok.all() and flow.tolist() == [0, 1, 0, 1, 0, 1]
    assert seq.tolist() == [6, 6, 7, 7, 8, 8]  # seq + pass 3 * 2 frames per flow per pass
    assert (ts == 987654321012).all()
    for f in b.to_list():
        check_frame(f, 64)  # stamping does not touch the IP header
    # Non-probe frames are not probes; a probe behind IP options is found.
    arp = bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP())
    payload = struct.pack(">HIIQ", PROBE_MAGIC, 77, 5, 42)
    opts = bytes(
        Ether() / IP(src="1.2.3.4", dst="5.6.7.8", options=b"\x01\x01\x01\x00") / UDP() / payload
    )
    short = bytes(Ether() / IP() / UDP() / payload[:10])
    other_magic = bytes(Ether() / IP() / UDP() / struct.pack(">HIIQ", 0x1234, 1, 2, 3))
    batch = [arp.ljust(60, b"\0"), opts, short.ljust(60, b"\0"), other_magic]
    from routebricks.packet.batch import PacketBatch

    pb = PacketBatch.from_bytes(batch)
    ok, flow, seq, ts = parse_probes(pb.pool, pb.off, pb.length)
    assert ok.tolist() == [False, True, False, False]
    assert (flow[1], seq[1], ts[1]) == (77, 5, 42)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": 63},
        {"dst_mac": "02:00:00:00:00"},
        {"src_mac": "zz:00:00:00:00:01"},
        {"dst": "300.0.0.1"},
        {"flows": 0},
        {"flows": 3, "sport": 65535, "dport": 65535},
        {"order": "sorted"},
        {"ttl": 256},
    ],
)
def test_bad_specs(kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(TrafficError):
        FrameSpec(**kwargs)


_dst = st.one_of(
    st.just("198.19.0.1"),
    st.just("10.0.0.1,10.0.0.2,10.0.0.3"),
    st.just("10.0.0.0/8,192.168.0.0/24"),
    st.just("random"),
    st.just("random-unicast"),
)
_size = st.one_of(st.integers(64, 1518), st.just("imix"), st.just("64,1518,300"))


@given(
    flows=st.integers(1, 40),
    size=_size,
    dst=_dst,
    order=st.sampled_from(["cycle", "random"]),
    per_packet=st.booleans(),
    n=st.integers(0, 40),
    start=st.integers(0, 10_000),
    seed=st.integers(0, 2**32 - 1),
)
def test_frames_property(
    flows: int,
    size: int | str,
    dst: str,
    order: str,
    per_packet: bool,
    n: int,
    start: int,
    seed: int,
) -> None:
    spec = FrameSpec(
        dst=dst,
        flows=flows,
        size=size,
        order=order,  # type: ignore[arg-type]
        dst_per_packet=per_packet,
        seed=seed,
    )
    frames = build_frames(spec, n, start=start)
    assert len(frames) == n
    pattern = parse_size(size)
    table = flow_table(spec)
    expect_seq: dict[int, int] = {}
    for k, f in enumerate(frames.to_list()):
        want_size = pattern[(start + k) % len(pattern)]
        p = check_frame(f, want_size)
        magic, flow, seq, _ = probe(f)
        assert magic == PROBE_MAGIC and 0 <= flow < flows
        assert flow == int(frames.flow[k])
        if order == "cycle":
            assert flow == (start + k) % flows
        assert seq == expect_seq.get(flow, 0)  # per flow 0, 1, 2, ... within one build
        expect_seq[flow] = seq + 1
        assert p[UDP].sport == int(table.sport[flow]) and p[UDP].dport == int(table.dport[flow])
        assert int(ipaddress.IPv4Address(p[IP].src)) == int(table.src[flow])
        if not per_packet:
            assert int(ipaddress.IPv4Address(p[IP].dst)) == int(table.dst[flow])
    # Every complete run of `flows` frames (starting at a multiple of flows) visits each flow once.
    first = -(-start // flows) * flows
    for b0 in range(first, start + n - flows + 1, flows):
        got = frames.flow[b0 - start : b0 - start + flows]
        assert sorted(got.tolist()) == list(range(flows))
    b = frames.batch
    ok, flow_col, seq_col, _ = parse_probes(b.pool, b.off, b.length)
    assert ok.all()
    assert np.array_equal(flow_col, frames.flow) and np.array_equal(seq_col, frames.seq)
