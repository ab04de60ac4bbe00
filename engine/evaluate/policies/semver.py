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
    byte_order,
    examples,
)
from engine.model import PolicyChoice
from engine.rules.semver import (
    PRERELEASE_NOT_ALLOWED,
    Constraint,
    ConstraintGroup,
    SortKey,
    ConstraintError,
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
        admitted: list[tuple[Candidate, Version]] = []
        missed: list[tuple[Candidate, Version]] = []
        rejected: list[Judgement] = []
        for candidate in candidates:
            version = parse_version(candidate.value)
            if version is None:
                reason = _unparsable(candidate.value)
                rejected.append(Judgement(candidate, Verdict.UNPARSABLE, reason))
            elif self.constraint.check(version):
                admitted.append((candidate, version))
            else:
                missed.append((candidate, version))
                rejected.append(self._miss(candidate, version))
        admitted.sort(key=_precedence, reverse=True)
        ranked = tuple(self._ranked(admitted))
        return Ranking(ranked, tuple(rejected), "" if ranked else self._failure(candidates, missed))

    def _miss(self, candidate: Candidate, version: Version) -> Judgement:
        """Out of range; prerelease-excluded if a group's comparators all match the prerelease."""
        failures = [_comparator_failure(group, version) for group in self.constraint.groups]
        if version.is_prerelease and "" in failures:
            return Judgement(candidate, Verdict.PRERELEASE_EXCLUDED, PRERELEASE_NOT_ALLOWED)
        if len(failures) == 1:
            return Judgement(candidate, Verdict.OUT_OF_RANGE, failures[0])
        groups = self.constraint.groups
        reason = "; ".join(f"[{g}] {f}" for g, f in zip(groups, failures))
        return Judgement(candidate, Verdict.OUT_OF_RANGE, reason)

    def _ranked(self, admitted: list[tuple[Candidate, Version]]) -> list[Judgement]:
        out: list[Judgement] = []
        for i, (candidate, version) in enumerate(admitted):
            reason = self.constraint.explain(version)
            if i and admitted[i - 1][1].compare(version) == 0:
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
        return (
            f'no tag satisfies "{self.constraint.text}"; highest outside the range: '
            f"{_describe(candidate)} ({self._miss(candidate, version).reason})"
        )


def _comparator_failure(group: ConstraintGroup, version: Version) -> str:
    """The first comparator of `group` that `version` fails, the prerelease gate aside."""
    for comparator in group.comparators:
        if not comparator.matches(version):
            return f"{comparator} fails"
    return ""


def _precedence(item: tuple[Candidate, Version]) -> tuple[SortKey, bytes]:
    candidate, version = item
    return (version.sort_key, byte_order(candidate.tag))


def _unparsable(value: str) -> str:
    if value.count(".") < 2:
        return "not a semver version: Flux needs at least two dots"
    return "not a semver version"


def _describe(candidate: Candidate) -> str:
    if candidate.tag == candidate.value:
        return candidate.tag
    return f'{candidate.tag} (value "{candidate.value}")'
