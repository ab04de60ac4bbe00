"""Semver tags and ranges exactly as Flux's image policies read them.

Flux parses a tag with fluxcd/pkg `version.ParseVersion` (at least two dots, then Masterminds/semver
v3.5.0 `NewVersion`, which coerces) and a range with Masterminds `NewConstraint`. Users meet the
quirks of both (`1.2-rc.1` is a version, `1.2` is not; `>1.2` skips 1.2.5; a prerelease in one
comparator opens its whole `||` group to prereleases), so this module reproduces them rather than
a cleaner semver. The scanners are written by hand, run in linear time and never raise on a tag.
Bounds kept from Masterminds: a version of at most 256 bytes, a range of at most 512 bytes and 32
`||` groups.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Callable

from engine.rules.goquote import go_quote

MAX_VERSION_BYTES = 256
MAX_RANGE_BYTES = 512
MAX_RANGE_GROUPS = 32
_MAX_UINT64 = 2**64 - 1

_SPACE = frozenset(" \t\n\f\r")  # Go's \s
_DIGITS = frozenset(string.digits)
_RANGE_PART = frozenset(string.digits + "xX*|")  # Masterminds admits '|' in a range's number
_IDENT = frozenset(string.ascii_letters + string.digits + "-")
_WILDCARDS = frozenset({"x", "X", "*"})

# Operators in the order Masterminds tries them; the first one after which a version follows wins.
_OPERATORS = ("=", "", "!=", ">", "<", ">=", "=>", "<=", "=<", "~", "~>", "^")

PRERELEASE_NOT_ALLOWED = "prerelease not allowed: no comparator in this || group has a prerelease"


class ConstraintError(ValueError):
    """A range Masterminds would reject, with its v3.5.0 message."""


IdentifierKey = tuple[int, int, str]
SortKey = tuple[int, int, int, int, tuple[IdentifierKey, ...]]


@dataclass(frozen=True)
class Version:
    """A parsed tag. Equality is structural; `<`, `>` order by semver precedence (§3.3).

    Two versions that differ only in metadata or spelling (`1.0.0+a`, `v1.0.0`) are neither
    less nor greater than each other but are not `==`: the policy keeps the first of them.
    """

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    metadata: str = ""
    original: str = ""
    sort_key: SortKey = field(init=False, repr=False, compare=False)
    """Precedence: numbers, then a release above its prereleases; metadata is ignored.

    Worked out once, here: a policy compares each version with several bounds and sorts by it.
    """

    def __post_init__(self) -> None:
        object.__setattr__(self, "sort_key", _sort_key(self))

    def __str__(self) -> str:
        return self.original or self.normalized

    @property
    def normalized(self) -> str:
        """`1.2.3-rc.1+b5` without a `v` or leading zeros (Masterminds' `String()`)."""
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.metadata:
            text += "+" + self.metadata
        return text

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def compare(self, other: Version) -> int:
        """-1, 0 or 1, as Masterminds' `Compare`."""
        a, b = self.sort_key, other.sort_key
        return (a > b) - (a < b)

    def __lt__(self, other: Version) -> bool:
        return self.sort_key < other.sort_key

    def __le__(self, other: Version) -> bool:
        return self.sort_key <= other.sort_key

    def __gt__(self, other: Version) -> bool:
        return self.sort_key > other.sort_key

    def __ge__(self, other: Version) -> bool:
        return self.sort_key >= other.sort_key


def _sort_key(v: Version) -> SortKey:
    if not v.prerelease:
        return (v.major, v.minor, v.patch, 1, ())
    return (v.major, v.minor, v.patch, 0, tuple(map(_identifier_key, v.prerelease)))


def _identifier_key(ident: str) -> IdentifierKey:
    # A numeric identifier that overflows uint64 fails Go's ParseUint and compares as text.
    if ident.isascii() and ident.isdigit() and int(ident) <= _MAX_UINT64:
        return (0, int(ident), "")
    return (1, 0, ident)


def parse_version(tag: str) -> Version | None:
    """A tag as Flux reads it, or None when Flux would skip it (never an error)."""
    if tag.count(".") < 2:
        return None
    return _coerce(tag)


@dataclass(frozen=True)
class _Parts:
    """Where a version-shaped run starts and ends, and its pieces (dots and signs stripped)."""

    start: int
    end: int
    major: str
    minor: str
    patch: str
    prerelease: str
    metadata: str


def _run(text: str, start: int, chars: frozenset[str]) -> int:
    end = start
    while end < len(text) and text[end] in chars:
        end += 1
    return end


def _identifiers_end(text: str, start: int) -> int:
    """End of `ident(.ident)*` at `start`; `start` itself when there is none."""
    end = _run(text, start, _IDENT)
    if end == start:
        return start
    while end < len(text) and text[end] == ".":
        after = _run(text, end + 1, _IDENT)
        if after == end + 1:
            break
        end = after
    return end


def _scan(text: str, start: int, number_chars: frozenset[str]) -> _Parts | None:
    """The longest `v?N(.N)?(.N)?(-pre)?(+meta)?` at `start`; None when no number starts there."""
    i = start + 1 if text.startswith("v", start) else start
    end = _run(text, i, number_chars)
    if end == i:
        return None
    numbers = [text[i:end]]
    i = end
    while len(numbers) < 3 and text.startswith(".", i):
        end = _run(text, i + 1, number_chars)
        if end == i + 1:
            break
        numbers.append(text[i + 1 : end])
        i = end
    numbers += [""] * (3 - len(numbers))
    extras = []
    for sign in "-+":
        end = _identifiers_end(text, i + 1) if text.startswith(sign, i) else i
        if end > i + 1:
            extras.append(text[i + 1 : end])
            i = end
        else:
            extras.append("")
    return _Parts(start, i, numbers[0], numbers[1], numbers[2], extras[0], extras[1])


# `v?N.N.N(-pre)?(+meta)?` in full, ASCII only: what most tags are. Where it matches, `_scan`
# reads the same parts (its runs are greedy and stop at the same characters), so it only saves
# the scanner's per-character loop; anything else falls through to `_scan`.
_PLAIN_VERSION = re.compile(
    r"v?([0-9]+)\.([0-9]+)\.([0-9]+)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


VersionPieces = tuple[str, str, str, str, str]
"""major, minor, patch, prerelease and metadata as written (no dots or signs)."""


def plain_pieces(text: str) -> VersionPieces | None:
    """The pieces of a complete `v?N.N.N(-pre)?(+meta)?`, as `_scan` reads them; else None."""
    match = _PLAIN_VERSION.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, prerelease, metadata = match.groups("")
    return major, minor, patch, prerelease, metadata


def scanned_pieces(text: str) -> VersionPieces | None:
    """The pieces `_scan` reads when they span the whole text; else None."""
    parts = _scan(text, 0, _DIGITS)
    if parts is None or parts.end != len(text):
        return None
    return parts.major, parts.minor, parts.patch, parts.prerelease, parts.metadata


def plain_sort_key(text: str) -> SortKey | None:
    """`parse_version(text).sort_key` without building a Version, for a plain version it accepts.

    None when `text` is not a plain `v?N.N.N(-pre)?(+meta)?` that `parse_version` takes as it
    is (a number past uint64, a numeric prerelease with a leading zero, over the size bound):
    the caller then asks `parse_version`. A policy reads most tags through this.
    """
    if len(text) > MAX_VERSION_BYTES:
        return None
    match = _PLAIN_VERSION.fullmatch(text)  # ASCII only: len(text) is its UTF-8 length
    if match is None:
        return None
    major, minor, patch, pre = match.group(1, 2, 3, 4)
    numbers = int(major), int(minor), int(patch)
    if max(numbers) > _MAX_UINT64:
        return None
    if not pre:
        return (*numbers, 1, ())
    prerelease = pre.split(".")
    if any(len(p) > 1 and p[0] == "0" and p.isdigit() for p in prerelease):
        return None
    return (*numbers, 0, tuple(map(_identifier_key, prerelease)))


def _coerce(text: str) -> Version | None:
    """Masterminds `NewVersion` (coercing): partial versions and leading zeros are accepted."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_VERSION_BYTES:
        return None
    pieces = plain_pieces(text) or scanned_pieces(text)
    if pieces is None:
        return None
    major, minor, patch, pre, metadata = pieces
    numbers = [int(n) if n else 0 for n in (major, minor, patch)]
    if max(numbers) > _MAX_UINT64:
        return None
    prerelease = tuple(pre.split(".")) if pre else ()
    if prerelease and any(len(p) > 1 and p[0] == "0" and p.isdigit() for p in prerelease):
        return None
    return Version(numbers[0], numbers[1], numbers[2], prerelease, metadata, text)


class Wildcard(Enum):
    """The first part of a range's version that is missing or x/X/*, which widens the match."""

    NONE = "none"
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


@dataclass(frozen=True)
class Comparator:
    """One `op version` of a range; `bound` is the version with wildcards read as 0."""

    op: str
    written: str
    bound: Version
    wildcard: Wildcard

    def __str__(self) -> str:
        return self.op + self.written

    def matches(self, v: Version) -> bool:
        """The comparison alone; the prerelease gate belongs to the group."""
        return _CHECKS[self.op](self, v)


@dataclass(frozen=True)
class ConstraintGroup:
    """Comparators joined by AND; one side of a `||`."""

    comparators: tuple[Comparator, ...]

    def __str__(self) -> str:
        return " ".join(map(str, self.comparators))

    @cached_property
    def allows_prerelease(self) -> bool:
        """Masterminds 3.4+: one comparator with a prerelease opens the whole group."""
        return any(c.bound.prerelease for c in self.comparators)

    def failure(self, v: Version) -> str:
        """Why `v` is outside this group, or "" when it is inside."""
        if v.prerelease and not self.allows_prerelease:
            return PRERELEASE_NOT_ALLOWED
        return self.comparator_failure(v)

    def comparator_failure(self, v: Version) -> str:
        """`<comparator> fails` for the first comparator `v` fails, or "": the gate aside."""
        for comparator in self.comparators:
            if not comparator.matches(v):
                return f"{comparator} fails"
        return ""


@dataclass(frozen=True)
class RangeCheck:
    """A version against a range in one pass: the first group that admits it, or why none does.

    `failures` (when `admitted_by` is None) has each group's `comparator_failure`; a "" there
    means only the group's prerelease gate kept the version out.
    """

    admitted_by: int | None
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Constraint:
    """A parsed range: `groups` joined by OR. `text` is what the user wrote."""

    text: str
    groups: tuple[ConstraintGroup, ...]

    def __str__(self) -> str:
        return " || ".join(map(str, self.groups))

    @property
    def allows_prerelease(self) -> bool:
        """Whether any prerelease can match at all."""
        return any(g.allows_prerelease for g in self.groups)

    def check(self, v: Version) -> bool:
        return any(not g.failure(v) for g in self.groups)

    def assess(self, v: Version) -> RangeCheck:
        """`check`, and on a miss each group's failing comparator, in one pass over the range."""
        failures = []
        for index, group in enumerate(self.groups):
            failure = group.comparator_failure(v)
            if not failure and (not v.prerelease or group.allows_prerelease):
                return RangeCheck(index)
            failures.append(failure)
        return RangeCheck(None, tuple(failures))

    def explain(self, v: Version) -> str:
        """`matches <group>`, or why no group admits `v` (for the policy trace)."""
        reasons = []
        for group in self.groups:
            reason = group.failure(v)
            if not reason:
                return f"matches {group}"
            reasons.append(reason if len(self.groups) == 1 else f"[{group}] {reason}")
        return "; ".join(reasons)


def parse_constraint(text: str) -> Constraint:
    """Masterminds `NewConstraint`; raises ConstraintError with its wording."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_RANGE_BYTES:
        raise ConstraintError(f"constraint string is too long (max {MAX_RANGE_BYTES} bytes)")
    segments = _rewrite_hyphen_ranges(text).split("||")
    if len(segments) > MAX_RANGE_GROUPS:
        raise ConstraintError(f"too many constraint groups (max {MAX_RANGE_GROUPS})")
    groups = []
    for segment in segments:
        atoms = _split_group(segment)
        if atoms is None:
            raise ConstraintError(f"improper constraint: {go_quote(segment)}")
        comparators = (_comparator(op, segment[p.start : p.end], p) for op, p in atoms)
        groups.append(ConstraintGroup(tuple(comparators)))
    return Constraint(text, tuple(groups))


def _atom_at(text: str, start: int) -> tuple[str, _Parts] | None:
    """An operator, optional spaces and a range version at `start`, tried in Masterminds' order."""
    for op in _OPERATORS:
        if text.startswith(op, start):
            parts = _scan(text, _run(text, start + len(op), _SPACE), _RANGE_PART)
            if parts is not None:
                return op, parts
    return None


def _split_group(segment: str) -> list[tuple[str, _Parts]] | None:
    """The comparators of one `||` side, separated by spaces or one comma; None if malformed."""
    atoms: list[tuple[str, _Parts]] = []
    i = _run(segment, 0, _SPACE)
    while True:
        atom = _atom_at(segment, i)
        if atom is None:
            return None
        atoms.append(atom)
        end = atom[1].end
        i = _run(segment, end, _SPACE)
        if i == len(segment):
            return atoms
        if segment[i] == ",":
            i = _run(segment, i + 1, _SPACE)
        elif i == end:
            return None


def _comparator(op: str, written: str, parts: _Parts) -> Comparator:
    """Masterminds reads a missing or x part as 0; the first such part sets how wide it matches."""
    pre = f"-{parts.prerelease}" if parts.prerelease else ""
    if parts.major in _WILDCARDS:
        wildcard, bound_text = Wildcard.MAJOR, f"0.0.0{pre}"
    elif not parts.minor or parts.minor in _WILDCARDS:
        wildcard, bound_text = Wildcard.MINOR, f"{parts.major}.0.0{pre}"
    elif not parts.patch or parts.patch in _WILDCARDS:
        wildcard, bound_text = Wildcard.PATCH, f"{parts.major}.{parts.minor}.0{pre}"
    else:
        wildcard, bound_text = Wildcard.NONE, written
    bound = _coerce(bound_text)
    if bound is None:
        raise ConstraintError("constraint parser error")
    return Comparator(op, written, bound, wildcard)


# Hyphen ranges are rewritten to `>= A, <= B ` before splitting, as Masterminds does; the pattern
# describes its range syntax (`\s` is Go's ASCII set) and is matched leftmost-first like Go's.
_VERSION_PATTERN = (
    r"v?[0-9xX*|]+(?:\.[0-9xX*|]+)?(?:\.[0-9xX*|]+)?"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_HYPHEN_RANGE = re.compile(
    rf"[ \t\n\f\r]*({_VERSION_PATTERN})[ \t\n\f\r]+-[ \t\n\f\r]+({_VERSION_PATTERN})[ \t\n\f\r]*"
)


def _rewrite_hyphen_ranges(text: str) -> str:
    out = text
    for match in _HYPHEN_RANGE.finditer(text):
        out = out.replace(match.group(0), f">= {match.group(1)}, <= {match.group(2)} ", 1)
    return out


def _not_equal(c: Comparator, v: Version) -> bool:
    b = c.bound
    if c.wildcard is not Wildcard.NONE:
        if v.major != b.major:
            return True
        if c.wildcard is Wildcard.MINOR:
            return False
        if v.minor != b.minor:
            return True
        if c.wildcard is Wildcard.PATCH:
            return v.prerelease != b.prerelease
        if v.patch != b.patch:
            return True
    return v.compare(b) != 0


def _greater(c: Comparator, v: Version) -> bool:
    b = c.bound
    if c.wildcard is Wildcard.NONE:
        return v.compare(b) > 0
    if v.major != b.major:
        return v.major > b.major
    if c.wildcard is Wildcard.MINOR:
        return False
    if c.wildcard is Wildcard.PATCH:
        return v.minor > b.minor
    return v.compare(b) > 0


def _less_equal(c: Comparator, v: Version) -> bool:
    b = c.bound
    if c.wildcard is Wildcard.NONE:
        return v.compare(b) <= 0
    if v.major != b.major:
        return v.major < b.major
    return c.wildcard is Wildcard.MINOR or v.minor <= b.minor


def _tilde(c: Comparator, v: Version) -> bool:
    b = c.bound
    if v.compare(b) < 0:
        return False
    widened = c.wildcard in (Wildcard.MINOR, Wildcard.PATCH)
    if (b.major, b.minor, b.patch) == (0, 0, 0) and not widened:
        return True
    return v.major == b.major and (c.wildcard is Wildcard.MINOR or v.minor == b.minor)


def _tilde_or_equal(c: Comparator, v: Version) -> bool:
    return _tilde(c, v) if c.wildcard is not Wildcard.NONE else v.compare(c.bound) == 0


def _caret(c: Comparator, v: Version) -> bool:
    b = c.bound
    if v.compare(b) < 0:
        return False
    if b.major > 0 or c.wildcard is Wildcard.MINOR:
        return v.major == b.major
    if v.major > 0:
        return False
    if b.minor > 0 or c.wildcard is Wildcard.PATCH:
        return v.minor == b.minor
    return v.minor == 0 and v.patch == b.patch


_CHECKS: dict[str, Callable[[Comparator, Version], bool]] = {
    "": _tilde_or_equal,
    "=": _tilde_or_equal,
    "!=": _not_equal,
    ">": _greater,
    "<": lambda c, v: v.compare(c.bound) < 0,
    ">=": lambda c, v: v.compare(c.bound) >= 0,
    "=>": lambda c, v: v.compare(c.bound) >= 0,
    "<=": _less_equal,
    "=<": _less_equal,
    "~": _tilde,
    "~>": _tilde,
    "^": _caret,
}
