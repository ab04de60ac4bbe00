"""`gitward apply`: commit actions carried out on a clone of the source, one writer per branch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.cli import main
from engine.store.actions import INTERRUPTED, list_actions, start_action
from engine.store.db import open_store, state_url
from engine.reconcile.heartbeat import LEASE_TTL
from engine.store.leases import acquire_lease, git_lease_name, list_leases
from tests.integration.git_env import BareRepo, git, lock_ref_once, push_commit

PODINFO = "cluster/apps/podinfo/deployment.yaml"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def record_tags(capsys: pytest.CaptureFixture[str], state: str, repo: Path, tmp: Path) -> None:
    """The tag git deploys, then newer ones in a later scan: the ledger tells they are newer."""
    for day, listed in enumerate(("6.5.1\n", "6.5.1\n6.6.0\n6.7.0\n")):
        tags = tmp / f"tags-{day}.txt"
        tags.write_text(listed)
        assert run(capsys, "--state", state, "images", "import", "podinfo/podinfo", "--tags",
                   str(tags), "--repo", str(repo))[0] == 0


def test_apply_pushes_one_commit_and_records_the_action(
        homelab_remote: tuple[BareRepo, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare, repo = homelab_remote
    state = str(tmp_path / "state.db")
    record_tags(capsys, state, repo, tmp_path)
    push_commit(bare.url, tmp_path / "other", {"README.md": "moved on\n"}, "A later commit")
    code, out, err = run(capsys, "--state", state, "apply", "--repo", str(repo), "--offline",
                         "--workdir", str(tmp_path / "cache"), "-o", "json")
    assert code == 0, err
    [action] = json.loads(out)["actions"]
    assert action["status"] == "done" and action["branch"] == "main"
    assert bare.subjects("main")[:2] == ["Update podinfo image", "A later commit"]
    assert "podinfo:6.7.0 # {" in bare.read(PODINFO)
    body = git("--git-dir", str(bare.path), "log", "-1", "--format=%B", "main").stdout
    assert "Gitward-Decision: " in body
    with open_store(state_url(state)) as store:
        [row] = list_actions(store)
    assert (row.type, row.status, row.payload["commit"]) == ("commit", "done", bare.rev("main"))
    code, out, _ = run(capsys, "--state", state, "get", "images", "update", "-n", "podinfo",
                       "--repo", str(repo), "-o", "json")
    [status] = json.loads(out)
    assert status["ready"] == "True"
    assert status["message"] == f"pushed commit '{bare.rev('main')[:7]}' to branch 'main'"
    # nothing left to do: the next apply plans no action
    code, out, _ = run(capsys, "--state", state, "apply", "--repo", str(repo), "--offline",
                       "--workdir", str(tmp_path / "cache"))
    assert code == 0 and len(bare.subjects("main")) == 3


def test_a_push_refused_at_the_remotes_ref_lock_is_fetched_replanned_and_retried(
        homelab_remote: tuple[BareRepo, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`[remote rejected] (failed to update ref)` is the race a non-fast-forward is, not a
    refusal: apply retries within its budget and pushes one commit."""
    bare, repo = homelab_remote
    state = str(tmp_path / "state.db")
    record_tags(capsys, state, repo, tmp_path)
    pushes = lock_ref_once(bare.path)
    code, out, err = run(capsys, "--state", state, "apply", "--repo", str(repo), "--offline",
                         "--workdir", str(tmp_path / "cache"), "-o", "json")
    assert code == 0, err
    [action] = json.loads(out)["actions"]
    assert action["status"] == "done", action
    assert len(pushes.read_text().splitlines()) == 2
    assert bare.subjects("main") == ["Update podinfo image", "Initial commit"]


def test_an_action_a_killed_process_left_planned_is_finished_by_the_next_writer(
        homelab_remote: tuple[BareRepo, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The row a SIGKILLed apply leaves `planned` (written before its lease, never finished)
    is marked failed as interrupted by the next apply to hold that branch's lease."""
    bare, repo = homelab_remote
    state = str(tmp_path / "state.db")
    record_tags(capsys, state, repo, tmp_path)
    code, out, _ = run(capsys, "--state", state, "plan", "--repo", str(repo), "--offline", "-o", "json")
    [planned] = json.loads(out)["actions"]
    killed_at = datetime.now(UTC) - timedelta(hours=1)
    with open_store(state_url(state)) as store:
        left = start_action(store, plan_id="killed", type="commit",
                            target=f"{planned['repository']}@{planned['branch']}",
                            payload=planned, now=killed_at)
        other = start_action(store, plan_id="elsewhere", type="commit", target="other/target@main",
                             payload={}, now=killed_at)
    code, _, err = run(capsys, "--state", state, "apply", "--repo", str(repo), "--offline",
                       "--workdir", str(tmp_path / "cache"))
    assert code == 0, err
    with open_store(state_url(state)) as store:
        rows = {a.id: a for a in list_actions(store)}
    assert (rows[left].status, rows[left].error) == ("failed", INTERRUPTED)
    assert rows[left].finished_at is not None
    assert rows[other].status == "planned"  # another branch's writer may still be at it
    assert bare.subjects("main") == ["Update podinfo image", "Initial commit"]


def test_a_push_waiting_on_another_writer_is_reported_waiting_and_exits_1(
        homelab_remote: tuple[BareRepo, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Another gitward holds the branch: nothing is pushed, so apply says the commit waits and
    fails (exit 1), never `ok`; the action row says why."""
    bare, repo = homelab_remote
    state = str(tmp_path / "state.db")
    record_tags(capsys, state, repo, tmp_path)
    with open_store(state_url(state)) as store:
        assert acquire_lease(store, git_lease_name(bare.url, "main"), "other-host:1",
                             LEASE_TTL, datetime.now(UTC))
    code, out, err = run(capsys, "--state", state, "apply", "--repo", str(repo), "--offline",
                         "--workdir", str(tmp_path / "cache"), "-o", "json")
    assert code == 1
    [action] = json.loads(out)["actions"]
    assert action["status"] == "waiting"
    assert "another gitward (other-host:1) is writing to" in action["summary"]
    code, out, err = run(capsys, "--state", state, "apply", "--repo", str(repo), "--offline",
                         "--workdir", str(tmp_path / "cache"))
    assert code == 1
    assert "◎" in err and "waiting, not pushed: another gitward (other-host:1)" in err
    assert bare.subjects("main") == ["Initial commit"]
    with open_store(state_url(state)) as store:
        rows = list_actions(store)
    assert [a.status for a in rows] == ["skipped", "skipped"]
    assert all((a.error or "").startswith("waiting, not pushed: ") for a in rows)


def test_the_branch_lease_of_a_dead_writer_frees_after_a_minute(
        homelab_remote: tuple[BareRepo, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A writer that died holding the branch (its lease taken `LEASE_TTL` ago and never renewed)
    blocks nobody: the next apply takes the branch and pushes. A live writer renews its lease, so
    a minute is all a dead one can block for."""
    bare, repo = homelab_remote
    state = str(tmp_path / "state.db")
    record_tags(capsys, state, repo, tmp_path)
    assert LEASE_TTL <= timedelta(seconds=60)
    with open_store(state_url(state)) as store:
        assert acquire_lease(store, git_lease_name(bare.url, "main"), "killed-host:1",
                             LEASE_TTL, datetime.now(UTC) - LEASE_TTL)
    code, out, err = run(capsys, "--state", state, "apply", "--repo", str(repo), "--offline",
                         "--workdir", str(tmp_path / "cache"))
    assert code == 0, err
    assert bare.subjects("main") == ["Update podinfo image", "Initial commit"]
    with open_store(state_url(state)) as store:
        assert [a.status for a in list_actions(store)] == ["done"]
        assert not list_leases(store)  # released after the push


def test_reconcile_source_records_the_revision(homelab_remote: tuple[BareRepo, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bare, repo = homelab_remote
    state = str(tmp_path / "state.db")
    code, out, err = run(capsys, "--state", state, "reconcile", "source", "git", "flux-system",
                         "--repo", str(repo), "--workdir", str(tmp_path / "cache"))
    assert code == 0, err
    assert f"fetched revision main@sha1:{bare.rev('main')}" in out
    _, out, _ = run(capsys, "--state", state, "get", "sources", "git", "--repo", str(repo),
                    "-o", "json")
    [row] = json.loads(out)
    assert row["revision"] == f"main@sha1:{bare.rev('main')}" and row["ready"] == "True"
