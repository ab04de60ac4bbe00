"""`select highest|lowest alphabetical`: Flux's Alphabetical policy (image-policies.md §4).

Values compare as UTF-8 bytes (Go's string `<`): no locale, no case folding, no natural sort, so
`1.10.0 < 1.9.0`. HIGHEST (Flux `order: asc`, the default) selects the greatest value, LOWEST
(`desc`) the least. Equal values cannot come from distinct tags without an `extract`; with one,
the byte-smaller original ranks first (the one Flux's filter keeps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from engine.evaluate.policies.ranking import Candidate, Judgement, Ranking, Verdict
from engine.model import Direction, PolicyChoice


@dataclass(frozen=True)
class AlphabeticalPolicy:
    direction: Direction

    @staticmethod
    def from_choice(choice: PolicyChoice) -> AlphabeticalPolicy:
        return AlphabeticalPolicy(choice.direction)

    def rank(self, candidates: Sequence[Candidate]) -> Ranking:
        by_tag = sorted(candidates, key=lambda c: c.tag)
        highest = self.direction is Direction.HIGHEST
        ordered = sorted(by_tag, key=lambda c: c.value, reverse=highest)
        word = "highest" if highest else "lowest"
        ranked = tuple(
            Judgement(c, Verdict.CANDIDATE, f"byte order, {word} first") for c in ordered
        )
        return Ranking(ranked)
