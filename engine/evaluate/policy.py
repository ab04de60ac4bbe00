"""One ImagePolicy over one repository's tags: which tag wins, and why every tag won or lost.

The pipeline is Flux's (image-policies.md §1): the repository's exclusion list, then the
policy's filterTags (RE2 search; `extract` gives the value compared), then the policy, which
compares values and reports the ORIGINAL tag. Two departures, both for determinism where Flux
depends on Go map order once filterTags is set:

- tags whose extracted values are equal collapse to one candidate, the byte-smallest original
  (what Flux reports in practice, its database being in descending byte order); the others get
  verdict `lower` with no rank;
- ties between distinct values are broken as Flux breaks them without a filter: semver keeps the
  byte-largest original, numerical the byte-smallest (see each policy's module).

And one improvement: a numerical policy skips a value that is not a number instead of failing.

The trace (`Evaluation.tags`, stored as JSON in policy_decisions.trace by `to_json()`) holds
every distinct input tag exactly once: ranked tags first by rank (1 = selected, 2 = runner-up,
...), then the rest in byte order of the tag. Each entry is
`{"tag", "verdict", "value", "rank", "reason"}`: `value` is what the policy compared (the
extracted value, or the tag itself without an extract; null for excluded and filtered tags),
`rank` is null for unranked tags. When the policy or the repository's exclusion list cannot be
compiled, nothing is evaluated and every tag is `candidate` with no rank.

Speed (bench/policy.py): each step is a pass over all the tags, in C where it can be: the
exclusion list as a substring search of the joined tags, filterTags as one stdlib regex over
them when the pattern is of the subset `line_search` (engine.rules.regex) reads, and the
policy's `judge_all` (semver keys read by one regex and built column by column). Tags a step
decides are kept as batches (`Batch`: a verdict, a reason and the tags), and admitted
candidates as columns (`Candidates`); a trace line or a Scored is made only for what a reader
asks for. The selected tag is the policy's `best` (a max); the ranking is made when read
(`top(n)` past the first, `tags`). A `PolicyMemo` keeps the last evaluation, so a rescan that
adds k tags puts those k through the steps (one set difference away) and merges their
candidates in; tags gone are taken out of the batches and the candidates (with an extract,
where a gone tag may change which tag stands for a value, the rescan starts afresh). An
evaluation with a memo, fresh or old, equals one without (tests/unit/test_policy_memo.py).
"""

from __future__ import annotations

import difflib
import gc
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, compress, filterfalse
from operator import itemgetter
from typing import Collection, Iterable, Iterator, Sequence, Union

from engine.evaluate.policies import (
    InvalidRange,
    Scored,
    TagPolicy,
    Verdict,
    policy_for,
)
from engine.evaluate.policies.batches import Batch, Chunk, Line, Ranking, line_counts, without
from engine.evaluate.policies.ranking import NO_CANDIDATES, Candidates
from engine.evaluate.tagfilter import CompiledFilter, Exclusions
from engine.rules.regex import PatternError, line_text
from engine.model import (
    DEFAULT_EXCLUSION_LIST,
    ImagePolicy,
    ImageRepository,
    PolicyChoice,
    TagFilter,
    TagVerdict,
)

__all__ = ["Evaluation", "PolicyMemo", "TagVerdict", "Verdict", "evaluate_policy"]

_NOT_JUDGED = (Verdict.EXCLUDED, Verdict.FILTERED, Verdict.LOWER)
"""Unranked lines of tags the policy never judged (LOWER: collapsed into an equal value)."""

_BULK_TAGS = 10_000  # from this many tags, `_bulk` pauses the cycle collector
_MAX_CHUNKS = 16  # rescans add chunks of lines; past this many they are joined


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The outcome: `selected` (an original tag) or `error`; `invalid` when the policy itself is.

    `counts` has every verdict as a key, zeros included. `candidates` holds the admitted
    candidates (ranked when read: `top`, `tags`), `unranked` the other tags' lines in chunks
    in no particular order; `tags` is the trace built from both. Two evaluations are equal when
    everything a reader sees is.
    """

    policy: str
    selected: str | None
    error: str | None
    invalid: bool
    counts: dict[str, int]
    candidates: Ranking | None = None
    unranked: tuple[Chunk, ...] = ()

    @property
    def ranked(self) -> Sequence[Scored]:
        """The ranked candidates, best first (ranked on first read)."""
        return self.candidates.ranking() if self.candidates is not None else ()

    @cached_property
    def tags(self) -> tuple[TagVerdict, ...]:
        """The trace: ranked tags by rank, then the rest in byte order of the tag."""
        rest = sorted(chain.from_iterable(self.unranked))  # tags are distinct: byte order
        return (
            *self.top(len(self.ranked)),
            *(TagVerdict(tag, verdict, value, None, reason) for tag, verdict, value, reason in rest),
        )

    def top(self, count: int) -> list[TagVerdict]:
        """The first `count` ranked tags' trace lines: the selected tag and its runners-up."""
        if self.candidates is None or count < 1:
            return []
        shown = [self.candidates.best()] if count == 1 else self.ranked[:count]
        reasons = self.candidates.policy.reasons(shown)
        return [
            TagVerdict(s.tag, Verdict.SELECTED if rank == 1 else Verdict.LOWER, s.value, rank, why)
            for rank, (s, why) in enumerate(zip(shown, reasons), start=1)
        ]

    def trace_json(self) -> Iterator[dict[str, object]]:
        """The trace as `to_json()` writes it, one line at a time (for an output that streams)."""
        for line in self.top(len(self.ranked)):
            yield line.to_json()
        for tag, verdict, value, reason in sorted(chain.from_iterable(self.unranked)):
            yield TagVerdict(tag, verdict, value, None, reason).to_json()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Evaluation):
            return NotImplemented
        return (self.policy, self.selected, self.error, self.invalid, self.counts, self.tags) == (
            other.policy, other.selected, other.error, other.invalid, other.counts, other.tags
        )

    __hash__ = None  # type: ignore[assignment]

    def to_json(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "selected": self.selected,
            "error": self.error,
            "invalid": self.invalid,
            "counts": dict(self.counts),
            "tags": [t.to_json() for t in self.tags],
        }


@dataclass(frozen=True)
class _Sorted:
    """What the steps made of some tags alone: unranked chunks, admitted candidates, and (with
    an `extract`, whose equal values collapse before the policy judges them) the tags that
    passed the filter and their values, parallel."""

    chunks: list[Chunk]
    admitted: Candidates
    extracted: tuple[list[str], list[str]] = ([], [])


@dataclass(frozen=True)
class _Steps:
    """The policy compiled: exclusion list, optional filter and ranking policy."""

    exclusions: Exclusions
    filter: CompiledFilter | None
    policy: TagPolicy

    def sort_out(self, tags: Collection[str]) -> _Sorted:
        """Exclusion, filterTags and (without an extract) the policy's judgement of the tags,
        each step a pass over all of them that puts the tags it decides into batches; the
        tags' `line_text` is made once for the passes that read it."""
        chunks: list[Chunk] = []
        text: str | None = line_text(tags)
        excluded = self.exclusions.excluded(tags, text)
        kept: Collection[str] = tags
        if excluded:
            kept, text = list(filterfalse(excluded.__contains__, tags)), None
            by_pattern: dict[str, list[str]] = {}
            for tag, pattern in excluded.items():
                by_pattern.setdefault(pattern, []).append(tag)
            chunks += (Batch(Verdict.EXCLUDED, f'matches exclusion pattern "{p}"', ts, None)
                       for p, ts in by_pattern.items())
        tag_filter = self.filter
        if tag_filter is not None:
            passed, values, unmatched = tag_filter.split(kept, text)
            if unmatched:
                reason = f'does not match filter pattern "{tag_filter.pattern}"'
                chunks.append(Batch(Verdict.FILTERED, reason, unmatched, None))
            if values is not None:
                return _Sorted(chunks, NO_CANDIDATES, (passed, values))
            kept, text = passed, None
        admitted = _judged(self.policy, kept, None, chunks, text)
        return _Sorted(chunks, admitted)


def _judged(
    policy: TagPolicy,
    values: Collection[str],
    tag_of: dict[str, str] | None,
    chunks: list[Chunk],
    text: str | None = None,
) -> Candidates:
    """The policy's judgement of distinct values: misses into `chunks`, candidates returned.

    `tag_of` maps each value to the tag that stands for it; None when each value is its tag.
    `text` is the values' `line_text`, when the caller has it.
    """
    values = values if isinstance(values, (list, tuple)) else list(values)
    judged = policy.judge_all(values, text)
    for judgement, missed in judged.missed:
        assert judgement.verdict is not None
        tags = missed if tag_of is None else list(map(tag_of.__getitem__, missed))
        chunks.append(Batch(judgement.verdict, judgement.reason, tags, missed))
    admitted = judged.admitted
    tags = admitted if tag_of is None else list(map(tag_of.__getitem__, admitted))
    return Candidates(tags, admitted, judged.keys)


_SpecKey = tuple[PolicyChoice, Union[TagFilter, None], tuple[str, ...]]


@dataclass(frozen=True)
class _Partition:
    """What the steps made of a set of tags: never changed once made, but for the ranking
    (filled in when read) and `standing` (which the next rescan extends in place).

    `chunks` of unranked lines (a rescan adds some rather than copying them all); `candidates`
    the admitted ones; `standing` maps each extracted value to the tag that stands for it
    (empty without an extract); `line_counts` counts the unranked lines by verdict.
    """

    present: set[str]
    chunks: tuple[Chunk, ...]
    candidates: Ranking
    standing: dict[str, str]
    line_counts: Counter[str]


@dataclass
class _Part:
    """One policy spec's compiled steps and the partition of its last evaluation (the base of
    the next one)."""

    steps: _Steps
    last: _Partition | None = None
    stepped: int = 0


class PolicyMemo:
    """The last evaluation's work, kept by a caller that evaluates again and again.

    Kept per policy spec (choice, filterTags, the repository's exclusion list), so a changed
    spec starts afresh; at most `max_specs` specs, the least recently used dropped first. A
    rescan puts only the new tags through the steps and takes the gone ones out (one with an
    extract where a tag is gone starts afresh). Mutable by design: an evaluation fills it, so
    one memo serves one thread at a time.
    """

    def __init__(self, max_specs: int = 1024) -> None:
        self.max_specs = max_specs
        self._parts: dict[_SpecKey, _Part] = {}

    def __len__(self) -> int:
        return len(self._parts)

    @property
    def stepped(self) -> int:
        """Tags put through the steps (exclusion, filter, judgement) by the specs kept: what a
        rescan saved shows as tags it did not add here."""
        return sum(part.stepped for part in self._parts.values())

    def _part(self, key: _SpecKey, steps: _Steps) -> _Part:
        part = self._parts.pop(key, None) or _Part(steps)
        self._parts[key] = part  # now the most recently used
        while len(self._parts) > self.max_specs:
            del self._parts[next(iter(self._parts))]
        return part

    def _compiled(self, key: _SpecKey) -> _Steps | None:
        part = self._parts.get(key)
        return part.steps if part else None


def evaluate_policy(
    policy: ImagePolicy,
    repository: ImageRepository | None,
    tags: Iterable[str],
    memo: PolicyMemo | None = None,
) -> Evaluation:
    """Evaluate `policy` on `tags`, the repository's current tags (order and repeats ignored).

    `repository` supplies the exclusion list; None (the repository is not among the rules)
    means Flux's default list, `^.*\\.sig$`. Pure but for `memo`, which it reads and fills:
    no I/O, no clock, other inputs untouched, and the same result with or without a memo.
    """
    name = policy.key.ref
    repo_ref = repository.key.ref if repository else policy.repository_key.ref
    patterns = tuple(repository.exclusion_list if repository else DEFAULT_EXCLUSION_LIST)
    key: _SpecKey = (policy.choice, policy.filter, patterns)
    steps = memo._compiled(key) if memo is not None else None
    if steps is None:
        steps, problem, invalid = _compile(policy, repository, patterns)
        if steps is None:
            lines: list[Line] = [(tag, Verdict.CANDIDATE, None, "not evaluated")
                                 for tag in dict.fromkeys(tags)]
            return _result(name, problem, invalid, None, (lines,), Counter(map(itemgetter(1), lines)))
    part = memo._part(key, steps) if memo is not None else _Part(steps)
    present = set(tags)
    if not present:
        error = f"no tags in the ledger for ImageRepository {repo_ref}"
        return _result(name, error, False, None, (), Counter())
    with _bulk(len(present)):
        last = part.last
        made = (_extended(part, last, present) if last is not None else None) or _partition(part, present)
    part.last = made
    if not len(made.candidates):
        error = _failure(steps, list(chain.from_iterable(made.chunks)), repo_ref)
        return _result(name, error, False, None, made.chunks, made.line_counts)
    return _result(name, None, False, made.candidates, made.chunks, made.line_counts)


@contextmanager
def _bulk(count: int) -> Iterator[None]:
    """No automatic cycle collection while a large evaluation allocates its per-tag tuples.

    They hold strings only, so they make no cycles; but each survives, and CPython's collector
    would walk all of them again and again as they pile up (bench/policy.py). The collector's
    state is restored after, whatever it was.
    """
    if count < _BULK_TAGS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _partition(part: _Part, present: set[str]) -> _Partition:
    """Every tag through the steps."""
    part.stepped += len(present)
    made = part.steps.sort_out(present)
    chunks, admitted = made.chunks, made.admitted
    standing: dict[str, str] = {}
    if made.extracted[0]:
        kept = _collapse(*made.extracted, chunks, standing)
        admitted = _judged(part.steps.policy, kept, standing, chunks)
    return _Partition(present, tuple(chunks), Ranking(part.steps.policy, (), admitted), standing, line_counts(chunks))


def _extended(part: _Part, last: _Partition, present: set[str]) -> _Partition | None:
    """`last` with the tags added since and without those gone, when no added value collides
    and (with an extract) none is gone.

    Then only the added tags go through the steps; else None, and all of them do.
    """
    added = present.difference(last.present)  # one pass over `present`, in C
    if len(present) != len(last.present) + len(added):  # a tag is gone
        if last.standing:
            return None  # with an extract, the tag that stands for a value may change
        gone = last.present.difference(present)
        kept = tuple(without(chunk, gone) for chunk in last.chunks)
        last = _Partition(present, kept, last.candidates.without(gone), {}, line_counts(kept))
    if not added:
        return last
    part.stepped += len(added)
    made = part.steps.sort_out(added)
    chunks, admitted = made.chunks, made.admitted
    standing = last.standing
    tags, values = made.extracted
    if tags:
        new = dict(zip(values, tags))
        if len(new) != len(tags) or not new.keys().isdisjoint(standing.keys()):  # the smaller
            return None  # equal values collapse: the standing tag may change
        standing.update(new)  # in place: only the memo's latest partition reads it
        admitted = _judged(part.steps.policy, list(new), new, chunks)
    joined = (*last.chunks, *chunks)
    if len(joined) > _MAX_CHUNKS:
        joined = (list(chain.from_iterable(joined)),)
    counts = last.line_counts + line_counts(chunks)
    return _Partition(present, joined, last.candidates.extended(admitted), standing, counts)


def _failure(steps: _Steps, lines: list[Line], repo_ref: str) -> str:
    """Why no candidate ranked: all excluded, none past the filter, or the policy's reason."""
    passed = [line for line in lines if line[1] not in _NOT_JUDGED]
    if passed:
        policy = steps.policy
        return policy.failure([(tag, value or "", policy.judge(value or "")) for tag, _, value, _ in passed])
    kept = [line[0] for line in lines if line[1] is not Verdict.EXCLUDED]
    if not kept:
        return f"all {len(lines)} tags are excluded by the exclusion list of ImageRepository {repo_ref}"
    assert steps.filter is not None
    pattern = steps.filter.pattern
    closest = ", ".join(_closest(pattern, kept))
    return f'filter pattern "{pattern}" matched 0 of {len(kept)} tags; closest: {closest}'


def _result(
    name: str,
    error: str | None,
    invalid: bool,
    candidates: Ranking | None,
    chunks: tuple[Chunk, ...],
    line_counts: Counter[str],
) -> Evaluation:
    counts = Counter(line_counts)
    if candidates is not None:
        counts[Verdict.SELECTED] += 1
        counts[Verdict.LOWER] += len(candidates) - 1
    return Evaluation(
        policy=name,
        selected=candidates.best().tag if candidates is not None and error is None else None,
        error=f"ImagePolicy {name}: {error}" if error else None,
        invalid=invalid,
        counts={v.value: counts[v] for v in Verdict},
        candidates=candidates,
        unranked=chunks,
    )


def _compile(
    policy: ImagePolicy, repository: ImageRepository | None, patterns: tuple[str, ...]
) -> tuple[_Steps | None, str, bool]:
    """The compiled steps, or None with the problem and whether the policy itself is invalid."""
    own: list[str] = []
    tag_filter: CompiledFilter | None = None
    ranker: TagPolicy | None = None
    if policy.filter is not None:
        try:
            tag_filter = CompiledFilter.compile(policy.filter)
        except PatternError as err:
            own.append(f"filterTags: {err}")
    try:
        ranker = policy_for(policy.choice)
    except InvalidRange as err:
        own.append(str(err))
    if own or ranker is None:
        return None, f"invalid policy: {'; '.join(own)}", True
    try:
        exclusions = Exclusions.compile(patterns)
    except PatternError as err:
        assert repository is not None
        return None, f"ImageRepository {repository.key.ref} exclusion list: {err}", False
    return _Steps(exclusions, tag_filter, ranker), "", False


def _collapse(tags: list[str], values: list[str], chunks: list[Chunk], standing: dict[str, str]) -> list[str]:
    """The distinct values, each standing for its byte-smallest tag (put in `standing`, which
    starts empty); the other tags are `lower` lines. Only an extract makes values collide.

    The last tag of each value stands for it at first; the tags that lost are found with set
    operations in C, and only the values they hold are settled in Python.
    """
    standing.update(zip(values, tags))
    if len(standing) == len(values):
        return list(standing)
    lost = set(tags).difference(standing.values())
    held = list(map(lost.__contains__, tags))
    holders: dict[str, list[str]] = {}
    for tag, value in zip(compress(tags, held), compress(values, held)):
        holders.setdefault(value, [standing[value]]).append(tag)
    lower: list[Line] = []
    for value, rivals in holders.items():
        first = standing[value] = min(rivals)
        reason = f"same extracted value as {first}, which stands for it (byte-smaller tag)"
        lower += ((tag, Verdict.LOWER, value, reason) for tag in rivals if tag != first)
    chunks.append(lower)
    return list(standing)


def _closest(pattern: str, tags: list[str], limit: int = 3) -> list[str]:
    """The tags most like the pattern's text: by similarity ratio, then common prefix."""
    target = pattern.removeprefix("^").removesuffix("$")

    def distance(tag: str) -> tuple[float, int, str]:
        ratio = difflib.SequenceMatcher(None, target, tag, autojunk=False).ratio()
        prefix = len(os.path.commonprefix([target, tag]))
        return (-ratio, -prefix, tag)

    return sorted(tags, key=distance)[:limit]
