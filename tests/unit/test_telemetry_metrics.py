"""The loop's metrics as one object lives through the rules: Ready per outcome, suspension,
tag counts, series dropped with the object; the liveness pulse; the readiness verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from engine.evaluate.schedule import Entry, Outcome
from engine.model import ObjectKey
from engine.reconcile.health import Pulse
from engine.reconcile.telemetry import Metrics

APP = ObjectKey("ImageRepository", "apps", "app")
OTHER = ObjectKey("GitRepository", "flux-system", "flux-system")
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def entry(key: ObjectKey, minutes: int = 5) -> Entry:
    return Entry(key, timedelta(minutes=minutes), timedelta(minutes=minutes))


def ready(registry: CollectorRegistry, key: ObjectKey) -> dict[str, float | None]:
    labels = {"kind": key.kind, "name": key.name, "namespace": key.namespace, "type": "Ready"}
    return {status: registry.get_sample_value("gotk_reconcile_condition", {**labels, "status": status})
            for status in ("True", "False", "Unknown")}


def object_value(registry: CollectorRegistry, series: str, key: ObjectKey, **more: str) -> float | None:
    labels = {"kind": key.kind, "name": key.name, "namespace": key.namespace, **more}
    return registry.get_sample_value(series, labels)


def test_ready_follows_the_outcomes_and_a_held_reconcile_changes_nothing() -> None:
    metrics = Metrics()
    registry = metrics.registry
    metrics.scheduled([entry(APP)])
    assert ready(registry, APP) == {"True": 0, "False": 0, "Unknown": 1}
    metrics.reconciled(APP, Outcome.FAILED, 0.2, AT)
    assert ready(registry, APP) == {"True": 0, "False": 1, "Unknown": 0}
    metrics.reconciled(APP, Outcome.HELD, 0.0, AT + timedelta(minutes=1))
    assert ready(registry, APP) == {"True": 0, "False": 1, "Unknown": 0}
    assert object_value(registry, "gitward_last_reconcile_timestamp_seconds", APP) == AT.timestamp()
    metrics.reconciled(APP, Outcome.OK, 0.4, AT + timedelta(minutes=2))
    assert ready(registry, APP) == {"True": 1, "False": 0, "Unknown": 0}
    assert object_value(registry, "gitward_last_success_timestamp_seconds", APP,
                        object="apps/app") == (AT + timedelta(minutes=2)).timestamp()
    assert object_value(registry, "gotk_reconcile_duration_seconds_count", APP) == 3
    assert object_value(registry, "gitward_reconcile_interval_seconds", APP) == 300


def test_suspension_is_set_on_change_and_a_removed_object_loses_its_series() -> None:
    metrics = Metrics()
    registry = metrics.registry
    metrics.scheduled([entry(APP), entry(OTHER, 1)])
    metrics.suspended(frozenset({APP}))
    assert object_value(registry, "gotk_suspend_status", APP) == 1
    assert object_value(registry, "gotk_suspend_status", OTHER) == 0
    metrics.scanned(APP, "registry.example/app", 12)
    metrics.scanned(APP, "registry.example/moved", 13)  # the rule's image changed
    assert object_value(registry, "gitward_image_repository_tags", APP, image="registry.example/app") is None
    assert object_value(registry, "gitward_image_repository_tags", APP, image="registry.example/moved") == 13
    metrics.reconciled(APP, Outcome.OK, 0.1, AT)
    metrics.suspended(frozenset())
    assert object_value(registry, "gotk_suspend_status", APP) == 0

    metrics.scheduled([entry(OTHER, 1)])
    for series, more in (("gotk_suspend_status", {}), ("gitward_reconcile_interval_seconds", {}),
                         ("gitward_last_reconcile_timestamp_seconds", {}),
                         ("gotk_reconcile_duration_seconds_count", {}),
                         ("gitward_last_success_timestamp_seconds", {"object": "apps/app"}),
                         ("gitward_image_repository_tags", {"image": "registry.example/moved"})):
        assert object_value(registry, series, APP, **more) is None, series
    assert ready(registry, APP) == {"True": None, "False": None, "Unknown": None}
    assert object_value(registry, "gitward_reconcile_interval_seconds", OTHER) == 60


def test_registry_answers_count_429s_apart() -> None:
    metrics = Metrics()
    for status in (200, 429, 429, 404):
        metrics.registry_answered("ghcr.io", status)
    value = metrics.registry.get_sample_value
    assert value("gitward_registry_requests_total", {"host": "ghcr.io", "code": "429"}) == 2
    assert value("gitward_registry_requests_total", {"host": "ghcr.io", "code": "200"}) == 1
    assert value("gitward_registry_rate_limited_total", {"host": "ghcr.io"}) == 2


def test_probes_are_read_at_each_scrape() -> None:
    metrics = Metrics()
    answers = {"alive": True, "ready": False}
    metrics.probing(lambda: answers["alive"], lambda: answers["ready"])
    value = metrics.registry.get_sample_value
    assert (value("gitward_loop_alive"), value("gitward_daemon_ready")) == (1, 0)
    answers.update(alive=False, ready=True)
    assert (value("gitward_loop_alive"), value("gitward_daemon_ready")) == (0, 1)


def test_a_pulse_past_its_allowance_is_not_alive() -> None:
    assert Pulse().alive().ok  # start-up has its own allowance
    late = Pulse(startup=-timedelta(hours=1))
    verdict = late.alive()
    assert not verdict.ok and "starting" in verdict.reason
    late.beat(timedelta(minutes=1), "reconciling ImageRepository/apps/app")
    assert late.alive().reason == "ok: reconciling ImageRepository/apps/app"
    late.beat(-timedelta(hours=1), "between objects")  # an allowance already over
    assert not late.alive().ok and "between objects" in late.alive().reason
