"""``routebricks cluster``: a router made of several servers (RouteBricks §3, §6)."""

from __future__ import annotations

import json
import sys

import click

from routebricks.errors import RouteBricksError
from routebricks.netns.cli import check_prefix

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


def _fail(e: Exception) -> None:
    click.echo(str(e), err=True)
    sys.exit(1)


@click.group(context_settings=CONTEXT)
def cluster() -> None:
    """A router made of several servers: Direct VLB over a full mesh of internal links (or
    VLB over a k-ary n-fly of intermediate servers: topology = "nfly"),
    the output server encoded in the destination MAC, flowlets against reordering, BFD
    between servers.

    \b
    Examples:
      routebricks cluster up examples/rb4.toml           # emulated, in namespaces
      routebricks cluster up examples/nfly4.toml         # 4 ports over a 2-ary 2-fly
      routebricks cluster status                         # live rates, roles, drops
      routebricks cluster config examples/rb4.toml --server s1   # s1's share, as Click
      routebricks cluster node rb4.toml --server s1      # run s1's share on this machine
      routebricks cluster down
    """


@cluster.command("config", context_settings=CONTEXT)
@click.argument("file", metavar="FILE.toml")
@click.option("--server", "server", metavar="NAME", default=None,
              help="The server whose share to print [default: every server, one after "
              "the other].")
def config_cmd(file: str, server: str | None) -> None:
    """Print a server's share of the cluster as an ordinary Click configuration, to read,
    edit, and run with 'routebricks run'."""
    from routebricks.cluster.config import all_configs, routes_file, server_config
    from routebricks.cluster.spec import load_cluster

    try:
        spec = load_cluster(file)
        if server is not None:
            sys.stdout.write(server_config(spec, server, routes_file(spec)))
            return
        for name, text in all_configs(spec).items():
            sys.stdout.write(f"// ===== {name} =====\n{text}\n")
    except RouteBricksError as e:
        _fail(e)


@cluster.command("up", context_settings=CONTEXT)
@click.argument("file", metavar="FILE.toml")
@click.option("--prefix", default=None, metavar="rbXXXXXX-", callback=check_prefix,
              help="Name prefix for the namespaces and links [default: random].")
@click.option("--no-routers", is_flag=True,
              help="Build namespaces, links and hosts only; start each server yourself "
              "with 'routebricks cluster node FILE --server NAME --netns PREFIXNAME'.")
@click.option("--json", "as_json", is_flag=True, help="Print what was made as JSON.")
def up_cmd(file: str, prefix: str | None, no_routers: bool, as_json: bool) -> None:
    """Emulate the cluster on this machine: a namespace per server and per external host,
    veth links shaped with tc to their line rates (R outside; inside 2R/N in a mesh, R in
    a k-ary n-fly), and each server's router, started in the background."""
    from routebricks.cluster.launch import up
    from routebricks.cluster.spec import load_cluster

    try:
        spec = load_cluster(file)
        state = up(spec, prefix=prefix, routers=not no_routers)
    except RouteBricksError as e:
        _fail(e)
        return
    if as_json:
        click.echo(json.dumps({"prefix": state.prefix, "dir": str(state.dir),
                               "servers": state.servers, "hosts": state.hosts}))
        return
    click.echo(f"cluster {state.name} is up ({state.prefix}, state in {state.dir}):")
    for name, s in state.servers.items():
        pid = f"router pid {s['pid']}" if s["pid"] else "no router (start it with 'cluster node')"
        click.echo(f"  server {name:<8} netns {s['netns']:<16} {pid}")
    for name, h in state.hosts.items():
        click.echo(f"  host   {name:<8} netns {h['netns']:<16} {h['address']}")
    click.echo("watch it with: routebricks cluster status; remove it with: "
               f"routebricks cluster down {state.prefix}")


@cluster.command("down", context_settings=CONTEXT)
@click.argument("prefix", required=False, metavar="[PREFIX]")
@click.option("--timeout", type=click.FloatRange(0), default=15.0, show_default=True,
              metavar="SECONDS", help="How long routers get to stop after SIGTERM.")
def down_cmd(prefix: str | None, timeout: float) -> None:
    """Stop the cluster's routers (they log their summaries) and remove every namespace,
    link and qdisc it made — also after a crash (give the prefix then)."""
    from routebricks.cluster.launch import down

    try:
        removed = down(prefix, timeout=timeout)
    except RouteBricksError as e:
        _fail(e)
        return
    for r in removed:
        if r.startswith("router"):
            click.echo(f"stopped {r}")
    names = [r for r in removed if not r.startswith("router")]
    click.echo(f"removed {len(names)} namespaces and links" if names else "nothing to remove")


@cluster.command("status", context_settings=CONTEXT)
@click.argument("prefix", required=False, metavar="[PREFIX]")
@click.option("--interval", type=click.FloatRange(0.1), default=1.0, metavar="SECONDS",
              help="Refresh period.")
@click.option("--once", is_flag=True, help="Print one measurement and exit.")
@click.option("--json", "as_json", is_flag=True, help="One measurement as JSON.")
def status_cmd(prefix: str | None, interval: float, once: bool, as_json: bool) -> None:
    """Live per-server rates by role (input, intermediate, output), drops by reason, and
    per-link packet rates of a running cluster."""
    from routebricks.cluster.status import run_status

    try:
        run_status(prefix, interval, once, as_json)
    except RouteBricksError as e:
        _fail(e)


@cluster.command("list", context_settings=CONTEXT)
def list_cmd() -> None:
    """The clusters that are up on this machine."""
    from routebricks.cluster.launch import clusters_dir

    found = sorted(p.name for p in clusters_dir().iterdir() if (p / "state.json").is_file())
    click.echo("\n".join(found) if found else "no clusters")


@cluster.command("node", context_settings=CONTEXT)
@click.argument("file", metavar="FILE.toml")
@click.option("--server", "server", metavar="NAME", required=True,
              help="Which server of the file this machine is.")
@click.option("--netns", metavar="NAME", default=None,
              help="Run inside this network namespace (an emulated machine).")
@click.option("-u", "--unix-socket", "socket_path", metavar="PATH", default=None,
              help="Control socket (for 'routebricks handler', 'top').")
@click.option("--time", "time_limit", type=click.FloatRange(0, min_open=True), default=None,
              metavar="SECONDS", help="Stop after this many seconds.")
@click.option("--kp", type=click.IntRange(1), default=None, metavar="N",
              help="Packets per poll.")
def node_cmd(file: str, server: str, netns: str | None, socket_path: str | None,
             time_limit: float | None, kp: int | None) -> None:
    """Run one server's share of the cluster on this machine, with the interface names
    from the file: one command per machine, no central process."""
    from routebricks.cluster.config import cache_dir, routes_file, server_config
    from routebricks.cluster.spec import load_cluster
    from routebricks.runtime.launch import RunOptions, run_router

    try:
        spec = load_cluster(file)
        text = server_config(spec, server, routes_file(spec))
        conf = cache_dir() / f"{spec.name}-{server}.click"
        conf.write_text(text)
    except (RouteBricksError, OSError) as e:
        _fail(e)
        return
    opts = RunOptions(config=str(conf), netns=netns, socket_path=socket_path,
                      time_limit=time_limit, kp=kp, workers=spec.workers,
                      pin=spec.workers > 1)
    sys.exit(run_router(opts))


COMMANDS = [cluster]
