"""``routebricks gen`` and ``routebricks sink``: the traffic generator and the measuring sink
(``routebricks lossfree``, which drives both, is in :mod:`routebricks.traffic.lossfree_cli`).

Added to the ``routebricks`` command through :data:`COMMANDS` (see ``cli._register_plugins``).
Heavy modules (numpy, numba kernels, sockets) are imported when a command runs, so
``routebricks --help`` stays fast.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import click

from routebricks.errors import RouteBricksError

if TYPE_CHECKING:
    pass

__all__ = ["COMMANDS", "gen", "shortfall_message", "sink"]

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


COMMANDS = [gen, sink]
