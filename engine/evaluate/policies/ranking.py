"""What a policy is given and what it returns: candidates in, a ranking and verdicts out.

Go compares strings as UTF-8 bytes, and every tie-break here follows it. Python's `str` order
(by code point) is that same order, so the policies sort `str`s as they are: UTF-8 encodes each
code point, lone surrogates included (as `surrogatepass` writes them), with a prefix-free byte
sequence whose byte order is the code points' order, so comparing the encodings byte by byte
compares the code points one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.model import TagVerdict


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
    """`ranked` best first (verdict CANDIDATE); `failure` says why, when nothing ranked.

    `rejected` are the other candidates' trace lines, final already since they have no rank
    (most tags of a large repository end there, so no Judgement is made for them on the way).
    """

    ranked: tuple[Judgement, ...]
    rejected: tuple[TagVerdict, ...] = ()
    failure: str = ""


def rejection(candidate: Candidate, verdict: Verdict, reason: str) -> TagVerdict:
    """The trace line of a candidate the policy rules out: no rank, the value it compared."""
    return TagVerdict(candidate.tag, verdict, candidate.value, None, reason)


def examples(candidates: list[Candidate], *, values: bool = False, limit: int = 3) -> str:
    """`a (value "x"), b, c`: a few candidates in byte order, for error messages.

    A value is shown when it differs from its tag, or always with `values`.
    """
    shown = sorted(candidates, key=lambda c: c.tag)[:limit]
    text = ", ".join(
        f'{c.tag} (value "{c.value}")' if values or c.value != c.tag else c.tag for c in shown
    )
    more = len(candidates) - len(shown)
    return text + (f" and {more} more" if more > 0 else "")
