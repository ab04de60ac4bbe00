"""Flux YAML -> model -> DSL -> model -> Flux YAML round-trips on every example repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import Problems
from engine.model import FluxObject, Rule
from engine.rules.flux import read_flux, write_flux
from engine.rules.load import load_repo
from engine.rules.parse import parse_rules
from engine.rules.printer import print_rules
from tests.conftest import CORPUS, EXAMPLES


def user_rules(root: Path) -> list[Rule]:
    problems = Problems()
    rules = load_repo(root, problems, builtin=False).rules
    assert not problems.errors, [p.render() for p in problems.errors]
    return [r for r in rules.all() if not isinstance(r, FluxObject)]


def round_trip(rules: list[Rule]) -> None:
    problems = Problems()
    dsl = print_rules(rules)
    from_dsl = parse_rules("printed.rules", dsl, problems)
    assert not problems.errors, [p.render(excerpt=False) for p in problems.errors]
    assert from_dsl == rules
    flux_yaml = write_flux(from_dsl)
    from_yaml = read_flux("exported.yaml", flux_yaml, problems)
    assert not problems.errors, [p.render(excerpt=False) for p in problems.errors]
    assert from_yaml == rules
    assert write_flux(from_yaml) == flux_yaml


def test_example_homelab_round_trips() -> None:
    rules = user_rules(EXAMPLES / "homelab")
    assert len(rules) == 8
    round_trip(rules)


@pytest.mark.parametrize("case", sorted((CORPUS / "lint").iterdir()), ids=lambda p: p.name)
def test_lint_corpus_round_trips(case: Path) -> None:
    round_trip(user_rules(case))


def test_users_real_repository_round_trips(homelab_corpus: Path) -> None:
    rules = user_rules(homelab_corpus)
    kinds = sorted({r.KIND for r in rules})
    assert kinds == ["GitRepository", "ImagePolicy", "ImageRepository", "ImageUpdateAutomation",
                     "Kustomization"]
    round_trip(rules)
