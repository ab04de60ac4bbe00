"""`gitward sql`: plain SQL audits that can never write, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from engine.cli import main
from engine.store import queries
from engine.store.db import open_store, state_url
from tests.conftest import ROOT


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def example_copy(tmp_path: Path) -> str:
    target = tmp_path / "state.db"
    shutil.copy(ROOT / "state.db.example", target)
    return str(target)


def test_select_in_every_format(example_copy: str, capsys: pytest.CaptureFixture[str]) -> None:
    query = ("SELECT repository, count(*) AS tags FROM image_tags GROUP BY repository "
             "ORDER BY repository")
    code, out, err = run(capsys, "--state", example_copy, "sql", query)
    assert code == 0 and "(2 rows)" in err
    assert out.splitlines()[1].split() == ["ledger/ledger", "11"]
    _, out, _ = run(capsys, "--state", example_copy, "sql", query, "-o", "json")
    assert json.loads(out) == [{"repository": "ledger/ledger", "tags": 11},
                               {"repository": "podinfo/podinfo", "tags": 8}]
    _, out, _ = run(capsys, "--state", example_copy, "sql", query, "-o", "csv")
    assert list(csv.reader(io.StringIO(out))) == [["repository", "tags"], ["ledger/ledger", "11"],
                                                  ["podinfo/podinfo", "8"]]


@pytest.mark.parametrize("statement", ["DELETE FROM image_tags", "DROP TABLE events",
                                       "UPDATE suspensions SET reason = 'x'",
                                       "INSERT INTO events (time) VALUES ('now')"])
def test_writes_are_refused(statement: str, example_copy: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = Path(example_copy).read_bytes()
    code, _, err = run(capsys, "--state", example_copy, "sql", statement)
    assert code == 2
    assert "gitward sql is read-only" in err and "Traceback" not in err
    assert Path(example_copy).read_bytes() == before


def test_bad_sql_names_the_cause(example_copy: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--state", example_copy, "sql", "SELECT nope FROM image_tags")
    assert code == 2 and "query failed: no such column: nope" in err


def test_postgresql_is_read_only_too(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(state_url(pg_url)) as store:
        queries.suspend(store, "Kustomization", "flux-system/apps", reason="maintenance")
    code, out, _ = run(capsys, "--state", pg_url, "sql",
                       "SELECT object_name, reason FROM suspensions", "-o", "json")
    assert code == 0 and json.loads(out) == [{"object_name": "flux-system/apps",
                                              "reason": "maintenance"}]
    code, _, err = run(capsys, "--state", pg_url, "sql", "DELETE FROM suspensions")
    assert code == 2 and "gitward sql is read-only" in err
    with open_store(state_url(pg_url)) as store:
        assert len(queries.list_suspensions(store)) == 1
