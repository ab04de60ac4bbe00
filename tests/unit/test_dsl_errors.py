"""Bad rules files: every problem is located and worded for the user, and nothing ever raises."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import Problems, RuleError
from engine.model import GitSource, Kustomization
from engine.rules.parse import parse_rules


def problems_of(text: str) -> list[tuple[int, int, str]]:
    problems = Problems()
    parse_rules("bad.rules", text, problems)
    assert problems.errors, "expected at least one error"
    return [(p.pos.line, p.pos.column, p.message) for p in problems if p.pos is not None]


def only_problem(text: str) -> tuple[int, int, str]:
    found = problems_of(text)
    assert len(found) == 1, found
    return found[0]


# Each case: the file, then the (line, column) and the message of its single error.
CASES = {
    "unterminated string": (
        'source git a {\n  url "https://x\n}\n',
        (2, 7, "unterminated string"),
    ),
    "unterminated raw string": (
        "source git a {\n  url 'x\n}\n",
        (2, 7, "unterminated string"),
    ),
    "unterminated triple-quoted string": (
        'source git a {\n  url "x"\n  ignore """\n    /*\n}\n',
        (3, 10, 'unterminated string: no closing """'),
    ),
    "missing closing brace": (
        'source git a {\n  url "x"\n}\n\nimage policy podinfo/podinfo {\n  repository podinfo\n'
        '  select highest numerical\n',
        (7, 27, "unexpected end of file: expected '}' to close 'image policy podinfo/podinfo' opened at 5:1"),
    ),
    "missing closing brace of a nested block": (
        'kustomization a {\n  source git s\n  image "nginx" {\n    new-tag "1"\n}\n',
        (5, 2, "unexpected end of file: expected '}' to close 'kustomization a' opened at 1:1"),
    ),
    "block on the next line": (
        "kustomization a\n{\n}\n",
        (1, 16, "expected '{' at the end of 'kustomization a'"),
    ),
    "header without a block at the end of the file": (
        "kustomization a",
        (1, 16, "unexpected end of file: expected '{' after 'kustomization a'"),
    ),
    "stray closing brace": (
        'source git a { url "x" }\n}\n',
        (2, 1, "unexpected '}': no block is open"),
    ),
    "field after a nested block on the same line": (
        'kustomization a {\n  source git s\n  image "n" { new-tag "1" } prune true\n}\n',
        (3, 29, "unexpected 'prune' after '}'"),
    ),
    "unexpected character": (
        'image policy p {\n  repository r\n  select highest semver >=1.0\n}\n',
        (3, 25, "unexpected character '>'"),
    ),
    "unknown statement kind": (
        "kustomisation a {\n}\n",
        (1, 1, "unknown statement 'kustomisation' (did you mean \"kustomization\"?)"),
    ),
    "unknown two-word statement": (
        "image polcy a {\n}\n",
        (1, 7, "unknown statement 'image polcy' (did you mean \"image policy\"?)"),
    ),
    "source other than git or oci": (
        "source helm a {\n}\n",
        (1, 8, "unknown source 'helm': gitward fetches git and oci sources"),
    ),
    "reference to an unknown kind of source": (
        "kustomization a {\n  source helm x\n}\n",
        (2, 10, "unknown source kind 'helm': expected git, oci, bucket or external-artifact"),
    ),
    "image update on a source other than git": (
        'image update a {\n  source oci x\n  author "<a@b.c>"\n}\n',
        (2, 10, "an image update pushes to a git source, not 'oci'"),
    ),
    "unknown field keyword": (
        'source git a {\n  url "x"\n  intervall 5m\n}\n',
        (3, 3, "unknown keyword 'intervall' in source git a (did you mean \"interval\"?)"),
    ),
    "unknown keyword in a nested block": (
        'kustomization a {\n  source git s\n  image "n" { new-tag "1" newtag "2" }\n}\n',
        (3, 27, "unknown keyword 'newtag' in image \"n\" (did you mean \"new-tag\"?)"),
    ),
    "missing required field": (
        'image policy apps/podinfo {\n  repository podinfo\n}\n',
        (1, 14, "image policy apps/podinfo: missing required field 'select'"),
    ),
    "missing required source": (
        "kustomization a {\n}\n",
        (1, 15, "kustomization a: missing required field 'source'"),
    ),
    "duration given as a string": (
        'source git a {\n  url "x"\n  interval "5m"\n}\n',
        (3, 12, 'interval expects a duration, not the string "5m"'),
    ),
    "duration missing": (
        'source git a {\n  url "x"\n  interval\n}\n',
        (3, 3, "interval expects a duration"),
    ),
    "bad duration": (
        'source git a {\n  url "x"\n  interval 5x\n}\n',
        (3, 12, 'invalid duration "5x": expected a duration such as 30s, 5m, 1h30m or 500ms'),
    ),
    "absurd duration": (
        'source git a {\n  url "x"\n  interval 99999999999999999999h\n}\n',
        (3, 12, 'invalid duration "99999999999999999999h": longer than the 2562047h47m16s Flux (Go) '
                'accepts'),
    ),
    "NUL byte in a string": (
        'source git a {\n  url "https://x/y\0z"\n}\n',
        (2, 7, "a string may not hold a NUL character (\\u0000)"),
    ),
    "NUL escape in a string": (
        'source git a {\n  url "https://x/y\\u0000z"\n}\n',
        (2, 7, "a string may not hold a NUL character (\\u0000)"),
    ),
    "string given as a bare word": (
        "source git a {\n  url x\n}\n",
        (2, 7, "url expects a string, not the bare word 'x'"),
    ),
    "too many values": (
        'kustomization a {\n  source git s\n  path "x" prune true\n}\n',
        (3, 12, "too many values for path: unexpected 'prune'"),
    ),
    "too few values": (
        'kustomization a {\n  source git s\n  label "team"\n}\n',
        (3, 3, "label expects a key and a value"),
    ),
    "bad boolean": (
        "kustomization a {\n  source git s\n  prune yes\n}\n",
        (3, 9, "prune expects true or false, not 'yes'"),
    ),
    "bad integer": (
        'image repository a {\n  image "x"\n  page-size 0\n}\n',
        (3, 13, "page-size expects a positive integer, not '0'"),
    ),
    "uppercase name": (
        'source git Podinfo {\n  url "x"\n}\n',
        (1, 12, "invalid name 'Podinfo': expected lowercase letters, digits, '-' and '.', "
         "starting and ending with a letter or digit (at most 253 characters)"),
    ),
    "bad namespace in a reference": (
        "kustomization a {\n  source git my.ns/s\n}\n",
        (2, 14, "invalid namespace 'my.ns': expected lowercase letters, digits and '-', "
         "starting and ending with a letter or digit (at most 63 characters)"),
    ),
    "reference with two slashes": (
        "kustomization a {\n  source git a/b/c\n}\n",
        (2, 14, "invalid reference 'a/b/c': expected NAME or NAMESPACE/NAME"),
    ),
    "marker dialect with a namespace": (
        'marker dialect ns/docker {\n  files "Dockerfile"\n}\n',
        (1, 16, "a marker dialect has no namespace: 'ns/docker'"),
    ),
    "statement without a name": (
        "kustomization {\n}\n",
        (1, 1, "kustomization expects a name"),
    ),
    "name of two words": (
        "kustomization my app {\n  source git s\n}\n",
        (1, 18, "unexpected 'app' after the name of kustomization my"),
    ),
    "unknown provider": (
        'image repository a {\n  image "x"\n  provider gpc\n}\n',
        (3, 12, 'unknown provider \'gpc\': expected generic, aws, azure or gcp (did you mean "gcp"?)'),
    ),
    "unknown select direction": (
        "image policy p {\n  repository r\n  select higest alphabetical\n}\n",
        (3, 10, 'unknown direction \'higest\': expected highest or lowest (did you mean "highest"?)'),
    ),
    "unknown select kind": (
        "image policy p {\n  repository r\n  select highest alphabetic\n}\n",
        (3, 18, "unknown policy 'alphabetic': expected semver, alphabetical or numerical "
         '(did you mean "alphabetical"?)'),
    ),
    "unknown digest word": (
        "image policy p {\n  repository r\n  select lowest numerical\n  digest ifnotpresent\n}\n",
        (4, 10, "unknown digest reflection 'ifnotpresent': expected never, if-not-present or always "
         '(did you mean "if-not-present"?)'),
    ),
    "unknown marker value kind": (
        'marker dialect d {\n  files "*"\n  value rgx\n}\n',
        (3, 9, 'unknown value kind \'rgx\': expected yaml-scalar or regex (did you mean "regex"?)'),
    ),
    "lowest semver": (
        'image policy p {\n  repository r\n  select lowest semver ">=1.0.0"\n}\n',
        (3, 10, "'select lowest semver' is not supported"),
    ),
    "semver without a range": (
        "image policy p {\n  repository r\n  select highest semver\n}\n",
        (3, 3, 'select expects a semver range, e.g. ">=1.0.0 <2.0.0"'),
    ),
    "semver with an empty range": (
        'image policy p {\n  repository r\n  select highest semver ""\n}\n',
        (3, 25, 'select semver expects a range, e.g. ">=1.0.0 <2.0.0"'),
    ),
    "never without downgrade": (
        "image policy p {\n  repository r\n  select lowest numerical\n  never upgrade\n}\n",
        (4, 9, "never expects downgrade, not 'upgrade'"),
    ),
    "field given twice": (
        'source git a {\n  url "x"\n  interval 1m\n  interval 2m\n}\n',
        (4, 3, "'interval' given twice (first at 3:3)"),
    ),
    "reference part given twice": (
        'source git a {\n  url "x"\n  branch "a"\n  branch "b"\n}\n',
        (4, 3, "'branch' given twice (first at 3:3)"),
    ),
    "checkout part given twice": (
        'image update u {\n  source git s\n  author "<a@b>"\n  checkout branch "a"\n  checkout branch "b"\n}\n',
        (5, 3, "'checkout branch' given twice (first at 4:3)"),
    ),
    "exclude none with patterns": (
        'image repository a {\n  image "x"\n  exclude "^v"\n  exclude none\n}\n',
        (4, 3, "'exclude none' cannot be combined with other exclude lines"),
    ),
    "author without an email": (
        'image update u {\n  source git s\n  author "Flux Bot"\n}\n',
        (3, 3, 'author expects "Name <email>", not "Flux Bot"'),
    ),
    "author with an empty email": (
        'image update u {\n  source git s\n  author "Flux Bot <>"\n}\n',
        (3, 3, 'author expects "Name <email>", not "Flux Bot <>"'),
    ),
    "block on a field that takes none": (
        'source git a {\n  url "x" { }\n}\n',
        (2, 11, "url takes no { } block"),
    ),
    "lone surrogate escape": (
        'source git a {\n  url "\\ud800"\n}\n',
        (2, 7, "invalid escape \\ud800: half of a surrogate pair"),
    ),
    "keyword written as a string": (
        'source git a {\n  "url" "x"\n}\n',
        (2, 3, 'expected a keyword, not the string "url"'),
    ),
    "health check with a bad kind": (
        'kustomization a {\n  source git s\n  health-check "v1" my-kind x\n}\n',
        (3, 21, "health-check expects a kind such as Deployment, not 'my-kind'"),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_error_is_located_and_worded(case: str) -> None:
    text, expected = CASES[case]
    assert only_problem(text) == expected


def test_unknown_keyword_of_another_statement_says_where_it_belongs() -> None:
    problems = Problems()
    parse_rules("bad.rules", 'source git a {\n  url "x"\n  prune true\n}\n', problems)
    [problem] = problems.errors
    assert problem.message == "unknown keyword 'prune' in source git a"
    assert problem.hint == "'prune' is a field of kustomization"


def test_unterminated_string_spans_to_end_of_line_and_hints_triple_quotes() -> None:
    problems = Problems()
    parse_rules("bad.rules", 'source git a {\n  url "abc\n}\n', problems)
    [problem] = problems.errors
    assert problem.pos is not None
    assert (problem.pos.end_line, problem.pos.end_column) == (2, 11)
    assert '"""' in problem.hint
    assert problem.code == "dsl-syntax"


def test_all_problems_of_a_file_are_reported_and_valid_statements_kept() -> None:
    text = """
source git good {
  url "x"
}

source git bad {
  url "x"
  interval 5x
  timeot 1m
}

kustomization also-good {
  source git good
}

kustomization missing {
  path "x"
}
"""
    problems = Problems()
    rules = parse_rules("mixed.rules", text, problems)
    assert [r.name for r in rules] == ["good", "also-good"]
    assert isinstance(rules[0], GitSource) and isinstance(rules[1], Kustomization)
    assert [(p.pos.line if p.pos else 0, p.code) for p in problems] == [
        (8, "dsl-value"),
        (9, "dsl-keyword"),
        (16, "dsl-missing"),
    ]


def test_a_syntax_error_stops_the_file() -> None:
    problems = Problems()
    rules = parse_rules("bad.rules", 'source git a { url "x" }\nsource git b { url "y\n}\n', problems)
    assert rules == []
    assert len(problems.errors) == 1


def test_invalid_field_does_not_also_report_it_missing() -> None:
    assert only_problem('source git a {\n  url x\n}\n')[2].startswith("url expects a string")


def test_rule_error_renders_path_line_column_and_caret(tmp_path: Path) -> None:
    path = tmp_path / "apps.rules"
    text = 'source git podinfo {\n  url "x"\n  intervall 5m\n}\n'
    path.write_text(text, encoding="utf-8")
    problems = Problems()
    parse_rules(str(path), text, problems)
    with pytest.raises(RuleError) as caught:
        problems.raise_if_errors()
    assert str(caught.value) == (
        f"{path}:3:3: error: unknown keyword 'intervall' in source git podinfo (did you mean \"interval\"?)\n"
        "    intervall 5m\n"
        "    ^^^^^^^^^"
    )


def test_deeply_nested_blocks_are_an_error_not_a_crash() -> None:
    depth = 5000
    text = "kustomization a {\n  source git s\n  image \"x\" " + "{ a " * depth + "}" * depth + "\n}\n"
    problems = Problems()
    assert parse_rules("deep.rules", text, problems) == []
    assert problems.errors


# --- Fuzzing: bad input gives problems, never a traceback -----------------------------------

FRAGMENTS = [
    "source", "git", "kustomization", "image", "repository", "policy", "update", "marker", "dialect",
    "a", "ns/a", "A", "a/b/c", "{", "}", ";", "\n", " ", "#c\n", "url", "branch", "interval", "5m", "5x",
    "true", "select", "highest", "lowest", "semver", "alphabetical", '">=1"', '"x"', "'r'", '"""\n  t\n  """',
    '"\\u0041"', '"\\ud800"', '"', "'", '"""', "depends-on", "exclude", "none", "author", '"A <a@b>"',
    "patch", "health-check", "Deployment", "files", "value", "regex", "page-size", "99999999999",
    "never", "downgrade", "checkout", "tag", "substitute-from", "secret", "optional", "\\", "@", "\t", "\r",
]


def _check_never_raises(text: str) -> None:
    problems = Problems()
    rules = parse_rules("fuzz.rules", text, problems)
    assert isinstance(rules, list)
    for problem in problems:
        assert problem.pos is not None and problem.pos.line >= 1 and problem.pos.column >= 1
        assert "$END" not in problem.message and "Token(" not in problem.message
    if not problems.errors:
        assert all(rule.origin is not None for rule in rules)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_any_text(text: str) -> None:
    _check_never_raises(text)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60).map(" ".join))
def test_fuzz_token_soup(text: str) -> None:
    _check_never_raises(text)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            'source git a {\n  url "x"\n  branch "main"\n}\n',
            'image policy p {\n  repository r\n  select highest semver ">=1"\n  hold 1h\n}\n',
            'kustomization k {\n  source git s\n  image "n" { new-tag "1" }\n  patch """\n    x\n  """\n}\n',
        ]
    ),
    st.data(),
)
def test_fuzz_mutated_valid_files(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(text)))
    insert = data.draw(st.sampled_from(FRAGMENTS))
    _check_never_raises(text[:cut] + insert + text[cut:])
    _check_never_raises(text[:cut])
