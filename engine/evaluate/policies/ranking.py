"""What a policy is given and what it returns: values to judge, candidates to rank.

A policy works in two steps so that the first can be kept between evaluations. `judge` reads one
value alone (a semver version and whether the range admits it, a number) and gives a `Judged`;
it depends on nothing else, so a caller may keep it per value (engine.evaluate.policy's
PolicyMemo). `rank` orders the admitted candidates, which depends on all of them, with sorts
that run in C; `reasons` puts the order into words, only for the lines someone reads.

Go compares strings as UTF-8 bytes, and every tie-break here follows it. Python's `str` order
(by code point) is that same order, so the policies sort `str`s as they are: UTF-8 encodes each
code point, lone surrogates included (as `surrogatepass` writes them), with a prefix-free byte
sequence whose byte order is the code points' order, so comparing the encodings byte by byte
compares the code points one by one.
"""

from __future__ import annotations

from enum import StrEnum
from itertools import compress, repeat
from operator import eq
from typing import Any, Callable, NamedTuple, Sequence


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


class Judged(NamedTuple):
    """One value as a policy reads it alone: admitted (`verdict` None) or why not.

    `key` is the policy's own reading (a semver sort key, a float), kept for `rank` and for a
    failure message; None when there is none (an unparsable value).
    """

    verdict: Verdict | None
    reason: str
    key: Any


class Scored(NamedTuple):
    """A candidate tag with the value it compares and its policy's key for that value."""

    tag: str
    value: str
    key: Any


ADMITTED = Judged(None, "", None)


class Judgements(NamedTuple):
    """Many values judged at once (`TagPolicy.judge_all`): what `judge` says of each.

    `admitted` are the admitted values and `keys` their keys, in the same order; `missed` has
    each distinct miss (verdict and reason) once, with the values it holds for.
    """

    admitted: list[str]
    keys: list[Any]
    missed: list[tuple[Judged, list[str]]]


def judged_each(judge: Callable[[str], Judged], values: Sequence[str]) -> Judgements:
    """`judge` of each value, grouped: the way any policy can judge many values."""
    admitted: list[str] = []
    keys: list[Any] = []
    missed: dict[tuple[Verdict | None, str], tuple[Judged, list[str]]] = {}
    for value in values:
        judged = judge(value)
        if judged.verdict is None:
            admitted.append(value)
            keys.append(judged.key)
        else:
            kind = (judged.verdict, judged.reason)
            group = missed.get(kind)
            if group is None:
                group = missed[kind] = (judged, [])
            group[1].append(value)
    return Judgements(admitted, keys, list(missed.values()))


class Candidates(NamedTuple):
    """Admitted candidates as parallel columns (tag, value, key): one list each rather than a
    Scored per tag, until a reader asks for the ranking. Never changed once made (the empty
    NO_CANDIDATES is shared)."""

    tags: list[str]
    values: list[str]
    keys: list[Any]

    def scored(self) -> list[Scored]:
        """One Scored per candidate, built in C (no `Scored.__new__` call each)."""
        return list(map(tuple.__new__, repeat(Scored), zip(self.tags, self.values, self.keys)))

    def at(self, tag: str) -> Scored:
        """The candidate `tag` (one of them)."""
        index = self.tags.index(tag)
        return Scored(tag, self.values[index], self.keys[index])

    def first_tag(self, column: Sequence[Any], top: Any) -> Scored:
        """The byte-smallest tag whose `column` entry equals `top`."""
        if column.count(top) == 1:
            return self.at(self.tags[column.index(top)])
        return self.at(min(compress(self.tags, map(eq, column, repeat(top)))))

    def joined(self, other: Candidates) -> Candidates:
        """These candidates and `other` (other tags)."""
        return Candidates(self.tags + other.tags, self.values + other.values, self.keys + other.keys)


NO_CANDIDATES = Candidates([], [], [])

MERGE_AT_MOST = 64
"""Candidates `merged` into a ranking one by one at least; more, and past 1/64 of the ranking,
a sort of all of them is cheaper (a binary search per candidate runs in Python)."""


def merged(
    ranked: Sequence[Scored],
    added: Sequence[Scored],
    rank: Callable[[Sequence[Scored]], list[Scored]],
    ahead: Callable[[Scored, Scored], bool],
) -> list[Scored]:
    """The ranking of `ranked`, a ranking, and `added` (other tags): what `rank` makes of both.

    `ahead(a, b)` says that `a` ranks before `b`; it must be the total order `rank` sorts by. The
    added candidates are ranked and each is put in place by a binary search; the runs of `ranked`
    between them are copied in C. A daemon's rescan adds a few tags to thousands.
    """
    if len(added) > max(MERGE_AT_MOST, len(ranked) // 64):
        return rank([*ranked, *added])
    out: list[Scored] = []
    start, end = 0, len(ranked)
    for scored in rank(added):
        low, high = start, end
        while low < high:
            middle = (low + high) // 2
            if ahead(ranked[middle], scored):
                low = middle + 1
            else:
                high = middle
        out += ranked[start:low]
        out.append(scored)
        start = low
    out += ranked[start:]
    return out


def examples(candidates: Sequence[tuple[str, str]], *, values: bool = False, limit: int = 3) -> str:
    """`a (value "x"), b, c`: a few (tag, value) pairs in byte order of tag, for error messages.

    A value is shown when it differs from its tag, or always with `values`.
    """
    shown = sorted(candidates)[:limit]
    text = ", ".join(
        f'{tag} (value "{value}")' if values or value != tag else tag for tag, value in shown
    )
    more = len(candidates) - len(shown)
    return text + (f" and {more} more" if more > 0 else "")
