"""The git remotes the other tests stand on: real git over file:// and over ssh:// with two keys.

If these fail, a failing observe/act test says nothing about gitward. They pin down what the
fixtures promise: the seed, a clean git environment, that the read-only key really cannot push,
that only exported repositories and git services are served, and how a lost push race looks.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
from pathlib import Path

import git as gitpython
import pytest

from tests.conftest import EXAMPLES
from tests.integration.git_env import (
    BareRepo,
    GitEnvError,
    SshRepo,
    SshServer,
    WorkClone,
    clone,
    git,
    git_environ,
    keygen,
    make_bare_repo,
    parse_request,
    push_commit,
    ssh_command,
)

HOMELAB = EXAMPLES / "homelab"


def tree_files(root: Path) -> dict[str, str]:
    """Every file under `root` outside `.git/`, by relative path."""
    files = (p for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.relative_to(root).parts)
    return {p.relative_to(root).as_posix(): p.read_text() for p in files}


def ssh(server: SshServer, command: str, remote: str) -> subprocess.CompletedProcess[str]:
    """Run `remote` on the test sshd with a GIT_SSH_COMMAND-style `command`, as git would."""
    argv = [*shlex.split(command), "-p", str(server.port), f"{server.user}@127.0.0.1", remote]
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=git_environ())


# The pure part of the gate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_line", "expected"),
    [
        ("git-upload-pack '/srv/a.git'", ("upload-pack", "/srv/a.git")),
        ("git-receive-pack '/srv/with space.git'", ("receive-pack", "/srv/with space.git")),
        ("git upload-pack '/srv/a.git'", ("upload-pack", "/srv/a.git")),
        ("git-upload-archive '/srv/a.git'", ("upload-archive", "/srv/a.git")),
        ("id", None),
        ("git-upload-pack '/srv/a.git' extra", None),
        ("git-upload-pack '/srv/unterminated", None),
        ("", None),
    ],
)
def test_parse_request(request_line: str, expected: tuple[str, str] | None) -> None:
    assert parse_request(request_line) == expected


# file:// ------------------------------------------------------------------------------------------


def test_bare_repo_holds_the_seed_in_one_commit_on_main(bare_repo: BareRepo) -> None:
    assert git("--git-dir", str(bare_repo.path), "rev-parse", "--is-bare-repository").stdout.strip() == "true"
    assert git("--git-dir", str(bare_repo.path), "symbolic-ref", "HEAD").stdout.strip() == "refs/heads/main"
    assert bare_repo.subjects() == ["Initial commit"]
    listed = git("--git-dir", str(bare_repo.path), "ls-tree", "-r", "--name-only", "main").stdout.split()
    assert sorted(listed) == sorted(tree_files(HOMELAB))
    assert not (bare_repo.path / "seed.index").exists()


def test_clone_over_file_url(bare_repo: BareRepo, tmp_path: Path) -> None:
    work = clone(bare_repo.url, tmp_path / "work")
    assert bare_repo.url.startswith("file:///")
    assert work.rev() == bare_repo.rev()
    assert tree_files(work.path) == tree_files(HOMELAB)


def test_inherited_git_variables_and_global_config_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = From Global\n[init]\n\tdefaultBranch = trunk\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "From Environment")
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "stray.index"))
    repo = make_bare_repo(tmp_path / "repo.git", HOMELAB)
    author = git("--git-dir", str(repo.path), "log", "-1", "--format=%an <%ae>", "main").stdout.strip()
    assert author == "gitward tests <tests@gitward.invalid>"
    assert not (tmp_path / "elsewhere").exists()
    assert not (tmp_path / "stray.index").exists()


def test_seeding_from_a_missing_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(GitEnvError, match="not a directory"):
        make_bare_repo(tmp_path / "repo.git", tmp_path / "absent")


# ssh:// -------------------------------------------------------------------------------------------


def test_url_names_user_loopback_port_and_absolute_path(ssh_repo: SshRepo, sshd: SshServer) -> None:
    assert ssh_repo.url == f"ssh://{sshd.user}@127.0.0.1:{sshd.port}{ssh_repo.repo.path.resolve()}"


def test_clone_over_ssh_with_the_read_only_key(ssh_repo: SshRepo, tmp_path: Path) -> None:
    work = clone(ssh_repo.url, tmp_path / "work", ssh_command=ssh_repo.ro_ssh_command)
    assert work.rev() == ssh_repo.repo.rev()
    assert (work.path / "cluster/system/flux-system/gotk-sync.yaml").read_text() == (
        HOMELAB / "cluster/system/flux-system/gotk-sync.yaml"
    ).read_text()


def test_gitpython_clones_over_ssh_with_the_ssh_command_in_its_env(ssh_repo: SshRepo, tmp_path: Path) -> None:
    repo = gitpython.Repo.clone_from(
        ssh_repo.url, tmp_path / "work", env=git_environ(ssh_repo.ro_ssh_command)
    )
    assert repo.head.commit.hexsha == ssh_repo.repo.rev()
    assert repo.active_branch.name == "main"


def test_push_with_the_read_only_key_is_refused(ssh_repo: SshRepo, tmp_path: Path) -> None:
    before = ssh_repo.repo.rev()
    work = clone(ssh_repo.url, tmp_path / "work", ssh_command=ssh_repo.ro_ssh_command)
    work.commit({"cluster/apps/new.yaml": "kind: ConfigMap\n"}, "Try with the deploy key")
    result = work.push(check=False)
    assert result.returncode != 0
    assert "this key may not run git-receive-pack" in result.stderr
    assert ssh_repo.repo.rev() == before


def test_push_with_the_read_write_key_lands_in_the_bare_repo(ssh_repo: SshRepo, tmp_path: Path) -> None:
    work = clone(ssh_repo.url, tmp_path / "work", ssh_command=ssh_repo.rw_ssh_command)
    sha = work.commit({"cluster/apps/new.yaml": "kind: ConfigMap\n"}, "Add a config map")
    work.push()
    assert ssh_repo.repo.log()[0] == sha
    assert ssh_repo.repo.subjects() == ["Add a config map", "Initial commit"]
    assert ssh_repo.repo.read("cluster/apps/new.yaml") == "kind: ConfigMap\n"


def test_a_repository_that_is_not_exported_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    hidden = make_bare_repo(tmp_path / "hidden.git", HOMELAB)
    result = git("clone", sshd.url(hidden.path), str(tmp_path / "work"), ssh_command=sshd.rw_ssh_command, check=False)
    assert result.returncode != 0
    assert "is not an exported repository" in result.stderr


@pytest.mark.parametrize("remote", ["id", "sh -c 'touch {marker}'", "git-upload-archive '/'", "touch {marker}"])
def test_the_keys_run_nothing_but_git_fetch_and_push(sshd: SshServer, remote: str, tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    result = ssh(sshd, sshd.rw_ssh_command, remote.format(marker=marker))
    assert result.returncode == 1
    assert "only git fetch and push are served" in result.stderr
    assert not marker.exists()


def test_an_unknown_key_is_refused_by_sshd(sshd: SshServer, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger", "not authorized")
    result = ssh(sshd, ssh_command(stranger, sshd.known_hosts), "git-upload-pack '/'")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_a_wrong_host_key_fails_verification(sshd: SshServer, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_host", "another host")
    algorithm, blob = other.with_suffix(".pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {algorithm} {blob}\n")
    result = ssh(sshd, ssh_command(sshd.ro_key, known_hosts), "git-upload-pack '/'")
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr


# Push races --------------------------------------------------------------------------------------


@pytest.fixture(params=["file", "ssh"])
def writable(request: pytest.FixtureRequest) -> tuple[BareRepo, str, str | None]:
    """The same race on both transports: (repo, url, ssh command or None)."""
    if request.param == "file":
        repo: BareRepo = request.getfixturevalue("bare_repo")
        return repo, repo.url, None
    served: SshRepo = request.getfixturevalue("ssh_repo")
    return served.repo, served.url, served.rw_ssh_command


def test_a_push_from_another_clone_makes_ours_non_fast_forward(
    writable: tuple[BareRepo, str, str | None], tmp_path: Path
) -> None:
    repo, url, command = writable
    ours = clone(url, tmp_path / "ours", ssh_command=command)
    mine = ours.commit({"cluster/apps/podinfo/tag.txt": "6.5.0\n"}, "Ours")
    theirs = push_commit(url, tmp_path / "theirs", {"README.md": "changed\n"}, "Theirs", ssh_command=command)

    unseen = ours.push(check=False)
    assert unseen.returncode != 0
    assert "[rejected] (fetch first)" in unseen.stdout
    assert repo.rev() == theirs
    assert mine not in repo.log()

    ours.git("fetch", "--quiet")
    behind = ours.push(check=False)
    assert behind.returncode != 0
    assert "[rejected] (non-fast-forward)" in behind.stdout
    assert repo.rev() == theirs


def test_two_clones_pushing_at_once_one_wins(writable: tuple[BareRepo, str, str | None], tmp_path: Path) -> None:
    repo, url, command = writable
    initial = repo.rev()
    clones = [clone(url, tmp_path / name, ssh_command=command) for name in ("a", "b")]
    shas = [c.commit({"race.txt": c.path.name}, f"From {c.path.name}") for c in clones]
    start = threading.Barrier(len(clones))
    results: dict[int, subprocess.CompletedProcess[str]] = {}

    def push(index: int, work: WorkClone) -> None:
        start.wait()
        results[index] = work.push(check=False)

    threads = [threading.Thread(target=push, args=(i, c)) for i, c in enumerate(clones)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, r in results.items() if r.returncode == 0]
    assert len(winners) == 1, {i: r.stdout + r.stderr for i, r in results.items()}
    assert repo.rev() == shas[winners[0]]
    assert repo.log() == [shas[winners[0]], initial]


def test_push_commit_can_target_another_branch(bare_repo: BareRepo, tmp_path: Path) -> None:
    sha = push_commit(bare_repo.url, tmp_path / "other", {"x.txt": "x\n"}, "On a branch", branch="updates")
    assert bare_repo.rev("updates") == sha
    assert bare_repo.subjects("main") == ["Initial commit"]


def test_ssh_environment_carries_no_inherited_git_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i /somewhere/else")
    monkeypatch.setenv("GIT_DIR", "/elsewhere")
    env = git_environ("ssh -i key")
    assert env["GIT_SSH_COMMAND"] == "ssh -i key"
    assert "GIT_DIR" not in env
    assert "GIT_SSH_COMMAND" not in git_environ()
    assert env["GIT_CONFIG_GLOBAL"] == os.devnull

