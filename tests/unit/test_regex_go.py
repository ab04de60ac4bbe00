"""Where google-re2 and Go's regexp differ, gitward answers as Go does.

Every expected value below was produced by Go's regexp package (FindStringSubmatchIndex, or the
error of regexp.Compile) and recorded here; no Go runs in the tests.
"""

from __future__ import annotations

import pytest

from engine.rules.regex import PatternError, compile_pattern, rune_starts, utf8

# Go tests \b and \B only at character boundaries; RE2 also between the bytes of one UTF-8
# character, where \B always holds. (pattern, text, Go's submatch spans in bytes or None)
WORD_BOUNDARIES = [
    (r"\B", "aéb", None),  # every character boundary here is a word boundary
    (r"\B", "aé", [3, 3]),  # only at the end: é and the end are both non-word
    (r"\B", "é", [0, 0]),
    (r"\B", "a中b", None),  # CJK: three bytes, two inner positions RE2 would take
    (r"\B", "aßb", None),
    (r"\B", "ab", [1, 1]),
    (r"(\B)", "aé", [3, 3, 3, 3]),
    (r"(\B)", "éa", [0, 0, 0, 0]),
    (r"(\B)", "ßx", [0, 0, 0, 0]),
    (r"\Bb", "aéb", None),
    (r"a\B", "aé", None),
    (r"(\B)(.)", "x中x", None),
    (r"\B\w+", "ééa", None),
    (r"é\B|\Bb", "éé", [0, 2]),
    (r"(?:\B|z)", "a\U0001f600b", None),  # four bytes
    (r"\b\w", "é-ab", [3, 4]),  # \b needs no help: it never holds inside a character
]


@pytest.mark.parametrize(("pattern", "text", "spans"), WORD_BOUNDARIES)
def test_word_boundaries_are_tested_between_characters_only(
    pattern: str, text: str, spans: list[int] | None
) -> None:
    regex = compile_pattern(pattern)
    match = regex.search(utf8(text))
    mine = None if match is None else [x for g in range(regex.groups + 1) for x in match.span(g)]
    assert mine == spans


def test_ascii_text_takes_the_plain_search() -> None:
    regex = compile_pattern(r"(\B)")
    match = regex.search(b"ab")
    assert match is not None and match.span(1) == (1, 1)


@pytest.mark.parametrize(
    ("data", "starts"),
    [
        (b"", [0]),
        (b"ab", [0, 1, 2]),
        (utf8("é中"), [0, 2, 5]),
        (utf8("\U0001f600"), [0, 4]),
        (b"\xed\xa0\x80", [0, 1, 2, 3]),  # an encoded surrogate: three invalid bytes for Go
        (b"\xa9a", [0, 1, 2]),  # a stray continuation byte is a character of its own
        (b"\xc3", [0, 1]),  # a truncated sequence too
    ],
)
def test_rune_starts_follow_go_utf8_decoding(data: bytes, starts: list[int]) -> None:
    assert list(rune_starts(data)) == starts


# Go compiles these (its limit is 128 MiB of instructions); RE2's default 8 MiB budget refused them.
GO_COMPILES = [
    (r"^(?:a|\pL{500})$", ["a", "é" * 500], ["é" * 499, "ab"]),
    (r"\pL{1000}", ["x" * 1000], ["x" * 999]),
    (r"[\pL\pN]{1000}", ["7" * 1000], ["-" * 1000]),
]


@pytest.mark.parametrize(("pattern", "hits", "misses"), GO_COMPILES)
def test_patterns_within_gos_budget_compile_and_match(pattern: str, hits: list[str], misses: list[str]) -> None:
    regex = compile_pattern(pattern)
    assert all(regex.search(utf8(t)) is not None for t in hits)
    assert all(regex.search(utf8(t)) is None for t in misses)


# Go: "invalid repeat count": a count over 1000, or nested counts whose product exceeds 1000.
GO_REFUSES_REPEAT = [r"a{1001}", r"(?:a{100}){11}", r"(?:a{3}){334}", r"(?:a{2,}){501}"]
GO_ACCEPTS_REPEAT = [r"a{1000}", r"(?:a{2}){500}", r"(?:a{1000}){0}", r"(?:a{1000})*", r"(?:a{2,}){500}"]


@pytest.mark.parametrize("pattern", GO_REFUSES_REPEAT)
def test_repeat_counts_go_refuses_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError) as info:
        compile_pattern(pattern)
    assert "repetition" in info.value.cause


@pytest.mark.parametrize("pattern", GO_ACCEPTS_REPEAT)
def test_repeat_counts_go_accepts_compile(pattern: str) -> None:
    compile_pattern(pattern)
