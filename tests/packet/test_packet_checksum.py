"""Internet checksums: full (checked against scapy) and RFC 1624 incremental updates."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP

from routebricks.packet.batch import PacketBatch
from routebricks.packet.checksum import incremental_update, inet_checksum, inet_checksum_at

ip_headers = st.builds(
    lambda ttl, proto, src, dst, ident, tos, opts: bytes(
        IP(ttl=ttl, proto=proto, src=src, dst=dst, id=ident, tos=tos,
           options=b"\x01" * opts)),
    st.integers(0, 255), st.integers(0, 255), st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=4).map(str), st.integers(0, 0xFFFF), st.integers(0, 255),
    st.sampled_from([0, 4, 8, 40]),
)


@given(st.lists(ip_headers, min_size=1, max_size=20))
def test_full_checksum_verifies_scapy_headers(headers: list[bytes]) -> None:
    b = PacketBatch.from_bytes(headers)
    hlen = np.array([(h[0] & 0xF) * 4 for h in headers])
    assert (inet_checksum_at(b.pool, b.off, hlen) == 0).all()
    # zero the field and recompute: must equal what scapy stored
    stored = b.u16(10)
    b.set_u16(10, 0)
    assert (inet_checksum_at(b.pool, b.off, hlen) == stored).all()


@given(st.binary(min_size=1, max_size=100))
def test_single_checksum_matches_batch_kernel(data: bytes) -> None:
    b = PacketBatch.from_bytes([data])
    assert inet_checksum(data) == int(inet_checksum_at(b.pool, b.off, len(data))[0])


@given(st.lists(ip_headers, min_size=1, max_size=20), st.integers(0, 9),
       st.integers(0, 0xFFFF))
def test_incremental_update_equals_recomputation(headers: list[bytes], word: int,
                                                 new: int) -> None:
    if word == 5:  # the checksum field itself
        word = 4
    b = PacketBatch.from_bytes(headers)
    hlen = np.array([(h[0] & 0xF) * 4 for h in headers])
    old_word = b.u16(2 * word)
    new_sum = incremental_update(b.u16(10), old_word, np.full(len(b), new))
    b.set_u16(2 * word, new)
    b.set_u16(10, new_sum)
    # RFC 1624's form can give 0xFFFF where recomputation gives 0 (both verify)
    assert (inet_checksum_at(b.pool, b.off, hlen) == 0).all()
    for raw in b.to_list():
        assert IP(raw).chksum == IP(bytes(IP(raw[:20] if raw[0] == 0x45 else raw))).chksum
