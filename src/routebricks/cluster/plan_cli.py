"""``routebricks plan``: how many servers an N-port router needs, and how to wire them.

Added to the ``routebricks`` command through :data:`COMMANDS` (``PLUGINS`` in
:mod:`routebricks.cli`). The model is :mod:`routebricks.cluster.plan`; this module parses
the options, prints the plan, draws Fig. 3 and writes a cluster file.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

from routebricks.cluster.rows import print_rows
from routebricks.errors import RouteBricksError

if TYPE_CHECKING:  # the model is imported when the command runs
    from routebricks.cluster.plan import NicKind, Plan, SwitchedPlan

__all__ = ["COMMANDS", "plan", "plot_figure3"]

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}

EPILOG = """\b
Examples:
  routebricks plan 32                       # current servers: a full mesh of 32
  routebricks plan 1024                     # a 10 Tbit/s router: 3,072 servers, 96 µs
  routebricks plan 2048 --server faster --json
  routebricks plan 64 --ports-per-nic 4x10G --nics 4   # other NICs
  routebricks plan 16 --write-cluster rb16.toml       # then: routebricks cluster up rb16.toml
  routebricks plan --plot fig3.png          # Fig. 3: servers against N, log axes
"""


def _rate(text: str, param: str) -> int:
    """A rate in the cluster files' notation (10Gbit, 1G, 500Mbit), via the project's
    parser, without tc's ceiling (a plan shapes nothing); its errors become the option's."""
    from routebricks.netns.tc import parse_rate

    try:
        return parse_rate(text, "rate", maximum=0)
    except RouteBricksError as e:
        raise click.BadParameter(str(e).removeprefix("rate: "), param_hint=f"'{param}'"
                                 ) from None


def _nic_kinds(text: str, rate: int) -> tuple[NicKind, ...]:
    """``2x10G,8x1G`` (NIC kinds a slot can take), or ``8``: 8 ports at the line rate."""
    from routebricks.cluster.plan import NicKind

    kinds = []
    for item in text.split(","):
        count, sep, kind_rate = item.strip().partition("x")
        if not count.strip().isdigit() or int(count) < 1 or (sep and not kind_rate.strip()):
            raise click.BadParameter(
                f"{item.strip()!r} is not PORTSxRATE", param_hint="'--ports-per-nic'")
        port_rate = _rate(kind_rate.strip(), "--ports-per-nic") if sep else rate
        kinds.append(NicKind(int(count), port_rate))
    return tuple(dict.fromkeys(kinds))  # a kind given twice is one kind


def _command_line(ctx: click.Context) -> str:
    """The command as given (defaults left out), for the cluster file's header."""
    words = ["routebricks", "plan"]
    for param in ctx.command.params:
        name = param.name or ""
        if ctx.get_parameter_source(name) != click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[name]
        if isinstance(param, click.Argument):
            words.append(str(value))
        elif getattr(param, "is_flag", False):
            words.append(param.opts[0])
        else:
            words += [param.opts[0], str(value)]
    return shlex.join(words)


@click.command("plan", context_settings=CONTEXT, epilog=EPILOG)
@click.argument("ports", metavar="[N]", type=int, required=False)
@click.option("--server", "server", default="current", show_default=True,
              type=click.Choice(["current", "more-nics", "faster"]),
              help="The paper's server configuration (§3.3): current = 1 port of 10G and 5 "
              "NIC slots; more-nics = 1 port, 20 NIC slots; faster = 2 ports, 20 NIC slots.")
@click.option("--rate", "rate_text", metavar="RATE", default="10Gbit", show_default=True,
              help="R, the line rate of every external port (e.g. 10Gbit, 1G).")
@click.option("--nics", type=click.IntRange(1, 256), default=None, metavar="SLOTS",
              help="NIC slots per server [default: the configuration's].")
@click.option("--ports-per-nic", "nic_text", metavar="PxRATE[,...]", default=None,
              help="NIC kinds a slot takes, e.g. '2x10G,8x1G' (the paper's), or a number of "
              "ports at the line rate [default: 2x10G,8x1G].")
@click.option("--processing", "processing_text", metavar="RATE", default=None,
              help="What a server can process; it handles processing / (cR) ports "
              "[default: 30Gbit, 60Gbit for faster].")
@click.option("--traffic", type=click.Choice(["worst", "uniform"]), default="worst",
              show_default=True,
              help="The traffic matrix sized for: worst costs 3R per port (VLB), uniform 2R "
              "(Direct VLB sends almost everything straight, §3.2).")
@click.option("--ports-per-server", type=click.IntRange(1, 63), default=None, metavar="S",
              help="External ports per server, instead of deriving them from --processing.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--plot", "plot_file", metavar="FILE.png", default=None,
              help="Draw Fig. 3 (servers against N, for the three configurations and the "
              "switched cluster, at --rate) to FILE.")
@click.option("--write-cluster", "cluster_file", metavar="FILE.toml", default=None,
              help="Write a cluster file for the plan: io servers s1..sM with their ports; "
              "for an n-fly, the butterfly the emulated data plane runs for the same k and n "
              "(k^n io servers; it adds the n·k^(n-1) switch servers itself).")
def plan(ports: int | None, server: str, rate_text: str, nics: int | None,
         nic_text: str | None, processing_text: str | None, traffic: str,
         ports_per_server: int | None, as_json: bool, plot_file: str | None,
         cluster_file: str | None) -> None:
    """Plan a RouteBricks cluster for N external ports (§3.3): the fewest servers.

    Each server takes as many ports as its processing allows (a port costs 3R, or 2R for a
    uniform traffic matrix). If the servers' NICs have room for a link to every other
    server, they form a full mesh; otherwise a k-ary n-fly joins them through n stages of
    intermediate servers, k the per-server fanout. A packet crosses 2-3 servers in a mesh,
    n + 2 in an n-fly, about 24 µs each (§6.2). The switched cluster the paper rejects
    (Arista 7148S, 48 x 10G, at $500 a port against $2000 a server) is priced beside it.
    """
    from routebricks.cluster import plan as model

    ctx = click.get_current_context()
    if ports is None and plot_file is None:
        raise click.UsageError("give N, the number of external ports (or --plot FILE)")
    if ports is not None and not 2 <= ports <= 65535:
        raise click.BadParameter(f"{ports} ports: a router has 2 to 65535 (one subnet "
                                 "10.x.y.0/24 each)", param_hint="'N'")
    rate = _rate(rate_text, "--rate")
    if plot_file is not None:
        plot_figure3(Path(plot_file), rate)
        if ports is None:
            return
    assert ports is not None
    config = model.SERVER_CONFIGS[server]
    kinds = config.nic_kinds if nic_text is None else _nic_kinds(nic_text, rate)
    slots = config.nics if nics is None else nics
    processing = (config.processing if processing_text is None
                  else _rate(processing_text, "--processing"))
    s = ports_per_server
    if s is None:
        s = model.ports_per_server(processing, rate, traffic)
        if s < 1:
            factor = model.VLB_FACTOR[traffic]
            raise click.UsageError(
                f"a server processing {_bps(processing)} cannot hold one port of "
                f"{_bps(rate)}: that takes {factor}R = {_bps(factor * rate)}; give a lower "
                "--rate, more --processing, --traffic uniform or --ports-per-server")
    try:
        p = model.plan(ports, rate, s, slots, kinds, server)
        limit = model.mesh_limit(rate, s, slots, kinds)
    except model.PlanError as e:
        raise click.UsageError(str(e)) from None
    switched = model.switched_plan(ports, rate, s)
    if cluster_file is not None:
        _write_cluster(p, Path(cluster_file), _command_line(ctx), limit)
    if as_json:
        out = {**p.as_dict(), "traffic": traffic, "processing_bps": processing,
               "nic_slots": slots, "nic_kinds": [str(k) for k in kinds],
               "mesh_limit": limit, "switched": switched.as_dict()}
        click.echo(json.dumps(out, indent=2))
        return
    title = (f"{ports} ports of {_bps(rate)}: {p.servers:,} servers, "
             + ("a full mesh" if p.topology == "mesh"
                else f"a k-ary n-fly (k = {p.k}, n = {p.stages})"))
    changed = [f"{param.opts[0]} {ctx.params[param.name]}" for param in ctx.command.params
               if param.name in ("nics", "nic_text", "processing_text", "ports_per_server")
               and ctx.params[param.name] is not None]
    summary = config.summary + (f"; with {', '.join(changed)}" if changed else "")
    print_rows(title, _rows(p, summary, processing, traffic, limit, switched))


def _write_cluster(p: Plan, path: Path, command: str, mesh_limit: int) -> None:
    """Write the plan's cluster file; for an n-fly, say on stderr how the data plane's
    butterfly differs from the plan. A file the spec would refuse is a usage error."""
    from routebricks.cluster import plan as model
    from routebricks.packet.clustermac import MAX_SERVERS

    try:
        text = model.cluster_toml(p, command)
    except model.PlanError as e:
        message = f"--write-cluster: {e}"
        if p.topology == "nfly":
            below, above = model.cluster_file_ports(p)
            works = " or ".join(f"N = {n}" for n in (below, above) if n is not None)
            message += (f"; with these servers, {works} makes one it can emulate" if works
                        else "; no N makes one it can emulate with these servers")
            mesh = min(mesh_limit, MAX_SERVERS * p.ports_per_server)
            if mesh >= 2:
                message += f" (or N up to {mesh} for a full mesh)"
        raise click.UsageError(message) from None
    try:
        path.write_text(text)
    except OSError as e:
        raise click.ClickException(f"{path}: {e.strerror or e}") from None
    if p.topology == "nfly":
        k = model.emulated_radix(p)
        assert k is not None
        n, one = p.stages, "" if p.ports_per_server == 1 else "s"
        click.echo(f"{path}: the emulated data plane folds the butterfly (k = {k}, n = {n}): "
                   f"{p.io_servers} io and {n * k ** (n - 1)} switch servers (up to "
                   f"2k{one}R each), where the plan counts {p.intermediate_servers} "
                   f"intermediate servers of {one}R each (each switch "
                   f"split into k = {k}); routing is the same", err=True)


def _bps(bps: float) -> str:
    from routebricks.netns.tc import format_rate

    return format_rate(bps)


def _rows(p: Plan, summary: str, processing: int, traffic: str, limit: int,
          switched: SwitchedPlan) -> list[tuple[str, str]]:
    from routebricks.cluster.plan import SERVER_LATENCY_US

    per = f"{p.ports_per_server} port{'s' if p.ports_per_server > 1 else ''}"
    topology = ("full mesh" if p.topology == "mesh"
                else f"k-ary n-fly: k = {p.k}, n = {p.stages} stages of intermediate servers")
    servers = (f"{p.servers:,}: {p.io_servers:,} io, {p.intermediate_servers:,} intermediate "
               f"({p.servers / p.ports:.2f} per port)")
    link_rate = _bps(float(p.link_rate))
    if p.topology == "mesh":
        links = (f"{p.links:,} duplex, ≤ {link_rate} each way; {p.k} per server of "
                 f"{p.fanout} the NICs allow" if p.links else "none")
        hops = (f"{p.hops} server{'s' if p.hops > 1 else ''}" if p.hops == p.hops_min
                else f"{p.hops_min}-{p.hops} servers (straight, or via an intermediate)")
        latency = (f"≈ {p.hops_min * SERVER_LATENCY_US:g}-{p.latency_us:g} µs"
                   if p.hops > p.hops_min else f"≈ {p.latency_us:g} µs")
    else:
        links = (f"{p.links:,} one-way, ≤ {link_rate} each; {p.k} per server of {p.fanout} "
                 "the NICs allow")
        hops = f"{p.hops} servers (io, {p.stages} intermediate, io)"
        latency = f"≈ {p.latency_us:g} µs"
    return [
        ("configuration", summary),
        ("ports per server", f"{per} ({_bps(processing)} of processing, "
                             f"{'3R' if traffic == 'worst' else '2R'} per port)"),
        ("topology", topology),
        ("servers", servers),
        ("NICs per server", p.allocation.describe()),
        ("internal links", links),
        ("hops", hops),
        ("latency", f"{latency} ({SERVER_LATENCY_US:g} µs per server)"),
        ("full mesh up to", f"{limit:,} ports"),
        ("switched instead", f"{switched.server_equivalents:,} server-equivalents: "
                             f"{switched.servers:,} servers, {switched.switches:,} Arista 7148S"),
        ("switched cost", f"${switched.cost_usd:,}; a packet crosses {switched.switch_hops} "
                          f"switch{'es' if switched.switch_hops > 1 else ''}"),
    ]


def plot_figure3(path: Path, rate: int) -> None:
    """Fig. 3 again: cluster servers against N (4..2048, log axes) for the paper's three
    server configurations and the switched cluster, R = ``rate``."""
    from matplotlib.figure import Figure  # no pyplot: no backend state, Agg by default

    from routebricks.cluster.plan import FIG3_PORTS, PlanError, figure3

    try:
        curves = figure3(rate)
    except PlanError as e:
        raise click.UsageError(f"--plot: {e}") from None
    labels = {"current": "current servers", "more-nics": "more NICs",
              "faster": "faster servers", "switched": "48-port switches"}
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for (name, servers), marker in zip(curves.items(), "os^x", strict=True):
        ax.plot(FIG3_PORTS, servers, marker=marker, label=labels[name])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("external router ports N")
    ax.set_ylabel("servers N' (switched: server-equivalents)")
    ax.set_title(f"Servers for an N-port router, R = {_bps(rate)}/port")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path)
    except (OSError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="'--plot'") from None


COMMANDS = [plan]
