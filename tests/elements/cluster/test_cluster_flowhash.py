"""DirectVLB's flow hash: the IPv4 5-tuple and nothing else (property tests on packets scapy
builds), found through the network-header annotation when it is set."""

from __future__ import annotations

import numpy as np
from clustertest_util import VLB, batch_of, cluster_frame
from hypothesis import given
from hypothesis import strategies as st
from scapy.all import ICMP, IP, TCP, UDP, Raw

from routebricks.elements.cluster.flowletkernel import flow_hashes

addrs = st.integers(1, 2**32 - 2).map(lambda v: ".".join(str((v >> s) & 255)
                                                         for s in (24, 16, 8, 0)))
ports = st.integers(0, 65535)


def hash_of(pkt: bytes) -> int:
    b = batch_of([pkt])
    return int(flow_hashes(b.pool, b.off, b.off + b.length)[0])


@given(addrs, addrs, ports, ports, st.sampled_from([TCP, UDP]),
       st.integers(1, 255), st.integers(0, 65535), st.integers(0, 255), st.binary(max_size=40))
def test_same_five_tuple_same_hash(src, dst, sport, dport, l4, ttl, ident, tos, payload):
    base = bytes(IP(src=src, dst=dst) / l4(sport=sport, dport=dport))
    other = bytes(IP(src=src, dst=dst, ttl=ttl, id=ident, tos=tos)
                  / l4(sport=sport, dport=dport) / Raw(payload))
    assert hash_of(base) == hash_of(other)


@given(addrs, addrs, ports, ports, st.sampled_from(["src", "dst", "sport", "dport", "proto"]))
def test_any_field_of_the_five_tuple_changes_it(src, dst, sport, dport, field):
    f = {"src": src, "dst": dst, "sport": sport, "dport": dport, "proto": UDP}
    a = bytes(IP(src=f["src"], dst=f["dst"]) / f["proto"](sport=f["sport"], dport=f["dport"]))
    f[field] = {"src": "0.0.0.1", "dst": "255.255.255.254", "sport": sport ^ 1,
                "dport": dport ^ 0x8000, "proto": TCP}[field]
    if f[field] == {"src": src, "dst": dst}.get(field):
        return  # the draw hit the replacement itself
    b = bytes(IP(src=f["src"], dst=f["dst"]) / f["proto"](sport=f["sport"], dport=f["dport"]))
    assert hash_of(a) != hash_of(b)


def test_ports_only_where_there_are_ports():
    # Non-first fragments and ICMP have no ports: only addresses and protocol count.
    frag = [bytes(IP(src="1.1.1.1", dst="2.2.2.2", proto=17, frag=100) / Raw(bytes([i]) * 8))
            for i in range(3)]
    assert len({hash_of(p) for p in frag}) == 1
    icmp = [bytes(IP(src="1.1.1.1", dst="2.2.2.2") / ICMP(id=i)) for i in range(3)]
    assert len({hash_of(p) for p in icmp}) == 1
    first = [bytes(IP(src="1.1.1.1", dst="2.2.2.2", flags="MF") / UDP(sport=i)) for i in range(3)]
    assert len({hash_of(p) for p in first}) == 3
    # No whole IP header: one "flow".
    assert hash_of(b"\x45" * 10) == hash_of(b"") == 0


def test_ip_header_through_network_header_annotation():
    # Two frames with 4 bytes (a VLAN tag, say) before the IP header: the same bytes at
    # offset 14, other flows behind them. With nh set, they are two flowlets.
    v = VLB(4, 0, "LINK_RATE 10Gbps")
    frames = [cluster_frame(1, sport=s)[:14] + b"\x81\x00\x00\x07"
              + cluster_frame(1, sport=s)[14:] for s in (1, 2)]
    b = batch_of(frames)
    b.anno("nh")[:] = b.off + 18
    v.vlb.push(0, b)
    assert v.read("flowlets")["new flowlets"] == 2
    b = batch_of(frames)  # without nh: offset 14, the same 4 bytes then garbage: one flow
    v.vlb.push(0, b)
    assert v.read("flowlets")["new flowlets"] == 3
    assert np.array_equal(np.sort(v.vlb.counts.sum(axis=0)), [0, 0, 0, 4])
