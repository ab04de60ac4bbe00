"""Printing results: tables for people (100 columns at most), JSON and YAML for scripts.

rich draws the tables; it is imported when one is drawn, so a command that prints JSON or a
diff (`plan`, `images check`) does not load it (tests/e2e/test_lazy_imports.py).
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import click
import yaml

if TYPE_CHECKING:
    from rich.console import Console

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
    from rich.console import Console

    width = min(shutil.get_terminal_size((MAX_WIDTH, 24)).columns, MAX_WIDTH)
    return Console(width=width, stderr=stderr, highlight=False, markup=False, soft_wrap=False)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, wrap: str = "MESSAGE",
          header: bool = True) -> None:
    """A Flux-style borderless table, at most 100 columns wide, that never cuts a word.

    The other columns keep their text on one line. The `wrap` column wraps between words; when
    they leave it less room than its longest word (a tag, a revision, an object name), a cell
    that does not fit goes under its row instead, indented, so a tag is never split in pieces.
    """
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    out = console()
    at = columns.index(wrap) if wrap in columns else -1
    fixed = [max([len(name), *(len(row[i]) for row in cells)])
             for i, name in enumerate(columns) if i != at]
    room = out.width - sum(fixed) - GAP * (len(columns) - 1)
    longest = max([len(wrap), *(len(word) for row in cells for word in row[at].split())]) if at >= 0 else 0
    if at < 0 or room >= longest:
        from rich.table import Table

        t = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", show_header=header)
        for i, name in enumerate(columns):
            if i == at:
                t.add_column(name, overflow="fold", min_width=longest, max_width=max(room, longest))
            else:
                t.add_column(name, no_wrap=True)
        for row in cells:
            t.add_row(*row)
        out.print(t)
        return
    click.echo("\n".join(_stacked(list(columns), fixed, cells, at, room, out.width, header)))


GAP = 2
"""Spaces between two columns (rich's padding of one on each side)."""

STACK_INDENT = 4
"""How far a cell that goes under its row is indented."""


def _stacked(columns: list[str], widths: list[int], cells: list[list[str]], at: int, room: int,
             width: int, header: bool) -> list[str]:
    """Rows of the fixed columns; the `at` cell ends its row when it is the last column and fits
    in `room`, else it follows on lines of its own, wrapped between words."""
    last = at == len(columns) - 1

    def line(values: Sequence[str], tail: str = "") -> str:
        kept = [v.ljust(w) for v, w in zip(values, widths)]
        return (" " * GAP).join([*kept, tail] if last else kept).rstrip()

    lines: list[str] = []
    if header:
        inline = last and room >= len(columns[at])
        lines.append(line([c for i, c in enumerate(columns) if i != at], columns[at] if inline else ""))
        if not inline:  # the header of the cells under each row, where they are
            lines.append(" " * STACK_INDENT + columns[at])
    for row in cells:
        fixed, text = [v for i, v in enumerate(row) if i != at], row[at]
        if last and len(text) <= room and "\n" not in text:
            lines.append(line(fixed, text))
            continue
        lines.append(line(fixed))
        for paragraph in text.splitlines():
            lines.extend(textwrap.wrap(paragraph, width - STACK_INDENT, break_long_words=False,
                                       break_on_hyphens=False, initial_indent=" " * STACK_INDENT,
                                       subsequent_indent=" " * STACK_INDENT))
    return lines


def dump(data: Any, fmt: str) -> None:
    """JSON (indented, sorted as given; a list's flat items one to a line) or YAML (block
    style) on stdout."""
    if fmt == "json":
        sys.stdout.write(_json(data, "") + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def _json(value: Any, indent: str) -> str:
    """`value` as indented JSON, but an object holding no other object or array (below the
    top) on one line: json.dumps with `indent` runs the pure-Python encoder (~25 ms for a
    2,000-tag list), a line without it the C encoder."""
    inner = indent + "  "
    if isinstance(value, (list, tuple)) and value:
        items = f",\n{inner}".join(_json(v, inner) for v in value)
        return f"[\n{inner}{items}\n{indent}]"
    if isinstance(value, dict) and value and (not indent or any(
            isinstance(v, (dict, list, tuple)) and v for v in value.values())):
        items = f",\n{inner}".join(f"{json.dumps(str(k))}: {_json(v, inner)}"
                                   for k, v in value.items())
        return f"{{\n{inner}{items}\n{indent}}}"
    return _LINE(value)


_LINE = json.JSONEncoder(default=str).encode
"""Compact JSON (one encoder for every line: json.dumps with `default` makes one per call)."""


def echo_err(message: str) -> None:
    click.echo(message, err=True)
