"""Packet trace (VPP's ``trace add``): the next N packets' path through the elements, with
ports, lengths, first bytes and drop reasons."""

from __future__ import annotations

import re

import pytest
from scapy.layers.inet import IP, UDP

from routebricks.engine.router import Router
from routebricks.errors import HandlerError

GOOD = bytes(IP(src="10.0.0.1", dst="10.0.0.2", ttl=3) / UDP(sport=1, dport=2))
BADSUM = bytearray(GOOD)
BADSUM[10] ^= 0xFF


def hexdata(b: bytes) -> str:
    return "\\<" + b.hex() + ">"


def traced(text: str, n: int) -> str:
    r = Router.from_text(text)
    r.write_handler("trace", str(n))
    r.run()
    return r.read_handler("trace")


def packets(text: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    cur = 0
    for line in text.splitlines()[1:]:
        m = re.match(r"packet (\d+) ", line)
        if m:
            cur = int(m.group(1))
            out[cur] = []
        else:
            out[cur].append(re.sub(r"^\s*[\d.]+ ms\s+", "", line).strip())
    return out


def test_a_packets_path_ports_bytes_and_pull_steps() -> None:
    text = traced(f"src :: InfiniteSource(DATA {hexdata(GOOD)}, LIMIT 5, BURST 5, STOP true) "
                  "-> c :: Counter -> chk :: CheckIPHeader -> q :: Queue -> Unqueue "
                  "-> dec :: DecIPTTL -> Discard", 3)
    assert text.splitlines()[0] == "trace: 3 of 3 packets"
    p = packets(text)
    assert sorted(p) == [1, 2, 3]
    head = GOOD[:20].hex()
    shown = [re.split(r"\s{2,}", s) for s in p[1]]
    assert [s[0] for s in shown] == ["c :: Counter", "chk :: CheckIPHeader",
                                     "q :: Queue", "q :: Queue", "dec :: DecIPTTL",
                                     "Discard@7 :: Discard"]
    assert [s[1] for s in shown] == ["in 0", "in 0", "in 0", "out 0", "in 0", "in 0"]
    assert all(s[2] == f"{len(GOOD)} B" for s in shown)
    assert shown[0][3] == head
    # DecIPTTL changed the TTL (byte 8) and the checksum: the next step shows it.
    after = bytes.fromhex(shown[5][3])
    assert after[8] == 2 and IP(after + GOOD[20:]).chksum == IP(bytes(IP(after + GOOD[20:]))).chksum
    assert "from src [0]" in text


def test_drops_say_where_and_why() -> None:
    text = traced(f"src :: InfiniteSource(DATA {hexdata(bytes(BADSUM))}, LIMIT 2, STOP true) "
                  "-> chk :: CheckIPHeader(VERBOSE false) -> Discard", 2)
    for steps in packets(text).values():
        assert steps[-1].split("  ")[0] == "chk :: CheckIPHeader"
        assert steps[-1].endswith("dropped: bad IP checksum")
    # Switch(-1) drops everything (Element.drop sees the batch itself).
    text = traced(f"src :: InfiniteSource(DATA {hexdata(GOOD)}, LIMIT 1, STOP true) -> "
                  "s :: Switch(-1) -> Discard", 1)
    last = packets(text)[1][-1]
    assert last.startswith("s :: Switch") and "dropped: " in last


def test_only_n_packets_and_clear_stops_tracing() -> None:
    r = Router.from_text(f"src :: InfiniteSource(DATA {hexdata(GOOD)}, LIMIT 50, BURST 8, "
                         "STOP true) -> c :: Counter -> Discard")
    r.write_handler("trace", "10")
    r.run()
    assert sorted(packets(r.read_handler("trace"))) == list(range(1, 11))
    push = r.elements["c"].push
    r.write_handler("trace", "clear")
    assert r.read_handler("trace").startswith("trace: off")
    assert r.elements["c"].push is not push  # the original push is back


@pytest.mark.parametrize("bad", ["x", "-1", "10001", "1e3", ""])
def test_bad_trace_values_are_refused(bad: str) -> None:
    r = Router.from_text("Idle -> Discard")
    with pytest.raises(HandlerError, match="trace"):
        r.write_handler("trace", bad)


def test_hotconfig_stops_a_trace() -> None:
    r = Router.from_text("Idle -> c :: Counter -> Discard")
    r.hotconfig_allowed = True
    r.write_handler("trace", "5")
    r.write_handler("hotconfig", "Idle -> c :: Counter -> Discard")
    assert r.tracer is None
