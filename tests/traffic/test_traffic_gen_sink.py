"""Generator and sink: accounting on crafted streams, then real traffic over a veth pair.

The network tests build their own two namespaces joined by one veth pair (the ``testbed``
fixture of conftest.py) and send only between them. They need root and network namespaces
and skip with the reason otherwise. The testbed, threads and subprocesses are always torn
down, also when a test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from scapy.layers.l2 import ARP, Ether

from routebricks.packet.batch import PacketBatch
from routebricks.traffic import frames as fr
from routebricks.traffic import sink as sk
from routebricks.traffic.frames import FrameSpec, build_frames
from routebricks.traffic.sink import FlowAccounting

N_FLOWS = 4
PER_FLOW = 100


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Compile (or load) the numba kernels once, outside any test's timing."""
    fr.warmup()
    sk.warmup()


# --------------------------------------------------------------------------
# Accounting on crafted streams (no network)
# --------------------------------------------------------------------------
def reference(stream: list[tuple[int, int]]) -> dict[str, int]:
    """The definitions of the sink's docstring, in plain Python."""
    top: dict[int, int] = {}
    in_run: dict[int, bool] = {}
    reordered = runs = dups = 0
    for f, s in stream:
        m = top.get(f, -1)
        if s > m:
            top[f] = s
            in_run[f] = False
        elif s == m:
            dups += 1
            in_run[f] = False
        else:
            reordered += 1
            if not in_run.get(f):
                runs += 1
            in_run[f] = True
    return {
        "reordered": reordered,
        "reordered_sequences": runs,
        "duplicates": dups,
        "expected": sum(m + 1 for m in top.values()),
    }


def crafted_order() -> list[tuple[int, int]]:
    """4 flows x 100 frames, interleaved, with known loss, reordering and a duplicate."""
    order = [(f, s) for s in range(PER_FLOW) for f in range(N_FLOWS)]
    drop = {(1, s) for s in range(10, 15)} | {(2, 99), (3, 0)}  # 2 (99): invisible to seq gaps
    order = [x for x in order if x not in drop]

    def move_after(item: tuple[int, int], after: tuple[int, int]) -> None:
        order.remove(item)
        order.insert(order.index(after) + 1, item)

    move_after((0, 50), (0, 53))  # 1 reordered frame, 1 sequence
    move_after((3, 20), (3, 21))  # a swap: 1 reordered frame, 1 sequence
    move_after((1, 31), (1, 40))  # 30, 31 after 40: 2 reordered frames, 1 sequence
    move_after((1, 30), (1, 40))
    order.insert(order.index((0, 99)) + 1, (0, 99))  # a duplicate
    return order


def test_accounting_of_lossy_reordered_stream() -> None:
    frames = build_frames(FrameSpec(flows=N_FLOWS), N_FLOWS * PER_FLOW, timestamp_ns=10_000)
    order = crafted_order()
    idx = np.array([s * N_FLOWS + f for f, s in order])
    b = frames.batch.select(idx)  # the frames themselves, in the crafted arrival order
    rx = 10_000 + 5_000 + np.arange(len(idx), dtype=np.int64)  # latency 5000 + i ns
    acct = FlowAccounting(flows_hint=1)  # grows to 4 flows on the way
    cut = [0, 7, 150, len(idx)]  # several batches: state carries across them
    for a, z in zip(cut, cut[1:], strict=False):
        acct.update_frames(b.pool, b.off[a:z], b.length[a:z], rx[a:z])
    arp = PacketBatch.from_bytes([bytes(Ether() / ARP()).ljust(60, b"\0")])
    acct.update_frames(arp.pool, arp.off, arp.length, 1)

    r = acct.result(expect=N_FLOWS * PER_FLOW, per_flow=True)
    ref = reference(order)
    assert r.received == 394 and r.other == 1 and r.flows_seen == 4
    assert r.duplicates == ref["duplicates"] == 1
    assert r.reordered == ref["reordered"] == 4
    assert r.reordered_sequences == ref["reordered_sequences"] == 3
    assert r.reorder_fraction == pytest.approx(4 / 394)
    assert r.lost_seq == 6  # 5 of flow 1 and the first of flow 3; not flow 2's last
    assert ref["expected"] - (r.received - r.duplicates) == 6
    assert r.expected == 400 and r.lost == 7 and r.loss_fraction == pytest.approx(7 / 400)
    assert r.frame_bytes == 394 * 64
    lat = r.latency
    assert (lat.count, lat.min_ns, lat.max_ns, lat.negative) == (394, 5000, 5393, 0)
    assert lat.mean_ns == pytest.approx(5000 + 393 / 2)
    assert abs(lat.p50_ns - 5196) <= 5196 * 0.016 and abs(lat.p99_ns - 5389) <= 5389 * 0.016
    assert r.pps == pytest.approx(393 / 393e-9)  # one frame per ns of receive time
    rows = {row["flow"]: row for row in r.per_flow or []}
    assert rows[1]["lost_seq"] == 5 and rows[1]["reordered"] == 2 and rows[0]["duplicates"] == 1
    assert rows[2]["max_seq"] == 98 and rows[3]["packets"] == 99
    # Without --expect, loss comes from sequence gaps only.
    assert acct.result().lost == 6 and acct.result().expected == 399


def test_accounting_paper_example() -> None:
    """<p1, p4, p2, p3, p5>: two frames overtaken, one reordered sequence (paper §6.2)."""
    acct = FlowAccounting()
    seq = np.array([1, 4, 2, 3, 5]) - 1
    acct.update(np.zeros(5, np.int64), seq, np.zeros(5, np.int64), np.arange(1, 6), 64)
    r = acct.result()
    assert (r.reordered, r.reordered_sequences, r.lost, r.duplicates) == (2, 1, 0, 0)


def test_accounting_flow_limits() -> None:
    acct = FlowAccounting(flows_hint=2, max_flows=8)
    acct.update(np.array([1, 7, 8, 1000]), np.zeros(4, np.int64), np.zeros(4), 5, 64)
    r = acct.result()
    assert r.received == 2 and r.flow_overflow == 2 and acct.capacity == 8
    with pytest.raises(ValueError):
        acct.update(np.array([-1]), np.zeros(1), np.zeros(1), 1, 64)


def test_latency_histogram_accuracy() -> None:
    rng = np.random.default_rng(5)
    lat = rng.lognormal(10, 1.5, 50_000).astype(np.int64)
    acct = FlowAccounting()
    n = lat.size
    acct.update(np.zeros(n, np.int64), np.arange(n), np.zeros(n, np.int64), lat, 64)
    got = acct.latency()
    for q, value in ((0.5, got.p50_ns), (0.99, got.p99_ns)):
        exact = np.quantile(lat, q, method="inverted_cdf")
        assert abs(value - exact) <= 0.016 * exact + 1
    assert (got.min_ns, got.max_ns) == (lat.min(), lat.max())


# --------------------------------------------------------------------------
# Network namespaces
# --------------------------------------------------------------------------
@contextlib.contextmanager
def sink_thread(tb: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """A Sink on b:eth0, running in a thread; yields once it listens. box['result'] after."""
    from routebricks.netns.core import netns_context
    from routebricks.traffic.sink import Sink

    box: dict[str, Any] = {}
    ready = threading.Event()

    def target() -> None:
        try:
            with netns_context(tb.ns("b")):
                s = Sink("eth0", **kwargs)
            box["sink"] = s
            ready.set()
            try:
                box["result"] = s.run()
            finally:
                s.close()
        except BaseException as e:  # noqa: BLE001 - re-raised in the test
            box["error"] = e
            ready.set()

    t = threading.Thread(target=target, name="sink", daemon=True)
    t.start()
    try:
        assert ready.wait(30), "sink did not start"
        if "error" in box:
            raise box["error"]
        yield box
        t.join(30)
        assert not t.is_alive(), "sink did not stop"
        if "error" in box:
            raise box["error"]
    finally:
        if t.is_alive() and "sink" in box:
            box["sink"].stop()
            t.join(10)


@pytest.mark.netns
def test_gen_to_sink_exact_count(testbed: Any) -> None:
    from routebricks.traffic.gen import Generator

    n = 20_000
    spec = FrameSpec(dst="198.19.0.1", dst_mac=testbed.mac("b", "eth0"), flows=8)
    with sink_thread(testbed, expect=n, idle=3.0, duration=30) as box:
        with testbed.inside("a"):
            g = Generator("eth0", spec, rate="50kpps", count=n, kp=32, progress=False)
        try:
            gr = g.run()
        finally:
            g.close()
    sr = box["result"]
    assert (gr.sent, gr.attempted, gr.busy_drops, gr.stop_reason) == (n, n, 0, "count")
    assert gr.frame_bytes == n * 64 and gr.target_pps == 50_000
    assert sr.stop_reason == "expect"
    assert sr.received == n and sr.lost == 0 and sr.lost_seq == 0
    assert sr.reordered == 0 and sr.duplicates == 0 and sr.ring_drops == 0
    assert sr.flows_seen == 8 and sr.frame_bytes == n * 64
    lat = sr.latency
    assert lat.count == n and lat.negative == 0
    assert 0 < lat.min_ns <= lat.p50_ns <= lat.p99_ns <= lat.max_ns < 10**9
    assert sr.pps > 0 and gr.pps > 0
    # The generator's source addresses default to the interface's own.
    assert gr.interface == "eth0"


@pytest.mark.netns
def test_gen_to_sink_imix_random_destinations(testbed: Any) -> None:
    from routebricks.traffic.gen import Generator

    n = 6_000
    spec = FrameSpec(
        dst="10.0.0.0/8,172.16.0.0/12",
        dst_per_packet=True,
        dst_mac=testbed.mac("b", "eth0"),
        flows=100,
        order="random",
        size="imix",
        seed=3,
    )
    with sink_thread(testbed, expect=n, idle=3.0, duration=30, per_flow=True) as box:
        with testbed.inside("a"):
            g = Generator("eth0", spec, rate="30kpps", count=n, kp=64, progress=False)
        try:
            gr = g.run()
        finally:
            g.close()
    sr = box["result"]
    assert gr.sent == n and sr.received == n and sr.lost == 0 and sr.reordered == 0
    assert sr.frame_bytes == gr.frame_bytes  # both count frames with FCS
    rows = sr.per_flow or []
    assert len(rows) == 100 and sum(r["packets"] for r in rows) == n
    assert all(r["lost_seq"] == 0 and r["max_seq"] == r["packets"] - 1 for r in rows)


@pytest.mark.netns
def test_gen_duration_and_stop(testbed: Any) -> None:
    from routebricks.traffic.gen import Generator

    spec = FrameSpec(dst="198.19.0.1", dst_mac=testbed.mac("b", "eth0"))
    with sink_thread(testbed, idle=1.0, duration=30) as box:
        with testbed.inside("a"):
            g = Generator("eth0", spec, rate=5000, duration=0.3, progress=False)
        try:
            gr = g.run()
        finally:
            g.close()
    sr = box["result"]
    assert gr.stop_reason == "duration" and gr.sent > 0
    assert sr.stop_reason == "idle" and sr.received == gr.sent and sr.lost == 0


# --------------------------------------------------------------------------
# The CLI, as subprocesses
# --------------------------------------------------------------------------
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "routebricks.cli", *args]


def wait_for_stderr(p: subprocess.Popen[str], text: str, timeout: float = 30) -> str:
    """Read p's stderr lines until one contains ``text``; fail if p exits or time runs out."""
    assert p.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(p.stderr, selectors.EVENT_READ)
    seen = ""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=0.2):
                if p.poll() is not None:
                    break
                continue
            line = p.stderr.readline()
            if not line:
                break
            seen += line
            if text in line:
                return seen
    finally:
        sel.close()
    raise AssertionError(f"no {text!r} from {p.args!r}; stderr so far:\n{seen}")


@pytest.mark.netns
def test_cli_gen_and_sink_json(testbed: Any) -> None:
    n = 3_000
    sink = testbed.popen(
        "b",
        _cli("sink", "eth0", "--expect", str(n), "--idle", "3", "--duration", "40", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_stderr(sink, "sink: listening on eth0")
        gen = subprocess.run(
            _cli(
                "gen", "eth0", "--netns", testbed.ns("a"),
                "--dst-mac", testbed.mac("b", "eth0"), "--dst", "198.19.0.1",
                "--flows", "3", "--size", "128", "--rate", "20kpps",
                "--count", str(n), "--json",
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        assert gen.returncode == 0, gen.stderr
        out, err = sink.communicate(timeout=60)
        assert sink.returncode == 0, err
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.communicate()
    g = json.loads(gen.stdout)
    s = json.loads(out)
    assert g["sent"] == n and g["busy_drops"] == 0 and g["netns"] == testbed.ns("a")
    assert g["frame_bytes"] == n * 128 and g["flows"] == 3
    assert s["received"] == n and s["lost"] == 0 and s["loss_fraction"] == 0
    assert s["reordered"] == 0 and s["flows_seen"] == 3 and s["stop_reason"] == "expect"
    assert s["frame_bytes"] == n * 128
    assert {"min_ns", "mean_ns", "p50_ns", "p99_ns", "max_ns"} <= set(s["latency"])
    assert s["mpps"] > 0 and g["mpps"] > 0


@pytest.mark.netns
def test_cli_human_output(testbed: Any) -> None:
    sink = testbed.popen(
        "b",
        _cli("sink", "eth0", "--expect", "200", "--duration", "40"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_stderr(sink, "listening")
        gen = testbed.run(
            "a",
            _cli("gen", "eth0", "--count", "200", "--rate", "10kpps", "--no-progress"),
            timeout=60,
        )
        assert gen.returncode == 0, gen.stderr
        out, err = sink.communicate(timeout=60)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.communicate()
    assert "sent" in gen.stdout and "200" in gen.stdout and "Mpps" in gen.stdout
    for word in ("received", "lost", "reordered", "latency p50/p99/max", "Mpps"):
        assert word in out, out
    # stderr is a pipe: no live progress, nothing after the line scripts wait for.
    assert err == "", err


@pytest.mark.netns
def test_cli_sink_progress_when_asked(testbed: Any) -> None:
    """--progress with stderr not a terminal: one plain line a second, for a log."""
    n = 3_000
    sink = testbed.popen(
        "b",
        _cli("sink", "eth0", "--expect", str(n), "--duration", "40", "--progress"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_stderr(sink, "listening")
        gen = testbed.run(
            "a", _cli("gen", "eth0", "--count", str(n), "--rate", "2kpps"), timeout=60
        )
        assert gen.returncode == 0, gen.stderr
        out, err = sink.communicate(timeout=60)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.communicate()
    assert sink.returncode == 0, err
    lines = [line for line in err.splitlines() if line.startswith("sink eth0: ")]
    assert lines, err
    for line in lines:
        assert " packets  " in line and " Mpps  lost " in line and "  reordered " in line, line
    assert "\x1b[" not in err  # plain text, no terminal control
    assert "received" in out and "3,000" in out  # the result as without --progress


@pytest.mark.netns
def test_cli_sink_live_line_on_a_terminal(testbed: Any) -> None:
    """stderr a terminal: a live line by default (cleared when the sink stops)."""
    master, slave = pty.openpty()
    p = None
    try:
        p = testbed.popen(
            "b", _cli("sink", "eth0", "--duration", "1"), stdout=subprocess.PIPE,
            stderr=slave, text=True, env={**os.environ, "COLUMNS": "160"},
        )  # fmt: skip
        os.close(slave)
        slave = -1
        screen = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the sink exited and closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
            elif p.poll() is not None:
                break
        out, _ = p.communicate(timeout=30)
    finally:
        if p is not None and p.poll() is None:
            p.kill()
            p.communicate()
        os.close(master)
        if slave >= 0:
            os.close(slave)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode(errors="replace"))
    assert p.returncode == 0, text
    assert "sink eth0: 0 packets  0.000 Mpps  lost 0 (0.0000%)  reordered 0 (0.0000%)" in text
    assert "packets" not in out  # the live line goes to stderr only
    assert "received" in out


@pytest.mark.netns
def test_cli_gen_unattainable_rate_says_generator_limited(testbed: Any) -> None:
    """Asked far above what any generator here can do, gen says it is the limit, on stderr
    and apart from the figures, and in its JSON."""
    args = ("gen", "eth0", "--rate", "1000Mpps", "--duration", "0.3", "--no-progress")
    human = testbed.run("a", _cli(*args), timeout=60)
    assert human.returncode == 0, human.stderr
    assert "generator limited: sent " in human.stderr
    assert " of the 1000.000 Mpps asked (" in human.stderr
    assert "the CPU of this process is the bottleneck" in human.stderr and "--kp" in human.stderr
    assert "generator limited" not in human.stdout
    rows = {
        words[0]: " ".join(words[1:])
        for words in map(str.split, human.stdout.splitlines())
        if words[:1] in (["rate"], ["target"])
    }
    # Rate and target in one unit.
    assert rows["rate"].endswith(" Mpps") and rows["target"] == "1000.000 Mpps", human.stdout

    js = testbed.run("a", _cli(*args, "--json"), timeout=60)
    assert js.returncode == 0, js.stderr
    d = json.loads(js.stdout)
    assert d["generator_limited"] is True and d["target_pps"] == 1e9
    assert d["limit_message"].startswith("generator limited: sent ")
    assert d["limit_message"] in js.stderr


def test_shortfall_message_by_cause() -> None:
    """Not limited: nothing to say; the send loop behind: its CPU; the send loop on pace but
    frames refused: the device, not this process."""
    from routebricks.traffic.cli import shortfall_message
    from routebricks.traffic.gen import GenResult

    def result(sent: int, attempted: int, target: float | None, kp: int = 32) -> GenResult:
        return GenResult(
            interface="eth0", sent=sent, attempted=attempted, busy_drops=attempted - sent,
            oversize_drops=0, frame_bytes=sent * 64, elapsed_s=1.0, pps=float(sent),
            bps=sent * 512.0, target_pps=target, batches=attempted // kp,
            stop_reason="duration", flows=1, size="64", kp=kp, tx_mode="sendmmsg",
        )  # fmt: skip

    assert shortfall_message(result(100_000, 100_000, None)) is None  # --rate max
    assert shortfall_message(result(96_000, 96_000, 100_000)) is None  # within 5%
    assert not result(96_000, 96_000, 1e5).to_dict()["generator_limited"]

    cpu = result(296_000, 296_000, 500_000)
    assert cpu.generator_limited and cpu.to_dict()["generator_limited"]
    msg = shortfall_message(cpu)
    assert msg is not None
    assert msg.startswith("generator limited: sent 0.296 Mpps of the 0.500 Mpps asked (59%)")
    assert "the CPU of this process is the bottleneck" in msg and "--kp (now 32" in msg
    assert "--size" not in msg and "refused" not in msg
    by_bits = shortfall_message(result(296_000, 296_000, 500_000, kp=512), by_bits=True)
    assert by_bits is not None and "--size" in by_bits and "--kp" not in by_bits

    refused = shortfall_message(result(300_000, 499_000, 500_000))
    assert refused is not None and refused.startswith("generator limited: sent 0.300 Mpps")
    assert "kernel refused 199,000 frames" in refused and "not this process" in refused
    assert "CPU" not in refused


# --------------------------------------------------------------------------
# CLI help and errors (in-process; nothing opens a socket or changes namespace)
# --------------------------------------------------------------------------
def _main() -> Any:
    from routebricks.cli import main

    return main


@pytest.mark.parametrize("cmd", ["gen", "sink"])
def test_cli_help_has_examples(cmd: str) -> None:
    res = CliRunner().invoke(_main(), [cmd, "--help"])
    assert res.exit_code == 0
    assert "Examples:" in res.output and f"routebricks {cmd} " in res.output
    assert "--netns" in res.output and "--json" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gen", "lo", "--size", "10"], "frame size 10"),
        (["gen", "lo", "--rate", "fast"], "bad rate"),
        (["gen", "lo", "--dst", "10.0.0.300"], "bad IPv4"),
        (["gen", "lo", "--netns", "rbt-no-such-ns-0"], "no network namespace"),
        (["sink", "lo", "--netns", "rbt-no-such-ns-0"], "no network namespace"),
        (["gen", "rbtnosuchif0", "--count", "1"], "cannot open"),
    ],
)
def test_cli_errors(args: list[str], message: str) -> None:
    res = CliRunner().invoke(_main(), args)
    assert res.exit_code == 1
    assert message in res.output
