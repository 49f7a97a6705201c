"""ARPPrint (Click's arpprint.hh/.cc): one line per ARP packet in Click's text — who-has,
reply, RARP and InARP, trailer and non-Ethernet hardware, truncated packets, ETHER, label and
timestamp."""

from __future__ import annotations

import re

import pytest
from elementtest import batch_of, q, run_text, write_pcap
from scapy.all import ARP, Ether

from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError

MAC1, MAC2 = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
CLICK1, CLICK2 = "02-00-00-00-00-0A", "02-00-00-00-00-0B"


def lines(conf: str, frames, capsys, *, nh: int | None = 14, ts=None) -> list[str]:
    r = Router.from_text(f"Idle -> p :: ARPPrint({conf}) -> Discard")
    b = batch_of([bytes(f) for f in frames])
    if nh is not None:
        b.anno("nh")[:] = b.off + nh
    if ts is not None:
        b.anno("timestamp")[:] = ts
    r.find("p").process(b)
    return capsys.readouterr().err.splitlines()


def arp(**kw) -> bytes:
    return bytes(Ether(src=MAC1, dst="ff:ff:ff:ff:ff:ff") / ARP(
        hwsrc=MAC1, psrc="10.0.0.1", pdst="10.0.0.2", **kw))


def raw_arp(hrd: int, pro: int, pln: int, op: int) -> bytes:
    """An ARP frame scapy would not build (it fits the lengths to the types)."""
    body = (hrd.to_bytes(2, "big") + pro.to_bytes(2, "big") + bytes([6, pln])
            + op.to_bytes(2, "big") + bytes.fromhex(MAC1.replace(":", "")) + bytes([10, 0, 0, 1])
            + bytes(6) + bytes([10, 0, 0, 2]))
    return bytes(Ether(src=MAC1, dst="ff:ff:ff:ff:ff:ff", type=0x0806)) + body


def test_docs():
    doc = get_class("ARPPrint").doc()
    heads = re.findall(r"^(Ports|Arguments|Behaviour|Handlers|Example|See also):", doc, re.M)
    assert heads == ["Ports", "Arguments", "Behaviour", "Handlers", "Example", "See also"]


@pytest.mark.parametrize("frame, text", [
    (arp(op=1), "arp who-has 10.0.0.2 tell 10.0.0.1"),
    (arp(op=1, hwdst=MAC2), f"arp who-has 10.0.0.2 ({CLICK2}) tell 10.0.0.1"),
    (arp(op=2, hwdst=MAC2), f"arp reply 10.0.0.1 is-at {CLICK1}"),
    (arp(op=3, hwdst=MAC2), f"rarp who-is {CLICK2} tell {CLICK1}"),
    (arp(op=4, hwdst=MAC2), f"rarp reply {CLICK2} at 10.0.0.2"),
    (arp(op=8, hwdst=MAC2), f"invarp who-is {CLICK2} tell {CLICK1}"),
    (arp(op=9, hwdst=MAC2), f"invarp reply {CLICK2} at 10.0.0.2"),
    (arp(op=77), "arp-#77"),
    (raw_arp(1, 0x0800, 16, 1), "arp-#1 for proto #2048 (16) hardware #1 (6)"),
    (raw_arp(1, 0x1000, 4, 1), "trailer-arp who-has 10.0.0.2 tell 10.0.0.1"),
    (raw_arp(6, 0x0800, 4, 2), f"arp reply 10.0.0.1 is-at {CLICK1}hardware #6"),
    (raw_arp(1, 0x86DD, 4, 1), "arp-#1 for proto #34525 (4) hardware #1 (6)"),
])
def test_click_lines(frame, text, capsys):
    assert lines("TIMESTAMP false", [frame], capsys) == [text]


def test_truncated_and_short(capsys):
    f = arp(op=1)
    got = lines("TIMESTAMP false", [f[14:41], f[14:15], b""], capsys, nh=None)
    assert got == ["truncated-arp (27)", "truncated-arp (1)", "truncated-arp (0)"]
    got = lines("TIMESTAMP false", [f[:41]], capsys)
    assert got == ["truncated-arp (27)"]


def test_label_timestamp_and_ether(capsys):
    got = lines("lbl, ETHER true", [arp(op=1)], capsys, ts=1_000_000_001_000_001_000)
    assert got == [f"lbl: 1000000001.000001: {CLICK1} > FF-FF-FF-FF-FF-FF: "
                   "arp who-has 10.0.0.2 tell 10.0.0.1"]
    # Without a network header there is no room for an Ethernet header before the ARP one.
    got = lines("ETHER true, TIMESTAMP false", [arp(op=1)[14:]], capsys, nh=None)
    assert got == ["arp who-has 10.0.0.2 tell 10.0.0.1"]


def test_in_a_running_router_with_outfile(tmp_path, capsys):
    pcap = write_pcap(tmp_path / "in.pcap", [arp(op=1), arp(op=2)])
    out = tmp_path / "arp.txt"
    r = run_text(f"FromDump({q(pcap)}) -> Strip(14) -> p :: ARPPrint(a, TIMESTAMP false, "
                 f"OUTFILE {q(out)}) -> Discard;")
    assert out.read_text().splitlines() == [
        "a: arp who-has 10.0.0.2 tell 10.0.0.1", f"a: arp reply 10.0.0.1 is-at {CLICK1}"]
    assert capsys.readouterr().err == ""
    p = r.find("p")
    assert p.read("active") == "true"
    p.write("active", "0")
    assert p.read("active") == "false"


def test_inactive_prints_nothing(capsys):
    assert lines("ACTIVE false", [arp(op=1)], capsys) == []


@pytest.mark.parametrize("conf, words", [
    ("ETHER maybe", "ETHER"), ("TAG x", "unknown keyword"), ("a, b", "too many arguments")])
def test_bad_arguments(conf, words):
    with pytest.raises(ConfigError, match=words):
        Router.from_text(f"Idle -> ARPPrint({conf}) -> Discard")
