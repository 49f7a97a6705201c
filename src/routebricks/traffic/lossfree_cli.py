"""``routebricks lossfree``: the paper's maximum loss-free rate, a binary search on the
offered rate that drives a generator and a sink agent (see :mod:`routebricks.traffic.lossfree`).

Added to the ``routebricks`` command through :data:`COMMANDS`; heavy modules are imported
when the command runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from routebricks.errors import RouteBricksError
from routebricks.traffic.cli import CONTEXT, _fail, _print_json

if TYPE_CHECKING:
    from routebricks.traffic.lossfree import LossFreeResult, Trial

__all__ = ["COMMANDS", "lossfree"]

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


COMMANDS = [lossfree]
