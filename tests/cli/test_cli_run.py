"""The routebricks command, run as a user runs it (a subprocess), with Click's flags."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.utils import rdpcap

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def rb(*args: str, cwd: Path | None = None, check: bool = False,
       stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-m", "routebricks.cli", *args], cwd=cwd,
                         capture_output=True, text=True, timeout=120, input=stdin)
    if check and res.returncode != 0:
        raise AssertionError(f"exit {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def test_forward_example_moves_every_packet(tmp_path: Path) -> None:
    res = rb("run", str(EXAMPLES / "forward.click"), f"OUT={tmp_path}/out.pcap",
             "-h", "sent.count", check=True)
    assert res.stdout == "1000\n"  # handler values alone on stdout, as in Click
    assert res.stderr == ""  # as Click: nothing of our own when stderr is not a terminal
    res = rb("run", str(EXAMPLES / "forward.click"), f"OUT={tmp_path}/out.pcap", "--summary",
             check=True)
    assert "received" in res.stderr and "1000" in res.stderr  # the summary, when asked
    original = rdpcap(str(EXAMPLES / "data" / "sample.pcap"))
    out = rdpcap(str(tmp_path / "out.pcap"))
    assert [bytes(p) for p in out] == [bytes(p) for p in original]


def test_several_handlers_print_with_names(tmp_path: Path) -> None:
    res = rb("run", "-e", f"FromDump({EXAMPLES}/data/sample.pcap) -> c :: Counter -> Discard",
             "-h", "c.count", "-h", "c.byte_count", check=True)
    assert re.fullmatch(r"c\.count:\n1000\n\nc\.byte_count:\n\d+\n\n", res.stdout)


def test_user_element_from_readme() -> None:
    res = rb("run", str(EXAMPLES / "bigpackets.click"), "-h", "b.big", check=True)
    want = sum(len(p) > 500 for p in rdpcap(str(EXAMPLES / "data" / "sample.pcap")))
    assert res.stdout == f"{want}\n"


def test_readme_python_api_snippet_runs(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    m = re.search(r"<!-- python-api -->\s*```python\n(.*?)```", readme, re.S)
    assert m, "README lost its Python API example"
    res = subprocess.run([sys.executable, "-c", m.group(1)], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "947 53" in res.stdout


def test_quit_and_flattened_output(tmp_path: Path) -> None:
    out = tmp_path / "flat.click"
    res = rb("run", "-q", "-o", str(out), "-e",
             "elementclass C { input -> Counter -> output }"
             f"FromDump({EXAMPLES}/data/sample.pcap) -> x :: C -> Discard", check=True)
    flat = out.read_text()
    assert "x/Counter@1 :: Counter;" in flat
    assert "routebricks: stopped" not in res.stderr  # -q: nothing ran
    again = rb("check", str(out))
    assert again.returncode == 0, again.stderr


def test_bad_configuration_fails_before_running(tmp_path: Path) -> None:
    conf = tmp_path / "bad.click"
    conf.write_text(f"FromDump({tmp_path}/none.pcap)\n  -> Countr\n  -> Discard;\n")
    res = rb("run", str(conf))
    assert res.returncode == 1
    assert f"{conf}:2:6: undeclared element 'Countr'" in res.stderr
    assert "did you mean Counter" in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_input_file_is_a_clear_error(tmp_path: Path) -> None:
    res = rb("run", "-e", f"FromDump({tmp_path}/none.pcap) -> Discard")
    assert res.returncode == 1
    assert "none.pcap: cannot read" in res.stderr
    assert "Traceback" not in res.stderr


def test_check_command() -> None:
    ok = rb("check", str(EXAMPLES / "forward.click"))
    assert ok.returncode == 0 and "ok:" in ok.stderr
    bad = rb("check", "-e", "InfiniteSource -> [1] Discard")
    assert bad.returncode == 1
    assert "<-e>:1:16: Discard@2 :: Discard has no input 1" in bad.stderr


def test_elements_command_lists_and_documents() -> None:
    listing = rb("elements", check=True).stdout
    for name in ("FromDump", "ToDump", "Classifier", "Counter", "DriverManager"):
        assert re.search(rf"^\s+{name}\s", listing, re.M), name
    doc = rb("elements", "Classifier", check=True).stdout
    assert doc.startswith("Classifier(ARG...)")
    assert "Ports:" in doc and "Example:" in doc
    missing = rb("elements", "Clasifier")
    assert missing.returncode == 1 and "did you mean Classifier" in missing.stderr


def test_limit_time_and_kp() -> None:
    res = rb("run", "-e", "InfiniteSource(LENGTH 64) -> c :: Counter -> Discard",
             "--limit", "12345", "--kp", "100", "-h", "c.count", "-h", "c.byte_count",
             check=True)
    assert "c.count:\n12345\n" in res.stdout
    assert f"c.byte_count:\n{12345 * 64}\n" in res.stdout
    t0 = time.monotonic()
    res = rb("run", "-e", "InfiniteSource -> Discard", "--duration", "0.5", "--summary",
             check=True)
    assert time.monotonic() - t0 < 30
    assert "time limit" in res.stderr


def test_spin_reaches_the_router(monkeypatch: pytest.MonkeyPatch) -> None:
    # What idle_spin does is tested with the driver (tests/engine); here: the option's
    # milliseconds arrive as the router's seconds, the default is 20 ms, bad values fail.
    from click.testing import CliRunner

    from routebricks import cli
    from routebricks.engine.router import Router

    seen: list[float] = []

    def fake_run(self: Router, **_: object) -> str:
        seen.append(self.idle_spin)
        return "stopped"

    monkeypatch.setattr(Router, "run", fake_run)
    for argv in (["--spin", "5"], ["--spin", "0"], []):
        res = CliRunner().invoke(cli.main, ["run", "-e", "InfiniteSource -> Discard", *argv])
        assert res.exit_code == 0, res.output
    assert seen == [0.005, 0.0, 0.02]
    bad = rb("run", "-e", "InfiniteSource -> Discard", "--spin", "-1")
    assert bad.returncode == 2 and "--spin" in bad.stderr


def test_driver_manager_prints_and_stops() -> None:
    res = rb("run", "-e", "s :: InfiniteSource(LIMIT 500, STOP true) -> c :: Counter -> Discard;"
             "DriverManager(wait_stop, print c.count, read c.count, stop)", check=True)
    assert res.stdout == "500\n"  # print: stdout
    assert "c.count:\n500\n" in res.stderr  # read: stderr, as in Click


def test_script_timed_wait_and_write() -> None:
    res = rb("run", "-e", "s :: InfiniteSource(BURST 10) -> c :: Counter -> Discard;"
             "DriverManager(wait 50ms, write s.active false, write c.reset, wait 50ms, "
             "print c.count, stop)", check=True)
    assert res.stdout == "0\n"


def test_the_summary_follows_the_terminal() -> None:
    # On a terminal (a pseudo-terminal here) the summary shows; --no-summary hides it.
    import pty

    conf = "InfiniteSource(LIMIT 10, STOP true) -> c :: Counter -> Discard"
    for extra, shown in (([], True), (["--no-summary"], False)):
        main, sub = pty.openpty()
        p = subprocess.run([sys.executable, "-m", "routebricks.cli", "run", "-e", conf, *extra],
                           stderr=sub, stdout=subprocess.PIPE, timeout=120, check=True)
        os.close(sub)
        text = b""
        with contextlib.suppress(OSError):  # EIO once the child has gone
            while chunk := os.read(main, 4096):
                text += chunk
                if b"\n" not in chunk:
                    break
        os.close(main)
        assert (b"stopped (" in text) is shown, text
        assert p.stdout == b""


def test_stats_reports_elements() -> None:
    res = rb("run", "-e", "InfiniteSource(LIMIT 1000) -> Classifier(12/0800) -> Discard",
             "--stats", check=True)
    assert "ns/pkt" in res.stderr
    assert "1000 no pattern matched" in res.stderr  # the data is text, not IPv4


def test_sigint_stops_cleanly_and_prints_counters(tmp_path: Path) -> None:
    from routebricks.runtime.control import wait_for_socket

    sock = str(tmp_path / "s.sock")
    p = subprocess.Popen([sys.executable, "-m", "routebricks.cli", "run", "-e",
                          "InfiniteSource -> c :: Counter -> Discard", "-h", "c.count",
                          "-u", sock, "--summary"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for_socket(sock, timeout=120)  # running (a loaded machine imports slowly)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert "stopped (interrupted)" in err
    assert int(out.strip()) > 0
    assert "Traceback" not in err


def test_defines_on_command_line(tmp_path: Path) -> None:
    conf = tmp_path / "d.click"
    conf.write_text("define($N 3)\nInfiniteSource(LIMIT $N) -> c :: Counter -> Discard\n")
    assert rb("run", str(conf), "-h", "c.count", check=True).stdout == "3\n"
    assert rb("run", str(conf), "N=7", "-h", "c.count", check=True).stdout == "7\n"


def test_usage_errors() -> None:
    res = rb("run", "a.click", "b.click")
    assert res.returncode == 2 and "specified twice" in res.stderr
    # No configuration: from a pipe, it is read (empty here: Click's warning); from a
    # terminal, a usage error instead of waiting for typing.
    res = rb("run", stdin="")
    assert res.returncode == 0 and "<stdin>: configuration has no elements" in res.stderr
    import pty

    main_fd, sub = pty.openpty()
    p = subprocess.run([sys.executable, "-m", "routebricks.cli", "run"], stdin=sub,
                       capture_output=True, text=True, timeout=120)
    os.close(sub)
    os.close(main_fd)
    assert p.returncode == 2 and "no configuration" in p.stderr


def test_a_missing_namespace_is_an_error_not_created() -> None:
    name = f"rb-missing-{os.getpid()}"
    res = rb("run", "-q", "-e", "Idle -> Discard", "--netns", name)
    assert res.returncode != 0
    assert f"no network namespace '{name}'" in res.stderr
    assert not Path(f"/run/netns/{name}").exists()  # a typo must not make a namespace


def test_simtime_runs_timers_without_waiting() -> None:
    conf = ("s :: InfiniteSource(LIMIT 3, STOP false) -> Queue -> d :: DelayUnqueue(5) "
            "-> c :: Counter -> Discard; DriverManager(wait 30s, print c.count, stop)")
    t0 = time.monotonic()
    res = rb("run", "--simtime", "-e", conf, check=True)
    assert time.monotonic() - t0 < 20  # 30 simulated seconds, a few real ones at most
    assert res.stdout == "3\n"  # the 5 s delay passed in simulated time
    res = rb("run", "--simtime", "-e", conf, "-u", "/tmp/rb-simtime-test.sock")
    assert res.returncode == 1 and "--simtime runs the router in one process" in res.stderr


def test_click_time_flag_and_simtime_start() -> None:
    res = rb("run", "-t", "-e", "InfiniteSource(LIMIT 100, STOP true) -> c :: Counter -> Discard",
             "-h", "c.count", check=True)
    first, handler = res.stdout.splitlines()
    assert re.fullmatch(r"\d+\.\d{3}u \d+\.\d{3}s \d+:\d{2}\.\d{2}", first), first
    assert handler == "100"
    res = rb("run", "--simtime", "-e",
             "InfiniteSource(LIMIT 1, STOP true) -> Print(x, TIMESTAMP true) -> Discard",
             check=True)
    assert "x: 1000000000." in res.stderr  # Click's simulated clock starts there
    res = rb("run", "--simtime=5000", "-e",
             "InfiniteSource(LIMIT 1, STOP true) -> Print(x, TIMESTAMP true) -> Discard",
             check=True)
    assert "x: 5000." in res.stderr


def test_click_flags_x_w_j_globs_and_stdin() -> None:
    conf = ("InfiniteSource(LIMIT 7, STOP true) -> c :: Counter -> Discard; c2 :: Counter;"
            " Idle -> c2 -> Discard")
    res = rb("run", "-h", "c*.count", "-x", "c.count", stdin=conf)  # no file: stdin
    assert res.returncode == 7, res.stderr
    assert res.stdout == "c.count:\n7\n\nc2.count:\n0\n\n"
    res = rb("run", "-e", conf, "-h", "Counter.count", "-j", "1", check=True)
    assert res.stdout == "c.count:\n7\n\nc2.count:\n0\n\n"
    assert rb("run", "-e", conf, "-x", "c2.count").returncode == 0
    bad = rb("run", "-e", conf, "-x", "c.name")
    assert bad.returncode == 255 and "exit handler value should be integer" in bad.stderr
    warn = "Idle -> Unqueue(0) -> Discard"
    assert "BURST size 0" in rb("run", "-e", warn, "--duration", "0.1").stderr
    assert "BURST size 0" not in rb("run", "-w", "-e", warn, "--duration", "0.1").stderr


def test_o_writes_a_configuration_that_runs_from_anywhere(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    (sub / "in.pcap").write_bytes((EXAMPLES / "data" / "sample.pcap").read_bytes())
    (sub / "r.click").write_text("FromDump(in.pcap, STOP true) -> c :: Counter "
                                 "-> ToDump(\"out put.pcap\");")
    flat = tmp_path / "flat.click"
    rb("run", "-q", "-o", str(flat), "r.click", cwd=sub, check=True)
    text = flat.read_text()
    assert f"FromDump({sub}/in.pcap, STOP true)" in text
    assert f'ToDump("{sub}/out put.pcap")' in text
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert rb("run", str(flat), "-h", "c.count", cwd=elsewhere, check=True).stdout == "1000\n"
    assert (sub / "out put.pcap").is_file()
