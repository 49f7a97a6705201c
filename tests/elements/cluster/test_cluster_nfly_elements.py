"""NflyVLB and NflySwitch: the path written into the frame and kept per flowlet, switches
stepping frames up by the path and down by the output server, dead up links routed
around, and whole trips through butterflies in memory against the topology's own model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from clustertest_util import batch_of, build, cluster_frame, drain, drop_lines
from hypothesis import given, settings
from hypothesis import strategies as st

from routebricks.cluster.nfly import Butterfly, arrange, digit
from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError
from routebricks.packet import clustermac as cm


def path_of(frame: bytes) -> int | None:
    decoded = cm.decode_source(frame[6:12])
    assert decoded is not None
    return decoded[1]


def with_path(frame: bytes, path: int | None) -> bytes:
    server = frame[1]
    return frame[:6] + cm.source(server, path) + frame[12:]


def vlb(paths: int = 4, args: str = "LINK_RATE 80Mbps") -> Router:
    r = build(f"Idle -> vlb :: NflyVLB(PATHS {paths}, {args}, SEED 7) "
              "-> q :: Queue(100000) -> Discard;")
    r.initialize()
    return r


def switch(k: int, stages: int, stage: int) -> Router:
    nout = k if stage == stages else 2 * k
    ins = "Idle -> [0] sw;" + ("" if stage == stages else " Idle -> [1] sw;")
    outs = "".join(f"sw[{p}] -> q{p} :: Queue(100000) -> Discard;" for p in range(nout))
    r = build(f"sw :: NflySwitch(K {k}, STAGES {stages}, STAGE {stage}); {ins} {outs}")
    r.initialize()
    return r


def outputs(r: Router, n: int) -> list[list[bytes]]:
    return [drain(r, f"q{p}").to_list() for p in range(n)]


# ---------------------------------------------------------------------- NflyVLB
def test_vlb_writes_a_path_and_keeps_it_per_flowlet():
    r = vlb(4)
    frames = [cluster_frame(3, sport=1000 + f) for f in range(64)]
    r.find("vlb").push(0, batch_of(frames))
    got = drain(r, "q").to_list()
    assert len(got) == 64
    paths = [path_of(f) for f in got]
    assert set(paths) == {0, 1, 2, 3}  # spread over the top switches
    for a, b in zip(frames, got, strict=True):  # nothing else changed
        assert b[:6] == a[:6] and b[12:] == a[12:] and b[9:12] == a[9:12]
    r.find("vlb").push(0, batch_of(frames))  # the same flows again, within delta
    assert [path_of(f) for f in drain(r, "q").to_list()] == paths
    counts = drop_lines(r.read_handler("vlb.paths"))
    assert sum(counts.values()) == 128 and set(counts) == {f"path {x}" for x in range(4)}
    flowlets = drop_lines(r.read_handler("vlb.flowlets"))
    assert flowlets["new flowlets"] == 64 and flowlets["kept on path"] == 64


def test_vlb_avoids_paths_marked_down_and_drops_without_an_uplink():
    r = vlb(4)
    r.write_handler("vlb.path", "1 down, 2 down")
    r.find("vlb").push(0, batch_of([cluster_frame(1, sport=s) for s in range(200)]))
    assert {path_of(f) for f in drain(r, "q").to_list()} == {0, 3}
    r.write_handler("vlb.path", "0 down\n3 down")
    r.find("vlb").push(0, batch_of([cluster_frame(1, sport=5000)]))
    assert r.find("vlb").drops == {"no path up": 1}
    r.write_handler("vlb.path", "0 up")
    r.write_handler("vlb.peer", "0 down")
    r.find("vlb").push(0, batch_of([cluster_frame(1), b"\x02\x00", cluster_frame(1)]))
    assert r.find("vlb").drops == {"no path up": 3, "too short for Ethernet": 1}
    r.write_handler("vlb.peer", "0 up")
    r.find("vlb").push(0, batch_of([cluster_frame(1, sport=6000)]))
    assert [path_of(f) for f in drain(r, "q").to_list()] == [0]
    with pytest.raises(HandlerError, match="out of range"):
        r.write_handler("vlb.path", "4 down")
    with pytest.raises(HandlerError, match="expected"):
        r.write_handler("vlb.peer", "sideways")


def test_vlb_moves_a_flowlet_whose_path_is_full():
    # One flow far above a path's share (80 Mbit/s / 4): it moves to another path.
    r = vlb(4, "LINK_RATE 80Mbps, BURST 3000")
    v = r.find("vlb")
    v.clock = lambda: 0  # no refill: the buckets only empty
    v.push(0, batch_of([cluster_frame(2, size=1000)] * 12))
    got = [path_of(f) for f in drain(r, "q").to_list()]
    assert len(set(got)) > 1
    assert drop_lines(r.read_handler("vlb.flowlets"))["moved, path full"] >= 1


def test_vlb_arguments_are_checked():
    with pytest.raises(ConfigError, match="PATHS"):
        build("Idle -> NflyVLB(LINK_RATE 1Mbps) -> Discard;")
    with pytest.raises(ConfigError, match="LINK_RATE must be more than 0"):
        build("Idle -> NflyVLB(PATHS 2, LINK_RATE 0) -> Discard;")


# ---------------------------------------------------------------------- NflySwitch
def test_switch_up_by_path_digit_and_down_by_output_digit():
    # 2-ary 3-fly: 8 io servers, paths 0..3 (two digits), stage 2 reads digit 1.
    r = switch(2, 3, 2)
    sw = r.find("sw")
    up = [with_path(cluster_frame(d), x) for d, x in ((0, 0), (5, 1), (6, 2), (7, 3))]
    sw.push(0, batch_of(up))
    got = outputs(r, 4)
    assert got[2] == [up[0], up[1]] and got[3] == [up[2], up[3]]  # up digit(x, 2, 1)
    down = [with_path(cluster_frame(d), 0) for d in range(8)]
    sw.push(1, batch_of(down))
    got = outputs(r, 4)
    assert got[0] == [down[d] for d in range(8) if digit(d, 2, 1) == 0]
    assert got[1] == [down[d] for d in range(8) if digit(d, 2, 1) == 1]
    assert drop_lines(r.read_handler("sw.counts")) == {"up 0": 2, "up 1": 2,
                                                       "down 0": 4, "down 1": 4}


def test_the_top_stage_turns_frames_around():
    r = switch(3, 2, 2)
    frames = [with_path(cluster_frame(d), 1) for d in range(9)]
    r.find("sw").push(0, batch_of(frames))
    got = outputs(r, 3)
    assert got == [[frames[d] for d in range(9) if d // 3 == j] for j in range(3)]


def test_a_dead_up_link_is_replaced_and_the_path_rewritten():
    r = switch(3, 3, 1)
    r.write_handler("sw.peer", "4 down")  # up link 1
    frames = [with_path(cluster_frame(d), x) for d in range(27) for x in range(9)]
    r.find("sw").push(0, batch_of(frames))
    got = outputs(r, 6)
    assert got[4] == []
    for p in (3, 5):
        for f in got[p]:
            assert digit(path_of(f), 3, 0) == p - 3  # the path says the link it took
    assert int(r.read_handler("sw.rerouted")) == 27 * 3  # every path with digit 1
    # Frames of one path and output keep one link.
    again = outputs(r, 6)
    assert again == [[]] * 6
    r.find("sw").push(0, batch_of(frames))
    assert outputs(r, 6) == got


def test_switch_named_drops():
    r = switch(2, 2, 1)
    r.write_handler("sw.peer", "0 down")
    frames = [with_path(cluster_frame(0), 0),  # down link 0 dead
              with_path(cluster_frame(4), 0),  # output server 4 >= 2^2
              cluster_frame(1),  # going up without a path: a mesh frame
              with_path(cluster_frame(1), 2),  # path 2 >= 2^1
              b"\x02\x00\x00"]
    r.find("sw").push(1, batch_of(frames[:2]))
    r.find("sw").push(0, batch_of(frames[2:]))
    assert r.find("sw").drops == {"next server down": 1, "output server out of range": 2,
                                  "no path in the frame": 1, "too short for Ethernet": 1}
    r.write_handler("sw.peer", "2 down, 3 down")
    r.find("sw").push(0, batch_of([with_path(cluster_frame(1), 0)]))
    assert r.find("sw").drops["next server down"] == 2
    assert r.read_handler("sw.peers") == "0\tdown\n1\tup\n2\tdown\n3\tdown"
    with pytest.raises(HandlerError, match="out of range"):
        r.write_handler("sw.peer", "4 down")


def test_switch_ports_are_checked():
    with pytest.raises(ConfigError, match="beyond STAGES"):
        build("Idle -> NflySwitch(K 2, STAGES 2, STAGE 3) -> Discard;")
    with pytest.raises(ConfigError, match="has 1 output but stage 1 of 2 has 4"):
        build("Idle -> sw :: NflySwitch(K 2, STAGES 2, STAGE 1) -> Discard;").initialize()


def test_the_switch_reads_nothing_past_the_ethernet_header():
    r = switch(2, 2, 1)
    frames = [with_path(cluster_frame(d), x)[:14] for d in range(4) for x in range(2)]
    r.find("sw").push(0, batch_of(frames))  # headers alone: switched all the same
    assert sum(len(o) for o in outputs(r, 4)) == 8


# ---------------------------------------------------------------------- whole trips
class Fabric:
    """Every switch of a butterfly as an NflySwitch; frames walked from server to server."""

    def __init__(self, b: Butterfly) -> None:
        self.b = b
        self.routers = {name: switch(b.k, b.n, stage)
                        for (stage, _), name in b.switches.items()}
        self.dead: set[str] = set()

    def kill(self, name: str) -> None:
        """Its neighbours mark their link to it down (what BFD would tell them)."""
        self.dead.add(name)
        for other in self.routers:
            for port, peer in self.b.ports(other):
                if peer == name:
                    self.routers[other].write_handler("sw.peer", f"{port} down")

    def walk(self, frame: bytes, src: str) -> tuple[list[str], bytes | None]:
        b = self.b
        here, came_from = b.ports(src)[0][1], src
        trail = [src]
        for _ in range(4 * b.n):
            trail.append(here)
            if b.position(here)[0] == 0:
                return trail, frame
            ports = b.ports(here)
            side = 0 if next(p for p, peer in ports if peer == came_from) < b.k else 1
            r = self.routers[here]
            r.find("sw").push(side, batch_of([frame]))
            got = [(p, f) for p, out in enumerate(outputs(r, len(ports))) for f in out]
            if not got:
                return trail, None
            ((port, frame),) = got
            came_from, here = here, dict(ports)[port]
        raise AssertionError(f"a loop: {trail}")


def butterfly(k: int, n: int) -> Butterfly:
    io = [f"s{t}" for t in range(k**n)]
    return arrange(k, io, [], set(io), 256)[0]


@pytest.mark.parametrize("k, n", [(2, 1), (2, 2), (2, 3), (3, 2)])
def test_every_trip_follows_the_model(k: int, n: int):
    b = butterfly(k, n)
    fab = Fabric(b)
    for s, x, d in itertools.product(range(b.terminals), range(b.paths), range(b.terminals)):
        frame = with_path(cluster_frame(d, sport=s), x)
        trail, out = fab.walk(frame, b.io[s])
        assert trail == b.route(s, x, d), (s, x, d)
        assert out == frame  # the switches changed nothing (no link was dead)


@settings(max_examples=30)
@given(st.data())
def test_trips_avoid_dead_switches_up_and_arrive(data: st.DataObject):
    k, n = data.draw(st.sampled_from([(2, 2), (2, 3), (3, 2)]))
    b = butterfly(k, n)
    fab = Fabric(b)
    # Dead switches above stage 1 (a dead stage-1 switch cuts its io servers off), at
    # most k - 1 per stage so that every stage keeps a way up.
    for stage in range(2, n + 1):
        ws = data.draw(st.lists(st.integers(0, b.per_stage - 1), max_size=k - 1,
                                unique=True))
        for w in ws:
            fab.kill(b.switches[(stage, w)])
    s = data.draw(st.integers(0, b.terminals - 1))
    d = data.draw(st.integers(0, b.terminals - 1))
    x = data.draw(st.integers(0, b.paths - 1))
    trail, out = fab.walk(with_path(cluster_frame(d), x), b.io[s])
    if out is None:
        # Only a dead switch on the down side (n >= 3: not avoided, see nfly) stops it:
        # the switch above it, the top (trail[n]) or one past it, drops the frame.
        assert n >= 3 and len(trail) - 1 >= n, trail
        assert fab.routers[trail[-1]].find("sw").drops == {"next server down": 1}
        return
    assert trail[-1] == b.io[d] and not fab.dead & set(trail)
    x2 = path_of(out)
    assert trail == b.route(s, x2, d)  # the rewritten path is the one it took
    if n == 2:
        assert trail[2] == b.switches[(2, x2)]


def test_a_dead_top_switch_of_a_2fly_is_never_on_a_path():
    b = butterfly(2, 2)
    fab = Fabric(b)
    fab.kill("i2-0")
    for s, x, d in itertools.product(range(4), range(2), range(4)):
        trail, out = fab.walk(with_path(cluster_frame(d), x), b.io[s])
        assert out is not None and "i2-0" not in trail and trail[-1] == b.io[d]
        assert path_of(out) == 1


def test_kernels_take_any_bytes():
    r = switch(2, 3, 2)
    rng = np.random.default_rng(1)
    frames = [bytes(rng.integers(0, 256, int(n), dtype=np.uint8))
              for n in rng.integers(0, 40, 300)]
    r.find("sw").push(0, batch_of(frames))
    r.find("sw").push(1, batch_of(frames))
    total = sum(len(o) for o in outputs(r, 4)) + sum(r.find("sw").drops.values())
    assert total == 600
