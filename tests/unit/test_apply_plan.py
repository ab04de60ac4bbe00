"""The pure apply plan: facts about each object in, Flux's decisions out, no server involved."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.evaluate.apply import ALREADY_GONE, NAME_LABEL, NAMESPACE_LABEL, Change, Stage, prepare, stages
from engine.evaluate.applyplan import (
    ObjectFacts,
    crd_scopes,
    new_namespaces,
    plan,
    plan_object,
    plan_prune,
    plan_stage,
    wants_dry_run,
)
from engine.model import ClusterObject, HealthCheck, Kustomization, Manifest, ObjectId, SourceRef

KS = Kustomization(name="apps", source_ref=SourceRef("flux-system"), prune=True, timeout=timedelta(seconds=30))
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def config_map(name: str, data: dict[str, str], **meta: Any) -> Manifest:
    return prepare([Manifest({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": name, "namespace": "web", **meta}, "data": data},
                             f"apps/{name}.yaml: document 1")], KS)[0]


def live_of(manifest: Manifest, **changes: Any) -> dict[str, Any]:
    return {**manifest.body, "metadata": {**manifest.body["metadata"], "resourceVersion": "7"}, **changes}


def test_an_absent_object_is_created_and_a_differing_one_updated_with_its_fields() -> None:
    settings = config_map("settings", {"color": "blue"})
    created = plan_object(KS, ObjectFacts(settings, None, settings.body))
    updated = plan_object(KS, ObjectFacts(settings, live_of(settings, data={"color": "red"}), settings.body))
    same = plan_object(KS, ObjectFacts(settings, live_of(settings), settings.body))

    assert not isinstance(created, str) and created.action.change is Change.CREATE
    assert not isinstance(updated, str) and updated.action.change is Change.UPDATE
    assert [str(d) for d in updated.action.diff] == ['data.color: "red" -> "blue"']
    assert not isinstance(same, str) and same.action.change is Change.UNCHANGED


def test_an_object_whose_kind_or_namespace_is_still_to_come_is_created_unasked() -> None:
    settings = config_map("settings", {"color": "blue"})
    outcome = plan_object(KS, ObjectFacts(settings, pending=True))
    assert not isinstance(outcome, str) and outcome.action.change is Change.CREATE


def test_a_skipped_object_needs_no_dry_run_and_says_why() -> None:
    once = config_map("once", {"a": "1"}, annotations={"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"})
    assert wants_dry_run(once, None)
    assert not wants_dry_run(once, live_of(once))
    outcome = plan_object(KS, ObjectFacts(once, live_of(once)))
    assert not isinstance(outcome, str)
    assert (outcome.action.change, outcome.action.reason) == (
        Change.SKIP, "kustomize.toolkit.fluxcd.io/ssa: IfNotPresent and the object exists")


def test_an_immutable_change_is_refused_unless_force_recreates_the_object() -> None:
    settings = config_map("settings", {"color": "blue"})
    facts = ObjectFacts(settings, live_of(settings), refusal="ConfigMap/web/settings: spec.x is immutable",
                        immutable=("spec.x",))

    assert plan_object(KS, facts) == "ConfigMap/web/settings: spec.x is immutable"
    forced = plan_object(replace(KS, force=True), facts)
    assert not isinstance(forced, str)
    assert (forced.action.change, forced.action.reason, forced.immutable) == (
        Change.RECREATE, "immutable spec.x changed", ("spec.x",))
    assert plan_object(replace(KS, force=True), replace(facts, live=None)) == facts.refusal


def test_a_secret_plan_never_carries_its_values() -> None:
    secret = prepare([Manifest({"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": "creds", "namespace": "web"},
                                "data": {"password": "bmV3"}})], KS)[0]
    note = "kubectl.kubernetes.io/last-applied-configuration"
    live = live_of(secret, data={"password": "b2xk"})
    live["metadata"] = {**live["metadata"], "annotations": {note: '{"data":{"password":"b2xk"}}'}}

    merged = {**secret.body, "metadata": {**secret.body["metadata"],
                                          "annotations": {note: '{"data":{"password":"bmV3"}}'}}}

    outcome = plan_object(KS, ObjectFacts(secret, live, merged))

    assert not isinstance(outcome, str)
    assert {(d.path, d.old, d.new) for d in outcome.action.diff} == {
        ("data.password", "******", "******"), (f'metadata.annotations["{note}"]', "******", "******")}


def test_a_secret_annotation_map_that_appears_or_goes_is_masked_inside() -> None:
    secret = prepare([Manifest({"apiVersion": "v1", "kind": "Secret",
                                "metadata": {"name": "creds", "namespace": "web"},
                                "data": {"password": "bmV3"}})], KS)[0]
    note = "kubectl.kubernetes.io/last-applied-configuration"
    live = live_of(secret)
    live["metadata"] = {**live["metadata"], "annotations": {note: '{"data":{"password":"b2xk"}}', "team": "a"}}
    merged = {**secret.body, "metadata": {k: v for k, v in secret.body["metadata"].items()
                                          if k != "annotations"}}

    outcome = plan_object(KS, ObjectFacts(secret, live, merged))

    assert not isinstance(outcome, str)
    assert "b2xk" not in repr(outcome.action.to_json())
    assert [(d.path, d.old, d.new) for d in outcome.action.diff] == [
        ("metadata.annotations", {note: "******", "team": "a"}, None)]


def test_a_stage_plan_keeps_order_collects_refusals_and_waits_only_on_what_is_not_ready() -> None:
    namespace = prepare([Manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}})], KS)[0]
    other = prepare([Manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "db"}})], KS)[0]
    [stage] = stages([namespace, other])
    ready = live_of(namespace, status={"phase": "Active"})

    planned = plan_stage(KS, stage, [ObjectFacts(other, None, other.body), ObjectFacts(namespace, ready, namespace.body)])
    refused = plan_stage(KS, stage, ["Namespace/db: refused", ObjectFacts(namespace, ready, namespace.body)])

    assert [(str(a.object), a.change) for a in planned.actions] == [
        ("Namespace/db", Change.CREATE), ("Namespace/web", Change.UNCHANGED)]
    assert planned.wait_for == (HealthCheck("v1", "Namespace", "db", ""),)
    assert planned.creates() == (other,)
    assert refused.refused == ("Namespace/db: refused",)
    assert not plan_stage(KS, Stage("resources", stage.manifests, wait=False),
                          [ObjectFacts(other, None, other.body)]).wait_for


def test_prune_deletes_only_what_is_still_ours_and_present() -> None:
    ours = {"metadata": {"labels": {NAME_LABEL: "apps", NAMESPACE_LABEL: "flux-system"}}}
    theirs = {"metadata": {"labels": {NAME_LABEL: "other", NAMESPACE_LABEL: "flux-system"}}}

    def entry(name: str) -> ClusterObject:
        return ClusterObject("flux-system/apps", ObjectId("", "ConfigMap", "web", name), "v1", "r1", "sha256:x", T0)

    entries = [entry("ours"), entry("theirs"), entry("gone")]
    live = {entries[0].object: ours, entries[1].object: theirs, entries[2].object: None}

    decided = plan_prune(KS, entries, live)
    whole = plan("p1", KS, [], [], decided)

    assert [(a.object.name, a.change, a.reason) for a in decided] == [
        ("ours", Change.PRUNE, ""), ("theirs", Change.KEEP, "no longer labelled as this Kustomization's"),
        ("gone", Change.PRUNE, ALREADY_GONE)]
    assert [a.object.name for a in whole.deletes] == ["ours"]
    assert [a.object.name for a in whole.changes] == ["ours"]
    assert whole.to_json()["prune"] == [a.to_json() for a in decided]


def test_what_a_rendering_creates_before_it_exists() -> None:
    crd = Manifest({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                    "metadata": {"name": "widgets.example.com"},
                    "spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Widget"}}})
    namespace = Manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}})
    assert crd_scopes([crd, namespace]) == {("example.com", "Widget"): False}
    assert new_namespaces([crd, namespace]) == frozenset({"web"})
