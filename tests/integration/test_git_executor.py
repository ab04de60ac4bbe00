"""The git executor on real remotes: file:// and ssh:// (read-only and read-write keys), real races.

A race is staged by an edit callback that, before editing, pushes a commit from another clone:
that lands between our fetch and our push, exactly where a real concurrent writer would.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from engine.act.git import (
    CommitRequest,
    CommitResult,
    CommitStatus,
    GitTarget,
    commit_and_push,
    public_url,
)
from engine.errors import GitwardError
from engine.model import CommitAuthor
from tests.integration.git_env import BRANCH, BareRepo, SshRepo, SshServer, clone, git, push_commit, ssh_command

DEPLOYMENT = "cluster/apps/podinfo/deployment.yaml"
OLD_IMAGE = "ghcr.io/stefanprodan/podinfo:6.5.1"
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.6.0"
BOT = CommitAuthor("fluxcdbot", "fluxcdbot@users.noreply.github.com")
RELEASER = CommitAuthor("Release Robot", "robot@example.invalid")
MESSAGE = "Update podinfo to 6.6.0\n\nAutomation: flux-system/flux-system\nPolicy: podinfo/podinfo\n"
FAKE_TOKEN = "ghp_FAKEtoken0123456789abcdefSECRET"
FAKE_PASSWORD = "hunter2-url-password"


class Recorder:
    """An edit callback: replaces the podinfo image and counts its calls."""

    def __init__(self, before: Callable[[int], None] | None = None) -> None:
        self.calls = 0
        self.before = before

    def __call__(self, worktree: Path) -> list[str]:
        self.calls += 1
        if self.before is not None:
            self.before(self.calls)
        path = worktree / DEPLOYMENT
        text = path.read_text()
        updated = text.replace(OLD_IMAGE, NEW_IMAGE)
        if updated == text:
            return []
        path.write_text(updated)
        return [DEPLOYMENT]


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture(params=["file", "ssh"])
def remote(request: pytest.FixtureRequest) -> tuple[BareRepo, GitTarget]:
    """The seeded bare repo and a writable target for it, over file:// and over ssh:// (RW key)."""
    if request.param == "file":
        repo: BareRepo = request.getfixturevalue("bare_repo")
        return repo, GitTarget(repo.url, BRANCH)
    served: SshRepo = request.getfixturevalue("ssh_repo")
    return served.repo, GitTarget(served.url, BRANCH, ssh_command=served.rw_ssh_command)


def run(target: GitTarget, edit: Callable[[Path], list[str]], workdir: Path, *,
        retries: int = 4, committer: CommitAuthor | None = None,
        sleep: Callable[[float], None] | None = None) -> CommitResult:
    request = CommitRequest(target, BOT, MESSAGE, committer=committer, retries=retries)
    return commit_and_push(request, edit, workdir=workdir, sleep=sleep or Sleeps())


def commit_fields(repo: BareRepo, ref: str = BRANCH) -> list[str]:
    """Author name and email, committer name and email, and the raw message of `ref`."""
    out = git("--git-dir", str(repo.path), "log", "-1", "--format=%an%x00%ae%x00%cn%x00%ce", ref).stdout
    raw = git("--git-dir", str(repo.path), "cat-file", "commit", ref).stdout
    return [*out.strip().split("\0"), raw.split("\n\n", 1)[1]]


def parent(repo: BareRepo, ref: str) -> str:
    return repo.rev(f"{ref}^")


def branches(repo: BareRepo) -> set[str]:
    out = git("--git-dir", str(repo.path), "for-each-ref", "--format=%(refname:short)", "refs/heads").stdout
    return set(out.split())


# Commit and push -------------------------------------------------------------------------------


def test_a_commit_lands_with_author_message_and_only_the_edit(
    remote: tuple[BareRepo, GitTarget], tmp_path: Path
) -> None:
    repo, target = remote
    before = repo.rev()
    edit = Recorder()
    result = run(target, edit, tmp_path / "work")
    assert result.status is CommitStatus.PUSHED, result.error
    assert (result.commit, result.base, result.attempts, result.forced) == (repo.rev(), before, 1, False)
    assert result.summary.startswith(f"pushed commit {repo.rev()[:7]} to branch main")
    assert parent(repo, BRANCH) == before
    assert commit_fields(repo) == [BOT.name, BOT.email, BOT.name, BOT.email, MESSAGE]
    assert NEW_IMAGE in repo.read(DEPLOYMENT)
    changed = git("--git-dir", str(repo.path), "diff", "--name-only", before, repo.rev()).stdout.split()
    assert changed == [DEPLOYMENT]


def test_the_committer_is_used_when_given(bare_repo: BareRepo, tmp_path: Path) -> None:
    result = run(GitTarget(bare_repo.url, BRANCH), Recorder(), tmp_path / "work", committer=RELEASER)
    assert result.status is CommitStatus.PUSHED, result.error
    assert commit_fields(bare_repo)[:4] == [BOT.name, BOT.email, RELEASER.name, RELEASER.email]


def test_the_commit_carries_the_given_date_over_an_inherited_one(
    bare_repo: BareRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_AUTHOR_DATE", "2001-01-01T00:00:00+00:00")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2001-01-01T00:00:00+00:00")
    planned = datetime(2025, 11, 4, 9, 25, 30, tzinfo=timezone(timedelta(hours=1)))
    request = CommitRequest(GitTarget(bare_repo.url, BRANCH), BOT, MESSAGE, date=planned)
    result = commit_and_push(request, Recorder(), workdir=tmp_path / "work", sleep=Sleeps())
    assert result.status is CommitStatus.PUSHED, result.error
    dates = git("--git-dir", str(bare_repo.path), "log", "-1", "--format=%aI %cI", BRANCH).stdout.split()
    assert dates == ["2025-11-04T09:25:30+01:00"] * 2


def test_a_naive_commit_date_is_a_programming_error(bare_repo: BareRepo) -> None:
    with pytest.raises(ValueError, match="must carry a timezone"):
        CommitRequest(GitTarget(bare_repo.url, BRANCH), BOT, MESSAGE, date=datetime(2025, 11, 4, 9, 25))


def test_no_change_means_no_commit(bare_repo: BareRepo, tmp_path: Path) -> None:
    target = GitTarget(bare_repo.url, BRANCH)
    assert run(target, Recorder(), tmp_path / "work").status is CommitStatus.PUSHED
    head = bare_repo.rev()
    again = run(target, Recorder(), tmp_path / "work")
    assert (again.status, again.commit, again.base, again.attempts) == (CommitStatus.UNCHANGED, None, head, 1)
    assert bare_repo.rev() == head


def test_a_reported_file_with_the_same_content_is_no_change(bare_repo: BareRepo, tmp_path: Path) -> None:
    def rewrite_identically(worktree: Path) -> list[str]:
        path = worktree / DEPLOYMENT
        path.write_text(path.read_text())
        return [DEPLOYMENT]

    head = bare_repo.rev()
    result = run(GitTarget(bare_repo.url, BRANCH), rewrite_identically, tmp_path / "work")
    assert result.status is CommitStatus.UNCHANGED
    assert bare_repo.rev() == head


def test_unreported_edits_are_neither_committed_nor_kept(bare_repo: BareRepo, tmp_path: Path) -> None:
    def edit_two_report_one(worktree: Path) -> list[str]:
        (worktree / "stray.txt").write_text("not reported\n")
        (worktree / "README.md").write_text("clobbered\n")
        return Recorder()(worktree)

    target = GitTarget(bare_repo.url, BRANCH)
    assert run(target, edit_two_report_one, tmp_path / "work").status is CommitStatus.PUSHED
    files = git("--git-dir", str(bare_repo.path), "ls-tree", "-r", "--name-only", BRANCH).stdout.split()
    assert "stray.txt" not in files and bare_repo.read("README.md") != "clobbered\n"
    seen: list[bool] = []

    def look(worktree: Path) -> list[str]:
        seen.append((worktree / "stray.txt").exists())
        return []

    assert run(target, look, tmp_path / "work").status is CommitStatus.UNCHANGED
    assert seen == [False]


# Races ---------------------------------------------------------------------------------------------


def test_a_lost_race_is_retried_on_the_new_head(remote: tuple[BareRepo, GitTarget], tmp_path: Path) -> None:
    repo, target = remote
    theirs: list[str] = []

    def push_theirs_first_time(call: int) -> None:
        if call == 1:
            theirs.append(push_commit(repo.url, tmp_path / "theirs", {"README.md": "theirs\n"}, "Theirs"))

    edit, sleeps = Recorder(push_theirs_first_time), Sleeps()
    result = run(target, edit, tmp_path / "work", sleep=sleeps)
    assert result.status is CommitStatus.PUSHED, result.error
    assert (edit.calls, result.attempts, sleeps.delays) == (2, 2, [1.0])
    assert result.base == theirs[0] and parent(repo, BRANCH) == theirs[0]
    assert repo.subjects()[:3] == ["Update podinfo to 6.6.0", "Theirs", "Initial commit"]
    assert repo.read("README.md") == "theirs\n" and NEW_IMAGE in repo.read(DEPLOYMENT)


def test_a_race_against_the_same_change_ends_unchanged(bare_repo: BareRepo, tmp_path: Path) -> None:
    def they_apply_it_first(call: int) -> None:
        if call == 1:
            text = bare_repo.read(DEPLOYMENT).replace(OLD_IMAGE, NEW_IMAGE)
            push_commit(bare_repo.url, tmp_path / "theirs", {DEPLOYMENT: text}, "Same change")

    result = run(GitTarget(bare_repo.url, BRANCH), Recorder(they_apply_it_first), tmp_path / "work")
    assert (result.status, result.attempts, result.base) == (CommitStatus.UNCHANGED, 2, bare_repo.rev())
    assert bare_repo.subjects() == ["Same change", "Initial commit"]


def test_a_pusher_that_always_wins_exhausts_the_retries(bare_repo: BareRepo, tmp_path: Path) -> None:
    def push_theirs(call: int) -> None:
        files = {"README.md": f"theirs {call}\n"}
        push_commit(bare_repo.url, tmp_path / f"theirs{call}", files, f"Theirs {call}")

    edit, sleeps = Recorder(push_theirs), Sleeps()
    work = tmp_path / "work"
    result = run(GitTarget(bare_repo.url, BRANCH), edit, work, retries=3, sleep=sleeps)
    assert result.status is CommitStatus.FAILED and result.commit is None
    assert result.error == (
        f"push to {bare_repo.url} branch main rejected 4 times: someone keeps pushing; giving up"
    )
    assert (edit.calls, result.attempts, sleeps.delays) == (4, 4, [1.0, 2.0, 4.0])
    assert bare_repo.subjects() == ["Theirs 4", "Theirs 3", "Theirs 2", "Theirs 1", "Initial commit"]
    assert OLD_IMAGE in bare_repo.read(DEPLOYMENT)
    assert list((work / "git").iterdir()) == []  # the local clone, with our commit, is gone


def test_backoff_doubles_up_to_its_ceiling(bare_repo: BareRepo, tmp_path: Path) -> None:
    def push_theirs(call: int) -> None:
        push_commit(bare_repo.url, tmp_path / f"theirs{call}", {"n.txt": f"{call}\n"}, f"Theirs {call}")

    sleeps = Sleeps()
    target = GitTarget(bare_repo.url, BRANCH)
    result = run(target, Recorder(push_theirs), tmp_path / "work", retries=6, sleep=sleeps)
    assert result.status is CommitStatus.FAILED
    assert sleeps.delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]


# Push branches ---------------------------------------------------------------------------------


def test_a_new_push_branch_is_created_from_the_checkout_head_and_force_pushed(
    remote: tuple[BareRepo, GitTarget], tmp_path: Path
) -> None:
    repo, target = remote
    main = repo.rev()
    result = run(GitTarget(target.url, BRANCH, "image-updates", ssh_command=target.ssh_command),
                 Recorder(), tmp_path / "work")
    assert result.status is CommitStatus.PUSHED, result.error
    assert result.forced and result.summary.startswith("force-pushed commit")
    assert (result.branch, result.base) == ("image-updates", main)
    assert branches(repo) == {"main", "image-updates"}
    assert parent(repo, "image-updates") == main and repo.rev() == main


def push_on_branch(repo: BareRepo, workdir: Path, branch: str, files: dict[str, str], message: str) -> str:
    """Commit on top of the remote `branch` from a fresh clone, as another writer would."""
    other = clone(repo.url, workdir)
    other.git("checkout", "--quiet", "-B", branch, f"origin/{branch}")
    sha = other.commit(files, message)
    other.push(branch)
    return sha


def seed_push_branch(repo: BareRepo, workdir: Path) -> str:
    """Create `image-updates` with one commit of pending work on top of main."""
    return push_commit(repo.url, workdir, {"pending.txt": "x\n"}, "Pending work", branch="image-updates")


def test_an_existing_push_branch_is_the_base(bare_repo: BareRepo, tmp_path: Path) -> None:
    seed_push_branch(bare_repo, tmp_path / "seed")
    pending = bare_repo.rev("image-updates")
    target = GitTarget(bare_repo.url, BRANCH, "image-updates")
    result = run(target, Recorder(), tmp_path / "work")
    assert result.status is CommitStatus.PUSHED and result.forced and result.base == pending
    assert bare_repo.subjects("image-updates")[:2] == ["Update podinfo to 6.6.0", "Pending work"]
    again = run(target, Recorder(), tmp_path / "work")
    assert again.status is CommitStatus.UNCHANGED and again.base == bare_repo.rev("image-updates")


def test_the_force_push_never_drops_a_commit_pushed_to_the_branch_meanwhile(
    bare_repo: BareRepo, tmp_path: Path
) -> None:
    seed_push_branch(bare_repo, tmp_path / "seed")

    def push_to_the_push_branch(call: int) -> None:
        if call == 1:
            push_on_branch(bare_repo, tmp_path / "theirs", "image-updates", {"late.txt": "y\n"}, "Late work")

    edit = Recorder(push_to_the_push_branch)
    result = run(GitTarget(bare_repo.url, BRANCH, "image-updates"), edit, tmp_path / "work")
    assert result.status is CommitStatus.PUSHED and result.attempts == 2 and edit.calls == 2
    assert bare_repo.subjects("image-updates")[:3] == ["Update podinfo to 6.6.0", "Late work", "Pending work"]


# Failures a user can cause ---------------------------------------------------------------------


def test_the_read_only_deploy_key_cannot_push(ssh_repo: SshRepo, tmp_path: Path) -> None:
    head = ssh_repo.repo.rev()
    target = GitTarget(ssh_repo.url, BRANCH, ssh_command=ssh_repo.ro_ssh_command)
    work = tmp_path / "work"
    result = run(target, Recorder(), work)
    assert result.status is CommitStatus.FAILED and result.error is not None
    denied = f"cannot push to {ssh_repo.url} branch main: the remote denied write access"
    assert result.error.startswith(denied)
    assert "read-only deploy key" in result.error
    assert ssh_repo.ro_ssh_command not in result.error and "deploy_ro" not in result.error
    assert "Traceback" not in result.error
    assert ssh_repo.repo.rev() == head
    assert list((work / "git").iterdir()) == []


def test_the_ssh_command_and_key_path_never_reach_the_error(
    ssh_repo: SshRepo, sshd: SshServer, tmp_path: Path
) -> None:
    missing_key = tmp_path / "keys" / "deploy_secret_key"
    command = ssh_command(missing_key, sshd.known_hosts)
    result = run(GitTarget(ssh_repo.url, BRANCH, ssh_command=command), Recorder(), tmp_path / "work")
    assert result.status is CommitStatus.FAILED and result.error is not None
    assert result.error.startswith(f"cannot reach {ssh_repo.url}: ") and "***" in result.error
    assert "deploy_secret_key" not in result.error


def test_a_missing_checkout_branch_is_named(bare_repo: BareRepo, tmp_path: Path) -> None:
    result = run(GitTarget(bare_repo.url, "production"), Recorder(), tmp_path / "work")
    assert result.status is CommitStatus.FAILED
    assert result.error == f"branch production does not exist in {bare_repo.url}"


def test_an_unreachable_remote_fails_with_its_url(tmp_path: Path) -> None:
    url = (tmp_path / "nowhere.git").as_uri()
    result = run(GitTarget(url, BRANCH), Recorder(), tmp_path / "work")
    assert result.status is CommitStatus.FAILED and result.error is not None
    assert result.error.startswith(f"cannot reach {url}: ")


@pytest.mark.parametrize("branch", ["a..b", "-rf", "with space", "x~1"])
def test_an_invalid_branch_name_is_refused(bare_repo: BareRepo, tmp_path: Path, branch: str) -> None:
    result = run(GitTarget(bare_repo.url, BRANCH, branch), Recorder(), tmp_path / "work")
    assert result.status is CommitStatus.FAILED and "is not a valid branch name" in (result.error or "")


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", ".git/config", ""])
def test_an_edit_reporting_a_path_outside_the_worktree_fails(
    bare_repo: BareRepo, tmp_path: Path, path: str
) -> None:
    head = bare_repo.rev()
    result = run(GitTarget(bare_repo.url, BRANCH), lambda _worktree: [path], tmp_path / "work")
    assert result.status is CommitStatus.FAILED
    assert result.error == f"the edit reported {path!r}, which is not a file of the worktree"
    assert bare_repo.rev() == head


def test_a_gitward_error_from_the_edit_is_a_failed_result(bare_repo: BareRepo, tmp_path: Path) -> None:
    def broken(_worktree: Path) -> list[str]:
        raise GitwardError("deployment.yaml:20:18: marker names an unknown policy")

    result = run(GitTarget(bare_repo.url, BRANCH), broken, tmp_path / "work")
    assert result.status is CommitStatus.FAILED
    assert result.error == (
        f"editing {bare_repo.url} branch main failed: deployment.yaml:20:18: marker names an unknown policy"
    )


def test_an_empty_author_name_is_a_failed_result(bare_repo: BareRepo, tmp_path: Path) -> None:
    nameless = CommitAuthor("", "bot@example.invalid")
    request = CommitRequest(GitTarget(bare_repo.url, BRANCH), nameless, MESSAGE)
    result = commit_and_push(request, Recorder(), workdir=tmp_path / "work", sleep=Sleeps())
    assert result.status is CommitStatus.FAILED and result.error is not None
    assert result.error.startswith("cannot commit: ") and "empty ident name" in result.error


# Environment, cache and secrets ----------------------------------------------------------------


def test_inherited_git_variables_do_not_leak_into_git(
    bare_repo: BareRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoy = tmp_path / "decoy"
    clone(bare_repo.url, decoy)
    for name, value in {
        "GIT_DIR": str(decoy / ".git"),
        "GIT_WORK_TREE": str(decoy),
        "GIT_INDEX_FILE": str(decoy / ".git" / "index"),
        "GIT_AUTHOR_NAME": "Intruder",
        "GIT_COMMITTER_EMAIL": "intruder@example.invalid",
        "GIT_SSH_COMMAND": "false",
        "GIT_CONFIG_PARAMETERS": "'user.name'='Intruder'",
    }.items():
        monkeypatch.setenv(name, value)
    result = run(GitTarget(bare_repo.url, BRANCH), Recorder(), tmp_path / "work")
    monkeypatch.undo()
    assert result.status is CommitStatus.PUSHED, result.error
    assert commit_fields(bare_repo)[:4] == [BOT.name, BOT.email, BOT.name, BOT.email]
    assert clone(bare_repo.url, tmp_path / "check").rev() == result.commit
    decoy_head = git("rev-parse", "HEAD", cwd=decoy).stdout.strip()
    assert decoy_head == bare_repo.rev(f"{BRANCH}~1") and not git("status", "--porcelain", cwd=decoy).stdout


def test_the_cache_is_reused_and_a_broken_one_is_rebuilt(bare_repo: BareRepo, tmp_path: Path) -> None:
    work = tmp_path / "work"
    target = GitTarget(bare_repo.url, BRANCH)
    assert run(target, Recorder(), work).status is CommitStatus.PUSHED
    (cache,) = (work / "git").iterdir()
    (cache / ".git" / "HEAD").write_text("garbage\n")

    def add_file(worktree: Path) -> list[str]:
        (worktree / "added.txt").write_text("added\n")
        return ["added.txt"]

    result = run(target, add_file, work)
    assert result.status is CommitStatus.PUSHED, result.error
    assert bare_repo.subjects()[:2] == ["Update podinfo to 6.6.0", "Update podinfo to 6.6.0"]
    assert bare_repo.read("added.txt") == "added\n"


def test_lock_files_a_killed_git_left_are_recovered(bare_repo: BareRepo, tmp_path: Path) -> None:
    """A git killed mid-commit or mid-fetch leaves `index.lock`, `HEAD.lock`, `shallow.lock` and
    ref locks behind; each would fail every later commit. The next one (under the branch's lease,
    so no live git owns them) removes them and pushes."""
    work = tmp_path / "work"
    target = GitTarget(bare_repo.url, BRANCH)
    assert run(target, Recorder(), work).status is CommitStatus.PUSHED
    (cache,) = (work / "git").iterdir()
    dot_git = cache / ".git"
    left = [dot_git / "index.lock", dot_git / "HEAD.lock", dot_git / "shallow.lock",
            dot_git / "refs" / "heads" / f"{BRANCH}.lock",
            dot_git / "refs" / "remotes" / "origin" / f"{BRANCH}.lock"]
    for lock in left:
        lock.parent.mkdir(parents=True, exist_ok=True)
        lock.write_text("")

    def add_file(worktree: Path) -> list[str]:
        (worktree / "added.txt").write_text("added\n")
        return ["added.txt"]

    result = run(target, add_file, work)
    assert result.status is CommitStatus.PUSHED, result.error
    assert [*(work / "git").iterdir()] == [cache]  # recovered, not rebuilt
    assert bare_repo.read("added.txt") == "added\n"
    assert not [lock for lock in left if lock.exists()]


class AuthRecorder(BaseHTTPRequestHandler):
    """A fake git HTTP server: records the Authorization header, then refuses with 403."""

    seen: list[str | None] = []

    def do_GET(self) -> None:
        AuthRecorder.seen.append(self.headers.get("Authorization"))
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def http_remote() -> Iterator[str]:
    AuthRecorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), AuthRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/o/homelab.git"
    server.shutdown()
    server.server_close()


def test_secrets_never_reach_errors_logs_or_disk(
    http_remote: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = http_remote.replace("http://", f"http://deployer:{FAKE_PASSWORD}@")
    target = GitTarget(url, BRANCH, https_token=FAKE_TOKEN)
    assert FAKE_TOKEN not in repr(target)
    work = tmp_path / "work"
    with caplog.at_level(logging.DEBUG, logger="engine.act.git"):
        result = run(target, Recorder(), work)
    assert result.status is CommitStatus.FAILED and result.error is not None
    assert result.error.startswith(f"cannot reach {http_remote}: ") and "403" in result.error
    basic = base64.b64encode(f"deployer:{FAKE_TOKEN}".encode()).decode()
    assert AuthRecorder.seen and set(AuthRecorder.seen) == {f"Basic {basic}"}
    for text in (result.error, caplog.text):
        for secret in (FAKE_TOKEN, FAKE_PASSWORD, basic):
            assert secret not in text
    for path in work.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert FAKE_TOKEN.encode() not in content and FAKE_PASSWORD.encode() not in content


def test_a_bare_token_is_sent_as_x_access_token(http_remote: str, tmp_path: Path) -> None:
    result = run(GitTarget(http_remote, BRANCH, https_token=FAKE_TOKEN), Recorder(), tmp_path / "work")
    assert result.status is CommitStatus.FAILED and FAKE_TOKEN not in (result.error or "")
    basic = base64.b64encode(f"x-access-token:{FAKE_TOKEN}".encode()).decode()
    assert AuthRecorder.seen[0] == f"Basic {basic}"


def test_the_ssh_command_is_not_in_the_repr(ssh_repo: SshRepo) -> None:
    target = GitTarget(ssh_repo.url, BRANCH, ssh_command=ssh_repo.rw_ssh_command)
    assert ssh_repo.rw_ssh_command not in repr(target) and target.push_branch == BRANCH


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x-access-token:ghp_secret@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://ghp_secret@github.com/o/r.git", "https://github.com/o/r.git"),
        ("ssh://git:pw@github.com:2222/o/r", "ssh://git@github.com:2222/o/r"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("file:///srv/git/r.git", "file:///srv/git/r.git"),
    ],
)
def test_public_url_drops_credentials(url: str, expected: str) -> None:
    assert public_url(url) == expected


def test_a_negative_retry_budget_is_a_programming_error(bare_repo: BareRepo) -> None:
    with pytest.raises(ValueError, match="retries must be 0 or more"):
        CommitRequest(GitTarget(bare_repo.url, BRANCH), BOT, MESSAGE, retries=-1)
