"""`gitward sql "SELECT ..."`: audit the store with plain SQL, read-only."""

from __future__ import annotations

import csv
import sys
from datetime import datetime

import click

from engine.cli.output import dump, table
from engine.cli.state import open_for_reading
from engine.errors import UserError
from engine.store.sql import QueryLimits, run_query

_DEFAULTS = QueryLimits()


@click.command()
@click.argument("statement")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "csv"]),
              default="table", show_default=True)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=_DEFAULTS.timeout,
              show_default=True, help="Stop the query after this many seconds.")
@click.option("--max-rows", type=click.IntRange(min=1), default=_DEFAULTS.max_rows,
              show_default=True, help="Refuse a result of more rows than this.")
@click.option("--max-bytes", type=click.IntRange(min=1), default=_DEFAULTS.max_bytes,
              show_default=True, help="Refuse a result (or one value) larger than this.")
@click.pass_context
def sql(ctx: click.Context, statement: str, fmt: str, timeout: float, max_rows: int,
        max_bytes: int) -> int:
    """Run one read-only query (SELECT, WITH, VALUES, EXPLAIN) against the state store.

    Writes, pragmas, ATTACH, VACUUM and a second statement are refused; see docs/sql.md for the
    schema and a read-only PostgreSQL role.

    \b
    Example:
      gitward --state state.db.example sql "SELECT repository, tag, first_seen FROM image_tags"
    """
    store = open_for_reading(ctx)
    if store is None:
        raise UserError("no state store yet: nothing to query")
    with store:
        result = run_query(store, statement, QueryLimits(timeout, max_rows, max_bytes))
    rows = [[_cell(v) for v in row] for row in result.rows]
    if fmt == "json":
        dump([dict(zip(result.columns, row)) for row in rows], "json")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(rows)
    else:
        table(list(result.columns), rows, wrap=result.columns[-1] if result.columns else "")
        click.echo(f"({len(rows)} row{'s' * (len(rows) != 1)})", err=True)
    return 0


def _cell(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value
