"""Errors a user can cause, each with a place to point at.

Every error a user can trigger derives from `GitwardError`, so the CLI can print it and exit 2
(user error) or 1 (failure) without a traceback. Rule errors carry a `SourcePos`; a
`Problems` collector gathers every error and warning of a load so the user sees all of them
at once, sorted by position.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Iterable, Iterator


@dataclass(frozen=True, order=True)
class SourcePos:
    """A 1-based line and column in a file; `syntax` says which reader produced it."""

    path: str
    line: int = 0
    column: int = 0
    end_line: int = 0
    end_column: int = 0
    syntax: str = field(default="dsl", compare=False)

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{self.column}"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"
    """Something gitward inferred or chose for the user, said once (never changes an exit code)."""


@dataclass(frozen=True)
class Problem:
    """One located finding: an error (the load fails) or a warning (a lint)."""

    severity: Severity
    message: str
    pos: SourcePos | None = None
    code: str = ""
    hint: str = ""

    def sort_key(self) -> tuple[str, int, int, str]:
        p = self.pos
        return (p.path, p.line, p.column, self.message) if p else ("", 0, 0, self.message)

    def render(self, excerpt: bool = True) -> str:
        """`path:line:col: error: message`, then the offending line with a caret under it."""
        where = f"{self.pos}: " if self.pos else ""
        text = f"{where}{self.severity.value}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        if excerpt and self.pos and self.pos.line > 0:
            line = read_line(self.pos.path, self.pos.line)
            if line is not None:
                caret_col = max(self.pos.column, 1)
                width = 1
                if self.pos.end_line == self.pos.line and self.pos.end_column > caret_col:
                    width = self.pos.end_column - caret_col
                prefix = "".join(c if c == "\t" else " " for c in line[: caret_col - 1])
                text += f"\n  {line}\n  {prefix}{'^' * width}"
        return text

    def to_json(self) -> dict[str, object]:
        return {
            "severity": self.severity.value,
            "message": self.message,
            "path": self.pos.path if self.pos else None,
            "line": self.pos.line if self.pos else None,
            "column": self.pos.column if self.pos else None,
            "code": self.code or None,
            "hint": self.hint or None,
        }


def read_line(path: str, line: int) -> str | None:
    """The text of one line of a file, for error excerpts; None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            for number, text in enumerate(fh, start=1):
                if number == line:
                    return text.rstrip("\r\n")
    except OSError:
        return None
    return None


def of_severity(items: Iterable[Problem], severity: Severity) -> tuple[Problem, ...]:
    """The problems of one severity, in their order (a report's errors, its warnings)."""
    return tuple(p for p in items if p.severity is severity)


class GitwardError(Exception):
    """Base of every error a user can cause; the CLI prints `str(err)` and exits `exit_code`."""

    exit_code = 1


class UserError(GitwardError):
    """Bad input: a file, an argument, a reference. Exit code 2."""

    exit_code = 2


class RuleError(UserError):
    """One or more located problems in rule files or manifests."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=Problem.sort_key)
        super().__init__("\n".join(p.render() for p in self.problems))


class RetryableError(GitwardError):
    """A failure of something outside gitward (a git remote, a registry), its retry in its type.

    A temporary one (network, timeout, a 5xx) may heal by itself: `gitward run` retries it with
    backoff from the object's retry interval. A `permanent` one needs a fix first (access
    denied, no such repository or ref): retrying sooner cannot help, so the loop tries it again
    at the object's interval only.
    """

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self._permanent = permanent

    @property
    def permanent(self) -> bool:
        return self._permanent


class StoreError(GitwardError):
    """The state store cannot be used as asked (too new, unreachable, read-only)."""


@dataclass
class Problems:
    """Collects problems across a load; `raise_if_errors` turns errors into one RuleError."""

    items: list[Problem] = field(default_factory=list)

    def error(self, message: str, pos: SourcePos | None = None, *, code: str = "", hint: str = "") -> None:
        self.items.append(Problem(Severity.ERROR, message, pos, code, hint))

    def warning(self, message: str, pos: SourcePos | None = None, *, code: str = "", hint: str = "") -> None:
        self.items.append(Problem(Severity.WARNING, message, pos, code, hint))

    def note(self, message: str, pos: SourcePos | None = None, *, code: str = "", hint: str = "") -> None:
        self.items.append(Problem(Severity.NOTE, message, pos, code, hint))

    def extend(self, other: Iterable[Problem]) -> None:
        self.items.extend(other)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity is Severity.WARNING]

    @property
    def notes(self) -> list[Problem]:
        return [p for p in self.items if p.severity is Severity.NOTE]

    def sorted(self) -> list[Problem]:
        return sorted(self.items, key=Problem.sort_key)

    def raise_if_errors(self) -> None:
        if self.errors:
            raise RuleError(self.errors)

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.sorted())

    def __len__(self) -> int:
        return len(self.items)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' (did you mean "x"?)' suffix for an unknown word, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def relpath(path: str | Path, root: str | Path | None = None) -> str:
    """A path as the user would type it: relative to `root` (or the cwd) when inside it."""
    p = Path(path)
    base = Path(root) if root is not None else Path.cwd()
    try:
        return str(p.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(p)
