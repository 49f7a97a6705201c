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
