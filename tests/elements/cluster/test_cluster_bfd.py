"""BFD, the element: its arguments, the frames it sends and takes, its drops and handlers,
and two sessions back to back in one router reaching Up, going Down when one direction is
cut and Up again when it heals, telling their NOTIFY handlers."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from elementtest import drop_lines
from scapy.all import ARP, IP, TCP, UDP, Ether
from scapy.contrib.bfd import BFD as ScapyBFD

from routebricks.elements.cluster.bfd import BFD
from routebricks.engine.element import Element, write_handler
from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError
from routebricks.packet.batch import PacketBatch
from routebricks.runtime.workers import check_multiworker, default_workers

A_IP, B_IP = "169.254.1.1", "169.254.1.2"
A_MAC, B_MAC = "fe:00:00:00:00:01", "fe:00:00:01:00:01"
ARGS = f"LOCAL {A_IP}, PEER {B_IP}, SRC_MAC {A_MAC}, DST_MAC {B_MAC}"


class _Recorder(Element):
    """Records what is written to its ``peer`` handler (a DirectVLB's stand-in)."""

    port_count = "0/0"

    def configure(self) -> None:
        self.log: list[tuple[float, str]] = []

    @write_handler("peer")
    def h_peer(self, v: str) -> None:
        """Record 'J up' / 'J down'."""
        self.log.append((time.monotonic(), v))


class _Gate(Element):
    """Passes packets while open, drops them while shut (a cut link)."""

    port_count = "1/1"
    processing = "h/h"

    def configure(self) -> None:
        self.open = True
        self.changed_at = 0.0

    def push(self, port: int, batch: PacketBatch) -> None:
        if self.open:
            self.emit(0, batch)
        else:
            self.drop(batch, "cut")

    @write_handler("open")
    def h_open(self, v: str) -> None:
        """'true' or 'false'."""
        self.open = v == "true"
        self.changed_at = time.monotonic()


class _Sink(Element):
    """Keeps every frame pushed into it."""

    port_count = "1/0"
    processing = "h/"

    def configure(self) -> None:
        self.frames: list[bytes] = []

    def push(self, port: int, batch: PacketBatch) -> None:
        self.frames.extend(batch.to_list())


class _Nothing(Element):
    """Never sends (BFD's input must be connected)."""

    port_count = "0/1"
    processing = "/h"


def one_session(**kw: object) -> tuple[Router, BFD, _Sink, _Recorder]:
    """A BFD element (A's end) whose frames land in a sink; not run."""
    rec = _Recorder(name="rec")
    bfd = BFD(LOCAL=A_IP, PEER=B_IP, SRC_MAC=A_MAC, DST_MAC=B_MAC, NOTIFY="rec.peer",
              PEER_ID=2, name="bfd", **kw)
    sink = _Sink(name="sink")
    _Nothing() >> bfd >> sink
    r = Router.from_elements(bfd, rec)
    return r, bfd, sink, rec


def from_b(ttl: int = 255, tail: bytes = b"", **fields: object) -> bytes:
    """A frame from B's end to A's, built by scapy (``tail``: bytes after the mandatory
    section, in the UDP payload)."""
    b = ScapyBFD(**{"my_discriminator": 77, "your_discriminator": 0, "sta": 1,
                    "min_tx_interval": 100_000, "min_rx_interval": 100_000, **fields})
    return bytes(Ether(src=B_MAC, dst=A_MAC) / IP(src=B_IP, dst=A_IP, ttl=ttl)
                 / UDP(sport=49200, dport=3784) / b / tail)


def push(bfd: BFD, *frames: bytes) -> None:
    bfd.push(0, PacketBatch.from_bytes(frames))


# ---------------------------------------------------------------------- documentation, args
def test_documented_in_the_cluster_group() -> None:
    cls = get_class("BFD")
    assert cls is BFD and cls.GROUP == "cluster" and cls.SINGLE_PROCESS
    doc = cls.doc()
    heads = re.findall(r"^(Ports|Arguments|Behaviour|Handlers|Example|See also):", doc, re.M)
    assert heads == ["Ports", "Arguments", "Behaviour", "Handlers", "Example", "See also"]
    args = doc.split("Arguments:")[1].split("Behaviour:")[0]
    assert all(a.name in args for a in cls.ARGS)
    handlers = doc.split("Handlers:")[1].split("Example:")[0]
    for h in ("state", "session", "sent", "received", "admin", "interval", "drops"):
        assert h in handlers and cls.HANDLERS[h].doc
    assert all(reason in " ".join(handlers.split()) for reason in cls.DROPS)


def test_example_configuration_parses() -> None:
    example = BFD.doc().split("Example:")[1].split("See also:")[0]
    r = Router.from_text(example.replace("FromDevice(to_s2, PROMISC true)", "Idle")
                         .replace("ToDevice(to_s2)", "Discard")
                         .replace('NOTIFY "vlb.peer sw.peer", ', "")
                         + "c[1] -> Discard;")
    assert r.find("bfd2").read("state") == "Down"


@pytest.mark.parametrize("config, message", [
    (f"PEER {B_IP}, SRC_MAC {A_MAC}, DST_MAC {B_MAC}", "missing required argument LOCAL"),
    (f"LOCAL {A_IP}, PEER {A_IP}, SRC_MAC {A_MAC}, DST_MAC {B_MAC}", "LOCAL and PEER"),
    (f"LOCAL 169.254.1, PEER {B_IP}, SRC_MAC {A_MAC}, DST_MAC {B_MAC}", "for LOCAL"),
    (f"{ARGS}, INTERVAL 0", "INTERVAL must be from 1ms"),
    (f"{ARGS}, INTERVAL soon", "for INTERVAL"),
    (f"{ARGS}, MULTIPLIER 0", "for MULTIPLIER"),
    (f"{ARGS}, MULTIPLIER 256", "for MULTIPLIER"),
    (f"{ARGS}, DISCRIMINATOR 0", "for DISCRIMINATOR"),
    (f"{ARGS}, SPORT 3784", "for SPORT"),
    (f"LOCAL {A_IP}, PEER {B_IP}, SRC_MAC {A_MAC}, DST_MAC fe:00", "for DST_MAC"),
    (f'{ARGS}, NOTIFY "c.reset"', "PEER_ID is required with NOTIFY"),
    (f'{ARGS}, NOTIFY "vlb.peer", PEER_ID 1', "NOTIFY: no element named 'vlb'"),
    (f'{ARGS}, NOTIFY "c.peer", PEER_ID 1', "NOTIFY: c (Counter) has no write handler"),
    (f'{ARGS}, NOTIFY "c.count", PEER_ID 1', "has no write handler 'count'"),
    (f'{ARGS}, NOTIFY "peer", PEER_ID 1', "is not ELEMENT.HANDLER"),
    (f"{ARGS}, INTERVALL 10ms", "unknown keyword 'INTERVALL'"),
])
def test_bad_arguments_are_named(config: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        Router.from_text(f"Idle -> b :: BFD({config}) -> c :: Counter -> Discard;")
    assert message in str(e.value)


def test_a_bad_argument_is_one_message_not_a_traceback(tmp_path) -> None:
    cfg = tmp_path / "bad.click"
    cfg.write_text(f'Idle -> b :: BFD({ARGS}, NOTIFY "vlb.peer", PEER_ID 1) -> Discard;\n')
    res = subprocess.run([sys.executable, "-m", "routebricks.cli", "check", str(cfg)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert "bad.click:1:" in res.stderr and "NOTIFY: no element named 'vlb'" in res.stderr
    assert "Traceback" not in res.stderr


def test_discriminators_are_random_nonzero_and_unique() -> None:
    text = "".join(f"Idle -> b{i} :: BFD(LOCAL {A_IP}, PEER 169.254.2.{i + 2}, "
                   f"SRC_MAC {A_MAC}, DST_MAC {B_MAC}) -> Discard;" for i in range(20))
    r = Router.from_text(text)
    discrs = [r.find(f"b{i}").session.local_discr for i in range(20)]
    assert all(discrs) and len(set(discrs)) == 20
    sports = [r.find(f"b{i}").sport for i in range(20)]
    assert all(49152 <= p <= 65535 for p in sports)
    with pytest.raises(ConfigError, match="DISCRIMINATOR 5 is used by another BFD session"):
        Router.from_text(f"Idle -> BFD({ARGS}, DISCRIMINATOR 5) -> Discard;"
                         f"Idle -> BFD({ARGS}, DISCRIMINATOR 5) -> Discard;")


def test_one_process_only() -> None:
    r = Router.from_text(f"Idle -> b :: BFD({ARGS}) -> Discard;")
    assert default_workers(r.graph) == 1
    with pytest.raises(ConfigError, match="runs in one process only"):
        check_multiworker(r, 2)


# ---------------------------------------------------------------------- frames out
def test_first_frame_is_a_complete_rfc_5881_packet() -> None:
    r, bfd, sink, _ = one_session(DISCRIMINATOR=0x1234, SPORT=50000, MULTIPLIER=4)
    bfd.run_task()
    assert len(sink.frames) == 1
    e = Ether(sink.frames[0])
    assert (e.src, e.dst) == (A_MAC, B_MAC)
    assert (e[IP].src, e[IP].dst, e[IP].ttl) == (A_IP, B_IP, 255)
    assert (e[UDP].sport, e[UDP].dport) == (50000, 3784)
    ip_sum, udp_sum = e[IP].chksum, e[UDP].chksum
    del e[IP].chksum, e[UDP].chksum
    again = Ether(bytes(e))
    assert (again[IP].chksum, again[UDP].chksum) == (ip_sum, udp_sum)
    b = e[ScapyBFD]
    assert (b.version, b.sta, b.diag, b.detect_mult, b.len) == (1, 1, 0, 4, 24)
    assert (b.my_discriminator, b.your_discriminator) == (0x1234, 0)
    assert b.min_tx_interval == 1_000_000 and b.min_rx_interval == 100_000  # slow while Down
    assert r.read_handler("bfd.sent") == "1"
    bfd.run_task()
    assert len(sink.frames) == 1  # started once


def test_notify_start_tells_the_users_the_session_starts_down() -> None:
    r, bfd, sink, rec = one_session(NOTIFY_START=True)
    assert rec.log == []
    bfd.run_task()
    assert [v for _, v in rec.log] == ["2 down"]
    r, bfd, sink, rec = one_session()  # by default only transitions to or from Up
    bfd.run_task()
    assert rec.log == []


def test_handshake_from_pushed_frames_notify_and_stderr(capfd: pytest.CaptureFixture[str]
                                                        ) -> None:
    r, bfd, sink, rec = one_session(DISCRIMINATOR=0x1234)
    bfd.run_task()
    push(bfd, from_b(sta=1))  # B: Down
    assert r.read_handler("bfd.state") == "Init"
    init = Ether(sink.frames[-1])[ScapyBFD]
    assert init.sta == 2 and init.your_discriminator == 77  # sent at once
    assert rec.log == []  # Init is not Up
    push(bfd, from_b(sta=3, your_discriminator=0x1234))  # B: Up
    assert r.read_handler("bfd.state") == "Up"
    up = Ether(sink.frames[-1])[ScapyBFD]
    assert up.sta == 3 and up.flags.P and up.min_tx_interval == 100_000  # the Poll of §6.8.3
    assert [v for _, v in rec.log] == ["2 up"]
    push(bfd, from_b(sta=3, your_discriminator=0x1234, flags="P"))
    final = Ether(sink.frames[-1])[ScapyBFD]
    assert final.flags.F and not final.flags.P
    push(bfd, from_b(sta=1, your_discriminator=0x1234, diag=1))  # B: Down (it timed out)
    assert r.read_handler("bfd.state") == "Down"
    assert [v for _, v in rec.log] == ["2 up", "2 down"]
    err = capfd.readouterr().err
    assert f"bfd :: BFD: session to {B_IP} up\n" in err
    assert f"bfd :: BFD: session to {B_IP} down (neighbor signaled session down)\n" in err
    session = dict(line.split(" ", 1) for line in r.read_handler("bfd.session").splitlines())
    assert session["state"] == "Down" and session["remote_diag"].startswith("1 (control")
    assert session["local_discriminator"] == str(0x1234)
    assert session["remote_discriminator"] == "77"
    assert session["local_diag"] == "3 (neighbor signaled session down)"
    assert session["desired_min_tx"] == "1.000000s" and session["required_min_rx"] == "100ms"
    assert r.read_handler("bfd.received") == "4"


def bad_corpus(ours: int) -> dict[str, list[bytes]]:
    """Frames the element must drop, by the reason it must count them under."""
    tcp = bytes(Ether(src=B_MAC, dst=A_MAC) / IP(src=B_IP, dst=A_IP) / TCP() / b"data")

    def patch(frame: bytes, at: int, value: int) -> bytes:
        b = bytearray(frame)
        b[at] = value
        return bytes(b)

    return {
        "not BFD": [tcp, bytes(Ether(dst=A_MAC) / ARP()), tcp[:20],
                    bytes(Ether(dst=A_MAC) / IP(src=B_IP, dst=A_IP, ttl=255)
                          / UDP(dport=4784) / bytes(24))],
        "bad TTL": [from_b(ttl=254), from_b(ttl=1)],
        "wrong address": [bytes(Ether(dst=A_MAC) / IP(src="10.0.0.1", dst=A_IP, ttl=255)
                                / UDP(sport=49200, dport=3784) / ScapyBFD(my_discriminator=1))],
        "bad IP header": [patch(from_b(), 24, 0)],
        "bad UDP header": [patch(from_b(), 40, 0x55)],
        "bad version": [from_b(version=0)],
        "bad length": [from_b(len=20)],
        "bad detect mult": [from_b(detect_mult=0)],
        "multipoint": [from_b(flags="M")],
        "zero my discriminator": [from_b(my_discriminator=0)],
        "zero your discriminator": [from_b(sta=3, your_discriminator=0)],
        "unknown discriminator": [from_b(your_discriminator=ours + 1)],
        "authentication": [from_b(flags="A", len=26, tail=b"\x01\x02")],
    }


def test_every_bad_frame_is_a_named_drop() -> None:
    r, bfd, sink, rec = one_session(DISCRIMINATOR=0x1234)
    bfd.run_task()
    corpus = bad_corpus(0x1234)
    frames = [f for fs in corpus.values() for f in fs]
    push(bfd, *frames, from_b())  # one batch, one good frame among the bad ones
    drops = drop_lines(r.read_handler("bfd.drops"))
    assert drops == {reason: len(fs) for reason, fs in corpus.items()}
    assert set(drops) <= set(BFD.DROPS)
    assert r.read_handler("bfd.received") == "1" and r.read_handler("bfd.state") == "Init"


def test_admin_down_and_up() -> None:
    r, bfd, sink, rec = one_session(DISCRIMINATOR=0x1234)
    bfd.run_task()
    push(bfd, from_b(sta=1))
    push(bfd, from_b(sta=3, your_discriminator=0x1234))
    assert r.read_handler("bfd.admin") == "up" and rec.log[-1][1] == "2 up"
    r.write_handler("bfd.admin", "down")
    assert r.read_handler("bfd.state") == "AdminDown" and r.read_handler("bfd.admin") == "down"
    sent = Ether(sink.frames[-1])[ScapyBFD]
    assert (sent.sta, sent.diag) == (0, 7)  # AdminDown, administratively down
    assert rec.log[-1][1] == "2 down"
    push(bfd, from_b(sta=3, your_discriminator=0x1234))
    assert drop_lines(r.read_handler("bfd.drops")) == {"admin down": 1}
    r.write_handler("bfd.admin", "up")
    assert r.read_handler("bfd.state") == "Down"
    with pytest.raises(HandlerError, match="expected 'up' or 'down'"):
        r.write_handler("bfd.admin", "sideways")


def test_interval_handler() -> None:
    r, bfd, sink, rec = one_session()
    assert r.read_handler("bfd.interval") == "100ms"
    bfd.run_task()
    r.write_handler("bfd.interval", "50ms")
    assert r.read_handler("bfd.interval") == "50ms"
    assert Ether(sink.frames[-1])[ScapyBFD].min_rx_interval == 50_000  # told at once
    with pytest.raises(HandlerError, match="interval must be from 1ms"):
        r.write_handler("bfd.interval", "0")


def test_a_refused_notify_write_is_reported_and_the_session_goes_on(
        capfd: pytest.CaptureFixture[str]) -> None:
    class _Picky(Element):
        port_count = "0/0"

        @write_handler("peer")
        def h_peer(self, v: str) -> None:
            """Refuses everything."""
            raise ValueError("peer 2 is not in this cluster")

    picky = _Picky(name="vlb")
    bfd = BFD(LOCAL=A_IP, PEER=B_IP, SRC_MAC=A_MAC, DST_MAC=B_MAC, NOTIFY="vlb.peer",
              PEER_ID=2, DISCRIMINATOR=5, name="bfd")
    _Nothing() >> bfd >> _Sink()
    Router.from_elements(bfd, picky)
    bfd.run_task()
    push(bfd, from_b(sta=2, your_discriminator=0))
    push(bfd, from_b(sta=2, your_discriminator=5))
    assert bfd.session.state.label == "Up"
    assert "NOTIFY vlb.peer '2 up' failed: vlb.peer: peer 2 is not in this cluster" in \
        capfd.readouterr().err


# ---------------------------------------------------------------------- back to back
def test_back_to_back_up_cut_down_heal_up() -> None:
    """Two sessions in one router, A -> B and B -> A through a Queue, an Unqueue and a
    gate each: both come Up; cutting A -> B takes B Down within MULTIPLIER x INTERVAL
    (plus slack for timers on a busy machine), A follows at once (B tells it), and both
    come back Up within the 1 s slow rate (plus slack) once the cut heals."""
    rec = _Recorder(name="rec")
    a = BFD(LOCAL=A_IP, PEER=B_IP, SRC_MAC=A_MAC, DST_MAC=B_MAC, INTERVAL="100ms",
            MULTIPLIER=3, NOTIFY="rec.peer", PEER_ID=2, name="a")
    b = BFD(LOCAL=B_IP, PEER=A_IP, SRC_MAC=B_MAC, DST_MAC=A_MAC, INTERVAL="100ms",
            MULTIPLIER=3, NOTIFY="rec.peer", PEER_ID=1, name="b")
    from routebricks.elements.standard.simplequeue import Queue
    from routebricks.elements.standard.unqueue import Unqueue

    gate_ab, gate_ba = _Gate(name="gate_ab"), _Gate(name="gate_ba")
    a >> Queue() >> Unqueue() >> gate_ab >> b
    b >> Queue() >> Unqueue() >> gate_ba >> a
    r = Router.from_elements(a, rec)
    r.hold = True  # no sources: run until the time limit
    states: dict[str, tuple[str, str]] = {}
    at: dict[str, float] = {}

    def cut() -> None:
        states["before cut"] = (r.read_handler("a.state"), r.read_handler("b.state"))
        r.write_handler("gate_ab.open", "false")
        at["cut"] = gate_ab.changed_at

    def heal() -> None:
        states["before heal"] = (r.read_handler("a.state"), r.read_handler("b.state"))
        r.write_handler("gate_ab.open", "true")
        at["heal"] = gate_ab.changed_at

    r.schedule(1.5, cut)
    r.schedule(3.0, heal)
    try:
        r.run(time_limit=5.0)
    finally:
        r.cleanup()
    assert states == {"before cut": ("Up", "Up"), "before heal": ("Init", "Down")}
    assert (r.read_handler("a.state"), r.read_handler("b.state")) == ("Up", "Up")
    log = rec.log
    assert len(log) == 6, log
    assert sorted(v for _, v in log[0:2]) == ["1 up", "2 up"]
    assert sorted(v for _, v in log[2:4]) == ["1 down", "2 down"]
    assert sorted(v for _, v in log[4:6]) == ["1 up", "2 up"]
    assert log[1][0] < at["cut"] < log[2][0] and log[3][0] < at["heal"] < log[4][0]
    b_down = next(t for t, v in log if v == "1 down")  # B's session: it timed out
    a_down = next(t for t, v in log if v == "2 down")  # A's: B told it
    assert b_down - at["cut"] >= 0.2 - 0.01  # not before 2 intervals of silence ...
    assert b_down - at["cut"] <= 0.3 + 0.5  # ... and within MULTIPLIER x INTERVAL + slack
    assert a_down - b_down < 0.2
    assert log[5][0] - at["heal"] <= 1.0 + 0.5  # the 1 s slow rate, plus slack
    assert drop_lines(r.read_handler("a.drops")) == {}
    assert drop_lines(r.read_handler("b.drops")) == {}
    assert drop_lines(r.read_handler("gate_ab.drops"))["cut"] > 0
