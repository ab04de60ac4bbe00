"""A PolicyMemo changes how much work an evaluation does, never what it finds.

Evaluations with one memo kept across rescans (tags added, tags gone, specs changed in between)
equal evaluations without one: the selection, the error, the counts and every tag's verdict,
value, rank and reason in the trace.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.evaluate.decision import PolicyMemos
from engine.evaluate.policies import Scored, policy_for
from engine.evaluate.policy import PolicyMemo, evaluate_policy
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

TAG = st.one_of(
    st.text(alphabet="0123456789.-+_vrcshaeNnIifx", min_size=0, max_size=12),
    st.builds(
        lambda v, a, b, c, pre: f"{v}{a}.{b}.{c}{pre}",
        st.sampled_from(["", "v"]),
        st.integers(0, 6),
        st.integers(0, 3),
        st.integers(0, 3),
        st.sampled_from(["", "-rc.1", "-rc.2", "-beta", "+b1", "-0"]),
    ),
)
CHOICES = st.sampled_from([
    PolicyChoice(PolicyKind.SEMVER, range=">=0.0.0-0"),
    PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0 <3.0.0 || !=5.1.0 >=5.0.0-0"),  # key tests
    PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0 <3.0.0 || 5.x"),  # a wildcard: Constraint
    PolicyChoice(PolicyKind.SEMVER, range="~2.1 || ^0.3"),
    PolicyChoice(PolicyKind.SEMVER, range=">=9.0.0"),  # mostly nothing in range
    PolicyChoice(PolicyKind.ALPHABETICAL, Direction.HIGHEST),
    PolicyChoice(PolicyKind.ALPHABETICAL, Direction.LOWEST),
    PolicyChoice(PolicyKind.NUMERICAL, Direction.HIGHEST),
    PolicyChoice(PolicyKind.NUMERICAL, Direction.LOWEST),
])
FILTERS = st.sampled_from([
    None,
    TagFilter(r"(\d+)", "$1"),  # many tags share a value: they collapse
    TagFilter(r"^v?(?P<v>[0-9.]+)", "${v}"),
    TagFilter(r"[0-9]", ""),
    TagFilter(r"^zzz", ""),  # nothing passes
])
REPOS = st.sampled_from([None, REPO])


def policy(choice: PolicyChoice, tag_filter: TagFilter | None) -> ImagePolicy:
    return ImagePolicy("app", NamespacedRef("app"), choice, namespace="apps", filter=tag_filter)


@st.composite
def rescans(draw: st.DrawFn) -> list[list[str]]:
    """A first scan, then scans that add tags, lose some, or both (and a repeat)."""
    scans = [draw(st.lists(TAG, max_size=20))]
    for _ in range(draw(st.integers(1, 4))):
        tags = list(scans[-1])
        gone = draw(st.integers(0, 2)) if tags else 0
        kept = tags[gone:] if draw(st.booleans()) else tags
        scans.append(kept + draw(st.lists(TAG, max_size=5)))
    return scans


@settings(max_examples=400, deadline=None)
@given(rescans(), st.lists(st.tuples(CHOICES, FILTERS, REPOS), min_size=1, max_size=3))
def test_a_memo_kept_across_rescans_never_changes_an_evaluation(
    scans: list[list[str]], specs: list[tuple[PolicyChoice, TagFilter | None, ImageRepository | None]]
) -> None:
    memo = PolicyMemo()
    for tags in scans:
        for choice, tag_filter, repo in specs:  # several specs share one memo
            with_memo = evaluate_policy(policy(choice, tag_filter), repo, tags, memo)
            without = evaluate_policy(policy(choice, tag_filter), repo, tags)
            assert with_memo == without
            assert with_memo.tags == without.tags  # the whole trace, tag by tag
            assert with_memo.to_json() == without.to_json()


def test_a_rescan_with_new_tags_works_only_on_them() -> None:
    """The lines of the tags seen before are kept as they were; the new tags make one chunk."""
    semver = policy(PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0"), None)
    tags = [f"1.{i}.0" for i in range(50)] + [f"sha-{i}" for i in range(50)] + ["latest"]
    memo = PolicyMemo()
    first = evaluate_policy(semver, None, tags, memo)
    again = evaluate_policy(semver, None, list(reversed(tags)), memo)
    assert again.unranked[0] is first.unranked[0]
    later = evaluate_policy(semver, None, tags + ["2.0.0", "nightly"], memo)
    assert later.unranked[0] is first.unranked[0]
    assert [line[0] for line in later.unranked[1]] == ["nightly"]
    assert later.selected == "2.0.0"
    assert later == evaluate_policy(semver, None, tags + ["2.0.0", "nightly"])


def test_the_memo_keeps_the_most_recently_used_specs() -> None:
    memo = PolicyMemo(max_specs=2)
    for low in ("1", "2", "3"):
        evaluate_policy(policy(PolicyChoice(PolicyKind.SEMVER, range=f">={low}.0.0"), None), None, ["1.0.0"], memo)
    assert len(memo) == 2


def test_a_memo_holds_the_last_scans_tags_only() -> None:
    alphabetical = policy(PolicyChoice(PolicyKind.ALPHABETICAL), None)
    memo = PolicyMemo()
    for batch in range(5):
        tags = [f"b{batch}-{i:03d}" for i in range(600)]
        assert evaluate_policy(alphabetical, None, tags, memo).selected == f"b{batch}-599"
        (part,) = memo._parts.values()
        assert part.last is not None and part.last.present == set(tags)
        assert sum(map(len, part.last.chunks)) + len(part.last.candidates) == 600


def test_a_rescan_counts_only_its_new_tags_as_stepped() -> None:
    semver = policy(PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0"), None)
    tags = [f"1.{i}.0" for i in range(40)] + ["latest"]
    memo = PolicyMemo()
    evaluate_policy(semver, None, tags, memo)
    assert memo.stepped == 41
    evaluate_policy(semver, None, tags + ["2.0.0", "2.1.0-rc.1"], memo)
    assert memo.stepped == 43
    evaluate_policy(semver, None, tags + ["2.0.0", "2.1.0-rc.1"], memo)
    assert memo.stepped == 43


def test_policy_memos_keep_one_spec_per_policy_and_only_the_policies_kept() -> None:
    memos = PolicyMemos()
    old = policy(PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0"), None)
    changed = policy(PolicyChoice(PolicyKind.SEMVER, range=">=1.5.0"), None)
    other = replace(old, name="other")
    evaluate_policy(old, None, ["1.0.0", "1.6.0"], memos.of(old))
    evaluate_policy(changed, None, ["1.0.0", "1.6.0", "1.7.0"], memos.of(changed))
    assert memos.of(old) is memos.of(changed)  # one policy: its memo holds the new spec only
    assert (len(memos.of(old)), memos.of(old).stepped) == (1, 3)
    evaluate_policy(other, None, ["1.0.0"], memos.of(other))
    assert len(memos) == 2
    memos.keep([other])
    assert len(memos) == 1 and memos.of(other).stepped == 1


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-3, 3).map(str),
    st.sampled_from(["1.0", "01", "-0", "0.0", "NaN", "Inf"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(TAG, NUMBERS), unique=True, max_size=60), st.data(), CHOICES)
def test_merging_new_candidates_into_a_ranking_equals_ranking_them_all(
    tags: list[str], data: st.DataObject, choice: PolicyChoice
) -> None:
    ranker = policy_for(choice)
    admitted = [Scored(tag, tag, judged.key) for tag in tags
                if (judged := ranker.judge(tag)).verdict is None]
    cut = data.draw(st.integers(0, len(admitted)))
    merged = ranker.merge(ranker.rank(admitted[:cut]), admitted[cut:])
    assert [s.tag for s in merged] == [s.tag for s in ranker.rank(admitted)]


def test_a_rescan_with_tags_gone_steps_only_the_new_ones() -> None:
    """Without an extract, the gone tags are taken out of what the memo kept."""
    semver = policy(PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0"), None)
    tags = [f"1.{i}.0" for i in range(40)] + ["latest", "1.39.1-rc.1"]
    memo = PolicyMemo()
    first = evaluate_policy(semver, None, tags, memo)
    assert first.selected == "1.39.0"
    later = evaluate_policy(semver, None, [*tags[:39], "latest", "1.38.5"], memo)  # 1.39.0 gone
    assert memo.stepped == len(tags) + 1
    assert later.selected == "1.38.5"
    assert later == evaluate_policy(semver, None, [*tags[:39], "latest", "1.38.5"])
