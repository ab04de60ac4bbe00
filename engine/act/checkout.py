"""Committing and pushing in a local checkout (`gitward images update [--push]`).

The user's own clone: gitward stages only the files it rewrote, commits with the automation's
author, and pushes the current branch's HEAD. A rejected push (someone pushed meanwhile) is
fetched and rebased, then retried a bounded number of times; a rebase that conflicts is
aborted (`RebaseConflict`), and the caller takes its commit back (`drop_commit`) to re-plan on
the new head, as the executor does (engine/act/git.py). Nothing is ever force-pushed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import git

from engine.act.git import lost_race
from engine.errors import GitwardError
from engine.redact import scrub
from engine.model import CommitAuthor


class CheckoutError(GitwardError):
    """A git operation in the local checkout failed (exit 1); the message is redacted."""


class RebaseConflict(CheckoutError):
    """Someone pushed a change to the lines this commit changes: rebasing onto it conflicted
    (and was aborted, the commit left as it was). The caller re-plans on the new head."""


def redact(text: str) -> str:
    """git's output on one line, without credentials in any URL and without its `hint:`
    paragraphs (advice for a person at a git prompt, not for a gitward user)."""
    lines = [line.strip() for line in text.splitlines()]
    return scrub("; ".join(line for line in lines if line and not line.startswith("hint:")))


def _repo(root: Path) -> git.Repo:
    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise CheckoutError(f"{root} is not inside a git checkout") from None


def commit_files(root: Path, paths: list[str], author: CommitAuthor, message: str) -> str:
    """Commit exactly `paths` (relative to `root`); returns the new commit's sha."""
    repo = _repo(root)
    actor = git.Actor(author.name or author.email, author.email)
    top = Path(repo.working_tree_dir or root)
    relative = [str((root / p).resolve().relative_to(top.resolve())) for p in paths]
    try:
        repo.index.add(relative)
        commit = repo.index.commit(message, author=actor, committer=actor)
    except (git.GitCommandError, OSError) as err:
        raise CheckoutError(f"cannot commit in {root}: {redact(str(err))}") from None
    return commit.hexsha


def push_branch(root: Path, branch: str, *, retries: int = 3,
                sleep: Callable[[float], None] = time.sleep) -> int:
    """Push HEAD to `origin/<branch>`; rebase and retry when rejected. Returns the attempts."""
    repo = _repo(root)
    for attempt in range(1, retries + 2):
        try:
            repo.git.push("origin", f"HEAD:refs/heads/{branch}")
            return attempt
        except git.GitCommandError as err:
            text = f"{err.stderr or ''}{err.stdout or ''}"
            if not any(lost_race(line) for line in text.splitlines()) or attempt > retries:
                raise CheckoutError(f"push to origin branch {branch} failed: "
                                    f"{redact(text.strip()) or 'git push failed'}") from None
        sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
        failed = _pull_rebase(repo, branch)
        if failed:
            raise RebaseConflict(f"someone pushed to {branch} meanwhile and rebasing onto it "
                                 f"failed: {failed}; the commit is kept locally")
    raise CheckoutError(f"push to origin branch {branch} was rejected {retries + 1} times")


def drop_commit(root: Path, sha: str, branch: str) -> None:
    """Take back gitward's own commit `sha` (still HEAD) and bring the checkout up to
    `origin/<branch>`, the user's own commits rebased onto it and their uncommitted changes
    kept (`--autostash`): the re-plan after a conflicting push starts from the new head."""
    repo = _repo(root)
    if repo.head.commit.hexsha != sha:
        raise CheckoutError(f"HEAD is no longer gitward's commit {sha[:7]}: the checkout changed "
                            "meanwhile; the commit is kept")
    try:
        repo.git.reset("--keep", f"{sha}^")
    except git.GitCommandError as err:
        raise CheckoutError(f"cannot take back commit {sha[:7]}: {redact(str(err.stderr))}") from None
    failed = _pull_rebase(repo, branch, "--autostash")
    if failed:
        raise CheckoutError(f"cannot bring the checkout up to origin branch {branch}: {failed}")


def _pull_rebase(repo: git.Repo, branch: str, *options: str) -> str:
    """Pull `origin/<branch>` rebasing onto it; a rebase that fails is aborted, the checkout
    left as it was. Returns git's reason for the failure, "" on success."""
    try:
        repo.git.pull("--rebase", *options, "origin", branch)
    except git.GitCommandError as err:
        try:
            repo.git.rebase("--abort")
        except git.GitCommandError:
            pass
        return redact(str(err.stderr or err)).strip() or "git pull failed"
    return ""


def pushed_commit(root: Path, message: str) -> str | None:
    """The commit a push just carried: HEAD, rebased maybe (a new sha), when it is still the
    commit with `message`; None when the rebase dropped it because the branch already held the
    same change (someone made it by hand), so nothing of gitward's was pushed."""
    head = _repo(root).head.commit
    return head.hexsha if head.message == message else None
