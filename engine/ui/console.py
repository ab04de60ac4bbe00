"""The SQL page: `gitward sql` in a browser, with the audit views as ready-made queries.

The same screening, read-only guards and limits as the command (engine/store/sql.py); a page
shows at most SHOWN rows of a result. Every value is scrubbed of credentials, as every page is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.errors import StoreError
from engine.redact import scrub
from engine.store.db import Store
from engine.store.sql import QueryError, QueryLimits, run_query

SHOWN = 500
"""Rows drawn at most; the page says how many the query returned."""


@dataclass(frozen=True)
class Example:
    view: str
    about: str
    statement: str


EXAMPLES = (
    Example("v_policy_latest", "each policy's current selection",
            "SELECT policy, selected_tag, previous_tag, decided_at, scan_id\n"
            "FROM v_policy_latest\nORDER BY policy"),
    Example("v_image_updates", "when each image changed in git",
            "SELECT committed_at, path, line, old_value, new_value, decision_id\n"
            "FROM v_image_updates\nORDER BY committed_at DESC"),
    Example("v_object_history", "which revision applied or pruned each object",
            "SELECT at, kustomization, object, change, revision, status\n"
            "FROM v_object_history\nORDER BY at DESC"),
    Example("v_tag_lead_time", "from the registry to git to the cluster",
            "SELECT policy, tag, first_seen, committed_at, applied_at,\n"
            "       seconds_to_commit, seconds_to_apply\nFROM v_tag_lead_time\n"
            "ORDER BY committed_at DESC"),
)


@dataclass(frozen=True)
class ConsolePage:
    statement: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    returned: int = 0
    """Rows the query returned; only the first SHOWN are in `rows`."""
    error: str = ""
    examples: tuple[Example, ...] = EXAMPLES


def console_page(store: Store | None, statement: str) -> ConsolePage:
    """The result of one read-only `statement` (none run when it is blank), or why it was
    refused."""
    statement = statement.strip()
    if not statement:
        return ConsolePage(statement)
    if store is None:
        return ConsolePage(statement, error="no state store yet: nothing to query")
    try:
        result = run_query(store, statement, QueryLimits())
    except (QueryError, StoreError) as err:
        return ConsolePage(statement, error=scrub(str(err)))
    rows = tuple(tuple(_cell(v) for v in row) for row in result.rows[:SHOWN])
    return ConsolePage(statement, result.columns, rows, len(result.rows))


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return scrub(str(value))
