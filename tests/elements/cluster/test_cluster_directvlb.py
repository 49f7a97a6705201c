"""DirectVLB on a virtual clock: Direct VLB's budgets and spill, flowlets (kept within DELTA,
re-picked after it, spread when their path is full), classic VLB, down servers, drops,
handlers and configuration errors."""

from __future__ import annotations

import numpy as np
import pytest
from clustertest_util import (
    VLB,
    cluster_frame,
    drop_lines,
    flow_batch,
    flow_templates,
    ip_int,
    q,
    read_frames,
    run_text,
    write_pcap,
)
from scapy.all import IP, UDP, Ether

from routebricks.engine.router import Router
from routebricks.errors import ConfigError, HandlerError
from routebricks.packet.clustermac import decode

# LINK_RATE 80Mbps is 10,000 bytes per ms: of 1000-byte frames, 10 per ms on each link, of
# which at most 5 per ms straight to a server (DIRECT_RATE, the paper's R/N).
# BURST holds more than a batch (1 ms here) earns.
FAST = "LINK_RATE 80Mbps, DIRECT_RATE 40Mbps, BURST 10000"


def offer(v: VLB, per_ms: int, ms: int, j: int = 1, start: float = 0.0, nflows: int = 64,
          size: int = 1000) -> np.ndarray:
    """``per_ms`` frames toward ``j`` each ms for ``ms`` ms, of ``nflows`` flows in turn:
    packets per output."""
    tm = flow_templates(nflows, j, size)
    per = np.zeros(v.n, np.int64)
    for t in range(ms):
        flows = (t * per_ms + np.arange(per_ms)) % nflows
        ports = v.send(flow_batch(tm, flows), start + t)
        per += np.bincount(ports[ports >= 0], minlength=v.n)
    return per


# Per packet, and per flowlet when every flow's packets are more than DELTA apart.
@pytest.mark.parametrize("flowlets", ["FLOWLETS false", "DELTA 1ms"])
def test_direct_up_to_budget_then_spill_evenly(flowlets):
    v = VLB(4, 0, f"{FAST}, {flowlets}, SEED 5")
    # Under the direct budget: everything goes straight to server 1.
    per = offer(v, 3, 500)
    assert per.tolist() == [0, 1500, 0, 0]
    # Twice the budget: 5/ms direct (plus the burst), the rest split between 2 and 3.
    per = offer(v, 10, 1000, start=500)
    assert abs(per[1] - 5000) <= 10
    assert abs(per[2] - 2500) <= 100 and abs(per[3] - 2500) <= 100
    assert per[0] == 0
    # More (20/ms): direct still gets only its budget; the rest goes to the fullest
    # intermediate, evenly.
    per = offer(v, 20, 1000, start=1500)
    assert abs(per[1] - 5000) <= 10
    assert abs(per[2] - 7500) <= 200 and abs(per[3] - 7500) <= 200
    assert set(v.read("paths")) == {"direct 1", "via 2 to 1", "via 3 to 1"}


def test_direct_rate_argument_and_per_worker_share():
    # DIRECT_RATE 2 frames/ms out of 10: at 4/ms offered, 2 go direct, 1 through each of 2, 3.
    v = VLB(4, 0, "LINK_RATE 80Mbps, DIRECT_RATE 16Mbps, BURST 3000, FLOWLETS false")
    per = offer(v, 4, 1000)
    assert abs(per[1] - 2000) <= 10 and abs(per[2] - 1000) <= 20 and abs(per[3] - 1000) <= 20
    # Two workers: each meters half of the rates.
    v2 = VLB(4, 0, f"{FAST}, FLOWLETS false", nworkers=2)
    per = offer(v2, 10, 1000)
    assert abs(per[1] - 2500) <= 10


def test_flowlet_kept_within_delta_and_repicked_after():
    v = VLB(4, 0, "LINK_RATE 8Mbps, BURST 3000, DELTA 100ms")
    other = cluster_frame(1, sport=7, size=1000)
    f = cluster_frame(1, sport=9, size=200)
    # Flow "other" empties the direct bucket; flow f's first packet then goes through an
    # intermediate (the direct path has no budget).
    assert v.send([other] * 3, 0).tolist() == [1, 1, 1]
    first = int(v.send([f], 0)[0])
    assert first in (2, 3)
    # Every 10 ms (< DELTA): f stays on its intermediate though direct has refilled.
    for t in range(10, 100, 10):
        assert v.send([f], t).tolist() == [first]
    # After a gap longer than DELTA, a new flowlet: direct again.
    assert v.send([f], 90 + 101).tolist() == [1]
    # New: other, f, f again; kept: other's 2 and f's 9.
    assert v.read("flowlets") == {"new flowlets": 3, "kept on path": 11,
                                  "moved, path full": 0, "spread, no path with room": 0}


def test_flowlet_path_full_moves_the_flowlet_then_spreads_per_packet():
    v = VLB(4, 0, "LINK_RATE 8Mbps, BURST 3000, DELTA 100ms")
    v.send([cluster_frame(1, sport=7, size=1000)] * 3, 0)  # direct bucket emptied
    f = cluster_frame(1, sport=9, size=1000)
    x = int(v.send([f], 0)[0])  # on an intermediate, its bucket 3000 -> 2000
    y = 5 - x
    # Twelve at once: x takes 5 more (down to -3000: one burst over), then it is full and
    # the flowlet moves whole to y, which has room (3000 down to -3000); then no path has
    # room and the last packet is spread on its own (both at the floor).
    ports = v.send([f] * 12, 0).tolist()
    assert ports[:5] == [x] * 5
    assert ports[5:11] == [y] * 6
    assert ports[11] in (x, y)
    stats = v.read("flowlets")
    assert stats["kept on path"] == 2 + 5 + 5
    assert stats["moved, path full"] == 1 and stats["spread, no path with room"] == 1
    # Within DELTA, once the buckets have refilled, the flowlet keeps to its new path.
    assert v.send([f], 50).tolist() == [y]


def test_classic_spreads_uniformly():
    # Classic VLB: one of the 5 servers at random; SELF (0) or j (1) mean direct.
    v = VLB(5, 0, "LINK_RATE 10Gbps, MODE classic, FLOWLETS false, SEED 7")
    per = offer(v, 1000, 20, nflows=1)
    share = per / per.sum()
    assert per[0] == 0
    assert abs(share[1] - 0.4) < 0.02
    assert all(abs(share[x] - 0.2) < 0.02 for x in (2, 3, 4))
    # With flowlets: each flow keeps one path; flows are spread the same way.
    v = VLB(5, 0, "LINK_RATE 10Gbps, MODE classic, SEED 7, FLOW_TABLE 1000000")
    tm = flow_templates(4000, 1, 100)
    ports = v.send(flow_batch(tm, np.arange(4000)), 0)
    again = v.send(flow_batch(tm, np.arange(4000)), 1)
    assert (ports == again).all()
    share = np.bincount(ports, minlength=5) / 4000
    assert abs(share[1] - 0.4) < 0.04 and all(abs(share[x] - 0.2) < 0.03 for x in (2, 3, 4))


def test_seed_makes_classic_repeatable():
    runs = []
    for _ in range(2):
        v = VLB(6, 2, "LINK_RATE 10Gbps, MODE classic, FLOWLETS false, SEED 99")
        runs.append(offer(v, 100, 3, j=4, nflows=1).tolist())
    assert runs[0] == runs[1]


@pytest.mark.parametrize("mode", ["direct", "classic"])
def test_down_servers_never_chosen_and_counted(mode):
    v = VLB(5, 0, f"{FAST}, MODE {mode}, SEED 1")
    v.router.write_handler("vlb.peer", "3 down")
    per = offer(v, 20, 200)
    assert per[3] == 0 and per[0] == 0 and per[2] > 0 and per[4] > 0
    # Traffic toward a down server is dropped.
    ports = v.send([cluster_frame(3)] * 4 + [cluster_frame(1)], 200)
    assert ports.tolist()[:4] == [-1] * 4 and ports[4] >= 0
    assert drop_lines(v.router.read_handler("vlb.drops")) == {"output server down": 4}
    assert v.router.read_handler("vlb.peers") == "0\tself\n1\tup\n2\tup\n3\tdown\n4\tup"
    # Back up: used again from the next batch, by new flowlets (these flows' last packets
    # are more than DELTA ago).
    v.router.write_handler("vlb.peer", "3 up")
    per = offer(v, 20, 200, start=400)
    assert per[3] > 0


def test_all_intermediates_down_goes_direct_anyway():
    v = VLB(4, 0, f"{FAST}, FLOWLETS false")
    v.router.write_handler("vlb.peer", "2 down\n3 down")
    per = offer(v, 20, 50)
    assert per.tolist() == [0, 1000, 0, 0]


def test_peer_handler_errors_change_nothing():
    v = VLB(4, 1)
    for bad, why in [("1 down", "this server"), ("4 down", "out of range"),
                     ("2 sideways", "SERVER down"), ("", "SERVER down"),
                     ("2 down, 9 up", "out of range")]:
        with pytest.raises(HandlerError, match=why):
            v.router.write_handler("vlb.peer", bad)
    assert "down" not in v.router.read_handler("vlb.peers")


def test_named_drops():
    v = VLB(4, 1)
    frames = [cluster_frame(1), cluster_frame(4), cluster_frame(200), b"\x02\x01" * 5,
              bytes(Ether(dst="fe:00:00:02:00:01") / IP() / UDP()),
              bytes(Ether(dst="00:11:22:33:44:55") / IP() / UDP()), cluster_frame(2)]
    assert v.send(frames, 0).tolist() == [-1] * 6 + [2]
    assert v.read("drops") == {"output server is this server": 1,
                               "output server out of range": 2,
                               "too short for Ethernet": 1, "not a cluster MAC": 2}


def test_flows_told_apart_by_five_tuple_only():
    # Same 5-tuple, other TTL, ID and payload: one flowlet. Other source port: another.
    v = VLB(4, 0, "LINK_RATE 8Mbps, BURST 3000")
    v.send([cluster_frame(1, sport=7, size=1000)] * 3, 0)
    a = v.send([cluster_frame(1, sport=9, ttl=5, size=300)], 0)[0]
    b = v.send([cluster_frame(1, sport=9, ttl=60, size=500)], 1)[0]
    c = v.send([cluster_frame(1, sport=10, size=300)], 1)[0]
    assert a == b and c != a
    assert v.read("flowlets")["new flowlets"] == 3


def test_flowlets_avoid_path_changes_under_overload():
    """The paper's §6.2 experiment, small: one destination gets twice its direct budget
    (so load balancing kicks in) from 150 flows sending trains of 5 packets 1 ms apart,
    150-400 ms apart. Without flowlets, packets of a train change paths many times; with
    flowlets, almost never."""

    def changes(flowlets: str) -> tuple[float, np.ndarray]:
        v = VLB(4, 0, f"LINK_RATE 16Mbps, FLOWLETS {flowlets}, DELTA 100ms, SEED 1")
        nflows, ms = 150, 2000
        rng = np.random.default_rng(3)
        sends: list[list[int]] = [[] for _ in range(ms)]
        for f in range(nflows):
            t = int(rng.integers(0, 400))
            while t < ms:
                for i in range(min(5, ms - t)):
                    sends[t + i].append(f)
                t += 5 + int(rng.integers(150, 400))
        tm = flow_templates(nflows, 1, 1000)
        last = np.full(nflows, -1)
        last_t = np.zeros(nflows, np.int64)
        within = 0
        per = np.zeros(4, np.int64)
        for t, flows in enumerate(sends):
            if not flows:
                continue
            fl = np.array(flows)
            for f, p in zip(fl.tolist(), v.send(flow_batch(tm, fl), t).tolist(), strict=True):
                within += last[f] >= 0 and last[f] != p and t - last_t[f] < 100
                last[f], last_t[f] = p, t
                per[p] += 1
        return within / nflows, per

    without, per_without = changes("false")
    with_, per_with = changes("true")
    assert per_without[2] > 0 and per_with[2] > 0  # load balancing did kick in
    assert without > 5 and with_ < 0.5 and without > 20 * max(with_, 0.01)


def test_reset_and_handler_formats():
    v = VLB(4, 0, FAST)
    offer(v, 10, 10)
    assert v.read("paths")["direct 1"] > 0
    assert v.read("flowlets")["new flowlets"] == 64  # offer()'s flows, each new once
    v.router.write_handler("vlb.reset")
    assert v.router.read_handler("vlb.paths") == ""
    assert v.read("flowlets") == {"new flowlets": 0, "kept on path": 0,
                                  "moved, path full": 0, "spread, no path with room": 0}


def test_config_language_run(tmp_path):
    # FromDump -> ... -> DirectVLB with times and rates in the configuration's units; the
    # frames scapy reads back carry cluster MACs toward server 2.
    pkts = [IP(src="10.0.0.1", dst=f"10.2.0.{i}") / UDP(sport=i, dport=53) for i in range(20)]
    src = write_pcap(tmp_path / "in.pcap", [bytes(p) for p in pkts], linktype=101)
    outs = [tmp_path / f"o{x}.pcap" for x in range(3)]
    r = run_text(
        f"FromDump({q(src)}) -> CheckIPHeader -> ClusterEncap(2, 3)"
        " -> vlb :: DirectVLB(SELF 0, SERVERS 3, LINK_RATE 1Gbps, DELTA 50ms, BURST 100000);"
        + "".join(f"vlb[{x}] -> ToDump({q(o)});" for x, o in enumerate(outs)))
    got = [read_frames(o) for o in outs]
    assert [len(g) for g in got] == [0, 0, 20]
    for f, p in zip(got[2], pkts, strict=True):
        dst = bytes.fromhex(Ether(f).dst.replace(":", ""))
        assert decode(dst) == (2, 3, ip_int(p.dst))
        assert bytes(Ether(f)[IP]) == bytes(p)
    assert drop_lines(r.read_handler("vlb.paths")) == {"direct 2": 20}


def test_python_api():
    from routebricks.elements import DirectVLB, Discard, Idle

    vlb = DirectVLB(SELF=1, SERVERS=3, LINK_RATE="1Gbps", DELTA="20ms", MODE="classic",
                    FLOWLETS=False, name="vlb")
    Idle() >> vlb
    for x in range(3):
        vlb[x] >> Discard()
    r = Router.from_elements(vlb)
    assert vlb.delta == 0.02 and vlb.link_rate == 125e6 and vlb.direct_rate == 125e6
    assert "MODE classic" in r.flat_config()


@pytest.mark.parametrize("config, match", [
    ("SELF 4, SERVERS 4, LINK_RATE 1Gbps", "SELF 4 is not one of the 4 servers"),
    ("SELF 0, SERVERS 4", "missing required argument LINK_RATE"),
    ("SELF 0, SERVERS 4, LINK_RATE fast", "bad value 'fast' for LINK_RATE"),
    ("SELF 0, SERVERS 4, LINK_RATE 0", "LINK_RATE must be more than 0"),
    ("SELF 0, SERVERS 4, LINK_RATE 1Gbps, DIRECT_RATE 2Gbps", "DIRECT_RATE is more than"),
    ("SELF 0, SERVERS 4, LINK_RATE 1Gbps, MODE random", "bad value 'random' for MODE"),
    ("SELF 0, SERVERS 4, LINK_RATE 1Gbps, DELTA soon", "bad value 'soon' for DELTA"),
    ("SELF 0, SERVERS 257, LINK_RATE 1Gbps", "SERVERS"),
    ("SELF 0, SERVERS 4, LINK_RATE 1Gbps, BURST 0", "BURST must be more than 0"),
])
def test_config_errors(config, match):
    outs = "".join(f"vlb[{x}] -> Discard;" for x in range(4))
    with pytest.raises(ConfigError, match=match):
        Router.from_text(f"Idle -> vlb :: DirectVLB({config}); {outs}")


def test_outputs_must_match_servers():
    r = Router.from_text("Idle -> vlb :: DirectVLB(SELF 0, SERVERS 4, LINK_RATE 1Gbps);"
                         "vlb[0] -> Discard; vlb[1] -> Discard;")
    with pytest.raises(ConfigError, match="has 2 outputs but SERVERS is 4"):
        r.initialize()
