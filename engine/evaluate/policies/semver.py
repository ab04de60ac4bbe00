"""`select highest semver "<range>"`: Flux's SemVer policy (image-policies.md §3).

Tags Flux cannot parse are skipped (verdict `unparsable`), never an error. A prerelease that
would match but for its `||` group having no prerelease comparator is `prerelease-excluded`;
any other miss is `out-of-range`, with the comparator that failed. Ties (equal precedence:
`v1.0.0` and `1.0.0`, `1.0.0+a` and `1.0.0+b`) go to the byte-largest original tag, which is
what Flux's first-wins loop keeps over its descending tag order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from engine.evaluate.policies.ranking import (
    Candidate,
    Judgement,
    Ranking,
    Verdict,
    examples,
    rejection,
)
from engine.model import PolicyChoice, TagVerdict
from engine.rules.semver import (
    PRERELEASE_NOT_ALLOWED,
    Constraint,
    ConstraintError,
    SortKey,
    Version,
    parse_constraint,
    parse_version,
)


class InvalidRange(ValueError):
    """A range Masterminds would refuse: the policy is invalid."""


@dataclass(frozen=True)
class SemverPolicy:
    constraint: Constraint

    @staticmethod
    def from_choice(choice: PolicyChoice) -> SemverPolicy:
        try:
            return SemverPolicy(parse_constraint(choice.range))
        except ConstraintError as err:
            raise InvalidRange(f'invalid semver range "{choice.range}": {err}') from None

    def rank(self, candidates: Sequence[Candidate]) -> Ranking:
        admitted: list[tuple[Candidate, Version, int]] = []
        missed: list[tuple[Candidate, Version]] = []
        rejected: list[TagVerdict] = []
        for candidate in candidates:
            version = parse_version(candidate.value)
            if version is None:
                reason = _unparsable(candidate.value)
                rejected.append(rejection(candidate, Verdict.UNPARSABLE, reason))
                continue
            check = self.constraint.assess(version)
            if check.admitted_by is not None:
                admitted.append((candidate, version, check.admitted_by))
            else:
                missed.append((candidate, version))
                verdict, reason = self._miss(version, check.failures)
                rejected.append(rejection(candidate, verdict, reason))
        admitted.sort(key=_precedence, reverse=True)
        ranked = tuple(self._ranked(admitted))
        return Ranking(ranked, tuple(rejected), "" if ranked else self._failure(candidates, missed))

    def _miss(self, version: Version, failures: tuple[str, ...]) -> tuple[Verdict, str]:
        """Out of range; prerelease-excluded if a group's comparators all match the prerelease.

        `failures` are the range's `assess` of `version`: each group's failing comparator.
        """
        if version.is_prerelease and "" in failures:
            return Verdict.PRERELEASE_EXCLUDED, PRERELEASE_NOT_ALLOWED
        if len(failures) == 1:
            return Verdict.OUT_OF_RANGE, failures[0]
        groups = self.constraint.groups
        return Verdict.OUT_OF_RANGE, "; ".join(f"[{g}] {f}" for g, f in zip(groups, failures))

    def _ranked(self, admitted: list[tuple[Candidate, Version, int]]) -> list[Judgement]:
        """Judgements best first: `matches <group>` for the first group that admits the version."""
        matches = [f"matches {group}" for group in self.constraint.groups]
        out: list[Judgement] = []
        for i, (candidate, version, group) in enumerate(admitted):
            reason = matches[group]
            if i and admitted[i - 1][1].sort_key == version.sort_key:
                reason = (
                    f"same precedence as {admitted[i - 1][0].tag}; the byte-larger tag ranks "
                    "first (Flux keeps the first in descending tag order)"
                )
            out.append(Judgement(candidate, Verdict.CANDIDATE, reason))
        return out

    def _failure(
        self, candidates: Sequence[Candidate], missed: list[tuple[Candidate, Version]]
    ) -> str:
        if not missed:
            return (
                f"none of the {len(candidates)} candidate tags is a semver version "
                f"(at least two dots, e.g. 1.2.3): {examples(list(candidates))}"
            )
        candidate, version = max(missed, key=_precedence)
        _, reason = self._miss(version, self.constraint.assess(version).failures)
        return (
            f'no tag satisfies "{self.constraint.text}"; highest outside the range: '
            f"{_describe(candidate)} ({reason})"
        )


def _precedence(
    item: tuple[Candidate, Version] | tuple[Candidate, Version, int],
) -> tuple[SortKey, str]:
    """Semver precedence, then the tag (Python's `str` order is Go's byte order of UTF-8)."""
    return (item[1].sort_key, item[0].tag)


def _unparsable(value: str) -> str:
    if value.count(".") < 2:
        return "not a semver version: Flux needs at least two dots"
    return "not a semver version"


def _describe(candidate: Candidate) -> str:
    if candidate.tag == candidate.value:
        return candidate.tag
    return f'{candidate.tag} (value "{candidate.value}")'
