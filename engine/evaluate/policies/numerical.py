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
from operator import itemgetter
from dataclasses import dataclass
from typing import Sequence

from engine.evaluate.goparse import ParseFloatError, parse_float
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
from engine.model import Direction, PolicyChoice

_SHORT_DIGITS = 300  # float64 tops out near 1.8e308: 309 digits
NAN_REASON = "NaN: Flux's loop takes it over the tags before it in descending byte order"
OVERTAKEN = "{tag} (NaN) follows it in descending byte order and replaces it in Flux's loop"


@dataclass(frozen=True)
class NumericalPolicy:
    direction: Direction

    @staticmethod
    def from_choice(choice: PolicyChoice) -> NumericalPolicy:
        return NumericalPolicy(choice.direction)

    def judge(self, value: str) -> Judged:
        try:
            return Judged(None, "", parse_float(value))
        except ParseFloatError as err:
            return Judged(Verdict.UNPARSABLE, f"not a number: {err}", None)

    def judge_all(self, values: Sequence[str], text: str | None = None) -> Judgements:
        """Runs of ASCII digits (timestamps, build numbers) are read by `float()` in one pass:
        `parse_float` reads them the same way, and no run this short is out of float64's range."""
        if (
            values
            and all(map(str.isdigit, values))
            and "".join(values).isascii()
            and max(map(len, values)) <= _SHORT_DIGITS
        ):
            return Judgements(list(values), list(map(float, values)), [])
        return judged_each(self.judge, values)

    def best(self, admitted: Candidates) -> Scored:
        """Without a NaN (the sum of the keys is NaN then, or after inf - inf), the number
        furthest in the policy's direction, ties to the byte-smaller tag; else `rank`'s first."""
        keys = admitted.keys
        if math.isnan(sum(keys)):
            return self.rank(admitted.scored())[0]
        top = max(keys) if self.direction is Direction.HIGHEST else min(keys)
        return admitted.first_tag(keys, top)

    def rank(self, admitted: Sequence[Scored]) -> list[Scored]:
        numbers = sorted(admitted, key=itemgetter(0), reverse=True)  # Flux's order
        if not any(map(math.isnan, map(itemgetter(2), numbers))):
            return self._ranked(numbers)
        ranked: list[Scored] = []
        for run, nan in reversed(_split_at_nans(numbers)):
            if nan is not None:
                ranked.append(nan)
            ranked += self._ranked(run)
        return ranked

    def merge(self, ranked: Sequence[Scored], added: Sequence[Scored]) -> list[Scored]:
        """A NaN anywhere (the sum of the keys is NaN then, or after inf - inf) cuts the ranking
        into runs by byte order of tag: then everything is ranked again."""
        if math.isnan(sum(map(itemgetter(2), ranked)) + sum(map(itemgetter(2), added))):
            return self.rank([*ranked, *added])
        return merged(ranked, added, self.rank, self._ahead)

    def _ahead(self, a: Scored, b: Scored) -> bool:
        """`_ranked`'s order: the number in the policy's direction, then the byte-smaller tag."""
        if a.key != b.key:
            return (a.key > b.key) is (self.direction is Direction.HIGHEST)
        return a.tag < b.tag

    def reasons(self, ranked: Sequence[Scored]) -> list[str]:
        """A run's tags say which NaN overtakes them; ties say which tag ranks first."""
        out: list[str] = []
        previous: Scored | None = None
        overtaken = ""
        for scored in ranked:
            if math.isnan(scored.key):
                out.append(NAN_REASON)
                overtaken = "; " + OVERTAKEN.format(tag=scored.tag)
            else:
                reason = f"value {scored.key!r}"
                if previous is not None and previous.key == scored.key:
                    reason += (
                        f", equal to {previous.tag}; the byte-smaller tag ranks first (Flux "
                        "keeps the last in descending tag order)"
                    )
                out.append(reason + overtaken)
            previous = scored
        return out

    def failure(self, judged: Sequence[tuple[str, str, Judged]]) -> str:
        return (
            f"none of the {len(judged)} candidate tags has a numeric value (Go "
            f"ParseFloat): {examples([(tag, value) for tag, value, _ in judged], values=True)}"
        )

    def _ranked(self, run: list[Scored]) -> list[Scored]:
        """One run of numbers between NaNs, best first; ties to the byte-smaller tag."""
        ordered = sorted(run, key=itemgetter(0))  # byte order of tag (tags are distinct)
        ordered.sort(key=itemgetter(2), reverse=self.direction is Direction.HIGHEST)  # stable
        return ordered


def _split_at_nans(numbers: list[Scored]) -> list[tuple[list[Scored], Scored | None]]:
    """Numbers in Flux's order cut at each NaN: [(run before it, the NaN), ..., (last run, None)]."""
    parts: list[tuple[list[Scored], Scored | None]] = []
    run: list[Scored] = []
    for scored in numbers:
        if math.isnan(scored.key):
            parts.append((run, scored))
            run = []
        else:
            run.append(scored)
    parts.append((run, None))
    return parts
