"""Semver tags and ranges as Flux reads them (image-policies.md §3, §10, §11)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rules.semver import (
    PRERELEASE_NOT_ALLOWED,
    ConstraintError,
    Version,
    Wildcard,
    parse_constraint,
    parse_version,
)


def version(tag: str) -> Version:
    parsed = parse_version(tag)
    assert parsed is not None, f"{tag!r} should parse"
    return parsed


def latest(range_text: str, tags: list[str]) -> str | None:
    """Flux's SemVer.Latest: skip unparsable tags, keep the first of equals (strict greater)."""
    constraint = parse_constraint(range_text)
    best: Version | None = None
    for tag in tags:
        v = parse_version(tag)
        if v is not None and constraint.check(v) and (best is None or v > best):
            best = v
    return best.original if best else None


# --- §3.2 tag parsing --------------------------------------------------------------------------

VALID_TAGS = [
    ("1.2.3", (1, 2, 3, (), "")),
    ("v1.2.3", (1, 2, 3, (), "")),
    ("1.2.3-rc.1+build.5", (1, 2, 3, ("rc", "1"), "build.5")),
    ("v2025.07.03", (2025, 7, 3, (), "")),
    ("01.002.0003", (1, 2, 3, (), "")),
    ("1.2-rc.1", (1, 2, 0, ("rc", "1"), "")),
    ("1-rc.1.2", (1, 0, 0, ("rc", "1", "2"), "")),
    ("1.0.0+01.002", (1, 0, 0, (), "01.002")),  # metadata keeps leading zeros
    ("1.0.0-0", (1, 0, 0, ("0",), "")),
    ("1.0.0-x-y.z--", (1, 0, 0, ("x-y", "z--"), "")),
    ("1.0.0-0a", (1, 0, 0, ("0a",), "")),  # alphanumeric, so a leading zero is fine
    ("18446744073709551615.0.0", (2**64 - 1, 0, 0, (), "")),
    ("1.2+build.7", (1, 2, 0, (), "build.7")),  # the dots may be in the metadata
    ("1.0.0-99999999999999999999", (1, 0, 0, ("99999999999999999999",), "")),
]


@pytest.mark.parametrize(("tag", "fields"), VALID_TAGS)
def test_valid_tags_parse_with_coercion(tag: str, fields: tuple[object, ...]) -> None:
    v = version(tag)
    assert (v.major, v.minor, v.patch, v.prerelease, v.metadata) == fields
    assert v.original == tag
    assert str(v) == tag


SKIPPED_TAGS = [
    "1.2", "v1", "2", "1.2-5", "v1.2-beta5",  # fewer than two dots
    "V1.2.3", " 1.2.3", "vv1.2.3", "1.2.3 ", "1.2.3\n",  # only one lowercase v, nothing around
    "1.2.3.4", "1.0.0p", "1.2.beta", "1.0.0-", "1.0.0_x", "1.0.0+", "1.0.0-a..b", "1.0.0-rc.",
    "1.0.0-rc.01", "1.0.0-00",  # numeric prerelease identifier with a leading zero
    "99999999999999999999.0.0", "1.18446744073709551616.0",  # uint64 overflow
    "latest", "main", "sha-abc1234", "", "...", "1..2.3", "x.y.z", "1.2.3-ümlaut", "１.２.３",
]


@pytest.mark.parametrize("tag", SKIPPED_TAGS)
def test_non_versions_are_skipped_not_errors(tag: str) -> None:
    assert parse_version(tag) is None


def test_tags_longer_than_256_bytes_are_skipped() -> None:
    assert parse_version("1.0.0-" + "a" * 250) is not None  # 256 bytes
    assert parse_version("1.0.0-" + "a" * 251) is None


# --- §3.3 ordering -----------------------------------------------------------------------------

ASCENDING = [
    ("1.0.0-rc10", "1.0.0-rc9"),  # alphanumeric identifiers compare bytewise
    ("1.0.0-rc.9", "1.0.0-rc.10"),  # numeric identifiers compare as numbers
    ("1.0.0-1", "1.0.0-alpha"),  # numeric below alphanumeric
    ("1.0.0-999", "1.0.0-A"),
    ("1.0.0-alpha", "1.0.0-alpha.1"),  # fewer identifiers is lower
    ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
    ("1.0.0-beta.11", "1.0.0-rc.1"),
    ("1.0.0-rc.1", "1.0.0"),  # a prerelease is below its release
    ("1.0.0", "1.0.1-0"),
    ("1.9.0", "1.10.0"),
    ("9.9.9", "10.0.0"),
    ("1.0.0-2", "1.0.0-18446744073709551616"),  # past uint64: compared as text
    ("1.0.0-18446744073709551616", "1.0.0-a"),
    ("1.0.0-100000000000000000000", "1.0.0-99999999999999999999"),  # text, not numbers
    ("1.0.0-Z", "1.0.0-a"),  # bytewise: upper case first
]


@pytest.mark.parametrize(("low", "high"), ASCENDING)
def test_precedence(low: str, high: str) -> None:
    a, b = version(low), version(high)
    assert a < b and b > a and a <= b and b >= a
    assert a.compare(b) == -1 and b.compare(a) == 1


TIES = [
    ("1.0.0", "v1.0.0"),
    ("1.0.0+a", "1.0.0+b"),
    ("01.2.3", "1.2.3"),
    ("1.2-rc.1", "1.2.0-rc.1"),
]


@pytest.mark.parametrize(("a_tag", "b_tag"), TIES)
def test_ties_ignore_metadata_and_spelling(a_tag: str, b_tag: str) -> None:
    a, b = version(a_tag), version(b_tag)
    assert a.compare(b) == 0 and not a < b and not b < a and a <= b
    assert a != b  # equality stays structural: the original differs


def test_ties_keep_the_first_tag_in_input_order() -> None:
    assert latest(">=1.0.0", ["v1.0.0", "1.0.0"]) == "v1.0.0"
    assert latest(">=1.0.0", ["1.0.0+x", "1.0.0"]) == "1.0.0+x"
    assert latest(">=1.0.0", ["1.0.0", "1.0.0+x"]) == "1.0.0"


def test_sorting_a_tag_list() -> None:
    tags = ["1.0.0", "1.0.0-rc10", "1.0.0-rc9", "1.0.0-rc.2", "1.0.0-rc.10", "0.9.0", "1.0.0-1"]
    ordered = [str(v) for v in sorted(map(version, tags))]
    assert ordered == [
        "0.9.0", "1.0.0-1", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0-rc10", "1.0.0-rc9", "1.0.0",
    ]


def test_prerelease_flag() -> None:
    assert version("1.0.0-rc.1").is_prerelease
    assert not version("1.0.0+rc.1").is_prerelease


def test_normalized_form_drops_v_and_leading_zeros() -> None:
    assert version("v01.02.03-rc.1+b.01").normalized == "1.2.3-rc.1+b.01"
    assert str(Version(1, 2, 3)) == "1.2.3"


# --- §3.4 ranges -------------------------------------------------------------------------------

RANGE_CASES = [
    # wildcards and partial versions
    ("*", "0.0.0", True), ("*", "99.1.2", True), ("x", "1.2.3", True), ("X", "1.2.3", True),
    (">=0.0.0", "3.2.1", True), ("*", "1.2.3-rc.1", False),
    ("1.x", "1.0.0", True), ("1.x", "1.99.0", True), ("1.x", "2.0.0", False), ("1.x", "0.9.9", False),
    ("1.*", "1.5.5", True), ("1.*", "2.0.0", False), ("1", "1.9.9", True), ("1", "2.0.0", False),
    ("1.2.x", "1.2.0", True), ("1.2.x", "1.2.99", True), ("1.2.x", "1.3.0", False),
    ("1.2", "1.2.7", True), ("1.2", "1.3.0", False), ("1.2", "1.1.9", False),
    ("x.1.2", "5.0.0", True),  # a wildcard major widens everything after it
    # tilde
    ("~1.2.3", "1.2.3", True), ("~1.2.3", "1.2.9", True), ("~1.2.3", "1.3.0", False),
    ("~1.2.3", "1.2.2", False), ("~1.2", "1.2.0", True), ("~1.2", "1.3.0", False),
    ("~1", "1.9.0", True), ("~1", "2.0.0", False), ("~>1.2.3", "1.2.5", True),
    ("~0.0.0", "7.0.0", True), ("~*", "2.1.1", True),
    # caret
    ("^1.2.3", "1.2.3", True), ("^1.2.3", "1.9.9", True), ("^1.2.3", "2.0.0", False),
    ("^1.2.3", "1.2.2", False), ("^1", "1.0.0", True), ("^1", "2.0.0", False),
    ("^1.x", "1.5.0", True), ("^1.x", "2.0.0", False),
    ("^0.2.3", "0.2.3", True), ("^0.2.3", "0.2.9", True), ("^0.2.3", "0.3.0", False),
    ("^0.0.3", "0.0.3", True), ("^0.0.3", "0.0.4", False), ("^0.0.3", "0.0.2", False),
    ("^0.0.3", "0.1.3", False),
    ("^0", "0.0.0", True), ("^0", "0.9.9", True), ("^0", "1.0.0", False),
    ("^0.0", "0.0.5", True), ("^0.0", "0.1.0", False),
    ("^*", "0.0.0", True), ("^*", "1.2.3", False),  # the Go comment says "any"; the code does not
    # dirty comparisons
    (">1.2", "1.2.5", False), (">1.2", "1.3.0", True), (">1.2", "2.0.0", True),
    (">1", "1.9.9", False), (">1", "2.0.0", True), (">1.2.3", "1.2.4", True),
    (">1.2.3", "1.2.3", False), (">*", "0.0.1", True), (">*", "0.0.0", False),
    ("<=1.2", "1.2.99", True), ("<=1.2", "1.3.0", False), ("<=1.2", "0.99.0", True),
    ("<=1", "1.99.0", True), ("<=1", "2.0.0", False), ("=<1.2.3", "1.2.3", True),
    ("<=1.2.3", "1.2.4", False),
    ("<1.2", "1.1.9", True), ("<1.2", "1.2.0", False), ("<1.x", "1.0.0", False),
    (">=1.0", "1.0.0", True), (">=1.0", "0.9.9", False), ("=>1.0", "1.0.0", True),
    ("!=1.2.x", "1.2.5", False), ("!=1.2.x", "1.3.0", True), ("!=1.x", "1.9.0", False),
    ("!=1.x", "2.0.0", True), ("!=1.2.3", "1.2.3", False), ("!=1.2.3", "1.2.4", True),
    ("=1.2.3", "1.2.3", True), ("=1.2.3", "1.2.4", False), ("= 2.0", "2.0.5", True),
    # metadata is ignored; a v prefix is allowed
    ("=1.0.0+abc", "1.0.0+def", True), ("1.0.0+abc", "1.0.0", True),
    ("v1.0.x", "1.0.7", True), (">=v1.2.3", "1.2.3", True),
    # hyphen ranges, AND and OR
    ("1.0.0 - 2.0.0", "1.0.0", True), ("1.0.0 - 2.0.0", "2.0.0", True),
    ("1.0.0 - 2.0.0", "2.0.1", False), ("1.0.0 - 2.0.0", "0.9.9", False),
    ("1.2 - 2", "2.5.0", True),  # <=2 is dirty: any 2.x
    ("1.0.0 - 2.0.0 <=1.5.0", "1.6.0", False),
    (">=2.0.0 <3.0.0", "2.5.0", True), (">=2.0.0 <3.0.0", "3.0.0", False),
    (">=2.0.0, <3.0.0", "2.0.0", True), (">=2.0.0 , <3.0.0", "1.9.0", False),
    (">= 2.0.0 < 3.0.0", "2.9.9", True), (">=2.0.0\t<3.0.0", "2.1.0", True),
    ("<1.0.0 || >=2.0.0", "0.5.0", True), ("<1.0.0 || >=2.0.0", "1.5.0", False),
    ("<1.0.0 || >=2.0.0", "2.5.0", True), ("^1 || ^3", "3.1.0", True),
    (">=1.1 <2 !=1.2.3", "1.2.3", False), (">=1.1 <2 !=1.2.3", "1.2.4", True),
    # prereleases: opt-in per || group, then for every comparator of it
    (">=1.0.0", "1.0.0-rc.1", False), (">=1.0.0-0", "1.0.0-rc.1", True),
    (">=1.0.0-0", "0.9.0-rc.1", False), ("^1.x-0", "1.2.0-beta.1", True),
    ("^1.x-0", "2.0.0-beta.1", False), ("~2.0.0-rc.1", "2.0.0-rc.2", True),
    ("~2.0.0-rc.1", "2.0.0-rc.0", False), ("~2.0.0-rc.1", "2.0.5-alpha", True),
    (">=1.0.0-0 <2.0.0", "2.0.0-rc.1", True),  # the upper-bound leak
    (">=1.0.0-0 <2.0.0", "2.0.0", False),
    (">=1.0.0-rc.1 <1.0.0 || >=2.0.0", "2.1.0-rc.1", False),  # no carry across ||
    (">=1.0.0-rc.1 <1.0.0 || >=2.0.0", "1.0.0-rc.2", True),
    ("*-0", "1.2.3-alpha.1", True), ("!=4.1-alpha", "4.1.0", True),
    ("!=4.1-alpha", "4.1.0-alpha", False), ("!=4.1-alpha", "4.1.0-beta", True),
    ("=1.0.0-rc.1", "1.0.0-rc.1+x", True),
]


@pytest.mark.parametrize(("range_text", "tag", "expected"), RANGE_CASES)
def test_range_check(range_text: str, tag: str, expected: bool) -> None:
    constraint = parse_constraint(range_text)
    v = version(tag)
    assert constraint.check(v) is expected
    assert constraint.explain(v).startswith("matches ") is expected


def test_prerelease_leak_selects_the_release_candidate() -> None:
    tags = ["1.9.0", "2.0.0-rc.1", "1.5.0", "2.0.0"]
    assert latest(">=1.0.0-0 <2.0.0", tags) == "2.0.0-rc.1"
    assert latest(">=1.0.0 <2.0.0", tags) == "1.9.0"


def test_prerelease_never_matches_a_release_range() -> None:
    assert latest(">=1.0.0", ["1.0.0-rc.1", "0.9.0"]) is None


def test_unparsable_tags_are_skipped_by_selection() -> None:
    assert latest("*", ["latest", "1.2", "V2.0.0", "1.2.3", "sha-1234567"]) == "1.2.3"


# --- range structure ---------------------------------------------------------------------------

STRUCTURE = [
    (">= 1.2.3, < 2.0", ">=1.2.3 <2.0"),
    ("1.0.0 - 2.0.0", ">=1.0.0 <=2.0.0"),
    ("2 - 3, 4.0.0 - 5.1", ">=2 <=3 >=4.0.0 <=5.1"),
    ("3 - 4 || => 3.0, < 4", ">=3 <=4 || =>3.0 <4"),
    ("  ~>1.2   ^3  ", "~>1.2 ^3"),
    ("12.3.34 ~1.2.3", "12.3.34 ~1.2.3"),
    ("v2.3.5-20161202202307-sha.e8fc5e5", "v2.3.5-20161202202307-sha.e8fc5e5"),
]


@pytest.mark.parametrize(("text", "canonical"), STRUCTURE)
def test_range_structure(text: str, canonical: str) -> None:
    constraint = parse_constraint(text)
    assert str(constraint) == canonical
    assert constraint.text == text


def test_comparator_fields() -> None:
    (group,) = parse_constraint(">= v1.2.x-rc.1, ^2").groups
    first, second = group.comparators
    assert (first.op, first.written, first.wildcard) == (">=", "v1.2.x-rc.1", Wildcard.PATCH)
    assert first.bound.normalized == "1.2.0-rc.1"
    assert (second.op, second.written, second.wildcard) == ("^", "2", Wildcard.MINOR)
    assert group.allows_prerelease


def test_allows_prerelease_is_per_group() -> None:
    constraint = parse_constraint(">=1.0.0-rc.1 <1.0.0 || >=2.0.0")
    assert [g.allows_prerelease for g in constraint.groups] == [True, False]
    assert constraint.allows_prerelease
    assert not parse_constraint("^1.2").allows_prerelease


# --- explain -----------------------------------------------------------------------------------

EXPLAIN = [
    (">=2.0.0 <3.0.0", "3.1.0", "<3.0.0 fails"),
    (">=2.0.0 <3.0.0", "1.0.0", ">=2.0.0 fails"),
    (">=2.0.0 <3.0.0", "2.5.0", "matches >=2.0.0 <3.0.0"),
    ("^1.x", "1.2.0-rc.1", PRERELEASE_NOT_ALLOWED),
    (
        ">=1.0.0-rc.1 <1.0.0 || >=2.0.0",
        "2.1.0-rc.1",
        f"[>=1.0.0-rc.1 <1.0.0] <1.0.0 fails; [>=2.0.0] {PRERELEASE_NOT_ALLOWED}",
    ),
    ("1.0.0 - 2.0.0", "2.0.1", "<=2.0.0 fails"),
]


@pytest.mark.parametrize(("range_text", "tag", "reason"), EXPLAIN)
def test_explain(range_text: str, tag: str, reason: str) -> None:
    assert parse_constraint(range_text).explain(version(tag)) == reason


# --- errors ------------------------------------------------------------------------------------

ERRORS = [
    ("", 'improper constraint: ""'),
    ("a", 'improper constraint: "a"'),
    ("-1", 'improper constraint: "-1"'),
    ("1.0.0p", 'improper constraint: "1.0.0p"'),
    ("*-*", 'improper constraint: "*-*"'),
    ("V1.0.x", 'improper constraint: "V1.0.x"'),
    ("1x", "constraint parser error"),
    ("x1", "constraint parser error"),
    ("   ", 'improper constraint: "   "'),
    (">= bar", 'improper constraint: ">= bar"'),
    ("BAR >= 1.2.3", 'improper constraint: "BAR >= 1.2.3"'),
    ("12.3.4.1234", 'improper constraint: "12.3.4.1234"'),
    ("12.23.4.1234", 'improper constraint: "12.23.4.1234"'),
    ("12.3.34~ 1.2.3", 'improper constraint: "12.3.34~ 1.2.3"'),
    (">=1.0<2.0", 'improper constraint: ">=1.0<2.0"'),
    ("> = 1.2", 'improper constraint: "> = 1.2"'),
    ("1.0,,2.0", 'improper constraint: "1.0,,2.0"'),
    (",1.0", 'improper constraint: ",1.0"'),
    ("1.0,", 'improper constraint: "1.0,"'),
    ("1.2.3 ||", 'improper constraint: ""'),
    (">=1.0.0 || foo", 'improper constraint: " foo"'),
    ("1.0.0-rc.01", "constraint parser error"),
    ("99999999999999999999", "constraint parser error"),
    ("1 | 2", "constraint parser error"),
    ("1.0.0\t-\t2.0.0p", 'improper constraint: ">= 1.0.0, <= 2.0.0 p"'),
    ("a\tb\"", 'improper constraint: "a\\tb\\""'),
    ("1.0.0 - 2.0.0" + " " * 500, "constraint string is too long (max 512 bytes)"),
    ("||".join(["1"] * 33), "too many constraint groups (max 32)"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_range_errors_use_masterminds_wording(text: str, message: str) -> None:
    with pytest.raises(ConstraintError) as caught:
        parse_constraint(text)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_limits_are_inclusive() -> None:
    assert len(parse_constraint("||".join(["1"] * 32)).groups) == 32
    assert parse_constraint("1.0.0" + " " * 507).check(version("1.0.0"))


@pytest.mark.parametrize(
    ("text", "quoted"),
    [("\x00\x7f", '"\\x00\\x7f"'), ("é", '"é"'), ("\u00a0", '"\\u00a0"'),
     ("\U0001f600", '"\U0001f600"'), ("\\", '"\\\\"'), ("\u2028", '"\\u2028"')],
)
def test_error_segment_is_quoted_like_go(text: str, quoted: str) -> None:
    with pytest.raises(ConstraintError, match="^improper constraint: ") as caught:
        parse_constraint(text)
    assert str(caught.value) == f"improper constraint: {quoted}"


# --- properties --------------------------------------------------------------------------------

numbers = st.one_of(st.integers(0, 30), st.integers(0, 2**64 - 1)).map(str)
padded = st.builds(lambda zeros, n: "0" * zeros + n, st.integers(0, 2), numbers)
alnum = st.from_regex(r"\A[0-9A-Za-z-]*[A-Za-z-][0-9A-Za-z-]*\Z")
identifier = st.one_of(numbers, alnum, st.sampled_from(["rc", "alpha", "beta", "0", "1", "10"]))
metadata_id = st.from_regex(r"\A[0-9A-Za-z-]+\Z")


@st.composite
def tags(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(["", "v"])) + ".".join(draw(st.lists(padded, min_size=3, max_size=3)))
    prerelease = draw(st.lists(identifier, max_size=3))
    if prerelease:
        text += "-" + ".".join(prerelease)
    meta = draw(st.lists(metadata_id, max_size=2))
    if meta:
        text += "+" + ".".join(meta)
    return text


versions = tags().map(version)


@given(versions)
def test_str_round_trips(v: Version) -> None:
    assert parse_version(str(v)) == v
    assert parse_version(v.normalized) is not None


@given(versions, versions, versions)
def test_ordering_is_a_total_preorder(a: Version, b: Version, c: Version) -> None:
    assert (a < b) + (a.compare(b) == 0) + (a > b) == 1
    assert (a <= b) or (b <= a)
    if a <= b and b <= c:
        assert a <= c
    tie = not a < b and not b < a
    same = (a.major, a.minor, a.patch, a.prerelease) == (b.major, b.minor, b.patch, b.prerelease)
    assert tie is same
    assert tie is (a.sort_key == b.sort_key)


@given(versions)
def test_metadata_and_spelling_never_change_precedence(v: Version) -> None:
    plain = version(f"{v.major}.{v.minor}.{v.patch}" + ("-" + ".".join(v.prerelease) if v.prerelease else ""))
    assert v.compare(plain) == 0


@given(st.text())
def test_parse_version_never_raises(text: str) -> None:
    v = parse_version(text)
    assert v is None or str(v) == text


range_text = st.text(alphabet=" ,|-+.*xXv0123456789<>=!~^abrc\t", max_size=40)


@settings(max_examples=300)
@given(range_text, versions)
def test_check_never_raises(text: str, v: Version) -> None:
    try:
        constraint = parse_constraint(text)
    except ConstraintError:
        return
    assert isinstance(constraint.check(v), bool)
    assert constraint.explain(v).startswith("matches ") is constraint.check(v)


@given(versions, versions, versions)
def test_closed_release_ranges_match_the_interval(low: Version, high: Version, v: Version) -> None:
    lo, hi = low.normalized.split("+")[0], high.normalized.split("+")[0]
    constraint = parse_constraint(f">={lo} <{hi}")
    inside = low <= v < high
    if v.prerelease and not constraint.allows_prerelease:
        inside = False
    assert constraint.check(v) is inside
