"""Click's abbreviated prefixes (``18.26/16``) wherever a prefix is read: route tables,
IPPrefix arguments, IPFilter ``net``."""

from __future__ import annotations

import pytest

from routebricks.engine.args import IPPrefix
from routebricks.lookup.routes import RouteError, parse_route, prefix_address


@pytest.mark.parametrize(("text", "length", "want"), [
    ("18.26", 16, "18.26.0.0"), ("2.0", 16, "2.0.0.0"), ("18.26.0", 18, "18.26.0.0"),
    ("18.26.4", 24, "18.26.4.0"), ("10", 8, None), ("18.26", 24, None),
    ("18.26.4.9", 24, "18.26.4.9"), ("18.300", 16, None), ("", 0, None),
])
def test_prefix_address_follows_click(text: str, length: int, want: str | None) -> None:
    if want is None:
        with pytest.raises(ValueError):
            prefix_address(text, length)
    else:
        import ipaddress
        assert prefix_address(text, length) == int(ipaddress.IPv4Address(want))


def test_route_tables_and_arguments_take_abbreviations() -> None:
    assert str(parse_route("18.26/16 1")) == "18.26.0.0/16 1"
    assert str(parse_route("18.26.0/18 10.0.0.1 2")) == "18.26.0.0/18 10.0.0.1 2"
    with pytest.raises(RouteError, match="bad address"):
        parse_route("18.26/24 1")  # the prefix reaches into an octet not given
    assert IPPrefix.parse("2.0/16") == (2 << 24, 16)
    with pytest.raises(ValueError):
        IPPrefix.parse("18.26/24")


def test_ipfilter_net_takes_abbreviations() -> None:
    from scapy.layers.inet import IP, UDP

    from routebricks.engine.router import Router
    from routebricks.packet.batch import PacketBatch

    r = Router.from_text("f :: IPFilter(allow dst net 18.26/16, deny all); "
                         "Idle -> f -> c :: Counter -> Discard")
    r.initialize()
    frames = [bytes(IP(src="1.1.1.1", dst=d) / UDP()) for d in ("18.26.4.9", "18.27.0.1")]
    r.elements["f"].push(0, PacketBatch.from_bytes(frames))
    assert r.elements["c"].read("count") == "1"
    r.cleanup()
