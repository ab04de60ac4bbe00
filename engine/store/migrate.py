"""Alembic: the schema's migrations, upgrading a database, its status and history, the DDL.

Alembic is configured here in code (no alembic.ini); `migrations/` sits at the repository top
level, or inside the package of an installed wheel (engine/shipped.py). Opening a store
(engine/store/db.py) imports this module only when the store is not at head.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError

from engine.errors import StoreError
from engine.store.db import (
    BUSY_TIMEOUT_MS,
    MIGRATIONS_DIR,
    current_revision,
    database_error,
    head_revision,
    make_engine,
    open_store,
    parse_url,
    redact_url,
)


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against this gitward's migrations."""

    url: str
    current: str | None
    head: str

    @property
    def known(self) -> bool:
        return self.current is None or _is_known(self.current)

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


@dataclass(frozen=True)
class Migration:
    revision: str
    down_revision: str | None
    message: str
    current: bool = False


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration, built in code; `url` is only used when no connection is passed."""
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise StoreError(f"gitward's migrations are missing: expected them in {MIGRATIONS_DIR}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.attributes["url"] = url
    return cfg


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def _is_known(revision: str) -> bool:
    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False


def _newer_error(url: str, current: str, head: str) -> StoreError:
    return StoreError(
        f"state database {redact_url(url)} is at schema revision {current}, newer than this "
        f"gitward (head {head}); upgrade gitward"
    )


def bring_to_head(engine: Engine, url: str, current: str | None, *, upgrade: bool) -> None:
    """For `open_store`, a database not at head: refuse one whose revision this gitward does
    not know (a newer gitward wrote it); upgrade an older one when `upgrade`."""
    head = head_revision()
    if current is not None and not _is_known(current):
        raise _newer_error(url, current, head)
    if upgrade:
        _upgrade(engine)


MIGRATION_LOCK_KEY = int.from_bytes(b"gitward", "big")
"""PostgreSQL's advisory lock key for schema upgrades (the bytes of "gitward")."""
MIGRATION_WAIT_MS = 120_000
"""How long a SQLite upgrade waits for another process's to finish."""


def _upgrade(engine: Engine) -> None:
    """Upgrade to head in one transaction that holds the migration lock, so processes starting
    together on an empty store take turns: the first upgrades, the others find head and stop."""
    cfg = alembic_config()
    with engine.begin() as connection:
        _lock_migrations(connection)
        if current_revision(connection) == head_revision():
            return
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


def _lock_migrations(connection: Connection) -> None:
    """Take the migration lock for the rest of the transaction. SQLite: an exclusive
    transaction (its DDL then commits or rolls back whole); PostgreSQL: a transaction-level
    advisory lock, released at commit or when a killed holder's session ends."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {MIGRATION_WAIT_MS}")
        try:
            connection.exec_driver_sql("BEGIN EXCLUSIVE")
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    else:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})


def schema_status(url: str) -> SchemaStatus:
    """The database's schema revision against head; a missing SQLite file is reported as empty."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(str(parsed.database)).exists():
            return SchemaStatus(redact_url(url), None, head_revision())
    engine = make_engine(url, readonly=parsed.get_backend_name() == "sqlite")
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
    except SQLAlchemyError as err:
        raise database_error(url, "read", err) from err
    finally:
        engine.dispose()
    return SchemaStatus(redact_url(url), current, head_revision())


def upgrade_schema(url: str) -> tuple[str | None, str]:
    """Bring the database to head; returns the revisions before and after."""
    before = schema_status(url).current
    open_store(url).close()
    return before, head_revision()


def schema_history(url: str | None = None) -> tuple[Migration, ...]:
    """Every migration, newest first, marking the database's current one when `url` is given."""
    current = schema_status(url).current if url is not None else None
    return tuple(
        Migration(
            revision=script.revision,
            down_revision=_one(script.down_revision),
            message=script.doc or "",
            current=script.revision == current,
        )
        for script in _script().walk_revisions()
    )


def _one(down: str | Sequence[str] | None) -> str | None:
    if down is not None and not isinstance(down, str):
        return ", ".join(down)
    return down


def upgrade_sql(url: str) -> str:
    """The DDL that upgrades an empty database of `url`'s dialect to head (Alembic offline mode)."""
    dialect = parse_url(url).get_backend_name()
    buffer = io.StringIO()
    cfg = alembic_config()
    cfg.output_buffer = buffer
    cfg.attributes["dialect_name"] = dialect
    try:
        command.upgrade(cfg, "head", sql=True)
    except (CommandError, NoSuchModuleError) as err:
        raise StoreError(f"cannot write upgrade SQL for {dialect}: {err}") from None
    return buffer.getvalue()
