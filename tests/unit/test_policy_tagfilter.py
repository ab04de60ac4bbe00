"""filterTags and the exclusion list: RE2 searches and Go-template extract (image-policies.md §6, §8).

The extract expectations were checked against Go's regexp.ExpandString.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.evaluate.tagfilter import CompiledFilter, Exclusions
from engine.rules.regex import PatternError, line_search
from engine.model import TagFilter


def value(pattern: str, extract: str, tag: str) -> str | None:
    return CompiledFilter.compile(TagFilter(pattern, extract)).value(tag)


TS = r"^(?P<ts>[0-9]{8})-[0-9]{4}-sha-[a-f0-9]{7}$"

EXTRACTS = [
    # (pattern, extract, tag, value)
    (TS, "$ts", "20250102-1200-sha-abc1234", "20250102"),
    (TS, "${ts}", "20250102-1200-sha-abc1234", "20250102"),
    (TS, "", "20250102-1200-sha-abc1234", "20250102-1200-sha-abc1234"),  # no extract: the tag
    (r"(\d+)", "$1", "build-42-x", "42"),  # only the template: text outside the match is dropped
    (r"(\d+)", "$0", "build-42-x", "42"),
    (r"(\d+)", "$1x", "build-42-x", ""),  # the group called `1x`, which does not exist
    (r"(\d+)", "${1}x", "build-42-x", "42x"),
    (r"(\d+)", "$$1", "build-42-x", "$1"),
    (r"(\d+)", "v$", "build-42-x", "v$"),  # a trailing `$` is literal
    (r"(\d+)", "$-$1", "build-42-x", "$-42"),  # so is a `$` before no name
    (r"(\d+)", "${1", "build-42-x", "${1"),  # and an unclosed brace
    (r"(\d+)", "${}", "build-42-x", "${}"),
    (r"(\d+)", "$2", "build-42-x", ""),  # no such group
    (r"(\d+)", "$01", "build-42-x", ""),  # leading zero: a name, not a number
    (r"(a)|(b)", "[$1][$2]", "b", "[][b]"),  # a group that did not take part is empty
    (r"(?P<major>\d+)\.(?P<minor>\d+)", "$minor.$major", "v1.22", "22.1"),
    (r"(?P<n>\d+)", "$n_suffix", "7", ""),  # `_` is part of a name
    (r"(?P<n>\d+)", "${n}_suffix", "7", "7_suffix"),
    (r"^v(?P<n>\d+)$|^release-(?P<n>\d+)$", "$n", "release-5", "5"),  # a shared name: the one that matched
    (r"^v(?P<n>\d+)$|^release-(?P<n>\d+)$", "$n", "v3", "3"),
    (r"[(](?P<n>.)", "$n", "x(y", "y"),  # a parenthesis in a class opens no group
    (r"\((.)(?P<n>.)", "$n", "(ab", "b"),
    (r"(?i)^RC(\d+)$", "$1", "rc10", "10"),
    (r"(é)(.)", "$2", "éa", "a"),  # offsets are UTF-8 bytes, values whole characters
    ("", "", "anything", "anything"),  # the empty pattern matches every tag
    ("sha", "", "x-sha-y", "x-sha-y"),  # a search, not a full match
]


@pytest.mark.parametrize(("pattern", "extract", "tag", "expected"), EXTRACTS)
def test_extract_expands_like_go(pattern: str, extract: str, tag: str, expected: str) -> None:
    assert value(pattern, extract, tag) == expected


def test_a_tag_that_does_not_match_is_filtered() -> None:
    assert value(TS, "$ts", "sha-abc1234") is None
    assert value("^v", "", "1.0.0") is None


INVALID = [
    ("(?=a)", "invalid perl operator"),  # no lookaround in RE2
    (r"(a)\1", "invalid escape sequence"),  # no backreferences
    ("[", "missing ]"),
    ("a{1001}", "invalid repetition size"),
    (r"\C", r"invalid escape sequence: `\C`"),  # RE2 takes it, Go does not
    ("(?P<é>a)", "invalid named capture"),  # Go names are ASCII word characters
]


@pytest.mark.parametrize(("pattern", "cause"), INVALID)
def test_invalid_patterns_are_refused_with_a_reason(pattern: str, cause: str) -> None:
    with pytest.raises(PatternError) as caught:
        CompiledFilter.compile(TagFilter(pattern, "$1"))
    assert str(caught.value).startswith(f"invalid regular expression pattern '{pattern}': ")
    assert cause in caught.value.cause


def test_a_quoted_backslash_c_is_literal() -> None:
    assert value(r"\Q\C\E", "", r"a\Cb") == r"a\Cb"


def test_exclusions_are_unanchored_and_any_pattern_excludes() -> None:
    exclusions = Exclusions.compile([r"^.*\.sig$", "c"])
    assert exclusions.excluding_pattern("sha256-abc.sig") == r"^.*\.sig$"
    assert exclusions.excluding_pattern("rc1") == "c"  # `c` anywhere in the tag
    assert exclusions.excluding_pattern("1.0.0") is None


def test_an_invalid_exclusion_pattern_is_refused() -> None:
    with pytest.raises(PatternError):
        Exclusions.compile(["ok", "(?!x)"])


# `split` runs many tags through a stdlib program (`line_search`) when the pattern allows it:
# random patterns of the subset and random tags must give what RE2 gives tag by tag.
PATTERN_TOKENS = ["a", "b", "1", "-", ".", r"\d", r"\w", r"\.", "[a-c]", "[^b]", "[0-9.]", "(", ")",
                  "(?:", "(?P<n>", "|", "^", "$", "?", "*", "+", "{2}", "{1,3}", "??", "(?i)"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(PATTERN_TOKENS), min_size=1, max_size=8),
    st.lists(st.text("ab1-.c", max_size=8), max_size=12, unique=True),
    st.sampled_from(["", "$1", "x$0-${n}", "$2$1"]),
)
@example(["^", "(", r"\d", "+", ")", r"\.", "(?P<n>", "a", ")", "?", "$"], ["1.a", "12.", "x1.a"], "$1")
def test_split_finds_what_re2_finds_tag_by_tag(tokens: list[str], tags: list[str], extract: str) -> None:
    try:
        compiled = CompiledFilter.compile(TagFilter("".join(tokens), extract))
    except PatternError:
        return
    passed, values, unmatched = compiled.split(tags)
    expected = {tag: compiled.value(tag) for tag in tags}
    assert sorted(passed) == sorted(t for t, v in expected.items() if v is not None)
    assert sorted(unmatched) == sorted(t for t, v in expected.items() if v is None)
    if compiled.template is None:
        assert values is None
    else:
        assert values is not None and dict(zip(passed, values)) == {t: v for t, v in expected.items() if v is not None}


def test_line_search_takes_the_usual_patterns_and_leaves_the_rest_to_re2() -> None:
    usual = [r"^(?P<ts>[0-9]{8})-(?P<hm>[0-9]{4})-sha-[a-f0-9]{7}$", r"^main-[a-f0-9]+-(?P<ts>\d+)",
             r"^v?(?P<version>[0-9]+\.[0-9]+\.[0-9]+)$", r"(\d+)"]
    assert all(line_search(p) is not None for p in usual)
    others = [r"(?i)^v", r"\s", r"(a+)+", r"\pL", r"[[:alpha:]]", r"a*b*c*d*e"]
    assert all(line_search(p) is None for p in others)
