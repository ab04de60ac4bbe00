"""The git source observer: fetch a GitRepository's ref into a cache and check it out.

`fetch_source` resolves `spec.ref` as source-controller does (commit > name > semver > tag >
branch; nothing at all means branch `master`) and names the result as Flux does: `main@sha1:<sha>`,
`v1.2.0@sha1:<sha>`, `refs/pull/1/head@sha1:<sha>`, or `sha1:<sha>` for a commit without a
branch. Branches, tags and refs are fetched with depth 1; a commit needs its branch's history
(or every branch's). Each source has a cache repository under `cache_dir`, locked while in use,
fetched into and checked out (detached, cleaned); its worktree is `Checkout.path`.
`local_revision` reads a user's checkout (watch mode): `<sha>`, or `<sha>+dirty` when a file that
belongs to the source (.gitignore, Flux's exclusions and .sourceignore honoured) has changed.

git runs in its own session with inherited `GIT_*` variables dropped, no prompts, C locale; for
fetches also no system or global config and no hooks. `spec.timeout` bounds the whole fetch; on
expiry git and its children (ssh) are killed. Credentials travel only in the environment
(`GIT_SSH_COMMAND`; an HTTPS token as an `http.<url>.extraHeader`): URLs given to git carry
none, and messages are scrubbed of the token, passwords and ssh key paths.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from engine.redact import public_url, scrub
from engine.errors import RetryableError
from engine.model import GitRef, GitSource
from engine.observe.transport import Proxy
from engine.rules.ignore import IgnoreRules
from engine.rules.semver import ConstraintError, Version, parse_constraint, parse_version

DEFAULT_BRANCH = "master"
"""Flux's branch when a GitRepository has no `ref`."""
TOKEN_USER = "x-access-token"
"""The HTTP Basic user sent with a bare token (GitHub's convention; most forges ignore it)."""
LOCAL_TIMEOUT = 60.0
"""Seconds a git command on a local checkout may take."""
LISTED = 20
"""How many branch or tag names a "not found" message lists."""

_HEX = re.compile(r"[0-9a-f]{7,64}")
_MISSING_REF = re.compile(r"couldn't find remote ref", re.IGNORECASE)
_DENIED = re.compile(r"permission denied|authentication failed|could not read (?:username|password)|"
                     r"terminal prompts disabled|access denied|not authorized|"
                     r"host key verification failed|\b40[13]\b", re.IGNORECASE)
_NO_REPOSITORY = re.compile(r"does not appear to be a git repository|repository .*not found|\b404\b",
                            re.IGNORECASE)
_BOILERPLATE = ("please make sure you have the correct access rights", "and the repository exists.")


class SourceError(RetryableError):
    """A fetch that failed, with a redacted message. `permanent` failures need a fix (a ref
    that does not exist, access denied); temporary ones (network, timeout) may heal on retry."""


@dataclass(frozen=True)
class Checkout:
    """A source's files at one commit.

    `revision` is Flux's form; `branch` is the ref part of it (a branch, a tag, a full ref name,
    or "" for a bare commit); `path` is the worktree; `author` is `Name <email>`; `committed_at`
    the committer date in UTC.
    """

    source: str
    revision: str
    sha: str
    branch: str
    path: Path
    author: str
    message: str
    committed_at: datetime

    @property
    def subject(self) -> str:
        return self.message.strip().split("\n", 1)[0]


@dataclass(frozen=True)
class Wanted:
    """What a GitRef asks for once precedence is applied: `kind` is commit, name, semver, tag
    or branch; a commit may carry the branch it must be on."""

    kind: str
    value: str
    branch: str = ""

    def __str__(self) -> str:
        on = f" on branch '{self.branch}'" if self.branch else ""
        return f"{self.kind} '{self.value}'{on}"


def wanted(ref: GitRef) -> Wanted:
    """The ref field that counts: commit > name > semver > tag > branch, else `master`."""
    if ref.commit:
        return Wanted("commit", ref.commit.lower(), ref.branch)
    for kind, value in (("name", ref.name), ("semver", ref.semver), ("tag", ref.tag),
                        ("branch", ref.branch)):
        if value:
            return Wanted(kind, value)
    return Wanted("branch", DEFAULT_BRANCH)


def revision_of(ref_name: str, sha: str) -> str:
    """Flux's revision string: `<ref>@<algorithm>:<sha>`, or `<algorithm>:<sha>` without a ref."""
    digest = f"{'sha256' if len(sha) == 64 else 'sha1'}:{sha}"
    return f"{ref_name}@{digest}" if ref_name else digest


def fetch_source(source: GitSource, *, cache_dir: Path, ssh_command: str | None = None,
                 token: str | None = None, proxy: Proxy | None = None) -> Checkout:
    """Fetch the source's ref into its cache repository and check it out; SourceError on failure.

    A `proxy` (the source's proxySecretRef) carries every request, whatever the environment's
    proxy variables say.
    """
    remote = _Remote.of(source.url, ssh_command, token, proxy)
    want = wanted(source.ref)
    timeout = source.timeout.total_seconds()
    path = _cache_path(cache_dir, source, remote.url)
    deadline = time.monotonic() + timeout
    session = _Session(path, remote, deadline)
    try:
        with _exclusive(path.with_name(f"{path.name}.lock"), deadline):
            session.open()
            ref_name, sha = session.fetch(want)
            session.checkout(sha, submodules=source.recurse_submodules)
            author, message, committed_at = session.commit_info(sha)
    except _Timeout:
        raise SourceError(f"fetching {want} from {remote.url} timed out after {timeout:g}s",
                          permanent=False) from None
    except _GitFailed as failed:
        if not failed.network:
            shutil.rmtree(path, ignore_errors=True)  # a broken cache must not fail every run
        raise failed.error(remote) from None
    except OSError as err:
        raise SourceError(remote.scrub(f"cannot use the cache {path}: {err}"), permanent=False) from None
    return Checkout(source.key.ref, revision_of(ref_name, sha), sha, ref_name, path, author,
                    message, committed_at)


def local_revision(path: Path, *, source: str = "", ignore: str = "") -> Checkout:
    """The checkout containing `path` as a source: HEAD, `+dirty` when a counted file changed.

    `ignore` is a GitRepository's `spec.ignore` text. Changes to files the source leaves out
    (Flux's default exclusions, .sourceignore, .gitignore) do not make it dirty.
    """
    env = _clean_environ()

    def git(*args: str) -> tuple[int, str, str]:
        try:
            return _execute(list(args), cwd=path, env=env, timeout=LOCAL_TIMEOUT)
        except _Timeout:
            raise SourceError(f"git {args[0]} in {path} timed out after {LOCAL_TIMEOUT:g}s",
                              permanent=False) from None

    if not path.is_dir():
        raise SourceError(f"{path} is not a directory", permanent=True)
    code, out, err = git("rev-parse", "--show-toplevel")
    if code != 0:
        raise SourceError(f"{path} is not inside a git checkout", permanent=True)
    root = Path(out.strip())
    code, out, err = git("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if code != 0:
        raise SourceError(f"the checkout {root} has no commit yet", permanent=True)
    sha = out.strip()
    code, out, _ = git("symbolic-ref", "--quiet", "--short", "HEAD")
    branch = out.strip() if code == 0 else ""
    code, out, err = git("status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    if code != 0:
        raise SourceError(f"cannot read the status of {root}: {_detail(err)}", permanent=False)
    changed = [entry[3:] for entry in out.split("\0") if len(entry) > 3]
    rules = IgnoreRules.load(root, ignore)
    dirty = any(not rules.ignored(rel) for rel in changed)
    code, out, err = git("show", "-s", f"--format={_INFO_FORMAT}", sha)
    if code != 0:
        raise SourceError(f"cannot read commit {sha[:7]} in {root}: {_detail(err)}", permanent=False)
    author, message, committed_at = _parse_info(out)
    return Checkout(source, f"{sha}+dirty" if dirty else sha, sha, branch, root, author, message,
                    committed_at)


@dataclass(frozen=True)
class Origin:
    """Where a local checkout came from: its remote's URL (no credentials) and its branch."""

    url: str
    branch: str


def checkout_origin(path: Path) -> Origin | None:
    """The remote and branch of the checkout holding `path` (the branch's upstream remote, else
    `origin`); None when `path` is not in a git checkout or has no remote. scp-like remotes
    (`git@host:owner/repo`) are given as `ssh://` URLs, as Flux spells them.

    Every command that reads a checkout asks, so it takes two git runs (three on a branch with
    no commit yet): one for the work tree and its branch, one for the remotes' settings."""
    env = _clean_environ()

    def git(*args: str) -> tuple[int, str]:
        try:
            code, out, _ = _execute(list(args), cwd=path, env=env, timeout=LOCAL_TIMEOUT)
        except (_Timeout, OSError):
            return -1, ""
        return code, out

    if not path.is_dir():
        return None
    code, out = git("rev-parse", "--is-inside-work-tree", "--symbolic-full-name", "HEAD")
    head = out.split("\n")
    if head[0] != "true":
        return None
    if code == 0:
        branch = head[1].removeprefix("refs/heads/") if head[1] != "HEAD" else ""
    else:  # a branch with no commit yet: HEAD names it, but names no revision
        code, named = git("symbolic-ref", "--quiet", "--short", "HEAD")
        branch = named.strip() if code == 0 else ""
    settings = _config_entries(git("config", "-z", "--get-regexp",
                                   r"^(branch\..*\.remote|remote\..*\.url)$")[1])
    remote = settings.get(f"branch.{branch}.remote", "origin") if branch else "origin"
    url = settings.get(f"remote.{remote}.url")
    if not url:
        return None
    scp = re.fullmatch(r"(?P<user>[^@/:]+@)?(?P<host>[^/:]+):(?P<path>(?!/).+)", url)
    if scp and "://" not in url:
        url = f"ssh://{scp['user'] or ''}{scp['host']}/{scp['path']}"
    return Origin(public_url(url), branch)


def _config_entries(out: str) -> dict[str, str]:
    """`git config -z --get-regexp` output as key -> value; the last of a repeated key wins, as
    `git config --get` gives it."""
    entries: dict[str, str] = {}
    for entry in out.split("\0"):
        key, _, value = entry.partition("\n")
        if key:
            entries[key] = value
    return entries


# Internals -----------------------------------------------------------------------------------

_INFO_FORMAT = "%an%x00%ae%x00%ct%x00%B"


def _parse_info(out: str) -> tuple[str, str, datetime]:
    name, email, stamp, message = out.split("\0", 3)
    author = f"{name} <{email}>" if name else f"<{email}>"
    return author, message.rstrip("\n"), datetime.fromtimestamp(int(stamp), UTC)


def _cache_path(cache_dir: Path, source: GitSource, url: str) -> Path:
    digest = hashlib.sha256(f"{source.key.ref}\n{url}".encode()).hexdigest()[:12]
    return cache_dir / "sources" / source.namespace / f"{source.name}-{digest}"


class _Timeout(Exception):
    """The fetch ran out of time; git has been killed."""


class _GitFailed(Exception):
    """A git command failed; `network` when it talked to the remote."""

    def __init__(self, doing: str, stderr: str, network: bool) -> None:
        super().__init__(doing)
        self.doing = doing
        self.stderr = stderr
        self.network = network

    def error(self, remote: _Remote) -> SourceError:
        detail = remote.scrub(_detail(self.stderr))
        if self.network and _DENIED.search(self.stderr):
            hint = (f"; or the proxy of {remote.proxy} refused its username and password (some "
                    "proxies answer so)") if remote.proxy else ""
            return SourceError(f"cannot read {remote.url}: access denied ({detail}){hint}", permanent=True)
        if self.network and _NO_REPOSITORY.search(self.stderr):
            return SourceError(f"no git repository at {remote.url} ({detail})", permanent=True)
        return SourceError(f"cannot {remote.scrub(self.doing)}: {detail}", permanent=False)


@dataclass(frozen=True)
class _Remote:
    """The URL git is given (no credentials), the environment carrying them, the strings to hide."""

    url: str
    env: dict[str, str] = field(repr=False)
    secrets: tuple[str, ...] = field(repr=False)
    proxy: str = ""
    """The Secret the proxy came from, when there is one."""

    @staticmethod
    def of(url: str, ssh_command: str | None, token: str | None, proxy: Proxy | None = None) -> _Remote:
        parts, shown = urlsplit(url), public_url(url)
        password = unquote(parts.password) if parts.password else ""
        secrets = [parts.password or "", password, token or ""]
        config = [("core.hooksPath", os.devnull), ("gc.autoDetach", "false")]
        if proxy is not None:
            config.append(("http.proxy", git_proxy(proxy, parts.scheme)))
            secrets += proxy.secrets()
        if parts.scheme in ("http", "https") and (token or password):
            user = unquote(parts.username) if parts.username else TOKEN_USER
            basic = base64.b64encode(f"{user}:{token or password}".encode()).decode()
            config.append((f"http.{shown}.extraHeader", f"Authorization: Basic {basic}"))
            secrets.append(basic)
        if ssh_command:
            try:
                words = shlex.split(ssh_command)
            except ValueError:
                words = []
            secrets += [key for flag, key in zip(words, words[1:]) if flag == "-i"]
            secrets += [w.split("=", 1)[1] for w in words if w.lower().startswith("identityfile=")]
        env = _clean_environ(keep_proxies=proxy is None)
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
                   GIT_CONFIG_COUNT=str(len(config)))
        for index, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        if ssh_command:
            env["GIT_SSH_COMMAND"] = ssh_command
        return _Remote(shown, env, tuple(s for s in secrets if s),
                       proxy.source if proxy else "")

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)


@dataclass
class _Session:
    """One fetch in one cache repository, every command bounded by the fetch's deadline."""

    path: Path
    remote: _Remote
    deadline: float

    def run(self, *args: str, doing: str, network: bool = False) -> str:
        code, out, err = self.execute(*args)
        if code != 0:
            raise _GitFailed(doing, err, network)
        return out

    def execute(self, *args: str) -> tuple[int, str, str]:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Timeout()
        return _execute(list(args), cwd=self.path, env=self.remote.env, timeout=left)

    def open(self) -> None:
        """Reuse the cache repository, minus the lock files a killed git left (we hold the lock)."""
        dot_git = self.path / ".git"
        if dot_git.is_dir() and self.execute("rev-parse", "--git-dir")[0] == 0:
            for stale in (*dot_git.glob("*.lock"), *(dot_git / "refs").rglob("*.lock")):
                stale.unlink(missing_ok=True)
            return
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True, mode=0o700)
        self.run("init", "--quiet", doing=f"create a cache repository in {self.path}")

    def fetch(self, want: Wanted) -> tuple[str, str]:
        """(the revision's ref part, the commit sha) of what `want` names on the remote."""
        if want.kind == "branch":
            return want.value, self.fetch_ref(f"refs/heads/{want.value}", want)
        if want.kind == "tag":
            return want.value, self.fetch_ref(f"refs/tags/{want.value}", want)
        if want.kind == "name":
            if not want.value.startswith("refs/") or want.value.endswith("/"):
                raise SourceError(f"ref name '{want.value}' must be a full reference such as "
                                  "refs/heads/main or refs/pull/1/head", permanent=True)
            return want.value, self.fetch_ref(want.value, want)
        if want.kind == "semver":
            return self.fetch_semver(want)
        return self.fetch_commit(want)

    def fetch_ref(self, ref: str, want: Wanted, *, shallow: bool = True) -> str:
        """Fetch one remote ref (depth 1 when `shallow`) and return the commit it points at."""
        if ref.startswith("-") or self.execute("check-ref-format", ref)[0] != 0:
            raise SourceError(f"'{ref}' is not a valid git reference", permanent=True)
        depth = ["--depth=1"] if shallow else self.unshallow()
        code, _, err = self.execute("fetch", "--quiet", "--no-tags", "--recurse-submodules=no",
                                    *depth, self.remote.url, f"+{ref}")
        if code != 0:
            if _MISSING_REF.search(err):
                raise self.not_found(want)
            raise _GitFailed(f"fetch {want} from {self.remote.url}", err, network=True)
        return self.run("rev-parse", "--verify", "FETCH_HEAD^{commit}",
                        doing=f"read the fetched {want}").strip()

    def unshallow(self) -> list[str]:
        out = self.run("rev-parse", "--is-shallow-repository", doing="inspect the cache repository")
        return ["--unshallow"] if out.strip() == "true" else []

    def fetch_commit(self, want: Wanted) -> tuple[str, str]:
        """A commit on its branch (the branch's whole history), or on any branch."""
        if not _HEX.fullmatch(want.value):
            raise SourceError(f"commit '{want.value}' is not a commit hash", permanent=True)
        if want.branch:
            head = self.fetch_ref(f"refs/heads/{want.branch}", Wanted("branch", want.branch),
                                  shallow=False)
            sha = self.resolve(want.value)
            if sha is None or self.execute("merge-base", "--is-ancestor", sha, head)[0] != 0:
                raise SourceError(f"commit '{want.value}' not found in branch '{want.branch}' of "
                                  f"{self.remote.url}", permanent=True)
            return want.branch, sha
        self.run("fetch", "--quiet", "--no-tags", "--prune", "--recurse-submodules=no",
                 *self.unshallow(), self.remote.url, "+refs/heads/*:refs/remotes/origin/*",
                 doing=f"fetch every branch of {self.remote.url}", network=True)
        sha = self.resolve(want.value)
        if sha is None:
            raise SourceError(f"commit '{want.value}' not found in any branch of {self.remote.url}",
                              permanent=True)
        return "", sha

    def resolve(self, commit: str) -> str | None:
        code, out, _ = self.execute("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
        return out.strip() if code == 0 else None

    def fetch_semver(self, want: Wanted) -> tuple[str, str]:
        """The highest tag in range; between equal versions, the latest commit (as Flux)."""
        try:
            constraint = parse_constraint(want.value)
        except ConstraintError as err:
            raise SourceError(f"invalid semver range '{want.value}': {err}", permanent=True) from None
        tags = self.remote_names("--tags")
        matching: list[tuple[Version, str]] = []
        for tag in tags:
            version = parse_version(tag)
            if version is not None and constraint.check(version):
                matching.append((version, tag))
        if not matching:
            listed = f"; tags: {_listing(tags)}" if tags else "; it has no tags"
            raise SourceError(f"no tag in {self.remote.url} matches semver '{want.value}'{listed}",
                              permanent=True)
        top = max(v.sort_key for v, _ in matching)
        tied = sorted(tag for v, tag in matching if v.sort_key == top)
        fetched = []
        for tag in tied:
            sha = self.fetch_ref(f"refs/tags/{tag}", Wanted("tag", tag))
            stamp = self.run("show", "-s", "--format=%ct", sha, doing=f"read tag {tag}").strip()
            fetched.append((int(stamp or 0), tag, sha))
        _, tag, sha = max(fetched)
        return tag, sha

    def remote_names(self, kind: str) -> list[str]:
        """Branch (`--heads`) or tag (`--tags`) names on the remote, sorted."""
        out = self.run("ls-remote", kind, "--refs", self.remote.url,
                       doing=f"list the refs of {self.remote.url}", network=True)
        prefix = "refs/heads/" if kind == "--heads" else "refs/tags/"
        names = (line.partition("\t")[2] for line in out.splitlines())
        return sorted(name.removeprefix(prefix) for name in names if name.startswith(prefix))

    def not_found(self, want: Wanted) -> SourceError:
        where = f"{want} not found in {self.remote.url}"
        if want.kind in ("branch", "tag"):
            label = "branches" if want.kind == "branch" else "tags"
            names = self.remote_names("--heads" if want.kind == "branch" else "--tags")
            return SourceError(f"{where}; {label}: {_listing(names) or 'none'}", permanent=True)
        return SourceError(where, permanent=True)

    def checkout(self, sha: str, *, submodules: bool) -> None:
        self.run("checkout", "--quiet", "--force", "--detach", sha, doing=f"check out {sha[:7]}")
        self.run("clean", "-ffdxq", doing="clean the worktree")
        if submodules:
            self.run("submodule", "sync", "--quiet", "--recursive", doing="sync submodule URLs")
            self.run("submodule", "update", "--init", "--recursive", "--force", "--quiet",
                     doing="fetch the submodules", network=True)
            self.run("submodule", "foreach", "--quiet", "--recursive", "git clean -ffdxq",
                     doing="clean the submodules")

    def commit_info(self, sha: str) -> tuple[str, str, datetime]:
        out = self.run("show", "-s", f"--format={_INFO_FORMAT}", sha, doing=f"read commit {sha[:7]}")
        return _parse_info(out)


@contextmanager
def _exclusive(lock: Path, deadline: float) -> Iterator[None]:
    """One fetch per cache repository at a time, across processes (the loop and the CLI)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _Timeout() from None
                time.sleep(0.05)
        yield


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED])
    return f"{shown} and {len(names) - LISTED} more" if len(names) > LISTED else shown


def _detail(stderr: str) -> str:
    """git's own explanation: its informative stderr lines, joined, without ssh boilerplate."""
    lines = [line.strip() for line in stderr.splitlines()]
    kept = [line for line in lines if line and line.lower() not in _BOILERPLATE]
    return "; ".join(kept[:3]) or "no message from git"


def git_proxy(proxy: Proxy, scheme: str) -> str:
    """git's `http.proxy` for a remote of `scheme`: git proxies http and https remotes only."""
    if scheme not in ("http", "https"):
        raise SourceError(f"{proxy.source} (the GitRepository's spec.proxySecretRef) is for http and "
                          f"https remotes: gitward does not proxy {scheme}:// git remotes",
                          permanent=True)
    return proxy.url()


PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})
"""The environment's proxy settings, which a proxySecretRef overrides, as in Flux."""


def _clean_environ(*, keep_proxies: bool = True) -> dict[str, str]:
    """This process's environment without `GIT_*` (no redirection) and no prompts, in C locale.

    A local checkout keeps the user's git config (excludes, safe.directory) and takes no
    optional lock behind their back; fetches add their own settings (see `_Remote.of`), and a
    fetch through a given proxy drops the environment's proxy variables (NO_PROXY included).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") and k != "LANGUAGE"
           and (keep_proxies or k.lower() not in PROXY_VARIABLES)}
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
    return env


def _execute(args: list[str], *, cwd: Path, env: dict[str, str],
             timeout: float) -> tuple[int, str, str]:
    """Run git in its own session; on timeout (or interrupt) kill it and everything it started."""
    try:
        process = subprocess.Popen(
            ["git", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="surrogateescape",
            start_new_session=True)
    except FileNotFoundError:
        raise SourceError("git is not installed or not on PATH", permanent=True) from None
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise _Timeout() from None
    except BaseException:
        _kill(process)
        raise
    return process.returncode, out, err


def _kill(process: subprocess.Popen[str]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
