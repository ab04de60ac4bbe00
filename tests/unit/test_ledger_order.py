"""`gitward images tags` in a policy's order: candidates by rank, then what the policy passed
over, then what its decision has not seen, excluded last; newest first within each group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.evaluate.ledger import in_policy_order
from engine.model import Decision, RegistryTag, TagVerdict

T0 = datetime(2025, 11, 3, 12, 0, tzinfo=UTC)


def tag(name: str, hours: int, *, excluded: bool = False, gone: bool = False) -> RegistryTag:
    seen = T0 + timedelta(hours=hours)
    return RegistryTag("apps/app", name, seen, seen, excluded=excluded,
                       gone_at=seen + timedelta(hours=1) if gone else None)


TAGS = [tag("1.0.0", 0), tag("1.2.0", 1), tag("1.1.0", 2), tag("latest", 3),
        tag("1.1.0.sig", 4, excluded=True), tag("0.9.0", 5, gone=True), tag("1.3.0", 6),
        tag("sha-1", 7, excluded=True)]
DECISION = Decision("apps/app", T0 + timedelta(hours=5), "1.2.0", trace=(
    TagVerdict("1.2.0", "selected", "1.2.0", 1), TagVerdict("1.1.0", "lower", "1.1.0", 2),
    TagVerdict("1.0.0", "lower", "1.0.0", 3), TagVerdict("latest", "unparsable"),
    TagVerdict("1.1.0.sig", "excluded"), TagVerdict("sha-1", "excluded")))


def test_the_policy_order_with_excluded_tags_last() -> None:
    lines = in_policy_order(TAGS, {t.tag: (t.rank, t.verdict) for t in DECISION.trace})
    assert [(line.tag.tag, line.rank, line.verdict) for line in lines] == [
        ("1.2.0", 1, "selected"), ("1.1.0", 2, "lower"), ("1.0.0", 3, "lower"),
        ("latest", None, "unparsable"),
        ("1.3.0", None, "undecided"), ("0.9.0", None, "gone"),
        ("sha-1", None, "excluded"), ("1.1.0.sig", None, "excluded")]


def test_without_a_decision_newest_first_excluded_last() -> None:
    lines = in_policy_order(TAGS, None)
    assert [line.tag.tag for line in lines] == ["1.3.0", "0.9.0", "latest", "1.1.0", "1.2.0",
                                                "1.0.0", "sha-1", "1.1.0.sig"]
    assert {line.verdict for line in lines} == {"", "gone", "excluded"}
