"""`gitward db`: the state database's schema revision, its history, and upgrades.

Other commands upgrade an older database on their own; these are for looking, and for a
PostgreSQL DBA who prefers to apply the DDL themselves (`gitward db upgrade --sql`).
"""

from __future__ import annotations

import click

from engine.store.db import redact_url, state_url
from engine.store.migrate import schema_history, schema_status, upgrade_schema, upgrade_sql


def _url(ctx: click.Context) -> str:
    obj = ctx.find_root().obj or {}
    return state_url(obj.get("state") if isinstance(obj, dict) else None)


@click.group("db")
def db() -> None:
    """Inspect and upgrade the state database's schema."""


@db.command("upgrade")
@click.option(
    "--sql", "as_sql", is_flag=True, help="Print the DDL for the database's dialect instead of running it."
)
@click.pass_context
def upgrade_command(ctx: click.Context, as_sql: bool) -> None:
    """Bring the state database's schema to this gitward's head revision.

    \b
    Example:
      gitward --state postgresql+psycopg://gitward@db/gitward db upgrade --sql > schema.sql
    """
    url = _url(ctx)
    if as_sql:
        click.echo(upgrade_sql(url), nl=False)
        return
    before, after = upgrade_schema(url)
    if before == after:
        click.echo(f"{redact_url(url)}: already at revision {after}")
    else:
        click.echo(f"{redact_url(url)}: upgraded from {before or 'an empty database'} to revision {after}")


@db.command("current")
@click.pass_context
def current_command(ctx: click.Context) -> None:
    """Show the state database's schema revision and this gitward's head.

    \b
    Example:
      gitward --state state.db db current
    """
    status = schema_status(_url(ctx))
    if status.current is None:
        state = "empty (no schema yet; any command creates it)"
    elif status.up_to_date:
        state = "up to date"
    elif status.known:
        state = "behind (the next command upgrades it)"
    else:
        state = "newer than this gitward (upgrade gitward)"
    click.echo(f"database: {status.url}")
    click.echo(f"revision: {status.current or '-'}")
    click.echo(f"head:     {status.head}")
    click.echo(f"state:    {state}")


@db.command("history")
@click.pass_context
def history_command(ctx: click.Context) -> None:
    """List the schema migrations, newest first, marking the database's revision.

    \b
    Example:
      gitward db history
    """
    for migration in schema_history(_url(ctx)):
        marker = "*" if migration.current else " "
        parent = migration.down_revision or "<base>"
        title = migration.message.strip().splitlines()[0] if migration.message.strip() else ""
        click.echo(f"{marker} {parent} -> {migration.revision}: {title}")
