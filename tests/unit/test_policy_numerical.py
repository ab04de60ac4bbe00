"""`select highest|lowest numerical` (image-policies.md §5), skipping values that are not numbers."""

from __future__ import annotations

import pytest

from engine.evaluate.policy import Evaluation, Verdict, evaluate_policy
from engine.model import (
    Direction,
    ImagePolicy,
    NamespacedRef,
    PolicyChoice,
    PolicyKind,
    TagFilter,
)


def numerical(direction: Direction, tags: list[str], tag_filter: TagFilter | None = None) -> Evaluation:
    policy = ImagePolicy(
        "app", NamespacedRef("app"), PolicyChoice(PolicyKind.NUMERICAL, direction), filter=tag_filter
    )
    return evaluate_policy(policy, None, tags)


SELECTIONS = [
    (Direction.HIGHEST, ["1", "10", "9", "-78", "2.5"], "10"),
    (Direction.LOWEST, ["1", "10", "9", "-78", "2.5"], "-78"),
    (Direction.LOWEST, ["-90.29", "-90.3", "0"], "-90.3"),
    (Direction.HIGHEST, ["1e3", "999", "0x1p10"], "0x1p10"),  # 1024
    (Direction.HIGHEST, ["Inf", "1e308"], "Inf"),
    (Direction.LOWEST, ["-inf", "-1e308"], "-inf"),
    (Direction.HIGHEST, ["1e400", "5"], "5"),  # out of range: unparsable, not infinite
    (Direction.HIGHEST, ["1e-400", "-1"], "1e-400"),  # underflow: 0
    (Direction.HIGHEST, ["1_000", "999"], "1_000"),
    (Direction.HIGHEST, ["0x10", "3"], "3"),  # hex without p is not a number
]


@pytest.mark.parametrize(("direction", "tags", "selected"), SELECTIONS)
def test_selection(direction: Direction, tags: list[str], selected: str) -> None:
    evaluation = numerical(direction, tags)
    assert evaluation.error is None
    assert evaluation.selected == selected


def test_latest_is_skipped_and_the_others_still_count() -> None:
    evaluation = numerical(Direction.HIGHEST, ["latest", "3", "12", "main"])
    assert evaluation.selected == "12"
    lines = {t.tag: (t.verdict, t.rank) for t in evaluation.tags}
    assert lines == {
        "12": (Verdict.SELECTED, 1),
        "3": (Verdict.LOWER, 2),
        "latest": (Verdict.UNPARSABLE, None),
        "main": (Verdict.UNPARSABLE, None),
    }
    latest = next(t for t in evaluation.tags if t.tag == "latest")
    assert latest.reason == 'not a number: parsing "latest": invalid syntax'


@pytest.mark.parametrize("direction", [Direction.HIGHEST, Direction.LOWEST])
def test_ties_go_to_the_byte_smallest_tag(direction: Direction) -> None:
    # Flux's last-wins over descending byte order: ["1.0", "1", "01"] gives "01".
    evaluation = numerical(direction, ["1.0", "1", "01"])
    assert evaluation.selected == "01"
    assert [(t.tag, t.rank) for t in evaluation.tags] == [("01", 1), ("1", 2), ("1.0", 3)]
    assert "equal to 01" in evaluation.tags[1].reason


def test_values_that_round_to_the_same_float_tie() -> None:
    evaluation = numerical(Direction.HIGHEST, ["9007199254740993", "9007199254740992"])
    assert evaluation.selected == "9007199254740992"


def test_negative_zero_ties_with_zero() -> None:
    assert numerical(Direction.LOWEST, ["0", "-0"]).selected == "-0"
    assert numerical(Direction.HIGHEST, ["0", "-0"]).selected == "-0"


# Flux's loop over tags in descending byte order takes a NaN over what it holds and gives it
# up for the next tag: only tags after the last NaN (byte-smaller) compete, and the NaN wins
# when none follow it. The ranking is Flux's selection repeated with each winner removed.
# Expected rankings were produced by Go (strconv.ParseFloat, the loop of image-policies.md §5 over
# the tags sorted in descending byte order, tags ParseFloat rejects dropped as gitward skips them).
NAN_CASES = [
    (Direction.HIGHEST, ["1", "NaN", "0"], ["1", "0", "NaN"]),
    (Direction.LOWEST, ["1", "NaN", "0"], ["0", "1", "NaN"]),
    (Direction.HIGHEST, ["inf", "NaN", "1"], ["1", "NaN", "inf"]),  # "inf" > "NaN": overtaken
    (Direction.LOWEST, ["-inf", "nan", "5"], ["-inf", "5", "nan"]),
    (Direction.HIGHEST, ["nan", "NaN"], ["NaN", "nan"]),  # all NaN: the byte-smallest wins
    (Direction.HIGHEST, ["NaN", "5", "10"], ["10", "5", "NaN"]),
    (Direction.HIGHEST, ["nan", "9", "NaN", "Infinity", "10", "-1"], ["Infinity", "10", "9", "-1", "NaN", "nan"]),
    (Direction.LOWEST, ["nan", "9", "NaN", "Infinity", "10", "-1"], ["-1", "9", "10", "Infinity", "NaN", "nan"]),
    (Direction.HIGHEST, ["nAn", "NAN", "naN", "1.0", "1", "01"], ["01", "1", "1.0", "NAN", "nAn", "naN"]),
    (Direction.HIGHEST, ["NaN"], ["NaN"]),
    (Direction.HIGHEST, ["infinity", "NaN", "inf"], ["NaN", "inf", "infinity"]),  # nothing after the NaN
]


@pytest.mark.parametrize(("direction", "tags", "ranked"), NAN_CASES)
def test_nan_ranks_as_flux_selects_over_descending_byte_order(
    direction: Direction, tags: list[str], ranked: list[str]
) -> None:
    evaluation = numerical(direction, tags)
    assert evaluation.error is None
    assert [t.tag for t in evaluation.tags] == ranked
    assert [t.rank for t in evaluation.tags] == list(range(1, len(ranked) + 1))
    assert evaluation.selected == ranked[0]


def test_signed_or_padded_nan_is_not_a_number() -> None:
    # Go's ParseFloat takes "nan" in any case, unsigned, and nothing around it
    evaluation = numerical(Direction.HIGHEST, ["+nan", "-NaN", "nan1", "NaN", "2"])
    assert [t.tag for t in evaluation.tags if t.rank is not None] == ["2", "NaN"]
    assert {t.tag for t in evaluation.tags if t.verdict is Verdict.UNPARSABLE} == {"+nan", "-NaN", "nan1"}


def test_reasons_say_why_a_nan_or_an_overtaken_tag_ranks_where_it_does() -> None:
    lines = {t.tag: t.reason for t in numerical(Direction.HIGHEST, ["inf", "NaN", "1"]).tags}
    assert lines["NaN"].startswith("NaN: Flux's loop takes it over the tags before it")
    assert lines["inf"] == "value inf; NaN (NaN) follows it in descending byte order and replaces it in Flux's loop"
    assert lines["1"] == "value 1.0"


def test_no_numeric_value_names_three_tags_and_their_values() -> None:
    tag_filter = TagFilter(r"^(?P<n>[a-z0-9]+)-build$", "$n")
    evaluation = numerical(Direction.HIGHEST, ["main-build", "dev-build", "x1-build", "rc-build"], tag_filter)
    assert evaluation.selected is None and not evaluation.invalid
    assert evaluation.error == (
        "ImagePolicy flux-system/app: none of the 4 candidate tags has a numeric value (Go "
        'ParseFloat): dev-build (value "dev"), main-build (value "main"), rc-build (value "rc") '
        "and 1 more"
    )
    assert evaluation.counts["unparsable"] == 4


def test_an_empty_extracted_value_is_unparsable() -> None:
    evaluation = numerical(Direction.HIGHEST, ["build", "build-7"], TagFilter(r"^build(?:-(\d+))?$", "$1"))
    assert evaluation.selected == "build-7"
    assert [(t.tag, t.verdict, t.value) for t in evaluation.tags] == [
        ("build-7", Verdict.SELECTED, "7"),
        ("build", Verdict.UNPARSABLE, ""),
    ]


def test_field_theories_date_and_time_extract() -> None:
    # The homelab's fieldtheories policy: `$date$time` compared as a number.
    tag_filter = TagFilter(r"^(?P<date>[0-9]{8})-(?P<time>[0-9]{4})-sha-[a-f0-9]{7}$", "$date$time")
    tags = ["20250301-1630-sha-aaaaaaa", "20250302-0900-sha-bbbbbbb", "20250301-0900-sha-ccccccc", "sha-ddddddd"]
    assert numerical(Direction.HIGHEST, tags, tag_filter).selected == "20250302-0900-sha-bbbbbbb"
    assert numerical(Direction.LOWEST, tags, tag_filter).selected == "20250301-0900-sha-ccccccc"
