"""``routebricks simulate``: the paper's claims about VLB (§3.2, §3.3, §6.1), checked on
simulated clusters far larger than namespaces can emulate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from routebricks.cluster.simulate import (
    SimulationError,
    fly_down_links,
    fly_link_ends,
    fly_up_links,
    maxmin_share,
    routing,
    topology,
    traffic_matrix,
)
from routebricks.cluster.simulate_cli import simulate
from routebricks.cluster.simulate_fluid import simulate_fluid
from routebricks.cluster.simulate_packets import PacketOptions, simulate_packets

BIG = 1024


def fluid(matrix: str, vlb: str, kind: str = "mesh", k: int | None = None, n: int = BIG,
          load: float = 1.0):
    topo = topology(kind, n, k)
    return simulate_fluid(traffic_matrix(matrix, n, load, seed=3), topo, routing(topo, vlb))


# ---------------------------------------------------------------------- fluid model, N = 1,024
@pytest.mark.parametrize("matrix", ["uniform", "permutation"])
def test_classic_vlb_carries_uniform_and_permutation_at_full_rate_within_3r(matrix: str) -> None:
    res = fluid(matrix, "classic")
    assert res.throughput == pytest.approx(1.0, abs=1e-9)
    assert res.dropped_output == pytest.approx(0, abs=1e-9)
    assert res.dropped_links == pytest.approx(0, abs=1e-9)
    assert res.link_load.max() <= 1 + 1e-9  # 2R/N links, exactly enough (§3.2)
    assert res.load_io.max() <= 3 + 1e-9
    # The VLB tax: every server also relays ~R as an intermediate.
    assert res.load_intermediate.mean() == pytest.approx(1 - 2 / BIG, rel=1e-6)


def test_direct_vlb_processes_about_2r_under_the_uniform_matrix() -> None:
    res = fluid("uniform", "direct")
    assert res.throughput == pytest.approx(1.0, abs=1e-9)
    assert res.load_io.max() == pytest.approx(2.0, abs=0.01)
    assert res.load_io.min() == pytest.approx(2.0, abs=0.01)


def test_direct_vlb_carries_a_permutation_at_full_rate_within_3r() -> None:
    res = fluid("permutation", "direct")
    assert res.throughput == pytest.approx(1.0, abs=1e-9)
    assert res.link_load.max() <= 1 + 1e-9
    assert res.load_io.max() <= 3 + 1e-9


@pytest.mark.parametrize("vlb", ["classic", "direct"])
def test_nfly_carries_full_rate_with_io_servers_at_2r_and_switches_at_2kr(vlb: str) -> None:
    for matrix in ("uniform", "permutation"):
        res = fluid(matrix, vlb, "nfly", k=4)
        assert res.throughput == pytest.approx(1.0, abs=1e-9)
        assert res.link_load.max() <= 1 + 1e-9  # R per link each way
        assert res.load_io.max() == pytest.approx(2.0)  # io servers are never intermediates
        assert res.load_switch.size == 5 * 256
        assert res.load_switch.max() == pytest.approx(2 * 4)


def test_an_oversubscribed_output_is_shared_max_min_fairly() -> None:
    n = 16
    t = np.zeros((n, n))
    t[1:5, 0] = [0.1, 0.5, 0.9, 0.9]  # 2.4 R toward output 0
    t[5, 6] = 0.7  # bystanders keep all they send
    for vlb in ("classic", "direct"):
        topo = topology("mesh", n)
        res = simulate_fluid(t, topo, routing(topo, vlb))
        got = res.per_output["delivered"]
        assert got[0] == pytest.approx(1.0) and got[6] == pytest.approx(0.7)
        (o,) = res.fair.outputs
        assert o["output"] == 0 and o["inputs"] == 3 and o["level"] == pytest.approx(0.3)
        assert o["max_min_ratio"] <= 1.1
        assert res.dropped_output == pytest.approx(1.4)
    res = fluid("oversubscribed", "classic", n=64, load=0.5)
    assert res.fair.worst_ratio <= 1.1 and res.per_output["delivered"][0] == pytest.approx(1)


def test_maxmin_share_is_water_filling() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        d = rng.random((6, 6)) * (rng.random((6, 6)) < 0.7)
        got, level = maxmin_share(d, capacity=1.0)
        for j in range(6):
            # The slow way: raise the level until the column's capacity is used up.
            col, left, want = sorted(d[:, j]), 1.0, np.inf
            for i, x in enumerate(col):
                share = left / (len(col) - i)
                if x > share:
                    want = share
                    break
                left -= x
            assert level[j] == pytest.approx(want)
            assert got[:, j].sum() <= 1 + 1e-9
            assert np.allclose(got[:, j], np.minimum(d[:, j], want))


def test_oblivious_direct_vlb_overloads_links_where_classic_vlb_does_not() -> None:
    """A matrix whose direct shares and excess pile up on one link: s sends R/N to x and
    the rest to y; u sends all but R/N to x. Classic VLB fits 2R/N links; Direct VLB with
    an even spread of the excess needs ~3R/N there (why RB4 picks intermediates by their
    links' budgets)."""
    n = 8
    t = np.zeros((n, n))
    t[0, 1], t[0, 2], t[3, 1] = 1 / n, 1 - 1 / n, 1 - 1 / n
    topo = topology("mesh", n)
    classic = simulate_fluid(t, topo, routing(topo, "classic"))
    direct = simulate_fluid(t, topo, routing(topo, "direct"))
    assert classic.dropped_links == pytest.approx(0, abs=1e-12)
    assert direct.link_load.max() > 1.2 and direct.dropped_links > 0


# ---------------------------------------------------------------------- packet model, N = 64
def packets(matrix: str, vlb: str, load: float, **opts: object):
    topo = topology("mesh", 64)
    return simulate_packets(traffic_matrix(matrix, 64, load), topo, routing(topo, vlb),
                            PacketOptions(**opts))  # type: ignore[arg-type]


def test_flowlets_keep_classic_vlb_from_reordering() -> None:
    off = packets("uniform", "classic", 0.8, flowlets=False)
    on = packets("uniform", "classic", 0.8, flowlets=True)
    assert off.loss == on.loss == 0
    assert off.reordered > 0.01  # per-packet VLB: paths of different delays
    # δ (100 ms at 10 Gbit/s) is far above the spread of path delays ...
    assert PacketOptions().delta > 10 * on.latency["max"]
    # ... so a flow's packets stay on one path: reordering all but disappears.
    assert on.reordered < 0.001 and on.reordered < off.reordered / 20
    assert on.flowlet_stats["kept"] > on.offered / 2
    for res in (off, on):  # 0.8 of classic VLB's 3R
        assert res.load_io.mean() == pytest.approx(0.8 * 3, abs=0.05)


def test_packet_model_direct_vlb_uniform_no_loss_about_2r() -> None:
    res = packets("uniform", "direct", 0.9)
    assert res.loss == 0
    assert res.load_io.mean() == pytest.approx(0.9 * 2, abs=0.05)
    assert res.via_intermediate < 0.02
    # Two servers (24 µs each) and two queues: about 2 server latencies plus service.
    assert res.latency["p50"] > 2 * PacketOptions().server_latency


@pytest.mark.parametrize("vlb", ["classic", "direct"])
def test_packet_model_shares_an_oversubscribed_output_evenly(vlb: str) -> None:
    res = packets("oversubscribed", vlb, 1.0, flowlets=False, duration=8000)
    (o,) = res.fair.outputs
    assert o["inputs"] == 4 and o["max_min_ratio"] <= 1.1
    assert res.dropped > res.offered / 2  # 4R toward an R port


def test_packet_model_nfly_carries_a_permutation() -> None:
    topo = topology("nfly", 64, 4)
    res = simulate_packets(traffic_matrix("permutation", 64, 0.8, seed=1), topo,
                           routing(topo, "direct"), PacketOptions(flowlets=False))
    assert res.loss == 0 and res.load_io.max() <= 2 * 0.8 + 0.05
    assert res.load_switch.max() <= 2 * 4 * 0.8 + 0.3


@st.composite
def small_case(draw: st.DrawFn) -> tuple[np.ndarray, str, int | None, str, bool, int]:
    kind = draw(st.sampled_from(["mesh", "nfly"]))
    n, k = ((draw(st.integers(2, 6)), None) if kind == "mesh"
            else draw(st.sampled_from([(2, 2), (4, 2), (3, 3), (8, 2)])))
    t = np.array(draw(st.lists(st.lists(st.floats(0, 1), min_size=n, max_size=n),
                               min_size=n, max_size=n)))
    rows = t.sum(axis=1, keepdims=True)
    t = np.where(rows > 1, t / np.maximum(rows, 1e-12), t)
    return (t, kind, k, draw(st.sampled_from(["classic", "direct"])), draw(st.booleans()),
            draw(st.integers(1, 8)))


@settings(max_examples=40, deadline=None)
@given(small_case(), st.integers(0, 2**16))
def test_conservation_delivered_plus_dropped_is_offered(case: tuple, seed: int) -> None:
    t, kind, k, vlb, flowlets, buffer = case
    topo = topology(kind, t.shape[0], k)
    route = routing(topo, vlb)
    pk = simulate_packets(t, topo, route, PacketOptions(duration=150, buffer=buffer,
                                                        flows=2, flowlets=flowlets,
                                                        seed=seed))
    out = pk.per_output
    assert (out["delivered"] + out["dropped"] == out["offered"]).all()
    assert pk.dropped == pk.dropped_links + pk.dropped_ports
    fl = simulate_fluid(t, topo, route)
    out = fl.per_output
    assert np.allclose(out["delivered"] + out["dropped"], out["offered"])
    assert (out["delivered"] <= 1 + 1e-9).all()
    assert fl.offered - fl.delivered == pytest.approx(fl.dropped_output + fl.dropped_links)
    if vlb == "classic" or kind == "nfly":
        # VLB's guarantee: whatever the outputs can take, the fabric carries.
        assert fl.dropped_links == pytest.approx(0, abs=1e-9)


# ---------------------------------------------------------------------- the n-fly's wiring
@pytest.mark.parametrize(("k", "n"), [(2, 1), (2, 3), (3, 2)])
def test_nfly_wiring_is_the_clusters(k: int, n: int) -> None:
    nfly = pytest.importorskip("routebricks.cluster.nfly")
    topo = topology("nfly", k**n, k)
    io = [f"s{t}" for t in range(topo.ports)]
    fly, _ = nfly.arrange(k, io, [], set(io), 10**6)
    _, recv = fly_link_ends(topo)

    def name(server: int) -> str:
        if server < topo.ports:
            return io[server]
        stage, w = divmod(server - topo.ports, topo.paths)
        return fly.switches[(stage + 1, w)]

    for s in range(topo.ports):
        for x in range(topo.paths):
            for d in range(topo.ports):
                links = [*fly_up_links(topo, np.array(s), np.array(x)),
                         *fly_down_links(topo, np.array(d), np.array(x))]
                crossed = [io[s]] + [name(int(recv[int(ln)])) for ln in links]
                assert crossed == fly.route(s, x, d)


# ---------------------------------------------------------------------- the command
def invoke(*args: str):
    return CliRunner().invoke(simulate, list(args))


@pytest.mark.parametrize(("args", "option"), [
    (["--n", "1"], "--n"),
    (["--n", "100", "--topology", "nfly", "--k", "3"], "--n"),
    (["--topology", "nfly"], "--k"),
    (["--load", "0"], "--load"),
    (["--load", "-0.5"], "--load"),
    (["--load", "1.5"], "--load"),
    (["--n", "1024", "--model", "packet"], "--n"),
    (["--delta", "soon"], "--delta"),
    (["--matrix", "oversubscribed", "--fan-in", "64"], "--fan-in"),
])
def test_mistakes_are_usage_errors(args: list[str], option: str) -> None:
    res = invoke(*args)
    assert res.exit_code == 2, res.output
    assert option in res.output and "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_help_shows_examples() -> None:
    res = invoke("--help")
    assert res.exit_code == 0 and "Examples:" in res.output
    assert "routebricks simulate --n 1024" in res.output


def test_the_top_level_command_finds_simulate() -> None:
    from routebricks import cli

    res = CliRunner().invoke(cli.main, ["simulate", "--n", "8", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["model"] == "fluid" and data["throughput"] == pytest.approx(1.0)
    assert len(data["per_server"]["input"]) == 8


def test_plain_report_of_a_packet_run() -> None:
    res = invoke("--n", "8", "--model", "packet", "--vlb", "classic", "--matrix", "pair",
                 "--duration", "1ms")
    assert res.exit_code == 0, res.output
    assert "reordered" in res.output and "latency" in res.output
    assert "processing per io server" in res.output


def test_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    res = invoke("--n", "8", "--duration", "0.5ms", "--plot", str(tmp_path))
    assert res.exit_code == 0, res.output
    names = sorted(p.name.split("-")[0] for p in tmp_path.glob("*.png"))
    assert names == ["load", "reordering", "throughput"]


def test_simulation_errors_name_the_option() -> None:
    with pytest.raises(SimulationError, match="--k"):
        topology("nfly", 8)
    with pytest.raises(SimulationError, match="--direct-rate"):
        routing(topology("nfly", 8, 2), "direct", direct_rate=0.1)
