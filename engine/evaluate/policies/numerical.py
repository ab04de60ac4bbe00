"""`select highest|lowest numerical`: Flux's Numerical policy (image-policies.md §5), improved.

Values are read with Go's `strconv.ParseFloat(s, 64)` (engine.evaluate.goparse). Where Flux
aborts the whole policy on the first value that does not parse (`latest`), gitward skips that
tag with verdict `unparsable` and ranks the rest; only when no value parses does the policy
fail, naming a few tags and their values.

Ties (`1`, `1.0`, `01`; or values that round to the same float64) go to the byte-smallest
original tag in both directions: what Flux's last-wins loop keeps over its descending tag
order. NaN is gitward's rule, since Flux's result with NaN depends on tag order: a NaN value
ranks below every number in both directions (so it wins only when every value is NaN), NaNs
among themselves by byte order, each with verdict `lower` and a reason saying so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from engine.evaluate.goparse import ParseFloatError, parse_float
from engine.evaluate.policies.ranking import (
    Candidate,
    Judgement,
    Ranking,
    Verdict,
    examples,
    rejection,
)
from engine.model import Direction, PolicyChoice, TagVerdict

NAN_REASON = "NaN ranks below every number (gitward's rule; Flux's result depends on tag order)"


@dataclass(frozen=True)
class NumericalPolicy:
    direction: Direction

    @staticmethod
    def from_choice(choice: PolicyChoice) -> NumericalPolicy:
        return NumericalPolicy(choice.direction)

    def rank(self, candidates: Sequence[Candidate]) -> Ranking:
        numbers: list[tuple[Candidate, float]] = []
        nans: list[Candidate] = []
        rejected: list[TagVerdict] = []
        for candidate in sorted(candidates, key=lambda c: c.tag):
            try:
                number = parse_float(candidate.value)
            except ParseFloatError as err:
                rejected.append(rejection(candidate, Verdict.UNPARSABLE, f"not a number: {err}"))
                continue
            if math.isnan(number):
                nans.append(candidate)
            else:
                numbers.append((candidate, number))
        highest = self.direction is Direction.HIGHEST
        numbers.sort(key=lambda item: item[1], reverse=highest)  # stable: ties stay in byte order
        ranked = self._ranked(numbers) + [Judgement(c, Verdict.CANDIDATE, NAN_REASON) for c in nans]
        failure = ""
        if not ranked:
            failure = (
                f"none of the {len(candidates)} candidate tags has a numeric value (Go "
                f"ParseFloat): {examples(list(candidates), values=True)}"
            )
        return Ranking(tuple(ranked), tuple(rejected), failure)

    def _ranked(self, numbers: list[tuple[Candidate, float]]) -> list[Judgement]:
        out: list[Judgement] = []
        for i, (candidate, number) in enumerate(numbers):
            reason = f"value {number!r}"
            if i and numbers[i - 1][1] == number:
                reason += (
                    f", equal to {numbers[i - 1][0].tag}; the byte-smaller tag ranks first (Flux "
                    "keeps the last in descending tag order)"
                )
            out.append(Judgement(candidate, Verdict.CANDIDATE, reason))
        return out
