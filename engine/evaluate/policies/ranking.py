"""What a policy is given and what it returns: candidates in, a ranking and verdicts out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    """A tag's fate in one policy evaluation (stored as text in the decision trace)."""

    SELECTED = "selected"
    CANDIDATE = "candidate"  # admitted, but not ranked: the evaluation stopped before ranking
    LOWER = "lower"  # a candidate that lost
    EXCLUDED = "excluded"  # matched the repository's exclusion list
    FILTERED = "filtered"  # did not match the policy's filterTags pattern
    UNPARSABLE = "unparsable"  # not a value the policy can read (semver, number)
    OUT_OF_RANGE = "out-of-range"
    PRERELEASE_EXCLUDED = "prerelease-excluded"


@dataclass(frozen=True)
class Candidate:
    """A tag that passed exclusion and filterTags; `value` is what the policy compares."""

    tag: str
    value: str


@dataclass(frozen=True)
class Judgement:
    """One candidate's outcome inside a policy, with a reason a user can read."""

    candidate: Candidate
    verdict: Verdict
    reason: str = ""


@dataclass(frozen=True)
class Ranking:
    """`ranked` best first (verdict CANDIDATE); `failure` says why, when nothing ranked."""

    ranked: tuple[Judgement, ...]
    rejected: tuple[Judgement, ...] = ()
    failure: str = ""


def byte_order(text: str) -> bytes:
    """Go compares strings as UTF-8 bytes; so does every tie-break here."""
    return text.encode("utf-8", "surrogatepass")


def examples(candidates: list[Candidate], *, values: bool = False, limit: int = 3) -> str:
    """`a (value "x"), b, c`: a few candidates in byte order, for error messages.

    A value is shown when it differs from its tag, or always with `values`.
    """
    shown = sorted(candidates, key=lambda c: byte_order(c.tag))[:limit]
    text = ", ".join(
        f'{c.tag} (value "{c.value}")' if values or c.value != c.tag else c.tag for c in shown
    )
    more = len(candidates) - len(shown)
    return text + (f" and {more} more" if more > 0 else "")
