"""Printing results: tables for people (100 columns at most), JSON and YAML for scripts."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any, Iterable, Sequence

import click
import yaml
from rich.console import Console
from rich.table import Table

MAX_WIDTH = 100
FORMATS = ("table", "json", "yaml")

output_option = click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format: a table for people, json or yaml for scripts.",
)


def console(stderr: bool = False) -> Console:
    """A console no wider than 100 columns; plain text when not on a terminal."""
    width = min(shutil.get_terminal_size((MAX_WIDTH, 24)).columns, MAX_WIDTH)
    return Console(width=width, stderr=stderr, highlight=False, markup=False, soft_wrap=False)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, wrap: str = "MESSAGE") -> None:
    """A Flux-style borderless table; the `wrap` column folds, the others keep their text."""
    t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in columns:
        if name == wrap:
            t.add_column(name, overflow="fold", ratio=1)
        else:
            t.add_column(name, no_wrap=True)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console().print(t)


def dump(data: Any, fmt: str) -> None:
    """JSON (indented, sorted as given) or YAML (block style) on stdout."""
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def echo_err(message: str) -> None:
    click.echo(message, err=True)
