"""The whole pipeline: exclusion -> filterTags -> policy, its errors, and its trace (§1, §7)."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluate.policy import Evaluation, TagVerdict, Verdict, evaluate_policy
from engine.model import (
    Direction,
    ImagePolicy,
    ImageRepository,
    NamespacedRef,
    PolicyChoice,
    PolicyKind,
    TagFilter,
)

REPO = ImageRepository("app", "ghcr.io/o/app", namespace="apps", exclusion_list=(r"^.*\.sig$", "^sha-"))
TIMESTAMP = TagFilter(r"^(?P<ts>[0-9]{8})-[0-9]{4}-sha-[a-f0-9]{7}$", "$ts")


def policy(choice: PolicyChoice, tag_filter: TagFilter | None = None) -> ImagePolicy:
    return ImagePolicy("app", NamespacedRef("app"), choice, namespace="apps", filter=tag_filter)


ALPHA = PolicyChoice(PolicyKind.ALPHABETICAL)


def test_no_tags() -> None:
    evaluation = evaluate_policy(policy(ALPHA), REPO, [])
    assert evaluation.selected is None and not evaluation.invalid and evaluation.tags == ()
    assert evaluation.error == "ImagePolicy apps/app: no tags in the ledger for ImageRepository apps/app"


def test_every_tag_excluded() -> None:
    evaluation = evaluate_policy(policy(ALPHA), REPO, ["sha-1", "sha-2", "x.sig"])
    assert evaluation.error == (
        "ImagePolicy apps/app: all 3 tags are excluded by the exclusion list of ImageRepository apps/app"
    )
    assert evaluation.counts["excluded"] == 3


def test_every_tag_filtered_names_the_closest_tags() -> None:
    tags = ["latest", "2025-03-01-0900-sha-abcdef1", "20250301-0900-sha-abcdef12", "main", "v1.2.3"]
    evaluation = evaluate_policy(policy(ALPHA, TIMESTAMP), REPO, tags)
    assert evaluation.selected is None and not evaluation.invalid
    assert evaluation.error == (
        'ImagePolicy apps/app: filter pattern "^(?P<ts>[0-9]{8})-[0-9]{4}-sha-[a-f0-9]{7}$" matched 0 '
        "of 5 tags; closest: 20250301-0900-sha-abcdef12, 2025-03-01-0900-sha-abcdef1, latest"
    )
    assert evaluation.counts["filtered"] == 5


def test_an_invalid_filter_makes_the_policy_invalid_and_evaluates_nothing() -> None:
    evaluation = evaluate_policy(policy(ALPHA, TagFilter("^(?!sha-)", "")), REPO, ["b", "a", "sha-1"])
    assert evaluation.invalid and evaluation.selected is None
    assert evaluation.error == (
        "ImagePolicy apps/app: invalid policy: filterTags: invalid regular expression pattern "
        "'^(?!sha-)': invalid perl operator: (?!"
    )
    assert [(t.tag, t.verdict, t.rank, t.value) for t in evaluation.tags] == [
        ("a", Verdict.CANDIDATE, None, None),
        ("b", Verdict.CANDIDATE, None, None),
        ("sha-1", Verdict.CANDIDATE, None, None),
    ]


def test_an_invalid_exclusion_pattern_is_the_repository_s_error() -> None:
    repo = ImageRepository("app", "ghcr.io/o/app", namespace="apps", exclusion_list=("(",))
    evaluation = evaluate_policy(policy(ALPHA), repo, ["a"])
    assert not evaluation.invalid and evaluation.selected is None
    assert evaluation.error is not None
    assert evaluation.error.startswith(
        "ImagePolicy apps/app: ImageRepository apps/app exclusion list: invalid regular expression pattern '('"
    )


def test_without_a_repository_the_default_exclusion_list_applies() -> None:
    evaluation = evaluate_policy(policy(ALPHA), None, ["a", "z.sig", "sha-1"])
    assert evaluation.selected == "sha-1"
    assert {t.tag: t.verdict for t in evaluation.tags}["z.sig"] is Verdict.EXCLUDED


def test_an_explicit_list_replaces_the_default() -> None:
    repo = ImageRepository("app", "ghcr.io/o/app", namespace="apps", exclusion_list=("-alpha$",))
    assert evaluate_policy(policy(ALPHA), repo, ["0.1.1.sig", "0.1.0"]).selected == "0.1.1.sig"


def test_the_original_tag_is_reported_never_the_value() -> None:
    evaluation = evaluate_policy(policy(ALPHA, TagFilter(r"build-(\d+)", "$1")), REPO, ["x-build-7-y", "build-10"])
    assert evaluation.selected == "x-build-7-y"  # "7" > "10" in byte order
    assert evaluation.tags[0].value == "7"


def test_repeated_input_tags_appear_once_and_inputs_are_untouched() -> None:
    tags = ["b", "a", "b", "c.sig"]
    choice = PolicyChoice(PolicyKind.ALPHABETICAL, Direction.LOWEST)
    evaluation = evaluate_policy(policy(choice), REPO, tags)
    assert tags == ["b", "a", "b", "c.sig"]
    assert [t.tag for t in evaluation.tags] == ["a", "b", "c.sig"]
    assert evaluation.selected == "a"


def test_trace_json_shape() -> None:
    evaluation = evaluate_policy(policy(ALPHA, TIMESTAMP), REPO, ["20250301-0900-sha-abcdef1", "sha-abcdef1", "latest"])
    document = evaluation.to_json()
    assert json.loads(json.dumps(document)) == document  # plain JSON types only
    assert document == {
        "policy": "apps/app",
        "selected": "20250301-0900-sha-abcdef1",
        "error": None,
        "invalid": False,
        "counts": {
            "selected": 1, "candidate": 0, "lower": 0, "excluded": 1, "filtered": 1,
            "unparsable": 0, "out-of-range": 0, "prerelease-excluded": 0,
        },
        "tags": [
            {"tag": "20250301-0900-sha-abcdef1", "verdict": "selected", "value": "20250301", "rank": 1,
             "reason": "byte order, highest first"},
            {"tag": "latest", "verdict": "filtered", "value": None, "rank": None,
             "reason": 'does not match filter pattern "^(?P<ts>[0-9]{8})-[0-9]{4}-sha-[a-f0-9]{7}$"'},
            {"tag": "sha-abcdef1", "verdict": "excluded", "value": None, "rank": None,
             "reason": 'matches exclusion pattern "^sha-"'},
        ],
    }


def test_verdict_words_are_the_stored_ones() -> None:
    assert [v.value for v in Verdict] == [
        "selected", "candidate", "lower", "excluded", "filtered", "unparsable", "out-of-range",
        "prerelease-excluded",
    ]


# --- properties --------------------------------------------------------------------------------

TAG = st.text(alphabet="0123456789.-+_vrcshaeNnIifx", min_size=0, max_size=12)
CHOICES = st.sampled_from([
    PolicyChoice(PolicyKind.SEMVER, range=">=0.0.0-0"),
    PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0 <3.0.0 || 5.x"),
    PolicyChoice(PolicyKind.ALPHABETICAL, Direction.HIGHEST),
    PolicyChoice(PolicyKind.ALPHABETICAL, Direction.LOWEST),
    PolicyChoice(PolicyKind.NUMERICAL, Direction.HIGHEST),
    PolicyChoice(PolicyKind.NUMERICAL, Direction.LOWEST),
])
FILTERS = st.sampled_from([
    None,
    TagFilter(r"(\d+)", "$1"),  # many tags share a value
    TagFilter(r"^v?(?P<v>[0-9.]+)", "${v}"),
    TagFilter(r"[0-9]", ""),
])
REPOS = st.sampled_from([None, REPO])


def check_trace(evaluation: Evaluation, tags: list[str]) -> None:
    traced = [t.tag for t in evaluation.tags]
    assert sorted(traced) == sorted(set(tags))  # every distinct tag exactly once
    assert sum(evaluation.counts.values()) == len(set(tags))
    ranks = [t.rank for t in evaluation.tags if t.rank is not None]
    assert ranks == list(range(1, len(ranks) + 1))
    if evaluation.selected is not None:
        assert evaluation.selected in tags
        assert evaluation.error is None
        assert evaluation.tags[0] == TagVerdict(
            evaluation.selected, Verdict.SELECTED, evaluation.tags[0].value, 1, evaluation.tags[0].reason
        )
    else:
        assert evaluation.error is not None
        assert evaluation.counts["selected"] == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(TAG, max_size=25), CHOICES, FILTERS, REPOS, st.randoms(use_true_random=False))
def test_shuffling_never_changes_the_result_or_the_trace(
    tags: list[str],
    choice: PolicyChoice,
    tag_filter: TagFilter | None,
    repo: ImageRepository | None,
    rng: random.Random,
) -> None:
    evaluation = evaluate_policy(policy(choice, tag_filter), repo, tags)
    check_trace(evaluation, tags)
    shuffled = list(tags)
    rng.shuffle(shuffled)
    assert evaluate_policy(policy(choice, tag_filter), repo, shuffled) == evaluation
    assert evaluate_policy(policy(choice, tag_filter), repo, shuffled + tags[:3]) == evaluation
