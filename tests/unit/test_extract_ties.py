"""The `extract-ties` lint: an extract that leaves out digits the pattern matches makes tags tie.

The user's case: `(?P<ts>[0-9]{8})-[0-9]{4}-sha-...` with `extract: $ts` gives every build of a
day the same value, and the policy keeps the day's first build instead of its last.
"""

from __future__ import annotations

import pytest

from engine.errors import Problems
from engine.evaluate.policy import evaluate_policy
from engine.model import RuleSet
from engine.rules.check import lint_policies
from engine.rules.extract import dropped_digits, referenced_groups
from engine.model import ImagePolicy
from engine.rules.fluxread import read_flux
from engine.rules.parse import parse_rules

USERS = r"^(?P<ts>[0-9]{8})-[0-9]{4}-sha-[a-f0-9]{7}$"


@pytest.mark.parametrize(("pattern", "extract", "dropped"), [
    (USERS, "$ts", ["4 digits"]),
    (r"^(?P<ts>[0-9]{8}-[0-9]{4})-sha-[a-f0-9]{7}$", "$ts", []),
    (r"^(?P<date>[0-9]{8})-(?P<time>[0-9]{4})-sha-[a-f0-9]{7}$", "$date$time", []),
    (r"^(?P<date>[0-9]{8})-(?P<time>[0-9]{4})-sha-[a-f0-9]{7}$", "${date}", ["4 digits"]),
    (r"^main-[a-fA-F0-9]+-(?P<ts>.*)", "$ts", []),           # Flux's own example: a sha names, it does not order
    (r"^(?P<v>\d+\.\d+\.\d+)(-rc\.\d+)?$", "$v", ["1 or more digits"]),
    (r"^(\d+)-(\d+)$", "$1", ["1 or more digits"]),
    (r"^(\d+)-(\d+)$", "$0", []),                             # the whole match
    (r"^(\d+)-(\d{2,3})$", "$1", ["2 to 3 digits"]),
    (r"^v(?P<n>[0-9]+)-[5]$", "$n", []),                      # one fixed digit is no order
    (r"^(?P<n>[0-9]+)-(?:a[0-9]|b)$", "$n", ["1 digit"]),   # inside an alternative
    (r"^(?P<n>[0-9]+)-(?:[0-9]|x)$", "$n", []),              # a digit or a letter: not an order
    (r"[[:digit:]]+-(?P<x>a)", "$x", []),                     # Python cannot read it: not judged
    (r"(?P<x>\d+", "$x", []),
])
def test_digits_left_out_of_the_extract(pattern: str, extract: str, dropped: list[str]) -> None:
    assert dropped_digits(pattern, extract) == dropped


def test_references_in_an_extract_template() -> None:
    assert referenced_groups("$ts-${time}$$x$1") == ["ts", "time", "1"]


def test_the_tie_is_real_the_lint_is_located_at_the_extract() -> None:
    tags = ["20260117-0930-sha-1111111", "20260117-1650-sha-2222222", "20260116-2210-sha-3333333"]
    problems = Problems()
    [policy] = read_flux("policy.yaml", f"""\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: app, namespace: apps}}
spec:
  policy: {{alphabetical: {{order: asc}}}}
  imageRepositoryRef: {{name: app}}
  filterTags:
    extract: '$ts'
    pattern: '{USERS}'
""", problems)
    assert isinstance(policy, ImagePolicy)
    assert evaluate_policy(policy, None, tags).selected == tags[0]  # 09:30, not the 16:50 build
    lint_policies(RuleSet.of([policy]), problems)
    [lint] = [p for p in problems.warnings if p.code == "extract-ties"]
    assert lint.pos is not None and (lint.pos.path, lint.pos.line, lint.pos.column) == ("policy.yaml", 8, 14)
    assert 'extract "$ts" leaves out digits the pattern matches (4 digits)' in lint.message
    assert '"$ts$time"' in lint.hint


def test_the_dsl_locates_it_at_the_extract_too() -> None:
    problems = Problems()
    line = f'  filter "{USERS}" extract "$ts"'
    rules = parse_rules("p.rules", f'image policy apps/app {{\n  repository app\n{line}\n'
                        '  select highest alphabetical\n}\n', problems)
    lint_policies(RuleSet.of(rules), problems)
    [lint] = [p for p in problems.warnings if p.code == "extract-ties"]
    assert lint.pos is not None
    assert (lint.pos.line, lint.pos.column) == (3, line.index('"$ts"') + 1)


def test_a_missing_group_is_its_own_lint_not_a_tie() -> None:
    problems = Problems()
    rules = parse_rules("p.rules", f'image policy apps/app {{\n  repository app\n'
                        f'  filter "{USERS}" extract "$timestamp"\n  select highest alphabetical\n}}\n',
                        problems)
    lint_policies(RuleSet.of(rules), problems)
    assert [p.code for p in problems.warnings] == ["extract-group"]
