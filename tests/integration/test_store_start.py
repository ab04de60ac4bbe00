"""Starting on a new store: processes that upgrade an empty store together take turns (all of
them start), and an empty store (a 0-byte file, an empty database) is new to writers and
empty to readers."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import inspect

from engine.cli import main
from engine.store.db import head_revision, open_store
from engine.store.migrate import schema_status
from engine.store.schema import Base
from tests.integration.conftest import PgServer

ROUNDS = 10
STARTS = 3


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """ROUNDS URLs of empty stores on one dialect: absent SQLite files, or new databases."""
    if request.param == "sqlite":
        yield [f"sqlite:///{tmp_path / f'round{i}.db'}" for i in range(ROUNDS)]
        return
    server: PgServer = request.getfixturevalue("pg_server")
    names = [f"race_{secrets.token_hex(5)}" for _ in range(ROUNDS)]
    with server.admin() as admin:
        for name in names:
            admin.execute(f"CREATE DATABASE {name}")
    yield [server.url(name) for name in names]
    with server.admin() as admin:
        for name in names:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_concurrent_upgrades_of_an_empty_store_all_succeed(fresh_urls: list[str]) -> None:
    failures = []
    for url in fresh_urls:
        starts = [subprocess.Popen([sys.executable, "-m", "engine", "--state", url, "db", "upgrade"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for _ in range(STARTS)]
        for process in starts:
            out, err = process.communicate(timeout=300)
            if process.returncode != 0:
                failures.append(f"{url}: exit {process.returncode}: {err.strip()}")
            elif f"revision {head_revision()}" not in out:
                failures.append(f"{url}: {out.strip()}")
        assert schema_status(url).current == head_revision()
        with open_store(url, readonly=True) as store, store.engine.connect() as connection:
            assert set(Base.metadata.tables) <= set(inspect(connection).get_table_names())
    assert failures == [], "\n".join(failures)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A 0-byte SQLite file, or a PostgreSQL database nothing was ever written to."""
    if request.param == "sqlite":
        path = tmp_path / "state.db"
        path.touch()
        return str(path)
    value: str = request.getfixturevalue("pg_url")
    return value


def test_readers_of_an_empty_store_see_no_facts(empty_store: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--state", empty_store, "events")
    assert (code, out, err.strip()) == (0, "", "no events")
    code, _, err = run(capsys, "--state", empty_store, "sql", "SELECT * FROM suspensions")
    assert code == 2 and err.strip() == "gitward: no state store yet: nothing to query"
    assert schema_status(empty_store if "://" in empty_store else f"sqlite:///{empty_store}").current is None


def test_a_writer_makes_an_empty_store_new(empty_store: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--state", empty_store, "db", "upgrade")
    assert code == 0, err
    assert out.strip().endswith(f"upgraded from an empty database to revision {head_revision()}")
    code, out, err = run(capsys, "--state", empty_store, "sql", "SELECT count(*) AS n FROM suspensions",
                         "-o", "csv")
    assert (code, out) == (0, "n\n0\n"), err
