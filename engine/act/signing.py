"""Signing commits with OpenPGP, as Flux's image-automation-controller does, with Debian's gpg.

A `SigningKey` is an ImageUpdateAutomation's `spec.git.commit.signingKey`: the ASCII-armored
secret key of its Secret's `git.asc`, and the `passphrase` that unlocks it when it is protected.
`keyring` imports it into a throw-away GNUPGHOME (mode 0700, in the system's temp dir so that the
agent's socket path stays short) whose agent is given the passphrase (`gpg-preset-passphrase`,
on stdin), checks that the key signs, and yields a `Signer`: the home and the fingerprint of the
key Flux would sign with, the first of the armored text. Afterwards the agent is stopped and the
directory removed. gpg runs in batch mode with loopback pinentry, so it fails rather than waits
for a passphrase; no message shows the key or its passphrase.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import GitwardError

GPG = "gpg"
GPG_TIMEOUT = 60.0
"""Seconds a gpg command may take."""


class SigningError(GitwardError):
    """A signing key that cannot sign: not a secret key, a wrong passphrase, gpg missing."""


@dataclass(frozen=True)
class SigningKey:
    """An armored OpenPGP secret key and its passphrase; `source` names where they came from."""

    source: str
    armored: bytes = field(repr=False)
    passphrase: str = field(default="", repr=False)

    def secrets(self) -> tuple[str, ...]:
        return (self.passphrase,) if self.passphrase else ()


@dataclass(frozen=True)
class Signer:
    """What git needs to sign a commit: the GNUPGHOME holding the key, and its fingerprint."""

    home: Path
    fingerprint: str
    source: str

    def environment(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.home)}


@contextmanager
def keyring(key: SigningKey) -> Iterator[Signer]:
    """A GNUPGHOME holding `key`, unlocked and checked to sign, for as long as the block runs."""
    home = Path(tempfile.mkdtemp(prefix="gitward-gpg-"))
    gpg = _Gpg(home, key)
    try:
        (home / "gpg.conf").write_text("pinentry-mode loopback\n")
        (home / "gpg-agent.conf").write_text("allow-preset-passphrase\nallow-loopback-pinentry\n")
        gpg.run(GPG, "--batch", "--import", stdin=key.armored, doing="import git.asc")
        fingerprint, grips = gpg.first_secret_key()
        if key.passphrase:
            gpg.run("gpg-connect-agent", "/bye", doing="start gpg-agent")
            preset = str(Path(gpg.libexec()) / "gpg-preset-passphrase")
            for grip in grips:
                gpg.run(preset, "--preset", grip, stdin=key.passphrase.encode(),
                        doing="give gpg-agent the passphrase")
        gpg.check_signs(fingerprint)
        yield Signer(home, fingerprint, key.source)
    finally:
        gpg.stop()
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class _Gpg:
    """gpg and its tools run for one keyring, in a clean environment."""

    home: Path
    key: SigningKey

    def environment(self) -> dict[str, str]:
        keep = ("PATH", "HOME", "TMPDIR")
        return {**{k: os.environ[k] for k in keep if k in os.environ}, "GNUPGHOME": str(self.home),
                "LC_ALL": "C"}

    def run(self, *args: str, doing: str, stdin: bytes = b"") -> str:
        try:
            done = subprocess.run(list(args), input=stdin, capture_output=True, env=self.environment(),
                                  timeout=GPG_TIMEOUT, check=False)
        except FileNotFoundError:
            raise SigningError(f"{args[0]} is not installed: gitward signs commits with gpg "
                               "(apt-get install gnupg)") from None
        except subprocess.TimeoutExpired:
            raise SigningError(f"cannot {doing} for {self.key.source}: gpg timed out after "
                               f"{GPG_TIMEOUT:g}s") from None
        if done.returncode != 0:
            raise SigningError(f"cannot {doing} for {self.key.source}: {self.detail(done.stderr)}")
        return done.stdout.decode("utf-8", errors="replace")

    def detail(self, stderr: bytes) -> str:
        """gpg's reasons, without its notes about the files it creates in the keyring."""
        lines = [line.strip() for line in stderr.decode("utf-8", errors="replace").splitlines()]
        text = "; ".join(line for line in lines if line and not line.endswith("created")
                         and "processed:" not in line) or "no message from gpg"
        for secret in self.key.secrets():
            text = text.replace(secret, "***")
        return text

    def libexec(self) -> str:
        return self.run("gpgconf", "--list-dirs", "libexecdir", doing="find gpg's tools").strip()

    def first_secret_key(self) -> tuple[str, list[str]]:
        """The fingerprint of the first secret key (the one Flux signs with) and the keygrips of
        it and its subkeys."""
        listing = self.run(GPG, "--batch", "--with-colons", "--with-keygrip", "--list-secret-keys",
                           doing="read git.asc")
        fingerprint, grips, key = "", [], 0
        for record in listing.splitlines():
            kind, fields = record.split(":", 1)[0], record.split(":")
            if kind == "sec":
                key += 1
            if key != 1:
                continue
            if kind == "fpr" and not fingerprint:
                fingerprint = fields[9]
            elif kind == "grp":
                grips.append(fields[9])
        if not fingerprint:
            raise SigningError(f"{self.key.source}: git.asc holds no secret key (an ASCII-armored "
                               "OpenPGP private key is expected)")
        return fingerprint, grips

    def check_signs(self, fingerprint: str) -> None:
        try:
            self.run(GPG, "--batch", "--local-user", fingerprint, "--detach-sign", stdin=b"gitward",
                     doing="sign with the key in git.asc")
        except SigningError as err:
            if "can't get input" not in str(err):  # gpg asked for a passphrase it was not given
                raise
            hint = ("the passphrase does not unlock it" if self.key.passphrase
                    else "it is protected and the Secret has no passphrase")
            raise SigningError(f"{self.key.source}: the key in git.asc does not sign: {hint}") from None

    def stop(self) -> None:
        """Stop the keyring's agent (started by gpg on demand), if gpg is there at all."""
        try:
            subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=self.environment(),
                           capture_output=True, timeout=GPG_TIMEOUT, check=False)
        except (FileNotFoundError, subprocess.TimeoutExpired):
            pass  # no gpg, no agent; a hung gpgconf leaves the agent to its idle timeout
