"""Desired objects vs inventory vs live state: what a sync creates, updates, leaves or prunes.

Pure: the cluster's answers (live objects, server-side dry-run results, API errors) come in as
plain data, so every decision here is testable without a server. The rules are Flux's
(fluxcd/pkg ssa and kustomize-controller): owner labels on every object, staged apply
(definitions, then classes, then the rest, each in Flux's kind order), drift judged by comparing
the live object with a server-side dry-run apply (so API-server defaults never look like drift),
prune only of objects that still carry this Kustomization's labels, and kstatus-style health.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.errors import UserError
from engine.evaluate.health import TOOLKIT, mapping_at as _sub, list_at as _list
from engine.model import ClusterObject, Kustomization, Manifest, ObjectId

NAME_LABEL = f"{TOOLKIT}/name"
NAMESPACE_LABEL = f"{TOOLKIT}/namespace"
PRUNE_KEY = f"{TOOLKIT}/prune"
RECONCILE_KEY = f"{TOOLKIT}/reconcile"
SSA_KEY = f"{TOOLKIT}/ssa"
DISABLED = "disabled"
SECRET_MASK = "******"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
"""kubectl's annotation holding the object as last applied: on a Secret, its values."""
ALREADY_GONE = "already gone"
"""The reason of a prune whose object left the cluster before the sync: nothing to delete."""


class ManifestError(UserError):
    """A rendered object that cannot be applied as written (no kind, no name, duplicated)."""


# Desired objects ---------------------------------------------------------------------------


def describe(manifest: Manifest) -> str:
    """`Kind.group/namespace/name (file: document N)`: how messages name an object."""
    return f"{manifest.id} ({manifest.origin})" if manifest.origin else str(manifest.id)


def prepare(manifests: Iterable[Manifest], kustomization: Kustomization) -> tuple[Manifest, ...]:
    """The objects as gitward applies them: normalized, with this Kustomization's owner labels
    (new bodies; the inputs are untouched).

    Raises ManifestError naming every object without apiVersion, kind or name, and every
    object rendered twice.
    """
    problems: list[str] = []
    seen: dict[ObjectId, Manifest] = {}
    result: list[Manifest] = []
    for manifest in manifests:
        missing = [f for f, v in (("apiVersion", manifest.api_version), ("kind", manifest.kind),
                                  ("metadata.name", manifest.name)) if not v]
        if missing:
            where = manifest.origin or "a rendered object"
            problems.append(f"{where}: not a Kubernetes object: no {', '.join(missing)}")
            continue
        first = seen.get(manifest.id)
        if first is not None:
            problems.append(f"{manifest.id} is rendered twice: {first.origin or '?'} and "
                            f"{manifest.origin or '?'}")
            continue
        seen[manifest.id] = manifest
        body = normalized(manifest.body)
        meta = body.setdefault("metadata", {})
        meta["labels"] = {**_sub(meta, "labels"), NAME_LABEL: kustomization.name,
                          NAMESPACE_LABEL: kustomization.namespace}
        result.append(Manifest(body, manifest.origin))
    if problems:
        raise ManifestError("\n".join(problems))
    return tuple(result)


_POD_TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("apps", "Deployment"): ("spec", "template", "spec"),
    ("apps", "StatefulSet"): ("spec", "template", "spec"),
    ("apps", "DaemonSet"): ("spec", "template", "spec"),
    ("apps", "ReplicaSet"): ("spec", "template", "spec"),
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}


def normalized(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `body` with Flux's normalizations, which keep server-side apply from refusing
    objects or reporting drift that is not there: `protocol: TCP` on Service and container ports
    that name none (structured-merge-diff needs the list key), a Secret's `stringData` moved into
    `data`, no `metadata.creationTimestamp`, and no `status` (except on a CRD)."""
    out = copy.deepcopy(dict(body))
    api_version, kind = str(out.get("apiVersion", "")), str(out.get("kind", ""))
    group = api_version.rpartition("/")[0]
    _sub(out, "metadata").pop("creationTimestamp", None)
    if (group, kind) != ("apiextensions.k8s.io", "CustomResourceDefinition"):
        out.pop("status", None)
    ports: list[Any] = []
    if (group, kind) == ("", "Service"):
        ports = _list(_sub(out, "spec"), "ports")
    elif (group, kind) in _POD_TEMPLATES:
        spec: Mapping[str, Any] = out
        for key in _POD_TEMPLATES[(group, kind)]:
            spec = _sub(spec, key)
        ports = [p for c in _list(spec, "containers") if isinstance(c, dict) for p in _list(c, "ports")]
    for port in ports:
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"
    if (group, kind) == ("", "Secret") and isinstance(out.get("stringData"), dict):
        data = _sub(out, "data")
        for key, value in out.pop("stringData").items():
            data[str(key)] = base64.b64encode(str(value).encode()).decode()
        out["data"] = data
    return out


def cluster_scoped(manifest: Manifest) -> Manifest:
    """The object without `metadata.namespace`, for kinds the server says are cluster-scoped."""
    if not manifest.namespace:
        return manifest
    body = copy.deepcopy(manifest.body)
    meta = body.get("metadata")
    if isinstance(meta, dict):
        meta.pop("namespace", None)
    return Manifest(body, manifest.origin)


def checksum(manifest: Manifest) -> str:
    """sha256 of the object's canonical JSON; a Secret's values are left out (never hashed)."""
    body: Any = manifest.body
    if manifest.group == "" and manifest.kind == "Secret":
        body = {k: (sorted(v) if k in ("data", "stringData") and isinstance(v, dict) else v)
                for k, v in body.items()}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# Staging and order -------------------------------------------------------------------------

_FIRST = ("CustomResourceDefinition", "Namespace", "ResourceQuota", "StorageClass", "ServiceAccount",
          "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding",
          "ConfigMap", "Secret", "Service", "LimitRange", "PriorityClass", "Deployment",
          "StatefulSet", "CronJob", "PodDisruptionBudget")
_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
_KIND_RANK = {kind: i - len(_FIRST) for i, kind in enumerate(_FIRST)} | {
    kind: i + 1 for i, kind in enumerate(_LAST)}


def apply_order(obj: ObjectId) -> tuple[int, str, str, str, str]:
    """Flux's order: namespaces and definitions first, webhooks last, then group, kind, ns, name."""
    return (_KIND_RANK.get(obj.kind, 0), obj.group, obj.kind, obj.namespace, obj.name)


def is_definition(obj: ObjectId) -> bool:
    """CRDs, Namespaces and ClusterRoles: what the rest may need to exist first (Flux's stage one)."""
    return ((obj.group, obj.kind) in {("apiextensions.k8s.io", "CustomResourceDefinition"),
                                      ("", "Namespace"),
                                      ("rbac.authorization.k8s.io", "ClusterRole")})


@dataclass(frozen=True)
class Stage:
    """Objects applied together: all are dry-run before any is written. `wait` makes the next
    stage wait until these are ready (CRDs Established, classes present)."""

    name: str
    manifests: tuple[Manifest, ...]
    wait: bool


def stages(manifests: Iterable[Manifest]) -> tuple[Stage, ...]:
    """Flux's stages: definitions (CRD, Namespace, ClusterRole), classes (`*Class`), resources.

    ClusterRoleBindings are not definitions (as in fluxcd/pkg ssa): they go with the rest.
    Empty stages are left out.
    """
    groups: dict[str, list[Manifest]] = {"definitions": [], "classes": [], "resources": []}
    for m in manifests:
        name = "definitions" if is_definition(m.id) else "classes" if m.kind.endswith("Class") else "resources"
        groups[name].append(m)
    return tuple(Stage(name, tuple(sorted(ms, key=lambda m: apply_order(m.id))), name != "resources")
                 for name, ms in groups.items() if ms)


# Decisions ---------------------------------------------------------------------------------


class Change(StrEnum):
    """What a sync did (or would do) to one object."""

    CREATE = "create"
    UPDATE = "update"
    RECREATE = "recreate"
    UNCHANGED = "unchanged"
    SKIP = "skip"
    PRUNE = "prune"
    KEEP = "keep"

    @property
    def writes(self) -> bool:
        return self in (Change.CREATE, Change.UPDATE, Change.RECREATE, Change.PRUNE)

    @property
    def past(self) -> str:
        """Flux's words in change logs."""
        return {"create": "created", "update": "configured", "recreate": "recreated",
                "unchanged": "unchanged", "skip": "skipped", "prune": "deleted",
                "keep": "kept"}[self.value]


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: `old`/`new` are None when the field is absent on that side."""

    path: str
    old: object
    new: object

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "old": self.old, "new": self.new}

    def __str__(self) -> str:
        return f"{self.path}: {_short(self.old)} -> {_short(self.new)}"


def _short(value: object) -> str:
    if value is None:
        return "(absent)"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class ObjectAction:
    """One object's outcome: what changed, the fields that differ, and why when not obvious."""

    object: ObjectId
    version: str
    change: Change
    diff: tuple[FieldChange, ...] = ()
    origin: str = ""
    reason: str = ""
    gone: bool = False
    """A prune of an object the cluster no longer holds: nothing to delete, no request sent."""

    @property
    def writes(self) -> bool:
        """Whether carrying it out writes to the cluster (what Flux's change log lists)."""
        return self.change.writes and not self.gone

    @property
    def api_version(self) -> str:
        return f"{self.object.group}/{self.version}" if self.object.group else self.version

    def __str__(self) -> str:
        text = f"{self.object} {self.change.past}"
        return f"{text} ({self.reason})" if self.reason else text

    def to_json(self) -> dict[str, Any]:
        return {"object": str(self.object), "apiVersion": self.api_version,
                "change": self.change.value, "origin": self.origin or None,
                "reason": self.reason or None, "diff": [d.to_json() for d in self.diff]}


def skip_reason(desired: Manifest, live: Mapping[str, Any] | None) -> str:
    """Why Flux would not apply this object ('' when it should be applied).

    `kustomize.toolkit.fluxcd.io/reconcile: disabled` or `ssa: Ignore` (on either side) skip
    it; `ssa: IfNotPresent` on the desired object skips it once it exists.
    """
    sides = [_metadata_values(desired.body)] + ([_metadata_values(live)] if live is not None else [])
    for values in sides:
        if values.get(RECONCILE_KEY, "").lower() == DISABLED:
            return f"{RECONCILE_KEY}: disabled"
        if values.get(SSA_KEY, "").lower() == "ignore":
            return f"{SSA_KEY}: Ignore"
    if live is not None and _metadata_values(desired.body).get(SSA_KEY, "").lower() == "ifnotpresent":
        return f"{SSA_KEY}: IfNotPresent and the object exists"
    return ""


def decide(desired: Manifest, live: Mapping[str, Any] | None,
           merged: Mapping[str, Any]) -> ObjectAction:
    """Create when absent; update when the dry-run result differs from the live object in its
    labels, annotations or anything outside metadata and status; else unchanged."""
    if live is None:
        return ObjectAction(desired.id, desired.version, Change.CREATE, origin=desired.origin)
    diff = field_diff(live, merged)
    change = Change.UPDATE if diff else Change.UNCHANGED
    return ObjectAction(desired.id, desired.version, change, diff, desired.origin)


def field_diff(live: Mapping[str, Any], merged: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    """The fields that differ between two versions of one object, Secret values masked."""
    out: list[FieldChange] = []
    _diff("", _comparable(live), _comparable(merged), out)
    if str(merged.get("apiVersion")) == "v1" and merged.get("kind") == "Secret":
        out = [_secret_masked(c) for c in out]
    return tuple(out)


def _secret_masked(change: FieldChange) -> FieldChange:
    """A Secret's values masked wherever they show: `data`, `stringData`, and kubectl's
    last-applied annotation (it holds them too), also inside a whole map that appears or goes
    (`metadata` or `metadata.annotations` present on one side only)."""
    if change.path.startswith(("data", "stringData")) or LAST_APPLIED in change.path:
        return FieldChange(change.path, _mask(change.old), _mask(change.new))
    return FieldChange(change.path, _masked_inside(change.old), _masked_inside(change.new))


def _mask(value: object) -> object:
    return None if value is None else SECRET_MASK


def _masked_inside(value: object) -> object:
    if isinstance(value, dict):
        return {k: SECRET_MASK if k == LAST_APPLIED else _masked_inside(v) for k, v in value.items()}
    return value


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    meta = _sub(obj, "metadata")
    kept = {k: meta[k] for k in ("labels", "annotations") if meta.get(k)}
    if kept:
        view["metadata"] = kept
    return view


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _join(path: str, key: str) -> str:
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _diff(path: str, old: Any, new: Any, out: list[FieldChange]) -> None:
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            _diff(_join(path, str(key)), old.get(key), new.get(key), out)
    elif isinstance(old, list) and isinstance(new, list):
        names = _names(old), _names(new)
        if names[0] is not None and names[1] is not None:
            by_name = dict(zip(names[0], old)), dict(zip(names[1], new))
            for name in [*names[1], *(n for n in names[0] if n not in by_name[1])]:
                _diff(f"{path}[name={name}]", by_name[0].get(name), by_name[1].get(name), out)
        elif len(old) == len(new):
            for i, (a, b) in enumerate(zip(old, new)):
                _diff(f"{path}[{i}]", a, b, out)
        else:
            out.append(FieldChange(path, old, new))
    else:
        out.append(FieldChange(path, old, new))


def _names(items: list[Any]) -> list[str] | None:
    """The `name` of each element when all are mappings with distinct names (containers, ports)."""
    if not items or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    names = [str(i["name"]) for i in items]
    return names if len(set(names)) == len(names) else None


# Prune -------------------------------------------------------------------------------------


def stale(inventory: Iterable[ClusterObject], desired: Iterable[ObjectId]) -> tuple[ClusterObject, ...]:
    """Inventory entries no longer rendered, in reverse apply order (dependents go first)."""
    wanted = set(desired)
    left = [entry for entry in inventory if entry.pruned_at is None and entry.object not in wanted]
    return tuple(sorted(left, key=lambda e: apply_order(e.object), reverse=True))


def prune_decision(kustomization: Kustomization, entry: ClusterObject,
                   live: Mapping[str, Any] | None) -> ObjectAction:
    """Delete a stale object only when pruning is on, it still carries this Kustomization's
    owner labels, and no label or annotation says `prune: disabled` or `reconcile: disabled`."""
    def action(change: Change, reason: str = "") -> ObjectAction:
        return ObjectAction(entry.object, entry.version, change, reason=reason)

    if live is None:
        return ObjectAction(entry.object, entry.version, Change.PRUNE, reason=ALREADY_GONE, gone=True)
    if not kustomization.prune:
        return action(Change.KEEP, "prune is off")
    labels = _labels(live)
    if (labels.get(NAME_LABEL), labels.get(NAMESPACE_LABEL)) != (kustomization.name, kustomization.namespace):
        return action(Change.KEEP, "no longer labelled as this Kustomization's")
    values = _metadata_values(live)
    for key in (PRUNE_KEY, RECONCILE_KEY):
        if DISABLED in (values.get(key, "").lower(), labels.get(key, "").lower()):
            return action(Change.KEEP, f"{key}: disabled")
    return action(Change.PRUNE)


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = _sub(obj, "metadata")
    labels = _sub(meta, "labels")
    return {str(k): str(v) for k, v in labels.items()}


def _metadata_values(obj: Mapping[str, Any]) -> dict[str, str]:
    """Labels and annotations together (annotations win): Flux matches its keys on either."""
    meta = _sub(obj, "metadata")
    notes = _sub(meta, "annotations")
    return {**_labels(obj), **{str(k): str(v) for k, v in notes.items()}}
