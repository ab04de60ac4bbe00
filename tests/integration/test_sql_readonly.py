"""`gitward sql` cannot write, on SQLite or PostgreSQL, however the write is spelled, and a
query that would run forever or return too much is stopped with a clear error."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import inspect, text

from engine.cli import main
from engine.model import ListedTag
from engine.store import queries
from engine.store.db import open_store
from engine.store.sql import QueryError, QueryLimits, execute
from engine.store.statements import Query
from tests.conftest import ROOT
from tests.integration.conftest import PgServer

WRITES = [
    "DELETE FROM image_tags",
    "DELETE FROM image_tags;",
    "delete from image_tags -- lower case, a comment after",
    "INSERT INTO suspensions (object_kind, object_name, reason, suspended_at) "
    "VALUES ('Kustomization', 'x/y', 'r', '2024-01-01')",
    "UPDATE suspensions SET reason = 'changed'",
    "REPLACE INTO suspensions (object_kind, object_name, reason, suspended_at) "
    "VALUES ('Kustomization', 'x/y', 'r', '2024-01-01')",
    "CREATE TABLE planted (a integer)",
    "CREATE TEMP TABLE planted (a integer)",
    "CREATE VIEW planted AS SELECT 1",
    "CREATE INDEX planted ON image_tags (tag)",
    "DROP TABLE events",
    "DROP VIEW IF EXISTS image_tags_latest",
    "ALTER TABLE events ADD COLUMN planted integer",
    "TRUNCATE image_tags",
    "ATTACH DATABASE '{out}/new.db' AS n",
    "DETACH DATABASE main",
    "VACUUM",
    "VACUUM INTO '{out}/copy.db'",
    "PRAGMA user_version = 7",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA writable_schema = ON",
    "SELECT * FROM pragma_table_info('events')",
    "REINDEX",
    "ANALYZE",
    "BEGIN",
    "COMMIT",
    "SET default_transaction_read_only = off",
    "SET TRANSACTION READ WRITE; DELETE FROM image_tags; COMMIT; SELECT 1",
    "SELECT 1; DELETE FROM image_tags",
    "SELECT 1 -- a comment\n; DELETE FROM image_tags",
    "SELECT 1 /* a comment */; DROP TABLE events",
    "SELECT ';'; DELETE FROM image_tags",
    "SELECT $$;$$; DELETE FROM image_tags",
    "SELECT \"a;\" FROM (SELECT 1 AS \"a;\") AS q; DELETE FROM image_tags",
    "WITH gone AS (DELETE FROM image_tags RETURNING id) SELECT count(*) FROM gone",
    "WITH x AS (SELECT 1) DELETE FROM image_tags",
    "WITH RECURSIVE r(n) AS (SELECT 1) INSERT INTO events (time) SELECT '2024-01-01' FROM r",
    "EXPLAIN ANALYZE DELETE FROM image_tags",
    "EXPLAIN (ANALYZE) DELETE FROM image_tags",
    "EXPLAIN DELETE FROM image_tags",
    "SELECT * INTO planted FROM image_tags",
    "SELECT * FROM image_tags FOR UPDATE",
    "COPY (SELECT 'x') TO '{out}/copied.txt'",
    "COPY image_tags FROM '/etc/hostname'",
    "DO $$ BEGIN DELETE FROM image_tags; END $$",
    "CALL planted()",
    "PREPARE p AS DELETE FROM image_tags",
    "MERGE INTO suspensions USING (SELECT 1) AS s ON true WHEN MATCHED THEN DELETE",
    "GRANT ALL ON image_tags TO PUBLIC",
    "NOTIFY planted",
    "SELECT pg_notify('planted', 'x')",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT set_config('transaction_read_only', 'off', true)",
    "SELECT lo_import('/etc/hostname')",
    "SELECT lo_export(lo_from_bytea(0, 'x'), '{out}/lo.txt')",
    "SELECT pg_read_file('/etc/hostname')",
    "SELECT \"pg_catalog\".\"pg_read_file\"('/etc/hostname')",
    "SELECT pg_catalog.pg_ls_dir /* a comment */ ('.')",
    "SELECT nextval('image_tags_id_seq')",
    "SELECT query_to_xml('DELETE FROM image_tags RETURNING id', true, true, '')",
    "SELECT pg_terminate_backend(pg_backend_pid())",
    "SELECT load_extension('/tmp/planted')",
    "",
    "/* only a comment */ -- and another",
]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _seed(url: str) -> None:
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    with open_store(url) as store:
        queries.record_image_scan(store, "apps/app", [ListedTag(t) for t in ("1.0.0", "1.1.0", "2.0.0")],
                                  started_at=start, finished_at=start + timedelta(seconds=1))
        queries.suspend(store, "Kustomization", "flux-system/apps", reason="maintenance")


def _snapshot(url: str, folder: Path) -> dict[str, object]:
    """Every table's and view's row count, PostgreSQL's large objects, and every file's hash."""
    with open_store(url, readonly=True) as store, store.engine.connect() as connection:
        names = inspect(connection).get_table_names() + inspect(connection).get_view_names()
        state: dict[str, object] = {
            name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            for name in names
        }
        if store.dialect == "postgresql":
            state["large objects"] = connection.execute(
                text("SELECT count(*) FROM pg_largeobject_metadata")).scalar_one()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.endswith("-shm"):
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A directory anyone may write to (the PostgreSQL server too), where nothing may appear."""
    folder = tmp_path / "out"
    folder.mkdir()
    folder.chmod(0o777)
    return folder


def test_no_write_form_changes_anything(url: str, tmp_path: Path, out: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _seed(url)
    before = _snapshot(url, tmp_path)
    assert before["image_tags"] == 3 and before["suspensions"] == 1
    failures = []
    for template in WRITES:
        statement = template.replace("{out}", str(out))
        code, stdout, err = run(capsys, "--state", url, "sql", statement)
        clear = err.startswith("gitward: ") and "Traceback" not in err and "internal error" not in err
        if code != 2 or not clear or stdout:
            failures.append(f"{statement!r}: exit {code}, stdout {stdout!r}, stderr {err!r}")
    assert failures == [], "\n".join(failures)
    assert _snapshot(url, tmp_path) == before
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("statement", [
    "DELETE FROM image_tags",
    "SET TRANSACTION READ WRITE; DELETE FROM image_tags; COMMIT; SELECT 1",
    "VACUUM INTO 'copy.db'",
    "WITH gone AS (DELETE FROM image_tags RETURNING id) SELECT count(*) FROM gone",
])
def test_refusals_say_read_only_or_one_statement(statement: str, url: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _seed(url)
    code, _, err = run(capsys, "--state", url, "sql", statement)
    assert code == 2
    assert "gitward sql is read-only" in err or "one statement per call" in err


def test_the_refusal_names_the_second_statement(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(url)
    code, _, err = run(capsys, "--state", url, "sql", "SELECT 1 -- fine\n;  DELETE FROM image_tags")
    assert code == 2 and "a second one starts at line 2, column 4" in err


def test_sqlite_names_what_its_authorizer_denied(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A pragma's table function passes the screening as a SELECT; the authorizer denies it
    and the message says what it denied."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _seed(url)
    code, _, err = run(capsys, "--state", url, "sql", "SELECT * FROM pragma_table_info('events')")
    assert code == 2 and "gitward sql is read-only: UPDATE sqlite_master" in err


@pytest.mark.parametrize("statement", [
    "DELETE FROM image_tags",
    "WITH gone AS (DELETE FROM image_tags RETURNING id) SELECT count(*) FROM gone",
    "SET TRANSACTION READ WRITE",
    "SELECT 1; DELETE FROM image_tags",
    "SELECT set_config('transaction_read_only', 'off', true)",
    "SELECT nextval('image_tags_id_seq')",
    "ATTACH DATABASE 'attached.db' AS n",
])
def test_the_database_guards_hold_without_the_screening(statement: str, url: str,
                                                        tmp_path: Path) -> None:
    """Each statement reaches the database unscreened (as an EXPLAIN would, by the client
    cursor), and the database itself refuses it."""
    _seed(url)
    with open_store(url, readonly=True) as store:
        with pytest.raises(QueryError):
            execute(store, Query(statement, explain=True), QueryLimits())
    with open_store(url, readonly=True) as store, store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM image_tags")).scalar_one() == 3
    assert not (tmp_path / "attached.db").exists() and not Path("attached.db").exists()


QUERIES = [
    ("SELECT tag FROM image_tags ORDER BY tag", [["1.0.0"], ["1.1.0"], ["2.0.0"]]),
    ("select count(*) AS n from image_tags;  -- a comment after", [[3]]),
    ("WITH t AS (SELECT tag FROM image_tags) SELECT count(*) AS n FROM t", [[3]]),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 4) "
     "SELECT sum(n) AS n FROM r", [[10]]),
    ("VALUES (1, 'a:b', '50%')", [[1, "a:b", "50%"]]),
    ("SELECT 'update; delete' AS q", [["update; delete"]]),
    ("SELECT object_name /* ; DROP TABLE events */ FROM suspensions",
     [["flux-system/apps"]]),
]


@pytest.mark.parametrize(("statement", "rows"), QUERIES)
def test_plain_queries_run(statement: str, rows: list[list[object]], url: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    _seed(url)
    code, out, err = run(capsys, "--state", url, "sql", statement, "-o", "csv")
    assert code == 0, err
    assert [line.split(",") for line in out.splitlines()[1:]] == [[str(v) for v in row] for row in rows]


def test_explain_runs(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(url)
    explain = "EXPLAIN QUERY PLAN" if url.startswith("sqlite") else "EXPLAIN"
    code, out, err = run(capsys, "--state", url, "sql", f"{explain} SELECT * FROM image_tags")
    assert code == 0 and "image_tags" in out, err


@pytest.mark.parametrize(("statement", "refused_on"), [
    ("SELECT 1 /* /* nested */ ; DELETE FROM image_tags */", "sqlite"),
    ("SELECT E'\\'; DELETE FROM image_tags; SELECT '", "sqlite"),
    ("SELECT 1 AS [a;b]", "postgresql"),
])
def test_statements_split_as_each_database_splits_them(statement: str, refused_on: str, url: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """PostgreSQL nests comments and escapes quotes in E'' strings; SQLite does neither but
    quotes names in brackets: what is one harmless query on one is two statements on the other."""
    _seed(url)
    code, _, err = run(capsys, "--state", url, "sql", statement)
    if url.startswith(refused_on):
        assert code == 2 and "one statement per call" in err
    else:
        assert code == 0, err
    with open_store(url, readonly=True) as store, store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM image_tags")).scalar_one() == 3


def test_an_endless_recursion_stops_at_the_row_limit(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(url)
    code, _, err = run(capsys, "--state", url, "sql", "--max-rows", "1000",
                       "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r")
    assert code == 2
    assert "too large (more than 1,000 rows)" in err and "narrow the query" in err and "--max-rows" in err


def test_an_endless_aggregate_stops_at_the_timeout(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(url)
    code, _, err = run(capsys, "--state", url, "sql", "--timeout", "0.5",
                       "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
                       "SELECT count(*) FROM r")
    assert code == 2 and "ran past its 0.5 s timeout" in err and "--timeout" in err


def test_a_huge_value_stops_at_the_byte_limit(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(url)
    huge = ("SELECT randomblob(1000000000)" if url.startswith("sqlite")
            else "SELECT repeat('x', 2000000)")
    code, _, err = run(capsys, "--state", url, "sql", "--max-bytes", "1000000", huge)
    assert code == 2 and "too large" in err and "--max-bytes" in err


def test_many_rows_stop_at_the_byte_limit(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(url)
    code, _, err = run(capsys, "--state", url, "sql", "--max-bytes", "100000",
                       "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 50000) "
                       "SELECT n, 'padding padding' AS p FROM r")
    assert code == 2 and "too large (more than 100,000 bytes)" in err


def test_sqlite_randomblob_of_a_gigabyte_is_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The default byte limit caps any one value in SQLite itself: no gigabyte is allocated."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _seed(url)
    code, _, err = run(capsys, "--state", url, "sql", "SELECT randomblob(1000000000)")
    assert code == 2 and "too large (a value over 64 MiB)" in err


def _role_sql(database: str, role: str, password: str) -> list[str]:
    """The read-only role's statements from docs/sql.md, for a test database and role name."""
    doc = (ROOT / "docs" / "sql.md").read_text()
    block = doc.split("<!-- read-only role -->", 1)[1].split("```sql role\n", 1)[1].split("```", 1)[0]
    block = re.sub(r"--[^\n]*", "", block)
    block = block.replace("gitward_reader", role).replace("CHANGE-ME", password)
    block = block.replace("DATABASE gitward ", f"DATABASE {database} ")
    return [part.strip() for part in block.split(";") if part.strip()]


def test_the_documented_read_only_role_can_only_read(pg_server: PgServer, pg_url: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _seed(pg_url)
    database = pg_url.rsplit("/", 1)[1]
    role, password = "reader_" + secrets.token_hex(4), secrets.token_hex(8)
    statements = _role_sql(database, role, password)
    assert any(s.startswith("GRANT SELECT ON ALL TABLES") for s in statements)
    owner = psycopg.connect(pg_url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
    try:
        for statement in statements:
            owner.execute(statement)
        reader_url = pg_url.replace(pg_url.split("//", 1)[1].split("@", 1)[0], f"{role}:{password}")
        code, out, err = run(capsys, "--state", reader_url, "sql",
                             "SELECT count(*) AS n FROM image_tags", "-o", "csv")
        assert code == 0 and out.splitlines()[1] == "3", err
        with psycopg.connect(reader_url.replace("postgresql+psycopg", "postgresql"),
                             autocommit=True) as reader:
            for write in ("DELETE FROM image_tags", "CREATE TABLE planted (a integer)", "SELECT pg_read_file('/etc/hostname')",
                          "SELECT lo_import('/etc/hostname')"):
                with pytest.raises(psycopg.Error):
                    reader.execute(write)
            reader.execute("SET default_transaction_read_only = off")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute("DELETE FROM image_tags")
    finally:
        owner.execute(f"DROP OWNED BY {role}")
        owner.execute(f"DROP ROLE {role}")
        owner.close()
    with open_store(pg_url, readonly=True) as store, store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM image_tags")).scalar_one() == 3
