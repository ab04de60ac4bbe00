"""`gitward images update [--push]` on a real clone of a real bare repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.cli import main
from engine.store.actions import list_actions
from engine.store.db import open_store, state_url
from engine.store.leases import acquire_lease, git_lease_name, release_lease
from engine.store.queries import list_events
from tests.integration.git_env import BareRepo, SshRepo, clone, git, lock_ref_once, push_commit

PODINFO = "cluster/apps/podinfo/deployment.yaml"
LEDGER = "cluster/apps/ledger/deployment.yaml"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def import_tags(capsys: pytest.CaptureFixture[str], state: str, repo: Path, tmp: Path,
                repository: str = "podinfo/podinfo", tags: str | None = None) -> None:
    """Record `tags` for `repository` in one scan; by default podinfo in two scans: the tag git
    deploys, then the newer ones. The registry is out of reach, so the ledger's first sightings
    are what tells the rollback gate that 6.7.0 is newer."""
    scans = ("6.5.1\n", "6.5.1\n6.6.0\n6.7.0\n7.0.0-rc.1\nlatest\n") if tags is None else (tags,)
    for day, listed in enumerate(scans):
        path = tmp / f"{repository.replace('/', '-')}-{day}.txt"
        path.write_text(listed)
        code, _, err = run(capsys, "--state", state, "images", "import", repository, "--tags",
                           str(path), "--repo", str(repo))
        assert code == 0, err


def log(repo: BareRepo) -> list[str]:
    return git("--git-dir", str(repo.path), "log", "--format=%an <%ae>|%s", "main").stdout.splitlines()


def test_update_commits_and_pushes_with_trailers(bare_repo: BareRepo, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    work = clone(bare_repo.url, tmp_path / "work")
    state = str(tmp_path / "state.db")
    import_tags(capsys, state, work.path, tmp_path)
    before = (work.path / LEDGER).read_bytes()
    code, out, err = run(capsys, "--state", state, "images", "update", "--repo", str(work.path),
                         "--offline", "--push")
    assert code == 0, err
    assert "pushed to branch main" in out
    assert log(bare_repo)[0] == "fluxcdbot <fluxcdbot@users.noreply.github.com>|Update podinfo image"
    body = git("--git-dir", str(bare_repo.path), "log", "-1", "--format=%B", "main").stdout
    assert "Gitward-Decision: " in body
    assert "image: ghcr.io/stefanprodan/podinfo:6.7.0 # {" in bare_repo.read(PODINFO)
    assert (work.path / LEDGER).read_bytes() == before  # no tags for ledger: untouched
    # a second run has nothing to do: no empty commit
    code, out, _ = run(capsys, "--state", state, "images", "update", "--repo", str(work.path),
                       "--offline", "--push")
    assert code == 0 and "no updates" in out
    assert len(log(bare_repo)) == 2


def test_no_commit_only_edits_the_working_tree(bare_repo: BareRepo, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    work = clone(bare_repo.url, tmp_path / "work")
    state = str(tmp_path / "state.db")
    import_tags(capsys, state, work.path, tmp_path)
    code, _, err = run(capsys, "--state", state, "images", "update", "--repo", str(work.path),
                       "--offline", "--no-commit")
    assert code == 0, err
    status = git("status", "--porcelain", cwd=work.path).stdout.split()
    assert status == ["M", PODINFO]
    assert len(log(bare_repo)) == 1


def test_a_concurrent_push_is_rebased_onto_not_lost(bare_repo: BareRepo, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    work = clone(bare_repo.url, tmp_path / "work")
    state = str(tmp_path / "state.db")
    import_tags(capsys, state, work.path, tmp_path)
    push_commit(bare_repo.url, tmp_path / "other", {"cluster/apps/notes.txt": "hello\n"},
                "Someone else's change")
    code, out, err = run(capsys, "--state", state, "images", "update", "--repo", str(work.path),
                         "--offline", "--push")
    assert code == 0, err
    assert "after 1 rebase" in out
    subjects = [line.split("|", 1)[1] for line in log(bare_repo)]
    assert subjects == ["Update podinfo image", "Someone else's change", "Initial commit"]


@pytest.mark.parametrize("edited", ["podinfo:6.5.1  # {", "podinfo:6.7.0 # {"])
def test_a_human_edit_of_the_same_marked_line_is_replanned_on_the_new_head(
        bare_repo: BareRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        edited: str) -> None:
    """Someone pushed a change to the very line gitward rewrites: the rebase conflicts, so, as
    `apply` does, gitward takes its commit back, plans again on the new head and pushes what the
    policy still wants there (6.7.0 on a line re-spaced by hand), or nothing when the head
    already holds it (set to 6.7.0 by hand)."""
    work = clone(bare_repo.url, tmp_path / "work")
    state = str(tmp_path / "state.db")
    import_tags(capsys, state, work.path, tmp_path)
    text = bare_repo.read(PODINFO)
    assert "podinfo:6.5.1 # {" in text
    push_commit(bare_repo.url, tmp_path / "other",
                {PODINFO: text.replace("podinfo:6.5.1 # {", edited)}, "Edit podinfo by hand")
    code, out, err = run(capsys, "--state", state, "images", "update", "--repo", str(work.path),
                         "--offline", "--push")
    assert code == 0, err
    assert "hint:" not in out + err and "Traceback" not in err
    subjects = [line.split("|", 1)[1] for line in log(bare_repo)]
    with open_store(state_url(state)) as store:
        [action] = list_actions(store)
    if edited.startswith("podinfo:6.7.0"):
        assert subjects == ["Edit podinfo by hand", "Initial commit"]
        assert "• re-planned on the new head: nothing left to push on main's new head" in out
        assert (action.status, action.payload["commit"]) == ("skipped", None)
        assert bare_repo.read(PODINFO) == text.replace("podinfo:6.5.1 # {", edited)
    else:
        assert subjects == ["Update podinfo image", "Edit podinfo by hand", "Initial commit"]
        assert "pushed to branch main after 1 rebase" in out
        assert (action.status, action.payload["commit"]) == ("done", bare_repo.rev())
        assert bare_repo.read(PODINFO) == text.replace("podinfo:6.5.1 # {", "podinfo:6.7.0  # {")
    assert git("rev-parse", "HEAD", cwd=work.path).stdout.strip() == bare_repo.rev()
    assert git("status", "--porcelain", cwd=work.path).stdout == ""


def test_a_push_refused_at_the_remotes_ref_lock_is_retried(
        bare_repo: BareRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another push holding the branch's ref lock is the same race as a non-fast-forward."""
    work = clone(bare_repo.url, tmp_path / "work")
    state = str(tmp_path / "state.db")
    import_tags(capsys, state, work.path, tmp_path)
    pushes = lock_ref_once(bare_repo.path)
    code, out, err = run(capsys, "--state", state, "images", "update", "--repo", str(work.path),
                         "--offline", "--push")
    assert code == 0, err
    assert "after 1 rebase" in out and "hint:" not in out + err
    assert len(pushes.read_text().splitlines()) == 2
    subjects = [line.split("|", 1)[1] for line in log(bare_repo)]
    assert subjects == ["Update podinfo image", "Initial commit"]


def test_a_push_the_remote_refuses_is_not_retried_and_says_no_hints(
        bare_repo: BareRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = clone(bare_repo.url, tmp_path / "work")
    state = str(tmp_path / "state.db")
    import_tags(capsys, state, work.path, tmp_path)
    hook = bare_repo.path / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho push >> pushes.txt\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    code, _, err = run(capsys, "--state", state, "images", "update", "--repo", str(work.path),
                       "--offline", "--push")
    assert code == 1
    assert "push to origin branch main failed" in err and "main is protected" in err
    assert "hint:" not in err and "Traceback" not in err
    assert len((bare_repo.path / "pushes.txt").read_text().splitlines()) == 1
    assert [line.split("|", 1)[1] for line in log(bare_repo)] == ["Initial commit"]


def test_read_only_key_cannot_push(ssh_repo: SshRepo, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    work = clone(ssh_repo.url, tmp_path / "work", ssh_command=ssh_repo.ro_ssh_command)
    state = str(tmp_path / "state.db")
    import_tags(capsys, state, work.path, tmp_path)
    monkeypatch.setenv("GIT_SSH_COMMAND", ssh_repo.ro_ssh_command)
    code, _, err = run(capsys, "--state", state, "images", "update", "--repo", str(work.path),
                       "--offline", "--push")
    assert code == 1
    assert "push to origin branch main failed" in err and "Traceback" not in err
    assert len(ssh_repo.repo.log("main")) == 1  # the read-only key changed nothing
    result = git("push", "origin", "HEAD:refs/heads/main", cwd=work.path,
                 ssh_command=ssh_repo.rw_ssh_command, check=False)
    assert result.returncode == 0, result.stderr  # the same commit, with the read-write key
    assert "Update podinfo image" in ssh_repo.repo.subjects("main")


def test_hold_is_recorded_and_explained(bare_repo: BareRepo, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """ledger.rules holds a fresh tag for 10m: nothing is written, and `explain` says why."""
    work = clone(bare_repo.url, tmp_path / "work")
    state = str(tmp_path / "state.db")
    tags = tmp_path / "ledger.txt"
    tags.write_text("20251103-1130-sha-4d5e6f7\n20251105-1650-sha-8b9c0d1\n")
    assert run(capsys, "--state", state, "images", "import", "ledger/ledger", "--tags", str(tags),
               "--repo", str(work.path))[0] == 0
    before = (work.path / LEDGER).read_bytes()
    code, out, err = run(capsys, "--state", state, "images", "update", "--repo", str(work.path),
                         "--offline", "--no-commit")
    assert code == 0 and "no updates" in out
    assert f"held: {LEDGER}:20  ledger/ledger  hold: 20251105-1650-sha-8b9c0d1 was first seen" in err
    assert (work.path / LEDGER).read_bytes() == before
    code, out, _ = run(capsys, "--state", state, "explain", "image", "policy", "ledger/ledger",
                       "--repo", str(work.path))
    assert code == 0
    assert "Not applied to git: hold: 20251105-1650-sha-8b9c0d1 was first seen 0m ago" in out
    assert "Selected 20251105-1650-sha-8b9c0d1 (value 20251105-1650)" in out


def test_a_push_waits_for_the_branch_lease_and_every_commit_is_an_action(
        bare_repo: BareRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`images update --push` writes to the branch as `apply` and `run` do: under its lease, and
    recorded in `actions` with an event."""
    work = clone(bare_repo.url, tmp_path / "work")
    state = str(tmp_path / "state.db")
    import_tags(capsys, state, work.path, tmp_path)
    lease = git_lease_name("ssh://git@github.com/example/homelab", "main")
    now = datetime.now(UTC)
    with open_store(state_url(state)) as store:
        assert acquire_lease(store, lease, "daemon-elsewhere", timedelta(minutes=1), now)
    code, out, err = run(capsys, "--state", state, "images", "update", "--repo", str(work.path),
                         "--offline", "--push")
    assert code == 1
    assert "committed locally, not pushed: another gitward (daemon-elsewhere) is writing to" in err
    assert len(log(bare_repo)) == 1  # nothing reached the remote
    with open_store(state_url(state)) as store:
        [action] = list_actions(store)
        assert (action.type, action.status) == ("commit", "skipped")
        assert "daemon-elsewhere" in (action.error or "")
        release_lease(store, lease, "daemon-elsewhere")

    git("reset", "--hard", "HEAD~1", cwd=work.path)
    code, out, err = run(capsys, "--state", state, "images", "update", "--repo", str(work.path),
                         "--offline", "--push")
    assert code == 0, err
    with open_store(state_url(state)) as store:
        done = [a for a in list_actions(store) if a.status == "done"]
        assert len(done) == 1 and done[0].payload["commit"] == bare_repo.rev()
        events = list_events(store, object_kind="ImageUpdateAutomation")
        assert [e.reason for e in events] == ["CommitPushed"]
