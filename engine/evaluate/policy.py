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

Speed (bench/policy.py): what a step learns from one tag alone (excluded, filtered, its value,
the policy's `judge` of that value) is kept in a `PolicyMemo` when the caller passes one, so a
rescan with k new tags does that work for k tags: the new tags are one set difference away, and
their candidates are merged into the last ranking (`TagPolicy.merge`). When a tag is gone, the
rest is a dict lookup per tag and a ranking of all candidates. The memo only ever holds what the
same steps would compute again, so an evaluation with one, fresh or old, equals one without
(tests/unit/test_policy_memo.py). The trace is built when it is read (`Evaluation.tags`): a
caller that wants the selection and the counts does not pay for 100,000 TagVerdicts.
"""

from __future__ import annotations

import difflib
import gc
import os
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import chain
from operator import itemgetter
from typing import Collection, Iterable, Iterator, Sequence, Union

from engine.evaluate.policies import (
    InvalidRange,
    Judged,
    Scored,
    TagPolicy,
    Verdict,
    policy_for,
)
from engine.evaluate.tagfilter import CompiledFilter, Exclusions
from engine.rules.regex import PatternError
from engine.model import (
    DEFAULT_EXCLUSION_LIST,
    ImagePolicy,
    ImageRepository,
    PolicyChoice,
    TagFilter,
    TagVerdict,
)

__all__ = ["Evaluation", "PolicyMemo", "TagVerdict", "Verdict", "evaluate_policy"]

Line = tuple[str, Verdict, Union[str, None], str]
"""An unranked trace line: (tag, verdict, value, reason)."""

_Outcome = Union[Line, Scored, str]
"""What the steps make of one tag alone: a final line, an admitted candidate, or (with an
`extract`, whose equal values collapse before the policy judges them) the extracted value."""

_NOT_JUDGED = (Verdict.EXCLUDED, Verdict.FILTERED, Verdict.LOWER)
"""Unranked lines of tags the policy never judged (LOWER: collapsed into an equal value)."""

_BULK_TAGS = 10_000  # from this many tags, `_bulk` pauses the cycle collector
_MAX_CHUNKS = 16  # rescans add a chunk of lines each; past this many they are joined


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The outcome: `selected` (an original tag) or `error`; `invalid` when the policy itself is.

    `counts` has every verdict as a key, zeros included. `ranked` are the ranked candidates
    best first (their reasons come from `ranking`, the policy, when read), `unranked` the other
    tags' lines in chunks in no particular order; `tags` is the trace built from both. Two
    evaluations are equal when everything a reader sees is.
    """

    policy: str
    selected: str | None
    error: str | None
    invalid: bool
    counts: dict[str, int]
    ranked: Sequence[Scored] = ()
    unranked: tuple[Sequence[Line], ...] = ()
    ranking: TagPolicy | None = None

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
        shown = self.ranked[:count]
        if not shown or self.ranking is None:
            return []
        reasons = self.ranking.reasons(shown)
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
class _Steps:
    """The policy compiled: exclusion list, optional filter and ranking policy."""

    exclusions: Exclusions
    filter: CompiledFilter | None
    policy: TagPolicy

    def sort_out(
        self,
        tags: Collection[str],
        outcomes: dict[str, _Outcome],
        lines: list[Line],
        admitted: list[Scored],
        values: list[tuple[str, str]],
    ) -> None:
        """Exclusion, filterTags and (without an extract) the policy's judgement of each tag,
        kept in `outcomes` and sorted out into final lines, candidates or extracted values.

        One loop does both, for speed: a first evaluation runs it over every tag.
        """
        excluded = self.exclusions.excluded(tags)
        because = {p: f'matches exclusion pattern "{p}"' for p in set(excluded.values())}
        tag_filter, judge = self.filter, self.policy.judge
        unmatched = f'does not match filter pattern "{tag_filter.pattern}"' if tag_filter else ""
        line: Line
        for tag in tags:
            pattern = excluded.get(tag)
            if pattern is not None:
                line = outcomes[tag] = (tag, Verdict.EXCLUDED, None, because[pattern])
                lines.append(line)
                continue
            if tag_filter is not None:
                value = tag_filter.value(tag)
                if value is None:
                    line = outcomes[tag] = (tag, Verdict.FILTERED, None, unmatched)
                    lines.append(line)
                    continue
                if tag_filter.template is not None:
                    outcomes[tag] = value  # judged after equal values collapse
                    values.append((tag, value))
                    continue
            judged = judge(tag)
            if judged.verdict is None:
                scored = outcomes[tag] = Scored(tag, tag, judged.key)
                admitted.append(scored)
            else:
                line = outcomes[tag] = (tag, judged.verdict, tag, judged.reason)
                lines.append(line)


_SpecKey = tuple[PolicyChoice, Union[TagFilter, None], tuple[str, ...]]


@dataclass(frozen=True)
class _Partition:
    """What the steps made of a set of tags, before ranking: never changed once made.

    `lines` come in chunks (a rescan adds one rather than copying them all); `ranked` are the
    candidates the last evaluation ranked, best first, and `added` the candidates since, so a
    rescan merges a few into a ranking instead of sorting them all again. `standing` maps each
    extracted value to the tag that stands for it (empty without an extract); `line_counts`
    counts the lines by verdict. `present` is a set on a rescan: its order no longer matters.
    """

    present: Collection[str]
    lines: tuple[list[Line], ...]
    ranked: Sequence[Scored]
    added: list[Scored]
    standing: dict[str, str]
    line_counts: Counter[str]


@dataclass
class _Part:
    """One policy spec's compiled steps, what they made of each tag and value so far, and the
    partition of the last evaluation (the base of the next one)."""

    steps: _Steps
    outcomes: dict[str, _Outcome] = field(default_factory=dict)
    judged: dict[str, Judged] = field(default_factory=dict)
    last: _Partition | None = None
    stepped: int = 0


class PolicyMemo:
    """Per-tag work kept across evaluations, owned by a caller that evaluates again and again.

    Kept per policy spec (choice, filterTags, the repository's exclusion list), so a changed
    spec starts afresh; at most `max_specs` specs, the least recently used dropped first. Tags
    that left the repository are dropped once they outnumber the current ones. Mutable by
    design: an evaluation fills it, so one memo serves one thread at a time.
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
            return _result(name, problem, invalid, None, [], (lines,), Counter(map(itemgetter(1), lines)))
    part = memo._part(key, steps) if memo is not None else _Part(steps)
    last = part.last
    # a rescan needs only the set, one pass cheaper, to tell the new tags from those it knows;
    # else the tags in input order (a sorted list is read in memory order)
    rescan = set(tags) if last is not None else None
    present: Collection[str] = rescan if rescan is not None else dict.fromkeys(tags)
    if not present:
        error = f"no tags in the ledger for ImageRepository {repo_ref}"
        return _result(name, error, False, None, [], (), Counter())
    with _bulk(len(present)):
        extended = _extended(part, last, rescan) if last and rescan is not None else None
        made = extended or _partition(part, present)
    if not made.ranked and not made.added:
        part.last = made
        error = _failure(steps, list(chain.from_iterable(made.lines)), repo_ref)
        return _result(name, error, False, None, [], made.lines, made.line_counts)
    ranked = steps.policy.merge(made.ranked, made.added) if made.added else made.ranked
    part.last = replace(made, ranked=ranked, added=[])
    return _result(name, None, False, steps.policy, ranked, made.lines, made.line_counts)


@contextmanager
def _bulk(count: int) -> Iterator[None]:
    """No automatic cycle collection while a large evaluation allocates its per-tag tuples.

    They hold strings only, so they make no cycles; but each survives, and CPython's collector
    would walk all of them again and again as they pile up (a third of a 100k-tag evaluation,
    bench/policy.py). The collector's state is restored after, whatever it was.
    """
    if count < _BULK_TAGS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _partition(part: _Part, present: Collection[str]) -> _Partition:
    """Every tag through the steps, reusing what `part` knows of a tag or a value."""
    lines: list[Line] = []
    admitted: list[Scored] = []
    values: list[tuple[str, str]] = []
    _sort_out(part, present, lines, admitted, values)
    standing: dict[str, str] = {}
    if values:
        kept = _collapse(values, lines, standing)
        _judge(part, kept, admitted, lines)
    if len(part.outcomes) > 2 * len(present) + 1000:
        _forget_gone(part, present)
    return _Partition(present, (lines,), (), admitted, standing, Counter(map(itemgetter(1), lines)))


def _extended(part: _Part, last: _Partition, present: set[str]) -> _Partition | None:
    """`last` with the tags added since, when none is gone and no added value collides.

    Then only the added tags go through the steps; else None, and all of them do.
    """
    added = present.difference(last.present)  # one pass over `present`, in C
    if len(present) != len(last.present) + len(added):
        return None  # a tag is gone
    if not added:
        return last
    lines: list[Line] = []
    admitted: list[Scored] = []
    values: list[tuple[str, str]] = []
    _sort_out(part, added, lines, admitted, values)
    standing = last.standing
    if values:
        new = {value: tag for tag, value in values}
        if len(new) != len(values) or not new.keys().isdisjoint(standing.keys()):  # the smaller
            return None  # equal values collapse: the standing tag may change
        standing = {**standing, **new}
        _judge(part, values, admitted, lines)
    chunks = (*last.lines, lines)
    if len(chunks) > _MAX_CHUNKS:
        chunks = (list(chain.from_iterable(chunks)),)
    counts = last.line_counts + Counter(map(itemgetter(1), lines))
    return _Partition(present, chunks, last.ranked, last.added + admitted, standing, counts)


def _sort_out(
    part: _Part,
    tags: Collection[str],
    lines: list[Line],
    admitted: list[Scored],
    values: list[tuple[str, str]],
) -> None:
    """Each tag's outcome into final lines, candidates or values; kept in `part.outcomes`."""
    outcomes = part.outcomes
    if not outcomes:
        part.stepped += len(tags)
        part.steps.sort_out(tags, outcomes, lines, admitted, values)
        return
    fresh = []
    for tag in tags:
        got = outcomes.get(tag)
        if got is None:
            fresh.append(tag)
        elif type(got) is Scored:
            admitted.append(got)
        elif type(got) is str:
            values.append((tag, got))
        else:
            lines.append(got)  # type: ignore[arg-type]
    if fresh:
        part.stepped += len(fresh)
        part.steps.sort_out(fresh, outcomes, lines, admitted, values)


def _judge(part: _Part, values: list[tuple[str, str]], admitted: list[Scored], lines: list[Line]) -> None:
    """The policy's judgement of each extracted value (kept per value in `part.judged`)."""
    judged, judge = part.judged, part.steps.policy.judge
    for tag, value in values:
        judgement = judged.get(value)
        if judgement is None:
            judgement = judged[value] = judge(value)
        if judgement.verdict is None:
            admitted.append(Scored(tag, value, judgement.key))
        else:
            lines.append((tag, judgement.verdict, value, judgement.reason))


def _forget_gone(part: _Part, present: Collection[str]) -> None:
    """Keep the outcomes of the current tags only; judgements of values are made again."""
    kept = {tag: part.outcomes[tag] for tag in present if tag in part.outcomes}
    part.outcomes.clear()
    part.outcomes.update(kept)
    part.judged.clear()


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
    ranking: TagPolicy | None,
    ranked: Sequence[Scored],
    lines: tuple[list[Line], ...],
    line_counts: Counter[str],
) -> Evaluation:
    counts = Counter(line_counts)
    if ranked:
        counts[Verdict.SELECTED] += 1
        counts[Verdict.LOWER] += len(ranked) - 1
    return Evaluation(
        policy=name,
        selected=ranked[0].tag if ranked and error is None else None,
        error=f"ImagePolicy {name}: {error}" if error else None,
        invalid=invalid,
        counts={v.value: counts[v] for v in Verdict},
        ranked=ranked,
        unranked=lines,
        ranking=ranking,
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


def _collapse(
    values: list[tuple[str, str]], lines: list[Line], standing: dict[str, str]
) -> list[tuple[str, str]]:
    """One (tag, value) per value, the byte-smallest tag (put in `standing`); the others are
    `lower` lines. Only an extract makes values collide: without one, each value is its tag.
    """
    for tag, value in values:
        held = standing.get(value)
        if held is None or tag < held:
            standing[value] = tag
    kept = []
    for tag, value in values:
        first = standing[value]
        if first == tag:
            kept.append((tag, value))
        else:
            reason = f"same extracted value as {first}, which stands for it (byte-smaller tag)"
            lines.append((tag, Verdict.LOWER, value, reason))
    return kept


def _closest(pattern: str, tags: list[str], limit: int = 3) -> list[str]:
    """The tags most like the pattern's text: by similarity ratio, then common prefix."""
    target = pattern.removeprefix("^").removesuffix("$")

    def distance(tag: str) -> tuple[float, int, str]:
        ratio = difflib.SequenceMatcher(None, target, tag, autojunk=False).ratio()
        prefix = len(os.path.commonprefix([target, tag]))
        return (-ratio, -prefix, tag)

    return sorted(tags, key=distance)[:limit]
