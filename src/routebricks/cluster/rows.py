"""Key/value reports of the cluster commands (plan, simulate): a rich table on a terminal,
aligned plain text otherwise."""

from __future__ import annotations

import sys

import click


def print_rows(title: str, rows: list[tuple[str, str]]) -> None:
    """A rich table on a terminal, aligned plain text otherwise (pipes, files, tests)."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title, show_header=False, title_justify="left", box=None,
                  pad_edge=False)
        t.add_column("what", style="bold")
        t.add_column("value")
        for k, v in rows:
            t.add_row(k, v)
        Console(soft_wrap=True).print(t)
        return
    width = max(len(k) for k, _ in rows)
    click.echo(title)
    for k, v in rows:
        click.echo(f"  {k:<{width}}  {v}")
