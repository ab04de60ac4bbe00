"""Screening `gitward sql` statements: one plain query, split as each database splits it."""

from __future__ import annotations

import pytest

from engine.store.statements import Dialect, QueryError, screen

SQLITE, PG = Dialect.SQLITE, Dialect.POSTGRESQL


@pytest.mark.parametrize(("statement", "dialect", "text", "explain"), [
    ("SELECT 1", SQLITE, "SELECT 1", False),
    ("  select 1 ;  -- done", PG, "select 1", False),
    ("WITH t AS (SELECT 1) SELECT * FROM t;", SQLITE, "WITH t AS (SELECT 1) SELECT * FROM t", False),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r", PG,
     "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r", False),
    ("VALUES (1), (2)", PG, "VALUES (1), (2)", False),
    ("EXPLAIN QUERY PLAN SELECT 1", SQLITE, "EXPLAIN QUERY PLAN SELECT 1", True),
    ("EXPLAIN (ANALYZE, BUFFERS) SELECT 1", PG, "EXPLAIN (ANALYZE, BUFFERS) SELECT 1", True),
    ("SELECT ';' AS \"a;b\" /* ; */", PG, "SELECT ';' AS \"a;b\"", False),
    ("SELECT $tag$ ; DELETE $tag$", PG, "SELECT $tag$ ; DELETE $tag$", False),
    ("SELECT 1 AS [a;b], `c;d`", SQLITE, "SELECT 1 AS [a;b], `c;d`", False),
    ("SELECT 'it''s; fine'", SQLITE, "SELECT 'it''s; fine'", False),
    ("SELECT E'\\'; no'", PG, "SELECT E'\\'; no'", False),
    ("SELECT 1 /* /* nested */ ; */", PG, "SELECT 1", False),
    ("SELECT lo_thing FROM t", PG, "SELECT lo_thing FROM t", False),
    ("SELECT a$b FROM t", PG, "SELECT a$b FROM t", False),
])
def test_queries_pass(statement: str, dialect: Dialect, text: str, explain: bool) -> None:
    query = screen(statement, dialect)
    assert (query.text, query.explain) == (text, explain)


@pytest.mark.parametrize(("statement", "dialect", "message"), [
    ("", SQLITE, "no statement"),
    ("-- nothing", PG, "no statement"),
    ("SELECT 1; SELECT 2", SQLITE, "a second one starts at line 1, column 11"),
    ("SELECT 1 /* nested /* */ ; DELETE FROM t */", SQLITE, "one statement per call"),
    ("SELECT E'\\'; DELETE FROM t; SELECT '", SQLITE, "one statement per call"),
    ("SELECT 1 AS [a;b]", PG, "one statement per call"),
    ("SELECT 1 -- x\n; DELETE FROM t", PG, "a second one starts at line 2, column 3"),
    ("DELETE FROM t", SQLITE, "not DELETE"),
    ("PRAGMA user_version = 1", SQLITE, "not PRAGMA"),
    ("VACUUM INTO 'x.db'", SQLITE, "not VACUUM"),
    ("ATTACH 'x.db' AS x", SQLITE, "not ATTACH"),
    ("COPY (SELECT 1) TO '/tmp/x'", PG, "not COPY"),
    ("DO $$ BEGIN END $$", PG, "not DO"),
    ("SET TRANSACTION READ WRITE", PG, "not SET"),
    ("WITH x AS (SELECT 1) DELETE FROM t", SQLITE, "not DELETE"),
    ("WITH x AS (DELETE FROM t RETURNING id) SELECT * FROM x", PG, "not DELETE"),
    ("WITH x AS MATERIALIZED (UPDATE t SET a = 1 RETURNING a) SELECT 1", PG, "not UPDATE"),
    ("EXPLAIN ANALYZE DELETE FROM t", PG, "not DELETE"),
    ("EXPLAIN (ANALYZE) INSERT INTO t VALUES (1)", PG, "not INSERT"),
    ("SELECT pg_read_file('/etc/passwd')", PG, "does not call pg_read_file()"),
    ("SELECT pg_catalog.lo_export(1, '/tmp/x')", PG, "does not call lo_export()"),
    ("SELECT \"set_config\" ('a', 'b', false)", PG, "does not call set_config()"),
    ("SELECT x FROM t WHERE 1 = 1 AND nextval /* c */ ('s') > 0", PG, "line 1, column 33"),
])
def test_others_are_refused(statement: str, dialect: Dialect, message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        screen(statement, dialect)
