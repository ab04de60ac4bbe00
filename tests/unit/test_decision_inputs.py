"""`decision_inputs`: what a decision is made from, as one digest."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from engine.errors import SourcePos
from engine.evaluate.decision import ScanFacts, decision_inputs
from engine.model import (
    ImagePolicy,
    ImageRepository,
    ImageScan,
    NamespacedRef,
    PolicyChoice,
    PolicyKind,
    RegistryTag,
    ScanStatus,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
REPOSITORY = ImageRepository(name="app", namespace="apps", image="registry.example/app")
POLICY = ImagePolicy(name="app", namespace="apps", repository=NamespacedRef("app"),
                     choice=PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0"))
SCAN = ImageScan("apps/app", T0, T0 + timedelta(seconds=1), ScanStatus.OK, 2, id=7)


def _facts(gone: dict[str, datetime] | None = None, scan: ImageScan = SCAN) -> ScanFacts:
    gone = gone or {}
    return ScanFacts(scan, tuple(RegistryTag("apps/app", tag, T0, T0, gone_at=gone.get(tag))
                                 for tag in ("1.0.0", "1.1.0", "2.0.0")))


def _inputs(policy: ImagePolicy = POLICY, repository: ImageRepository | None = REPOSITORY,
            facts: ScanFacts | None = None, previous: str | None = "1.1.0",
            deployed: str | None = None) -> str:
    return decision_inputs(policy, repository, facts or _facts(), previous=previous,
                           deployed=deployed)


def test_the_same_inputs_give_the_same_digest_whatever_the_tag_order_or_scan_time() -> None:
    facts = _facts()
    later = ScanFacts(replace(SCAN, id=8, finished_at=T0 + timedelta(hours=1)),
                      tuple(reversed(facts.tags)))
    assert _inputs(facts=facts) == _inputs(facts=later)
    moved = replace(POLICY, origin=SourcePos("rules/app.rules", 9, 1))
    assert _inputs(policy=moved) == _inputs()  # where the rule is written decides nothing


def test_each_input_changes_the_digest() -> None:
    base = _inputs()
    changed = {
        "spec": _inputs(policy=replace(POLICY, choice=PolicyChoice(PolicyKind.SEMVER, range="<2.0.0"))),
        "exclusions": _inputs(repository=replace(REPOSITORY, exclusion_list=("^1",))),
        "no repository": _inputs(repository=None),
        "previous": _inputs(previous="1.0.0"),
        "deployed": _inputs(deployed="1.0.0"),
        "gone": _inputs(facts=_facts({"2.0.0": T0})),
        "lost by this scan": _inputs(facts=_facts({"2.0.0": SCAN.finished_at})),
        "failed scan": _inputs(facts=_facts(scan=replace(SCAN, status=ScanStatus.FAILED, error="x"))),
        "never scanned": _inputs(facts=ScanFacts(None, _facts().tags)),
    }
    assert base not in changed.values()
    assert len(set(changed.values())) == len(changed)
