"""The state store on real databases: SQLite files and a throw-away PostgreSQL server.

The PostgreSQL server is started by the fixture below (initdb + pg_ctl on a loopback port, run
as the `postgres` user when the tests run as root). Without the binaries the PostgreSQL cases
skip, except under CI=true where a missing server is a failure (tests/conftest.py's `require`).
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import make_url

from engine.cli.db import db as db_group
from engine.errors import StoreError
from engine.model import Decision, DecisionOutcome, Gate, GitRevision, ListedTag, ScanStatus, TagVerdict
from engine.store import decisions as policy_decisions, images, queries
from engine.store.db import Store, head_revision, open_store, state_url
from engine.store.migrate import alembic_config, schema_status, upgrade_sql
from engine.store.queries import Event, EventSeverity
from engine.store.schema import Base
from engine.store.traces import forget_decoded
from tests.conftest import require
from tests.integration.conftest import PG_PASSWORD
from tests.integration.kube_env import KubeBinaries, KubeEnvError
from tests.integration.registry_env import free_port as _free_port

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 11, 1, 8, 30, tzinfo=UTC)


class RowsWritten:
    """Counts rows changed by INSERT/UPDATE/DELETE on an engine, on either dialect."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        event.listen(store.engine, "after_cursor_execute", self._after)

    def _after(self, _conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.count += max(cursor.rowcount, 0)

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


def _scan(store: Store, tags: list[ListedTag] | list[str], at: datetime, error: str | None = None) -> Any:
    listed = [t if isinstance(t, ListedTag) else ListedTag(t) for t in tags]
    return queries.record_image_scan(
        store, "podinfo/podinfo", listed, started_at=at, finished_at=at + timedelta(seconds=2), error=error
    )


def _tags(store: Store, include_gone: bool = True) -> dict[str, Any]:
    return {t.tag: t for t in queries.tags(store, "podinfo/podinfo", include_gone=include_gone)}


# Schema and migrations ----------------------------------------------------------------------


def test_migrations_match_the_models(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert schema_status(store.url).current == head_revision()


def test_an_old_database_is_upgraded_when_opened(url: str) -> None:
    open_store(url).close()
    with open_store(url) as store, store.engine.begin() as connection:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "base")
    status = schema_status(url)
    assert status.current is None and not status.up_to_date
    with open_store(url) as store:
        assert "image_tags" in inspect(store.engine).get_table_names()
        queries.record_event(store, Event(T0, "GitRepository", "a/b", EventSeverity.INFO, "R", "m"))
    assert schema_status(url).up_to_date


def test_a_newer_database_is_refused_with_a_clear_message(url: str) -> None:
    open_store(url).close()
    with open_store(url) as store, store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff9999'"))
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert "is at schema revision ffff9999, newer than this gitward" in message
    assert f"(head {head_revision()}); upgrade gitward" in message
    assert PG_PASSWORD not in message
    assert make_url(url).render_as_string(hide_password=True) in message
    result = CliRunner().invoke(db_group, ["upgrade"], obj={"state": url})
    assert isinstance(result.exception, StoreError) and str(result.exception) == message
    current = CliRunner().invoke(db_group, ["current"], obj={"state": url})
    assert current.exit_code == 0 and "newer than this gitward" in current.output


def test_a_new_sqlite_file_is_created_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    open_store(state_url(str(path))).close()
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"alembic_version", "image_tags", "suspensions"} <= tables


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store, store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(StoreError, match="cannot write to state database"):
        policy_decisions.record_decision(store, Decision("podinfo/podinfo", T0, scan_id=424242))


def test_a_readonly_store_refuses_writes(url: str) -> None:
    open_store(url).close()
    with open_store(url, readonly=True) as store:
        assert queries.list_events(store) == ()
        with pytest.raises(StoreError, match="read"):
            queries.record_event(store, Event(T0, "GitRepository", "a/b", EventSeverity.INFO, "R", "m"))


def test_a_readonly_sqlite_store_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'missing.db'}", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_an_unreachable_postgresql_is_a_store_error_without_the_password() -> None:
    url = f"postgresql+psycopg://gitward:{PG_PASSWORD}@127.0.0.1:{_free_port()}/gitward"
    with pytest.raises(StoreError, match="cannot open state database") as caught:
        open_store(url)
    assert PG_PASSWORD not in str(caught.value)


def test_an_unsupported_database_is_refused() -> None:
    with pytest.raises(StoreError, match="unsupported state database"):
        open_store("mysql://u:pw@db/gitward")


def test_naive_datetimes_are_rejected(store: Store) -> None:
    with pytest.raises(StoreError, match="naive datetime"):
        queries.record_event(store, Event(datetime(2025, 1, 1), "K", "a/b", EventSeverity.INFO, "R", "m"))


def test_offline_postgresql_sql_builds_the_same_schema(pg_url: str) -> None:
    sql = upgrade_sql(pg_url)
    with psycopg.connect(make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)) as conn:
        conn.execute(sql)
    with open_store(pg_url, upgrade=False) as store, store.engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head_revision()
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


# Scans and tags -----------------------------------------------------------------------------


def test_a_scan_records_tags_with_their_history(store: Store) -> None:
    first = _scan(store, [ListedTag("6.5.0", "sha256:a"), ListedTag("6.6.0"), ListedTag("x.sig", excluded=True)], T0)
    assert (first.status, first.tag_count, first.error) == (ScanStatus.OK, 2, None)
    seen1 = T0 + timedelta(seconds=2)
    tags = _tags(store)
    assert set(tags) == {"6.5.0", "6.6.0", "x.sig"}
    assert tags["6.5.0"].digest == "sha256:a" and tags["6.5.0"].first_seen == seen1
    assert tags["x.sig"].excluded and not tags["6.5.0"].excluded

    later = T0 + timedelta(hours=1)
    _scan(store, ["6.6.0", "6.7.0", "x.sig"], later)
    seen2 = later + timedelta(seconds=2)
    tags = _tags(store)
    assert tags["6.5.0"].gone_at == seen2 and tags["6.5.0"].last_seen == seen1
    assert tags["6.6.0"].first_seen == seen1 and tags["6.6.0"].last_seen == seen2
    assert tags["6.6.0"].gone_at is None
    assert tags["6.7.0"].first_seen == seen2
    assert set(_tags(store, include_gone=False)) == {"6.6.0", "6.7.0", "x.sig"}
    assert tags["6.5.0"].digest == "sha256:a"  # a listing without digests keeps the known one


def test_a_tag_that_comes_back_is_present_again_from_its_return(store: Store) -> None:
    _scan(store, ["1.0.0", "1.1.0"], T0)
    _scan(store, ["1.1.0"], T0 + timedelta(hours=1))
    back = T0 + timedelta(hours=2)
    _scan(store, ["1.0.0", "1.1.0"], back)
    tag = _tags(store)["1.0.0"]
    assert tag.gone_at is None and tag.first_seen == back + timedelta(seconds=2)


def test_a_digest_or_exclusion_change_rewrites_only_that_tag(store: Store) -> None:
    _scan(store, [ListedTag("a", "sha256:1"), ListedTag("b", "sha256:2"), ListedTag("c")], T0)
    rows = RowsWritten(store)
    _scan(store, [ListedTag("a", "sha256:9"), ListedTag("b", "sha256:2"), ListedTag("c", excluded=True)],
          T0 + timedelta(hours=1))
    assert rows.take() == 3  # the scan row, a's digest, c's exclusion
    tags = _tags(store)
    assert tags["a"].digest == "sha256:9" and tags["c"].excluded and tags["b"].digest == "sha256:2"


def test_a_tag_s_digest_and_an_image_s_build_time_are_kept_once(store: Store) -> None:
    _scan(store, ["a", "b"], T0)
    rows = RowsWritten(store)
    assert images.record_tag_digest(store, "podinfo/podinfo", "a", "sha256:1")
    assert not images.record_tag_digest(store, "podinfo/podinfo", "a", "sha256:1")
    assert not images.record_tag_digest(store, "podinfo/podinfo", "never-seen", "sha256:1")
    assert rows.take() == 1
    assert _tags(store)["a"].digest == "sha256:1" and _tags(store)["b"].digest is None
    _scan(store, ["a", "b"], T0 + timedelta(hours=1))  # a listing names no digest: kept
    assert _tags(store)["a"].digest == "sha256:1"
    built = datetime(2025, 11, 3, 11, 30, tzinfo=UTC)
    images.record_image_created(store, "sha256:1", built, T0)
    images.record_image_created(store, "sha256:2", None, T0)
    images.record_image_created(store, "sha256:1", T0, T0)  # a digest names one image for good
    assert images.image_created(store, ["sha256:1", "sha256:2", "sha256:3"]) == {
        "sha256:1": built, "sha256:2": None}


def test_first_seen_times_of_many_tags_come_from_one_read(store: Store) -> None:
    _scan(store, ["1.0.0", "1.1.0"], T0)
    _scan(store, ["1.1.0", "2.0.0"], T0 + timedelta(hours=1))  # 1.0.0 gone: still known
    other = queries.record_image_scan(store, "other/app", [ListedTag("2.0.0")], started_at=T0,
                                      finished_at=T0)
    assert other.status is ScanStatus.OK
    wanted = ["1.0.0", "1.1.0", "2.0.0", "never-seen", *(f"x{i}" for i in range(600))]
    assert images.first_seen(store, "podinfo/podinfo", wanted) == {
        "1.0.0": T0 + timedelta(seconds=2), "1.1.0": T0 + timedelta(seconds=2),
        "2.0.0": T0 + timedelta(hours=1, seconds=2)}
    assert images.first_seen(store, "other/app", ["2.0.0", "1.1.0"]) == {"2.0.0": T0}
    assert images.first_seen(store, "podinfo/podinfo", []) == {}


def test_a_rescan_with_nothing_new_writes_one_row(store: Store) -> None:
    listing = [f"1.{n}.0" for n in range(300)]
    _scan(store, listing, T0)
    rows = RowsWritten(store)
    _scan(store, listing, T0 + timedelta(hours=1))
    assert rows.take() == 1
    _scan(store, listing[:-2], T0 + timedelta(hours=2))
    assert rows.take() == 1 + 2
    assert len(_tags(store, include_gone=False)) == 298
    assert all(t.last_seen == T0 + timedelta(hours=2, seconds=2) for t in _tags(store, include_gone=False).values())


def test_a_scan_hands_on_the_tags_a_read_after_it_finds(store: Store) -> None:
    """record_scan_and_tags: what it hands on (from the rows it compared, when it changed
    none) is what scan_and_tags reads afterwards, for new, gone, returning and unchanged tags."""
    listings = [["1.0.0", "1.1.0", "2.0.0"], ["1.0.0", "1.1.0", "2.0.0"], ["1.0.0", "2.1.0"],
                ["1.0.0", "2.1.0"], ["1.0.0", "1.1.0", "2.1.0"], ["1.0.0", "1.1.0", "2.1.0"]]
    for hours, listing in enumerate(listings):
        at = T0 + timedelta(hours=hours)
        scan, latest, handed = queries.record_scan_and_tags(
            store, "podinfo/podinfo", [ListedTag(t) for t in listing], started_at=at,
            finished_at=at + timedelta(seconds=2))
        read_latest, read = queries.scan_and_tags(store, "podinfo/podinfo")
        assert latest == read_latest and latest is not None and latest.id == scan.id
        assert {t.tag: t for t in handed} == {t.tag: t for t in read}, hours
        assert [t.tag for t in handed] == sorted(t.tag for t in handed)
        assert {t.tag for t in handed if t.gone_at is None} == set(listing)


def test_sqlite_total_changes_agree_that_a_rescan_is_one_row(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        listing = [f"v{n}" for n in range(100)]
        _scan(store, listing, T0)

        def total_changes() -> int:
            with store.engine.connect() as connection:
                value: int = connection.exec_driver_sql("SELECT total_changes()").scalar_one()
                return value

        before = total_changes()
        _scan(store, listing, T0 + timedelta(hours=1))
        assert store.engine.pool.checkedin() == 1  # one pooled connection: the counter is shared
        assert total_changes() - before == 1


def test_a_failed_scan_touches_no_tag(store: Store) -> None:
    _scan(store, ["1.0.0", "2.0.0"], T0)
    before = _tags(store)
    rows = RowsWritten(store)
    failed = _scan(store, [], T0 + timedelta(hours=1), error="registry said 503")
    assert rows.take() == 1
    assert (failed.status, failed.tag_count, failed.error) == (ScanStatus.FAILED, 0, "registry said 503")
    assert _tags(store) == before
    latest = queries.latest_scan(store, "podinfo/podinfo")
    latest_ok = queries.latest_scan(store, "podinfo/podinfo", status=ScanStatus.OK)
    assert latest == failed
    assert latest_ok is not None and latest_ok.started_at == T0
    assert queries.latest_scan(store, "nobody/nothing") is None


def test_a_failed_scan_with_tags_is_a_programming_error(store: Store) -> None:
    with pytest.raises(ValueError):
        _scan(store, ["1.0.0"], T0, error="boom")


# Git revisions, decisions, events, suspensions ------------------------------------------------


def test_git_revisions_are_recorded_once_per_commit_without_credentials(store: Store) -> None:
    def rev(sha: str, at: datetime) -> GitRevision:
        return GitRevision("flux-system/flux-system", "https://bot:ghp_s3cret@github.com/example/homelab",
                           "main", sha, at, "Alex <a@example.com>", "msg", at - timedelta(minutes=1))

    first = queries.record_git_revision(store, rev("aaa", T0))
    rows = RowsWritten(store)
    assert queries.record_git_revision(store, rev("aaa", T0 + timedelta(minutes=1))) == first
    assert rows.take() == 0
    queries.record_git_revision(store, rev("bbb", T0 + timedelta(minutes=2)))
    back = queries.record_git_revision(store, rev("aaa", T0 + timedelta(minutes=3)))
    assert back.id == first.id and back.fetched_at == T0 + timedelta(minutes=3)
    assert queries.latest_git_revision(store, "flux-system/flux-system") == back
    assert back.url == "https://github.com/example/homelab"
    assert back.committed_at == T0 + timedelta(minutes=2)
    assert queries.latest_git_revision(store, "other/source") is None
    with store.engine.connect() as connection:
        urls = connection.execute(text("SELECT url FROM git_revisions")).scalars().all()
    assert urls and all("s3cret" not in u for u in urls)


def test_decisions_round_trip_with_their_trace(store: Store) -> None:
    scan = _scan(store, ["6.6.0", "6.7.0"], T0)
    decision = Decision(
        policy="podinfo/podinfo",
        decided_at=T0 + timedelta(minutes=1),
        selected_tag="6.7.0",
        previous_tag="6.6.0",
        candidates=2,
        verdict_counts=(("older", 1), ("selected", 1)),
        trace=(TagVerdict("6.7.0", "selected", "highest in >=6.0.0"), TagVerdict("6.6.0", "older")),
        scan_id=scan.id,
    )
    recorded = policy_decisions.record_decision(store, decision)
    assert recorded.id is not None and recorded == Decision(**{**decision.__dict__, "id": recorded.id})
    later = policy_decisions.record_decision(
        store, Decision("podinfo/podinfo", T0 + timedelta(minutes=2), error="no tag matched")
    )
    assert policy_decisions.latest_decision(store, "podinfo/podinfo") == later
    assert policy_decisions.latest_decision(store, "other/policy") is None
    [_, first] = policy_decisions.decisions(store, "podinfo/podinfo")
    assert first.trace == ()  # a reader decodes a trace only when asked
    assert policy_decisions.decision_trace(store, first) == recorded


def test_an_unchanged_scan_adds_no_row_and_moves_the_latest_forward(store: Store) -> None:
    listing = [f"1.{n}.0" for n in range(20)]
    first = _scan(store, listing, T0)
    again = _scan(store, listing, T0 + timedelta(minutes=5))
    assert again.id == first.id and again.new_tags == ()
    latest = queries.latest_scan(store, "podinfo/podinfo")
    assert latest is not None and latest.finished_at == T0 + timedelta(minutes=5, seconds=2)
    assert _tags(store)["1.0.0"].last_seen == T0 + timedelta(minutes=5, seconds=2)
    moved = _scan(store, [*listing, "2.0.0"], T0 + timedelta(minutes=10))
    assert moved.id != first.id and moved.new_tags == ("2.0.0",)
    failed = [_scan(store, [], T0 + timedelta(minutes=m), error="registry down") for m in (15, 20)]
    assert failed[0].id == failed[1].id != moved.id
    with store.engine.connect() as connection:
        runs = connection.execute(text("SELECT since, runs FROM image_scans ORDER BY id")).all()
    assert [r.runs for r in runs] == [2, 1, 2]


def test_an_unchanged_decision_is_counted_in_the_latest_row(store: Store) -> None:
    scan = _scan(store, ["6.6.0", "6.7.0"], T0)
    trace = (TagVerdict("6.7.0", "selected", "6.7.0", 1, "matches >=6"),
             TagVerdict("6.6.0", "lower", "6.6.0", 2, "matches >=6"))
    made = [policy_decisions.record_decision(store, Decision(
        "podinfo/podinfo", T0 + timedelta(minutes=m), selected_tag="6.7.0", candidates=2,
        verdict_counts=(("lower", 1), ("selected", 1)), trace=trace, scan_id=scan.id))
        for m in (1, 6, 11)]
    assert {d.id for d in made} == {made[0].id}
    latest = policy_decisions.latest_decision(store, "podinfo/podinfo")
    assert latest is not None and latest.decided_at == T0 + timedelta(minutes=11)
    refused = policy_decisions.record_decision(
        store, Decision("podinfo/podinfo", T0 + timedelta(minutes=16), error="no tag matched"))
    assert refused.id != made[0].id
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT since, runs FROM policy_decisions ORDER BY id")).all()
        traces = connection.execute(text("SELECT count(*) FROM decision_traces")).scalar_one()
    assert [r.runs for r in rows] == [3, 1] and traces == 1


def _semver_trace(tags: list[str]) -> tuple[TagVerdict, ...]:
    """A trace in the evaluator's shape: ranked tags first, then the rest in byte order."""
    ranked = sorted((t for t in tags if not t.endswith(".sig")),
                    key=lambda t: tuple(int(p) for p in t.split(".")), reverse=True)
    lines = [TagVerdict(t, "selected" if i == 0 else "lower", t, i + 1, "matches >=1.0.0")
             for i, t in enumerate(ranked)]
    lines += [TagVerdict(t, "excluded", None, None, 'matches exclusion pattern "^.*\\.sig$"')
              for t in sorted(t for t in tags if t.endswith(".sig"))]
    return tuple(lines)


def test_a_new_trace_is_stored_as_changes_and_read_back_whole(store: Store) -> None:
    tags = [f"1.{n}.0" for n in range(200)] + [f"1.{n}.0.sig" for n in range(0, 200, 7)]
    scan = _scan(store, tags, T0)
    recorded = []
    for day in range(4):  # a new tag each day: a new top, every rank below it shifted
        tags = [t for t in tags if t != f"1.{day}.0"] + [f"1.{200 + day}.0"]
        trace = _semver_trace(tags)
        recorded.append(policy_decisions.record_decision(store, Decision(
            "podinfo/podinfo", T0 + timedelta(days=day), selected_tag=trace[0].tag,
            candidates=len(tags), trace=trace, scan_id=scan.id)))
    with store.engine.connect() as connection:
        stored = connection.execute(text(
            "SELECT depth, length(CAST(trace AS TEXT)) AS size FROM decision_traces ORDER BY depth")).all()
    assert [row.depth for row in stored] == [0, 1, 2, 3]
    assert all(row.size * 20 < stored[0].size for row in stored[1:])
    forget_decoded()
    for made in recorded:
        assert policy_decisions.decision_verdicts(store, replace(made, trace=())) == {
            t.tag: (t.rank, t.verdict) for t in made.trace}
    forget_decoded()
    for made in recorded:
        assert policy_decisions.decision_trace(store, replace(made, trace=())) == made


def test_events_are_listed_oldest_first_with_filters(store: Store) -> None:
    for minute, name in enumerate(["a/one", "a/two", "a/one", "a/one"]):
        queries.record_event(
            store, Event(T0 + timedelta(minutes=minute), "ImageRepository", name, EventSeverity.INFO,
                         "Succeeded", f"scan {minute}")
        )
    queries.record_event(store, Event(T0, "Kustomization", "a/one", EventSeverity.ERROR, "Failed", "boom"))
    everything = queries.list_events(store)
    assert len(everything) == 5 and everything[0].time == T0
    assert [e.time for e in everything] == sorted(e.time for e in everything)
    ones = queries.list_events(store, object_kind="ImageRepository", object_name="a/one", limit=2)
    assert [e.message for e in ones] == ["scan 2", "scan 3"]
    recent = queries.list_events(store, since=T0 + timedelta(minutes=2))
    assert [e.message for e in recent] == ["scan 2", "scan 3"]
    assert everything[0].severity in (EventSeverity.INFO, EventSeverity.ERROR)


def test_suspensions(store: Store) -> None:
    assert not queries.is_suspended(store, "Kustomization", "flux-system/apps")
    first = queries.suspend(store, "Kustomization", "flux-system/apps", reason="maintenance", at=T0)
    again = queries.suspend(store, "Kustomization", "flux-system/apps", at=T0 + timedelta(hours=1))
    assert again == first
    queries.suspend(store, "ImagePolicy", "podinfo/podinfo", at=T0)
    assert queries.is_suspended(store, "Kustomization", "flux-system/apps")
    assert [(s.object_kind, s.object_name) for s in queries.list_suspensions(store)] == [
        ("ImagePolicy", "podinfo/podinfo"), ("Kustomization", "flux-system/apps")
    ]
    assert queries.resume(store, "Kustomization", "flux-system/apps")
    assert not queries.resume(store, "Kustomization", "flux-system/apps")
    assert not queries.is_suspended(store, "Kustomization", "flux-system/apps")


# `gitward db` and the example database --------------------------------------------------------


def test_db_commands(url: str) -> None:
    runner = CliRunner()
    current = runner.invoke(db_group, ["current"], obj={"state": url})
    assert current.exit_code == 0, current.output
    assert re.search(r"revision: -\n", current.output) and "empty" in current.output
    upgraded = runner.invoke(db_group, ["upgrade"], obj={"state": url})
    assert upgraded.exit_code == 0, upgraded.output
    assert f"upgraded from an empty database to revision {head_revision()}" in upgraded.output
    assert PG_PASSWORD not in upgraded.output
    again = runner.invoke(db_group, ["upgrade"], obj={"state": url})
    assert f"already at revision {head_revision()}" in again.output
    history = runner.invoke(db_group, ["history"], obj={"state": url})
    assert history.exit_code == 0 and f"* 0009 -> {head_revision()}: decision inputs" in history.output
    assert "  0008 -> 0009: decision gate" in history.output
    assert "  0007 -> 0008: decision ledger" in history.output
    assert "  0005 -> 0006: image configs" in history.output
    assert "  0004 -> 0005: oci revisions" in history.output
    assert "  0003 -> 0004: reconcile requests" in history.output
    assert "  0001 -> 0002: leases" in history.output
    assert "  <base> -> 0001: initial schema" in history.output
    sql = runner.invoke(db_group, ["upgrade", "--sql"], obj={"state": url})
    assert sql.exit_code == 0 and "CREATE TABLE image_tags" in sql.output


def test_db_commands_default_to_gitward_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITWARD_STATE", str(tmp_path / "env.db"))
    result = CliRunner().invoke(db_group, ["upgrade"], obj={"state": None})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env.db").exists()


def _dump(path: Path) -> list[str]:
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def test_the_example_database_is_deterministic_and_up_to_date(tmp_path: Path) -> None:
    try:
        KubeBinaries.locate()
    except KubeEnvError as err:
        require(False, f"examples/make_state_db.py needs the Kubernetes API server: {err}")
    script = ROOT / "examples" / "make_state_db.py"
    for name in ("a.db", "b.db"):
        done = subprocess.run([sys.executable, str(script), str(tmp_path / name)],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
    dump = _dump(tmp_path / "a.db")
    assert dump == _dump(tmp_path / "b.db")
    assert _dump(ROOT / "state.db.example") == dump
    scratch = (str(tmp_path), tempfile.gettempdir(), "make-state-db-")  # no path of this machine
    assert not [line for line in dump if any(part in line for part in scratch)]
    with open_store(f"sqlite:///{tmp_path / 'a.db'}", readonly=True) as store:
        ledger = queries.tags(store, "ledger/ledger")
        assert len(ledger) == 11 and [t.tag for t in ledger if t.excluded] == [
            "sha-1a2b3c4", "sha256-9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.sig"
        ]
        assert len(queries.tags(store, "podinfo/podinfo")) == 8
        revision = queries.latest_git_revision(store, "flux-system/flux-system")
        assert revision is not None
        assert (revision.author, revision.committed_at, revision.message.split("\n")[0]) == (
            "fluxcdbot <fluxcdbot@users.noreply.github.com>", datetime(2025, 11, 5, 17, 15, tzinfo=UTC),
            "Update ledger image")
    connection = sqlite3.connect(tmp_path / "a.db")
    try:
        gated = connection.execute("SELECT count(*) FROM policy_decisions WHERE gate = 'hold'")
        assert gated.fetchone() == (2,)
        assert connection.execute("SELECT count(*) FROM leases").fetchone() == (0,)
    finally:
        connection.close()


def _sql_blocks(flavour: str) -> list[str]:
    """docs/sql.md's SQL blocks: `sql` ones are written for SQLite, `sql postgresql` ones for PostgreSQL."""
    doc = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sql( postgresql)?\n(.*?)^```", doc, flags=re.MULTILINE | re.DOTALL)
    return [body for marker, body in blocks if (marker.strip() or "sqlite") == flavour]


def test_the_documented_queries_run_on_sqlite(tmp_path: Path) -> None:
    shutil.copy(ROOT / "state.db.example", tmp_path / "s.db")
    connection = sqlite3.connect(tmp_path / "s.db")
    try:
        blocks = _sql_blocks("sqlite")
        assert len(blocks) >= 5
        for block in blocks:
            connection.execute(block).fetchall()
        applied = connection.execute(blocks[-1]).fetchall()
        assert applied and applied[0][2] == "ReconciliationSucceeded"
    finally:
        connection.close()


def test_the_documented_queries_run_on_postgresql(pg_url: str) -> None:
    open_store(pg_url).close()
    plain = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    portable = [b for b in _sql_blocks("sqlite") if "json_" not in b and "datetime(" not in b]
    with psycopg.connect(plain) as connection:
        for block in _sql_blocks("postgresql") + portable:
            connection.execute(block).fetchall()


def test_migration_0008_moves_traces_out_and_back(url: str) -> None:
    """Down to 0007 each decision gets its trace whole again (changes decoded); up again each
    distinct trace is stored once and the decisions name it."""
    tags = [f"1.{n}.0" for n in range(30)]
    first, second = _semver_trace(tags), _semver_trace([*tags, "1.30.0"])
    with open_store(url) as store:
        scan = _scan(store, tags, T0)
        made = [policy_decisions.record_decision(store, Decision(
            "podinfo/podinfo", T0 + timedelta(minutes=m), selected_tag=trace[0].tag,
            previous_tag=previous, candidates=len(trace), trace=trace, scan_id=scan.id))
            for m, trace, previous in ((1, first, None), (2, second, first[0].tag),
                                       (3, first, second[0].tag))]
        with store.engine.begin() as connection:
            assert connection.execute(text("SELECT count(*) FROM decision_traces "
                                           "WHERE base IS NOT NULL")).scalar_one() >= 1
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0007")
    with open_store(url, upgrade=False) as store, store.engine.connect() as connection:
        rows = connection.execute(text("SELECT trace FROM policy_decisions ORDER BY id")).scalars().all()
        whole = [row if isinstance(row, list) else json.loads(row) for row in rows]
        assert whole == [[step.to_json() for step in trace] for trace in (first, second, first)]
    forget_decoded()  # what follows decodes from the store, not from this process's memory
    with open_store(url) as store:
        with store.engine.connect() as connection:
            stored = connection.execute(text(
                "SELECT d.base, d.trace, p.runs FROM decision_traces d JOIN policy_decisions p "
                "ON p.trace_digest = d.digest ORDER BY p.id")).all()
            traces = connection.execute(text("SELECT count(*) FROM decision_traces")).scalar_one()
        assert [row.base for row in stored] == [None, None, None] and {r.runs for r in stored} == {1}
        assert [row.trace if isinstance(row.trace, list) else json.loads(row.trace)
                for row in stored] == whole and traces == 2
        for decision in made:
            assert policy_decisions.decision_trace(store, replace(decision, trace=())) == decision


def test_migration_0009_moves_a_gates_name_out_of_error_and_back(url: str) -> None:
    """A store at 0008 records a gate as an error `gated: <gate>: <reason>`; at 0009 the gate is
    in `gate` and `error` keeps the reason, and a downgrade puts the prefix back."""
    hold = "1.1.0 was first seen 2m ago; hold 10m lasts until 2025-11-01T08:40:00Z (app.yaml:7)"
    rollback = "the ledger first saw 0.9.0 before 1.0.0 (app.yaml:7)"
    at = "2025-11-01 08:30:00+00:00"
    with open_store(url) as store, store.engine.begin() as connection:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0008")
    with open_store(url, upgrade=False) as store, store.engine.begin() as connection:
        for n, (tag, error) in enumerate((("1.0.0", None), ("1.1.0", f"gated: hold: {hold}"),
                                          ("0.9.0", f"gated: rollback: {rollback}"),
                                          (None, "refused: the latest scan failed: 503"))):
            connection.execute(text(
                "INSERT INTO policy_decisions (id, policy, selected_tag, candidates, verdict_counts,"
                " error, decided_at, since, runs) VALUES (:id, 'apps/app', :tag, 0, '{}', :error,"
                " :at, :at, 1)"), {"id": n + 1, "tag": tag, "error": error, "at": at})
    with open_store(url) as store:
        assert [(d.selected_tag, d.gate, d.error, d.outcome) for d in reversed(
            policy_decisions.decisions(store, "apps/app"))] == [
            ("1.0.0", None, None, DecisionOutcome.SELECTED),
            ("1.1.0", Gate.HOLD, hold, DecisionOutcome.HELD),
            ("0.9.0", Gate.ROLLBACK, rollback, DecisionOutcome.HELD),
            (None, None, "refused: the latest scan failed: 503", DecisionOutcome.REFUSED)]
        with store.engine.begin() as connection:
            with pytest.raises(Exception, match="(?i)check"):
                with connection.begin_nested():
                    connection.execute(text("UPDATE policy_decisions SET gate = 'gated' WHERE id = 1"))
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0008")
    with open_store(url, upgrade=False) as store, store.engine.connect() as connection:
        assert "gate" not in {c["name"] for c in inspect(connection).get_columns("policy_decisions")}
        assert connection.execute(text("SELECT error FROM policy_decisions ORDER BY id")).scalars().all() == [
            None, f"gated: hold: {hold}", f"gated: rollback: {rollback}",
            "refused: the latest scan failed: 503"]
        assert connection.execute(text("SELECT count(*) FROM v_policy_latest")).scalar_one() == 1
