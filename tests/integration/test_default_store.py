"""Without `--state`, nothing lands in the user's checkout: inside a git work tree the store is
in its git directory (a linked worktree's own), elsewhere `./state.db`; an old `./state.db` in a
checkout is still used. Real git, the real CLI in a subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT, require
from tests.integration.git_env import git
from tests.integration.homelab_env import environ

TAGS = "6.5.1\n6.6.0\n"


def gitward(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**environ(), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def checkout(tmp_path: Path) -> Path:
    require(shutil.which("git") is not None, "git is not installed (apt-get install git)")
    repo = tmp_path / "homelab"
    shutil.copytree(EXAMPLES / "homelab", repo)
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("-c", "user.name=Alex", "-c", "user.email=alex@example.com", "commit", "-q", "-m", "seed",
        cwd=repo)
    (repo / "tags.txt").write_text(TAGS)
    git("add", "tags.txt", cwd=repo)
    git("-c", "user.name=Alex", "-c", "user.email=alex@example.com", "commit", "-q", "-m", "tags",
        cwd=repo)
    return repo


def import_and_list(cwd: Path, repo: Path) -> str:
    done = gitward(cwd, "images", "import", "podinfo/podinfo", "--tags", str(repo / "tags.txt"),
                   "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    listed = gitward(cwd, "images", "tags", "podinfo/podinfo", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_inside_a_work_tree_the_store_is_in_the_git_directory(tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    below = repo / "cluster" / "apps"

    listed = import_and_list(below, repo)  # from a sub-directory of the checkout

    assert '"tag": "6.6.0"' in listed
    assert (repo / ".git" / "gitward" / "state.db").is_file()
    assert git("status", "--porcelain", "--ignored", cwd=repo).stdout == ""
    assert not [p for p in repo.rglob("state.db*") if ".git" not in p.relative_to(repo).parts]


def test_a_linked_worktree_has_a_store_of_its_own(tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    other = tmp_path / "other"
    git("worktree", "add", "-q", "-b", "other", str(other), cwd=repo)

    import_and_list(other, other)

    stores = sorted(p.relative_to(repo / ".git") for p in (repo / ".git").rglob("state.db"))
    assert stores == [Path("worktrees/other/gitward/state.db")]
    assert git("status", "--porcelain", "--ignored", cwd=other).stdout == ""


def test_outside_a_work_tree_and_an_old_state_db_stay_where_they_are(tmp_path: Path) -> None:
    repo = checkout(tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    import_and_list(plain, repo)
    assert (plain / "state.db").is_file()

    shutil.move(plain / "state.db", repo / "state.db")  # one an older gitward made in the checkout
    listed = gitward(repo, "images", "tags", "podinfo/podinfo", "-o", "json")
    assert listed.returncode == 0 and '"tag": "6.6.0"' in listed.stdout
    assert not (repo / ".git" / "gitward").exists()


@pytest.mark.parametrize("flag", ["--state", "GITWARD_STATE"])
def test_an_explicit_store_wins(tmp_path: Path, flag: str) -> None:
    repo = checkout(tmp_path)
    chosen = tmp_path / "chosen.db"
    args = ["images", "import", "podinfo/podinfo", "--tags", str(repo / "tags.txt"), "--repo", str(repo)]
    if flag == "--state":
        done = gitward(repo, "--state", str(chosen), *args)
    else:
        env = {**environ(), "PYTHONPATH": str(ROOT), "GITWARD_STATE": str(chosen)}
        done = subprocess.run([sys.executable, "-m", "engine", *args], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert chosen.is_file() and not (repo / ".git" / "gitward").exists()
