"""`policies_of`: the policies deciding on a repository, from an index made once per RuleSet."""

from __future__ import annotations

from engine.model import (
    ImagePolicy,
    ImageRepository,
    NamespacedRef,
    PolicyChoice,
    PolicyKind,
    RuleSet,
)
from engine.reconcile.images import policies_of

APP = ImageRepository(name="app", namespace="apps", image="registry.example/app")
WEB = ImageRepository(name="web", namespace="apps", image="registry.example/web")


def _policy(name: str, repository: NamespacedRef) -> ImagePolicy:
    return ImagePolicy(name=name, namespace="apps", repository=repository,
                       choice=PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0"))


def test_each_repository_gets_its_policies_in_the_rules_order() -> None:
    first, other, second = (_policy("a", NamespacedRef("app")), _policy("b", NamespacedRef("web")),
                            _policy("c", NamespacedRef("app", "apps")))
    rules = RuleSet.of([APP, WEB, first, other, second])
    assert policies_of(rules, APP) == [first, second]
    assert policies_of(rules, WEB) == [other]
    assert policies_of(rules, ImageRepository(name="none", namespace="apps", image="x/none")) == []


def test_new_rules_are_indexed_afresh() -> None:
    policy = _policy("a", NamespacedRef("app"))
    assert policies_of(RuleSet.of([APP, policy]), APP) == [policy]
    assert policies_of(RuleSet.of([APP]), APP) == []
    moved = _policy("a", NamespacedRef("web"))
    rules = RuleSet.of([APP, WEB, moved])
    assert (policies_of(rules, APP), policies_of(rules, WEB)) == ([], [moved])
