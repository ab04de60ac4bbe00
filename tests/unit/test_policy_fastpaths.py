"""Each shortcut the policy evaluation takes gives the answer of the path it skips.

The shortcuts exist for speed (bench/README.md): plain `str` order for Go's byte order, an
`endswith` for `^.*<literal>$` exclusions, `float()` for digit-only numbers, a regex for plain
semver tags, and one pass over a range that also says why a version missed. Here random inputs,
weighted towards the edges (newlines, surrogates, long digit runs, leading zeros), go through
both paths.
"""

from __future__ import annotations

import dataclasses
import math
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from engine.evaluate.goparse import RANGE, SYNTAX, ParseFloatError, parse_float
from engine.evaluate.policies import policy_for
from engine.evaluate.tagfilter import Exclusions
from engine.model import DEFAULT_EXCLUSION_LIST, Direction, PolicyChoice, PolicyKind
from engine.rules.regex import compile_pattern, suffix_literal, utf8
from engine.rules.semver import (
    PRERELEASE_NOT_ALLOWED,
    ConstraintError,
    Version,
    parse_constraint,
    parse_version,
    plain_pieces,
    scanned_pieces,
)

# Every code point, lone surrogates included: a tag read from a file can hold any of them.
any_char = st.characters(exclude_categories=())
edge_char = st.sampled_from(list("\n\r.sigé\ud800\udfff\U0001f600"))
tag_text = st.text(st.one_of(any_char, edge_char), max_size=20)


@given(st.lists(tag_text, max_size=30))
@example(["\uffff", "\U00010000", "\ud800", "\ue000", "\ud7ff"])  # surrogates sit below U+E000
def test_str_order_is_utf8_byte_order(tags: list[str]) -> None:
    assert sorted(tags) == sorted(tags, key=utf8)


# Exclusions: `^.*<literal>$` as endswith, against RE2 itself.

literal_piece = st.one_of(
    st.sampled_from(list(string.ascii_letters + string.digits + "-_/:@=,")),
    st.sampled_from([f"\\{c}" for c in string.punctuation]),
)
suffix_pattern = st.lists(literal_piece, max_size=6).map(lambda pieces: f"^.*{''.join(pieces)}$")


def near_misses(literal: str) -> list[str]:
    """Endings that test every character of the literal, and the newline rule."""
    endings = [literal, literal + "\n", "\n" + literal, "x" + literal, literal[1:]]
    endings += [literal[:i] + c + literal[i + 1 :] for i in range(len(literal)) for c in "x.\n"]
    return endings


def assert_matches_like_re2(pattern: str, tags: list[str]) -> None:
    regex = compile_pattern(pattern)
    exclusions = Exclusions.compile([pattern])
    for tag in tags:
        expected = pattern if regex.search(utf8(tag)) is not None else None
        assert exclusions.excluding_pattern(tag) == expected, tag


@settings(max_examples=300)
@given(suffix_pattern, st.lists(tag_text, max_size=10), st.data())
def test_suffix_exclusion_matches_like_re2(
    pattern: str, tags: list[str], data: st.DataObject
) -> None:
    literal = suffix_literal(pattern)
    assert literal is not None
    assert_matches_like_re2(pattern, tags + [data.draw(tag_text) + e for e in near_misses(literal)])


regex_piece = st.sampled_from([".", "*", "+", "?", "(", ")", "[", "]", "|", "^", "$", "\\", "é"])
regex_piece |= st.sampled_from(["\\d", "\\w", "\\s", "\\Q", "\\E", "\\n", "\\b", "\\pL", "{2}"])


@settings(max_examples=500)
@given(st.lists(st.one_of(literal_piece, regex_piece), max_size=4))
@example(["a", ".", "b"])
@example(["\\\\", "\\d"])
def test_any_pattern_read_as_a_suffix_matches_like_re2(pieces: list[str]) -> None:
    pattern = "^.*" + "".join(pieces) + "$"
    literal = suffix_literal(pattern)
    if literal is not None:  # the others keep their regex
        endings = near_misses(literal)
        assert_matches_like_re2(pattern, [p + e for p in ("", "x", "\n", "é") for e in endings])


@given(tag_text)
@example("a.sig")
@example("a.sig\n")
@example("a\n.sig")
@example("\n")
@example("\ud800.sig")
def test_the_default_exclusion_matches_like_re2(tag: str) -> None:
    (pattern,) = DEFAULT_EXCLUSION_LIST
    expected = pattern if compile_pattern(pattern).search(utf8(tag)) is not None else None
    assert Exclusions.compile(DEFAULT_EXCLUSION_LIST).excluding_pattern(tag) == expected


@pytest.mark.parametrize(
    "pattern",
    [
        r"(?s)^.*\.sig$",  # flags change what `.` matches
        r"(?m)^.*\.sig$",
        r"^.*[.]sig$",  # a class
        r"^.*\Q.sig\E$",  # a quote
        r"^.*\.sig\$",  # an escaped `$` is no anchor
        r"^.*\.sig$|x",
        r"^.*?\.sig$",
        r"^.+\.sig$",
        r"^.*\d$",  # an escape that is a class
        "^.*\n$",  # a newline in the literal
        "^.*é$",  # non-ASCII
        r".*\.sig$",
    ],
)
def test_other_spellings_keep_the_regex(pattern: str) -> None:
    assert suffix_literal(pattern) is None


def test_the_literal_of_a_suffix_pattern() -> None:
    assert suffix_literal(r"^.*\.sig$") == ".sig"
    assert suffix_literal(r"^.*-debug\.att$") == "-debug.att"
    assert suffix_literal("^.*$") == ""


# Numbers: a run of ASCII digits through float(), against the general reader.


def read(text: str) -> tuple[str, float | str]:
    try:
        value = parse_float(text)
    except ParseFloatError as err:
        return "error", err.reason
    return "value", value


digit_runs = st.one_of(
    st.text(st.sampled_from("0123456789"), min_size=1, max_size=30),
    st.text(st.sampled_from("09"), min_size=300, max_size=320),  # around float64's limit
    st.integers(min_value=2**53 - 10, max_value=2**64).map(str),  # where rounding starts
)


@given(digit_runs)
@example("0")
@example("000")
@example("9007199254740993")  # 2**53 + 1: a tie, rounds to even
@example("1" + "0" * 308)
@example("1" + "0" * 309)  # too large: Go's range error
def test_digit_runs_read_as_the_general_reader_reads_them(digits: str) -> None:
    # A sign or an exponent takes the text off the digit-only path; neither changes the number.
    general = [read("+" + digits), read(digits + "e0"), read(digits + ".")]
    assert general == [read(digits)] * 3


@pytest.mark.parametrize("text", ["١٢٣", "๑", " 12", "12\n", "\t7", ""])
def test_what_python_float_takes_but_go_refuses_is_still_refused(text: str) -> None:
    # float() reads non-ASCII digits and strips whitespace; the digit-only path must not see them.
    with pytest.raises(ParseFloatError) as err:
        parse_float(text)
    assert err.value.reason == SYNTAX


def test_a_digit_run_too_large_is_a_range_error() -> None:
    with pytest.raises(ParseFloatError) as err:
        parse_float("9" * 400)
    assert err.value.reason == RANGE
    assert not math.isinf(parse_float("9" * 308))


# Semver: the plain-tag regex against the scanner; one pass over a range against check/explain.

number = st.one_of(st.integers(0, 30).map(str), st.from_regex(r"\A0*[0-9]{1,22}\Z"))
ident = st.from_regex(r"\A[0-9A-Za-z-]{1,4}\Z")


@st.composite
def version_like(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(["", "v", "V", " "]))
    text += ".".join(draw(st.lists(number, min_size=1, max_size=4)))
    for sign in draw(st.lists(st.sampled_from("-+."), max_size=2)):
        text += sign + ".".join(draw(st.lists(ident, max_size=3)))
    return text + draw(st.sampled_from(["", "", "\n", ".", "-", "+", "é", "x"]))


@settings(max_examples=500)
@given(st.one_of(version_like(), tag_text))
@example("1.2.3-rc.1+b.5")
@example("v1.2.3--")
@example("1.2.3-a..b")
@example("1.2.3\n")
def test_plain_tags_read_as_the_scanner_reads_them(text: str) -> None:
    plain = plain_pieces(text)
    if plain is not None:
        assert plain == scanned_pieces(text)


def test_the_plain_tag_regex_takes_the_usual_tags() -> None:
    assert plain_pieces("v1.2.3-rc.1+b5") == ("1", "2", "3", "rc.1", "b5")
    assert plain_pieces("20250102.1200.7") == ("20250102", "1200", "7", "", "")
    assert plain_pieces("1.2-rc.1") is None  # coerced by the scanner alone


@st.composite
def release_or_prerelease(draw: st.DrawFn) -> Version | None:
    text = ".".join(draw(st.lists(st.integers(0, 4).map(str), min_size=3, max_size=3)))
    prerelease = draw(st.lists(st.sampled_from(["rc", "0", "1", "alpha", "x-y"]), max_size=2))
    return parse_version(text + ("-" + ".".join(prerelease) if prerelease else ""))


versions = st.one_of(release_or_prerelease(), version_like().map(parse_version)).filter(
    lambda v: v is not None
)
range_text = st.one_of(
    st.sampled_from([">=1.0.0 <50.0.0", ">=1.0.0-0", "^1.2", "~1.2.3 || >=3.0.0-rc.1", "1.x", "*"]),
    st.text(alphabet=" ,|-.*xX0123456789<>=!~^rc", max_size=30),
)


@settings(max_examples=200)
@given(range_text, st.lists(versions, min_size=1, max_size=5))
def test_one_pass_agrees_with_check_and_explain(text: str, batch: list[Version]) -> None:
    try:
        constraint = parse_constraint(text)
    except ConstraintError:
        return
    for v in batch:
        check = constraint.assess(v)
        assert (check.admitted_by is not None) is constraint.check(v)
        if check.admitted_by is not None:
            assert constraint.explain(v) == f"matches {constraint.groups[check.admitted_by]}"
            continue
        for group, failure in zip(constraint.groups, check.failures, strict=True):
            gated = v.prerelease and not group.allows_prerelease
            assert group.failure(v) == (PRERELEASE_NOT_ALLOWED if gated else failure)


def test_the_sort_key_follows_a_replaced_version() -> None:
    v = Version(1, 2, 3, ("rc", "1"))
    assert dataclasses.replace(v, prerelease=()).sort_key == (1, 2, 3, 1, ())
    assert v.sort_key == (1, 2, 3, 0, ((1, 0, "rc"), (0, 1, "")))
    assert "sort_key" not in repr(v) and v == Version(1, 2, 3, ("rc", "1"))


# Values a policy judges many at once (`judge_all`): plain versions near the bounds, prereleases
# (leading zeros too), long numbers, too few dots, and any text.
version_text = st.builds(
    lambda v, a, b, c, pre, meta: f"{v}{a}.{b}.{c}{pre}{meta}",
    st.sampled_from(["", "v", "V"]),
    st.sampled_from(["0", "1", "2", "01", "9" * 19, "9" * 20, "18446744073709551616"]),
    st.sampled_from(["0", "1", "5"]),
    st.sampled_from(["0", "3", "00"]),
    st.sampled_from(["", "-rc.1", "-0", "-01", "-rc.01", "-beta-x", "-", "-a..b"]),
    st.sampled_from(["", "+b1", "+b.01", "+"]),
)
ascii_value = st.one_of(version_text, st.text("0123456789.-+vrc", max_size=25), st.just("1" * 400))
judged_value = st.one_of(ascii_value, tag_text)
RANGES = [">=1.0.0 <2.0.0", ">=1.0.0-0 <2.0.0", "!=1.5.0", ">=0.0.0", "<1.0.0-rc.2", "1.x || >=2.0.0", "~1.0", "*"]


def _each(judgements: object) -> dict[str, tuple[object, ...]]:
    """{value: (verdict, reason, key)} from a Judgements."""
    admitted, keys, missed = judgements  # type: ignore[misc]
    out: dict[str, tuple[object, ...]] = {v: (None, "", k) for v, k in zip(admitted, keys)}
    for judged, values in missed:
        out.update((v, tuple(judged)) for v in values)
    return out


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(RANGES), st.one_of(st.lists(ascii_value, max_size=40, unique=True),
                                          st.lists(judged_value, max_size=40, unique=True)))
@example(">=1.0.0 <2.0.0", ["1.2.3", "1.2.3-rc.1", "1.2", "x", "v1.9.9", "2.0.0-0", "1.2.3-01"])
def test_semver_judge_all_is_judge_of_each(range_text: str, values: list[str]) -> None:
    policy = policy_for(PolicyChoice(PolicyKind.SEMVER, range=range_text))
    judged = _each(policy.judge_all(values))
    assert judged == {v: tuple(policy.judge(v)) for v in values}
    assert len(judged) == len(values)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([Direction.HIGHEST, Direction.LOWEST]),
       st.one_of(st.lists(ascii_value, max_size=40, unique=True), st.lists(judged_value, max_size=40, unique=True)))
@example(Direction.HIGHEST, ["202301011230", "0001", "1" * 400])
@example(Direction.HIGHEST, ["202301011230", "0001", "1" * 308])
def test_numerical_judge_all_is_judge_of_each(direction: Direction, values: list[str]) -> None:
    policy = policy_for(PolicyChoice(PolicyKind.NUMERICAL, direction))
    judged = _each(policy.judge_all(values))
    assert judged == {v: tuple(policy.judge(v)) for v in values}
