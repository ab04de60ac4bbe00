"""`select highest|lowest alphabetical`, with the user's real repository (image-policies.md §4, §6)."""

from __future__ import annotations

import hashlib

import pytest

from engine.evaluate.policy import Evaluation, Verdict, evaluate_policy
from engine.model import (
    Direction,
    ImagePolicy,
    ImageRepository,
    NamespacedRef,
    PolicyChoice,
    PolicyKind,
    TagFilter,
)

BLUESYNC = ImageRepository(
    "bluesync",
    "ghcr.io/t-eckert/field-theories/bluesync",
    namespace="field-theories",
    exclusion_list=(r"^.*\.sig$", "^sha-[a-f0-9]+$"),
)
TIMESTAMP = TagFilter(r"^(?P<ts>[0-9]{8})-[0-9]{4}-sha-[a-f0-9]{7}$", "$ts")


def sha(n: int) -> str:
    return hashlib.sha1(str(n).encode()).hexdigest()[:7]


def bluesync_tags() -> list[str]:
    """80 tags as CI pushes them: `YYYYMMDD-HHMM-sha-xxxxxxx` and `sha-xxxxxxx` for each build.

    40 builds over 30 days of March 2025; days 1-10 have a second build in the afternoon.
    """
    builds = [f"202503{day:02d}-0900" for day in range(1, 31)]
    builds += [f"202503{day:02d}-1630" for day in range(1, 11)]
    tags = []
    for n, stamp in enumerate(builds):
        tags += [f"{stamp}-sha-{sha(n)}", f"sha-{sha(n)}"]
    return tags


def alphabetical(direction: Direction, tags: list[str], tag_filter: TagFilter | None = TIMESTAMP,
                 repository: ImageRepository | None = BLUESYNC) -> Evaluation:
    policy = ImagePolicy(
        "bluesync",
        NamespacedRef("bluesync"),
        PolicyChoice(PolicyKind.ALPHABETICAL, direction),
        namespace="field-theories",
        filter=tag_filter,
    )
    return evaluate_policy(policy, repository, tags)


def test_the_real_case_highest_is_the_newest_timestamp() -> None:
    tags = bluesync_tags()
    assert len(tags) == 80
    evaluation = alphabetical(Direction.HIGHEST, tags)
    assert evaluation.error is None
    assert evaluation.selected == f"20250330-0900-sha-{sha(29)}"
    assert evaluation.counts["excluded"] == 40  # every sha-xxxxxxx, through the repository's list
    assert evaluation.counts["selected"] + evaluation.counts["lower"] == 40
    assert evaluation.tags[0].value == "20250330"


def test_the_real_case_lowest_is_the_oldest_timestamp() -> None:
    evaluation = alphabetical(Direction.LOWEST, bluesync_tags())
    # Day 1 has two builds with the same extracted `$ts`; the byte-smaller (earlier) one represents it.
    assert evaluation.selected == f"20250301-0900-sha-{sha(0)}"
    twin = next(t for t in evaluation.tags if t.tag == f"20250301-1630-sha-{sha(30)}")
    assert (twin.verdict, twin.rank, twin.value) == (Verdict.LOWER, None, "20250301")
    assert f"20250301-0900-sha-{sha(0)}" in twin.reason


def test_the_real_case_trace() -> None:
    evaluation = alphabetical(Direction.HIGHEST, bluesync_tags())
    ranked = [t for t in evaluation.tags if t.rank is not None]
    assert [t.rank for t in ranked] == list(range(1, 31))  # one candidate per day
    assert [t.value for t in ranked[:3]] == ["20250330", "20250329", "20250328"]
    assert evaluation.counts == {
        "selected": 1, "candidate": 0, "lower": 39, "excluded": 40, "filtered": 0,
        "unparsable": 0, "out-of-range": 0, "prerelease-excluded": 0,
    }
    excluded = next(t for t in evaluation.tags if t.tag == f"sha-{sha(0)}")
    assert excluded.reason == 'matches exclusion pattern "^sha-[a-f0-9]+$"'
    assert excluded.value is None


def test_without_the_exclusion_the_sha_tags_are_filtered_instead() -> None:
    evaluation = alphabetical(Direction.HIGHEST, bluesync_tags(), repository=None)
    assert evaluation.selected == f"20250330-0900-sha-{sha(29)}"
    assert evaluation.counts["filtered"] == 40 and evaluation.counts["excluded"] == 0


ORDERS = [
    # (direction, tags, selected): Go's byte order, no natural sort, no case folding
    (Direction.HIGHEST, ["1.9.0", "1.10.0"], "1.9.0"),
    (Direction.LOWEST, ["1.9.0", "1.10.0"], "1.10.0"),
    (Direction.HIGHEST, ["Zeta", "alpha"], "alpha"),
    (Direction.LOWEST, ["Zeta", "alpha"], "Zeta"),
    (Direction.HIGHEST, ["6.10.0", "latest"], "latest"),
    (Direction.HIGHEST, ["v1", "v1-rc"], "v1-rc"),
    (Direction.LOWEST, ["artful", "bionic", "xenial"], "artful"),
    (Direction.HIGHEST, ["a", "é", "z"], "é"),  # UTF-8 bytes: é (0xC3 0xA9) > z
    (Direction.LOWEST, ["1990-01-08T00-20-00Z", "2023-01-01T00-00-00Z"], "1990-01-08T00-20-00Z"),
]


@pytest.mark.parametrize(("direction", "tags", "selected"), ORDERS)
def test_byte_order(direction: Direction, tags: list[str], selected: str) -> None:
    assert alphabetical(direction, tags, tag_filter=None, repository=None).selected == selected


def test_duplicate_extracted_keys_report_the_byte_smallest_original() -> None:
    # Flux's complex-regex case: a debug build and its release map to the same key.
    tag_filter = TagFilter(r"^(?P<v>[0-9]+\.[0-9]+\.[0-9]+)-(?P<sha>[a-f0-9]{7})(?:-debug)?$", "$v-$sha")
    tags = ["1.2.3-abcd456-debug", "1.2.3-abcd456", "1.2.2-0123abc", "1.2.2-0123abc-debug"]
    evaluation = alphabetical(Direction.HIGHEST, tags, tag_filter=tag_filter, repository=None)
    assert evaluation.selected == "1.2.3-abcd456"
    lines = {t.tag: (t.verdict, t.rank, t.value) for t in evaluation.tags}
    assert lines == {
        "1.2.3-abcd456": (Verdict.SELECTED, 1, "1.2.3-abcd456"),
        "1.2.2-0123abc": (Verdict.LOWER, 2, "1.2.2-0123abc"),
        "1.2.2-0123abc-debug": (Verdict.LOWER, None, "1.2.2-0123abc"),
        "1.2.3-abcd456-debug": (Verdict.LOWER, None, "1.2.3-abcd456"),
    }
    assert alphabetical(Direction.LOWEST, tags, tag_filter=tag_filter, repository=None).selected == "1.2.2-0123abc"


def test_an_empty_extracted_value_is_a_value() -> None:
    tag_filter = TagFilter(r"^(a)?b", "$1")
    evaluation = alphabetical(Direction.LOWEST, ["b1", "ab"], tag_filter=tag_filter, repository=None)
    assert evaluation.selected == "b1"
    assert evaluation.tags[0].value == ""
