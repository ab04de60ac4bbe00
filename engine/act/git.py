"""The git executor: carry out a commit action (fetch, edit, commit, push) and survive push races.

`commit_and_push` works in a cache repository under `workdir`, one per (URL, push branch), that
it fetches into on every attempt; the edit itself is a callback, so this module knows nothing of
markers. A push that loses a race (someone pushed meanwhile) is retried on the new remote head
with exponential backoff: fetch, reset, edit again, commit, push. Every outcome a user or a
remote can cause comes back as a `CommitResult`; nothing is raised for it.

Git runs through GitPython with a clean environment: inherited `GIT_*` variables are removed (a
hook or a CI job cannot redirect git to another repository, identity or ssh command), system and
global git config are ignored, hooks never run and git never prompts. Credentials stay in the
process environment: the ssh command in `GIT_SSH_COMMAND`, an HTTPS token in an
`http.<url>.extraHeader` passed through `GIT_CONFIG_*`. The remote URL written to disk, every
message and every log line carry the URL without its userinfo.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from git import Repo
from git.cmd import Git
from git.exc import GitCommandNotFound, GitError, InvalidGitRepositoryError, NoSuchPathError

from engine.act.signing import Signer
from engine.redact import public_url, scrub
from engine.errors import GitwardError
from engine.model import CommitAuthor

log = logging.getLogger(__name__)

NETWORK_TIMEOUT = 120.0
"""Seconds a fetch, ls-remote or push may take before git is killed."""
LOCAL_TIMEOUT = 60.0
"""Seconds a local git command (checkout, add, commit) may take."""
BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
TOKEN_USER = "x-access-token"
"""The HTTP Basic user sent with a bare token (GitHub's convention; most forges ignore the user)."""

_REF_LOCKED = re.compile(r"\[remote rejected\].*(failed to update ref|cannot lock ref|failed to lock)")
"""A push the remote refused because another push held the branch's ref lock: the same race
as a non-fast-forward (fetch, re-plan, retry), not a refusal."""
def lost_race(line: str) -> bool:
    """Whether a line of `git push` output says the push lost a race with another writer:
    a non-fast-forward or stale lease (`[rejected]`), or the remote's ref lock (`_REF_LOCKED`)."""
    return "[rejected]" in line or _REF_LOCKED.search(line) is not None


_PERMISSION = re.compile(
    r"denied|read[- ]only|not allowed|may not|refused|403|401|authentication failed|"
    r"could not read from remote repository|terminal prompts disabled",
    re.IGNORECASE,
)
_BOILERPLATE = ("please make sure you have the correct access rights", "and the repository exists.")
PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})
"""The environment's proxy settings, which a target's own proxy overrides."""


class CommitStatus(StrEnum):
    PUSHED = "pushed"
    UNCHANGED = "unchanged"
    FAILED = "failed"


@dataclass(frozen=True)
class GitTarget:
    """The repository and branches a commit goes to; `push_branch` defaults to `checkout_branch`.

    `ssh_command` is a `GIT_SSH_COMMAND` value carrying a deploy key; `https_token` is sent as
    HTTP Basic auth (user from the URL, else `x-access-token`); `proxy` is the URL of the proxy
    every request goes through, credentials included (the source's proxySecretRef), instead of
    the environment's. None is shown by `repr`, written to disk or put in a message.
    """

    url: str
    checkout_branch: str
    push_branch: str = ""
    ssh_command: str | None = field(default=None, repr=False)
    https_token: str | None = field(default=None, repr=False)
    proxy: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.push_branch:
            object.__setattr__(self, "push_branch", self.checkout_branch)

    @property
    def switches_branch(self) -> bool:
        """Flux's "switch branch": the push goes to another branch, which is force-pushed."""
        return self.push_branch != self.checkout_branch

    @property
    def public_url(self) -> str:
        return public_url(self.url)


@dataclass(frozen=True)
class CommitRequest:
    """One commit to make: `message` is the full message (trailers included), kept verbatim.

    `committer` defaults to `author`; `retries` is how many lost push races are retried. `date`
    (timezone-aware) dates the commit as author and committer; None means the wall clock. The
    inherited environment is cleaned, so this is the only way to pin it (a reproducible history,
    a commit dated when it was planned). A `signer` signs the commit with its OpenPGP key;
    `push_options` are sent with the push (`git push -o key=value`, or `-o key` for an empty
    value); `refspec` is pushed besides the branch (Flux's `push.refspec`).
    """

    target: GitTarget
    author: CommitAuthor
    message: str
    committer: CommitAuthor | None = None
    retries: int = 4
    date: datetime | None = None
    signer: Signer | None = None
    push_options: tuple[tuple[str, str], ...] = ()
    refspec: str = ""

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, not {self.retries}")
        if self.date is not None and self.date.utcoffset() is None:
            raise ValueError(f"the commit date must carry a timezone, not {self.date.isoformat()}")


EditFn = Callable[[Path], list[str]]
"""Edits files under the worktree and returns the changed paths (repository-relative).

It is called once per attempt, on a fresh worktree at the base commit, so it must be idempotent.
"""


@dataclass(frozen=True)
class CommitResult:
    """What became of a commit request.

    `base` is the commit the change was made on ("" when no attempt got that far); `commit` the
    pushed commit; `attempts` counts fetch-edit-push rounds; `forced` is true when the commit
    was force-pushed to a push branch other than the checkout branch (see `commit_and_push`).
    """

    status: CommitStatus
    branch: str
    attempts: int
    base: str = ""
    commit: str | None = None
    error: str | None = None
    forced: bool = False

    @property
    def summary(self) -> str:
        if self.status is CommitStatus.PUSHED:
            verb = "force-pushed" if self.forced else "pushed"
            return f"{verb} commit {(self.commit or '')[:7]} to branch {self.branch} (base {self.base[:7]})"
        if self.status is CommitStatus.UNCHANGED:
            return f"no change to commit on branch {self.branch} (at {self.base[:7]})"
        return f"commit to branch {self.branch} failed: {self.error}"



def commit_and_push(
    request: CommitRequest,
    edit: EditFn,
    *,
    workdir: Path,
    sleep: Callable[[float], None] = time.sleep,
) -> CommitResult:
    """Fetch the branch, apply `edit`, commit the paths it reports and push, retrying lost races.

    The caller holds the push branch's lease (`git:<url>#<branch>`, engine/store/leases.py):
    the cache repository is that branch's alone, so the lock files a killed git left in it are
    stale, and are removed before use.

    The checkout branch is pushed with a plain push (`HEAD:refs/heads/<branch>`), never forced.
    When `push_branch` differs, Flux's behaviour is kept: an existing remote push branch is the
    base, else it is created from the checkout head, and the push branch is FORCE-pushed. gitward
    forces with a lease on the head it built on, so a commit someone else pushed to that branch
    meanwhile is never overwritten: the push is refused and retried like any lost race.

    No change, no commit: an edit that changes nothing yields "unchanged". After the retry budget,
    or on any other failure, the result is "failed" with a message fit for a user (URL redacted,
    no token, key or password), and the local clone is discarded; the remote holds nothing of
    ours. Only `edit`'s own bugs propagate (a `GitwardError` from it becomes a failed result).
    """
    target = request.target
    where = f"{target.public_url} branch {target.push_branch}"
    secrets = _secrets(target)
    attempts = 0
    base = ""
    workspace: _Workspace | None = None

    def failed(message: str) -> CommitResult:
        if workspace is not None:
            workspace.discard()
        text = _scrub(message, secrets)
        log.warning("commit to %s failed: %s", where, text)
        return CommitResult(CommitStatus.FAILED, target.push_branch, attempts, base, error=text)

    try:
        workspace = _Workspace.open(workdir, target)
        for attempts in range(1, request.retries + 2):
            base, expected = workspace.sync()
            paths = workspace.stage(edit(workspace.path))
            if not paths:
                log.info("no change to commit to %s at %s", where, base[:7])
                return CommitResult(CommitStatus.UNCHANGED, target.push_branch, attempts, base)
            commit = workspace.commit(request)
            if workspace.push(expected, request):
                result = CommitResult(CommitStatus.PUSHED, target.push_branch, attempts, base, commit,
                                      forced=target.switches_branch)
                log.info("%s of %s", result.summary, target.public_url)
                return result
            if attempts <= request.retries:
                delay = min(BACKOFF_START * 2 ** (attempts - 1), BACKOFF_MAX)
                log.info("push to %s lost a race (attempt %d); retrying in %gs", where, attempts, delay)
                sleep(delay)
        return failed(
            f"push to {where} rejected {attempts} times: someone keeps pushing; giving up"
        )
    except _GitFailure as err:
        return failed(str(err))
    except GitwardError as err:
        return failed(f"editing {where} failed: {err}")
    except GitCommandNotFound:
        return failed("git is not installed or not on PATH")
    except (GitError, OSError) as err:
        return failed(f"git failed on {where}: {err}")
    except BaseException:
        if workspace is not None:
            workspace.discard()
        raise


# Internals -----------------------------------------------------------------------------------


class _GitFailure(Exception):
    """A git step failed for a reason worth telling the user; the message is already worded."""


class _CleanGit(Git):
    """GitPython's command runner with inherited `GIT_*` variables removed, not merely overridden.

    GitPython builds each command's environment from `os.environ` and can only add to it, and
    some variables act by their mere presence (`GIT_SSL_NO_VERIFY`), so the command is run
    through `env -u NAME ...` for every inherited `GIT_*` variable this instance does not set;
    with `own_proxy`, the inherited proxy variables (`NO_PROXY` included) go too.
    """

    own_proxy = False

    def execute(self, command: str | Sequence[Any], *args: Any, **kwargs: Any) -> Any:
        if not isinstance(command, str):
            own = set(self.environment()) | set(kwargs.get("env") or ())
            drop = sorted(name for name in os.environ if name not in own and (
                name.startswith("GIT_") or (self.own_proxy and name.lower() in PROXY_VARIABLES)))
            if drop:
                command = ["env", *(arg for name in drop for arg in ("-u", name)), *command]
        return super().execute(command, *args, **kwargs)


class _Repo(Repo):
    GitCommandWrapperType = _CleanGit
    git: _CleanGit


def _secrets(target: GitTarget) -> tuple[str, ...]:
    """Every string that must never appear in a message: token, password, ssh command, key path."""
    values: list[str] = []
    parts = urlsplit(target.url)
    if parts.password:
        values += [parts.password, unquote(parts.password)]
    if target.https_token:
        values.append(target.https_token)
    header = _auth_header(target)
    if header:
        values.append(header.split()[-1])
    if target.proxy:
        proxy = urlsplit(target.proxy)
        values += [target.proxy, *((proxy.password, unquote(proxy.password)) if proxy.password else ())]
    if target.ssh_command:
        values.append(target.ssh_command)
        try:
            words = shlex.split(target.ssh_command)
        except ValueError:
            words = []
        values += [key for flag, key in zip(words, words[1:]) if flag == "-i"]
    return tuple(v for v in values if v)


def _scrub(text: str, secrets: Sequence[str]) -> str:
    return scrub(text, secrets)


def _auth_header(target: GitTarget) -> str | None:
    parts = urlsplit(target.url)
    if parts.scheme not in ("http", "https"):
        return None
    secret = target.https_token or (unquote(parts.password) if parts.password else None)
    if not secret:
        return None
    user = unquote(parts.username) if parts.username else TOKEN_USER
    return "Authorization: Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def _environment(target: GitTarget) -> dict[str, str]:
    """The variables git runs with: no prompts, no user or system config, no hooks, our credentials."""
    config = [("core.hooksPath", os.devnull)]
    header = _auth_header(target)
    if header:
        config.append((f"http.{target.public_url}.extraHeader", header))
    if target.proxy:
        config.append(("http.proxy", target.proxy))
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_COUNT": str(len(config)),
    }
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    if target.ssh_command:
        env["GIT_SSH_COMMAND"] = target.ssh_command
    return env


def _detail(stderr: str) -> str:
    """git's own explanation: its informative stderr lines, joined, without ssh boilerplate."""
    lines = [line.strip() for line in stderr.splitlines()]
    kept = [line for line in lines if line and line.lower() not in _BOILERPLATE]
    return "; ".join(kept[:3]) or "no message from git"


@dataclass
class _Workspace:
    """The cache repository of one (URL, push branch): fetched into, reset and edited each attempt."""

    target: GitTarget
    path: Path
    repo: _Repo

    @staticmethod
    def open(workdir: Path, target: GitTarget) -> _Workspace:
        key = hashlib.sha256(f"{target.public_url}#{target.push_branch}".encode()).hexdigest()[:16]
        path = workdir / "git" / key
        for branch in sorted({target.checkout_branch, target.push_branch}):
            _check_branch_name(branch)
        env = _environment(target)
        try:
            repo = _Repo(path)
            _drop_stale_locks(Path(repo.git_dir))
        except (InvalidGitRepositoryError, NoSuchPathError):
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True, mode=0o700)
            git = _CleanGit(str(path))
            git.update_environment(**env)
            _run(git, ["init", "--quiet", str(path)], f"initialise a work repository in {path}")
            repo = _Repo(path)
        repo.git.update_environment(**env)
        repo.git.own_proxy = target.proxy is not None
        _run(repo.git, ["config", "remote.origin.url", target.public_url], "configure the remote")
        return _Workspace(target, path, repo)

    def discard(self) -> None:
        """Drop the clone and every local commit in it; the next run starts from a fresh fetch."""
        self.repo.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def sync(self) -> tuple[str, str | None]:
        """Fetch, and reset the worktree to the base; returns (base, remote push branch head or None)."""
        target = self.target
        heads = self._remote_heads()
        if target.checkout_branch not in heads:
            raise _GitFailure(f"branch {target.checkout_branch} does not exist in {target.public_url}")
        refspecs = [f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in sorted(set(heads))]
        _run(self.repo.git, ["fetch", "--quiet", "--no-tags", "--depth=1", "origin", *refspecs],
             f"fetch {target.public_url}", timeout=NETWORK_TIMEOUT)
        existing = heads.get(target.push_branch) if target.switches_branch else None
        base_branch = target.push_branch if existing else target.checkout_branch
        base = _run(self.repo.git, ["rev-parse", "--verify", f"refs/remotes/origin/{base_branch}^{{commit}}"],
                    "read the fetched branch").strip()
        expected = base if existing else None
        _run(self.repo.git, ["checkout", "--quiet", "--force", "-B", target.push_branch, base],
             f"check out {base[:7]}")
        _run(self.repo.git, ["clean", "-ffdxq"], "clean the worktree")
        return base, expected

    def _remote_heads(self) -> dict[str, str]:
        wanted = sorted({self.target.checkout_branch, self.target.push_branch})
        out = _run(self.repo.git, ["ls-remote", "--heads", "origin", *(f"refs/heads/{b}" for b in wanted)],
                   f"reach {self.target.public_url}", timeout=NETWORK_TIMEOUT)
        heads: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            branch = ref.removeprefix("refs/heads/")
            if branch in wanted:
                heads[branch] = sha
        return heads

    def stage(self, changed: Sequence[str]) -> list[str]:
        """Stage exactly the reported paths; returns the ones whose content really changed."""
        paths = [self._relative(p) for p in changed]
        if not paths:
            return []
        _run(self.repo.git, ["add", "--all", "--", *paths], "stage the edited files")
        staged = _run(self.repo.git, ["diff", "--cached", "--name-only", "--no-renames", "-z"],
                      "compare the edited files")
        return [p for p in staged.split("\0") if p]

    def _relative(self, path: str) -> str:
        pure = PurePosixPath(path)
        if (not path or pure.is_absolute() or ".." in pure.parts or ".git" in pure.parts
                or not (self.path / pure).resolve().is_relative_to(self.path.resolve())):
            raise _GitFailure(f"the edit reported {path!r}, which is not a file of the worktree")
        return pure.as_posix()

    def commit(self, request: CommitRequest) -> str:
        committer = request.committer or request.author
        env = {
            "GIT_AUTHOR_NAME": request.author.name,
            "GIT_AUTHOR_EMAIL": request.author.email,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
        }
        if request.date is not None:
            offset = request.date.strftime("%z")  # git's own format: epoch seconds and offset
            stamp = f"{int(request.date.timestamp())} {offset}"
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = stamp
        message = Path(self.repo.git_dir) / "GITWARD_COMMIT_MSG"
        message.write_text(request.message, encoding="utf-8")
        sign: list[str] = []
        if request.signer is not None:
            env.update(request.signer.environment())
            sign = [f"--gpg-sign={request.signer.fingerprint}"]
        _run(self.repo.git, ["commit", "--quiet", "--no-verify", "--cleanup=verbatim", *sign,
                             f"--file={message}"], "commit", env=env)
        return self.repo.head.commit.hexsha

    def push(self, expected: str | None, request: CommitRequest) -> bool:
        """Push HEAD, and the request's refspec, with its push options; False when the push
        lost a race (non-fast-forward, a stale force lease, or the remote's ref locked by
        another push being written)."""
        target = self.target
        ref = f"refs/heads/{target.push_branch}"
        args = ["push", "--porcelain", "--no-verify"]
        if target.switches_branch:
            args.append(f"--force-with-lease={ref}:{expected or ''}")
        for key, value in request.push_options:
            args.append(f"--push-option={key}={value}" if value else f"--push-option={key}")
        if request.refspec.startswith(("-", "+", ":")):
            raise _GitFailure(f"{request.refspec!r} is not a refspec gitward pushes")
        refspecs = [f"HEAD:{ref}", *([request.refspec] if request.refspec else [])]
        status, out, err = _execute(self.repo.git, [*args, "origin", *refspecs], NETWORK_TIMEOUT)
        if status == 0:
            return True
        where = f"{target.public_url} branch {target.push_branch}"
        refused = [line for line in out.splitlines() if line.startswith("!")]
        if any(lost_race(line) for line in refused):
            return False
        if refused:
            reason = refused[0].split("\t")[-1].strip()
            raise _GitFailure(f"push to {where} was refused by the remote: {reason}; {_detail(err)}")
        if err.startswith("Timeout:"):
            raise _GitFailure(f"push to {where} timed out after {NETWORK_TIMEOUT:g}s")
        if _PERMISSION.search(err):
            raise _GitFailure(
                f"cannot push to {where}: the remote denied write access; a read-only deploy key "
                f"or a token without write permission cannot push ({_detail(err)})"
            )
        raise _GitFailure(f"push to {where} failed: {_detail(err)}")


def _drop_stale_locks(git_dir: Path) -> None:
    """Remove the lock files a git killed mid-way left (`index.lock`, `HEAD.lock`,
    `shallow.lock`, `packed-refs.lock`, a ref's `<name>.lock`): each would fail every later
    command in this repository. Only stale ones can exist here: `commit_and_push` runs under its
    branch's lease, and this repository is that branch's alone."""
    for stale in (*git_dir.glob("*.lock"), *(git_dir / "refs").rglob("*.lock")):
        log.info("removing %s, left by a git that was killed", stale)
        stale.unlink(missing_ok=True)


def _check_branch_name(branch: str) -> None:
    valid = branch and not branch.startswith("-")
    if not valid or _execute(_CleanGit(), ["check-ref-format", f"refs/heads/{branch}"], LOCAL_TIMEOUT)[0]:
        raise _GitFailure(f"{branch!r} is not a valid branch name")


def _execute(git: Git, args: Sequence[str], timeout: float,
             env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run git with a timeout; (exit status, stdout, stderr), whatever the status."""
    status, out, err = git.execute(
        [Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *args],
        with_extended_output=True,
        with_exceptions=False,
        kill_after_timeout=timeout,
        env=env,
    )
    return status, out, err


def _run(git: Git, args: Sequence[str], doing: str, *, timeout: float = LOCAL_TIMEOUT,
         env: dict[str, str] | None = None) -> str:
    """Run git; a failure becomes a `_GitFailure` saying what we were doing and git's reason."""
    status, out, err = _execute(git, args, timeout, env)
    if status != 0:
        if err.startswith("Timeout:"):
            raise _GitFailure(f"cannot {doing}: git timed out after {timeout:g}s")
        raise _GitFailure(f"cannot {doing}: {_detail(err)}")
    return out
