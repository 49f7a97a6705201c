"""AddressInfo: names for addresses in other elements' arguments, scoped by compound
element, with Click's :ip/:ipnet/:eth/:bcast/:gw suffixes."""

from __future__ import annotations

import pytest

from routebricks.engine.router import Router
from routebricks.errors import ConfigError

NAMES = "AddressInfo(mauer 10.0.0.1 00:50:ba:85:84:a9, boojum 10.0.0.1/24, net0 10.9.0.0/16);"


def test_names_stand_for_each_kind_of_address() -> None:
    r = Router.from_text(NAMES + """
        Idle -> e :: EtherEncap(0x0800, mauer, mauer:eth) -> Discard;
        Idle -> a :: ARPResponder(mauer) -> Discard;             // IP and Ethernet at once
        Idle -> b :: ARPResponder(boojum 02:00:00:00:00:01) -> Discard;
        Idle -> n :: ARPResponder(boojum:ipnet 02:00:00:00:00:02) -> Discard;
        Idle -> ck :: CheckIPHeader(BADSRC net0:bcast boojum:gw) -> Discard;
    """)
    assert r.elements["e"].read("src") == "00-50-BA-85-84-A9"
    assert r.elements["a"].read("table") == "10.0.0.1/32 00-50-BA-85-84-A9\n"
    assert r.elements["b"].read("table") == "10.0.0.1/32 02-00-00-00-00-01\n"  # the address
    assert r.elements["n"].read("table") == "10.0.0.0/24 02-00-00-00-00-02\n"  # the prefix
    assert list(r.elements["ck"]._bad) == [(10 << 24) | 1, (10 << 24) | (9 << 16) | 0xFFFF]


def test_names_are_local_to_their_compound_and_may_come_later() -> None:
    ok = Router.from_text("Idle -> c :: { input -> CheckIPHeader(BADSRC inner) -> output; "
                          "AddressInfo(inner 1.2.3.4) } -> Discard; AddressInfo(late 5.6.7.8);"
                          "Idle -> CheckIPHeader(BADSRC late) -> Discard")
    assert ok.elements["c/CheckIPHeader@1"]._bad.tolist() == [0x01020304]
    with pytest.raises(ConfigError, match="'inner' is not an IPv4 address"):
        Router.from_text("c :: { AddressInfo(inner 1.2.3.4); Idle -> Discard }; "
                         "Idle -> CheckIPHeader(BADSRC inner) -> Discard")


@pytest.mark.parametrize("bad", ["AddressInfo(x)", "AddressInfo(x 300.1.1.1)",
                                 "AddressInfo(10 1.2.3.4)", "AddressInfo(x 1.2.3.4/40)"])
def test_bad_entries_are_configuration_errors(bad: str) -> None:
    with pytest.raises(ConfigError, match="AddressInfo"):
        Router.from_text(bad + "; Idle -> Discard")


def test_names_handler() -> None:
    r = Router.from_text(NAMES + " Idle -> Discard")
    text = r.elements["AddressInfo@1"].read("names")
    assert "mauer\teth\t00:50:ba:85:84:a9" in text and "boojum\tipnet\t10.0.0.0/24" in text
