"""How an evaluation keeps its outcome cheaply: unranked lines as batches, candidates ranked
only when read (engine.evaluate.policy builds both; a reader of the trace expands them).

A first evaluation decides 100,000 tags in a few passes; making a trace line or a Scored per
tag would cost more than the passes (bench/README.md), so both are made on demand.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import compress, repeat
from operator import itemgetter, not_
from typing import Iterable, Iterator, Sequence, Union

from engine.evaluate.policies import TagPolicy
from engine.evaluate.policies.ranking import MERGE_AT_MOST, NO_CANDIDATES, Candidates, Scored, Verdict

Line = tuple[str, Verdict, Union[str, None], str]
"""An unranked trace line: (tag, verdict, value, reason)."""


@dataclass(frozen=True)
class Batch:
    """Unranked lines that share a verdict and a reason, kept as columns: the lines are made
    when a reader iterates them. `values` is parallel to `tags` (the same list when each value
    is its tag), None when the tags have no value (excluded, filtered)."""

    verdict: Verdict
    reason: str
    tags: Sequence[str]
    values: Sequence[str] | None

    def __len__(self) -> int:
        return len(self.tags)

    def __iter__(self) -> Iterator[Line]:
        values: Iterable[str | None] = repeat(None) if self.values is None else self.values
        return zip(self.tags, repeat(self.verdict), values, repeat(self.reason))


Chunk = Union[Batch, list[Line]]


class Ranking:
    """The admitted candidates, ranked only when a reader asks for more than the best.

    `ranked` is a ranking of some of them, `added` the others as columns; `ranking()` merges
    them once (`TagPolicy.merge`) and keeps the result, which later rescans merge into. Shared
    by an Evaluation and the memo's partition: ranking is a pure function of the candidates, so
    filling it in late changes nothing anyone can see.
    """

    def __init__(self, policy: TagPolicy, ranked: Sequence[Scored], added: Candidates) -> None:
        self.policy = policy
        self._ranked = ranked
        self._added = added

    def __len__(self) -> int:
        return len(self._ranked) + len(self._added.tags)

    def best(self) -> Scored:
        """The selected candidate: a merge of a few added ones, else the policy's `best`."""
        added = len(self._added.tags)
        if not added:
            return self._ranked[0]
        if self._ranked and added <= max(MERGE_AT_MOST, len(self._ranked) // 64):
            return self.ranking()[0]
        ranked = self._ranked
        every = Candidates(*map(list, zip(*ranked))).joined(self._added) if ranked else self._added
        return self.policy.best(every)

    def ranking(self) -> Sequence[Scored]:
        """All candidates, best first."""
        if self._added.tags:
            added, self._added = self._added.scored(), NO_CANDIDATES
            self._ranked = self.policy.merge(self._ranked, added) if self._ranked else self.policy.rank(added)
        return self._ranked

    def extended(self, added: Candidates) -> Ranking:
        """These candidates and `added` (other tags)."""
        if not added.tags:
            return self
        return Ranking(self.policy, self._ranked, self._added.joined(added))

    def without(self, gone: set[str]) -> Ranking:
        """These candidates but the tags `gone`, to be ranked afresh (a numerical ranking with a
        NaN changes when a tag leaves it)."""
        every = self._added
        if self._ranked:
            every = Candidates(*map(list, zip(*self._ranked))).joined(every)
        kept = list(map(not_, map(gone.__contains__, every.tags)))
        columns = (list(compress(column, kept)) for column in every)
        return Ranking(self.policy, (), Candidates(*columns))


def without(chunk: Chunk, gone: set[str]) -> Chunk:
    """`chunk` but the lines of the tags `gone`."""
    if not isinstance(chunk, Batch):
        return [line for line in chunk if line[0] not in gone]
    kept = list(map(not_, map(gone.__contains__, chunk.tags)))
    tags = list(compress(chunk.tags, kept))
    if chunk.values is None or chunk.values is chunk.tags:
        return Batch(chunk.verdict, chunk.reason, tags, None if chunk.values is None else tags)
    return Batch(chunk.verdict, chunk.reason, tags, list(compress(chunk.values, kept)))


def line_counts(chunks: Iterable[Chunk]) -> Counter[str]:
    """The lines of `chunks` by verdict."""
    counts: Counter[str] = Counter()
    for chunk in chunks:
        if isinstance(chunk, Batch):
            counts[chunk.verdict] += len(chunk)
        else:
            counts.update(map(itemgetter(1), chunk))
    return counts
