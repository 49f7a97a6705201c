"""``routebricks testbed``: build and remove namespace testbeds from the command line."""

from __future__ import annotations

import json
import sys

import click

from routebricks.errors import RouteBricksError

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}



def check_prefix(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--prefix: 'rb', six hex digits and '-' (what cleanup recognizes as ours)."""
    from routebricks.netns.testbed import PREFIX_RE  # pyroute2: only when it is used

    if value is not None and not PREFIX_RE.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not rb + six hex digits + '-' "
                                 "(e.g. rb0a1b2c-)")
    return value

@click.group(context_settings=CONTEXT)
def testbed() -> None:
    """Hosts and a router in network namespaces, joined by veth links (pyroute2).

    \b
    Examples:
      routebricks testbed up examples/testbed.toml          # prints the prefix rbXXXXXX-
      routebricks run examples/iprouter.click --netns rbXXXXXX-r
      ip netns exec rbXXXXXX-a ping 10.0.2.2
      routebricks testbed down rbXXXXXX-                    # or: down (removes every testbed)
    """


@testbed.command("up", context_settings=CONTEXT)
@click.argument("spec_file", metavar="FILE.toml", type=click.Path(exists=True, dir_okay=False))
@click.option("--prefix", default=None, metavar="rbXXXXXX-", callback=check_prefix,
              help="Name prefix for namespaces and links [default: random].")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def testbed_up(spec_file: str, prefix: str | None, as_json: bool) -> None:
    """Create the namespaces, links, addresses and routes FILE describes."""
    from routebricks.netns.testbed import Testbed, TestbedSpec

    try:
        spec = TestbedSpec.from_toml(spec_file)
    except (ValueError, KeyError, OSError) as e:
        click.echo(f"{spec_file}: {e}", err=True)
        sys.exit(1)
    try:
        tb = Testbed(spec, prefix=prefix).up()
    except (RouteBricksError, ValueError, KeyError, OSError) as e:
        click.echo(f"testbed up: {e}", err=True)
        sys.exit(1)
    info = {"prefix": tb.prefix, "namespaces": {n.name: tb.ns(n.name) for n in spec.nodes()}}
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(f"testbed {tb.prefix} is up:")
    for node, ns in info["namespaces"].items():
        click.echo(f"  {node:<10} netns {ns}")
    click.echo(f"remove it with: routebricks testbed down {tb.prefix}")


@testbed.command("down", context_settings=CONTEXT)
@click.argument("prefix", required=False, metavar="[PREFIX]")
@click.option("--timeout", type=click.FloatRange(0), default=10.0, metavar="SECONDS",
              show_default=True,
              help="How long processes inside (routers, agents) get to stop after SIGTERM "
              "before they are killed with SIGKILL.")
def testbed_down(prefix: str | None, timeout: float) -> None:
    """Remove a testbed (or, without PREFIX, every testbed), also after a crash.

    Processes still running inside its namespaces (a router started with 'run --netns')
    are stopped first: SIGTERM, so a router prints its summary, then SIGKILL for those
    still running after --timeout. Each one stopped is listed, with the signal it took.
    """
    from routebricks.netns.testbed import PREFIX_RE, StoppedProcess, cleanup

    if prefix is not None and not PREFIX_RE.fullmatch(prefix):
        click.echo(f"bad prefix {prefix!r}: testbed prefixes look like rb1a2b3c-", err=True)
        sys.exit(2)
    stopped: list[StoppedProcess] = []
    removed = cleanup(prefix, stopped=stopped, timeout=timeout)
    for s in stopped:
        click.echo(f"stopped {s}")
    click.echo(f"removed {len(removed)} namespaces and links" if removed else "nothing to remove")


@testbed.command("list", context_settings=CONTEXT)
def testbed_list() -> None:
    """List the namespaces that belong to testbeds."""
    from pyroute2 import netns

    from routebricks.netns.testbed import PREFIX_RE

    names = sorted(n for n in netns.listnetns() if PREFIX_RE.match(n))
    click.echo("\n".join(names) if names else "no testbeds")


COMMANDS = [testbed]
