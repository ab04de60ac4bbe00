"""Real git remotes for the tests: bare repositories on file:// and on ssh:// through a private sshd.

Every git call runs with inherited `GIT_*` variables removed and no global or system config, so a
developer's settings cannot change what a test sees. The sshd is Debian's `openssh-server` run
from a temp dir with its own host key, config and authorized_keys. Two client keys are authorized,
both behind a forced command (this file, run as a script: `gate`) that runs exactly one git
service on one exported repository: the read-only deploy key may only fetch (`git-upload-pack`),
the read-write key may also push (`git-receive-pack`). The server runs as the user running the
tests; under root (CI) root may log in, with forced commands only.

Only the standard library is imported: the sshd runs this file as the gate, outside the venv's
site-packages (`python -I`).
"""

from __future__ import annotations

import argparse
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BRANCH = "main"
IDENTITY = ("-c", "user.name=gitward tests", "-c", "user.email=tests@gitward.invalid")
SSHD = Path("/usr/sbin/sshd")
START_TIMEOUT = 10.0
GIT_TIMEOUT = 60.0
SERVICES = ("upload-pack", "receive-pack")


class GitEnvError(Exception):
    """A part of the git test environment could not be built or started."""


# git ---------------------------------------------------------------------------------------------


def git_environ(ssh_command: str | None = None) -> dict[str, str]:
    """This process's environment without `GIT_*`, global/system config, prompts or locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
    )
    env.pop("LANGUAGE", None)
    if ssh_command is not None:
        env["GIT_SSH_COMMAND"] = ssh_command
    return env


def git(
    *args: str,
    cwd: Path | None = None,
    ssh_command: str | None = None,
    extra_env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `git ARGS` in a clean environment; with `check`, a failure raises with git's stderr."""
    env = git_environ(ssh_command)
    env.update(extra_env or {})
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=GIT_TIMEOUT,
    )
    if check and result.returncode != 0:
        raise GitEnvError(f"git {' '.join(args)} exited with {result.returncode}: {result.stderr.strip()}")
    return result


@dataclass(frozen=True)
class BareRepo:
    """A bare repository on disk; `url` is its file:// URL."""

    path: Path

    @property
    def url(self) -> str:
        return self.path.as_uri()

    def rev(self, ref: str = BRANCH) -> str:
        return git("--git-dir", str(self.path), "rev-parse", "--verify", f"{ref}^{{commit}}").stdout.strip()

    def log(self, ref: str = BRANCH) -> list[str]:
        """Commit hashes reachable from `ref`, newest first."""
        return git("--git-dir", str(self.path), "rev-list", ref).stdout.split()

    def subjects(self, ref: str = BRANCH) -> list[str]:
        """Commit subjects reachable from `ref`, newest first."""
        return git("--git-dir", str(self.path), "log", "--format=%s", ref).stdout.splitlines()

    def read(self, file: str, ref: str = BRANCH) -> str:
        return git("--git-dir", str(self.path), "show", f"{ref}:{file}").stdout


def make_bare_repo(path: Path, seed: Path | None = None, *, message: str = "Initial commit") -> BareRepo:
    """A bare repo at `path` with branch `main`; with `seed`, one commit holding that tree.

    The commit is written straight from `seed` through a throw-away index, so the seed directory
    is neither copied nor touched (its `.gitignore` rules apply).
    """
    git("init", "--quiet", "--bare", "--initial-branch", BRANCH, str(path))
    repo = BareRepo(path)
    if seed is None:
        return repo
    if not seed.is_dir():
        raise GitEnvError(f"cannot seed {path} from {seed}: not a directory")
    index = path / "seed.index"
    where = ("--git-dir", str(path), "--work-tree", str(seed))
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        git(*where, "add", "--all", ".", extra_env=env)
        git(*where, *IDENTITY, "commit", "--quiet", "--no-verify", "-m", message, extra_env=env)
    finally:
        index.unlink(missing_ok=True)
    return repo


@dataclass(frozen=True)
class WorkClone:
    """A non-bare clone to commit in and push from; `ssh_command` is used for every remote call."""

    path: Path
    ssh_command: str | None = None

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return git(*args, cwd=self.path, ssh_command=self.ssh_command, check=check)

    def rev(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", "--verify", ref).stdout.strip()

    def commit(self, files: Mapping[str, str], message: str) -> str:
        """Write `files` (relative path to text), commit them all, and return the new hash."""
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "--all")
        self.git(*IDENTITY, "commit", "--quiet", "--no-verify", "-m", message)
        return self.rev()

    def push(self, branch: str = BRANCH, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`git push origin BRANCH`; unchecked, a rejection comes back in the result's stderr."""
        return self.git("push", "--porcelain", "origin", f"{branch}:{branch}", check=check)


def clone(url: str, dest: Path, *, ssh_command: str | None = None) -> WorkClone:
    git("clone", "--quiet", url, str(dest), ssh_command=ssh_command)
    return WorkClone(dest, ssh_command)


def push_commit(
    url: str,
    workdir: Path,
    files: Mapping[str, str],
    message: str,
    *,
    ssh_command: str | None = None,
    branch: str = BRANCH,
) -> str:
    """Push one commit to `url` from a fresh clone in `workdir`, as another writer would; its hash.

    For race tests: call it between a clone's fetch and its push to make that push lose.
    """
    other = clone(url, workdir, ssh_command=ssh_command)
    if branch != BRANCH:
        other.git("checkout", "--quiet", "-B", branch)
    sha = other.commit(files, message)
    other.push(branch)
    return sha


LOCK_REF_ONCE = """#!/bin/sh
# The first push finds the branch's ref locked, as when another push is being written; later
# pushes find it free. Each push adds a line to pushes.txt.
echo push >> pushes.txt
if [ "$(wc -l < pushes.txt)" -eq 1 ]; then touch "refs/heads/$1.lock"; else rm -f "refs/heads/$1.lock"; fi
"""


def lock_ref_once(bare: Path, branch: str = BRANCH) -> Path:
    """Make the next push to `bare` lose to the remote's ref lock (`[remote rejected] (failed
    to update ref)`, `cannot lock ref`), and the ones after it succeed; the file counting pushes."""
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(LOCK_REF_ONCE.replace('"$1"', branch).replace("$1", branch))
    hook.chmod(0o755)
    return bare / "pushes.txt"


# The gate: the forced command of both authorized keys --------------------------------------------


def parse_request(request: str) -> tuple[str, str] | None:
    """`git-upload-pack '/srv/x.git'` (or `git upload-pack ...`) as (service, path); else None."""
    try:
        words = shlex.split(request)
    except ValueError:
        return None
    if len(words) == 2 and words[0].startswith("git-"):
        return words[0].removeprefix("git-"), words[1]
    if len(words) == 3 and words[0] == "git":
        return words[1], words[2]
    return None


def gate(argv: Sequence[str]) -> int:
    """Run the git service in $SSH_ORIGINAL_COMMAND if this key allows it on an exported repo."""
    parser = argparse.ArgumentParser(prog="gitward-test-gate")
    parser.add_argument("--exports", type=Path, required=True)
    parser.add_argument("--git", required=True)
    parser.add_argument("allowed", nargs="+", choices=SERVICES)
    options = parser.parse_args(argv)
    request = os.environ.get("SSH_ORIGINAL_COMMAND", "")
    parsed = parse_request(request)
    if parsed is None or parsed[0] not in SERVICES:
        print(f"gitward-test-gate: refused {request!r}: only git fetch and push are served", file=sys.stderr)
        return 1
    service, path = parsed
    if service not in options.allowed:
        print(f"gitward-test-gate: refused: this key may not run git-{service}", file=sys.stderr)
        return 1
    exported = set(options.exports.read_text().splitlines()) if options.exports.exists() else set()
    if os.path.realpath(path) not in exported:
        print(f"gitward-test-gate: refused: {path} is not an exported repository", file=sys.stderr)
        return 1
    os.execv(options.git, [options.git, service, os.path.realpath(path)])


# sshd --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def keygen(path: Path, comment: str) -> Path:
    """A fresh ed25519 key pair without passphrase at `path` (mode 0600) and `path`.pub."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return path


def ssh_command(key: Path, known_hosts: Path) -> str:
    """A GIT_SSH_COMMAND that offers only `key` and trusts only the hosts in `known_hosts`."""
    options = {
        "IdentitiesOnly": "yes",
        "IdentityAgent": "none",
        "BatchMode": "yes",
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": str(known_hosts),
        "GlobalKnownHostsFile": os.devnull,
        "LogLevel": "ERROR",
    }
    words = ["ssh", "-F", os.devnull, "-i", str(key)]
    for name, value in options.items():
        words += ["-o", f"{name}={value}"]
    return shlex.join(words)


def forced_command(exports: Path, services: Sequence[str]) -> str:
    """The authorized_keys `command="..."` value that runs this file as the gate."""
    words = [sys.executable, "-I", str(Path(__file__).resolve()), "--exports", str(exports)]
    words += ["--git", shutil.which("git") or "/usr/bin/git", *services]
    return shlex.join(words).replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class SshServer:
    """A running sshd on 127.0.0.1 serving the exported repositories to two keys."""

    workdir: Path
    user: str
    port: int
    process: subprocess.Popen[bytes]
    ro_key: Path
    rw_key: Path
    known_hosts: Path
    exports: Path = field(init=False)

    def __post_init__(self) -> None:
        self.exports = self.workdir / "exports"

    @property
    def ro_ssh_command(self) -> str:
        return ssh_command(self.ro_key, self.known_hosts)

    @property
    def rw_ssh_command(self) -> str:
        return ssh_command(self.rw_key, self.known_hosts)

    @property
    def log(self) -> str:
        return (self.workdir / "sshd.log").read_text(errors="replace")

    def url(self, repo: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{repo.resolve()}"

    def serve(self, repo: Path) -> str:
        """Export `repo` (both keys may then reach it) and return its ssh:// URL."""
        with self.exports.open("a") as out:
            out.write(f"{os.path.realpath(repo)}\n")
        return self.url(repo)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def sshd_config(workdir: Path, port: int, user: str) -> str:
    return "\n".join(
        [
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {workdir / 'host_ed25519'}",
            f"PidFile {workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
            f"AllowUsers {user}",
            "PermitRootLogin forced-commands-only",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "AcceptEnv GIT_PROTOCOL",
            "PrintMotd no",
            "LogLevel VERBOSE",
            "",
        ]
    )


def _wait_banner(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise GitEnvError(f"sshd exited with {process.returncode}: {tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            time.sleep(0.02)
    raise GitEnvError(f"sshd did not answer on 127.0.0.1:{port} within {START_TIMEOUT:g}s")


def _probe_login(server: SshServer) -> None:
    """Log in once with the RO key and ask for nothing exported: the gate, not ssh, must refuse."""
    command = [*shlex.split(server.ro_ssh_command), "-p", str(server.port), f"{server.user}@127.0.0.1"]
    result = subprocess.run(
        [*command, "git-upload-pack '/nonexistent'"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=GIT_TIMEOUT,
        env=git_environ(),
    )
    if "gitward-test-gate: refused" not in result.stderr:
        raise GitEnvError(
            f"cannot log in to the test sshd as {server.user}: {result.stderr.strip()}\n{server.log[-2000:]}"
        )


def start_sshd(workdir: Path, binary: Path = SSHD, *, attempts: int = 3) -> SshServer:
    """Generate host and client keys in `workdir`, start sshd on a free loopback port, log in once."""
    user = pwd.getpwuid(os.getuid()).pw_name
    host_key = keygen(workdir / "host_ed25519", "gitward-test-host")
    ro_key = keygen(workdir / "deploy_ro", "gitward-test-deploy-ro")
    rw_key = keygen(workdir / "deploy_rw", "gitward-test-deploy-rw")
    exports = workdir / "exports"
    exports.touch()
    lines = [
        f'command="{forced_command(exports, services)}",restrict {key.with_suffix(".pub").read_text().strip()}'
        for key, services in ((ro_key, ["upload-pack"]), (rw_key, SERVICES))
    ]
    (workdir / "authorized_keys").write_text("\n".join(lines) + "\n")
    host_public = host_key.with_suffix(".pub").read_text().split()
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir, as the service makes
    log = workdir / "sshd.log"
    for _ in range(attempts):
        port = free_port()
        config = workdir / "sshd_config"
        config.write_text(sshd_config(workdir, port, user))
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}\n")
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(binary), "-D", "-e", "-f", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        server = SshServer(workdir, user, port, process, ro_key, rw_key, known_hosts)
        try:
            _wait_banner(port, process, log)
        except GitEnvError:
            server.stop()
            if "Address already in use" in log.read_text(errors="replace"):
                continue  # another process took the free port first: try another
            raise
        try:
            _probe_login(server)
        except GitEnvError:
            server.stop()
            raise
        return server
    raise GitEnvError(f"sshd found no free port in {attempts} attempts")


@dataclass(frozen=True)
class SshRepo:
    """A bare repository served by the test sshd: its ssh:// `url` and a GIT_SSH_COMMAND per key."""

    repo: BareRepo
    url: str
    ro_ssh_command: str
    rw_ssh_command: str


if __name__ == "__main__":
    sys.exit(gate(sys.argv[1:]))
