"""`select highest semver "<range>"`: Flux's SemVer policy (image-policies.md §3).

Tags Flux cannot parse are skipped (verdict `unparsable`), never an error. A prerelease that
would match but for its `||` group having no prerelease comparator is `prerelease-excluded`;
any other miss is `out-of-range`, with the comparator that failed. Ties (equal precedence:
`v1.0.0` and `1.0.0`, `1.0.0+a` and `1.0.0+b`) go to the byte-largest original tag, which is
what Flux's first-wins loop keeps over its descending tag order.
"""

from __future__ import annotations

import operator
import re
from itertools import compress, filterfalse, repeat
from operator import itemgetter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from engine.evaluate.policies.ranking import (
    Candidates,
    Judged,
    Judgements,
    Scored,
    Verdict,
    examples,
    judged_each,
    merged,
)
from engine.model import PolicyChoice
from engine.rules.regex import line_text, plain_lines
from engine.rules.semver import (
    MAX_VERSION_BYTES,
    PRERELEASE_NOT_ALLOWED,
    Constraint,
    ConstraintError,
    SortKey,
    Wildcard,
    parse_constraint,
    parse_version,
    plain_sort_key,
)

# A comparator with no wildcard compares sort keys (Masterminds' Compare) with one of these.
_KEY_TESTS: dict[str, Callable[[SortKey, SortKey], bool]] = {
    "": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "=>": operator.ge,
    "<=": operator.le,
    "=<": operator.le,
}

_PLAIN_LINES = re.compile(
    r"\n(v?([0-9]{1,19})\.([0-9]{1,19})\.([0-9]{1,19})"
    r"(?:-((?!0[0-9]+[.+\n])[0-9A-Za-z-]+(?:\.(?!0[0-9]+[.+\n])[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)(?=\n)"
)
"""`plain_sort_key`'s versions, one per line of a `line_text`: 19 digits stay below uint64's
limit, and a numeric prerelease identifier has no leading zero. A value it skips is judged
alone, unless it has fewer than two dots."""
_FEW_DOTS = re.compile(r"\n([^\n.]*(?:\.[^\n.]*)?)(?=\n)")

KeyTest = tuple[Callable[[SortKey, SortKey], bool], SortKey, str]
"""A comparator as a test on sort keys: (test, the bound's key, `<comparator> fails`)."""


class InvalidRange(ValueError):
    """A range Masterminds would refuse: the policy is invalid."""


@dataclass(frozen=True)
class SemverPolicy:
    """A range; `key_groups` is the same range as tests on sort keys, when it can be one.

    Every comparator without a wildcard (`>=1.0.0`, `<2.0.0-0`, `!=1.2.3`) is such a test, so
    most ranges are judged without building a Version per tag; `~`, `^` and wildcards are
    judged by the Constraint itself.
    """

    constraint: Constraint
    key_groups: tuple[tuple[tuple[KeyTest, ...], bool], ...] | None
    misses: dict[tuple[bool, tuple[str, ...]], Judged] = field(
        default_factory=dict, compare=False, repr=False
    )

    @staticmethod
    def from_choice(choice: PolicyChoice) -> SemverPolicy:
        try:
            constraint = parse_constraint(choice.range)
        except ConstraintError as err:
            raise InvalidRange(f'invalid semver range "{choice.range}": {err}') from None
        return SemverPolicy(constraint, _key_groups(constraint))

    def judge(self, value: str) -> Judged:
        """Admitted with key (sort key, index of the first group that admits it), or why not.

        Misses carry no key (they are many, and share their few Judged values); `failure` reads
        the versions again.
        """
        if value.count(".") < 2:
            return _TOO_FEW_DOTS
        key = plain_sort_key(value)
        if key is None or self.key_groups is None:
            version = parse_version(value)
            if version is None:
                return _NOT_SEMVER
            if self.key_groups is None:
                check = self.constraint.assess(version)
                if check.admitted_by is not None:
                    return Judged(None, "", (version.sort_key, check.admitted_by))
                return self._missed(version.is_prerelease, check.failures)
            key = version.sort_key
        prerelease = key[3] == 0
        if len(self.key_groups) == 1:  # most ranges: no `||`, no lists to build
            tests, allows_prerelease = self.key_groups[0]
            for test, bound, fails in tests:
                if not test(key, bound):
                    return self._missed(prerelease, (fails,))
            if prerelease and not allows_prerelease:
                return self._missed(True, ("",))
            return Judged(None, "", (key, 0))
        failures: list[str] = []
        for index, (tests, allows_prerelease) in enumerate(self.key_groups):
            failure = ""
            for test, bound, fails in tests:
                if not test(key, bound):
                    failure = fails
                    break
            if not failure and (allows_prerelease or not prerelease):
                return Judged(None, "", (key, index))
            failures.append(failure)
        return self._missed(prerelease, tuple(failures))

    def judge_all(self, values: Sequence[str], text: str | None = None) -> Judgements:
        """`judge` of each value, for a range of one group of key tests, in passes that run in C:
        plain versions read by one regex over the values' `line_text` (`text`, when the caller
        has it), their keys built column by column and each test mapped over them. A
        prerelease's key is then (major, minor, patch, 0, ()), when every bound is a release: a
        comparison with one never reaches the prerelease identifiers. Any other value or range
        is judged alone."""
        groups = self.key_groups
        if groups is None or len(groups) != 1 or not values:
            return judged_each(self.judge, values)
        text = text if text is not None else line_text(values)
        if not plain_lines(text, len(values)):
            return judged_each(self.judge, values)
        tests, allows_prerelease = groups[0]
        rows = _PLAIN_LINES.findall(text)
        plain = list(map(itemgetter(0), rows))
        if plain and max(map(len, plain)) > MAX_VERSION_BYTES:
            return judged_each(self.judge, values)
        out = Judgements([], [], [])
        few = _FEW_DOTS.findall(text)
        if few:
            out.missed.append((_TOO_FEW_DOTS, few))
        alone: list[str] = []
        if len(rows) + len(few) != len(values):  # some have two dots but are not plain
            known = {*plain, *few}
            alone = [value for value in values if value not in known]
        prereleases = list(compress(rows, map(itemgetter(4), rows)))
        releases = list(filterfalse(itemgetter(4), rows)) if prereleases else rows
        if prereleases and (allows_prerelease or any(bound[3] != 1 for _, bound, _ in tests)):
            alone += map(itemgetter(0), prereleases)
            prereleases = []
        for subset, flag in ((releases, 1), (prereleases, 0)):
            if subset:
                tags, major, minor, patch, _ = zip(*subset)
                keys = zip(map(int, major), map(int, minor), map(int, patch), repeat(flag), repeat(()))
                self._test_all(list(tags), list(keys), flag == 0, out)
        if alone:
            rest = judged_each(self.judge, alone)
            out.admitted.extend(rest.admitted)
            out.keys.extend(rest.keys)
            out.missed.extend(rest.missed)
        return out

    def _test_all(self, values: list[str], keys: list[Any], prerelease: bool, out: Judgements) -> None:
        """The single group's tests over plain versions' keys, a pass each (`judge`'s order)."""
        assert self.key_groups is not None
        tests, allows_prerelease = self.key_groups[0]
        for test, bound, fails in tests:
            passed = list(map(test, keys, repeat(bound)))
            if not all(passed):
                out.missed.append(
                    (self._missed(prerelease, (fails,)), list(compress(values, map(operator.not_, passed))))
                )
                values, keys = list(compress(values, passed)), list(compress(keys, passed))
        if not values:
            return
        if prerelease and not allows_prerelease:
            out.missed.append((self._missed(True, ("",)), values))
            return
        out.admitted.extend(values)
        out.keys.extend(zip(keys, repeat(0)))

    def best(self, admitted: Candidates) -> Scored:
        """`rank`'s first: the highest (key, tag)."""
        return admitted.at(max(zip(admitted.keys, admitted.tags))[1])

    def _missed(self, prerelease: bool, failures: tuple[str, ...]) -> Judged:
        """The Judged of a miss, one per distinct (prerelease, failures): shared, keyless."""
        known = self.misses.get((prerelease, failures))
        if known is None:
            verdict, reason = self._miss(prerelease, failures)
            known = self.misses[(prerelease, failures)] = Judged(verdict, reason, None)
        return known

    def _miss(self, prerelease: bool, failures: tuple[str, ...]) -> tuple[Verdict, str]:
        """Out of range; prerelease-excluded if a group's comparators all match the prerelease.

        `failures` are the range's `assess` of the version: each group's failing comparator.
        """
        if prerelease and "" in failures:
            return Verdict.PRERELEASE_EXCLUDED, PRERELEASE_NOT_ALLOWED
        if len(failures) == 1:
            return Verdict.OUT_OF_RANGE, failures[0]
        groups = self.constraint.groups
        return Verdict.OUT_OF_RANGE, "; ".join(f"[{g}] {f}" for g, f in zip(groups, failures))

    def rank(self, admitted: Sequence[Scored]) -> list[Scored]:
        """Best first: by precedence, ties to the byte-larger tag (Python's `str` order is Go's
        byte order of UTF-8). Keys are (sort key, first admitting group), and an equal sort key
        has the same group, so (key, tag) orders by (precedence, tag)."""
        return sorted(admitted, key=itemgetter(2, 0), reverse=True)

    def merge(self, ranked: Sequence[Scored], added: Sequence[Scored]) -> list[Scored]:
        return merged(ranked, added, self.rank, _ahead)

    def reasons(self, ranked: Sequence[Scored]) -> list[str]:
        """`matches <group>` for the first group that admits the version, or the tie."""
        matches = [f"matches {group}" for group in self.constraint.groups]
        out: list[str] = []
        previous: Scored | None = None
        for scored in ranked:
            sort_key, group = scored.key
            if previous is not None and previous.key[0] == sort_key:
                out.append(
                    f"same precedence as {previous.tag}; the byte-larger tag ranks "
                    "first (Flux keeps the first in descending tag order)"
                )
            else:
                out.append(matches[group])
            previous = scored
        return out

    def failure(self, judged: Sequence[tuple[str, str, Judged]]) -> str:
        missed = []
        for tag, value, judgement in judged:
            version = parse_version(value) if judgement.verdict is not Verdict.UNPARSABLE else None
            if version is not None:
                missed.append((version.sort_key, tag, value, judgement.reason))
        if not missed:
            return (
                f"none of the {len(judged)} candidate tags is a semver version "
                f"(at least two dots, e.g. 1.2.3): {examples([(t, v) for t, v, _ in judged])}"
            )
        _, tag, value, reason = max(missed)
        return (
            f'no tag satisfies "{self.constraint.text}"; highest outside the range: '
            f"{_describe(tag, value)} ({reason})"
        )


def _ahead(a: Scored, b: Scored) -> bool:
    """`rank`'s order: higher (key, tag) first."""
    return (a.key, a.tag) > (b.key, b.tag)


def _key_groups(constraint: Constraint) -> tuple[tuple[tuple[KeyTest, ...], bool], ...] | None:
    """The range as key tests per group (with whether it admits prereleases), if it can be."""
    groups = []
    for group in constraint.groups:
        tests = []
        for c in group.comparators:
            test = _KEY_TESTS.get(c.op)
            if test is None or c.wildcard is not Wildcard.NONE:
                return None
            tests.append((test, c.bound.sort_key, f"{c} fails"))
        groups.append((tuple(tests), group.allows_prerelease))
    return tuple(groups)


_TOO_FEW_DOTS = Judged(Verdict.UNPARSABLE, "not a semver version: Flux needs at least two dots", None)
_NOT_SEMVER = Judged(Verdict.UNPARSABLE, "not a semver version", None)


def _describe(tag: str, value: str) -> str:
    if tag == value:
        return tag
    return f'{tag} (value "{value}")'
