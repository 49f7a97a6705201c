"""ToShmQueue and FromShmQueue: a queue between worker processes in shared memory.

In one process (a router run here), then as `routebricks run -j 2` subprocesses: the two
ends in two workers, every packet counted, and no shared memory left after a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from stdtest_util import batch_of, flow_packets, q, read_packets, run_text, write_pcap
from test_std_docformat import check_doc

from routebricks.engine.registry import get_class
from routebricks.engine.router import Router
from routebricks.errors import ConfigError
from routebricks.runtime.control import ControlClient, wait_for_socket

PIPE = ("src :: InfiniteSource(LIMIT {n}, LENGTH 64, BURST {burst}, STOP true) "
        "-> tq :: ToShmQueue(q, {cap}); "
        "fsq :: FromShmQueue(q, {pull}) -> c :: Counter -> Discard; "
        "StaticThreadSched(src 0, fsq 1);")


# ---------------------------------------------------------------------- documentation
@pytest.mark.parametrize("name", ["ToShmQueue", "FromShmQueue"])
def test_documented(name: str) -> None:
    cls = get_class(name)
    assert cls is not None and cls.GROUP == "standard"
    check_doc(cls.doc())
    assert all(h.doc for h in cls.HANDLERS.values())
    doc = " ".join(cls.doc().split())
    assert all(reason in doc for reason in getattr(cls, "DROPS", {}))


# ---------------------------------------------------------------------- one process
def test_pcap_through_the_queue_in_order_with_timestamps(tmp_path: Path) -> None:
    pkts = flow_packets(6, 20)
    src = write_pcap(tmp_path / "in.pcap", pkts)
    out = tmp_path / "out.pcap"
    r = run_text(f"FromDump({q(src)}, BURST 7, TIMING false) -> tq :: ToShmQueue(q, 16);"
                 f"fsq :: FromShmQueue(q, 8) -> ToDump({q(out)});")
    got = read_packets(out)
    assert [bytes(p) for p in got] == [bytes(p) for p in pkts]
    assert [float(p.time) for p in got] == pytest.approx([float(p.time) for p in pkts])
    assert r.read_handler("tq.count") == r.read_handler("fsq.count") == str(len(pkts))
    assert r.read_handler("tq.length") == "0"
    assert r.read_handler("tq.drops") == ""
    assert r.read_handler("fsq.closed") == "false"  # one process: no one needs telling
    assert 7 <= int(r.read_handler("tq.highwater_length")) <= 16


def test_full_queue_drops_are_counted() -> None:
    r = Router.from_text("Idle -> tq :: ToShmQueue(q, CAPACITY 10); "
                         "fsq :: FromShmQueue(q) -> d :: Discard;")
    r.initialize()
    try:
        tq = r.find("tq")
        tq.push(0, batch_of([bytes([i]) * 60 for i in range(6)]))
        tq.push(0, batch_of([bytes([i]) * 60 for i in range(6, 12)]))  # 4 fit, 2 dropped
        assert r.read_handler("tq.length") == "10"
        assert tq.drops == {"queue full": 2}
        assert r.read_handler("tq.count") == "10"
        assert set(tq.drops) <= set(type(tq).DROPS)
        assert r.find("fsq").run_task()
        assert r.read_handler("d.count") == "10"
        assert r.read_handler("tq.length") == "0"
        r.write_handler("tq.reset_counts")
        assert r.read_handler("tq.count") == "0" and not tq.drops
        assert r.read_handler("tq.highwater_length") == "0"
    finally:
        r.cleanup()


def test_too_long_packets_are_dropped_the_rest_cross() -> None:
    r = Router.from_text("Idle -> tq :: ToShmQueue(q, SLOT 128); "
                         "fsq :: FromShmQueue(q) -> Discard;")
    r.initialize()
    try:
        tq = r.find("tq")
        tq.push(0, batch_of([b"a" * 100, b"b" * 129, b"c" * 128]))
        assert tq.drops == {"too long for a slot": 1}
        assert r.read_handler("tq.length") == "2"
        assert r.read_handler("tq.slot") == "128"
    finally:
        r.cleanup()


def test_annotations_cross_between_the_ends() -> None:
    r = Router.from_text("Idle -> tq :: ToShmQueue(q); fsq :: FromShmQueue(q) -> Idle;")
    got = []
    r.initialize()
    try:
        r.find("fsq").emit = lambda port, b: got.append(b)  # type: ignore[method-assign]
        b = batch_of([b"x" * 60, b"y" * 70])
        b.set_anno("paint", np.array([1, 2]))
        b.set_anno("timestamp", 1_700_000_000_123_456_789)
        r.find("tq").push(0, b)
        r.find("fsq").run_task()
    finally:
        r.cleanup()
    (out,) = got
    assert out.to_list() == [b"x" * 60, b"y" * 70]
    assert out.anno("paint").tolist() == [1, 2]
    assert out.anno("timestamp").tolist() == [1_700_000_000_123_456_789] * 2


def test_burst_bounds_each_batch_and_the_run_drains() -> None:
    sizes = []
    r = Router.from_text("src :: InfiniteSource(LIMIT 1000, BURST 300) -> ToShmQueue(q); "
                         "fsq :: FromShmQueue(q, 64) -> c :: Counter -> Discard;")
    r.find("fsq").emit = lambda port, b: sizes.append(len(b))  # type: ignore[method-assign]
    try:
        r.run(time_limit=20)
    finally:
        r.cleanup()
    assert sum(sizes) == 1000 and max(sizes) <= 64  # every packet out before the run ends


def test_a_process_that_is_not_the_producer_drops() -> None:
    r = Router.from_text("Idle -> tq :: ToShmQueue(q); fsq :: FromShmQueue(q) -> Discard;")
    r.initialize()
    try:
        tq = r.find("tq")
        tq.ring.claim(os.getppid())  # another live process produces (pytest's parent)
        tq.push(0, batch_of([b"z" * 60] * 3))
        assert tq.drops == {"pushed outside the producer": 3}
        assert r.read_handler("tq.producer") == str(os.getppid())
    finally:
        r.cleanup()


@pytest.mark.parametrize("config, message", [
    ("FromShmQueue(q) -> Discard;", "no ToShmQueue is named 'q'"),
    ("Idle -> ToShmQueue(q); Idle -> ToShmQueue(q); FromShmQueue(q) -> Discard;",
     "another ToShmQueue is named 'q'"),
    ("Idle -> ToShmQueue(q); FromShmQueue(q) -> Discard; FromShmQueue(q) -> Discard;",
     "another FromShmQueue takes from 'q'"),
    ("Idle -> ToShmQueue(q, 0); FromShmQueue(q) -> Discard;", "CAPACITY"),
    ("Idle -> ToShmQueue(q, 16777216, SLOT 65536); FromShmQueue(q) -> Discard;",
     "more than 4 GiB"),
])
def test_configuration_errors(config: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Router.from_text(config)


# ---------------------------------------------------------------------- worker processes
def rb_run(tmp_path: Path, config: str, workers: int, *handlers: str
           ) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "routebricks.cli", "run", "-e", config,
            "--workers", str(workers), "-u", str(tmp_path / "ctl.sock")]
    for h in handlers:
        args += ["-h", h]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def handler_values(stdout: str, names: tuple[str, ...]) -> dict[str, str]:
    """``-h`` output (blocks labelled 'NAME:' for each of ``names``) as name -> value."""
    out: dict[str, list[str]] = {}
    current: list[str] = []
    for line in stdout.splitlines():
        if line.endswith(":") and line[:-1] in names:
            current = out.setdefault(line[:-1], [])
        else:
            current.append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


def dropped(table: str) -> int:
    """The total of a drops table ('COUNT<TAB>REASON' lines)."""
    return sum(int(line.split("\t")[0]) for line in table.splitlines() if line.strip())


@pytest.mark.parametrize("workers", [1, 2])
def test_every_packet_arrives_in_a_run(tmp_path: Path, workers: int) -> None:
    names = ("c.count", "tq.count", "tq.drops", "tq.by_worker", "fsq.by_worker")
    p = rb_run(tmp_path, PIPE.format(n=100_000, burst=256, cap=8192, pull=256), workers,
               *names)
    assert p.returncode == 0, p.stderr
    h = handler_values(p.stdout, names)
    drops = dropped(h["tq.drops"])
    assert int(h["c.count"]) + drops == 100_000
    assert int(h["tq.count"]) == int(h["c.count"])
    (prod,) = h["tq.by_worker"].splitlines()
    (cons,) = h["fsq.by_worker"].splitlines()
    prod_worker, prod_pid = prod.split("\t")[1].split()[1::2]
    cons_worker, cons_pid = cons.split("\t")[1].split()[1::2]
    if workers == 2:
        # The producer ran on worker 0 and the consumer on worker 1: two processes.
        assert (prod_worker, cons_worker) == ("0", "1") and prod_pid != cons_pid
    else:
        assert (prod_worker, cons_worker) == ("0", "0") and prod_pid == cons_pid


def test_small_queue_between_workers_counts_its_drops(tmp_path: Path) -> None:
    names = ("c.count", "tq.drops", "tq.highwater_length", "tq.length")
    p = rb_run(tmp_path, PIPE.format(n=200_000, burst=1024, cap=256, pull=32), 2, *names)
    assert p.returncode == 0, p.stderr
    h = handler_values(p.stdout, names)
    assert h["tq.drops"].endswith("\tqueue full")  # a batch of 1024 never fits in 256
    assert int(h["c.count"]) + dropped(h["tq.drops"]) == 200_000
    assert h["tq.highwater_length"] == "256" and h["tq.length"] == "0"


def test_two_producers_are_refused(tmp_path: Path) -> None:
    p = rb_run(tmp_path, "s0 :: InfiniteSource -> tq :: ToShmQueue(q); s1 :: InfiniteSource "
               "-> tq; FromShmQueue(q) -> Discard; StaticThreadSched(s0 0, s1 1);", 2)
    assert p.returncode == 1
    assert "one producer" in p.stderr


def _processes_with(marker: str) -> list[int]:
    """Processes that map or hold open a memfd whose name contains ``marker``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
            fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if marker in maps or any(marker in f for f in fds):
            found.append(int(pid))
    return found


def test_killed_router_leaves_no_shared_memory(tmp_path: Path) -> None:
    name = "q" + uuid.uuid4().hex[:12]
    sock = str(tmp_path / "ctl.sock")
    config = (f"src :: InfiniteSource(LENGTH 64) -> ToShmQueue({name}); "
              f"fsq :: FromShmQueue({name}) -> Discard; StaticThreadSched(src 0, fsq 1);")
    proc = subprocess.Popen([sys.executable, "-m", "routebricks.cli", "run", "-e", config,
                             "--workers", "2", "-u", sock], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_socket(sock, timeout=180)
        with ControlClient(sock) as c:
            table = c.read("workers")
            assert int(c.read("fsq.count")) >= 0
        pids = [int(line.split("\t")[1].split()[1]) for line in table.splitlines()
                if line.startswith("worker ")]
        marker = f"memfd:rb-shmqueue-{name}"
        holders = set(_processes_with(marker))
        assert {proc.pid, *pids} <= holders  # the supervisor and both workers map it
        for pid in pids:  # a worker killed outright, then the supervisor
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)  # the workers (restarted or not) go with their supervisor
        assert _processes_with(marker) == []  # nothing maps it: the kernel freed it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# ---------------------------------------------------------------------- restarts
def _start_pipeline(tmp_path: Path, n: int) -> tuple[subprocess.Popen[str], str]:
    """A two-worker pipeline of ``n`` paced packets (about 4 s), its handlers printed at
    the end; returns the process and its control socket once both workers run."""
    sock = str(tmp_path / "ctl.sock")
    config = (f"src :: RatedSource(RATE {n // 4}, LIMIT {n}, LENGTH 64) "
              f"-> tq :: ToShmQueue(q, {2 * n}); "
              "fsq :: FromShmQueue(q) -> c :: Counter -> Discard; "
              "StaticThreadSched(src 0, fsq 1);")
    args = [sys.executable, "-m", "routebricks.cli", "run", "-e", config, "--workers", "2",
            "-u", sock]
    for h in ("c.count", "tq.count", "tq.drops", "tq.length", "fsq.by_worker"):
        args += ["-h", h]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_socket(sock, timeout=180)
    return proc, sock


def _worker_pid(sock: str, wid: int) -> int:
    with ControlClient(sock) as c:
        table = c.read("workers")
    for line in table.splitlines():
        if line.startswith(f"worker {wid}\t"):
            return int(line.split("\t")[1].split()[1])
    raise AssertionError(table)


def _kill_when_counting(sock: str, wid: int) -> int:
    """SIGKILL worker ``wid`` once packets flow through the queue; its pid."""
    deadline = time.monotonic() + 60
    with ControlClient(sock) as c:
        while int(c.read("c.count")) == 0:
            assert time.monotonic() < deadline, "no packet crossed the queue"
            time.sleep(0.05)
    pid = _worker_pid(sock, wid)
    os.kill(pid, signal.SIGKILL)
    return pid


def _finish(proc: subprocess.Popen[str]) -> dict[str, str]:
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "restart" in err  # the supervisor said so
    return handler_values(out, ("c.count", "tq.count", "tq.drops", "tq.length",
                                "fsq.by_worker"))


def test_a_restarted_consumer_goes_on_emptying_the_queue(tmp_path: Path) -> None:
    n = 20_000
    proc, sock = _start_pipeline(tmp_path, n)
    dead = _kill_when_counting(sock, 1)
    h = _finish(proc)
    # The restarted consumer (a new process) took the rest out: nothing stayed behind and
    # nothing was dropped, although the producer went on putting.
    assert h["tq.length"] == "0" and dropped(h["tq.drops"]) == 0
    assert int(h["tq.count"]) == n
    lines = h["fsq.by_worker"].splitlines()
    assert lines and all(f"pid {dead}" not in line for line in lines)
    assert 0 < int(h["c.count"]) <= n


def test_a_restarted_producer_closes_the_queue_and_the_run_ends(tmp_path: Path) -> None:
    # The producer's source is not run again after a restart (it would send its packets
    # from the start): its restarted worker closes the ring in the dead one's place, so
    # the consumer empties it and the router stops by itself.
    proc, sock = _start_pipeline(tmp_path, 40_000)
    _kill_when_counting(sock, 0)
    h = _finish(proc)
    assert h["tq.length"] == "0"
    assert 0 < int(h["c.count"]) < 40_000
