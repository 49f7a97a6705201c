"""``routebricks run --metrics``: real routers in subprocesses, scraped over HTTP and read
with prometheus_client's own parser (not ours): the counters grow between scrapes and agree
with the handlers, drops come by reason, each worker has its series, a restarted worker's
counters do not go back, a stopped worker does not hang a scrape, and a bad address or a
port in use is refused before the router starts."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from nstest import stop_router
from prometheus_client.parser import text_string_to_metric_families

from routebricks.errors import RouteBricksError
from routebricks.runtime.discovery import alive
from routebricks.runtime.metrics import RouterCollector, parse_listen_address
from routebricks.runtime.requests import HANDLER_ERROR, OK, Reply

#: Counted packets on worker 0, garbage for CheckIPHeader on worker 1.
TWO_WORKERS = ("src :: RatedSource(RATE 2000) -> c :: Counter -> Discard; "
               "bad :: RatedSource(\\<0102030405>, RATE 500) -> chk :: CheckIPHeader "
               "-> Discard; StaticThreadSched(bad 1)")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "run"
    monkeypatch.setenv("ROUTEBRICKS_RUN_DIR", str(d))
    monkeypatch.delenv("ROUTEBRICKS_SOCKET", raising=False)
    return d


def rb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "routebricks.cli", *args],
                          capture_output=True, text=True, timeout=60, env=os.environ.copy())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def metrics_router(run_dir: Path, port: int, *args: str,
                   config: str = TWO_WORKERS) -> Iterator[subprocess.Popen[str]]:
    """``run --name x --metrics 127.0.0.1:PORT ARGS``, once its metrics answer; stopped
    (as Ctrl-C does) afterwards."""
    p = subprocess.Popen([sys.executable, "-m", "routebricks.cli", "run", "-e", config,
                          "--name", "x", "--metrics", f"127.0.0.1:{port}", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while True:  # the metrics server starts just after the control socket
            if alive(str(run_dir / "x.sock")):
                with contextlib.suppress(OSError):
                    scrape(port)
                    break
            if p.poll() is not None or time.monotonic() > deadline:
                p.kill()
                raise AssertionError(f"router did not start: {p.communicate()[1]}")
            time.sleep(0.05)
        yield p
    finally:
        stop_router(p, timeout=60)


def scrape(port: int, timeout: float = 30) -> tuple[Samples, dict[str, str]]:
    """Every sample of /metrics by (name, labels), and every family's type."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
        assert r.status == 200
        text = r.read().decode()
    samples: Samples = {}
    types = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the samples of ``name`` whose labels include ``labels`` (e.g. over
    workers)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def workers_table() -> dict[int, tuple[int, str, int]]:
    """worker -> (pid, state, restarts), from the router's ``workers`` handler."""
    out = {}
    for line in rb("handler", "read", "--name", "x", "workers").stdout.splitlines():
        m = re.match(r"worker (\d+)\tpid (\d+)\t.*\t(\w+)\trestarts (\d+)$", line)
        assert m, line
        out[int(m[1])] = (int(m[2]), m[3], int(m[4]))
    return out


@pytest.mark.parametrize(("text", "want"), [
    ("127.0.0.1:9100", ("127.0.0.1", 9100)),
    (":9100", ("127.0.0.1", 9100)),
    ("localhost:9100", ("127.0.0.1", 9100)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("[::1]:9100", ("::1", 9100)),
])
def test_listen_addresses(text: str, want: tuple[str, int]) -> None:
    assert parse_listen_address(text) == want


@pytest.mark.parametrize(("text", "says"), [
    ("9100", "write ADDR:PORT"),
    ("127.0.0.1:", "write ADDR:PORT"),
    ("127.0.0.1:http", "write ADDR:PORT"),
    ("127.0.0.1:0", "use 1 to 65535"),
    ("127.0.0.1:70000", "use 1 to 65535"),
    ("::1:9100", "IPv6 address goes in brackets"),
    ("[127.0.0.1]:9100", "write ADDR:PORT"),
    ("example.org:9100", "'example.org' is not an IP address"),
    ("300.1.1.1:9100", "'300.1.1.1' is not an IP address"),
])
def test_bad_listen_addresses_say_what_to_write(text: str, says: str) -> None:
    with pytest.raises(RouteBricksError, match=re.escape(says)):
        parse_listen_address(text)


class FakeWorker:
    def __init__(self, wid: int, last: list[dict[str, Any]] | None = None) -> None:
        self.wid, self.alive, self.ready = wid, True, True
        self.last_stats, self.final_stats = last, None


class FakeSupervisor:
    """What the collector reads of a Supervisor: ``ask``, ``workers``, ``template``."""

    def __init__(self) -> None:
        self.workers = [FakeWorker(0)]
        self.restarts = 0
        self.answer: list[dict[str, Any]] | None = None  # None: the worker does not answer
        self.template = SimpleNamespace(elements={})

    def ask(self, kind: str, spec: str) -> Reply:
        if spec == "workers":
            return Reply(OK, f"worker 0\tpid 1\tcpu 0\trunning\trestarts {self.restarts}")
        assert (kind, spec) == ("read_each", "stats")
        if self.answer is None:
            return Reply(HANDLER_ERROR, "worker 0 did not answer within 5 s")
        return Reply(OK, f"worker 0: {json.dumps(self.answer)}")


def counter_rows(packets: int, name: str = "c") -> list[dict[str, Any]]:
    return [{"element": name, "class": "Counter", "calls": packets, "packets": packets,
             "self_ns": 1000 * packets, "drop_reasons": {"x": packets // 10}}]


def collected(collector: RouterCollector) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in collector.collect() for s in family.samples}


def test_counters_never_go_back() -> None:
    """Against a stand-in supervisor: a worker that stops answering shows its last
    snapshot, never less than a scrape showed; a restarted worker's slot counts on from
    the larger of the two; an element a new configuration took away keeps its count, and
    one of that name added later counts on top."""
    sup = FakeSupervisor()
    collector = RouterCollector(sup, name="x", config="<-e>", version="0")  # type: ignore[arg-type]
    c = {"element": "c", "class": "Counter", "worker": "0"}

    def packets() -> float:
        return value(collected(collector), "routebricks_element_packets_total", **c)

    sup.answer = counter_rows(100)
    samples = collected(collector)
    assert value(samples, "routebricks_element_packets_total", **c) == 100
    assert value(samples, "routebricks_element_drops_total", **c, reason="x") == 10
    assert value(samples, "routebricks_element_self_seconds_total", **c) == 100e-6
    assert value(samples, "routebricks_element_self_seconds_per_packet", **c) == 1e-6
    sup.answer, sup.workers[0].last_stats = None, counter_rows(90)  # hung; older snapshot
    assert packets() == 100
    sup.workers[0].last_stats = counter_rows(120)
    assert packets() == 120
    sup.workers[0].last_stats = counter_rows(150)  # its last snapshot before it died
    sup.workers, sup.restarts = [FakeWorker(0)], 1
    sup.answer = counter_rows(10)
    samples = collected(collector)
    assert value(samples, "routebricks_element_packets_total", **c) == 160
    assert value(samples, "routebricks_worker_restarts_total", worker="0") == 1
    sup.answer = counter_rows(20, name="d")  # a new configuration without c
    assert packets() == 160
    sup.answer = counter_rows(5)  # c again, a new one
    assert packets() == 165


def test_scrapes_agree_with_the_handlers_per_worker_and_reason(run_dir: Path) -> None:
    port = free_port()
    with metrics_router(run_dir, port, "-j", "2"):
        first, types = scrape(port)
        count = int(rb("handler", "read", "--name", "x", "c.count").stdout)
        time.sleep(0.5)
        second, _ = scrape(port)

        # Names and types follow Prometheus' conventions.
        assert all(name.startswith("routebricks_") for name in types)
        assert types["routebricks_element_packets"] == "counter"
        assert types["routebricks_element_drops"] == "counter"
        assert types["routebricks_element_self_seconds"] == "counter"
        assert types["routebricks_element_self_seconds_per_packet"] == "gauge"
        assert types["routebricks_worker_up"] == "gauge"
        assert types["routebricks_worker_restarts"] == "counter"
        assert types["routebricks_router_info"] == "gauge"  # an info in the text format
        assert types["routebricks_ring_drops"] == "counter"
        info = next(dict(ls) for (n, ls) in second if n == "routebricks_router_info")
        assert info["name"] == "x" and info["config"] == "<-e>" and info["version"]

        # The counters grow, and bracket the handler read between the two scrapes.
        packets = "routebricks_element_packets_total"
        before, after = (total(s, packets, element="c") for s in (first, second))
        assert 0 < before <= count <= after and before < after
        assert total(second, "routebricks_element_calls_total", element="c") > 0
        assert total(second, "routebricks_element_self_seconds_total", element="c") > 0
        cost = value(second, "routebricks_element_self_seconds_per_packet", element="c",
                     **{"class": "Counter"}, worker="0")
        assert 0 < cost < 0.01

        # Per worker: the Counter's packets on worker 0, CheckIPHeader's drops on worker 1,
        # by reason; worker 1 has series for every element too, at zero where nothing ran.
        drops = "routebricks_element_drops_total"
        assert value(second, packets, element="c", **{"class": "Counter"}, worker="0") > 0
        assert value(second, packets, element="c", **{"class": "Counter"}, worker="1") == 0
        tiny = [value(s, drops, element="chk", **{"class": "CheckIPHeader"}, worker="1",
                      reason="tiny packet") for s in (first, second)]
        assert 0 < tiny[0] < tiny[1]
        assert total(second, drops, worker="0") == 0
        for w in ("0", "1"):
            assert value(second, "routebricks_worker_up", worker=w) == 1
            assert value(second, "routebricks_worker_restarts_total", worker=w) == 0


def test_counters_survive_a_worker_restart_and_a_stopped_worker(run_dir: Path) -> None:
    port = free_port()
    chk = {"element": "chk", "class": "CheckIPHeader", "worker": "1"}
    drops = "routebricks_element_drops_total"
    with metrics_router(run_dir, port, "-j", "2", "--watchdog", "0"):
        time.sleep(1)
        pid = workers_table()[1][0]

        # A stopped worker (SIGSTOP; no watchdog here) answers nothing: the scrape still
        # ends, within the supervisor's 5 s request timeout, with its last counters.
        before, _ = scrape(port)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(1.5)  # the supervisor's last snapshot of it is taken
            t0 = time.monotonic()
            stuck, _ = scrape(port, timeout=20)
            took = time.monotonic() - t0
        finally:
            os.kill(pid, signal.SIGCONT)
        assert took < 10, took
        assert value(stuck, drops, **chk, reason="tiny packet") >= value(
            before, drops, **chk, reason="tiny packet") > 0
        assert value(stuck, "routebricks_element_packets_total", element="c",
                     **{"class": "Counter"}, worker="0") > 0

        # Killed: it is restarted (without the garbage source: a restarted worker does not
        # send a non-device source's packets again), and its counters go on from where
        # they were, never back to zero.
        time.sleep(1.5)
        alive, _ = scrape(port)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while workers_table()[1][1:] != ("running", 1):
            assert time.monotonic() < deadline, workers_table()
            time.sleep(0.2)
        restarted, _ = scrape(port)
        for name in ("routebricks_element_packets_total", "routebricks_element_calls_total"):
            assert value(restarted, name, **chk) >= value(alive, name, **chk) > 0
        assert value(restarted, drops, **chk, reason="tiny packet") >= value(
            alive, drops, **chk, reason="tiny packet")
        assert value(restarted, "routebricks_worker_restarts_total", worker="1") == 1
        assert value(restarted, "routebricks_worker_up", worker="1") == 1
        # Worker 0 went on counting through all of it.
        c0 = {"element": "c", "class": "Counter", "worker": "0"}
        assert value(restarted, "routebricks_element_packets_total", **c0) > value(
            alive, "routebricks_element_packets_total", **c0)


def test_metrics_alone_run_the_router_supervised(run_dir: Path) -> None:
    port = free_port()
    r = rb("run", "-e", "RatedSource(RATE 100) -> Discard", "--metrics", f":{port}",
           "--duration", "2")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^routebricks: ready: 1 worker \(cores 0\), control socket \S+, "
                     rf"metrics http://127\.0\.0\.1:{port}/metrics$", r.stderr, re.M), r.stderr


def test_a_bad_address_or_a_port_in_use_is_refused_before_the_router_starts(
        run_dir: Path) -> None:
    source = "RatedSource(RATE 100) -> c :: Counter -> Discard"
    r = rb("run", "-e", source, "--metrics", "9100", "--duration", "5")
    assert r.returncode == 1
    assert r.stderr == ("--metrics: bad address '9100': write ADDR:PORT, e.g. "
                        "127.0.0.1:9100, [::1]:9100 or :9100 (on 127.0.0.1)\n")

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = rb("run", "-e", source, "--metrics", f"127.0.0.1:{port}", "--duration", "5")
    assert r.returncode == 1
    assert r.stderr == (f"--metrics: cannot listen on 127.0.0.1:{port}: Address already in "
                        "use (another program (or router) serves that port: choose "
                        "another)\n")

    r = rb("run", "-e", source, "--metrics", "192.0.2.1:9100", "--duration", "5")
    assert r.returncode == 1
    assert r.stderr.startswith("--metrics: cannot listen on 192.0.2.1:9100: Cannot assign "
                               "requested address")
    assert "Traceback" not in r.stderr and "ready" not in r.stderr
