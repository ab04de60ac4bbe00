"""Regular expressions as Flux reads them: Go RE2 syntax, through google-re2.

The one place that compiles user patterns (exclusion lists, tag filters, marker dialects), so
`gitward check` and the evaluator accept and refuse exactly the same patterns. RE2's own error
logging is off, so a bad pattern yields one clean message and no noise on stderr. Go rejects
`\\C` (RE2's any-byte escape) and group names beyond `[A-Za-z0-9_]`, which google-re2 accepts;
both are refused here. Matching runs on UTF-8 bytes, as Go's does.
"""

from __future__ import annotations

import re
import string
from typing import Protocol

import re2

_GROUP_NAME = re.compile(rb"[A-Za-z0-9_]+")  # Go's rule; RE2 also admits Unicode letters
_PLAIN = frozenset(string.ascii_letters + string.digits + "-_/:@=,")  # never special in RE2
_ESCAPABLE = frozenset(string.punctuation)  # `\` + ASCII punctuation: that character (RE2, Go)
_ANY_PREFIX, _END = "^.*", "$"


class PatternError(ValueError):
    """A pattern RE2 (or Go, for `\\C`) refuses, in Flux's wording."""

    def __init__(self, pattern: str, cause: str) -> None:
        self.pattern = pattern
        self.cause = cause
        super().__init__(f"invalid regular expression pattern '{pattern}': {cause}")


class Match(Protocol):
    def span(self, group: int) -> tuple[int, int]: ...


class Regex(Protocol):
    groups: int
    groupindex: dict[bytes, int]

    def search(self, text: bytes) -> Match | None: ...


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def text_of(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def compile_pattern(pattern: str) -> Regex:
    """The RE2 program for `pattern`, or PatternError with RE2's reason."""
    if _has_any_byte_escape(pattern):
        raise PatternError(pattern, "invalid escape sequence: `\\C`")
    options = re2.Options()
    options.log_errors = False
    try:
        regex: Regex = re2.compile(utf8(pattern), options)
    except re2.error as err:
        detail = err.args[0] if err.args else b""
        cause = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        raise PatternError(pattern, cause or "rejected by RE2") from None
    for name in regex.groupindex:
        if not _GROUP_NAME.fullmatch(name):
            raise PatternError(pattern, f"invalid named capture: `{text_of(name)}`")
    return regex


def suffix_literal(pattern: str) -> str | None:
    """L when `pattern` is exactly `^.*L$`, L plain ASCII text or escaped punctuation, else None.

    Such a pattern, Flux's default exclusion `^.*\\.sig$` among them, matches an ASCII tag
    exactly when the tag ends with L and holds no newline: RE2's `.` matches every ASCII
    character but `\\n` (no `s` flag), `$` is the end of the text (no `m` flag; unlike
    Python's `$`, it never skips a final newline), and L itself holds no newline. Callers use
    it to skip a regex call per tag; any other spelling (flags, classes, `\\Q`) returns None.
    """
    if not (pattern.startswith(_ANY_PREFIX) and pattern.endswith(_END)):
        return None
    body = pattern[len(_ANY_PREFIX) : len(pattern) - len(_END)]
    literal: list[str] = []
    i = 0
    while i < len(body):
        if body[i] in _PLAIN:
            literal.append(body[i])
            i += 1
        elif body[i] == "\\" and i + 1 < len(body) and body[i + 1] in _ESCAPABLE:
            literal.append(body[i + 1])
            i += 2
        else:
            return None
    return "".join(literal)


def _has_any_byte_escape(pattern: str) -> bool:
    """Whether `\\C` occurs outside a `\\Q...\\E` quote."""
    i = 0
    while i < len(pattern) - 1:
        if pattern[i] != "\\":
            i += 1
        elif pattern[i + 1] == "Q":
            end = pattern.find("\\E", i + 2)
            i = len(pattern) if end < 0 else end + 2
        elif pattern[i + 1] == "C":
            return True
        else:
            i += 2
    return False
