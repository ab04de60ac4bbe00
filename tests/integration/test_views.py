"""The audit views (migration 0003) on real SQLite and PostgreSQL: same columns, same answers.

Both dialects get examples/make_state_db.py's story, played through gitward's own code on a
fresh API server, so the views read exactly what gitward records; the edge cases write rows
through the store's writers.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from engine.model import ClusterObject, Decision, ListedTag, ObjectId
from engine.store import decisions as policy_decisions, inventory, queries
from engine.store.actions import finish_action, start_action
from engine.store.db import Store, open_store
from engine.store.migrate import alembic_config
from tests.conftest import ROOT, require
from tests.integration.kube_env import KubeAPI, KubeEnvError

VIEWS = {
    "v_image_updates": ["action_id", "plan_id", "source", "branch", "commit_sha", "committed_at",
                        "path", "line", "policy", "old_value", "new_value", "decision_id"],
    "v_policy_latest": ["policy", "selected_tag", "previous_tag", "decided_at", "decision_id",
                        "scan_id", "repository", "scanned_at"],
    "v_object_history": ["kustomization", "object", "revision", "change", "at", "status",
                         "action_id", "recorded_in"],
    "v_tag_lead_time": ["policy", "repository", "tag", "first_seen", "commit_sha", "committed_at",
                        "applied_at", "seconds_to_commit", "seconds_to_apply"],
}
LEDGER = "ghcr.io/example/ledger"
PODINFO = "ghcr.io/stefanprodan/podinfo"
COMMITS = ["961b382", "b16db41", "f079f12"]
"""gitward's three commits in the story, the same on every run: dates and messages are fixed."""
FIRST, RETIRED = "e09d444", "a44e4d3"
"""Alex's commits: examples/homelab with ledger-config, then ledger-config removed."""
T0 = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_state_db", ROOT / "examples" / "make_state_db.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


EXAMPLE = _example()


def _value(value: Any) -> Any:
    """SQLite hands view timestamps back as text; PostgreSQL as aware datetimes. Compare as the latter."""
    if isinstance(value, str) and len(value) == 26 and value[10] == " " and value[4] == "-":
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value


def rows(store: Store, view: str, order: str) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        result = connection.execute(text(f"SELECT * FROM {view} ORDER BY {order}"))
        return [{k: _value(v) for k, v in row._mapping.items()} for row in result]


def columns(store: Store, view: str) -> list[str]:
    with store.engine.connect() as connection:
        return list(connection.execute(text(f"SELECT * FROM {view} WHERE 1 = 0")).keys())


def at(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2025, 11, day, hour, minute, second, tzinfo=UTC)


# The views exist, with the same columns on both dialects --------------------------------------


def test_every_view_has_its_documented_columns(store: Store) -> None:
    for view, expected in VIEWS.items():
        assert columns(store, view) == expected, view
    documented = (ROOT / "docs" / "sql.md").read_text(encoding="utf-8")
    for view, expected in VIEWS.items():
        section = documented.split(f"### `{view}`", 1)[1].split("\n### ", 1)[0]
        assert [c for c in expected if f"| `{c}`" in section] == expected, view


def test_postgresql_views_have_native_types(pg_url: str) -> None:
    open_store(pg_url).close()
    with open_store(pg_url) as store, store.engine.connect() as connection:
        found: dict[str, str] = dict(connection.execute(text(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_name LIKE 'v\\_%'")).all())
    assert found["v_image_updates.line"] == "integer"
    assert found["v_image_updates.committed_at"] == "timestamp with time zone"
    assert found["v_image_updates.new_value"] == "text"
    assert found["v_object_history.at"] == "timestamp with time zone"
    assert found["v_tag_lead_time.seconds_to_apply"] == "integer"
    assert found["v_tag_lead_time.first_seen"] == "timestamp with time zone"


def test_downgrade_drops_the_views_and_upgrade_brings_them_back(url: str) -> None:
    open_store(url).close()
    with open_store(url) as store:
        with store.engine.begin() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0002")
        with pytest.raises(DBAPIError, match="v_image_updates"):
            columns(store, "v_image_updates")
    with open_store(url) as store:
        assert columns(store, "v_tag_lead_time") == VIEWS["v_tag_lead_time"]


# The example's story, read through the views --------------------------------------------------


@pytest.fixture
def example(store: Store, tmp_path: Path) -> Store:
    """`store` with examples/make_state_db.py's story played into it, on a fresh API server."""
    try:
        api = KubeAPI().start()
    except KubeEnvError as err:
        require(False, f"the example's story needs the Kubernetes API server: {err}")
        raise  # require() skips or fails; this line only tells the type checker
    try:
        EXAMPLE.record_example(store, api.kubeconfig, tmp_path / "example")
    finally:
        api.stop()
    return store


def test_the_example_reads_the_same_on_both_dialects(example: Store) -> None:
    """One test, as playing the story takes a fresh API server and some seconds."""
    updates = rows(example, "v_image_updates", "action_id")
    assert [(u["committed_at"], u["policy"], u["old_value"], u["new_value"]) for u in updates] == [
        (at(4, 8, 25), "ledger/ledger", f"{LEDGER}:20251103-1130-sha-4d5e6f7",
         f"{LEDGER}:20251104-0805-sha-6f7a8b9"),
        (at(5, 17, 0), "podinfo/podinfo", f"{PODINFO}:6.5.1", f"{PODINFO}:6.7.0"),
        (at(5, 17, 15), "ledger/ledger", f"{LEDGER}:20251104-0805-sha-6f7a8b9",
         f"{LEDGER}:20251105-1650-sha-8b9c0d1"),
    ]
    assert [u["commit_sha"][:7] for u in updates] == COMMITS
    assert {(u["source"], u["branch"], u["line"]) for u in updates} == {("flux-system/flux-system", "main", 20)}
    latest = {r["policy"]: r for r in rows(example, "v_policy_latest", "policy")}
    assert updates[-1]["decision_id"] == latest["ledger/ledger"]["decision_id"]
    assert (latest["ledger/ledger"]["selected_tag"], latest["ledger/ledger"]["previous_tag"],
            latest["ledger/ledger"]["scanned_at"]) == (
        "20251105-1650-sha-8b9c0d1", "20251104-0805-sha-6f7a8b9", at(5, 17, 15))
    assert (latest["podinfo/podinfo"]["selected_tag"], latest["podinfo/podinfo"]["repository"]) == (
        "6.7.0", "podinfo/podinfo")
    leads = rows(example, "v_tag_lead_time", "committed_at")
    assert [(r["tag"], r["first_seen"], r["applied_at"], r["seconds_to_commit"], r["seconds_to_apply"])
            for r in leads] == [
        ("20251104-0805-sha-6f7a8b9", at(4, 8, 10), at(4, 8, 26), 900, 60),  # held 10m, next scan
        ("6.7.0", at(5, 17, 0), at(5, 17, 1), 0, 60),
        ("20251105-1650-sha-8b9c0d1", at(5, 17, 0), at(5, 17, 16), 900, 60),
    ]
    assert [r["commit_sha"] for r in leads] == [u["commit_sha"] for u in updates]
    # v_object_history: every write and prune from actions, then the inventory's last word.
    history = [(r["object"], r["change"], r["revision"].split(":")[1][:7], r["recorded_in"])
               for r in rows(example, "v_object_history", "object, at, recorded_in, change")
               if r["object"] in ("Deployment.apps/ledger/ledger", "ConfigMap/ledger/ledger-config")]
    ledger_0805, _, ledger_1650 = COMMITS
    assert history == [
        ("ConfigMap/ledger/ledger-config", "create", FIRST, "actions"),
        ("ConfigMap/ledger/ledger-config", "applied", FIRST, "cluster_objects"),
        ("ConfigMap/ledger/ledger-config", "prune", RETIRED, "actions"),
        ("ConfigMap/ledger/ledger-config", "pruned", FIRST, "cluster_objects"),
        ("Deployment.apps/ledger/ledger", "create", FIRST, "actions"),
        ("Deployment.apps/ledger/ledger", "update", ledger_0805, "actions"),
        ("Deployment.apps/ledger/ledger", "update", ledger_1650, "actions"),
        ("Deployment.apps/ledger/ledger", "applied", ledger_1650, "cluster_objects"),
    ]
    cluster_scoped = {r["object"] for r in rows(example, "v_object_history", "object")}
    assert "Namespace/ledger" in cluster_scoped


# Edge cases -----------------------------------------------------------------------------------


def _commit(store: Store, *, new: str, decisions: list[int], status: str = "done",
            commit: str = "c0ffee" * 6 + "ab", at: datetime = T0) -> int:
    payload = {"type": "commit", "repository": "flux-system/flux-system", "branch": "main",
               "files": [{"path": "app.yaml", "line": 3, "old": "img:1.0.0", "new": new,
                          "policy": "apps/app"}],
               "decisions": decisions}
    action = start_action(store, plan_id="p", type="commit", target="flux-system/flux-system@main",
                          payload=payload, now=at)
    finish_action(store, action, status=status, now=at, payload={"commit": commit})
    return action


def _scan_and_decide(store: Store, tags: list[str], selected: str | None,
                     decided_at: datetime = T0) -> int:
    scan = queries.record_image_scan(store, "apps/app", [ListedTag(t) for t in tags],
                                     started_at=decided_at - timedelta(minutes=10),
                                     finished_at=decided_at - timedelta(minutes=10))
    decision = policy_decisions.record_decision(store, Decision("apps/app", decided_at, selected_tag=selected,
                                                       scan_id=scan.id, error=None if selected else "none"))
    assert decision.id is not None
    return decision.id


def test_only_pushed_commits_are_image_updates(store: Store) -> None:
    decision = _scan_and_decide(store, ["1.0.1"], "1.0.1")
    _commit(store, new="img:1.0.1", decisions=[decision], status="failed")
    _commit(store, new="img:1.0.1", decisions=[decision], status="skipped")
    assert rows(store, "v_image_updates", "action_id") == []
    done = _commit(store, new="img:1.0.1", decisions=[decision])
    assert [r["action_id"] for r in rows(store, "v_image_updates", "action_id")] == [done]


def test_a_tag_is_matched_whole_never_as_a_prefix(store: Store) -> None:
    decision = _scan_and_decide(store, ["6.5.1", "6.5.10", "6.5.100"], "6.5.10")
    _commit(store, new="img:6.5.10@sha256:abc", decisions=[decision])
    assert [r["tag"] for r in rows(store, "v_tag_lead_time", "tag")] == ["6.5.10"]


def test_a_bare_tag_value_is_matched_too(store: Store) -> None:
    decision = _scan_and_decide(store, ["v2", "v2_1"], "v2_1")
    _commit(store, new="v2_1", decisions=[decision])
    [lead] = rows(store, "v_tag_lead_time", "tag")
    assert (lead["tag"], lead["applied_at"], lead["seconds_to_apply"]) == ("v2_1", None, None)
    assert lead["seconds_to_commit"] == 600


def test_applied_at_is_the_first_apply_of_the_commits_revision_at_or_after_it(store: Store) -> None:
    decision = _scan_and_decide(store, ["1.0.1"], "1.0.1")
    commit = "ab" * 20
    _commit(store, new="img:1.0.1", decisions=[decision], commit=commit)
    app = ObjectId("apps", "Deployment", "apps", "app")
    inventory.record_applied(store, [ClusterObject("flux-system/apps", app, "v1", "main@sha1:" + "cd" * 20,
                                                   "x", T0 + timedelta(minutes=1))])
    assert rows(store, "v_tag_lead_time", "tag")[0]["applied_at"] is None
    for minutes in (5, 2):
        action = start_action(store, plan_id="s", type="apply", target="Kustomization/flux-system/apps",
                              payload={"revision": f"main@sha1:{commit}",
                                       "objects": [{"object": str(app), "change": "update"}]},
                              now=T0 + timedelta(minutes=minutes))
        finish_action(store, action, status="done", now=T0 + timedelta(minutes=minutes))
    [lead] = rows(store, "v_tag_lead_time", "tag")
    assert (lead["applied_at"], lead["seconds_to_apply"]) == (T0 + timedelta(minutes=2), 120)


def test_policy_latest_keeps_the_last_selection_through_refusals(store: Store) -> None:
    _scan_and_decide(store, ["1.0.0"], "1.0.0", T0)
    newer = _scan_and_decide(store, ["1.0.0", "1.1.0"], "1.1.0", T0 + timedelta(hours=1))
    _scan_and_decide(store, ["1.0.0", "1.1.0"], None, T0 + timedelta(hours=2))
    [latest] = rows(store, "v_policy_latest", "policy")
    assert (latest["decision_id"], latest["selected_tag"]) == (newer, "1.1.0")
    same_time = _scan_and_decide(store, ["1.2.0"], "1.2.0", T0 + timedelta(hours=1))
    [latest] = rows(store, "v_policy_latest", "policy")
    assert (latest["decision_id"], latest["selected_tag"]) == (same_time, "1.2.0")
