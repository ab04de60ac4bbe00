"""Opening the state database: URL resolution, connection pragmas, Alembic upgrades.

Every command opens the store through `open_store`, which brings an older schema up to date
and refuses a newer one, so a user never has to think about migrations. Alembic is configured
here in code (no alembic.ini); `migrations/` sits at the repository top level, or inside the
package of an installed wheel (engine/shipped.py).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from engine.errors import StoreError
from engine.shipped import shipped_dir

STATE_ENV = "GITWARD_STATE"
DEFAULT_STATE = "state.db"
BUSY_TIMEOUT_MS = 5000
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
MIGRATIONS_DIR = shipped_dir("migrations")
ALEMBIC_VERSION_TABLE = "alembic_version"


def state_url(value: str | None) -> str:
    """The database URL for `--state`: a bare path means SQLite; None means $GITWARD_STATE, else
    the default store (`default_state`)."""
    if not value:
        value = os.environ.get(STATE_ENV) or str(default_state(Path.cwd()))
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


GIT_DIR_STATE = Path("gitward") / DEFAULT_STATE
"""The default store's place inside a git directory."""


def default_state(cwd: Path) -> Path:
    """Where the store is when neither `--state` nor GITWARD_STATE names one.

    Inside a git work tree: `gitward/state.db` in its git directory (`.git/`, or the worktree's
    own for a linked worktree), never in the checkout beside the manifests, where `git status`
    would show it and a `git add -A` commit it. Elsewhere: `./state.db`. A `./state.db` an older
    gitward left in a work tree is still used, so its history is not lost. Nothing is created
    here: the first write makes the `gitward` directory (`_own_directory`).
    """
    legacy = cwd / DEFAULT_STATE
    git_dir = None if legacy.exists() else find_git_dir(cwd)
    return legacy if git_dir is None else git_dir / GIT_DIR_STATE


def _own_directory(parent: Path) -> bool:
    """Make `parent` when it is the default store's directory in a git directory (gitward's
    own); any other missing directory stays the user's to make."""
    if parent.name != GIT_DIR_STATE.parent.name or not (parent.parent / "HEAD").is_file():
        return False
    parent.mkdir(exist_ok=True)
    return True


def find_git_dir(start: Path) -> Path | None:
    """The git directory of the work tree holding `start`: `.git` in it or a parent, or where a
    `.git` file (a linked worktree, a submodule) points; None outside a work tree."""
    for folder in (start, *start.parents):
        dot = folder / ".git"
        if dot.is_dir():
            return dot
        if dot.is_file():
            try:
                text = dot.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            first = text.splitlines()[0] if text else ""
            if not first.startswith("gitdir:"):
                return None
            target = Path(first.removeprefix("gitdir:").strip())
            found = target if target.is_absolute() else (folder / target).resolve()
            return found if found.is_dir() else None
    return None


def redact_url(url: str) -> str:
    """The URL with its password hidden, fit for messages and logs (all userinfo, if unparsable)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        if "//" in url:
            return re.sub(r"//[^/@]*@", "//***@", url, count=1)
        return re.sub(r"^[^/@]*@", "***@", url)


@dataclass
class Store:
    """An open state database: a SQLAlchemy engine and a factory of sessions on it."""

    engine: Engine
    sessions: sessionmaker[Session]
    url: str = field(repr=False)  # may carry a password: messages use display_url
    readonly: bool = False

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def head_revision() -> str:
    head = _script().get_current_head()
    if head is None:
        raise StoreError(f"gitward's migrations in {MIGRATIONS_DIR} hold no revision")
    return head


def _is_known(revision: str) -> bool:
    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as err:
        raise StoreError(f"invalid state database URL {redact_url(url)}: {err}") from None


def _sqlite_readonly(url: URL) -> URL:
    database = url.database or ""
    if not database or database == ":memory:":
        raise StoreError("a read-only state database needs a file, not an in-memory database")
    path = Path(database)
    if not path.exists():
        raise StoreError(f"state database {path} does not exist")
    return url.set(database=f"file:{quote(str(path.resolve()))}", query={"mode": "ro", "uri": "true"})


def _on_sqlite_connect(readonly: bool) -> Any:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    return configure


def _make_engine(url: str, readonly: bool) -> Engine:
    parsed = _parse(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise StoreError(
            f"unsupported state database {redact_url(url)}: gitward stores its state in "
            "SQLite (a path or sqlite:///PATH) or PostgreSQL (postgresql+psycopg://...)"
        )
    if parsed.get_backend_name() == "sqlite":
        if readonly:
            parsed = _sqlite_readonly(parsed)
        elif parsed.database and parsed.database != ":memory:":
            parent = Path(parsed.database).parent
            if not parent.is_dir() and not _own_directory(parent):
                raise StoreError(
                    f"cannot create state database {parsed.database}: {parent} is not a directory"
                )
    elif parsed.get_backend_name() == "postgresql" and readonly:
        connect_args["options"] = "-c default_transaction_read_only=on"
    try:
        engine = create_engine(parsed, connect_args=connect_args)
    except (NoSuchModuleError, ImportError, ArgumentError) as err:
        raise StoreError(f"cannot open state database {redact_url(url)}: {err}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect(readonly))
    return engine


def database_error(url: str, doing: str, err: SQLAlchemyError) -> StoreError:
    """A StoreError naming the (redacted) database and the driver's own first line, not SQLAlchemy's."""
    orig = getattr(err, "orig", None)
    lines = str(orig if orig is not None else err).strip().splitlines() or [type(err).__name__]
    return StoreError(f"cannot {doing} state database {redact_url(url)}: {lines[0]}")


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _newer_error(url: str, current: str, head: str) -> StoreError:
    return StoreError(
        f"state database {redact_url(url)} is at schema revision {current}, newer than this "
        f"gitward (head {head}); upgrade gitward"
    )


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
        if _current(connection) == head_revision():
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


def open_store(url: str, *, upgrade: bool = True, readonly: bool = False) -> Store:
    """Open the state database at `url`, upgrading an older schema (creating a new SQLite file).

    A database whose revision this gitward does not know (written by a newer one) is refused.
    With `upgrade=False`, or `readonly`, an older schema is left as it is.
    """
    engine = _make_engine(url, readonly)
    try:
        with engine.connect() as connection:
            current = _current(connection)
        head = head_revision()
        if current is not None and current != head and not _is_known(current):
            raise _newer_error(url, current, head)
        if current != head and upgrade and not readonly:
            _upgrade(engine)
    except SQLAlchemyError as err:
        engine.dispose()
        raise database_error(url, "open", err) from err
    except BaseException:
        engine.dispose()
        raise
    return Store(engine=engine, sessions=sessionmaker(engine), url=url, readonly=readonly)


def has_schema(store: Store) -> bool:
    """Whether gitward has ever written the store: a 0-byte SQLite file or an empty PostgreSQL
    database is a store with nothing recorded yet (a writer creates the schema on opening)."""
    try:
        with store.engine.connect() as connection:
            return inspect(connection).has_table(ALEMBIC_VERSION_TABLE)
    except SQLAlchemyError as err:
        raise database_error(store.url, "read", err) from err


def schema_status(url: str) -> SchemaStatus:
    """The database's schema revision against head; a missing SQLite file is reported as empty."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(str(parsed.database)).exists():
            return SchemaStatus(redact_url(url), None, head_revision())
    engine = _make_engine(url, readonly=parsed.get_backend_name() == "sqlite")
    try:
        with engine.connect() as connection:
            current = _current(connection)
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
    dialect = _parse(url).get_backend_name()
    buffer = io.StringIO()
    cfg = alembic_config()
    cfg.output_buffer = buffer
    cfg.attributes["dialect_name"] = dialect
    try:
        command.upgrade(cfg, "head", sql=True)
    except (CommandError, NoSuchModuleError) as err:
        raise StoreError(f"cannot write upgrade SQL for {dialect}: {err}") from None
    return buffer.getvalue()
