"""Policy evaluation on a large, mixed tag list, against a loop that only runs the filter regex.

The baseline is the least any evaluator must do: one RE2 search per tag (google-re2, compiled
once, on `str`). The goal (from the issue) is under 0.5 s per 100,000 tags and within 5x of that
baseline, for a semver range and for filter + extract + numerical.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import re2

from bench import BenchError, Result, interleaved, ready
from engine.evaluate.policy import evaluate_policy
from engine.model import (
    Direction,
    ImagePolicy,
    NamespacedRef,
    PolicyChoice,
    PolicyKind,
    TagFilter,
)

FULL_SIZE = 100_000
QUICK_SIZE = 2_000
SEED = 20240607
SECONDS_PER_100K = 0.5
MAX_RATIO = 5.0

SEMVER_RANGE = ">=1.0.0 <50.0.0"
FILTER_PATTERN = r"^(?P<ts>[0-9]{8})-(?P<hm>[0-9]{4})-sha-[a-f0-9]{7}$"
BASELINE_NAME = "google-re2 search of the filter pattern over every tag"

_REPOSITORY = NamespacedRef("bench-app")
SEMVER_POLICY = ImagePolicy(
    name="bench-semver",
    repository=_REPOSITORY,
    choice=PolicyChoice(PolicyKind.SEMVER, range=SEMVER_RANGE),
)
TIMESTAMP_POLICY = ImagePolicy(
    name="bench-timestamp",
    repository=_REPOSITORY,
    choice=PolicyChoice(PolicyKind.NUMERICAL, Direction.HIGHEST),
    filter=TagFilter(FILTER_PATTERN, extract="$ts$hm"),
)


@dataclass(frozen=True)
class TagSet:
    """Generated tags, and the tag each policy must select (worked out while generating)."""

    tags: tuple[str, ...]
    semver_winner: str
    timestamp_winner: str


def make_tags(count: int, seed: int = SEED) -> TagSet:
    """`count` distinct tags a busy repository might hold, the same ones for the same seed.

    About 40% semver (a third of them with `v`, a quarter prereleases), 40% `YYYYMMDD-HHMM-sha-
    xxxxxxx`, the rest `sha-xxxxxxx` and 40-hex commit tags, plus `latest`. All are valid
    registry tags (no `+build`), so the scan benchmark can push the same list.
    """
    if count < 10:
        raise BenchError(f"a tag set needs at least 10 tags, not {count}")
    rng = random.Random(seed)
    tags: set[str] = {"latest"}
    versions: set[tuple[int, int, int, str]] = set()
    releases_in_range: dict[tuple[int, int, int], str] = {}
    timestamps: dict[str, list[str]] = {}
    while len(tags) < count:
        draw = rng.random()
        if draw < 0.4:
            key = (rng.randrange(100), rng.randrange(30), rng.randrange(50), _prerelease(rng))
            if key in versions:
                continue
            versions.add(key)
            major, minor, patch, pre = key
            tag = f"{'v' if rng.random() < 1 / 3 else ''}{major}.{minor}.{patch}{pre}"
            if not pre and 1 <= major < 50:
                releases_in_range[(major, minor, patch)] = tag
        elif draw < 0.8:
            value = f"{rng.randrange(2019, 2026)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
            clock = f"{rng.randrange(24):02d}{rng.randrange(60):02d}"
            tag = f"{value}-{clock}-sha-{rng.getrandbits(28):07x}"
            timestamps.setdefault(value + clock, []).append(tag)
        elif draw < 0.95:
            tag = f"sha-{rng.getrandbits(28):07x}"
        else:
            tag = f"{rng.getrandbits(160):040x}"
        tags.add(tag)
    if not releases_in_range or not timestamps:
        raise BenchError(f"{count} tags drew no release in range or no timestamp; use more tags")
    return TagSet(
        tags=tuple(sorted(tags)),
        semver_winner=releases_in_range[max(releases_in_range)],
        timestamp_winner=min(timestamps[max(timestamps)]),
    )


def _prerelease(rng: random.Random) -> str:
    if rng.random() >= 0.25:
        return ""
    return rng.choice(("-rc.", "-beta.", "-alpha.")) + str(rng.randrange(1, 10))


def run(size: int, runs: int) -> list[Result]:
    """Both policies on `size` tags, each against the regex baseline, `runs` timed runs each."""
    tag_set = make_tags(size)
    tags = tag_set.tags
    _check(SEMVER_POLICY, tags, tag_set.semver_winner)
    _check(TIMESTAMP_POLICY, tags, tag_set.timestamp_winner)
    regex = re2.compile(FILTER_PATTERN)

    def baseline() -> None:
        search = regex.search
        for tag in tags:
            search(tag)

    results = []
    for name, policy in (
        (f'policy semver "{SEMVER_RANGE}"', SEMVER_POLICY),
        ("policy filter+extract+numerical", TIMESTAMP_POLICY),
    ):
        timing = interleaved(ready(partial(evaluate_policy, policy, None, tags)), ready(baseline), runs)
        limit = SECONDS_PER_100K * size / FULL_SIZE
        results.append(
            Result(
                name=name,
                size=size,
                unit="tags",
                timing=timing,
                goal=f"<{limit:.3g}s, <={MAX_RATIO:g}x",
                met=timing.seconds < limit and timing.ratio <= MAX_RATIO,
                baseline_name=BASELINE_NAME,
            )
        )
    return results


def _check(policy: ImagePolicy, tags: Sequence[str], expected: str) -> None:
    evaluation = evaluate_policy(policy, None, tags)
    if evaluation.selected != expected:
        raise BenchError(
            f"{policy.name} selected {evaluation.selected!r} ({evaluation.error}); expected {expected!r}"
        )


def profile(size: int, limit: int = 15) -> str:
    """cProfile of one evaluation of each policy: the `limit` functions with most own time."""
    tags = make_tags(size).tags
    out = io.StringIO()
    for policy in (SEMVER_POLICY, TIMESTAMP_POLICY):
        profiler = cProfile.Profile()
        profiler.runcall(evaluate_policy, policy, None, tags)
        out.write(f"--- {policy.name} on {size} tags\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(limit)
    return out.getvalue()
