"""`select highest|lowest alphabetical`: Flux's Alphabetical policy (image-policies.md §4).

Values compare as UTF-8 bytes (Go's string `<`): no locale, no case folding, no natural sort, so
`1.10.0 < 1.9.0`. HIGHEST (Flux `order: asc`, the default) selects the greatest value, LOWEST
(`desc`) the least. Equal values cannot come from distinct tags without an `extract`; with one,
the byte-smaller original ranks first (the one Flux's filter keeps).
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Sequence

from engine.evaluate.policies.ranking import (
    ADMITTED,
    Candidates,
    Judged,
    Judgements,
    Scored,
    merged,
)
from engine.model import Direction, PolicyChoice


@dataclass(frozen=True)
class AlphabeticalPolicy:
    direction: Direction

    @staticmethod
    def from_choice(choice: PolicyChoice) -> AlphabeticalPolicy:
        return AlphabeticalPolicy(choice.direction)

    def judge(self, value: str) -> Judged:
        return ADMITTED

    def judge_all(self, values: Sequence[str], text: str | None = None) -> Judgements:
        return Judgements(list(values), [None] * len(values), [])

    def best(self, admitted: Candidates) -> Scored:
        """The value furthest in the policy's direction; of equal values, the byte-smaller tag."""
        pick = max if self.direction is Direction.HIGHEST else min
        return admitted.first_tag(admitted.values, pick(admitted.values))

    def rank(self, admitted: Sequence[Scored]) -> list[Scored]:
        by_tag = sorted(admitted, key=itemgetter(0))  # tags are distinct: byte order of tag
        by_tag.sort(key=itemgetter(1), reverse=self.direction is Direction.HIGHEST)  # stable
        return by_tag

    def merge(self, ranked: Sequence[Scored], added: Sequence[Scored]) -> list[Scored]:
        return merged(ranked, added, self.rank, self._ahead)

    def _ahead(self, a: Scored, b: Scored) -> bool:
        """`rank`'s order: the value in the policy's direction, then the byte-smaller tag."""
        if a.value != b.value:
            return (a.value > b.value) is (self.direction is Direction.HIGHEST)
        return a.tag < b.tag

    def reasons(self, ranked: Sequence[Scored]) -> list[str]:
        word = "highest" if self.direction is Direction.HIGHEST else "lowest"
        return [f"byte order, {word} first"] * len(ranked)

    def failure(self, judged: Sequence[tuple[str, str, Judged]]) -> str:
        return ""  # every value is admitted, so a ranking of candidates never comes out empty
