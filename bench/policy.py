"""Policy evaluation on a large, mixed tag list, against the fastest loop that selects correctly.

Each policy's floor is the least code that selects the right tag from this tag set: one regex
per tag (stdlib `re` where it gives RE2's answer for the pattern, which `_check` confirms tag by
tag), a comparison with the best so far, no trace. The goals (issue 15): under 0.5 s per 100,000
tags and within 2x the floor, and a rescan that finds 100 new tags on 100,000 in 50 ms, with the
memo a long-lived caller keeps (engine.evaluate.policy.PolicyMemo).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import re2

from bench import BenchError, Result, interleaved, ready
from bench.startup import ROOT, entry_point
from engine.evaluate.policy import Evaluation, PolicyMemo, evaluate_policy
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
MAX_RATIO = 2.0
RESCAN_NEW = 100
RESCAN_SECONDS = 0.05

SEMVER_RANGE = ">=1.0.0 <50.0.0"
FILTER_PATTERN = r"^(?P<ts>[0-9]{8})-(?P<hm>[0-9]{4})-sha-[a-f0-9]{7}$"
# The floors' regexes. Python's `$` also matches before a final newline and RE2's does not, so
# the filter is used with `\Z` for its `$`; `[0-9]` and `[a-f]` are ASCII in both engines.
FLOOR_SEMVER = re.compile(r"v?([0-9]+)\.([0-9]+)\.([0-9]+)(-[0-9A-Za-z.-]+)?")
FLOOR_FILTER = re.compile(FILTER_PATTERN.replace("$", r"\Z"))
SEMVER_FLOOR_NAME = (
    "stdlib re fullmatch of v?N.N.N(-pre)? per tag, skip .sig, prereleases and out-of-range, "
    "keep the highest (ties: byte-larger tag)"
)
TIMESTAMP_FLOOR_NAME = (
    "stdlib re (gives RE2's answer on every tag: checked) match of the filter per tag, skip .sig, "
    "float(ts+hm), keep the highest (ties: byte-smaller tag)"
)
RESCAN_FLOOR_NAME = "set of the tags minus the last scan's set, then the floor over the new tags only"

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


def new_tags(count: int) -> tuple[str, ...]:
    """`count` tags pushed since the last scan: newer releases and newer timestamped builds."""
    releases = [f"49.29.{50 + i}" for i in range(count // 2)]
    builds = [f"20260101-{i:04d}-sha-{i:07x}" for i in range(count - count // 2)]
    return (*releases, *builds)


def floor_semver(tags: Iterable[str], best: str | None = None) -> str | None:
    """The highest release in SEMVER_RANGE (ties: byte-larger tag), from `best` on."""
    lowest, beyond = (1, 0, 0), (50, 0, 0)
    best_key = _release(best) if best is not None else None
    fullmatch = FLOOR_SEMVER.fullmatch
    for tag in tags:
        match = fullmatch(tag)
        if match is None or match[4] or tag.endswith(".sig"):
            continue
        key = (int(match[1]), int(match[2]), int(match[3]))
        if lowest <= key < beyond and (best_key is None or (key, tag) > (best_key, best or "")):
            best, best_key = tag, key
    return best


def _release(tag: str) -> tuple[int, int, int]:
    match = FLOOR_SEMVER.fullmatch(tag)
    assert match is not None
    return int(match[1]), int(match[2]), int(match[3])


def floor_timestamp(tags: Iterable[str], best: str | None = None) -> str | None:
    """The tag with the highest `ts+hm` number (ties: byte-smaller tag), from `best` on."""
    best_value = _timestamp(best) if best is not None else None
    match_filter = FLOOR_FILTER.match
    for tag in tags:
        match = match_filter(tag)
        if match is None or tag.endswith(".sig"):
            continue
        value = float(match[1] + match[2])
        if best_value is None or value > best_value or (value == best_value and tag < (best or "")):
            best, best_value = tag, value
    return best


def _timestamp(tag: str) -> float:
    match = FLOOR_FILTER.match(tag)
    assert match is not None
    return float(match[1] + match[2])


Floor = Callable[..., "str | None"]


def run(size: int, runs: int) -> list[Result]:
    """Both policies on `size` tags, then a rescan with RESCAN_NEW more, each against its floor."""
    tag_set = make_tags(size)
    tags = tag_set.tags
    _check_filter_engines(tags)
    added = new_tags(RESCAN_NEW)
    rescanned = (*tags, *added)
    cases: tuple[tuple[str, ImagePolicy, Floor, str, str], ...] = (
        (f'policy semver "{SEMVER_RANGE}"', SEMVER_POLICY, floor_semver, tag_set.semver_winner,
         SEMVER_FLOOR_NAME),
        ("policy filter+extract+numerical", TIMESTAMP_POLICY, floor_timestamp,
         tag_set.timestamp_winner, TIMESTAMP_FLOOR_NAME),
    )
    results = []
    for name, policy, floor, winner, floor_name in cases:
        _check(policy, tags, winner, floor)
        timing = interleaved(
            ready(partial(evaluate_policy, policy, None, tags)), ready(partial(floor, tags)), runs
        )
        limit = SECONDS_PER_100K * size / FULL_SIZE
        results.append(
            Result(
                name=name,
                size=size,
                unit="tags",
                timing=timing,
                goal=f"<{limit:.3g}s, <={MAX_RATIO:g}x",
                met=timing.seconds < limit and timing.ratio <= MAX_RATIO,
                baseline_name=floor_name,
            )
        )
    for name, policy, floor, winner, _ in cases:
        _check_rescan(policy, tags, rescanned, floor(added, winner))
        timing = interleaved(
            partial(_primed_rescan, policy, tags, rescanned),
            partial(_floor_rescan, floor, tags, rescanned, winner),
            runs,
        )
        results.append(
            Result(
                name=f"{name} rescan +{RESCAN_NEW}",
                size=size,
                unit="tags",
                timing=timing,
                goal=f"<{RESCAN_SECONDS:g}s",
                met=timing.seconds < RESCAN_SECONDS,
                baseline_name=RESCAN_FLOOR_NAME,
            )
        )
    return results


def _primed_rescan(
    policy: ImagePolicy, tags: Sequence[str], rescanned: Sequence[str]
) -> Callable[[], object]:
    """Untimed: a memo that has seen `tags`; timed: the evaluation of `rescanned` with it."""
    memo = PolicyMemo()
    evaluate_policy(policy, None, tags, memo)
    return partial(evaluate_policy, policy, None, rescanned, memo)


def _check_rescan(
    policy: ImagePolicy, tags: Sequence[str], rescanned: Sequence[str], expected: str | None
) -> None:
    """With a memo that has seen `tags`, and without one, `rescanned` selects `expected`."""
    with_memo = _primed_rescan(policy, tags, rescanned)()
    without = evaluate_policy(policy, None, rescanned)
    assert isinstance(with_memo, Evaluation)
    if not with_memo.selected == without.selected == expected:
        raise BenchError(
            f"{policy.name} rescan selected {with_memo.selected!r} (without a memo "
            f"{without.selected!r}); expected {expected!r}"
        )


def _floor_rescan(
    floor: Floor, tags: Sequence[str], rescanned: Sequence[str], best: str
) -> Callable[[], object]:
    """The floor of a rescan: find the new tags by set difference, run the floor over them."""
    known = set(tags)

    def rescan() -> object:
        return floor(set(rescanned) - known, best)

    return rescan


def _check_filter_engines(tags: Sequence[str]) -> None:
    """The timestamp floor's stdlib regex matches exactly the tags RE2 matches, same groups."""
    regex = re2.compile(FILTER_PATTERN)
    for tag in tags:
        ours, theirs = FLOOR_FILTER.match(tag), regex.search(tag)
        if (ours and ours.groups()) != (theirs and theirs.groups()):
            raise BenchError(f"stdlib re and RE2 disagree on {tag!r} for {FILTER_PATTERN}")


def _check(policy: ImagePolicy, tags: Sequence[str], expected: str, floor: Floor) -> None:
    evaluation = evaluate_policy(policy, None, tags)
    if evaluation.selected != expected or floor(tags) != expected:
        raise BenchError(
            f"{policy.name} selected {evaluation.selected!r} ({evaluation.error}), its floor "
            f"{floor(tags)!r}; expected {expected!r}"
        )


IMAGES_TEST_SECONDS = 2.0
IMAGES_TEST_RULES = f'image policy apps/app {{\n  repository app\n  select highest semver "{SEMVER_RANGE}"\n}}\n'
IMAGES_TEST_FLOOR_NAME = "the venv's python reading the tag file and running the semver floor (whole process)"
_FLOOR_PROGRAM = """
import sys
from bench.policy import floor_semver
with open(sys.argv[1], encoding="utf-8") as f:
    print(floor_semver(line.strip() for line in f))
"""


def run_images_test(size: int, runs: int, workdir: Path) -> Result:
    """`gitward images test` on `size` tags, a whole process, against the floor in one."""
    tag_set = make_tags(size)
    tags = workdir / "images-test-tags.txt"
    tags.write_text("\n".join(tag_set.tags) + "\n", encoding="utf-8")
    rules = workdir / "images-test.rules"
    rules.write_text(IMAGES_TEST_RULES, encoding="utf-8")
    subject = [*entry_point(), "images", "test", "--policy", str(rules), "--tags", str(tags)]
    floor = [sys.executable, "-c", _FLOOR_PROGRAM, str(tags)]
    for argv, last in ((subject, f"selected: {tag_set.semver_winner}"), (floor, tag_set.semver_winner)):
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0 or done.stdout.splitlines()[-1:] != [last]:
            raise BenchError(f"{argv[2:4]} printed {done.stdout[-200:]!r} {done.stderr[-500:]!r}; expected {last!r}")
    timing = interleaved(ready(partial(_quiet, subject)), ready(partial(_quiet, floor)), runs)
    return Result(
        name="images test (whole process)",
        size=size,
        unit="tags",
        timing=timing,
        goal=f"<{IMAGES_TEST_SECONDS:g}s",
        met=timing.seconds < IMAGES_TEST_SECONDS,
        baseline_name=IMAGES_TEST_FLOOR_NAME,
    )


def _quiet(argv: list[str]) -> None:
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=True)


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
