"""The router: graph checks before packets move, push/pull resolution, the driver, handlers,
and the Python API building the same graph as the configuration language."""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import pytest

from routebricks import Element, PacketBatch, Router
from routebricks.engine.router import parse_text
from routebricks.engine.source import Source
from routebricks.errors import ConfigError, HandlerError


def build(text: str) -> Router:
    return Router(parse_text(text, "t.click"))


@pytest.mark.parametrize("text, words", [
    ("InfiniteSource -> Counter", "output 0 is not connected"),
    ("Counter -> Discard", "input 0 is not connected"),
    ("InfiniteSource -> [2] Discard", "has no input 2"),
    ("s :: InfiniteSource; s [1] -> Discard", "has no output 1"),
    ("InfiniteSource -> q :: Queue -> Counter -> Tee -> Discard",
     "pull output 0 of Counter@3 (Counter) connected to push input 0 of Tee@4"),
    ("InfiniteSource -> Unqueue -> Discard", "push output 0 of InfiniteSource@1"),
    ("s :: InfiniteSource; s -> Discard; s -> Discard", "connected more than once"),
    ("InfiniteSource(FOO 3) -> Discard", "unknown keyword 'FOO'"),
    ("InfiniteSource(LIMIT x) -> Discard", "bad value 'x' for LIMIT"),
    ("FromDump -> Discard", "missing required argument FILENAME"),
])
def test_graph_errors_before_any_packet(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as ei:
        build(text)
    assert words in str(ei.value)
    assert "t.click:1:" in str(ei.value)


def test_all_errors_reported_at_once() -> None:
    with pytest.raises(ConfigError) as ei:
        build("a :: Counter; b :: Counter; InfiniteSource -> a; InfiniteSource -> b")
    assert "2 errors" in str(ei.value)


def test_agnostic_ports_take_the_mode_of_their_neighbours() -> None:
    r = build("InfiniteSource(LIMIT 10, BURST 3) -> a :: Counter -> q :: Queue -> "
              "b :: Counter -> u :: Unqueue(BURST 4) -> Discard")
    assert r.elements["a"].input_modes == ["h"] and r.elements["a"].output_modes == ["h"]
    assert r.elements["b"].input_modes == ["l"] and r.elements["b"].output_modes == ["l"]
    r.run()
    assert r.read_handler("b.count") == "10"


def test_pull_sink_is_a_task() -> None:
    r = build("s :: InfiniteSource(LIMIT 50) -> q :: Queue(100) -> d :: Discard")
    assert r.elements["d"].wants_task()
    r.run()
    assert r.read_handler("d.count") == "50"


def test_packet_limit_is_exact_across_sources() -> None:
    r = build("InfiniteSource -> c :: Counter -> Discard; InfiniteSource -> c2 :: Counter "
              "-> Discard")
    r.kp = 64
    assert r.run(limit=1000) == "packet limit reached"
    assert int(r.read_handler("c.count")) + int(r.read_handler("c2.count")) == 1000


def test_time_limit_stops_an_endless_source() -> None:
    r = build("InfiniteSource -> Discard")
    assert r.run(time_limit=0.2).startswith("time limit")


def test_stop_source_and_driver_manager_wait_counts() -> None:
    r = build("InfiniteSource(LIMIT 5, STOP true) -> c :: Counter -> Discard;"
              "InfiniteSource(LIMIT 7, STOP true) -> c2 :: Counter -> Discard;"
              "DriverManager(wait_stop 2)")
    r.run()
    assert (r.read_handler("c.count"), r.read_handler("c2.count")) == ("5", "7")


def test_handlers_and_errors() -> None:
    r = build("s :: InfiniteSource(LIMIT 5) -> c :: Counter -> Discard")
    r.run()
    assert r.read_handler("c.count") == "5"
    r.write_handler("c.reset")
    assert r.read_handler("c.count") == "0"
    assert "count\tr" in r.read_handler("c.handlers")
    assert r.read_handler("c.class") == "Counter"
    assert "1 input" in r.read_handler("c.ports")
    assert r.read_handler("list").split("\n")[0] == "3"
    assert "c :: Counter;" in r.read_handler("flatconfig")
    with pytest.raises(HandlerError, match="no element named 'cc'; did you mean c"):
        r.read_handler("cc.count")
    with pytest.raises(HandlerError, match="no handler 'cont'"):
        r.read_handler("c.cont")
    with pytest.raises(HandlerError, match="not a write handler"):
        r.write_handler("c.count", "3")
    with pytest.raises(HandlerError, match="not a read handler"):
        r.read_handler("c.reset")


class Doubler(Element):
    """Sends every packet twice (test element).

    Ports: 1 input, 1 output.
    Arguments: none.
    Behaviour: emits the batch and a copy.
    Handlers: none.
    Example: ... -> Doubler -> ...
    """

    port_count = "1/1"

    def push(self, port: int, batch: PacketBatch) -> None:
        self.emit(0, batch.copy())
        self.emit(0, batch)


def test_python_api_builds_the_same_graph_as_the_language() -> None:
    from routebricks.elements import Classifier, Counter, Discard, InfiniteSource

    src = InfiniteSource(LIMIT=10, LENGTH=60, name="src")
    cls = Classifier("0/52", "-", name="cls")
    src >> cls >> Counter(name="a") >> Doubler(name="d") >> Discard(name="x")
    cls[1] >> Counter(name="b") >> Discard(name="y")
    r = Router.from_elements(src)
    text = ("src :: InfiniteSource(LIMIT 10, LENGTH 60) -> cls :: Classifier(0/52, -)"
            " -> a :: Counter -> d :: Doubler -> x :: Discard;"
            "cls [1] -> b :: Counter -> y :: Discard;")
    assert r.graph.same_as(parse_text(text))
    r.run()
    assert r.read_handler("a.count") == "10"  # data starts with 'R' = 0x52
    assert r.read_handler("x.count") == "20"


def test_every_classifier_output_must_be_connected() -> None:
    with pytest.raises(ConfigError, match="output 1 is not connected"):
        build("InfiniteSource(LIMIT 10) -> c :: Classifier(0/00, 0/52) -> Discard")


def test_packets_shorter_than_an_element_reads_are_dropped_and_counted() -> None:
    r = build("InfiniteSource(LENGTH 5, LIMIT 8) -> s :: Strip(14) -> c :: Counter -> Discard")
    r.run()
    assert r.read_handler("c.count") == "0"
    assert sum(r.elements["s"].drops.values()) == 8


def test_profiling_counts_calls_and_packets() -> None:
    r = Router(parse_text("InfiniteSource(LIMIT 100, BURST 10) -> c :: Counter -> Discard"),
               profile=True)
    r.run()
    c = r.elements["c"]
    assert (c.calls, c.packets) == (10, 100)
    assert getattr(c, "self_ns", 0) > 0


def test_profiling_counts_the_batches_a_task_sends() -> None:
    # A source and Unqueue are never pushed to: their runs that sent packets are their
    # calls, and their time excludes the elements downstream.
    r = Router(parse_text("s :: InfiniteSource(LIMIT 100, BURST 10) -> q :: Queue(1000) "
                          "-> u :: Unqueue(BURST 25) -> d :: Discard"), profile=True)
    r.run()
    s, u, d = (r.elements[n] for n in "sud")
    assert (s.calls, s.packets) == (10, 100)
    assert u.packets == d.packets == 100
    assert u.calls == d.calls and 4 <= u.calls <= 10  # a run sends what is queued, <= 25
    assert s.self_ns > 0 and u.self_ns > 0
    idle = Router(parse_text("i :: Idle -> q :: Queue -> u :: Unqueue -> Discard"),
                  profile=True)
    idle.run(time_limit=0.01)
    assert (idle.elements["u"].calls, idle.elements["u"].packets) == (0, 0)  # idle polls


def test_kp_controls_batch_size() -> None:
    seen: list[int] = []

    class Sizes(Element):
        """Records batch sizes (test element).

        Ports: 1 input, 1 output.
        Arguments: none.
        Behaviour: passes packets on.
        Handlers: none.
        Example: ... -> Sizes -> ...
        """

        def process(self, batch: PacketBatch) -> PacketBatch:
            seen.append(len(batch))
            return batch

    r = build("InfiniteSource(LIMIT 100) -> Sizes -> Discard")
    r.kp = 32
    r.run()
    assert seen == [32, 32, 32, 4]
    assert np.sum(seen) == 100


def test_read_handlers_with_a_parameter() -> None:
    r = build("s :: InfiniteSource(LIMIT 1) -> rt :: DirectIPLookup(10.0.0.0/8 0, "
              "10.1.0.0/16 192.0.2.1 1); rt [0] -> Discard; rt [1] -> Discard")
    assert r.read_handler("rt.lookup 10.1.2.3") == "1 192.0.2.1"
    assert r.read_handler("rt.lookup 10.2.0.1") == "0"
    assert r.read_handler("rt.lookup 11.0.0.1") == "-1"
    with pytest.raises(HandlerError, match="expected IP address"):
        r.read_handler("rt.lookup nonsense")
    with pytest.raises(HandlerError, match="takes no parameter"):
        r.read_handler("s.count 3")


class QuietDevice(Source):
    """A device that receives one batch on its first poll, then nothing (test element).

    Ports: no inputs, 1 push output.
    Arguments: none.
    Behaviour: records the time of every poll; offers a file descriptor that never becomes
        readable, as an idle device's socket.
    Handlers: none.
    Example: QuietDevice -> Discard
    """

    ARGS = Source.SOURCE_ARGS

    def configure(self) -> None:
        super().configure()
        self.polls: list[float] = []
        self._rfd, self._wfd = os.pipe()

    def cleanup(self) -> None:
        os.close(self._rfd)
        os.close(self._wfd)

    def poll_fd(self) -> int:
        return self._rfd

    def run_task(self) -> bool:
        self.polls.append(time.monotonic())
        return len(self.polls) == 1


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The times at which the driver went to sleep (its select() calls on idle devices)."""
    import routebricks.engine.router as router_module

    times: list[float] = []
    real_select = router_module.select.select

    def select_and_note(*args: object) -> object:
        times.append(time.monotonic())
        return real_select(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(router_module.select, "select", select_and_note)
    return times


@pytest.mark.parametrize("spin", [0.0, 0.15])
def test_an_idle_router_keeps_polling_for_idle_spin_then_sleeps(
        spin: float, sleeps: list[float]) -> None:
    # Polling on after the last packet keeps a core that may wake late (a virtual CPU) from
    # letting its rings fill; after idle_spin the router sleeps on the devices' sockets.
    r = build("d :: QuietDevice -> Discard")
    r.idle_spin = spin
    r.run(time_limit=0.4)
    first_poll = r.elements["d"].polls[0]  # the one with work
    assert sleeps, "the idle router never slept"
    if spin:
        assert sleeps[0] - first_poll >= spin  # polled, never slept, for idle_spin
        polls = np.array(r.elements["d"].polls)
        assert int(((polls > first_poll) & (polls < sleeps[0])).sum()) >= 10  # polling
    else:
        assert sleeps[0] - first_poll < 0.15  # asleep from the start
    # Asleep: at most about one poll per millisecond (select's 1 ms timeout).
    polls = np.array(r.elements["d"].polls) - first_poll
    assert int(((polls > 0.25) & (polls < 0.38)).sum()) <= 140


class DeadDevice(QuietDevice):
    """A device that never receives anything (test element).

    Ports: no inputs, 1 push output.
    Arguments: none.
    Behaviour: records the time of every poll; never has a packet.
    Handlers: none.
    Example: DeadDevice -> Discard
    """

    def run_task(self) -> bool:
        self.polls.append(time.monotonic())
        return False


def test_timers_and_other_sources_do_not_keep_the_router_polling(
        sleeps: list[float]) -> None:
    # Only packets from a device start the polling spell: a timer-driven source firing
    # every 10 ms must not keep a core busy while the devices are silent.
    r = build("d :: DeadDevice -> Discard; t :: TimedSource(0.01) -> c :: Counter -> Discard")
    r.idle_spin = 0.15
    r.run(time_limit=0.4)
    assert int(r.read_handler("c.count")) >= 5  # the timers did fire
    started = r.elements["d"].polls[0]
    assert sleeps and sleeps[0] - started < 0.1  # asleep from the start all the same


def test_a_router_process_freezes_what_configuring_made_out_of_the_collector() -> None:
    # A full collection would walk every object the configuration made (~20 ms): a pause
    # long enough to overflow a receive ring. A router process (routebricks run sets
    # freeze_gc) freezes them when it starts; library use does not, so routers run one
    # after another in one process are still collected.
    gc.unfreeze()
    try:
        r = build("InfiniteSource(LIMIT 10) -> c :: Counter -> Discard")
        r.run()
        assert id(r.elements["c"]) in {id(o) for o in gc.get_objects()}
        assert gc.get_freeze_count() == 0
        r = build("InfiniteSource(LIMIT 10) -> c :: Counter -> Discard")
        r.freeze_gc = True
        r.run()
        assert id(r.elements["c"]) not in {id(o) for o in gc.get_objects()}
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_stop_requested_before_run_is_honoured() -> None:
    # A SIGTERM that arrives after the handler is installed but before the loop starts
    # must not be lost (the router would run on until its time limit).
    r = build("InfiniteSource -> c :: Counter -> Discard")
    r.request_stop("interrupted", force=True)
    t0 = time.monotonic()
    assert r.run(time_limit=30) == "interrupted"
    assert time.monotonic() - t0 < 10
    assert r.run(limit=100) == "packet limit reached"  # the next run is not stopped
