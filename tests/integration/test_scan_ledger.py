"""Scanning a real registry into the ledger, and deciding policies from it (no mocks)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.model import (
    ImagePolicy,
    ImageRepository,
    NamespacedRef,
    PolicyChoice,
    PolicyKind,
    RuleSet,
    ScanStatus,
)
from engine.reconcile.images import decide_policy, scan_repository
from engine.store import decisions as policy_decisions, queries
from engine.store.db import Store, open_store, state_url
from tests.integration.registry_env import PagingProxy, RunningRegistry, delete_manifests, seed_tags

MakeProxy = Callable[..., PagingProxy]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(state_url(str(tmp_path / "state.db"))) as s:
        yield s


def ticking(start: datetime) -> Callable[[], datetime]:
    """A clock that moves one second per reading, so every scan has its own time."""
    counter = itertools.count()
    return lambda: start + timedelta(seconds=next(counter))


def repository(host: str, name: str, **kw: object) -> ImageRepository:
    return ImageRepository(name="app", namespace="apps", image=f"{host}/{name}", insecure=True,
                           **kw)  # type: ignore[arg-type]


def semver_policy() -> ImagePolicy:
    return ImagePolicy(name="app", namespace="apps", repository=NamespacedRef("app"),
                       choice=PolicyChoice(PolicyKind.SEMVER, range=">=1.0.0"))


def test_scan_records_every_tag_and_flags_exclusions(store: Store,
                                                     open_registry: RunningRegistry) -> None:
    name = f"scan/{uuid.uuid4().hex[:8]}"
    seed_tags(open_registry.url, name, ["1.0.0", "1.1.0", "sha256-abc.sig", "latest"])
    repo = repository(open_registry.host, name)
    scan = scan_repository(store, repo, clock=ticking(datetime(2026, 1, 1, tzinfo=UTC)))
    assert scan.status is ScanStatus.OK and scan.tag_count == 3
    ledger = {t.tag: t for t in queries.tags(store, "apps/app")}
    assert set(ledger) == {"1.0.0", "1.1.0", "sha256-abc.sig", "latest"}
    assert ledger["sha256-abc.sig"].excluded and not ledger["latest"].excluded


def test_new_and_vanished_tags_get_first_seen_and_gone_at(store: Store,
                                                          open_registry: RunningRegistry) -> None:
    name = f"scan/{uuid.uuid4().hex[:8]}"
    digests = seed_tags(open_registry.url, name, ["1.0.0", "1.1.0", "1.2.0"])
    repo = repository(open_registry.host, name)
    clock = ticking(datetime(2026, 1, 1, tzinfo=UTC))
    first = scan_repository(store, repo, clock=clock)
    seed_tags(open_registry.url, name, ["1.3.0"])
    delete_manifests(open_registry.url, name, [digests["1.0.0"]])
    second = scan_repository(store, repo, clock=clock)
    ledger = {t.tag: t for t in queries.tags(store, "apps/app", include_gone=True)}
    assert ledger["1.3.0"].first_seen == second.finished_at
    assert ledger["1.1.0"].first_seen == first.finished_at
    assert ledger["1.0.0"].gone_at == second.finished_at


def test_unknown_repository_records_a_failed_scan_and_touches_no_tag(
        store: Store, open_registry: RunningRegistry) -> None:
    repo = repository(open_registry.host, "does/not-exist")
    scan = scan_repository(store, repo, clock=ticking(datetime(2026, 1, 1, tzinfo=UTC)))
    assert scan.status is ScanStatus.FAILED
    assert "does not exist" in (scan.error or "")
    assert queries.tags(store, "apps/app", include_gone=True) == ()


def test_registry_going_away_mid_scan_changes_no_tag_row(
        store: Store, open_registry: RunningRegistry, paging_proxy: MakeProxy) -> None:
    proxy = paging_proxy(open_registry)
    repo = repository(proxy.host, "many/app", page_size=1000)
    clock = ticking(datetime(2026, 1, 1, tzinfo=UTC))
    ok = scan_repository(store, repo, clock=clock)
    assert ok.status is ScanStatus.OK and ok.tag_count == 2500
    before = queries.tags(store, "apps/app", include_gone=True)
    proxy.faults.vanish_after_page = 2
    failed = scan_repository(store, repo, clock=clock)
    assert failed.status is ScanStatus.FAILED
    assert "cannot reach registry" in (failed.error or "")
    after = queries.tags(store, "apps/app", include_gone=True)
    assert [(t.tag, t.first_seen, t.gone_at) for t in after] == \
        [(t.tag, t.first_seen, t.gone_at) for t in before]


def test_decision_follows_the_ledger_and_refuses_a_failed_scan(
        store: Store, open_registry: RunningRegistry) -> None:
    name = f"scan/{uuid.uuid4().hex[:8]}"
    seed_tags(open_registry.url, name, ["1.0.0", "1.1.0"])
    repo, policy = repository(open_registry.host, name), semver_policy()
    rules = RuleSet.of([repo, policy])
    clock = ticking(datetime(2026, 1, 1, tzinfo=UTC))
    scan_repository(store, repo, clock=clock)
    first = decide_policy(store, rules, policy, now=clock()).decision
    assert first.selected_tag == "1.1.0" and first.previous_tag is None
    seed_tags(open_registry.url, name, ["1.2.0"])
    scan_repository(store, repo, clock=clock)
    second = decide_policy(store, rules, policy, now=clock()).decision
    assert (second.selected_tag, second.previous_tag) == ("1.2.0", "1.1.0")
    broken = repository(open_registry.host, "does/not-exist")
    scan_repository(store, broken, clock=clock)
    refused = decide_policy(store, RuleSet.of([broken, policy]), policy, now=clock()).decision
    assert refused.selected_tag is None
    assert refused.error is not None and refused.error.startswith("refused: the latest scan")
    assert refused.error.endswith("keeping 1.2.0")
    assert policy_decisions.latest_selection(store, "apps/app").selected_tag == "1.2.0"  # type: ignore[union-attr]


def _events(store: Store, kind: str) -> list[tuple[str, str]]:
    return [(e.reason, e.message) for e in queries.list_events(store, object_kind=kind)]


def test_events_say_what_changed_once(store: Store, open_registry: RunningRegistry) -> None:
    """New tags, a new selection and a failure that starts are events; a scan or decision like
    the one before is not, so an outage retried every interval is one event."""
    name = f"scan/{uuid.uuid4().hex[:8]}"
    seed_tags(open_registry.url, name, ["1.0.0", "1.1.0"])
    repo, policy = repository(open_registry.host, name), semver_policy()
    rules = RuleSet.of([repo, policy])
    clock = ticking(datetime(2026, 1, 1, tzinfo=UTC))
    for _ in range(2):
        scan_repository(store, repo, clock=clock)
        decide_policy(store, rules, policy, now=clock())
    seed_tags(open_registry.url, name, ["1.2.0"])
    scan_repository(store, repo, clock=clock)
    decide_policy(store, rules, policy, now=clock())
    gone = repository("127.0.0.1:9", name)  # nothing listens there: every scan fails alike
    for _ in range(3):
        scan_repository(store, gone, clock=clock)
        decide_policy(store, RuleSet.of([gone, policy]), policy, now=clock())

    scans = _events(store, "ImageRepository")
    assert [reason for reason, _ in scans] == ["NewTags", "NewTags", "ScanFailed"]
    assert scans[0][1] == "first scan: 2 tags" and scans[1][1] == "1 new tag: 1.2.0 (3 in all)"
    assert scans[2][1].startswith("scan failed: ") and "127.0.0.1:9" in scans[2][1]
    decisions = _events(store, "ImagePolicy")
    assert decisions[:2] == [("NewSelection", "selected 1.1.0"),
                             ("NewSelection", "selected 1.2.0 (was 1.1.0)")]
    assert [reason for reason, _ in decisions[2:]] == ["DecisionFailed"]
    assert decisions[2][1].startswith("refused: the latest scan")
