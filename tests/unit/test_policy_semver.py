"""`select highest semver`: Flux's SemVer policy with a per-tag trace (image-policies.md §3, §7)."""

from __future__ import annotations

import pytest

from engine.evaluate.policy import Evaluation, Verdict, evaluate_policy
from engine.model import ImagePolicy, NamespacedRef, PolicyChoice, PolicyKind, TagFilter


def semver(range_text: str, tags: list[str], tag_filter: TagFilter | None = None) -> Evaluation:
    policy = ImagePolicy(
        "app", NamespacedRef("app"), PolicyChoice(PolicyKind.SEMVER, range=range_text), filter=tag_filter
    )
    return evaluate_policy(policy, None, tags)


def verdicts(evaluation: Evaluation) -> dict[str, Verdict]:
    return {t.tag: t.verdict for t in evaluation.tags}


SELECTIONS = [
    # (range, tags, selected)
    (">=0.9.0", ["1.0.0-rc9", "1.0.0-rc10", "0.9.0"], "0.9.0"),  # prereleases need a `-` in the range
    (">=1.0.0-0", ["1.0.0-rc9", "1.0.0-rc10", "0.9.0"], "1.0.0-rc9"),  # rc10 < rc9: bytewise
    (">=1.0.0-0", ["1.0.0-rc.9", "1.0.0-rc.10"], "1.0.0-rc.10"),  # numeric identifiers
    (">=1.0.0", ["1.2", "1.1.0", "v1", "latest"], "1.1.0"),  # `1.2` has one dot: skipped
    (">=1.0.0", ["1.2-rc.1", "1.0.0"], "1.0.0"),  # 1.2.0-rc.1, a prerelease
    (">=1.0.0-0 <2.0.0", ["1.9.0", "2.0.0-rc.1"], "2.0.0-rc.1"),  # the group opts in entirely
    ("^1.2.3", ["1.2.2", "1.2.3", "1.9.9", "2.0.0"], "1.9.9"),
    ("~1.2", ["1.2.9", "1.3.0"], "1.2.9"),
    (">1.2", ["1.2.5", "1.3.0"], "1.3.0"),
    ("1.x || >=3.0.0", ["1.5.0", "2.0.0", "3.1.0"], "3.1.0"),
    (">=2.0.0 <3.0.0", ["v2025.07.03", "2.9.0"], "2.9.0"),
    ("*", ["v2025.07.03", "2.9.0"], "v2025.07.03"),  # leading zeros coerced
]


@pytest.mark.parametrize(("range_text", "tags", "selected"), SELECTIONS)
def test_selection(range_text: str, tags: list[str], selected: str) -> None:
    evaluation = semver(range_text, tags)
    assert evaluation.error is None
    assert evaluation.selected == selected


TIES = [
    # Flux's first-wins over descending byte order keeps the byte-largest original.
    (["1.0.0", "v1.0.0"], "v1.0.0", "1.0.0"),
    (["v1.0.0", "1.0.0"], "v1.0.0", "1.0.0"),
    (["1.0.0+a", "1.0.0+b"], "1.0.0+b", "1.0.0+a"),
    (["1.0.0", "1.0.0+x"], "1.0.0+x", "1.0.0"),
    (["01.2.3", "1.2.3"], "1.2.3", "01.2.3"),
]


@pytest.mark.parametrize(("tags", "selected", "runner_up"), TIES)
def test_ties_go_to_the_byte_largest_tag(tags: list[str], selected: str, runner_up: str) -> None:
    evaluation = semver(">=1.0.0", tags)
    assert evaluation.selected == selected
    second = evaluation.tags[1]
    assert (second.tag, second.verdict, second.rank) == (runner_up, Verdict.LOWER, 2)
    assert "same precedence" in second.reason


def test_ties_between_extracted_values_are_broken_by_the_original_tag() -> None:
    tag_filter = TagFilter(r"^(?:app|bpp)-(?P<v>.+)$", "$v")
    evaluation = semver(">=1.0.0", ["app-1.0.0", "bpp-v1.0.0"], tag_filter)
    assert evaluation.selected == "bpp-v1.0.0"
    evaluation = semver(">=1.0.0", ["app-v1.0.0", "bpp-1.0.0"], tag_filter)
    assert evaluation.selected == "bpp-1.0.0"  # the original decides, not the value


def test_trace_verdicts_and_reasons() -> None:
    evaluation = semver(
        ">=2.0.0 <3.0.0", ["latest", "1.2", "1.9.0", "2.1.0-rc.1", "2.0.0", "2.4.1", "3.0.0", "2.5.0-rc.1+b"]
    )
    assert evaluation.selected == "2.4.1"
    assert [(t.tag, t.verdict, t.rank) for t in evaluation.tags] == [
        ("2.4.1", Verdict.SELECTED, 1),
        ("2.0.0", Verdict.LOWER, 2),
        ("1.2", Verdict.UNPARSABLE, None),
        ("1.9.0", Verdict.OUT_OF_RANGE, None),
        ("2.1.0-rc.1", Verdict.PRERELEASE_EXCLUDED, None),
        ("2.5.0-rc.1+b", Verdict.PRERELEASE_EXCLUDED, None),
        ("3.0.0", Verdict.OUT_OF_RANGE, None),
        ("latest", Verdict.UNPARSABLE, None),
    ]
    reasons = {t.tag: t.reason for t in evaluation.tags}
    assert reasons["2.4.1"] == "matches >=2.0.0 <3.0.0"
    assert reasons["3.0.0"] == "<3.0.0 fails"
    assert reasons["1.9.0"] == ">=2.0.0 fails"
    assert "two dots" in reasons["1.2"]
    assert "prerelease" in reasons["2.1.0-rc.1"]


def test_a_prerelease_below_the_range_is_out_of_range_not_prerelease_excluded() -> None:
    evaluation = semver(">=2.0.0 <3.0.0", ["2.0.0-rc.1", "2.1.0"])
    assert verdicts(evaluation)["2.0.0-rc.1"] is Verdict.OUT_OF_RANGE
    assert evaluation.tags[-1].reason == ">=2.0.0 fails"


def test_prerelease_opt_in_does_not_cross_an_or() -> None:
    evaluation = semver(">=1.0.0-rc.1 <1.0.0 || >=2.0.0", ["2.1.0-rc.1", "1.0.0-rc.2"])
    assert evaluation.selected == "1.0.0-rc.2"
    assert verdicts(evaluation)["2.1.0-rc.1"] is Verdict.PRERELEASE_EXCLUDED


def test_none_in_range_names_the_highest_outside() -> None:
    evaluation = semver(">=2.0.0 <3.0.0", ["1.0.0", "3.1.0", "3.0.0", "latest"])
    assert evaluation.selected is None and not evaluation.invalid
    assert evaluation.error == (
        'ImagePolicy flux-system/app: no tag satisfies ">=2.0.0 <3.0.0"; '
        "highest outside the range: 3.1.0 (<3.0.0 fails)"
    )


def test_a_prerelease_never_matches_a_range_without_one() -> None:
    evaluation = semver(">=1.0.0", ["1.0.0-rc.1", "0.9.0"])  # §3.4: Flux errs here too
    assert evaluation.error is not None
    assert evaluation.error.endswith("highest outside the range: 1.0.0-rc.1 (>=1.0.0 fails)")
    evaluation = semver(">=0.9.0", ["1.0.0-rc.1"])
    assert evaluation.error is not None
    assert evaluation.error.endswith(
        "highest outside the range: 1.0.0-rc.1 (prerelease not allowed: no comparator in this || "
        "group has a prerelease)"
    )
    assert verdicts(evaluation) == {"1.0.0-rc.1": Verdict.PRERELEASE_EXCLUDED}


def test_no_version_at_all() -> None:
    evaluation = semver(">=1.0.0", ["latest", "main", "v1", "sha-abc1234"])
    assert evaluation.error == (
        "ImagePolicy flux-system/app: none of the 4 candidate tags is a semver version "
        "(at least two dots, e.g. 1.2.3): latest, main, sha-abc1234 and 1 more"
    )
    assert set(verdicts(evaluation).values()) == {Verdict.UNPARSABLE}


@pytest.mark.parametrize(
    ("range_text", "cause"),
    [("", 'improper constraint: ""'), ("1x", "constraint parser error"), ("V1.0.x", "improper constraint")],
)
def test_an_invalid_range_makes_the_policy_invalid(range_text: str, cause: str) -> None:
    evaluation = semver(range_text, ["1.0.0"])
    assert evaluation.invalid and evaluation.selected is None
    assert evaluation.error is not None
    assert evaluation.error.startswith(f'ImagePolicy flux-system/app: invalid policy: invalid semver range "{range_text}"')
    assert cause in evaluation.error
    assert [(t.tag, t.verdict, t.rank) for t in evaluation.tags] == [("1.0.0", Verdict.CANDIDATE, None)]
