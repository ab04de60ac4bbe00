"""`select highest|lowest numerical`: Flux's Numerical policy (image-policies.md §5), improved.

Values are read with Go's `strconv.ParseFloat(s, 64)` (engine.evaluate.goparse). Where Flux
aborts the whole policy on the first value that does not parse (`latest`), gitward skips that
tag with verdict `unparsable` and ranks the rest; only when no value parses does the policy
fail, naming a few tags and their values.

Ties (`1`, `1.0`, `01`; or values that round to the same float64) go to the byte-smallest
original tag in both directions: what Flux's last-wins loop keeps over its descending tag
order. NaN follows Flux too. Flux's loop takes a NaN over whatever it holds (every comparison
with NaN is false) and then gives it up for the next tag, so in descending byte order only the
tags after the last NaN compete, and that NaN wins when none follow it. The ranking is the order
in which Flux would select the tags if each winner were removed in turn: the tags after the
last NaN best first, that NaN, the tags between it and the NaN before it, and so on. With
filterTags Flux's order is random; gitward uses the same descending order of original tags.
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

NAN_REASON = "NaN: Flux's loop takes it over the tags before it in descending byte order"
OVERTAKEN = "{tag} (NaN) follows it in descending byte order and replaces it in Flux's loop"


@dataclass(frozen=True)
class NumericalPolicy:
    direction: Direction

    @staticmethod
    def from_choice(choice: PolicyChoice) -> NumericalPolicy:
        return NumericalPolicy(choice.direction)

    def rank(self, candidates: Sequence[Candidate]) -> Ranking:
        numbers: list[tuple[Candidate, float]] = []
        rejected: list[TagVerdict] = []
        for candidate in sorted(candidates, key=lambda c: c.tag, reverse=True):  # Flux's order
            try:
                numbers.append((candidate, parse_float(candidate.value)))
            except ParseFloatError as err:
                rejected.append(rejection(candidate, Verdict.UNPARSABLE, f"not a number: {err}"))
        ranked: list[Judgement] = []
        overtaken_by = ""
        for run, nan in reversed(_split_at_nans(numbers)):
            if nan is not None:
                ranked.append(Judgement(nan, Verdict.CANDIDATE, NAN_REASON))
                overtaken_by = nan.tag
            ranked += self._ranked(run, overtaken_by)
        failure = ""
        if not ranked:
            failure = (
                f"none of the {len(candidates)} candidate tags has a numeric value (Go "
                f"ParseFloat): {examples(list(candidates), values=True)}"
            )
        return Ranking(tuple(ranked), tuple(rejected), failure)

    def _ranked(self, run: list[tuple[Candidate, float]], overtaken_by: str) -> list[Judgement]:
        """One run of numbers between NaNs, best first; ties to the byte-smaller tag."""
        highest = self.direction is Direction.HIGHEST
        ordered = sorted(run, key=lambda item: item[0].tag)
        ordered.sort(key=lambda item: item[1], reverse=highest)  # stable: ties stay in byte order
        out: list[Judgement] = []
        for i, (candidate, number) in enumerate(ordered):
            reason = f"value {number!r}"
            if i and ordered[i - 1][1] == number:
                reason += (
                    f", equal to {ordered[i - 1][0].tag}; the byte-smaller tag ranks first (Flux "
                    "keeps the last in descending tag order)"
                )
            if overtaken_by:
                reason += "; " + OVERTAKEN.format(tag=overtaken_by)
            out.append(Judgement(candidate, Verdict.CANDIDATE, reason))
        return out


def _split_at_nans(
    numbers: list[tuple[Candidate, float]],
) -> list[tuple[list[tuple[Candidate, float]], Candidate | None]]:
    """Numbers in Flux's order cut at each NaN: [(run before it, the NaN), ..., (last run, None)]."""
    parts: list[tuple[list[tuple[Candidate, float]], Candidate | None]] = []
    run: list[tuple[Candidate, float]] = []
    for candidate, number in numbers:
        if math.isnan(number):
            parts.append((run, candidate))
            run = []
        else:
            run.append((candidate, number))
    parts.append((run, None))
    return parts
