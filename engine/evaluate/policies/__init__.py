"""One policy per kind behind `TagPolicy`; `policy_for` is the only place that chooses one.

A policy is built from the rule (validating it up front) and then ranks candidates: tags that
passed exclusion and filterTags, each with the value it compares. It never sees the other tags,
never mutates its input, and breaks every tie by the original tag, so its ranking does not
depend on the order the candidates came in.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

from engine.evaluate.policies.alphabetical import AlphabeticalPolicy
from engine.evaluate.policies.numerical import NumericalPolicy
from engine.evaluate.policies.ranking import Candidate, Judgement, Ranking, Verdict
from engine.evaluate.policies.semver import InvalidRange, SemverPolicy
from engine.model import PolicyChoice, PolicyKind

__all__ = [
    "Candidate",
    "InvalidRange",
    "Judgement",
    "Ranking",
    "TagPolicy",
    "Verdict",
    "policy_for",
]


class TagPolicy(Protocol):
    def rank(self, candidates: Sequence[Candidate]) -> Ranking:
        """Admitted candidates best first, the rest as trace lines with a verdict and a reason."""
        ...


POLICIES: dict[PolicyKind, Callable[[PolicyChoice], TagPolicy]] = {
    PolicyKind.SEMVER: SemverPolicy.from_choice,
    PolicyKind.ALPHABETICAL: AlphabeticalPolicy.from_choice,
    PolicyKind.NUMERICAL: NumericalPolicy.from_choice,
}


def policy_for(choice: PolicyChoice) -> TagPolicy:
    """The policy for a rule's choice; InvalidRange when a semver range is malformed."""
    return POLICIES[choice.kind](choice)
