"""Screening a `gitward sql` statement before it reaches the database: one plain query.

The database is the real guard (a SQLite authorizer on a read-only file, a PostgreSQL
transaction that cannot be made writable: engine/store/sql.py). This refuses first, with a
message that says why, what never belongs in an audit: a second statement (after a comment, a
string or a dollar quote), anything but SELECT, WITH ... SELECT, VALUES or EXPLAIN of one, and
PostgreSQL functions that reach outside the query (server files, large objects, other sessions,
settings, sequences, SQL run from a string), which a superuser could otherwise call from a SELECT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from engine.errors import UserError


class QueryError(UserError):
    """A statement `gitward sql` refuses or the database failed (exit 2), with the reason."""


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class Kind(StrEnum):
    WORD = "word"  # a bare keyword or identifier, lower-cased
    QUOTED = "quoted"  # a quoted identifier, as written inside its quotes
    STRING = "string"
    NUMBER = "number"
    PUNCT = "punct"


@dataclass(frozen=True)
class Token:
    kind: Kind
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class Query:
    """One screened statement: its text without the trailing `;` or comments."""

    text: str
    explain: bool


QUERY_VERBS = frozenset({"select", "values"})
_MAIN_STATEMENTS = QUERY_VERBS | {"insert", "update", "delete", "merge", "replace", "table"}
_EXPLAIN_OPTIONS = frozenset({"analyze", "analyse", "verbose", "query", "plan"})

_PG_OUTSIDE_FUNCTIONS = re.compile(
    r"(lo_|lo(read|write|open|close|creat|import|export)$|pg_read_|pg_ls_|pg_file_|pg_stat_file"
    r"|pg_stat_reset|dblink|pg_terminate_|pg_cancel_|pg_reload_|pg_rotate_|pg_switch_|pg_create_"
    r"|pg_drop_|pg_replication_|pg_logical_|pg_promote|pg_advisory_|pg_try_advisory_|pg_import_"
    r"|pg_log_backend|pg_backup_|pg_wal_replay_|pg_notify|set_config$|nextval$|setval$"
    r"|txid_current|pg_current_xact_id|query_to_xml)",
)
"""PostgreSQL functions a SELECT may call that reach beyond reading the store (by name prefix)."""

_WORD_START = re.compile(r"[A-Za-z_\u0080-\uffff]")
_WORD_REST = re.compile(r"[A-Za-z0-9_$\u0080-\uffff]*")
_NUMBER = re.compile(r"\.?[0-9][A-Za-z0-9_.]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$")


def screen(statement: str, dialect: Dialect) -> Query:
    """The one plain query in `statement`, or a QueryError saying why it is not one."""
    tokens = tokenize(statement, dialect)
    statements = _split(tokens)
    if not statements:
        raise QueryError("no statement: gitward sql needs one query (SELECT ...)")
    if len(statements) > 1:
        line, column = _position(statement, statements[1][0].start)
        raise QueryError(
            f"gitward sql runs one statement per call; a second one starts at line {line}, "
            f"column {column}: run each query on its own"
        )
    body = statements[0]
    explain = body[0].kind is Kind.WORD and body[0].value == "explain"
    _require_query(body[1:] if explain else body)
    if dialect is Dialect.POSTGRESQL:
        _refuse_outside_functions(body, statement)
    return Query(statement[body[0].start:body[-1].end], explain)


def tokenize(sql: str, dialect: Dialect) -> list[Token]:
    """The tokens of `sql` as the dialect's own lexer splits them; comments and space dropped.

    An unterminated string, quote or comment runs to the end (the database reports it).
    """
    pg = dialect is Dialect.POSTGRESQL
    tokens: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char.isspace():
            i += 1
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = n if newline < 0 else newline + 1
        elif sql.startswith("/*", i):
            i = _comment_end(sql, i, nested=pg)
        elif char == "'":
            end = _quote_end(sql, i + 1, "'", backslash=False)
            tokens.append(Token(Kind.STRING, sql[i:end], i, end))
            i = end
        elif char == '"' or (not pg and char in "`["):
            close = {"\"": "\"", "`": "`", "[": "]"}[char]
            end = _quote_end(sql, i + 1, close, backslash=False)
            tokens.append(Token(Kind.QUOTED, sql[i + 1:end - 1].replace(close * 2, close), i, end))
            i = end
        elif pg and char == "$" and (tag := _DOLLAR_TAG.match(sql, i)):
            closing = sql.find(tag.group(0), tag.end())
            end = n if closing < 0 else closing + len(tag.group(0))
            tokens.append(Token(Kind.STRING, sql[i:end], i, end))
            i = end
        elif _WORD_START.match(char):
            rest = _WORD_REST.match(sql, i + 1)
            end = rest.end() if rest else i + 1
            if pg and end == i + 1 and char in "eE" and sql.startswith("'", end):
                end = _quote_end(sql, end + 1, "'", backslash=True)
                tokens.append(Token(Kind.STRING, sql[i:end], i, end))
            else:
                tokens.append(Token(Kind.WORD, sql[i:end].lower(), i, end))
            i = end
        elif number := _NUMBER.match(sql, i):
            tokens.append(Token(Kind.NUMBER, number.group(0), i, number.end()))
            i = number.end()
        else:
            tokens.append(Token(Kind.PUNCT, char, i, i + 1))
            i += 1
    return tokens


def _comment_end(sql: str, start: int, nested: bool) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i) and (nested or depth == 0):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def _quote_end(sql: str, i: int, close: str, backslash: bool) -> int:
    """The index just past the closing quote; a doubled quote (or, with `backslash`, an escaped
    one) stays inside."""
    while i < len(sql):
        if backslash and sql[i] == "\\":
            i += 2
        elif sql.startswith(close, i):
            if close != "]" and sql.startswith(close, i + 1):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(sql)


def _split(tokens: list[Token]) -> list[list[Token]]:
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.kind is Kind.PUNCT and token.value == ";":
            statements.append([])
        else:
            statements[-1].append(token)
    return [statement for statement in statements if statement]


def _require_query(tokens: list[Token]) -> None:
    words = _after_explain(tokens)
    first = next((t for t in words if not (t.kind is Kind.PUNCT and t.value == "(")), None)
    verb = first.value if first is not None and first.kind is Kind.WORD else ""
    if verb == "with":  # the clause leads to a statement; with none, the database says so
        verb = _main_after_with(words) or "select"
    if verb not in QUERY_VERBS:
        shown = verb.upper() if verb else (first.value if first else "nothing")
        raise QueryError(
            f"gitward sql is read-only: it runs one query (SELECT, WITH ... SELECT, VALUES, or "
            f"EXPLAIN of one), not {shown}"
        )


def _after_explain(tokens: list[Token]) -> list[Token]:
    """`tokens` past EXPLAIN's options: `QUERY PLAN`, `ANALYZE`, `VERBOSE`, `(ANALYZE, ...)`."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind is Kind.WORD and token.value in _EXPLAIN_OPTIONS:
            i += 1
        elif token.kind is Kind.PUNCT and token.value == "(" and _is_option_list(tokens, i):
            i = _closing(tokens, i) + 1
        else:
            break
    return tokens[i:]


def _is_option_list(tokens: list[Token], i: int) -> bool:
    return i + 1 < len(tokens) and tokens[i + 1].kind is Kind.WORD \
        and tokens[i + 1].value not in _MAIN_STATEMENTS


def _closing(tokens: list[Token], opening: int) -> int:
    depth = 0
    for i in range(opening, len(tokens)):
        if tokens[i].kind is Kind.PUNCT and tokens[i].value in "()":
            depth += 1 if tokens[i].value == "(" else -1
            if depth == 0:
                return i
    return len(tokens) - 1


def _main_after_with(tokens: list[Token]) -> str:
    """The verb of the statement a WITH clause leads to (the first main-statement keyword at the
    top level after a common table expression's closing parenthesis), or of a CTE's body that
    is not a query (PostgreSQL's `WITH gone AS (DELETE ... RETURNING ...)`)."""
    depth, closed = 0, False
    for previous, token, following in zip(tokens, tokens[1:], tokens[2:]):
        if token.kind is Kind.PUNCT and token.value == "(":
            if depth == 0 and previous.value in ("as", "materialized") \
                    and following.kind is Kind.WORD and following.value not in QUERY_VERBS | {"with"}:
                return following.value
            depth += 1
        elif token.kind is Kind.PUNCT and token.value == ")":
            depth -= 1
            closed = closed or depth == 0
        elif depth == 0 and closed and token.kind is Kind.WORD and token.value in _MAIN_STATEMENTS:
            return token.value
    return ""


def _refuse_outside_functions(tokens: list[Token], sql: str) -> None:
    for token, following in zip(tokens, tokens[1:]):
        if token.kind not in (Kind.WORD, Kind.QUOTED):
            continue
        if following.kind is Kind.PUNCT and following.value == "(" \
                and _PG_OUTSIDE_FUNCTIONS.match(token.value.lower()):
            line, column = _position(sql, token.start)
            raise QueryError(
                f"gitward sql is read-only: it does not call {token.value}() (line {line}, "
                f"column {column}), which reaches beyond reading the store (server files, large "
                "objects, sessions, settings or sequences)"
            )


def _position(sql: str, offset: int) -> tuple[int, int]:
    line = sql.count("\n", 0, offset) + 1
    return line, offset - (sql.rfind("\n", 0, offset) + 1) + 1
