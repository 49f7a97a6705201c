"""``routebricks gen``, ``routebricks sink`` and ``routebricks lossfree``: the traffic generator,
the measuring sink, and the loss-free rate search that drives both.

Added to the ``routebricks`` command through :data:`COMMANDS` (see ``cli._register_plugins``).
Heavy modules (numpy, numba kernels, sockets) are imported when a command runs, so
``routebricks --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import click

from routebricks.errors import RouteBricksError

if TYPE_CHECKING:
    from routebricks.traffic.lossfree import LossFreeResult, Trial

__all__ = ["COMMANDS", "gen", "lossfree", "shortfall_message", "sink"]

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM (and SIGINT, besides KeyboardInterrupt) ask the loop to stop cleanly."""

    def handler(signum: int, _frame: object) -> None:
        stop()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _fail(e: Exception) -> None:
    click.echo(f"error: {e}", err=True)
    sys.exit(1)


def _print_json(d: dict[str, Any]) -> None:
    click.echo(json.dumps(d, indent=2, sort_keys=False))


def _si(value: float, unit: str) -> str:
    for mult, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= mult:
            return f"{value / mult:.3f} {prefix}{unit}"
    return f"{value:.1f} {unit}"


def _us(ns: float) -> str:
    return f"{ns / 1000:.1f} µs"


def _table(title: str, rows: list[tuple[str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_header=False, title_justify="left", box=None, pad_edge=False)
    t.add_column("metric", style="bold")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(k, v)
    Console(soft_wrap=True).print(t)


def _pct(x: float) -> str:
    return f"{x:.4%}"


def _share(x: float) -> str:
    """A fraction as a percentage that does not round a small one to 0%."""
    return f"{x:.0%}" if x >= 0.1 else f"{x * 100:.2g}%"


def shortfall_message(res: Any, *, by_bits: bool = False) -> str | None:
    """What to tell the user when a gen run fell short of its target (None if it did not).

    ``res`` is a :class:`~routebricks.traffic.gen.GenResult`; ``by_bits``: the target was
    given as a bit rate. Either the send loop could not keep pace (this process's CPU), or it
    did and the device refused frames (``busy_drops``), and the advice differs.
    """
    from routebricks.io.afpacket import DEFAULT_TX_MODE
    from routebricks.traffic.gen import LIMITED_BELOW
    from routebricks.traffic.units import mpps_text

    if not res.generator_limited:
        return None
    sent, asked = mpps_text(res.pps, res.target_pps)
    head = (
        f"generator limited: sent {sent} of the {asked} asked "
        f"({_share(res.pps / res.target_pps)})"
    )
    refused = (
        f"the kernel refused {res.busy_drops:,} frames (ENOBUFS/EAGAIN: the transmit queue of "
        f"{res.interface} or, on a veth, its peer's input backlog was full)"
    )
    if res.attempted_pps >= LIMITED_BELOW * res.target_pps:
        return (
            f"{head}; the send loop kept pace but {refused}, so the receiving side or the link "
            "is the limit, not this process"
        )
    advice = []
    if res.kp < 256:
        advice.append(f"a larger --kp (now {res.kp}; e.g. 256: fewer system calls per frame)")
    if res.tx_mode != DEFAULT_TX_MODE:
        advice.append(f"--tx-mode {DEFAULT_TX_MODE} (the fastest path)")
    if by_bits:
        advice.append("a larger --size (the same bit rate in fewer frames)")
    advice.append(
        "several gen processes on other cores (one per interface or namespace), whose rates "
        "add up"
    )
    also = f" (also, {refused})" if res.busy_drops else ""
    return (
        f"{head}; the CPU of this process is the bottleneck{also} -- "
        f"use {', or '.join(advice)}; other busy processes on its core lower it too"
    )


# --------------------------------------------------------------------------
# gen
# --------------------------------------------------------------------------
@click.command("gen", context_settings=CONTEXT)
@click.argument("iface")
@click.option(
    "--netns",
    "netns",
    metavar="NS",
    help="Enter this network namespace first "
    "(a name under /run/netns, or a path like /proc/PID/ns/net).",
)
@click.option(
    "--dst",
    default="198.19.0.1",
    show_default=True,
    metavar="IP|PREFIX[,..]|random",
    help="Destination address(es): one address, a comma-separated list (cycled over "
    "flows), prefixes (random address within a random prefix), 'random' (all of "
    "IPv4) or 'random-unicast'.",
)
@click.option(
    "--src",
    "--src-ip",
    "src",
    default=None,
    metavar="IP|PREFIX[,..]",
    help="Source address(es), same forms as --dst [default: IFACE's IPv4 address, "
    "else 198.18.0.1].",
)
@click.option("--src-mac", default=None, metavar="MAC", help="[default: IFACE's MAC]")
@click.option(
    "--dst-mac",
    default="ff:ff:ff:ff:ff:ff",
    show_default=True,
    metavar="MAC",
    help="Give the router's MAC when sending into a router.",
)
@click.option(
    "--size",
    default="64",
    show_default=True,
    metavar="BYTES|imix|B1,B2..",
    help="Frame size with the 4-byte FCS (64 = 60 bytes sent), a pattern of sizes "
    "cycled over frames, or 'imix' (7:4:1 of 64/594/1518).",
)
@click.option(
    "--flows",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    metavar="N",
    help="Distinct UDP 5-tuples (source port, then destination port varies).",
)
@click.option(
    "--order",
    type=click.Choice(["cycle", "random"]),
    default="cycle",
    show_default=True,
    help="Order in which frames visit the flows.",
)
@click.option(
    "--dst-per-packet",
    is_flag=True,
    help="Draw a destination per frame instead of per flow (prefixes/random).",
)
@click.option("--sport", type=click.IntRange(0, 65535), default=1024, show_default=True)
@click.option("--dport", type=click.IntRange(0, 65535), default=9, show_default=True)
@click.option("--ttl", type=click.IntRange(0, 255), default=64, show_default=True)
@click.option(
    "--rate",
    default="max",
    show_default=True,
    metavar="RATE",
    help="Target rate: 1Mpps, 250kpps, 20000 (pps), 500Mbps, 1Gbps (frame bits with FCS), or max.",
)
@click.option("--count", type=click.IntRange(0), default=None, metavar="N", help="Frames to send.")
@click.option(
    "--duration",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="S",
    help="Seconds to send. With neither --count nor --duration: until Ctrl-C.",
)
@click.option(
    "--kp",
    type=click.IntRange(1, 65536),
    default=32,
    show_default=True,
    metavar="N",
    help="Frames per batch (one sendmmsg call).",
)
@click.option(
    "--tx-mode",
    type=click.Choice(["sendmmsg", "ring", "send"]),
    default=None,
    help="AF_PACKET transmit path [default: sendmmsg].",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for random addresses and order."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr [default: when stderr is a terminal, without --json].",
)
def gen(
    iface: str,
    netns: str | None,
    dst: str,
    src: str | None,
    src_mac: str | None,
    dst_mac: str,
    size: str,
    flows: int,
    order: str,
    dst_per_packet: bool,
    sport: int,
    dport: int,
    ttl: int,
    rate: str,
    count: int | None,
    duration: float | None,
    kp: int,
    tx_mode: str | None,
    seed: int,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Send UDP probe frames out of IFACE at a target rate and report what was sent.

    Every frame carries a probe (flow id, per-flow sequence number, send time) that
    'routebricks sink' uses to count loss, reordering and latency. A run that sends less
    than 95% of its --rate says so on stderr, and why (this process's CPU, or the device
    refusing frames); with --json also as "generator_limited" and "limit_message".

    \b
    Examples:
      routebricks gen veth0 --dst 10.0.2.2 --count 100000 --rate 100kpps
      routebricks gen eth0 --netns rbhost-a --dst-mac 02:72:62:00:00:02 \\
          --dst 10.0.0.0/8 --flows 1024 --size imix --rate 500Mbps --duration 10
      routebricks gen veth0 --dst random --dst-per-packet --rate max --count 1000000 --kp 256 --json
    """
    from routebricks.traffic.frames import FrameSpec
    from routebricks.traffic.gen import Generator

    try:
        if netns:
            from routebricks.netns.core import enter_netns

            enter_netns(netns)
        spec = FrameSpec(
            dst=dst,
            src_ip=src,
            src_mac=src_mac,
            dst_mac=dst_mac,
            flows=flows,
            order=cast(Any, order),
            size=size,
            sport=sport,
            dport=dport,
            ttl=ttl,
            dst_per_packet=dst_per_packet,
            seed=seed,
        )
        show = (sys.stderr.isatty() and not as_json) if progress is None else progress
        g = Generator(
            iface,
            spec,
            rate=rate,
            count=count,
            duration=duration,
            kp=kp,
            tx_mode=cast(Any, tx_mode),
            progress=show,
        )
    except (RouteBricksError, OSError) as e:
        _fail(e)
        return
    try:
        with _stop_on_signals(g.stop):
            res = g.run()
    finally:
        g.close()
    limit = shortfall_message(res, by_bits=g.rate is not None and g.rate.unit == "bps")
    if as_json:
        d = res.to_dict()
        d["netns"] = netns
        d["limit_message"] = limit
        _print_json(d)
    else:
        _gen_table(res, netns)
    if limit:
        click.secho(limit, fg="yellow", err=True)


def _gen_table(res: Any, netns: str | None) -> None:
    from routebricks.traffic.units import mpps_text

    if res.target_pps is None:
        rate, target = mpps_text(res.pps)[0], "max"
    else:
        rate, target = mpps_text(res.pps, res.target_pps)  # one unit: they compare
    _table(
        f"gen {res.interface}{f' (netns {netns})' if netns else ''}: stopped "
        f"({res.stop_reason}) after {res.elapsed_s:.3f} s",
        [
            ("sent", f"{res.sent:,}"),
            ("busy drops", f"{res.busy_drops:,}"),
            ("rate", rate),
            ("bit rate", _si(res.bps, "bps")),
            ("target", target),
            ("frame bytes", f"{res.frame_bytes:,}"),
            ("flows / size", f"{res.flows} / {res.size}"),
            ("batches (kp)", f"{res.batches:,} ({res.kp})"),
        ],
    )


# --------------------------------------------------------------------------
# sink
# --------------------------------------------------------------------------
@click.command("sink", context_settings=CONTEXT)
@click.argument("iface")
@click.option(
    "--netns",
    "netns",
    metavar="NS",
    help="Enter this network namespace first "
    "(a name under /run/netns, or a path like /proc/PID/ns/net).",
)
@click.option(
    "--duration",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="S",
    help="Stop after S seconds.",
)
@click.option(
    "--idle",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="S",
    help="Stop when no probe frame came for S seconds (after the first).",
)
@click.option(
    "--expect",
    type=click.IntRange(0),
    default=None,
    metavar="N",
    help="Frames the generator sent: stop once N arrived, count loss against N "
    "(with neither --idle nor --duration, --idle defaults to 2 so a lossy run ends).",
)
@click.option(
    "--kp",
    type=click.IntRange(1),
    default=1024,
    show_default=True,
    metavar="N",
    help="Frames taken out of the ring per call.",
)
@click.option("--per-flow", is_flag=True, help="Also report every flow.")
@click.option("--promisc", is_flag=True, help="Put IFACE in promiscuous mode.")
@click.option(
    "--latency-clock",
    type=click.Choice(["kernel", "user"]),
    default="kernel",
    show_default=True,
    help="Receive time: ring timestamp, or when the sink read it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Live packets, rate, loss and reordering so far on stderr: a live line on a "
    "terminal, one line a second otherwise [default: when stderr is a terminal, "
    "without --json].",
)
def sink(
    iface: str,
    netns: str | None,
    duration: float | None,
    idle: float | None,
    expect: int | None,
    kp: int,
    per_flow: bool,
    promisc: bool,
    latency_clock: str,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Receive on IFACE and measure the probe frames of 'routebricks gen'.

    Reports frames and rate, loss (sequence gaps, or against --expect), reordering (frames
    that arrive after a later frame of their flow), and one-way latency (min, mean, p50,
    p99, max). Prints 'sink: listening on IFACE' to stderr once it receives, so scripts can
    start the generator then. Without --duration, --idle or --expect it runs until Ctrl-C.

    On a terminal it shows packets, rate, loss and reordering so far while it runs
    (--progress/--no-progress to choose).

    \b
    Examples:
      routebricks sink veth1 --duration 10
      routebricks sink eth0 --netns rbhost-b --expect 100000 --idle 2 --json
      routebricks sink eth1 --idle 1 --per-flow
    """
    from routebricks.traffic.sink import Sink

    try:
        if netns:
            from routebricks.netns.core import enter_netns

            enter_netns(netns)
        if expect is not None and idle is None and duration is None:
            idle = 2.0
        s = Sink(
            iface,
            duration=duration,
            idle=idle,
            expect=expect,
            kp=kp,
            promisc=promisc,
            latency_clock=latency_clock,
            per_flow=per_flow,
            progress=(sys.stderr.isatty() and not as_json) if progress is None else progress,
        )
    except (RouteBricksError, OSError) as e:
        _fail(e)
        return
    try:
        click.echo(f"sink: listening on {iface}{f' (netns {netns})' if netns else ''}", err=True)
        sys.stderr.flush()
        with _stop_on_signals(s.stop):
            res = s.run()
    finally:
        s.close()
    if as_json:
        d = res.to_dict()
        d["netns"] = netns
        _print_json(d)
        return
    lat = res.latency
    rows = [
        ("received", f"{res.received:,}"),
        ("rate", f"{res.mpps:.3f} Mpps"),
        ("bit rate", _si(res.bps, "bps")),
        (
            "expected",
            f"{res.expected:,}"
            + (" (--expect)" if res.expect is not None else " (from sequence numbers)"),
        ),
        ("lost", f"{res.lost:,} ({_pct(res.loss_fraction)})"),
        (
            "reordered",
            f"{res.reordered:,} ({_pct(res.reorder_fraction)}), "
            f"{res.reordered_sequences:,} sequences",
        ),
        ("duplicates", f"{res.duplicates:,}"),
        ("flows", f"{res.flows_seen:,}"),
        ("latency min/mean", f"{_us(lat.min_ns)} / {_us(lat.mean_ns)}"),
        ("latency p50/p99/max", f"{_us(lat.p50_ns)} / {_us(lat.p99_ns)} / {_us(lat.max_ns)}"),
        ("other frames", f"{res.other:,}"),
        ("ring drops", f"{res.ring_drops:,}"),
    ]
    _table(
        f"sink {iface}{f' (netns {netns})' if netns else ''}: stopped ({res.stop_reason}) "
        f"after {res.elapsed_s:.3f} s",
        rows,
    )
    if per_flow and res.per_flow:
        from rich.console import Console
        from rich.table import Table

        t = Table(
            "flow",
            "packets",
            "frame bytes",
            "max seq",
            "lost (seq)",
            "reordered",
            "duplicates",
            title="per flow",
            title_justify="left",
        )
        for r in res.per_flow:
            t.add_row(*(f"{v:,}" if k != "flow" else str(v) for k, v in r.items()))
        Console(soft_wrap=True).print(t)


# --------------------------------------------------------------------------
# lossfree
# --------------------------------------------------------------------------
def _rate_option(ctx: click.Context, param: click.Parameter, value: str) -> Any:
    """A rate as gen's --rate takes it (a Rate; None for 'max')."""
    from routebricks.traffic.frames import TrafficError
    from routebricks.traffic.gen import parse_rate

    try:
        return parse_rate(value)
    except TrafficError as e:
        raise click.BadParameter(str(e), ctx, param) from None


def _fraction_option(low_open: bool) -> Callable[[click.Context, click.Parameter, str], float]:
    """A fraction given as 0.001 or 0.1%; in [0, 1) (or (0, 1) with ``low_open``)."""

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> float:
        text = value.strip()
        try:
            x = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not a fraction (want e.g. 0.001 or 0.1%)", ctx, param
            ) from None
        if not (0 < x < 1 if low_open else 0 <= x < 1):
            bounds = "above 0 and below 1 (100%)" if low_open else "at least 0 and below 1 (100%)"
            raise click.BadParameter(f"{value!r} must be {bounds}", ctx, param)
        return x

    return parse


def _frame_option(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """--size, --dst and --dst-mac checked as gen's frame specification checks them."""
    from routebricks.traffic.frames import AddressSpec, TrafficError, parse_mac, parse_size

    check = {"size": parse_size, "dst": AddressSpec.parse, "dst_mac": parse_mac}[str(param.name)]
    try:
        check(value)
    except (TrafficError, ValueError) as e:
        raise click.BadParameter(str(e), ctx, param) from None
    return value


def _netns_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from routebricks.netns.core import netns_path

    if value is not None and not os.path.exists(netns_path(value)):
        raise click.BadParameter(
            f"no network namespace {value!r} ({netns_path(value)} does not exist)", ctx, param
        )
    return value


def _check_interface(iface: str, netns: str | None, option: str) -> None:
    """A missing interface is the user's to fix: say so before any agent starts."""
    import socket

    from routebricks.netns.core import run_in_netns

    try:
        if netns is None:
            socket.if_nametoindex(iface)
        else:
            run_in_netns(netns, socket.if_nametoindex, iface)
    except OSError:
        where = f"network namespace {netns!r}" if netns else "this network namespace"
        raise click.UsageError(f"no interface {iface!r} in {where} (see {option})") from None


def _mpps(pps: float) -> str:
    from routebricks.traffic.units import mpps_text

    return mpps_text(pps)[0]


def _gbps(pps: float, mean_size: float) -> str:
    """The bit rate of ``pps`` frames of ``mean_size`` bytes (frame bits with FCS)."""
    from routebricks.traffic.units import gbps_text

    return gbps_text(pps * mean_size * 8)[0]


class _TrialDisplay:
    """Each trial as it runs and ends, on stderr: a rich table with a spinner for the running
    trial on a terminal, one plain line per finished trial otherwise."""

    def __init__(self, *, live: bool, seconds: float, probe_first: bool) -> None:
        self.seconds = seconds
        self.probe_first = probe_first
        self.n = 0
        self.live: Any = None
        if not live:
            return
        from rich.console import Console, Group
        from rich.live import Live
        from rich.spinner import Spinner
        from rich.table import Table

        self.table = Table(
            "trial", "offered", "achieved", "lost", "busy drops", "verdict",
            title_justify="left", box=None, pad_edge=False,
        )  # fmt: skip
        for col in self.table.columns[1:5]:
            col.justify = "right"
        self.spinner = Spinner("dots", text="starting the generator and sink agents")
        self.live = Live(
            Group(self.table, self.spinner),
            console=Console(stderr=True, highlight=False),
            refresh_per_second=8,
        )
        self.live.start()

    def start(self, rate: float | None) -> None:
        self.n += 1
        if self.live is not None:
            what = "as fast as the generator can (probe)" if rate is None else _mpps(rate)
            self.spinner.update(text=f"trial {self.n}: offering {what} for {self.seconds:g} s")

    def done(self, t: Trial) -> None:
        from routebricks.traffic.units import mpps_text

        r = t.result
        offered, achieved = mpps_text(t.rate, r.achieved_rate or 0.0)
        if self.probe_first and self.n == 1:
            offered = "max (probe)"
        lost = f"{r.loss_fraction:.3%} ({r.lost:,} of {r.sent:,})"
        busy = int(r.extra.get("busy_drops", 0))
        verdict = "pass" if t.passed else f"fail: {t.reason}"
        if self.live is None:
            click.echo(
                f"trial {self.n}: offered {offered}, achieved {achieved}, lost {lost}, "
                f"busy drops {busy:,} -> {verdict}",
                err=True,
            )
            return
        from rich.text import Text

        self.table.add_row(
            str(self.n), offered, achieved, lost, f"{busy:,}",
            Text(verdict, style="green" if t.passed else "red"),
        )  # fmt: skip

    def close(self) -> None:
        if self.live is not None:
            self.live.update(self.table, refresh=True)  # the trials stay, the spinner goes
            self.live.stop()
            self.live = None


def _lossfree_summary(
    res: LossFreeResult, size: str, mean_size: float, elapsed: float
) -> tuple[str, str | None]:
    """The result line (stdout) and, when the rate is only a lower bound, why (stderr)."""
    if res.rate is None:
        last = (res.trials or [res.probe])[-1]
        assert last is not None
        return f"loss-free rate: none found -- even {_mpps(last.rate)} failed ({last.reason})", None
    trials = len(res.trials) + (res.probe is not None)
    frames = (
        f"{size}-byte frames" if size.strip().isdigit()
        else f"{size} frames, {mean_size:.1f} bytes on average"
    )  # fmt: skip
    at_least = "≥ " if res.lower_bound else ""
    line = (
        f"loss-free rate: {at_least}{_mpps(res.rate)} = {at_least}"
        f"{_gbps(res.rate, mean_size)} ({frames}, loss ≤ {res.tolerance:.3%}, "
        f"precision {res.precision:.1%}, {trials} trial{'s' if trials != 1 else ''}, "
        f"{elapsed:.1f} s)"
    )
    if not res.lower_bound:
        return line, None
    if res.probe is not None and not res.trials:
        why = "nothing was lost at the most the generator could offer"
    elif any(not t.passed for t in res.trials):
        why = "the rates above this one failed only because the generator could not offer them"
    else:
        return line, "the highest rate tried passed: a higher --high may find more"
    return line, f"generator limited: {why}; the device under test may forward more"


@click.command("lossfree", context_settings=CONTEXT)
@click.argument("gen_iface", metavar="GEN_IFACE")
@click.argument("sink_iface", metavar="SINK_IFACE")
@click.option(
    "--gen-netns",
    metavar="NS",
    callback=_netns_option,
    help="Network namespace of GEN_IFACE (a name under /run/netns, or a path like "
    "/proc/PID/ns/net) [default: this one].",
)
@click.option(
    "--sink-netns",
    metavar="NS",
    callback=_netns_option,
    help="Network namespace of SINK_IFACE, same forms [default: this one].",
)
@click.option(
    "--low",
    default="10kpps",
    show_default=True,
    metavar="RATE",
    callback=_rate_option,
    help="Lowest rate to try (as gen's --rate: 1Mpps, 250kpps, 20000, 500Mbps ...).",
)
@click.option(
    "--high",
    default="max",
    show_default=True,
    metavar="RATE|max",
    callback=_rate_option,
    help="Highest rate to try. max: first one unpaced trial finds what the generator can "
    "offer; if it loses nothing that is the answer (a lower bound), else the search runs "
    "up to 97% of it.",
)
@click.option(
    "--precision",
    default="2%",
    show_default=True,
    metavar="FRACTION",
    callback=_fraction_option(low_open=True),
    help="Stop when the lowest failing rate is within this of the highest passing one "
    "(0.02 or 2%): the answer is at most this far below the true loss-free rate.",
)
@click.option(
    "--tolerance",
    default="0.1%",
    show_default=True,
    metavar="FRACTION",
    callback=_fraction_option(low_open=False),
    help="Largest loss a passing trial may have (0.001 or 0.1%; 0: none at all).",
)
@click.option(
    "--duration",
    type=click.FloatRange(0, min_open=True),
    default=1.0,
    show_default=True,
    metavar="S",
    help="Seconds each trial sends.",
)
@click.option(
    "--settle",
    type=click.FloatRange(0),
    default=0.1,
    show_default=True,
    metavar="S",
    help="Seconds the sink keeps counting after the generator stops; later frames are lost.",
)
@click.option(
    "--max-trials",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    metavar="N",
    help="Trials at most (the probe of --high max included).",
)
@click.option(
    "--size",
    default="64",
    show_default=True,
    metavar="BYTES|imix|B1,B2..",
    callback=_frame_option,
    help="Frame size with the 4-byte FCS, as gen's --size.",
)
@click.option(
    "--flows",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    metavar="N",
    help="Distinct UDP 5-tuples.",
)
@click.option(
    "--dst",
    default="198.19.0.1",
    show_default=True,
    metavar="IP|PREFIX[,..]|random",
    callback=_frame_option,
    help="Destination address(es), as gen's --dst.",
)
@click.option(
    "--dst-mac",
    default="ff:ff:ff:ff:ff:ff",
    show_default=True,
    metavar="MAC",
    callback=_frame_option,
    help="Give the router's MAC when measuring a router.",
)
@click.option(
    "--kp",
    type=click.IntRange(1, 65536),
    default=64,
    show_default=True,
    metavar="N",
    help="Generator frames per batch (one sendmmsg call).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result and every trial as JSON.")
def lossfree(
    gen_iface: str,
    sink_iface: str,
    gen_netns: str | None,
    sink_netns: str | None,
    low: Any,
    high: Any,
    precision: float,
    tolerance: float,
    duration: float,
    settle: float,
    max_trials: int,
    size: str,
    flows: int,
    dst: str,
    dst_mac: str,
    kp: int,
    as_json: bool,
) -> None:
    """Find the maximum loss-free rate from GEN_IFACE to SINK_IFACE: the paper's metric.

    A binary search on the offered rate (as RFC 2544's throughput test): each trial starts a
    sink on SINK_IFACE, sends probe frames out of GEN_IFACE for --duration seconds at the
    rate, counts --settle seconds more and compares. A trial passes when its loss is at most
    --tolerance and the generator really offered the rate (95% of it); a rate the generator
    could not offer fails as generator-limited, never as loss-free. Offered frames include
    those the kernel refused (ENOBUFS: on a veth, the next hop's input backlog was full).

    The generator and the sink run as agents, one process each, inside their namespaces:
    put a router between the two interfaces (give its MAC with --dst-mac) to measure the
    router, or join them directly to measure the path itself.

    Each trial is shown on stderr as it ends (a live table on a terminal, one line per trial
    otherwise); the result goes to stdout: the loss-free rate in Mpps and in Gbps (frame bits
    with FCS), '>=' when it is only a lower bound (nothing above it failed for loss: the
    generator could offer no more, or --high passed).

    \b
    Examples:
      routebricks lossfree eth0 eth0 --gen-netns rb000001-a --sink-netns rb000001-c \\
          --dst 10.0.2.2 --dst-mac 02:00:00:00:00:01 --flows 256
      routebricks lossfree veth0 veth1 --low 100kpps --high 2Mpps --precision 1% \\
          --duration 2 --size imix --json
    """
    import time

    from routebricks.traffic.agents import GenAgent, SinkAgent
    from routebricks.traffic.frames import mean_frame_size
    from routebricks.traffic.lossfree import (
        agents_trial,
        loss_free_rate,
        loss_free_rate_probed,
    )

    mean_size = mean_frame_size(size)
    lo = low.pps(mean_size) if low is not None else None
    hi = high.pps(mean_size) if high is not None else None
    if lo is None:
        raise click.BadParameter("the search needs a lowest rate, not max", param_hint="'--low'")
    if hi is not None and lo > hi:
        raise click.UsageError(f"--low ({_mpps(lo)}) is above --high ({_mpps(hi)})")
    _check_interface(gen_iface, gen_netns, "GEN_IFACE and --gen-netns")
    _check_interface(sink_iface, sink_netns, "SINK_IFACE and --sink-netns")

    t0 = time.monotonic()
    show = _TrialDisplay(live=sys.stderr.isatty(), seconds=duration, probe_first=hi is None)
    timeout = 120.0 + duration + settle
    try:
        with (
            SinkAgent(sink_iface, netns=sink_netns, timeout=timeout) as sink_agent,
            GenAgent(gen_iface, netns=gen_netns, timeout=timeout) as gen_agent,
        ):
            gen_agent.configure(dst=dst, dst_mac=dst_mac, flows=flows, size=size)
            trial = agents_trial(
                gen_agent, sink_agent, seconds=duration, kp=kp, settle=settle,
                before=show.start,
            )  # fmt: skip
            search: dict[str, Any] = {
                "tolerance": tolerance, "precision": precision, "max_trials": max_trials,
                "log": show.done,
            }  # fmt: skip
            if hi is None:
                res = loss_free_rate_probed(trial, lo, **search)
            else:
                res = loss_free_rate(trial, lo, hi, **search)
    except RouteBricksError as e:
        show.close()
        _fail(e)
        return
    finally:
        show.close()  # before the result, and also on Ctrl-C
    elapsed = time.monotonic() - t0

    line, note = _lossfree_summary(res, size, mean_size, elapsed)
    if as_json:
        d = res.to_dict()
        d.update(
            rate_pps=res.rate,
            mpps=None if res.rate is None else res.rate / 1e6,
            gbps=None if res.rate is None else res.rate * mean_size * 8 / 1e9,
            size=size,
            mean_frame_bytes=mean_size,
            flows=flows,
            trial_duration_s=duration,
            settle_s=settle,
            gen={"interface": gen_iface, "netns": gen_netns},
            sink={"interface": sink_iface, "netns": sink_netns},
            elapsed_s=elapsed,
            summary=line,
            note=note,
        )
        _print_json(d)
    else:
        click.echo(line)
    if note:
        click.secho(note, fg="yellow", err=True)


COMMANDS = [gen, sink, lossfree]
