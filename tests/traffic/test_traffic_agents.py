"""Managed traffic agents: a generator and a sink, each its own process in a namespace,
driven from the library; they exit with their driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from routebricks.traffic.agents import AgentError, GenAgent, SinkAgent

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

PAIR = """
[[hosts]]
name = "s"
interfaces = [{ name = "eth0", addresses = ["10.0.1.2/24"], mac = "02:00:00:00:01:02" }]
[[hosts]]
name = "d"
interfaces = [{ name = "eth0", addresses = ["10.0.1.3/24"], mac = "02:00:00:00:01:03" }]
[[links]]
a = "s:eth0"
b = "d:eth0"
"""


def test_gen_and_sink_agents_measure_a_link() -> None:
    from routebricks.netns.testbed import Testbed, TestbedSpec

    with Testbed(TestbedSpec.from_toml(PAIR)) as tb, \
            GenAgent("eth0", netns=tb.ns("s")) as gen, \
            SinkAgent("eth0", netns=tb.ns("d")) as sink:
        gen.configure(dst="10.0.1.3", dst_mac="02:00:00:00:01:03", flows=8)
        sink.start()
        sent = gen.send(rate=20000, duration=0.5)
        time.sleep(0.3)
        got = sink.stop()
        assert sent["sent"] > 1000
        assert got["received"] == sent["sent"] and got["lost"] == 0
        assert got["flows_seen"] == 8 and got["reordered"] == 0
        pids = (gen.proc.pid, sink.proc.pid)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_a_bad_request_is_a_clear_error_and_the_agent_lives_on() -> None:
    from routebricks.netns.testbed import Testbed, TestbedSpec

    with Testbed(TestbedSpec.from_toml(PAIR)) as tb, SinkAgent("eth0", netns=tb.ns("d")) as sink:
        with pytest.raises(AgentError, match="the sink was not started"):
            sink.stop()
        sink.start()
        assert sink.stop()["received"] == 0


def test_agents_exit_when_their_driver_dies(tmp_path: Path) -> None:
    from routebricks.netns.testbed import Testbed, TestbedSpec

    driver = textwrap.dedent("""
        import sys, time
        from routebricks.traffic.agents import SinkAgent
        a = SinkAgent("eth0", netns=sys.argv[1])
        print(a.proc.pid, flush=True)
        time.sleep(600)
    """)
    with Testbed(TestbedSpec.from_toml(PAIR)) as tb:
        p = subprocess.Popen([sys.executable, "-c", driver, tb.ns("d")], stdout=subprocess.PIPE,
                             text=True)
        try:
            agent = int(p.stdout.readline())  # type: ignore[union-attr]
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{agent}").exists() and time.monotonic() < deadline:
                stat = Path(f"/proc/{agent}/stat").read_text()
                if stat.rsplit(")", 1)[1].split()[0] == "Z":
                    break
                time.sleep(0.05)
            stat = Path(f"/proc/{agent}/stat")
            assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
        finally:
            if p.poll() is None:
                p.kill()


@pytest.mark.parametrize("cls", [GenAgent, SinkAgent])
def test_an_agent_that_cannot_start_says_why(cls: type) -> None:
    """No traceback from the agent's log: the reason, as the agent's answer."""
    with pytest.raises(AgentError, match=r"agent: cannot open 'rbtnosuchif0' for ") as e:
        cls("rbtnosuchif0")
    assert "Traceback" not in str(e.value)
