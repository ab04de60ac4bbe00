"""Read-only SQL against the store, for `gitward sql`: audits without a write path.

SQLite is opened with `mode=ro` and PostgreSQL with read-only transactions (engine/store/db.py),
so a statement that would write fails in the database itself, whatever its spelling.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from engine.errors import UserError
from engine.store.db import Store

_WRITE_HINTS = ("readonly database", "read-only transaction", "read only", "readonly")


class QueryError(UserError):
    """A statement the database refused (exit 2), with the database's own reason."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]


def run_query(store: Store, statement: str) -> QueryResult:
    """Run one statement on a read-only store and return every row."""
    try:
        with store.engine.connect() as connection:
            result = connection.execute(text(statement))
            if not result.returns_rows:
                raise QueryError("the statement returned no rows (gitward sql only reads)")
            columns = tuple(result.keys())
            rows = tuple(tuple(row) for row in result)
    except SQLAlchemyError as err:
        orig = getattr(err, "orig", None)
        reason = str(orig if orig is not None else err).strip().splitlines()[0]
        if any(hint in reason.lower() for hint in _WRITE_HINTS):
            raise QueryError(f"gitward sql is read-only: {reason}") from None
        raise QueryError(f"query failed: {reason}") from None
    return QueryResult(columns, rows)
