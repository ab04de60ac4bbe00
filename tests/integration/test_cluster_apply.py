"""Syncing a Kustomization's objects to a real API server: staged SSA, drift, prune, health.

Every test talks to the session's kube-apiserver v1.20 (no mocks). Requests are counted at the
HTTP layer by a spy on the client's urllib3 pool: each is still sent and answered for real.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import urllib3

from engine.evaluate.apply import NAME_LABEL, NAMESPACE_LABEL, Change, prepare, stages
from engine.kubeapi import api_error
from engine.evaluate.health import HealthStatus, assess
from engine.model import HealthCheck, Kustomization, Manifest, SourceRef
from engine.observe.cluster import ClusterClient, KubeconfigError, connect, read_object
from engine.reconcile.cluster import SyncResult, sync_kustomization
from engine.store.actions import list_actions
from engine.store.db import Store, open_store, state_url
from engine.store.inventory import list_inventory
from engine.store.queries import list_events
from tests.integration.kube_env import KubeAPI

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POLL = 0.2
WAIT = 60.0


@pytest.fixture
def cluster(kube_api: KubeAPI) -> Iterator[ClusterClient]:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the test server's own cert
    with connect(kube_api.kubeconfig) as client:
        yield client


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(state_url(str(tmp_path / "state.db"))) as opened:
        yield opened


def kustomization(**fields: Any) -> Kustomization:
    base = Kustomization(name="apps", source_ref=SourceRef("flux-system"), prune=True,
                         timeout=timedelta(seconds=30))
    return replace(base, **fields)


def config_map(namespace: str, name: str, data: dict[str, str], **meta: Any) -> Manifest:
    return Manifest({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": name, "namespace": namespace, **meta}, "data": data},
                    f"apps/{name}.yaml: document 1")


def deployment(namespace: str, *, app: str = "web", image: str = "nginx:1.25") -> Manifest:
    return Manifest({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": app}},
                 "template": {"metadata": {"labels": {"app": app}},
                              "spec": {"containers": [{"name": "web", "image": image,
                                                       "ports": [{"containerPort": 80}]}]}}},
    }, "apps/web.yaml: document 1")


def crd_and_widget(namespace: str) -> tuple[Manifest, Manifest, str]:
    group = f"g{secrets.token_hex(4)}.gitward.test"
    crd = Manifest({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object", "properties": {"spec": {
                         "type": "object", "properties": {"size": {"type": "integer"}}}}}}}]},
    }, "crds/widget.yaml: document 1")
    widget = Manifest({"apiVersion": f"{group}/v1", "kind": "Widget",
                       "metadata": {"name": "w", "namespace": namespace}, "spec": {"size": 3}},
                      "apps/widget.yaml: document 1")
    return crd, widget, group


def sync(store: Store, cluster: ClusterClient, ks: Kustomization, manifests: list[Manifest],
         revision: str, now: datetime = T0) -> SyncResult:
    return sync_kustomization(store, ks, manifests, revision, client=cluster, now=now,
                              poll_interval=POLL)


def live(cluster: ClusterClient, m: Manifest) -> dict[str, Any] | None:
    return read_object(cluster, m.api_version, m.kind, m.namespace, m.name)


def changes(result: SyncResult) -> dict[str, str]:
    return {f"{a.object.kind}/{a.object.name}": a.change.value for a in (*result.applied, *result.pruned)}


@contextmanager
def requests_sent(cluster: ClusterClient) -> Iterator[list[tuple[str, str]]]:
    """Every HTTP request the client sends while inside, as (method, url); each still goes out."""
    pool = cluster.api.rest_client.pool_manager
    real = pool.request
    seen: list[tuple[str, str]] = []

    def spy(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        seen.append((method.upper(), url))
        return real(method, url, *args, **kwargs)

    setattr(pool, "request", spy)
    try:
        yield seen
    finally:
        setattr(pool, "request", real)


def writes(seen: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(m, u) for m, u in seen if m != "GET" and "dryRun=All" not in u]


def wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {WAIT:g}s")
        time.sleep(POLL)


# Apply -----------------------------------------------------------------------------------------


def test_first_apply_creates_a_crd_and_its_custom_resource_in_one_revision(
        store: Store, cluster: ClusterClient, kube_namespace: str) -> None:
    crd, widget, group = crd_and_widget(kube_namespace)
    settings = config_map(kube_namespace, "settings", {"color": "blue"})
    result = sync(store, cluster, kustomization(), [widget, settings, crd], "main@sha1:aaa")

    assert result.ok, result.summary()
    assert [a.object.kind for a in result.applied] == ["CustomResourceDefinition", "ConfigMap", "Widget"]
    assert {a.change for a in result.applied} == {Change.CREATE}
    stored = live(cluster, widget)
    assert stored is not None and stored["spec"] == {"size": 3}
    labels = stored["metadata"]["labels"]
    assert (labels[NAME_LABEL], labels[NAMESPACE_LABEL]) == ("apps", "flux-system")
    managers = {(f["manager"], f["operation"]) for f in stored["metadata"]["managedFields"]}
    assert ("gitward", "Apply") in managers
    rows = {(e.object.group, e.object.kind, e.object.namespace, e.object.name): e
            for e in list_inventory(store, "flux-system/apps")}
    assert set(rows) == {("apiextensions.k8s.io", "CustomResourceDefinition", "", f"widgets.{group}"),
                         ("", "ConfigMap", kube_namespace, "settings"),
                         (group, "Widget", kube_namespace, "w")}
    assert {(e.revision, e.version, e.applied_at) for e in rows.values() if e.object.kind != "CustomResourceDefinition"} \
        == {("main@sha1:aaa", "v1", T0)}
    [action] = [a for a in list_actions(store) if a.payload["stage"] == "resources"]
    assert (action.type, action.status, action.target) == ("apply", "done", "Kustomization/flux-system/apps")


def test_a_no_op_reapply_sends_no_write_request(
        store: Store, cluster: ClusterClient, kube_namespace: str) -> None:
    crd, widget, _ = crd_and_widget(kube_namespace)
    objects = [crd, widget, config_map(kube_namespace, "settings", {"color": "blue"}),
               deployment(kube_namespace)]
    with requests_sent(cluster) as first:
        assert sync(store, cluster, kustomization(), objects, "main@sha1:aaa").ok
    assert len(writes(first)) == 4  # the counter sees writes when there are some
    before = {str(m.id): live(cluster, m)["metadata"]["resourceVersion"] for m in prepare(objects, kustomization())}  # type: ignore[index]
    actions, events = len(list_actions(store)), len(list_events(store))

    with requests_sent(cluster) as second:
        result = sync(store, cluster, kustomization(), objects, "main@sha1:bbb", T0 + timedelta(minutes=10))

    assert result.ok and not result.changes, result.summary()
    assert {a.change for a in result.applied} == {Change.UNCHANGED}
    assert writes(second) == []
    assert [m for m, u in second if "dryRun=All" in u] == ["PATCH"] * 4
    after = {str(m.id): live(cluster, m)["metadata"]["resourceVersion"] for m in prepare(objects, kustomization())}  # type: ignore[index]
    assert after == before
    assert {e.revision for e in list_inventory(store, "flux-system/apps")} == {"main@sha1:aaa"}
    # no action rows; one event records that revision bbb is now the applied one
    assert (len(list_actions(store)), len(list_events(store))) == (actions, events + 1)
    assert list_events(store)[-1].message.startswith("revision main@sha1:bbb: ")
    third = sync(store, cluster, kustomization(), objects, "main@sha1:bbb", T0 + timedelta(minutes=20))
    assert third.ok and len(list_events(store)) == events + 1  # same revision: nothing recorded


def test_drift_on_a_field_gitward_owns_is_corrected_with_a_diff(
        store: Store, cluster: ClusterClient, kube_namespace: str) -> None:
    settings = config_map(kube_namespace, "settings", {"color": "blue", "size": "large"})
    assert sync(store, cluster, kustomization(), [settings], "main@sha1:aaa").ok
    config_maps = cluster.dynamic.resources.get(api_version="v1", kind="ConfigMap")
    cluster.dynamic.patch(  # type: ignore[no-untyped-call]  # someone edits a field gitward set
        config_maps, name="settings", namespace=kube_namespace, body={"data": {"color": "red"}},
        content_type="application/merge-patch+json", field_manager="kubectl-edit")

    result = sync(store, cluster, kustomization(), [settings], "main@sha1:aaa", T0 + timedelta(minutes=10))

    assert result.ok, result.summary()
    [action] = result.applied
    assert action.change is Change.UPDATE
    assert [(d.path, d.old, d.new) for d in action.diff] == [("data.color", "red", "blue")]
    assert live(cluster, settings)["data"] == {"color": "blue", "size": "large"}  # type: ignore[index]
    first, event = list_events(store)
    assert first.message == f"revision main@sha1:aaa: ConfigMap/{kube_namespace}/settings created"
    assert (event.reason, event.message) == (
        "ReconciliationSucceeded", f"revision main@sha1:aaa: ConfigMap/{kube_namespace}/settings configured")


def test_a_field_set_by_another_manager_is_left_alone(
        store: Store, cluster: ClusterClient, kube_namespace: str) -> None:
    web = deployment(kube_namespace)  # sets no replicas
    assert sync(store, cluster, kustomization(), [web], "main@sha1:aaa").ok
    deployments = cluster.dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    cluster.dynamic.server_side_apply(  # type: ignore[no-untyped-call]
        deployments, name="web", namespace=kube_namespace, field_manager="autoscaler",
        body={"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": kube_namespace}, "spec": {"replicas": 3}})

    with requests_sent(cluster) as seen:
        result = sync(store, cluster, kustomization(), [web], "main@sha1:aaa", T0 + timedelta(minutes=10))

    assert result.ok and [a.change for a in result.applied] == [Change.UNCHANGED], result.summary()
    assert writes(seen) == []
    assert live(cluster, web)["spec"]["replicas"] == 3  # type: ignore[index]


# Prune -----------------------------------------------------------------------------------------


def test_prune_deletes_what_left_the_source_and_keeps_the_row(
        store: Store, cluster: ClusterClient, kube_namespace: str) -> None:
    keep, gone = config_map(kube_namespace, "keep", {"a": "1"}), config_map(kube_namespace, "gone", {"b": "2"})
    assert sync(store, cluster, kustomization(), [keep, gone], "main@sha1:aaa").ok

    result = sync(store, cluster, kustomization(), [keep], "main@sha1:bbb", T0 + timedelta(minutes=10))

    assert result.ok, result.summary()
    assert changes(result) == {"ConfigMap/keep": "unchanged", "ConfigMap/gone": "prune"}
    assert live(cluster, gone) is None and live(cluster, keep) is not None
    assert [e.object.name for e in list_inventory(store, "flux-system/apps")] == ["keep"]
    [pruned] = [e for e in list_inventory(store, "flux-system/apps", include_pruned=True) if e.pruned_at]
    assert (pruned.object.name, pruned.pruned_at) == ("gone", T0 + timedelta(minutes=10))
    assert [(a.type, a.status) for a in list_actions(store) if a.type == "prune"] == [("prune", "done")]
    # back in the source: applied again, the row managed again
    again = sync(store, cluster, kustomization(), [keep, gone], "main@sha1:ccc", T0 + timedelta(minutes=20))
    assert changes(again)["ConfigMap/gone"] == "create"
    assert {e.object.name: e.pruned_at for e in list_inventory(store, "flux-system/apps")} == {"gone": None, "keep": None}


def test_prune_disabled_or_prune_off_leaves_the_object_and_releases_it(
        store: Store, cluster: ClusterClient, kube_namespace: str) -> None:
    main = config_map(kube_namespace, "main", {"a": "1"})
    precious = config_map(kube_namespace, "precious", {"b": "2"},
                          annotations={"kustomize.toolkit.fluxcd.io/prune": "disabled"})
    labelled = config_map(kube_namespace, "labelled", {"c": "3"},
                          labels={"kustomize.toolkit.fluxcd.io/prune": "disabled"})
    loose = config_map(kube_namespace, "loose", {"d": "4"})
    assert sync(store, cluster, kustomization(), [main, precious, labelled, loose], "main@sha1:aaa").ok

    result = sync(store, cluster, kustomization(), [main, loose], "main@sha1:bbb", T0 + timedelta(minutes=10))
    assert result.ok, result.summary()
    assert changes(result) == {"ConfigMap/main": "unchanged", "ConfigMap/loose": "unchanged",
                               "ConfigMap/precious": "keep", "ConfigMap/labelled": "keep"}
    assert live(cluster, precious) is not None and live(cluster, labelled) is not None
    assert {e.object.name for e in list_inventory(store, "flux-system/apps", include_pruned=True)} == {"main", "loose"}

    off = sync(store, cluster, kustomization(prune=False), [main], "main@sha1:ccc", T0 + timedelta(minutes=20))
    assert changes(off)["ConfigMap/loose"] == "keep" and live(cluster, loose) is not None
    assert [e.object.name for e in list_inventory(store, "flux-system/apps", include_pruned=True)] == ["main"]


# Refusals --------------------------------------------------------------------------------------


def test_an_invalid_object_fails_the_sync_and_nothing_of_its_stage_is_applied(
        store: Store, cluster: ClusterClient, kube_namespace: str) -> None:
    good = config_map(kube_namespace, "good", {"a": "1"})
    bad = config_map(kube_namespace, "bad", {"bad key!": "x"})

    with requests_sent(cluster) as seen:
        result = sync(store, cluster, kustomization(), [good, bad], "main@sha1:aaa")

    assert not result.ok and result.error is not None
    assert "ConfigMap/" + kube_namespace + "/bad (apps/bad.yaml: document 1)" in result.error
    assert "data[bad key!]" in result.error
    assert writes(seen) == []
    assert live(cluster, good) is None
    assert list_inventory(store, "flux-system/apps") == ()
    [event] = list_events(store)
    assert (event.severity.value, event.reason) == ("error", "ReconciliationFailed")


def test_an_immutable_selector_change_is_reported_and_force_recreates_the_object(
        store: Store, cluster: ClusterClient, kube_namespace: str) -> None:
    assert sync(store, cluster, kustomization(), [deployment(kube_namespace)], "main@sha1:aaa").ok
    first_uid = live(cluster, deployment(kube_namespace))["metadata"]["uid"]  # type: ignore[index]
    moved = deployment(kube_namespace, app="web2")

    refused = sync(store, cluster, kustomization(), [moved], "main@sha1:bbb", T0 + timedelta(minutes=10))
    assert refused.error is not None
    assert "spec.selector is immutable" in refused.error and "force: true" in refused.error
    assert live(cluster, moved)["metadata"]["uid"] == first_uid  # type: ignore[index]

    forced = sync(store, cluster, kustomization(force=True), [moved], "main@sha1:bbb", T0 + timedelta(minutes=20))
    assert forced.ok, forced.summary()
    [action] = forced.applied
    assert (action.change, action.reason) == (Change.RECREATE, "immutable spec.selector changed")
    now = live(cluster, moved)
    assert now is not None and now["metadata"]["uid"] != first_uid
    assert now["spec"]["selector"] == {"matchLabels": {"app": "web2"}}
    [row] = list_inventory(store, "flux-system/apps")
    assert (row.revision, row.applied_at) == ("main@sha1:bbb", T0 + timedelta(minutes=20))


# Health ----------------------------------------------------------------------------------------


def mark_ready(cluster: ClusterClient, namespace: str) -> None:
    """What a controller would do: report the Deployment's one replica available."""
    deployments = cluster.dynamic.resources.get(api_version="apps/v1", kind="Deployment")
    path = deployments.path(name="web", namespace=namespace) + "/status"
    stored = live(cluster, deployment(namespace))
    assert stored is not None
    condition = {"lastUpdateTime": "2024-05-01T12:00:00Z", "lastTransitionTime": "2024-05-01T12:00:00Z"}
    cluster.dynamic.request("patch", path, content_type="application/merge-patch+json", body={"status": {
        "observedGeneration": stored["metadata"]["generation"], "replicas": 1, "updatedReplicas": 1,
        "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [
            {**condition, "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {**condition, "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ]}})


def test_wait_reports_an_unready_deployment_and_passes_once_its_status_is_ready(
        store: Store, cluster: ClusterClient, kube_namespace: str) -> None:
    web = deployment(kube_namespace)
    impatient = sync(store, cluster, kustomization(wait=True, timeout=timedelta(seconds=1)), [web], "main@sha1:aaa")
    assert impatient.error is None and not impatient.ok
    [report] = impatient.health
    assert report.health.status is HealthStatus.IN_PROGRESS and "replicas: 0/1" in report.health.message
    assert list_events(store)[0].reason == "HealthCheckFailed"

    def controller() -> None:
        wait_for("the Deployment existing", lambda: live(cluster, web) is not None)
        mark_ready(cluster, kube_namespace)

    worker = threading.Thread(target=controller)
    worker.start()
    patient = sync(store, cluster, kustomization(wait=True, timeout=timedelta(seconds=WAIT)), [web],
                   "main@sha1:aaa", T0 + timedelta(minutes=10))
    worker.join()
    assert patient.ok, patient.summary()
    assert [r.health.status for r in patient.health] == [HealthStatus.CURRENT]


def test_health_checks_name_objects_to_wait_for_without_wait(
        store: Store, cluster: ClusterClient, kube_namespace: str) -> None:
    checks = (HealthCheck("apps/v1", "Deployment", "web", kube_namespace),
              HealthCheck("v1", "ConfigMap", "absent", kube_namespace))
    result = sync(store, cluster, kustomization(health_checks=checks, timeout=timedelta(seconds=1)),
                  [deployment(kube_namespace)], "main@sha1:aaa")
    assert [(r.subject, r.health.status) for r in result.health] == [
        (f"Deployment/{kube_namespace}/web", HealthStatus.IN_PROGRESS),
        (f"ConfigMap/{kube_namespace}/absent", HealthStatus.MISSING)]
    mark_ready(cluster, kube_namespace)
    ready = sync(store, cluster, kustomization(health_checks=checks[:1]), [deployment(kube_namespace)],
                 "main@sha1:aaa", T0 + timedelta(minutes=10))
    assert ready.ok, ready.summary()


# Client and pure rules -------------------------------------------------------------------------


def test_connect_reads_kubeconfig_from_the_environment_and_names_a_wrong_context(
        kube_api: KubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{kube_api.kubeconfig}")
    with connect() as client:
        assert client.server == kube_api.url
        assert read_object(client, "v1", "Namespace", "", "kube-system") is not None
        assert read_object(client, "v1", "Namespace", "", "no-such-namespace") is None
        assert read_object(client, "nope.gitward.test/v1", "Nothing", "", "x") is None
        context = client.context
    with pytest.raises(KubeconfigError, match=rf"has no context '{context}x' \(did you mean \"{context}\"\?\)"):
        connect(kube_api.kubeconfig, context=context + "x")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeconfigError, match="no kubeconfig found at .*missing"):
        connect()


def test_an_unknown_kind_and_a_missing_namespace_are_refused_by_name(
        store: Store, cluster: ClusterClient, kube_namespace: str) -> None:
    unknown = Manifest({"apiVersion": "nope.gitward.test/v1", "kind": "Gadget",
                        "metadata": {"name": "g", "namespace": kube_namespace}}, "apps/gadget.yaml: document 1")
    homeless = Manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "h"}},
                        "apps/h.yaml: document 2")
    result = sync(store, cluster, kustomization(), [unknown, homeless], "main@sha1:aaa")
    assert result.error is not None
    assert "the server has no kind Gadget in nope.gitward.test/v1" in result.error
    assert "ConfigMap/h (apps/h.yaml: document 2): ConfigMap is namespaced but the object names no namespace" \
        in result.error


def test_stages_follow_flux_definitions_then_classes_then_the_rest() -> None:
    def obj(api_version: str, kind: str, name: str) -> Manifest:
        return Manifest({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}})

    objects = [obj("v1", "ConfigMap", "c"), obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "b"),
               obj("networking.k8s.io/v1", "IngressClass", "i"), obj("v1", "Namespace", "n"),
               obj("rbac.authorization.k8s.io/v1", "ClusterRole", "r"), obj("v1", "ServiceAccount", "s"),
               obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "d")]
    planned = stages(prepare(objects, kustomization()))
    assert [(s.name, [m.kind for m in s.manifests]) for s in planned] == [
        ("definitions", ["CustomResourceDefinition", "Namespace", "ClusterRole"]),
        ("classes", ["IngressClass"]),
        ("resources", ["ServiceAccount", "ClusterRoleBinding", "ConfigMap"])]
    assert objects[0].body["metadata"] == {"name": "c"}  # inputs untouched


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"apiVersion": "batch/v1", "kind": "Job", "status": {"active": 1}}, HealthStatus.IN_PROGRESS, "1 active"),
    ({"apiVersion": "batch/v1", "kind": "Job",
      "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}},
     HealthStatus.CURRENT, "Job completed"),
    ({"apiVersion": "batch/v1", "kind": "Job",
      "status": {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}},
     HealthStatus.FAILED, "BackoffLimitExceeded"),
    ({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"replicas": 2},
      "status": {"replicas": 2, "readyReplicas": 1}}, HealthStatus.IN_PROGRESS, "ready: 1/2"),
    ({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"replicas": 1},
      "status": {"replicas": 1, "readyReplicas": 1, "currentReplicas": 1, "currentRevision": "a",
                 "updateRevision": "a"}}, HealthStatus.CURRENT, "ready"),
    ({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"generation": 1},
      "status": {"observedGeneration": 1, "desiredNumberScheduled": 2, "currentNumberScheduled": 2,
                 "updatedNumberScheduled": 2, "numberAvailable": 1}}, HealthStatus.IN_PROGRESS, "available: 1/2"),
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": 2},
      "status": {"observedGeneration": 1}}, HealthStatus.IN_PROGRESS, "generation 2 not observed"),
    ({"apiVersion": "example.com/v1", "kind": "Thing",
      "status": {"conditions": [{"type": "Ready", "status": "False", "message": "waiting for db"}]}},
     HealthStatus.IN_PROGRESS, "waiting for db"),
    ({"apiVersion": "example.com/v1", "kind": "Thing",
      "status": {"conditions": [{"type": "Ready", "status": "True"}]}}, HealthStatus.CURRENT, "Ready"),
    ({"apiVersion": "v1", "kind": "ConfigMap"}, HealthStatus.CURRENT, "exists"),
])
def test_health_is_assessed_like_kstatus(body: dict[str, Any], status: HealthStatus, message: str) -> None:
    health = assess(body)
    assert health.status is status and message in health.message


def test_an_api_error_never_quotes_a_secret() -> None:
    body = ('{"kind":"Status","message":"Secret \\"s\\" is invalid: data[k]: Invalid value: \\"hunter2\\"",'
            '"reason":"Invalid","details":{"causes":[{"field":"data[k]","message":"Invalid value: \\"hunter2\\""}]},'
            '"code":422}')
    err = api_error(422, body, "Secret/ns/s", secret=True)
    assert "hunter2" not in str(err) and "data[k]" in str(err)
