"""Opening the state database: URL resolution, connection pragmas, the schema revision.

Every command opens the store through `open_store`, which brings an older schema up to date
and refuses a newer one, so a user never has to think about migrations. A store at this
gitward's head revision, the usual case, is opened without importing Alembic (it costs more
than the rest of a command's start-up): the revision is read with one query and compared with
the newest migration's file name. Alembic (engine/store/migrate.py) is imported only to
migrate, or to learn whether a revision that is not head is one this gitward knows.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
VERSION_TABLE = "alembic_version"
"""Where Alembic records a database's schema revision (its default name, which env.py keeps)."""


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


def parse_url(url: str) -> URL:
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
                # In WAL mode NORMAL syncs at checkpoints, not at every commit: a killed
                # process loses no committed transaction and none is ever half applied; only
                # the machine losing power may undo the last few. A steady pass commits a few
                # times per object, and an fsync each was most of its time on a busy disk.
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    return configure


def make_engine(url: str, readonly: bool) -> Engine:
    """An engine on `url` with gitward's pragmas; nothing is connected yet."""
    parsed = parse_url(url)
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


def head_revision() -> str:
    """This gitward's newest schema revision, from the migrations' file names: each is
    `<revision>_<slug>.py` (Alembic's default template; revisions are numbered 0001, 0002...).
    tests/unit/test_store_schema.py holds Alembic's head and every file to this."""
    versions = MIGRATIONS_DIR / "versions"
    try:
        names = [p.name.partition("_")[0] for p in versions.iterdir() if p.suffix == ".py"]
    except OSError:
        raise StoreError(f"gitward's migrations are missing: expected them in {MIGRATIONS_DIR}") from None
    numbered = [n for n in names if n.isdigit()]
    if not numbered:
        raise StoreError(f"gitward's migrations in {MIGRATIONS_DIR} hold no revision")
    return max(numbered, key=int)


def current_revision(connection: Connection) -> str | None:
    """The database's schema revision; None for a database Alembic never wrote to."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    found = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(found) > 1:
        raise StoreError(f"the state database records several schema revisions ({', '.join(found)}); "
                         "gitward's migrations have one head")
    return found[0] if found else None


def open_store(url: str, *, upgrade: bool = True, readonly: bool = False) -> Store:
    """Open the state database at `url`, upgrading an older schema (creating a new SQLite file).

    A database whose revision this gitward does not know (written by a newer one) is refused.
    With `upgrade=False`, or `readonly`, an older schema is left as it is.
    """
    engine = make_engine(url, readonly)
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
        if current != head_revision():
            # Imported here, not above: Alembic is for a store that is not at head (the module
            # docstring says why), and engine/store/migrate.py imports this module.
            from engine.store.migrate import bring_to_head

            bring_to_head(engine, url, current, upgrade=upgrade and not readonly)
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
            return inspect(connection).has_table(VERSION_TABLE)
    except SQLAlchemyError as err:
        raise database_error(store.url, "read", err) from err
