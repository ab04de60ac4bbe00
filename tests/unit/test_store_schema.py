"""The state schema as users see it: the DDL Alembic writes, the public columns, the docs, URLs."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from engine.errors import StoreError
from engine.model import TagVerdict
from engine.store.db import MIGRATIONS_DIR, head_revision, redact_url, state_url
from engine.store.migrate import alembic_config, upgrade_sql
from engine.redact import public_url
from engine.store.schema import Base
from engine.store.traces import trace_digest

ROOT = Path(__file__).resolve().parents[2]

PUBLIC_COLUMNS = {
    "git_revisions": ["id", "source", "url", "branch", "sha", "author", "message", "committed_at", "fetched_at"],
    "image_scans": [
        "id", "repository", "started_at", "finished_at", "status", "tag_count", "error", "since",
        "runs",
    ],
    "image_tags": ["id", "repository", "tag", "digest", "first_seen", "last_seen", "gone_at", "excluded"],
    "image_configs": ["digest", "created", "fetched_at"],
    "policy_decisions": [
        "id", "policy", "scan_id", "selected_tag", "previous_tag", "candidates", "verdict_counts",
        "error", "decided_at", "trace_digest", "since", "runs", "gate", "inputs_digest",
    ],
    "decision_traces": ["digest", "base", "depth", "tags", "trace"],
    "cluster_objects": [
        "id", "kustomization", "api_group", "version", "kind", "namespace", "name", "revision",
        "checksum", "applied_at", "pruned_at",
    ],
    "actions": ["id", "plan_id", "type", "target", "payload", "status", "error", "created_at", "finished_at"],
    "events": ["id", "time", "object_kind", "object_name", "severity", "reason", "message"],
    "suspensions": ["object_kind", "object_name", "suspended_at", "reason"],
    "leases": ["name", "holder", "acquired_at", "expires_at"],
    "reconcile_requests": [
        "id", "object_kind", "object_name", "requested_at", "requested_by", "finished_at",
        "handled_by", "outcome", "revision", "message",
    ],
    "oci_revisions": [
        "id", "source", "url", "tag", "digest", "revision", "layer_digest", "media_type",
        "operation", "origin_source", "origin_revision", "created", "fetched_at",
    ],
    "reconciles": [
        "object_kind", "object_name", "finished_at", "outcome", "revision", "message", "since",
        "runs",
    ],
}


def test_the_head_read_from_file_names_is_alembics_head() -> None:
    """`head_revision` reads file names so that opening a store needs no Alembic; each file is
    named for the revision it holds, and the newest is the head of Alembic's one branch."""
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [head_revision()]
    for revision in script.walk_revisions():
        assert Path(revision.path).parent == MIGRATIONS_DIR / "versions"
        assert Path(revision.path).name.startswith(f"{revision.revision}_"), \
            f"{revision.path}: name a migration <revision>_<slug>.py (migrations/README.md)"


def test_the_public_tables_and_columns_do_not_drift() -> None:
    models = {name: [c.name for c in table.columns] for name, table in Base.metadata.tables.items()}
    assert models == PUBLIC_COLUMNS


def test_sqlite_upgrade_sql_creates_every_table_and_runs_on_real_sqlite() -> None:
    sql = upgrade_sql("sqlite:///ignored.db")
    for table in PUBLIC_COLUMNS:
        assert f"CREATE TABLE {table} (" in sql
    db = sqlite3.connect(":memory:")
    db.executescript(sql)
    for table, columns in PUBLIC_COLUMNS.items():
        assert [row[1] for row in db.execute(f"PRAGMA table_info({table})")] == columns
    assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_image_scans_repository_started_at", "ix_policy_decisions_policy_decided_at",
            "ix_events_time"} <= indexes


def test_postgresql_upgrade_sql_uses_native_types() -> None:
    sql = upgrade_sql("postgresql+psycopg://gitward:secret@db.example/gitward")
    for table in PUBLIC_COLUMNS:
        assert f"CREATE TABLE {table} (" in sql
    assert "first_seen TIMESTAMP WITH TIME ZONE NOT NULL" in sql
    assert "trace JSON NOT NULL" in sql
    assert "FOREIGN KEY(trace_digest) REFERENCES decision_traces (digest)" in sql
    assert "excluded BOOLEAN NOT NULL" in sql
    assert "UNIQUE (repository, tag)" in sql
    assert "FOREIGN KEY(scan_id) REFERENCES image_scans (id) ON DELETE SET NULL" in sql
    assert "secret" not in sql


def test_upgrade_sql_for_an_unsupported_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="invalid state database URL"):
        upgrade_sql("not a url ://")


def _doc_sections() -> dict[str, str]:
    text = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    parts = re.split(r"^### `(\w+)`\n", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


def test_docs_describe_every_table_and_column() -> None:
    sections = _doc_sections()
    assert set(sections) == set(PUBLIC_COLUMNS)
    for table, columns in PUBLIC_COLUMNS.items():
        documented = re.findall(r"^\| `(\w+)`", sections[table], flags=re.MULTILINE)
        assert documented == columns, table


def test_docs_hold_at_least_five_audit_queries() -> None:
    text = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    audit = text.split("## Audit queries", 1)[1]
    assert len(re.findall(r"^```sql\n", audit, flags=re.MULTILINE)) >= 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sqlite:////var/lib/gitward/state.db", "sqlite:////var/lib/gitward/state.db"),
        ("postgresql+psycopg://u:p@db/gitward", "postgresql+psycopg://u:p@db/gitward"),
        ("/var/lib/gitward/state.db", "sqlite:////var/lib/gitward/state.db"),
    ],
)
def test_state_url_keeps_urls_and_turns_paths_into_sqlite(value: str, expected: str) -> None:
    assert state_url(value) == expected


def test_state_url_resolves_a_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert state_url("sub/s.db") == f"sqlite:///{tmp_path.resolve() / 'sub' / 's.db'}"


def test_state_url_defaults_to_the_environment_then_state_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITWARD_STATE", raising=False)
    assert state_url(None) == f"sqlite:///{tmp_path.resolve() / 'state.db'}"
    monkeypatch.setenv("GITWARD_STATE", "postgresql+psycopg://gitward@db/gitward")
    assert state_url(None) == "postgresql+psycopg://gitward@db/gitward"
    monkeypatch.setenv("GITWARD_STATE", "other.db")
    assert state_url(None) == f"sqlite:///{tmp_path.resolve() / 'other.db'}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://gitward:hunter2@db:5432/gitward", "postgresql+psycopg://gitward:***@db:5432/gitward"),
        ("postgresql+psycopg://gitward@db/gitward", "postgresql+psycopg://gitward@db/gitward"),
        ("sqlite:////tmp/state.db", "sqlite:////tmp/state.db"),
        ("postgresql://u:hunter2@host:notaport/db", "postgresql://***@host:notaport/db"),
        ("pg sql://u:hunter2@host/db", "pg sql://***@host/db"),
        ("u:hunter2@host", "***@host"),
    ],
)
def test_redact_url_hides_passwords(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x-access-token:ghp_secret@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://ghp_secret@github.com/o/r.git", "https://github.com/o/r.git"),
        ("ssh://git@github.com/example/homelab", "ssh://git@github.com/example/homelab"),
        ("ssh://git:pw@github.com:2222/o/r", "ssh://git@github.com:2222/o/r"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("file:///srv/git/r.git", "file:///srv/git/r.git"),
    ],
)
def test_public_url_strips_git_credentials(url: str, expected: str) -> None:
    assert public_url(url) == expected


def test_a_trace_digest_is_the_sha256_of_its_lines_json_with_sorted_keys() -> None:
    """trace_digest builds each line with its keys in sorted order instead of sorting them: it
    must stay the digest of `to_json` sorted, or stored traces would no longer match."""
    trace = [TagVerdict("2.0.0", "selected", "2.0.0", rank=1, reason=""),
             TagVerdict("1.0.0-é\"\\", "lower", None, rank=2, reason="lower than ☃"),
             TagVerdict("latest", "filtered", "\n", rank=None, reason="x")]
    text = json.dumps([t.to_json() for t in trace], sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    assert trace_digest(trace) == hashlib.sha256(text.encode()).hexdigest()
    assert trace_digest(trace[:2]) != trace_digest(trace)
