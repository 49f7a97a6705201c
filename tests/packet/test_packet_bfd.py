"""BFD control packets, their framing, and the session state machine (routebricks.packet.bfd,
routebricks.packet.bfdsession).

Packets are checked against scapy's BFD dissector (scapy.contrib.bfd) and the reception
rules of RFC 5880 §6.8.6 written out again here as a predicate; the state machine is driven
with explicit time, packet by packet.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.all import IP, UDP, Ether
from scapy.contrib.bfd import BFD as ScapyBFD
from scapy.utils import checksum as scapy_checksum

from routebricks.packet.bfd import (
    BFD_PORT,
    BadPacket,
    ControlPacket,
    Diag,
    State,
    build_frame,
    decode,
    diag_text,
    parse_frame,
)
from routebricks.packet.bfdsession import SLOW_TX_US, Actions, Session

U32 = st.integers(0, 2**32 - 1)
NONZERO_U32 = st.integers(1, 2**32 - 1)
LOCAL, PEER = 0xA9FE0101, 0xA9FE0102  # 169.254.1.1, 169.254.1.2
MAC_A, MAC_B = bytes.fromhex("fe0000000001"), bytes.fromhex("fe0000010001")


@st.composite
def valid_packets(draw: st.DrawFn) -> ControlPacket:
    """Any control packet that passes every packet-level check of §6.8.6."""
    state = draw(st.sampled_from(list(State)))
    your = draw(U32 if state in (State.DOWN, State.ADMIN_DOWN) else NONZERO_U32)
    poll = draw(st.booleans())
    return ControlPacket(
        state=state, diag=draw(st.integers(0, 31)), my_discr=draw(NONZERO_U32), your_discr=your,
        detect_mult=draw(st.integers(1, 255)), desired_min_tx=draw(U32),
        required_min_rx=draw(U32), required_min_echo_rx=draw(U32), poll=poll,
        final=draw(st.booleans()) and not poll, cpi=draw(st.booleans()),
        demand=draw(st.booleans()))


# ---------------------------------------------------------------------- encode / decode
@given(valid_packets())
def test_encode_decode_round_trip(p: ControlPacket) -> None:
    data = p.encode()
    assert len(data) == 24
    assert decode(data) == p


@given(valid_packets())
def test_scapy_reads_what_we_encode(p: ControlPacket) -> None:
    s = ScapyBFD(p.encode())
    assert (s.version, s.diag, s.sta, s.detect_mult, s.len) == (1, p.diag, int(p.state),
                                                              p.detect_mult, 24)
    assert (s.my_discriminator, s.your_discriminator) == (p.my_discr, p.your_discr)
    assert (s.min_tx_interval, s.min_rx_interval, s.echo_rx_interval) == (
        p.desired_min_tx, p.required_min_rx, p.required_min_echo_rx)
    flags = (s.flags.P, s.flags.F, s.flags.C, s.flags.A, s.flags.D, s.flags.M)
    assert flags == (p.poll, p.final, p.cpi, False, p.demand, False)


@given(valid_packets())
def test_we_read_what_scapy_encodes(p: ControlPacket) -> None:
    flags = "".join(c for c, on in (("P", p.poll), ("F", p.final), ("C", p.cpi),
                                    ("D", p.demand)) if on)
    s = ScapyBFD(diag=p.diag, sta=int(p.state), flags=flags, detect_mult=p.detect_mult,
                 my_discriminator=p.my_discr, your_discriminator=p.your_discr,
                 min_tx_interval=p.desired_min_tx, min_rx_interval=p.required_min_rx,
                 echo_rx_interval=p.required_min_echo_rx)
    assert decode(bytes(s)) == p


def rfc_verdict(data: bytes) -> str | None:
    """RFC 5880 §6.8.6, the packet-level rules, written out independently: the reason the
    packet is discarded, or None if it is taken."""
    if len(data) < 24:
        return "bad length"
    vers = data[0] >> 5
    a_bit = data[1] & 0x04
    length = data[3]
    if vers != 1:
        return "bad version"
    if length < (26 if a_bit else 24) or length > len(data):
        return "bad length"
    if data[2] == 0:
        return "bad detect mult"
    if data[1] & 0x01:
        return "multipoint"
    my, your = struct.unpack_from("!II", data, 4)
    if my == 0:
        return "zero my discriminator"
    if your == 0 and data[1] >> 6 not in (0, 1):
        return "zero your discriminator"
    return None


# Byte strings close to valid ones, so that each rule is hit often: a valid packet with a
# few bytes of the mandatory section overwritten, and a random tail.
@st.composite
def near_packets(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(valid_packets()).encode())
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.sampled_from([0, 1, 1, 2, 3, 3, 4, 7, 8, 11]))
        data[i] = draw(st.sampled_from([0, 1, 0x20, 0x21, 0x24, 0x25, 0x40, 0xC0, 0xC5, 0xFF,
                                        23, 24, 25, 26, 40]))
    data += draw(st.binary(max_size=20))
    return bytes(data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data)


@given(near_packets())
def test_reception_checks_follow_rfc_5880_6_8_6(data: bytes) -> None:
    want = rfc_verdict(data)
    if want is None:
        p = decode(data)
        assert p.version == 1 and p.detect_mult and p.my_discr and not p.multipoint
    else:
        with pytest.raises(BadPacket) as e:
            decode(data)
        assert e.value.reason == want


@pytest.mark.parametrize("mutate, reason", [
    (lambda b: b.__setitem__(0, (2 << 5) | (b[0] & 0x1F)), "bad version"),
    (lambda b: b.__setitem__(3, 23), "bad length"),
    (lambda b: b.__setitem__(3, 25), "bad length"),  # beyond the 24-byte payload
    (lambda b: (b.__setitem__(1, b[1] | 0x04), b.__setitem__(3, 24)), "bad length"),  # A: 26
    (lambda b: b.__setitem__(2, 0), "bad detect mult"),
    (lambda b: b.__setitem__(1, b[1] | 0x01), "multipoint"),
    (lambda b: b.__setitem__(slice(4, 8), bytes(4)), "zero my discriminator"),
    (lambda b: b.__setitem__(slice(8, 12), bytes(4)), "zero your discriminator"),
])
def test_each_reception_check(mutate, reason: str) -> None:
    data = bytearray(ControlPacket(state=State.UP, my_discr=7, your_discr=9).encode())
    decode(bytes(data))  # the unmutated packet is fine
    mutate(data)
    with pytest.raises(BadPacket) as e:
        decode(bytes(data))
    assert e.value.reason == reason


def test_zero_your_discriminator_is_fine_while_down() -> None:
    for state in (State.DOWN, State.ADMIN_DOWN):
        assert decode(ControlPacket(state=state, my_discr=1).encode()).your_discr == 0


def test_encode_refuses_fields_out_of_range() -> None:
    with pytest.raises(ValueError, match="diag"):
        ControlPacket(diag=32, my_discr=1).encode()
    with pytest.raises(ValueError, match="my_discr"):
        ControlPacket(my_discr=2**32).encode()


def test_diagnostic_words() -> None:
    assert diag_text(1) == "control detection time expired"
    assert diag_text(3) == "neighbor signaled session down"
    assert diag_text(0) == "no diagnostic" and diag_text(30) == "diagnostic 30"
    assert Diag(7).text == "administratively down"


# ---------------------------------------------------------------------- RFC 5881 framing
FRAME_ARGS = st.tuples(valid_packets(), st.integers(49152, 65535), st.integers(0, 0xFFFF))


@given(FRAME_ARGS)
def test_frames_are_what_rfc_5881_says_by_scapy(args: tuple[ControlPacket, int, int]) -> None:
    p, sport, ip_id = args
    frame = build_frame(MAC_A, MAC_B, LOCAL, PEER, sport, p.encode(), ip_id)
    e = Ether(frame)
    assert (e.dst, e.src, e.type) == ("fe:00:00:01:00:01", "fe:00:00:00:00:01", 0x0800)
    ip, udp = e[IP], e[UDP]
    assert (ip.src, ip.dst, ip.ttl, ip.proto, ip.id, ip.tos) == (
        "169.254.1.1", "169.254.1.2", 255, 17, ip_id, 0xC0)
    assert (udp.sport, udp.dport, udp.len) == (sport, BFD_PORT, 32)
    assert scapy_checksum(bytes(ip)[:20]) == 0
    stored = udp.chksum
    del ip.chksum, udp.chksum
    assert Ether(bytes(e))[UDP].chksum == stored  # scapy computes the same UDP checksum
    assert e[ScapyBFD].my_discriminator == p.my_discr
    assert parse_frame(frame, PEER, LOCAL) == (p, sport)  # as the peer reads it


def scapy_frame(ttl: int = 255, src: str = "169.254.1.2", dst: str = "169.254.1.1",
                dport: int = BFD_PORT, **bfd: object) -> bytes:
    b = ScapyBFD(**{"my_discriminator": 5, "your_discriminator": 0, "sta": 1, **bfd})
    return bytes(Ether(dst="fe:00:00:00:00:01", src="fe:00:00:01:00:01")
                 / IP(src=src, dst=dst, ttl=ttl) / UDP(sport=49999, dport=dport) / b)


@given(st.integers(0, 254))
def test_gtsm_only_ttl_255_is_taken(ttl: int) -> None:
    with pytest.raises(BadPacket) as e:
        parse_frame(scapy_frame(ttl=ttl), LOCAL, PEER)
    assert e.value.reason == "bad TTL"
    assert parse_frame(scapy_frame(), LOCAL, PEER)[0].my_discr == 5


def corrupt(frame: bytes, at: int, value: int) -> bytes:
    b = bytearray(frame)
    b[at] = value
    return bytes(b)


@pytest.mark.parametrize("frame, reason", [
    (bytes(Ether() / IP(src="169.254.1.2", dst="169.254.1.1", ttl=255)
           / UDP(sport=1, dport=3785) / bytes(24)), "not BFD"),
    (bytes(Ether(type=0x0806) / bytes(40)), "not BFD"),
    (bytes(Ether() / IP(src="169.254.1.2", dst="169.254.1.1", proto=6, ttl=255)
           / bytes(40)), "not BFD"),
    (bytes(Ether() / IP(src="169.254.1.2", dst="169.254.1.1", ttl=255, flags="MF")
           / UDP(sport=1, dport=3784) / bytes(24)), "not BFD"),
    (bytes(Ether())[:10], "not BFD"),
    (scapy_frame(src="169.254.1.3"), "wrong address"),
    (scapy_frame(dst="169.254.1.9"), "wrong address"),
    (corrupt(scapy_frame(), 24, 0x12), "bad IP header"),  # IP checksum
    (corrupt(scapy_frame(), 14, 0x65), "bad IP header"),  # version 6
    (corrupt(scapy_frame(), 41, 0x00), "bad UDP header"),  # UDP checksum
    (corrupt(scapy_frame(), 39, 0x40), "bad UDP header"),  # UDP length beyond the packet
    (scapy_frame(version=2), "bad version"),
    (scapy_frame(detect_mult=0), "bad detect mult"),
])
def test_frame_checks(frame: bytes, reason: str) -> None:
    with pytest.raises(BadPacket) as e:
        parse_frame(frame, LOCAL, PEER)
    assert e.value.reason == reason


def test_udp_checksum_zero_means_none() -> None:
    frame = bytearray(scapy_frame())
    frame[40:42] = b"\0\0"
    assert parse_frame(bytes(frame), LOCAL, PEER)[0].state is State.DOWN


# ---------------------------------------------------------------------- the session
def session(discr: int = 1, interval_ms: int = 100, mult: int = 3, seed: int = 0) -> Session:
    us = interval_ms * 1000
    return Session(discr, detect_mult=mult, desired_min_tx=us, required_min_rx=us,
                   rng=random.Random(seed))


class Link:
    """Two sessions wired back to back, driven with explicit time: packets cross in
    ``delay`` seconds unless the direction is cut."""

    def __init__(self, a: Session, b: Session, delay: float = 0.001) -> None:
        self.s = {"a": a, "b": b}
        self.delay = delay
        self.cut: set[str] = set()  # senders whose packets are lost
        self.flight: list[tuple[float, str, ControlPacket]] = []
        self.now = 0.0
        self.log: list[tuple[float, str, State, State]] = []  # (time, who, old, new)
        self.sent: dict[str, list[tuple[float, ControlPacket]]] = {"a": [], "b": []}

    def take(self, who: str, acts: Actions) -> None:
        for c in acts.changes:
            self.log.append((self.now, who, c.old, c.new))
        for p in acts.send:
            self.sent[who].append((self.now, p))
            if who not in self.cut:
                self.flight.append((self.now + self.delay, "b" if who == "a" else "a", p))

    def start(self) -> None:
        for who, s in self.s.items():
            self.take(who, s.start(self.now))

    def run_until(self, end: float) -> None:
        while True:
            deadlines = [(s.next_deadline(), w) for w, s in self.s.items()]
            nxt = min([d for d, _ in deadlines] + [t for t, _, _ in self.flight] + [end])
            if nxt >= end and not any(t <= end for t, _, _ in self.flight):
                self.now = end
                return
            self.now = nxt
            for t, to, p in sorted(self.flight, key=lambda f: f[0]):
                if t <= self.now:
                    self.flight.remove((t, to, p))
                    self.take(to, self.s[to].receive(p, self.now))
            for w, s in self.s.items():
                if s.next_deadline() <= self.now:
                    self.take(w, s.tick(self.now))


def test_three_way_handshake_comes_up_in_a_few_packet_times() -> None:
    a, b = session(1), session(2)
    link = Link(a, b)
    link.start()
    link.run_until(0.1)
    assert a.state is State.UP and b.state is State.UP
    # Down -> Init -> Up on one side, Down -> Up on the other (it heard Init first)
    paths = {w: [new for _, who, _, new in link.log if who == w] for w in "ab"}
    assert State.UP in paths["a"] and State.UP in paths["b"]
    assert max(t for t, *_ in link.log) < 0.01  # a few one-way delays, not a slow period
    assert a.remote_discr == 2 and b.remote_discr == 1 and a.local_diag == 0


def test_slow_rate_while_not_up_and_interval_while_up() -> None:
    a = session(1)
    acts = a.start(0.0)
    assert [p.state for p in acts.send] == [State.DOWN]
    assert acts.send[0].desired_min_tx == SLOW_TX_US  # §6.8.3: at least 1 s while not Up
    times = [0.0]
    for _ in range(20):
        now = a.next_deadline()
        times.append(now)
        assert len(a.tick(now).send) == 1
    gaps = [t2 - t1 for t1, t2 in zip(times, times[1:], strict=False)]
    assert all(0.75 <= g <= 1.0 for g in gaps)  # jittered down by 0-25% (§6.8.7)
    assert len({round(g, 6) for g in gaps}) > 10  # really jittered
    b = session(2)
    link = Link(a, b)
    link.now = times[-1]
    link.take("b", b.start(link.now))
    link.run_until(link.now + 5)
    sent = [t for t, p in link.sent["a"] if t > link.now - 3]
    gaps = [t2 - t1 for t1, t2 in zip(sent, sent[1:], strict=False)]
    assert gaps and all(0.075 - 1e-9 <= g <= 0.1 + 1e-9 for g in gaps)


def test_detect_mult_one_keeps_75_to_90_percent() -> None:
    a = session(1, mult=1)
    a.start(0.0)
    now = 0.0
    for _ in range(50):
        nxt = a.next_deadline()
        assert 0.75 - 1e-9 <= nxt - now <= 0.9 + 1e-9
        now = nxt
        a.tick(now)


def test_detection_timeout_takes_the_session_down() -> None:
    a, b = session(1), session(2)
    link = Link(a, b)
    link.start()
    link.run_until(1.0)
    assert a.state is State.UP and a.detect_time == 300_000
    link.cut.add("b")  # a hears nothing from now on
    cut_at = link.now
    link.run_until(cut_at + 0.41)
    assert a.state is State.DOWN and a.local_diag == Diag.CONTROL_DETECTION_TIME_EXPIRED
    went_down = [t for t, who, _, new in link.log if who == "a" and new is State.DOWN][-1]
    last_heard = max(t for t, p in link.sent["b"] if t < cut_at) + link.delay
    assert went_down - last_heard == pytest.approx(0.3, abs=1e-6)  # not before, not after
    # the Down packet went out at once, with the diagnostic; b heard it and went Down too
    assert [p for t, p in link.sent["a"] if t == went_down][-1].diag == 1
    assert b.state is State.DOWN and b.local_diag == Diag.NEIGHBOR_SIGNALED_SESSION_DOWN
    link.run_until(link.now + 1.0)
    assert a.remote_discr == 0  # forgotten after a detection time of silence (§6.8.1)


def test_detection_time_uses_the_peers_multiplier_and_rate() -> None:
    a = session(1)
    a.start(0.0)
    a.receive(ControlPacket(state=State.DOWN, my_discr=9, detect_mult=5,
                            desired_min_tx=200_000, required_min_rx=100_000), 0.0)
    assert a.detect_time == 5 * 200_000
    assert a.detect_deadline == pytest.approx(1.0)


def test_neighbor_signaled_down_and_admin_down() -> None:
    for remote in (State.DOWN, State.ADMIN_DOWN):
        a, b = session(1), session(2)
        link = Link(a, b)
        link.start()
        link.run_until(0.5)
        acts = a.receive(ControlPacket(state=remote, my_discr=2, your_discr=1), link.now)
        assert a.state is State.DOWN and a.local_diag == Diag.NEIGHBOR_SIGNALED_SESSION_DOWN
        assert [(c.old, c.new) for c in acts.changes] == [(State.UP, State.DOWN)]
        assert acts.send and acts.send[0].state is State.DOWN  # told at once
        assert acts.send[0].desired_min_tx == SLOW_TX_US  # back to the slow rate


def test_down_ignores_up_and_init_moves_on_init_or_up() -> None:
    a = session(1)
    a.start(0.0)
    acts = a.receive(ControlPacket(state=State.UP, my_discr=2, your_discr=1), 0.1)
    assert a.state is State.DOWN and not acts.changes and not acts.send
    a.receive(ControlPacket(state=State.DOWN, my_discr=2), 0.2)
    assert a.state is State.INIT
    a.receive(ControlPacket(state=State.UP, my_discr=2, your_discr=1), 0.3)
    assert a.state is State.UP


def test_admin_down_holds_the_session_and_up_restarts_it() -> None:
    a, b = session(1), session(2)
    link = Link(a, b)
    link.start()
    link.run_until(0.5)
    link.take("a", a.admin_down(link.now))
    assert a.state is State.ADMIN_DOWN and a.local_diag == Diag.ADMINISTRATIVELY_DOWN
    assert link.sent["a"][-1][1].state is State.ADMIN_DOWN
    link.run_until(3.0)
    assert b.state is State.DOWN and b.local_diag == Diag.NEIGHBOR_SIGNALED_SESSION_DOWN
    assert a.state is State.ADMIN_DOWN  # b's Down packets are discarded
    admin_sent = [t for t, p in link.sent["a"] if p.state is State.ADMIN_DOWN]
    assert len(admin_sent) >= 3  # still sending, at the slow rate (§6.8.16)
    gaps = [t2 - t1 for t1, t2 in zip(admin_sent, admin_sent[1:], strict=False)]
    assert all(g >= 0.75 - 1e-9 for g in gaps)
    acts = a.receive(ControlPacket(state=State.DOWN, my_discr=2, your_discr=1), link.now)
    assert acts.drop == "admin down" and a.state is State.ADMIN_DOWN
    link.take("a", a.admin_up(link.now))
    assert a.state is State.DOWN
    up_again = link.now
    link.run_until(up_again + 1.1)
    assert a.state is State.UP and b.state is State.UP


def test_poll_is_answered_with_final_at_once() -> None:
    a = session(1)
    a.start(0.0)
    acts = a.receive(ControlPacket(state=State.DOWN, my_discr=2, poll=True), 0.05)
    finals = [p for p in acts.send if p.final]
    assert len(finals) == 1 and not finals[0].poll  # never P and F together
    assert len(acts.send) == 1  # the Final carries the state change (Init) too
    assert acts.send[0].state is State.INIT


def test_going_up_polls_until_final() -> None:
    a = session(1)
    a.start(0.0)
    a.receive(ControlPacket(state=State.INIT, my_discr=2, required_min_rx=100_000), 0.01)
    assert a.state is State.UP and a.polling
    assert a.desired_min_tx == 100_000 and a.tx_interval == 100_000  # lower: applies at once
    acts = a.tick(a.next_deadline())
    assert acts.send[0].poll  # periodic packets carry P until a Final comes
    a.receive(ControlPacket(state=State.UP, my_discr=2, your_discr=1), 0.2)
    assert a.polling  # a packet without F does not end it
    a.receive(ControlPacket(state=State.UP, my_discr=2, your_discr=1, final=True), 0.25)
    assert not a.polling
    assert not a.tick(a.next_deadline()).send[0].poll


def test_slower_rate_while_up_waits_for_the_final() -> None:
    a = session(1)
    a.start(0.0)
    a.receive(ControlPacket(state=State.INIT, my_discr=2, desired_min_tx=100_000,
                            required_min_rx=100_000), 0.0)
    a.receive(ControlPacket(state=State.UP, my_discr=2, your_discr=1, final=True,
                            required_min_rx=100_000), 0.01)
    assert a.state is State.UP and not a.polling
    acts = a.set_intervals(500_000, 500_000, 0.02)
    assert a.polling and acts.send[0].poll and acts.send[0].desired_min_tx == 500_000
    assert a.tx_interval == 100_000  # §6.8.3: an increase waits for the Poll to end
    a.receive(ControlPacket(state=State.UP, my_discr=2, your_discr=1, final=True,
                            required_min_rx=100_000), 0.05)
    assert a.tx_interval == 500_000
    acts = a.set_intervals(200_000, 200_000, 0.06)
    assert a.tx_interval == 200_000  # a decrease applies at once


def test_discriminators_select_the_session() -> None:
    a = session(7)
    a.start(0.0)
    acts = a.receive(ControlPacket(state=State.UP, my_discr=2, your_discr=8), 0.1)
    assert acts.drop == "unknown discriminator" and a.remote_discr == 0
    acts = a.receive(ControlPacket(state=State.DOWN, my_discr=2, your_discr=0), 0.1)
    assert acts.drop is None and a.remote_discr == 2
    acts = a.receive(ControlPacket(state=State.DOWN, my_discr=2, auth=True, length=26), 0.1)
    assert acts.drop == "authentication"


def test_peer_demand_mode_and_zero_min_rx_stop_periodic_packets() -> None:
    a, b = session(1), session(2)
    link = Link(a, b)
    link.start()
    link.run_until(0.5)
    a.receive(ControlPacket(state=State.UP, my_discr=2, your_discr=1, demand=True,
                            desired_min_tx=100_000, required_min_rx=100_000), link.now)
    assert a.next_tx == float("inf")  # §6.8.7: the peer asked for no periodic packets
    a.receive(ControlPacket(state=State.UP, my_discr=2, your_discr=1,
                            desired_min_tx=100_000, required_min_rx=0), link.now)
    assert a.next_tx == float("inf")  # Required Min RX 0: none either
    a.receive(ControlPacket(state=State.UP, my_discr=2, your_discr=1,
                            desired_min_tx=100_000, required_min_rx=100_000), link.now)
    assert a.next_tx <= link.now + 0.1


def test_peer_rate_sets_the_transmit_interval() -> None:
    a = session(1)
    a.start(0.0)
    a.receive(ControlPacket(state=State.INIT, my_discr=2, required_min_rx=300_000), 0.0)
    assert a.state is State.UP and a.tx_interval == 300_000  # the larger of the two


def test_session_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="discriminator"):
        Session(0)
    with pytest.raises(ValueError, match="multiplier"):
        Session(1, detect_mult=0)
    with pytest.raises(ValueError, match="desired_min_tx"):
        Session(1, desired_min_tx=0)


@given(st.lists(valid_packets(), max_size=30), st.integers(0, 2**16))
def test_any_packet_sequence_keeps_the_invariants(packets: list[ControlPacket],
                                                  seed: int) -> None:
    """Whatever arrives: P and F never together, the slow rate whenever not Up, a Final
    for every Poll taken, and every change one the RFC allows."""
    allowed = {(State.DOWN, State.INIT), (State.DOWN, State.UP), (State.INIT, State.UP),
               (State.INIT, State.DOWN), (State.UP, State.DOWN)}
    a = session(1, seed=seed)
    a.start(0.0)
    now = 0.0
    for p in packets:
        now += 0.01
        p = ControlPacket(**{**p.__dict__, "your_discr": p.your_discr and 1})
        acts = a.receive(p, now)
        for c in acts.changes:
            assert (c.old, c.new) in allowed
        for out in acts.send:
            assert not (out.poll and out.final)
            assert out.state is a.state and out.my_discr == 1
            if out.state is not State.UP:
                assert out.desired_min_tx >= SLOW_TX_US
        if acts.drop is None and p.poll:
            assert any(out.final for out in acts.send)
