"""One policy per kind behind `TagPolicy`; `policy_for` is the only place that chooses one.

A policy is built from the rule (validating it up front). It judges each value alone (`judge`,
which a caller may keep per value) and then ranks the admitted candidates. It never sees the
other tags, never mutates its input, and breaks every tie by the original tag, so its ranking
does not depend on the order the candidates came in.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

from engine.evaluate.policies.alphabetical import AlphabeticalPolicy
from engine.evaluate.policies.numerical import NumericalPolicy
from engine.evaluate.policies.ranking import Candidates, Judged, Judgements, Scored, Verdict
from engine.evaluate.policies.semver import InvalidRange, SemverPolicy
from engine.model import PolicyChoice, PolicyKind

__all__ = [
    "Candidates",
    "InvalidRange",
    "Judged",
    "Judgements",
    "Scored",
    "TagPolicy",
    "Verdict",
    "policy_for",
]


class TagPolicy(Protocol):
    def judge(self, value: str) -> Judged:
        """One value alone: admitted (verdict None) with the key `rank` compares, or why not."""
        ...

    def judge_all(self, values: Sequence[str], text: str | None = None) -> Judgements:
        """`judge` of many distinct values at once: the same answers, with passes in C where
        the policy has them (a first evaluation judges every tag). `text` is the values'
        `line_text` (engine.rules.regex), when the caller has it."""
        ...

    def rank(self, admitted: Sequence[Scored]) -> list[Scored]:
        """The admitted candidates (distinct tags) best first."""
        ...

    def best(self, admitted: Candidates) -> Scored:
        """`rank(admitted.scored())[0]`, without ranking them where the policy can."""
        ...

    def merge(self, ranked: Sequence[Scored], added: Sequence[Scored]) -> list[Scored]:
        """`rank` of both, given `ranked` is a ranking and `added` has other tags: a rescan."""
        ...

    def reasons(self, ranked: Sequence[Scored]) -> list[str]:
        """Why each of the first tags of a ranking is where it is (given any prefix of it)."""
        ...

    def failure(self, judged: Sequence[tuple[str, str, Judged]]) -> str:
        """Why nothing ranked, given every candidate's (tag, value, judgement); none admitted."""
        ...


POLICIES: dict[PolicyKind, Callable[[PolicyChoice], TagPolicy]] = {
    PolicyKind.SEMVER: SemverPolicy.from_choice,
    PolicyKind.ALPHABETICAL: AlphabeticalPolicy.from_choice,
    PolicyKind.NUMERICAL: NumericalPolicy.from_choice,
}


def policy_for(choice: PolicyChoice) -> TagPolicy:
    """The policy for a rule's choice; InvalidRange when a semver range is malformed."""
    return POLICIES[choice.kind](choice)
