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
"""

from __future__ import annotations

import difflib
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from engine.evaluate.policies import (
    Candidate,
    InvalidRange,
    Judgement,
    TagPolicy,
    Verdict,
    policy_for,
)
from engine.evaluate.tagfilter import CompiledFilter, Exclusions
from engine.rules.regex import PatternError
from engine.model import DEFAULT_EXCLUSION_LIST, ImagePolicy, ImageRepository, TagVerdict

__all__ = ["Evaluation", "TagVerdict", "Verdict", "evaluate_policy"]


@dataclass(frozen=True)
class Evaluation:
    """The outcome: `selected` (an original tag) or `error`; `invalid` when the policy itself is.

    `counts` has every verdict as a key, zeros included.
    """

    policy: str
    selected: str | None
    error: str | None
    invalid: bool
    tags: tuple[TagVerdict, ...]
    counts: dict[str, int] = field(hash=False)

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


def evaluate_policy(
    policy: ImagePolicy, repository: ImageRepository | None, tags: Sequence[str]
) -> Evaluation:
    """Evaluate `policy` on `tags`, the repository's current tags (order and repeats ignored).

    `repository` supplies the exclusion list; None (the repository is not among the rules)
    means Flux's default list, `^.*\\.sig$`. Pure: no I/O, no clock, inputs untouched.
    """
    name = policy.key.ref
    repo_ref = repository.key.ref if repository else policy.repository_key.ref
    unique = sorted(set(tags))  # str order is Go's byte order (see policies/ranking.py)
    trace = _Trace(unique)
    steps, problem, invalid = _compile(policy, repository)
    if steps is None:
        for tag in unique:
            trace.unranked(TagVerdict(tag, Verdict.CANDIDATE, None, None, "not evaluated"))
        return trace.result(name, problem, invalid)
    if not unique:
        return trace.result(name, f"no tags in the ledger for ImageRepository {repo_ref}", False)
    kept: list[str] = []
    for tag in unique:
        pattern = steps.exclusions.excluding_pattern(tag)
        if pattern is None:
            kept.append(tag)
        else:
            reason = f'matches exclusion pattern "{pattern}"'
            trace.unranked(TagVerdict(tag, Verdict.EXCLUDED, None, None, reason))
    if not kept:
        count = len(unique)
        error = f"all {count} tags are excluded by the exclusion list of ImageRepository {repo_ref}"
        return trace.result(name, error, False)
    candidates = _filtered(steps.filter, kept, trace)
    if not candidates:
        assert steps.filter is not None
        pattern = steps.filter.pattern
        closest = ", ".join(_closest(pattern, kept))
        error = f'filter pattern "{pattern}" matched 0 of {len(kept)} tags; closest: {closest}'
        return trace.result(name, error, False)
    if steps.filter is not None and steps.filter.extracts:
        candidates = _collapse(candidates, trace)
    ranking = steps.policy.rank(candidates)
    for verdict in ranking.rejected:
        trace.unranked(verdict)
    for rank, judgement in enumerate(ranking.ranked, start=1):
        trace.ranked.append(_line(judgement, rank))
    return trace.result(name, ranking.failure or None, False)


class _Trace:
    """The verdicts of one evaluation, collected in the order the trace lists them.

    Ranked verdicts arrive best first; the others arrive step by step and are listed in the
    order of `unique` (sorted once, up front), so building the trace sorts nothing.
    """

    def __init__(self, unique: list[str]) -> None:
        self.unique = unique
        self.ranked: list[TagVerdict] = []
        self.others: dict[str, TagVerdict] = {}

    def unranked(self, verdict: TagVerdict) -> None:
        self.others[verdict.tag] = verdict

    def result(self, name: str, error: str | None, invalid: bool) -> Evaluation:
        others = self.others
        rest = [others[tag] for tag in self.unique if tag in others]
        counts = Counter(v.verdict for v in self.ranked)
        counts.update(v.verdict for v in rest)
        selected = self.ranked[0].tag if self.ranked and error is None else None
        return Evaluation(
            policy=name,
            selected=selected,
            error=f"ImagePolicy {name}: {error}" if error else None,
            invalid=invalid,
            tags=(*self.ranked, *rest),
            counts={v.value: counts[v] for v in Verdict},
        )


def _compile(
    policy: ImagePolicy, repository: ImageRepository | None
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
    patterns = repository.exclusion_list if repository else DEFAULT_EXCLUSION_LIST
    try:
        exclusions = Exclusions.compile(patterns)
    except PatternError as err:
        assert repository is not None
        return None, f"ImageRepository {repository.key.ref} exclusion list: {err}", False
    return _Steps(exclusions, tag_filter, ranker), "", False


def _filtered(tag_filter: CompiledFilter | None, tags: list[str], trace: _Trace) -> list[Candidate]:
    if tag_filter is None:
        return [Candidate(t, t) for t in tags]
    candidates = []
    for tag in tags:
        value = tag_filter.value(tag)
        if value is None:
            reason = f'does not match filter pattern "{tag_filter.pattern}"'
            trace.unranked(TagVerdict(tag, Verdict.FILTERED, None, None, reason))
        else:
            candidates.append(Candidate(tag, value))
    return candidates


def _collapse(candidates: list[Candidate], trace: _Trace) -> list[Candidate]:
    """One candidate per value, the byte-smallest original; `candidates` is in byte order.

    Only an extract makes values collide: without one, each value is its tag, and tags are
    distinct.
    """
    kept: dict[str, Candidate] = {}
    for candidate in candidates:
        first = kept.setdefault(candidate.value, candidate)
        if first is not candidate:
            reason = f"same extracted value as {first.tag}, which stands for it (byte-smaller tag)"
            trace.unranked(TagVerdict(candidate.tag, Verdict.LOWER, candidate.value, None, reason))
    return list(kept.values())


def _line(judgement: Judgement, rank: int) -> TagVerdict:
    verdict = Verdict.SELECTED if rank == 1 else Verdict.LOWER
    c = judgement.candidate
    return TagVerdict(c.tag, verdict, c.value, rank, judgement.reason)


def _closest(pattern: str, tags: list[str], limit: int = 3) -> list[str]:
    """The tags most like the pattern's text: by similarity ratio, then common prefix."""
    target = pattern.removeprefix("^").removesuffix("$")

    def distance(tag: str) -> tuple[float, int, str]:
        ratio = difflib.SequenceMatcher(None, target, tag, autojunk=False).ratio()
        prefix = len(os.path.commonprefix([target, tag]))
        return (-ratio, -prefix, tag)

    return sorted(tags, key=distance)[:limit]

