"""Read-only, bounded SQL against the store, for `gitward sql`: audits without a write path.

Each guard would hold on its own; together a write needs all of them to fail:
- the statement is screened first (engine/store/statements.py): one plain query per call;
- SQLite: the file is opened `mode=ro` (engine/store/db.py) and an authorizer allows reads
  and functions only, so every write, pragma (even the `pragma_*` table functions), ATTACH and
  VACUUM INTO (an ATTACH underneath) is denied when the statement is prepared, by name;
- PostgreSQL: the session defaults to read-only transactions, the query runs in an explicit
  READ ONLY transaction that has already taken its snapshot (so `SET TRANSACTION READ WRITE`
  is refused), it is sent by the extended protocol (which carries one statement only), and the
  transaction is rolled back; docs/sql.md adds a role that can only SELECT.
- Bounds: a deadline (a SQLite progress handler; PostgreSQL's statement_timeout) and a result
  limit in rows and bytes, read in batches (a PostgreSQL server-side cursor) so a large result
  is stopped before it is held; SQLite also caps any one value at the byte limit.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from engine.errors import StoreError
from engine.store.db import Store
from engine.store.statements import Dialect, Query, QueryError, screen

__all__ = ["QueryError", "QueryLimits", "QueryResult", "execute", "run_query"]

_BATCH = 200
_SQLITE_PROGRESS_STEPS = 10_000
_CURSOR_NAME = "gitward_sql"

_SQLITE_ALLOWED = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})
_SQLITE_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile"})
_SQLITE_ACTIONS = {
    getattr(sqlite3, f"SQLITE_{name}"): name.replace("_", " ")
    for name in (
        "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_TABLE",
        "CREATE_TEMP_TRIGGER", "CREATE_TEMP_VIEW", "CREATE_TRIGGER", "CREATE_VIEW", "DELETE",
        "DROP_INDEX", "DROP_TABLE", "DROP_TEMP_INDEX", "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER",
        "DROP_TEMP_VIEW", "DROP_TRIGGER", "DROP_VIEW", "INSERT", "PRAGMA", "TRANSACTION",
        "UPDATE", "ATTACH", "DETACH", "ALTER_TABLE", "REINDEX", "ANALYZE", "CREATE_VTABLE",
        "DROP_VTABLE", "FUNCTION", "SAVEPOINT",
    )
}

_PG_READ_ONLY_STATES = frozenset({"25006", "0A000"})
_PG_CANCELED = "57014"


@dataclass(frozen=True)
class QueryLimits:
    """How long a query may run and how much it may return."""

    timeout: float = 30.0
    max_rows: int = 100_000
    max_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]


def run_query(store: Store, statement: str, limits: QueryLimits = QueryLimits()) -> QueryResult:
    """Run one plain query on a store opened read-only, within `limits`."""
    return execute(store, screen(statement, Dialect(store.dialect)), limits)


def execute(store: Store, query: Query, limits: QueryLimits) -> QueryResult:
    """Run a screened query under the database's own read-only guards and `limits`."""
    if not store.readonly:
        raise StoreError("gitward sql runs on a store opened read-only")
    raw = store.engine.raw_connection()
    driver: Any = raw.driver_connection
    try:
        if store.dialect == Dialect.SQLITE:
            return _run_sqlite(driver, query, limits)
        return _run_postgresql(driver, query, limits,
                               store.engine.dialect.loaded_dbapi.Error)
    finally:
        raw.close()


def _run_sqlite(connection: sqlite3.Connection, query: Query, limits: QueryLimits) -> QueryResult:
    denied: list[str] = []
    deadline = time.monotonic() + limits.timeout
    connection.set_authorizer(_sqlite_authorizer(denied))
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS)
    length = connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(1, min(limits.max_bytes, 2**31 - 1)))
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(query.text)
            return _collect(cursor, limits, deadline)
        finally:
            cursor.close()
    except sqlite3.Error as err:
        raise _sqlite_error(err, denied, limits) from None
    finally:
        connection.set_authorizer(None)
        connection.set_progress_handler(None, 0)
        connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, length)


def _sqlite_authorizer(denied: list[str]) -> Callable[[int, str | None, str | None, str | None,
                                                       str | None], int]:
    """Allow reading only (deny by default); remember what was denied, for the message."""

    def authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None,
                  _trigger: str | None) -> int:
        if action in _SQLITE_ALLOWED:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in _SQLITE_DENIED_FUNCTIONS:
            return sqlite3.SQLITE_OK
        what = _SQLITE_ACTIONS.get(action, f"action {action}")
        detail = " ".join(part for part in (arg1, arg2) if part and action != sqlite3.SQLITE_READ)
        denied.append(f"{what} {detail}".strip())
        return sqlite3.SQLITE_DENY

    return authorize


def _sqlite_error(err: sqlite3.Error, denied: list[str], limits: QueryLimits) -> QueryError:
    reason = _first_line(err)
    if denied:
        return QueryError(f"gitward sql is read-only: {denied[0]} is not allowed")
    if reason == "interrupted":
        return _timed_out(limits)
    if "too big" in reason:
        return _too_large(f"a value over {_amount(limits.max_bytes)}", "--max-bytes")
    if "readonly" in reason or "read-only" in reason:
        return QueryError(f"gitward sql is read-only: {reason}")
    return QueryError(f"query failed: {reason}")


def _run_postgresql(connection: Any, query: Query, limits: QueryLimits,
                    errors: type[Exception]) -> QueryResult:
    deadline = time.monotonic() + limits.timeout
    connection.autocommit = True  # the transaction below is begun and ended here, explicitly
    try:
        with connection.cursor() as setup:
            setup.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            setup.execute("BEGIN TRANSACTION READ ONLY")
            setup.execute(f"SET LOCAL statement_timeout = {max(1, round(limits.timeout * 1000))}")
            setup.execute("SELECT 1")  # the snapshot: the transaction can no longer be made writable
        if query.explain:  # EXPLAIN cannot be a cursor's query; its output is one plan
            with connection.cursor() as cursor:
                cursor.execute(query.text, prepare=True)
                return _collect(cursor, limits, deadline)
        with connection.cursor(name=_CURSOR_NAME) as cursor:
            cursor.execute(query.text)
            return _collect(cursor, limits, deadline)
    except errors as err:
        raise _postgresql_error(err, limits) from None
    finally:
        connection.rollback()
        connection.autocommit = False


def _postgresql_error(err: Exception, limits: QueryLimits) -> QueryError:
    state = getattr(err, "sqlstate", None)
    reason = _first_line(err)
    if state == _PG_CANCELED:
        return _timed_out(limits)
    if state in _PG_READ_ONLY_STATES or "read-only transaction" in reason:
        return QueryError(f"gitward sql is read-only: {reason}")
    return QueryError(f"query failed: {reason}")


def _collect(cursor: Any, limits: QueryLimits, deadline: float) -> QueryResult:
    """Every row, read in batches, stopped as soon as a limit is passed."""
    if cursor.description is None:
        raise QueryError("the statement returned no rows (gitward sql only reads)")
    columns = tuple(str(column[0]) for column in cursor.description)
    rows: list[tuple[object, ...]] = []
    size = 0
    while batch := cursor.fetchmany(_BATCH):
        for row in batch:
            rows.append(tuple(row))
            size += sum(_size(value) for value in row)
            if len(rows) > limits.max_rows:
                raise _too_large(f"more than {limits.max_rows:,} rows", "--max-rows")
            if size > limits.max_bytes:
                raise _too_large(f"more than {_amount(limits.max_bytes)}", "--max-bytes")
        if time.monotonic() > deadline:
            raise _timed_out(limits)
    return QueryResult(columns, tuple(rows))


def _size(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    return len(str(value))


def _too_large(what: str, option: str) -> QueryError:
    return QueryError(
        f"the result is too large ({what}) and was stopped: narrow the query (a WHERE clause, "
        f"fewer or shorter columns, LIMIT, or an aggregate such as count(*)), or raise {option}"
    )


def _timed_out(limits: QueryLimits) -> QueryError:
    return QueryError(
        f"the query ran past its {limits.timeout:g} s timeout and was stopped: narrow it "
        "(a WHERE clause on an indexed column, LIMIT, fewer joins) or raise --timeout"
    )


def _amount(size: int) -> str:
    return f"{size / 1024 / 1024:g} MiB" if size >= 1024 * 1024 else f"{size:,} bytes"


def _first_line(err: BaseException) -> str:
    lines: Sequence[str] = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__
