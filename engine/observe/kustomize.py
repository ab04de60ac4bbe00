"""Run the real kustomize: `kustomize build` when that binary is on PATH, else `kubectl kustomize`.

What gitward applies is built by the real kustomize, run the way kustomize-controller runs it:
no load restriction (a kustomization may use files above its directory), plugins and Helm off
(the CLI's defaults). kustomize-controller's file system is confined to the source's root;
kustomize's is not, so its caller (engine/reconcile/build.py) runs it over a copy of the tree
that holds no symbolic link and refuses first, located, every path a kustomization names
outside the tree (engine/evaluate/kustconfine.py). (Discovery, which only needs the Flux objects of a path, uses gitward's
own kustomize subset, engine/evaluate/kustomize.py, so reading a repository needs no binary.) A failure comes back as a `KustomizeFailed` carrying kustomize's own message
with the logging noise around it removed (kubectl prints it as a klog line).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from engine.errors import GitwardError, UserError

BUILD_TIMEOUT = 300.0
"""Seconds one build may take before kustomize is killed."""

_KLOG = re.compile(r'^[EWIF]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] "command failed" err=(?P<rest>.*)$', re.S)
_ERROR_PREFIX = re.compile(r"^(?:Error|error): ", re.M)


class KustomizeNotFound(GitwardError):
    """Neither `kustomize` nor `kubectl` is installed (exit 1)."""


class KustomizeFailed(UserError):
    """kustomize refused the directory: its message, with the directory named (exit 2; exit 1
    when a remote base could not be fetched, which is no fault of the repository)."""

    def __init__(self, directory: str, detail: str) -> None:
        self.directory = directory
        self.detail = detail
        super().__init__(f"kustomize build {directory}: {detail}")
        if _UNREACHABLE.search(detail):
            self.exit_code = 1


_UNREACHABLE = re.compile(r"could not resolve host|no such host|network is unreachable|"
                          r"connection (?:refused|timed out)|i/o timeout|TLS handshake timeout",
                          re.IGNORECASE)
"""How git and Go word a remote base that cannot be reached from this machine."""


@dataclass(frozen=True)
class Kustomizer:
    """The command that builds a directory: `kustomize build` or `kubectl kustomize`."""

    argv: tuple[str, ...]

    @property
    def name(self) -> str:
        return " ".join([Path(self.argv[0]).name, *self.argv[1:]])


def find_kustomizer(path: str | None = None) -> Kustomizer:
    """`kustomize build` if `kustomize` is on PATH (or `path`), else `kubectl kustomize`."""
    binary = shutil.which("kustomize", path=path)
    if binary:
        return Kustomizer((binary, "build"))
    kubectl = shutil.which("kubectl", path=path)
    if kubectl:
        return Kustomizer((kubectl, "kustomize"))
    raise KustomizeNotFound("this directory needs kustomize, and neither `kustomize` nor `kubectl` "
                            "is on PATH: install one of them (kubectl bundles kustomize)")


def clean_message(stderr: str) -> str:
    """kustomize's error without kubectl's klog framing or the CLI's `Error: ` prefix."""
    text = stderr.strip()
    lines = [line for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        match = _KLOG.match(line)
        if match is None:
            continue
        rest = "\n".join([match["rest"], *lines[i + 1:]]).strip()
        if rest.startswith("<"):
            return "\n".join(part.strip() for part in rest[1:].rstrip(">").strip().splitlines())
        return _unquote(rest)
    text = _ERROR_PREFIX.sub("", text, count=1)
    return text or "kustomize failed without a message"


def _unquote(text: str) -> str:
    """A Go %q string, as klog writes `err=`, back to its text."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    body = text[1:-1]
    out: list[str] = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in escapes:
            out.append(escapes[body[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Built:
    """kustomize's output (YAML documents) and the warnings it printed."""

    yaml: str
    warnings: tuple[str, ...]


def build(directory: Path, *, shown: str, kustomizer: Kustomizer | None = None,
          timeout: float = BUILD_TIMEOUT) -> Built:
    """Build one kustomization directory; `shown` names it in errors (the user's path).

    Raises KustomizeFailed with kustomize's message, KustomizeNotFound without a kustomize.
    """
    tool = kustomizer or find_kustomizer()
    argv = [*tool.argv, "--load-restrictor", "LoadRestrictionsNone", str(directory)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUSTOMIZE_")}
    try:
        process = subprocess.Popen(argv, cwd=directory, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   encoding="utf-8", errors="replace", start_new_session=True)
    except OSError as err:
        raise KustomizeNotFound(f"cannot run {tool.name}: {err.strerror or err}") from None
    try:
        out, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise KustomizeFailed(shown, f"{tool.name} took longer than {timeout:g}s") from None
    except BaseException:
        _kill(process)
        raise
    if process.returncode != 0:
        raise KustomizeFailed(shown, clean_message(stderr))
    warnings = tuple(line.strip() for line in stderr.splitlines() if line.strip())
    return Built(out, warnings)


def _kill(process: subprocess.Popen[str]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
