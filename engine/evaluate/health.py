"""Is an object healthy? kstatus-like readiness for the kinds Flux's health checks know.

Pure: the caller reads the live object. Deployments, StatefulSets and DaemonSets compare
observedGeneration and replica counts; a Job is ready once Complete; a CRD once Established; a
PVC once Bound; anything else by its `Ready` (or `Stalled`/`Reconciling`) condition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.model import HealthCheck, Kustomization, Manifest

TOOLKIT = "kustomize.toolkit.fluxcd.io"


def mapping_at(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    """`obj[key]` when it is a mapping, else an empty one: live objects are untyped JSON."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def list_at(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    return value if isinstance(value, list) else []



class HealthStatus(StrEnum):
    CURRENT = "current"
    IN_PROGRESS = "in-progress"
    FAILED = "failed"
    MISSING = "missing"


@dataclass(frozen=True)
class Health:
    status: HealthStatus
    message: str

    @property
    def ready(self) -> bool:
        return self.status is HealthStatus.CURRENT


def health_targets(kustomization: Kustomization, desired: Sequence[Manifest]) -> tuple[HealthCheck, ...]:
    """What to wait for: every applied object with `wait`, else the `healthChecks` (Flux)."""
    if kustomization.wait:
        targets = [HealthCheck(m.api_version, m.kind, m.name, m.namespace) for m in desired]
    else:
        targets = list(kustomization.health_checks)
    return tuple(t for t in targets if not (
        t.kind == Kustomization.KIND and t.api_version.startswith(f"{TOOLKIT}/")
        and (t.namespace, t.name) == (kustomization.namespace, kustomization.name)))


def _int(obj: Mapping[str, Any], path: str, default: int) -> int:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return default
        value = value[part]
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    status = mapping_at(obj, "status")
    found = list_at(status, "conditions")
    return {str(c.get("type")): c for c in found if isinstance(c, dict)}


def _is(cond: Mapping[str, Any] | None, status: str) -> bool:
    return cond is not None and str(cond.get("status")) == status


def _progress(message: str) -> Health:
    return Health(HealthStatus.IN_PROGRESS, message)


def _current(message: str) -> Health:
    return Health(HealthStatus.CURRENT, message)


def _deployment(obj: Mapping[str, Any]) -> Health:
    conds = _conditions(obj)
    progressing = conds.get("Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health(HealthStatus.FAILED, "progress deadline exceeded")
    want = _int(obj, "spec.replicas", 1)
    have = {k: _int(obj, f"status.{k}", 0) for k in
            ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")}
    if want > have["replicas"]:
        return _progress(f"replicas: {have['replicas']}/{want}")
    if want > have["updatedReplicas"]:
        return _progress(f"updated: {have['updatedReplicas']}/{want}")
    if have["replicas"] > want:
        return _progress(f"pending termination: {have['replicas'] - want}")
    if have["updatedReplicas"] > have["availableReplicas"]:
        return _progress(f"available: {have['availableReplicas']}/{have['updatedReplicas']}")
    if want > have["readyReplicas"]:
        return _progress(f"ready: {have['readyReplicas']}/{want}")
    deadline = _int(obj, "spec.progressDeadlineSeconds", 2**31 - 1) != 2**31 - 1
    if deadline and not (_is(progressing, "True") and progressing is not None
                         and progressing.get("reason") == "NewReplicaSetAvailable"):
        return _progress("new ReplicaSet not available yet")
    if not _is(conds.get("Available"), "True"):
        return _progress("Deployment not Available")
    return _current(f"Deployment is available: {have['replicas']} replicas")


def _statefulset(obj: Mapping[str, Any]) -> Health:
    spec = mapping_at(obj, "spec")
    strategy = mapping_at(spec, "updateStrategy")
    if strategy.get("type") == "OnDelete":
        return _current("StatefulSet uses the OnDelete update strategy")
    want = _int(obj, "spec.replicas", 1)
    have = {k: _int(obj, f"status.{k}", 0) for k in
            ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas")}
    partition = _int(obj, "spec.updateStrategy.rollingUpdate.partition", -1)
    if want > have["replicas"]:
        return _progress(f"replicas: {have['replicas']}/{want}")
    if want > have["readyReplicas"]:
        return _progress(f"ready: {have['readyReplicas']}/{want}")
    if have["replicas"] > want:
        return _progress(f"pending termination: {have['replicas'] - want}")
    if partition != -1:
        if have["updatedReplicas"] < want - partition:
            return _progress(f"updated: {have['updatedReplicas']}/{want - partition}")
        return _current(f"partitioned rollout complete: {have['updatedReplicas']} updated")
    if want > have["currentReplicas"]:
        return _progress(f"current: {have['currentReplicas']}/{want}")
    status = mapping_at(obj, "status")
    if status.get("currentRevision", "") != status.get("updateRevision", ""):
        return _progress("waiting for the update revision to become current")
    return _current(f"StatefulSet is ready: {have['replicas']} replicas")


def _daemonset(obj: Mapping[str, Any]) -> Health:
    if _int(obj, "metadata.generation", -1) < 0 or _int(obj, "status.observedGeneration", -1) < 0:
        return _progress("DaemonSet not observed by its controller yet")
    desired = _int(obj, "status.desiredNumberScheduled", -1)
    if desired < 0:
        return _progress("no desiredNumberScheduled yet")
    for field, label in (("currentNumberScheduled", "current"), ("updatedNumberScheduled", "updated"),
                         ("numberAvailable", "available"), ("numberReady", "ready")):
        have = _int(obj, f"status.{field}", 0)
        if desired > have:
            return _progress(f"{label}: {have}/{desired}")
    return _current(f"DaemonSet is ready: {desired} scheduled")


def _job(obj: Mapping[str, Any]) -> Health:
    conds = _conditions(obj)
    if _is(conds.get("Failed"), "True"):
        return Health(HealthStatus.FAILED, f"Job failed: {conds['Failed'].get('message') or ''}".rstrip(": "))
    if _is(conds.get("Complete"), "True"):
        return _current(f"Job completed: {_int(obj, 'status.succeeded', 0)} succeeded")
    return _progress(f"Job running: {_int(obj, 'status.active', 0)} active, "
                     f"{_int(obj, 'status.succeeded', 0)} succeeded")


def _crd(obj: Mapping[str, Any]) -> Health:
    conds = _conditions(obj)
    names = conds.get("NamesAccepted")
    if _is(names, "False") and names is not None:
        return Health(HealthStatus.FAILED, str(names.get("message") or "names not accepted"))
    established = conds.get("Established")
    if _is(established, "True"):
        return _current("CRD is established")
    if established is not None and _is(established, "False") and established.get("reason") != "Installing":
        return Health(HealthStatus.FAILED, str(established.get("message") or "not established"))
    return _progress("CRD not established yet")


def _claim(obj: Mapping[str, Any]) -> Health:
    status = mapping_at(obj, "status")
    phase = str(status.get("phase") or "unknown")
    return _current("PVC is Bound") if phase == "Bound" else _progress(f"PVC is {phase}")


_ASSESSORS: dict[tuple[str, str], Callable[[Mapping[str, Any]], Health]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("", "PersistentVolumeClaim"): _claim,
}


def assess(obj: Mapping[str, Any] | None) -> Health:
    """An object's health as kstatus (and so Flux) computes it, from its live state alone."""
    if obj is None:
        return Health(HealthStatus.MISSING, "not found")
    meta = mapping_at(obj, "metadata")
    if meta.get("deletionTimestamp"):
        return _progress("being deleted")
    generation = _int(obj, "metadata.generation", -1)
    observed = _int(obj, "status.observedGeneration", -1)
    if generation >= 0 and observed >= 0 and observed < generation:
        return _progress(f"generation {generation} not observed yet (observed {observed})")
    conds = _conditions(obj)
    stalled = conds.get("Stalled")
    if _is(stalled, "True") and stalled is not None:
        return Health(HealthStatus.FAILED, str(stalled.get("message") or "stalled"))
    reconciling = conds.get("Reconciling")
    if _is(reconciling, "True") and reconciling is not None:
        return _progress(str(reconciling.get("message") or "reconciling"))
    api_version = str(obj.get("apiVersion", ""))
    assessor = _ASSESSORS.get((api_version.rpartition("/")[0], str(obj.get("kind", ""))))
    if assessor is not None:
        return assessor(obj)
    ready = conds.get("Ready")
    if ready is None:
        return _current("exists")
    if _is(ready, "True"):
        return _current(str(ready.get("message") or "Ready"))
    return _progress(f"Ready is {ready.get('status')}: {ready.get('message') or ready.get('reason') or ''}".rstrip(": "))
