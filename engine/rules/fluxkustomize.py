"""Reading a Flux Kustomization (kustomize.toolkit.fluxcd.io) into the model.

Deprecated forms with a model equivalent are read into it (`patchesStrategicMerge` and
`patchesJson6902` become Patches, with a warning).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import yaml

from engine.model import (
    HealthCheck,
    ImageOverride,
    Kustomization,
    NamespacedRef,
    Patch,
    Selector,
    SourceRef,
    SubstituteFrom,
)
from engine.rules.fluxapi import IGNORED_FIELD
from engine.rules.fluxmanifest import Manifest, or_else, read_header, read_source_ref
from engine.rules.fluxwrite import dump_value
from engine.rules.yamldoc import Struct

_SELECTOR = ("group", "version", "kind", "name", "namespace", "labelSelector", "annotationSelector")


def read_kustomization(m: Manifest) -> Kustomization | None:
    beta = m.version != "v1"
    known = [
        "commonMetadata", "dependsOn", "interval", "retryInterval", "path", "postBuild", "prune",
        "healthChecks", "namePrefix", "nameSuffix", "patches", "images", "serviceAccountName",
        "sourceRef", "suspend", "targetNamespace", "timeout", "force", "wait", "components",
        "kubeConfig",
    ]
    ignored = {
        "decryption": "manifests are applied as they are in git",
        "healthCheckExprs": "CEL expressions are not evaluated: an object's health is judged by "
                            "gitward's own checks for its kind",
        "deletionPolicy": "when the Kustomization is deleted, gitward leaves its objects in the cluster",
        "ignoreMissingComponents": "a component that does not exist fails the build",
        "driftIgnoreRules": "every field gitward applies is kept as in git",
    }
    removed = "removed in kustomize.toolkit.fluxcd.io/v1: use spec.patches"
    unavailable: dict[str, str] = {}
    retired: dict[str, str] = {}
    if beta:
        known += ["patchesStrategicMerge", "patchesJson6902"]
        retired = {"validation": "deprecated by Flux", "serviceAccount": "deprecated by Flux: use serviceAccountName"}
    else:
        unavailable = {
            "patchesStrategicMerge": removed, "patchesJson6902": removed,
            "validation": "removed in kustomize.toolkit.fluxcd.io/v1",
        }
    h = read_header(m, known, ignored=ignored, retired=retired, unavailable=unavailable)
    spec = h.spec
    if spec is None:
        return None
    spec.require("prune")
    source_ref = read_source_ref(spec)
    depends_on = []
    for where, item in spec.items("dependsOn"):
        dep = spec.child(where, item, ("name", "namespace"), ignored={
            "readyExpr": "a dependency counts as ready when its last reconcile by gitward succeeded"})
        name = or_else(dep.string("name", required=True), "")
        depends_on.append(NamespacedRef(name, or_else(dep.string("namespace"), ""), origin=dep.pos("name")))
    _kube_config(spec)
    common = spec.struct("commonMetadata", ("labels", "annotations"))
    post = spec.struct("postBuild", ("substitute", "substituteFrom"))
    return Kustomization(
        name=h.name,
        source_ref=or_else(source_ref, SourceRef("")),
        namespace=h.namespace,
        path=or_else(spec.string("path"), ""),
        interval=or_else(spec.duration("interval", required=True), timedelta(minutes=10)),
        retry_interval=spec.duration("retryInterval"),
        timeout=spec.duration("timeout"),
        prune=bool(spec.boolean("prune")),
        wait=bool(spec.boolean("wait")),
        force=bool(spec.boolean("force")),
        suspend=bool(spec.boolean("suspend")),
        target_namespace=or_else(spec.string("targetNamespace"), ""),
        name_prefix=or_else(spec.string("namePrefix"), ""),
        name_suffix=or_else(spec.string("nameSuffix"), ""),
        service_account_name=or_else(spec.string("serviceAccountName"), ""),
        depends_on=tuple(depends_on),
        common_labels=common.str_map("labels") if common else (),
        common_annotations=common.str_map("annotations") if common else (),
        images=tuple(_images(spec)),
        patches=tuple(_patches(spec)),
        substitute=post.str_map("substitute") if post else (),
        substitute_from=tuple(_substitute_from(post)) if post else (),
        health_checks=tuple(_health_checks(spec)),
        components=spec.str_list("components"),
        flux_fields=h.carried.flux_fields(),
        origin=m.origin,
    )


def _kube_config(spec: Struct) -> None:
    """`spec.kubeConfig`: the Secret (or ConfigMap) naming another cluster, checked and carried
    (so that discovery and `convert` know of it; gitward applies to the cluster it is
    configured for only)."""
    sub = spec.struct("kubeConfig", ("secretRef", "configMapRef"))
    if sub is None:
        return
    for field in ("secretRef", "configMapRef"):
        ref = sub.struct(field, ("name", "key"))
        if ref is not None:
            ref.string("name", required=True)
            ref.string("key")
    spec.warning("kubeConfig", "gitward applies to the cluster it is configured for, not to the "
                 "cluster this Secret names: this Kustomization is not applied, and the Flux "
                 "objects it renders are not read", at_key=True, code=IGNORED_FIELD)
    spec.carry("kubeConfig")


def _images(spec: Struct) -> Iterable[ImageOverride]:
    for where, item in spec.items("images"):
        sub = spec.child(where, item, ("name", "newName", "newTag", "digest"))
        yield ImageOverride(
            name=or_else(sub.string("name", required=True), ""),
            new_name=or_else(sub.string("newName"), ""),
            new_tag=or_else(sub.string("newTag"), ""),
            digest=or_else(sub.string("digest"), ""),
            origin=sub.doc.pos(item),
        )


def _selector(sub: Struct | None) -> Selector | None:
    if sub is None:
        return None
    keys = ("group", "version", "kind", "name", "namespace", "label_selector", "annotation_selector")
    return Selector(**{key: or_else(sub.string(field), "") for key, field in zip(keys, _SELECTOR)})


def _patches(spec: Struct) -> Iterable[Patch]:
    for where, item in spec.items("patches"):
        sub = spec.child(where, item, ("patch", "target"))
        text = or_else(sub.string("patch", required=True), "")
        yield Patch(text, _selector(sub.struct("target", _SELECTOR)), origin=sub.doc.pos(item))
    deprecated = "deprecated by Flux: read as spec.patches"
    for where, item in spec.items("patchesStrategicMerge"):
        if not isinstance(item, yaml.MappingNode):
            spec.problems.error(f"{where}: expected a mapping (an inline patch)", spec.doc.pos(item))
            continue
        spec.problems.warning(f"{where}: {deprecated}", spec.doc.pos(item))
        yield Patch(dump_value(spec.doc.to_python(item)), origin=spec.doc.pos(item))
    for where, item in spec.items("patchesJson6902"):
        sub = spec.child(where, item, ("patch", "target"))
        target = _selector(sub.struct("target", _SELECTOR, required=True))
        ops = sub.value("patch", required=True)
        if ops is not None and not isinstance(ops, yaml.SequenceNode):
            sub.error("patch", "expected a list of JSON6902 operations")
            continue
        spec.problems.warning(f"{where}: {deprecated}", spec.doc.pos(item))
        text = dump_value(spec.doc.to_python(ops)) if ops is not None else ""
        yield Patch(text, target or Selector(), origin=spec.doc.pos(item))


def _substitute_from(post: Struct) -> Iterable[SubstituteFrom]:
    for where, item in post.items("substituteFrom"):
        sub = post.child(where, item, ("kind", "name", "optional"))
        sub.require("kind")
        yield SubstituteFrom(
            kind=or_else(sub.enum("kind", ("ConfigMap", "Secret")), ""),
            name=or_else(sub.string("name", required=True), ""),
            optional=bool(sub.boolean("optional")),
            origin=sub.doc.pos(item),
        )


def _health_checks(spec: Struct) -> Iterable[HealthCheck]:
    for where, item in spec.items("healthChecks"):
        sub = spec.child(where, item, ("apiVersion", "kind", "name", "namespace"))
        yield HealthCheck(
            api_version=or_else(sub.string("apiVersion"), ""),
            kind=or_else(sub.string("kind", required=True), ""),
            name=or_else(sub.string("name", required=True), ""),
            namespace=or_else(sub.string("namespace"), ""),
            origin=sub.doc.pos(item),
        )
