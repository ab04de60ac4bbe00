"""The scan-completeness guard: never decide on a scan that cannot be trusted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.evaluate.decision import ScanFacts, decide, guard_scan
from engine.model import (
    ImagePolicy,
    ImageScan,
    NamespacedRef,
    PolicyChoice,
    PolicyKind,
    RegistryTag,
    ScanStatus,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
POLICY = ImagePolicy(name="app", namespace="apps", repository=NamespacedRef("app"),
                     choice=PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0"))


def facts(present: list[str], lost: list[str] = (), status: ScanStatus = ScanStatus.OK,  # type: ignore[assignment]
          error: str | None = None) -> ScanFacts:
    scan = ImageScan("apps/app", T1, T1, status, len(present), error, id=7)
    tags = [RegistryTag("apps/app", t, T0, T1) for t in present]
    tags += [RegistryTag("apps/app", t, T0, T0, gone_at=T1) for t in lost]
    return ScanFacts(scan, tuple(tags))


@pytest.mark.parametrize(("scan_facts", "deployed", "reason"), [
    (ScanFacts(None, ()), None, "has not been scanned yet"),
    (facts([], status=ScanStatus.FAILED, error="registry said 500"), None,
     "failed: registry said 500"),
    (facts([]), None, "listed no tags"),
    (facts(["1.0.0"], lost=["1.1.0", "1.2.0"]), None, "lost 2 of the 3 tags"),
    (facts(["1.0.0", "1.3.0"], lost=["1.1.0"]), "1.1.0", "no longer lists 1.1.0"),
])
def test_untrusted_scans_are_refused(scan_facts: ScanFacts, deployed: str | None,
                                     reason: str) -> None:
    refusal = guard_scan("apps/app", scan_facts, deployed)
    assert refusal is not None and reason in refusal
    decision, evaluation = decide(POLICY, None, scan_facts, previous="1.0.0", deployed=deployed,
                                  now=T1)
    assert evaluation is None and decision.selected_tag is None
    assert decision.error == f"refused: {refusal}; keeping 1.0.0"


def test_a_deployed_tag_the_registry_never_listed_does_not_block() -> None:
    assert guard_scan("apps/app", facts(["1.0.0", "1.1.0"]), "0.9.0") is None


def test_losing_exactly_half_is_still_trusted() -> None:
    assert guard_scan("apps/app", facts(["1.0.0", "1.1.0"], lost=["0.9.0", "0.8.0"]), "1.0.0") is None


def test_trusted_scan_is_evaluated_with_previous_selection() -> None:
    decision, evaluation = decide(POLICY, None, facts(["1.0.0", "1.2.0", "latest"]),
                                  previous="1.0.0", deployed="1.0.0", now=T1)
    assert evaluation is not None
    assert (decision.selected_tag, decision.previous_tag, decision.scan_id) == ("1.2.0", "1.0.0", 7)
    assert decision.candidates == 2
    assert dict(decision.verdict_counts) == {"selected": 1, "lower": 1, "unparsable": 1}
    assert [t.tag for t in decision.trace] == ["1.2.0", "1.0.0", "latest"]
