"""The remote and branch of a checkout, read with real git: what gitward infers a bootstrap
source from when the repository does not define flux-system."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.observe.git import Origin, checkout_origin


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A repository on branch `main`, with no commit yet and no remote."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    return root


def commit(root: Path) -> None:
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
        "--allow-empty", "-m", "x")


def test_a_branch_without_upstream_takes_origin_and_an_scp_url_becomes_ssh(checkout: Path) -> None:
    git(checkout, "remote", "add", "origin", "git@github.com:owner/repo")
    commit(checkout)
    (checkout / "cluster").mkdir()
    assert checkout_origin(checkout / "cluster") == Origin("ssh://git@github.com/owner/repo", "main")


def test_the_branchs_upstream_remote_wins_over_origin(checkout: Path) -> None:
    git(checkout, "remote", "add", "origin", "https://example.com/fork.git")
    git(checkout, "remote", "add", "up.stream", "https://example.com/upstream.git")
    commit(checkout)
    git(checkout, "checkout", "-q", "-b", "feature.x")
    git(checkout, "config", "branch.feature.x.remote", "up.stream")
    assert checkout_origin(checkout) == Origin("https://example.com/upstream.git", "feature.x")


def test_a_branch_with_no_commit_yet_is_named(checkout: Path) -> None:
    git(checkout, "remote", "add", "origin", "https://example.com/repo.git")
    assert checkout_origin(checkout) == Origin("https://example.com/repo.git", "main")


def test_a_detached_head_has_no_branch_and_credentials_are_dropped(checkout: Path) -> None:
    git(checkout, "remote", "add", "origin", "https://user:secret@example.com/repo.git")
    commit(checkout)
    git(checkout, "checkout", "-q", "--detach")
    origin = checkout_origin(checkout)
    assert origin is not None and origin.branch == ""
    assert "secret" not in origin.url and origin.url.endswith("example.com/repo.git")


def test_no_remote_no_checkout_and_the_git_directory_give_none(checkout: Path, tmp_path: Path) -> None:
    commit(checkout)
    assert checkout_origin(checkout) is None
    git(checkout, "remote", "add", "origin", "https://example.com/repo.git")
    assert checkout_origin(checkout / ".git") is None
    outside = tmp_path / "plain"
    outside.mkdir()
    assert checkout_origin(outside) is None
    assert checkout_origin(tmp_path / "missing") is None
