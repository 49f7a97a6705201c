"""The cluster MAC encoding: round trips, ranges, and what is never taken for one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from routebricks.packet import clustermac as cm


@given(st.integers(0, 255), st.integers(0, cm.MAX_PORTS - 1), st.integers(0, 2**32 - 1))
def test_round_trip(server: int, port: int, nh: int) -> None:
    mac = cm.encode(server, port, nh)
    assert mac[0] & 1 == 0 and mac[0] & 2 == 2  # unicast, locally administered
    assert cm.decode(mac) == (server, port, nh)
    many = cm.encode_many(np.array([server]), np.array([port]), np.array([nh], np.uint32))
    assert bytes(many[0]) == mac


@given(st.integers(0, 255), st.integers(0, 65535))
def test_interface_macs_are_never_cluster_macs(server: int, link: int) -> None:
    mac = bytes(int(x, 16) for x in cm.interface_mac(server, link).split(":"))
    assert cm.decode(mac) is None


@given(st.binary(min_size=6, max_size=6))
def test_decode_accepts_only_locally_administered_unicast(mac: bytes) -> None:
    d = cm.decode(mac)
    if mac[0] & 3 != 2 or mac[0] == 0xFE:
        assert d is None
    else:
        assert d is not None and cm.encode(*d) == mac


def test_ranges_are_checked() -> None:
    with pytest.raises(ValueError):
        cm.encode(256, 0, 0)
    with pytest.raises(ValueError):
        cm.encode(0, 63, 0)
    with pytest.raises(ValueError):
        cm.encode(0, 0, 2**32)
    assert cm.decode(b"\x02\x00") is None


@given(st.integers(0, 255), st.one_of(st.none(), st.integers(0, cm.MAX_PATHS - 1)))
def test_source_round_trip(server: int, path: int | None) -> None:
    src = cm.source(server, path)
    assert len(src) == 6 and src[0] == cm.INTERFACE_BYTE0
    assert cm.decode_source(src) == (server, path)
    assert cm.decode(src) is None  # never taken for a cluster destination
    frame = cm.encode(server, 0, 0) + src
    field = int.from_bytes(frame[cm.PATH_OFFSET:cm.PATH_OFFSET + 2], "big")
    assert field == (0 if path is None else path + 1)


@given(st.integers(0, 255))
def test_a_mesh_frames_source_is_unchanged(server: int) -> None:
    # Without a path the source is what ClusterEncap always wrote: interface_mac(J, 0xFFFF).
    mac = cm.interface_mac(server, cm.SOURCE_LINK)
    assert cm.format_mac(cm.source(server)) == mac
    assert cm.decode_source(cm.source(server)) == (server, None)


@given(st.binary(min_size=6, max_size=6))
def test_decode_source_accepts_only_its_own_layout(mac: bytes) -> None:
    d = cm.decode_source(mac)
    if mac[0] != 0xFE or mac[4:] != b"\xff\xff":
        assert d is None
    else:
        assert d is not None and cm.source(*d) == mac


def test_source_ranges_are_checked() -> None:
    with pytest.raises(ValueError):
        cm.source(256)
    with pytest.raises(ValueError):
        cm.source(0, cm.MAX_PATHS)
    with pytest.raises(ValueError):
        cm.source(0, -1)
    assert cm.decode_source(b"\xfe") is None
