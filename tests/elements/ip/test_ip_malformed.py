"""A malformed-packet corpus through the forwarding path and its ICMP error paths.

Nothing raises, every dropped packet is counted under a reason a person can read, and the
counts add up: every packet that enters an element leaves it on an output or as a drop.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from iptest_util import build, drain, drop_lines, push, q, read_frames, run_text, write_pcap
from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, IPv6, Raw

from routebricks.engine.router import Router

ME = "18.26.4.24"

PATH = f"""
Idle -> cl :: Classifier(12/0800, -);
cl[1] -> nonip :: Queue(100000) -> Discard;
cl[0] -> Strip(14) -> k0 :: Counter
      -> c :: CheckIPHeader(INTERFACES 18.26.4.24/24) -> k1 :: Counter
      -> db :: DropBroadcasts -> k2 :: Counter
      -> gio :: IPGWOptions({ME}) -> k3 :: Counter
      -> FixIPSrc({ME})
      -> dt :: DecIPTTL -> k4 :: Counter
      -> fr :: IPFragmenter(576)
      -> out :: Queue(100000) -> Discard;
c[1] -> bad :: Queue(100000) -> Discard;
gio[1] -> cgio :: Counter -> egio :: ICMPError({ME}, parameterproblem, RATE 0)
      -> qgio :: Queue(100000) -> Discard;
dt[1] -> cdt :: Counter -> edt :: ICMPError({ME}, timeexceeded, BADADDRS 18.26.4.255, RATE 0)
      -> qdt :: Queue(100000) -> Discard;
fr[1] -> cfr :: Counter -> efr :: ICMPError({ME}, unreachable, needfrag, RATE 0)
      -> qfr :: Queue(100000) -> Discard;
"""

S, D = "10.0.0.1", "10.9.9.9"


def eth(payload: bytes, etype: int = 0x0800) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=etype)) + payload


def ip(**kw) -> bytes:
    opts = kw.pop("options", None)
    l4 = kw.pop("l4", UDP(sport=1, dport=2) / Raw(b"m" * 16))
    base = {"src": S, "dst": D, "ttl": 64}
    base.update(kw)
    p = IP(**base, options=Raw(opts)) if opts else IP(**base)
    return bytes(p / l4)


def with_byte(raw: bytes, at: int, value: int) -> bytes:
    return raw[:at] + bytes([value]) + raw[at + 1 :]


def with_len(raw: bytes, n: int) -> bytes:
    return raw[:2] + n.to_bytes(2, "big") + raw[4:]


def corpus() -> list[bytes]:
    good = ip()
    return [
        eth(good),
        eth(good) + b"\0" * 20,  # Ethernet padding: trimmed
        b"",
        eth(b"")[:10],
        eth(b""),  # just an Ethernet header
        eth(good[:10]),  # truncated IP header
        eth(good[:30]),  # truncated below the IP length
        eth(with_byte(good, 0, 0x65)),  # version 6 in an IPv4 frame
        eth(with_byte(good, 0, 0x43)),  # IHL 3
        eth(with_byte(good, 0, 0x4F)),  # IHL 15 > total length
        eth(with_len(good, 1500)),  # total length above the frame
        eth(with_len(good, 12)),  # total length below the header
        eth(with_byte(good, 11, good[11] ^ 0xFF)),  # bad checksum
        eth(ip(src="127.0.0.1")),
        eth(ip(src="18.26.4.255")),  # subnet broadcast source
        eth(ip(options=bytes([7, 11, 4]) + bytes(9))),  # record route: processed
        eth(ip(options=bytes([1, 1, 1, 1]))),  # NOPs
        eth(ip(options=bytes([7, 11, 2]) + bytes(9))),  # bad RR pointer: parameter problem
        eth(ip(options=bytes([68, 2, 0, 0]))),  # bad timestamp
        eth(ip(ttl=0)),
        eth(ip(ttl=1)),
        eth(ip(ttl=1, frag=20)),  # non-first fragment: no ICMP error
        eth(ip(ttl=1, flags="MF")),  # first fragment: answered
        eth(ip(ttl=1, l4=ICMP(type=3, code=1) / Raw(b"e" * 28))),  # no error about errors
        eth(ip(ttl=1, dst="255.255.255.255")),  # no error to broadcasts
        eth(ip(ttl=1, dst="18.26.4.255")),
        eth(ip(flags="DF", l4=TCP() / Raw(b"b" * 1400))),  # needfrag
        eth(ip(l4=TCP() / Raw(b"f" * 1400))),  # fragmented
        eth(ip(ttl=2, l4=UDP() / Raw(b"t" * 2000))),
        eth(bytes(ARP()), 0x0806),
        eth(bytes(IPv6()), 0x86DD),
        eth(b"\x00\x01" + bytes(50), 0x8100),
        bytes(Ether() / IP(src=S, dst=D) / UDP())[:14] + bytes(26),  # zero IP header
    ]


def account(r: Router, n_in: int, fragmented: int) -> dict[str, int]:
    """Check that counts add up at every element; return the packets at each end point.
    ``fragmented``: how many packets IPFragmenter cuts up (it sends more than it gets)."""
    seen = {n: len(drain(r, n)) for n in ("nonip", "out", "bad", "qgio", "qdt", "qfr")}
    for e in r.elements.values():
        for why, k in e.drops.items():
            assert k > 0 and why and not why.startswith("output"), (e.name, why)

    def count(name: str) -> int:
        return int(r.find(name).read("count"))

    def drops(name: str) -> int:
        return sum(r.find(name).drops.values())

    assert n_in == count("k0") + seen["nonip"] + drops("cl")
    assert count("k0") == count("k1") + seen["bad"] + drops("c")
    assert count("k1") == count("k2") + drops("db")
    assert count("k2") == count("k3") + count("cgio") + drops("gio")
    assert count("k3") == count("k4") + count("cdt") + drops("dt")
    frags = int(r.find("fr").read("fragments"))
    assert count("k4") - count("cfr") - drops("fr") - fragmented + frags == seen["out"]
    # each ICMPError consumes what it is given: an error out, or a counted drop
    for cnt, err, qname in (("cgio", "egio", "qgio"), ("cdt", "edt", "qdt"),
                            ("cfr", "efr", "qfr")):
        assert count(cnt) == seen[qname] + drops(err)
    return seen


def test_corpus_never_raises_and_counts_add_up():
    frames = corpus()
    r = build(PATH)
    push(r, "cl", frames)
    seen = account(r, len(frames), fragmented=2)
    assert seen["nonip"] == 5  # ARP, IPv6, VLAN, and the two frames too short to classify
    details = drop_lines(r.find("c").read("drop_details"))
    assert details == {"tiny packet": 2, "bad IP version": 2, "bad IP header length": 1,
                       "bad IP length": 4, "bad IP checksum": 1, "bad source address": 2}
    assert seen["qgio"] == 2 and seen["qfr"] == 1
    assert seen["qdt"] == 3  # TTL 0, TTL 1, first fragment
    assert dict(r.find("edt").drops) == {"non-first fragment": 1, "ICMP error message": 1,
                                        "non-unicast destination": 2}


def test_corpus_errors_are_well_formed():
    r = build(PATH)
    frames = corpus()
    push(r, "cl", frames)
    for qname, typ in (("qgio", 12), ("qdt", 11), ("qfr", 3)):
        for raw in drain(r, qname).to_list():
            p = IP(raw)
            assert p[ICMP].type == typ and p.src == ME and p.dst == S
            assert IP(bytes(p)).chksum == p.chksum


def test_corpus_straight_into_checkipheader():
    """Without the Classifier, non-IP frames meet CheckIPHeader(14) and fail its checks."""
    r = build("Idle -> c :: CheckIPHeader(14) -> dt :: DecIPTTL -> out :: Queue(100000) -> "
              f"Discard; dt[1] -> e :: ICMPError({ME}, timeexceeded, RATE 0) -> err :: "
              "Queue(100000) -> Discard;")
    frames = corpus()
    push(r, "c", frames)
    out, err = len(drain(r, "out")), len(drain(r, "err"))
    c, dt, e = r.find("c"), r.find("dt"), r.find("e")
    failures = int(c.read("drops"))
    assert failures == sum(c.drops.values())  # no output 1: every failure dropped
    assert out + int(dt.read("drops")) + failures == len(frames)
    assert err + sum(e.drops.values()) == int(dt.read("drops"))


def test_corpus_through_pcaps(tmp_path):
    frames = corpus()
    src = write_pcap(tmp_path / "in.pcap", frames)
    fwd, errs = tmp_path / "fwd.pcap", tmp_path / "err.pcap"
    text = (PATH.replace("Idle -> cl", f"FromDump({q(src)}) -> cl")
            .replace("-> out :: Queue(100000) -> Discard", f"-> ToDump({q(fwd)}, ENCAP IP)"))
    for name in ("qgio", "qdt", "qfr"):
        text = text.replace(f"-> {name} :: Queue(100000) -> Discard", "-> errs")
    text += f"errs :: ToDump({q(errs)}, ENCAP IP);"
    r = run_text(text)
    got = read_frames(fwd)
    assert got and all(IP(g).ttl == 63 or IP(g).ttl == 1 for g in got)
    for g in got:
        p = IP(g)
        assert p.len == len(g) <= 576
        chk = p.chksum
        del p.chksum
        assert IP(bytes(p)).chksum == chk
    assert len(read_frames(errs)) == 6
    assert int(r.find("c").read("drops")) == 12


@settings(max_examples=40)
@given(st.lists(st.one_of(
    st.binary(max_size=90),
    st.builds(lambda b, at, v: eth(with_byte(b, at % len(b), v)),
              st.sampled_from([ip(), ip(ttl=1), ip(options=bytes([7, 7, 4]) + bytes(5))]),
              st.integers(0, 200), st.integers(0, 255)),
), max_size=25))
def test_random_frames_never_raise(frames):
    r = build(PATH)
    push(r, "cl", frames)
    account(r, len(frames), fragmented=0)
