"""Writing the rule model as Flux YAML, the way `flux export` prints it.

The v1 of each group, keys in alphabetical order (Flux marshals through JSON), Go durations,
defaults omitted. gitward's own gates, which Flux has no field for, travel as `gitward.dev/*`
annotations that the reader takes back, and the Flux fields gitward does not model
(`flux_fields`) go back where they were read, so every model object round-trips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

import yaml

from engine.model import (
    DEFAULT_COMMIT_MESSAGE,
    DEFAULT_EXCLUSION_LIST,
    DigestReflection,
    FluxField,
    GitRef,
    GitSource,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    LayerSelector,
    OCISource,
    PolicyKind,
    Rule,
    Selector,
    SourceRef,
)
from engine.rules.duration import format_go
from engine.rules.fluxfields import place
from engine.rules.fluxapi import (
    ALLOW_ROLLBACK_ANNOTATION,
    HOLD_ANNOTATION,
    IMAGE_GROUP,
    KUSTOMIZE_GROUP,
    NEVER_DOWNGRADE_ANNOTATION,
    PAGE_SIZE_ANNOTATION,
    PIN_ANNOTATION,
    SOURCE_GROUP,
)


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """Block style, literal `|` for multi-line strings, no anchors."""

    def ignore_aliases(self, data: object) -> bool:
        return True


_UNICODE_BREAKS = ("\x85", "\u2028", "\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Literal blocks for multi-line text; double quotes (escaped) around Unicode line breaks,
    which PyYAML would otherwise write raw and read back as a folded space."""
    style = None
    if any(c in value for c in _UNICODE_BREAKS):
        style = '"'
    elif "\n" in value:
        style = "|"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_value(value: object, width: int = 80) -> str:
    """A YAML value as block text (patches read from deprecated inline forms, `flux` fields)."""
    return str(yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                         width=width))


def flux_expressible(rule: Rule) -> bool:
    """Whether Flux has a kind for `rule` (a marker dialect and a gitward alert have none)."""
    return type(rule) in _WRITERS


def write_flux(rules: Iterable[Rule]) -> str:
    """Flux YAML for the objects Flux can express (`---` before each); the others are skipped
    (see `flux_expressible`)."""
    docs = []
    for rule in rules:
        writer = _WRITERS.get(type(rule))
        if writer is not None:
            docs.append(writer(rule))
    if not docs:
        return ""
    return str(yaml.dump_all(
        docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
        explicit_start=True, allow_unicode=True, width=2**16,
    ))


def _manifest(group: str, kind: str, name: str, namespace: str, spec: dict[str, object],
              fields: tuple[FluxField, ...], annotations: dict[str, str] | None = None) -> dict[str, object]:
    metadata: dict[str, object] = {"annotations": annotations} if annotations else {}
    metadata.update(name=name, namespace=namespace)
    doc: dict[str, object] = {"apiVersion": f"{group}/v1", "kind": kind, "metadata": metadata, "spec": spec}
    for field in fields:
        place(doc, field)
    return doc


def _compact(fields: dict[str, object]) -> dict[str, object]:
    """Drop what Flux omits (empty strings, false, None, empty lists and maps); keys sorted."""
    return {k: fields[k] for k in sorted(fields) if fields[k] not in ("", False, None, [], {})}


def _go_minutes(value: timedelta) -> str:
    """Go form without hours (`90m0s`), for the timeouts whose Flux pattern has no `h`."""
    text = format_go(value)
    if "h" not in text:
        return text
    hours, _, rest = text.partition("h")
    minutes, _, seconds = rest.partition("m")
    return f"{int(hours) * 60 + int(minutes)}m{seconds}"


def _name_ref(name: str) -> dict[str, str] | None:
    return {"name": name} if name else None


def _git_ref_doc(ref: GitRef) -> dict[str, object]:
    return _compact({"branch": ref.branch, "commit": ref.commit, "name": ref.name, "semver": ref.semver, "tag": ref.tag})


def _pairs(pairs: tuple[tuple[str, str], ...]) -> dict[str, str] | None:
    return dict(pairs) or None


def _write_git_source(s: GitSource) -> dict[str, object]:
    spec = _compact({
        "ignore": s.ignore,
        "interval": format_go(s.interval),
        "proxySecretRef": _name_ref(s.proxy_secret_ref),
        "recurseSubmodules": s.recurse_submodules,
        "secretRef": _name_ref(s.secret_ref),
        "suspend": s.suspend,
        "timeout": None if s.timeout == timedelta(seconds=60) else _go_minutes(s.timeout),
        "url": s.url,
    })
    spec["ref"] = _git_ref_doc(s.ref)  # always written: no ref means "master" to Flux
    return _manifest(SOURCE_GROUP, s.KIND, s.name, s.namespace, dict(sorted(spec.items())), s.flux_fields)


def _write_oci_source(s: OCISource) -> dict[str, object]:
    ref = s.ref
    layer = s.layer_selector
    spec = _compact({
        "certSecretRef": _name_ref(s.cert_secret_ref),
        "ignore": s.ignore,
        "insecure": s.insecure,
        "interval": format_go(s.interval),
        "layerSelector": None if layer == LayerSelector() else _compact(
            {"mediaType": layer.media_type, "operation": layer.operation.value}),
        "provider": "" if s.provider == "generic" else s.provider,
        "proxySecretRef": _name_ref(s.proxy_secret_ref),
        "ref": _compact({"digest": ref.digest, "semver": ref.semver,
                         "semverFilter": ref.semver_filter, "tag": ref.tag}) or None,
        "secretRef": _name_ref(s.secret_ref),
        "serviceAccountName": s.service_account_name,
        "suspend": s.suspend,
        "timeout": None if s.timeout == timedelta(seconds=60) else _go_minutes(s.timeout),
        "url": s.url,
    })
    return _manifest(SOURCE_GROUP, s.KIND, s.name, s.namespace, spec, s.flux_fields)


def _source_ref_doc(ref: SourceRef) -> dict[str, object]:
    return _compact({"kind": ref.kind.value, "name": ref.name, "namespace": ref.namespace})


def _selector_doc(t: Selector) -> dict[str, object]:
    return _compact({
        "annotationSelector": t.annotation_selector, "group": t.group, "kind": t.kind,
        "labelSelector": t.label_selector, "name": t.name, "namespace": t.namespace, "version": t.version,
    })


def _write_kustomization(k: Kustomization) -> dict[str, object]:
    post = _compact({
        "substitute": _pairs(k.substitute),
        "substituteFrom": [
            _compact({"kind": s.kind, "name": s.name, "optional": s.optional}) for s in k.substitute_from
        ],
    })
    patches: list[dict[str, object]] = []
    for p in k.patches:
        entry: dict[str, object] = {"patch": p.patch}
        if p.target is not None:
            entry["target"] = _selector_doc(p.target)
        patches.append(entry)
    spec = _compact({
        "commonMetadata": _compact({"annotations": _pairs(k.common_annotations), "labels": _pairs(k.common_labels)}),
        "components": list(k.components),
        "dependsOn": [_compact({"name": d.name, "namespace": d.namespace}) for d in k.depends_on],
        "force": k.force,
        "healthChecks": [
            _compact({"apiVersion": c.api_version, "kind": c.kind, "name": c.name, "namespace": c.namespace})
            for c in k.health_checks
        ],
        "images": [
            _compact({"digest": i.digest, "name": i.name, "newName": i.new_name, "newTag": i.new_tag})
            for i in k.images
        ],
        "interval": format_go(k.interval),
        "namePrefix": k.name_prefix,
        "nameSuffix": k.name_suffix,
        "patches": patches,
        "path": k.path,
        "postBuild": post,
        "retryInterval": format_go(k.retry_interval) if k.retry_interval is not None else None,
        "serviceAccountName": k.service_account_name,
        "sourceRef": _source_ref_doc(k.source_ref),
        "suspend": k.suspend,
        "targetNamespace": k.target_namespace,
        "timeout": format_go(k.timeout) if k.timeout is not None else None,
        "wait": k.wait,
    })
    spec["prune"] = k.prune  # required by Flux, so written even when false
    return _manifest(KUSTOMIZE_GROUP, k.KIND, k.name, k.namespace, dict(sorted(spec.items())), k.flux_fields)


def _write_image_repository(r: ImageRepository) -> dict[str, object]:
    exclusions = None if r.exclusion_list == DEFAULT_EXCLUSION_LIST else list(r.exclusion_list)
    spec = _compact({
        "certSecretRef": _name_ref(r.cert_secret_ref),
        "exclusionList": exclusions,
        "image": r.image,
        "insecure": r.insecure,
        "interval": format_go(r.interval),
        "provider": None if r.provider == "generic" else r.provider,
        "proxySecretRef": _name_ref(r.proxy_secret_ref),
        "secretRef": _name_ref(r.secret_ref),
        "serviceAccountName": r.service_account_name,
        "suspend": r.suspend,
        "timeout": _go_minutes(r.timeout) if r.timeout is not None else None,
    })
    notes = {PAGE_SIZE_ANNOTATION: str(r.page_size)} if r.page_size != 1000 else None
    return _manifest(IMAGE_GROUP, r.KIND, r.name, r.namespace, spec, r.flux_fields, notes)


def _write_image_policy(p: ImagePolicy) -> dict[str, object]:
    c = p.choice
    rule: dict[str, object] = {"range": c.range} if c.kind is PolicyKind.SEMVER else {"order": c.direction.flux_order}
    spec = _compact({
        "digestReflectionPolicy": None if p.digest_reflection is DigestReflection.NEVER else p.digest_reflection.value,
        "filterTags": _compact({"extract": p.filter.extract}) | {"pattern": p.filter.pattern} if p.filter else None,
        "imageRepositoryRef": _compact({"name": p.repository.name, "namespace": p.repository.namespace}),
        "interval": format_go(p.interval) if p.interval is not None else None,
        "policy": {c.kind.value: rule},
        "suspend": p.suspend,
    })
    notes = _compact({
        HOLD_ANNOTATION: format_go(p.hold) if p.hold is not None else None,
        NEVER_DOWNGRADE_ANNOTATION: "true" if p.never_downgrade else None,
        PIN_ANNOTATION: p.pin,
        ALLOW_ROLLBACK_ANNOTATION: "true" if p.allow_rollback else None,
    })
    return _manifest(IMAGE_GROUP, p.KIND, p.name, p.namespace, spec, p.flux_fields,
                     {k: str(v) for k, v in notes.items()})


def _write_image_update(u: ImageUpdate) -> dict[str, object]:
    commit = _compact({
        "author": _compact({"email": u.author.email, "name": u.author.name}),
        "messageTemplate": None if u.message_template == DEFAULT_COMMIT_MESSAGE else u.message_template,
        "messageTemplateValues": _pairs(u.message_template_values),
        "signingKey": {"secretRef": {"name": u.signing_key_secret}} if u.signing_key_secret else None,
    })
    git = _compact({
        "checkout": {"ref": _git_ref_doc(u.checkout_ref)} if u.checkout_ref is not None else None,
        "commit": commit,
        "push": _compact({"branch": u.push_branch, "options": _pairs(u.push_options), "refspec": u.push_refspec}),
    })
    spec = _compact({
        "git": git,
        "interval": format_go(u.interval),
        "policySelector": {"matchLabels": dict(u.policy_selector)} if u.policy_selector else None,
        "sourceRef": _source_ref_doc(u.source_ref),
        "suspend": u.suspend,
        "update": _compact({"path": u.path, "strategy": "Setters"}),
    })
    return _manifest(IMAGE_GROUP, u.KIND, u.name, u.namespace, spec, u.flux_fields)


_WRITERS: dict[type, Callable[..., dict[str, object]]] = {
    GitSource: _write_git_source,
    OCISource: _write_oci_source,
    Kustomization: _write_kustomization,
    ImageRepository: _write_image_repository,
    ImagePolicy: _write_image_policy,
    ImageUpdate: _write_image_update,
}
