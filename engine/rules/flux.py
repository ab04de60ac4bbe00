"""Flux manifests <-> the rule model.

`read_flux` turns the Flux documents of a YAML file (GitRepository, Kustomization,
ImageRepository, ImagePolicy, ImageUpdateAutomation at v1, v1beta2 or v1beta1) into model
objects and reports every problem of the file at its field: a wrong type, a missing or unknown
field, a bad duration or enum value. Fields Flux has and gitward does not model are warnings.
Other documents are not ours and are skipped. Deprecated forms with a model equivalent are read
into it (`patchesJson6902` becomes a Patch with a target).

`write_flux` prints objects as `flux export` does: the v1 of each group, keys in alphabetical
order (Flux marshals through JSON), Go durations, defaults omitted. gitward's own gates, which
Flux has no field for, travel as `gitward.dev/*` annotations and are read back, so every model
object round-trips.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar
from urllib.parse import urlsplit

import yaml

from engine.errors import Problems, SourcePos, did_you_mean
from engine.model import (
    DEFAULT_COMMIT_MESSAGE,
    DEFAULT_EXCLUSION_LIST,
    DEFAULT_NAMESPACE,
    CommitAuthor,
    DigestReflection,
    Direction,
    GitRef,
    GitSource,
    HealthCheck,
    ImageOverride,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    NamespacedRef,
    Patch,
    PolicyChoice,
    PolicyKind,
    Rule,
    Selector,
    SourceKind,
    SourceRef,
    SubstituteFrom,
    TagFilter,
)
from engine.rules.duration import DurationError, format_go, parse_duration
from engine.rules.yamldoc import Document, Struct, YamlSyntaxError, load_documents

SOURCE_GROUP = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
IMAGE_GROUP = "image.toolkit.fluxcd.io"
VERSIONS = ("v1", "v1beta2", "v1beta1")
"""API versions read, newest first; the writer uses v1."""

PAGE_SIZE_ANNOTATION = "gitward.dev/page-size"
HOLD_ANNOTATION = "gitward.dev/hold"
NEVER_DOWNGRADE_ANNOTATION = "gitward.dev/never-downgrade"
PIN_ANNOTATION = "gitward.dev/pin"
_GITWARD_PREFIX = "gitward.dev/"

_AGE = {"v1beta1": 0, "v1beta2": 1, "v1": 2}
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_METADATA = (
    "name", "namespace", "labels", "annotations", "generateName", "uid", "resourceVersion",
    "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
    "ownerReferences", "finalizers", "managedFields", "selfLink", "clusterName",
)
_GIT_REF = ("branch", "tag", "semver", "name", "commit")
_SELECTOR = ("group", "version", "kind", "name", "namespace", "labelSelector", "annotationSelector")
_OTHER_SOURCES = ("OCIRepository", "Bucket", "ExternalArtifact")
_POLICY_KINDS = ("semver", "alphabetical", "numerical")  # Flux's precedence
_MAX_EXCLUSIONS = 25

T = TypeVar("T")


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


@dataclass(frozen=True)
class _Manifest:
    """One Flux document being read: its version, and where its object is said to be."""

    doc: Document
    problems: Problems
    api_version: str
    version: str
    origin: SourcePos

    def since(self, fields: Mapping[str, str]) -> dict[str, str]:
        """Fields added after this document's version -> the error their presence is."""
        return {
            name: f"not available in {self.api_version} (added in {added})"
            for name, added in fields.items()
            if _AGE[self.version] < _AGE[added]
        }


# --------------------------------------------------------------------------------------------
# reading


def read_flux(path: str, text: str, problems: Problems) -> list[Rule]:
    """The Flux objects of a (multi-document) YAML file; every problem goes to `problems`.

    An object with an error is left out; the others load. A YAML syntax error loses the file.
    """
    try:
        docs = load_documents(path, text)
    except YamlSyntaxError as err:
        problems.extend([err.problem])
        return []
    rules: list[Rule] = []
    for doc in docs:
        before = len(problems.errors)
        try:
            rule = _read_document(doc, problems)
        except YamlSyntaxError as err:
            problems.extend([err.problem])
            continue
        except RecursionError:
            problems.error(f"document {doc.number}: nested too deeply", SourcePos(path, syntax="flux"))
            continue
        if rule is not None and len(problems.errors) == before:
            rules.append(rule)
    return rules


def _read_document(doc: Document, problems: Problems) -> Rule | None:
    node = doc.node
    if not isinstance(node, yaml.MappingNode):
        return None
    fields: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and isinstance(value, yaml.ScalarNode) and value.tag.endswith(":str"):
            fields.setdefault(str(key.value), (key, value))
    if "apiVersion" not in fields or "kind" not in fields:
        return None
    api_version, kind = fields["apiVersion"][1].value, fields["kind"][1].value
    group, _, version = api_version.rpartition("/")
    reader = _READERS.get((group, kind))
    if reader is None:
        return None
    if version not in VERSIONS:
        problems.error(
            f'{kind} apiVersion "{api_version}" is not supported: use {group}/v1 (or v1beta2, v1beta1)',
            doc.pos(fields["apiVersion"][1]),
        )
        return None
    kind_key, kind_value = fields["kind"]
    start, end = doc.pos(kind_key), doc.pos(kind_value)
    origin = SourcePos(doc.path, start.line, start.column, end.end_line, end.end_column, syntax="flux")
    return reader(_Manifest(doc, problems, api_version, version, origin))


@dataclass(frozen=True)
class _Header:
    name: str
    namespace: str
    spec: Struct | None
    annotations: dict[str, tuple[str, SourcePos]]


def _header(
    m: _Manifest,
    spec_fields: Iterable[str],
    *,
    ignored: Mapping[str, str] | None = None,
    unavailable: Mapping[str, str] | None = None,
    annotations: Iterable[str] = (),
) -> _Header:
    assert m.doc.node is not None
    top = Struct(m.doc, m.problems, m.doc.node, "", ("apiVersion", "kind", "metadata", "spec", "status"))
    meta = top.struct("metadata", _METADATA, required=True)
    name, namespace = "", DEFAULT_NAMESPACE
    notes: dict[str, tuple[str, SourcePos]] = {}
    if meta is not None:
        name = _or(meta.string("name", required=True), "")
        if name and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name)):
            meta.error("name", f'"{name}" is not a valid Kubernetes name (lower-case letters, digits, "-" and ".")')
        namespace = _or(meta.string("namespace"), "") or DEFAULT_NAMESPACE
        if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
            meta.error("namespace", f'"{namespace}" is not a valid namespace (lower-case letters, digits and "-")')
        notes = _gitward_annotations(meta, tuple(annotations))
    spec = top.struct("spec", tuple(spec_fields), required=True, ignored=ignored, unavailable=unavailable)
    return _Header(name, namespace, spec, notes)


def _gitward_annotations(meta: Struct, allowed: tuple[str, ...]) -> dict[str, tuple[str, SourcePos]]:
    """The `gitward.dev/*` annotations this kind reads, as text with the value's position."""
    sub = meta.struct("annotations", (), open_keys=True)
    found: dict[str, tuple[str, SourcePos]] = {}
    if sub is None:
        return found
    for key in sub.names():
        if not key.startswith(_GITWARD_PREFIX):
            continue
        if key not in allowed:
            sub.problems.warning(
                f'{sub.where}: annotation "{key}" means nothing to gitward here{did_you_mean(key, allowed)}',
                sub.key_pos(key),
            )
            continue
        text = sub.string(key)
        if text is not None:
            found[key] = (text, sub.pos(key))
    return found


def _local_ref(struct: Struct, key: str) -> str:
    """A `{name: ...}` reference (secretRef and friends) -> the name."""
    sub = struct.struct(key, ("name",))
    return _or(sub.string("name", required=True), "") if sub else ""


def _git_ref(struct: Struct, key: str, required: bool = False) -> GitRef | None:
    sub = struct.struct(key, _GIT_REF, required=required)
    if sub is None:
        return None
    return GitRef(**{field: _or(sub.string(field), "") for field in _GIT_REF})


def _source_ref(spec: Struct, *, default_kind: str = "") -> SourceRef | None:
    """`spec.sourceRef`; only GitRepository sources exist in gitward today."""
    sub = spec.struct(
        "sourceRef", ("kind", "name", "namespace"), required=True,
        ignored={"apiVersion": "the source is always source.toolkit.fluxcd.io"},
    )
    if sub is None:
        return None
    kind = sub.string("kind", required=not default_kind) or default_kind
    if kind != SourceKind.GIT_REPOSITORY:
        if kind in _OTHER_SOURCES and not default_kind:
            sub.error("kind", f"{kind} sources are not supported by gitward yet (only GitRepository)")
        elif kind:
            sub.error("kind", f'must be GitRepository, got "{kind}"{did_you_mean(kind, [SourceKind.GIT_REPOSITORY.value])}')
    name = _or(sub.string("name", required=True), "")
    return SourceRef(name, _or(sub.string("namespace"), ""), origin=sub.pos("name"))


def _read_git_repository(m: _Manifest) -> GitSource | None:
    beta = {"gitImplementation": "deprecated by Flux", "accessFrom": ""} if m.version != "v1" else {}
    h = _header(
        m,
        ("url", "secretRef", "interval", "timeout", "ref", "ignore", "suspend", "recurseSubmodules"),
        ignored={
            "provider": "", "serviceAccountName": "", "proxySecretRef": "", "include": "",
            "verify": "commit signatures are not verified",
            "sparseCheckout": "the whole repository is checked out", **beta,
        },
    )
    spec = h.spec
    if spec is None:
        return None
    url = _or(spec.string("url", required=True), "")
    if url:
        _check_git_url(spec, url)
    return GitSource(
        name=h.name,
        url=url,
        namespace=h.namespace,
        ref=_or(_git_ref(spec, "ref"), GitRef(branch="master")),
        interval=_or(spec.duration("interval", required=True), timedelta(minutes=1)),
        timeout=_or(spec.duration("timeout", hours=False), timedelta(seconds=60)),
        secret_ref=_local_ref(spec, "secretRef"),
        ignore=_or(spec.string("ignore"), ""),
        suspend=bool(spec.boolean("suspend")),
        recurse_submodules=bool(spec.boolean("recurseSubmodules")),
        origin=m.origin,
    )


def _check_git_url(spec: Struct, url: str) -> None:
    """No credentials (they belong in the Secret, never in gitward's DB), then Flux's pattern.

    A URL with credentials is reported at `spec:` with the line named, so that the excerpt
    printed under the error does not show the secret; no message repeats the URL.
    """
    try:
        parts = urlsplit(url)
        password, user = parts.password, parts.username
    except ValueError:
        spec.error("url", "is not a valid URL")
        return
    if password is not None or (user and parts.scheme in ("http", "https")):
        line = spec.pos("url").line
        spec.problems.error(
            f"spec.url (line {line}) carries credentials: put them in the Secret named by spec.secretRef",
            spec.doc.pos(spec.at),
        )
    elif parts.scheme not in ("http", "https", "ssh") or not url.startswith(f"{parts.scheme}://"):
        spec.error("url", "must start with http://, https:// or ssh://")


def _read_kustomization(m: _Manifest) -> Kustomization | None:
    beta = m.version != "v1"
    known = [
        "commonMetadata", "dependsOn", "interval", "retryInterval", "path", "postBuild", "prune",
        "healthChecks", "namePrefix", "nameSuffix", "patches", "images", "serviceAccountName",
        "sourceRef", "suspend", "targetNamespace", "timeout", "force", "wait", "components",
    ]
    ignored = {
        "decryption": "manifests are applied as they are in git", "kubeConfig": "",
        "healthCheckExprs": "", "deletionPolicy": "", "ignoreMissingComponents": "",
        "driftIgnoreRules": "",
    }
    removed = "removed in kustomize.toolkit.fluxcd.io/v1: use spec.patches"
    unavailable: dict[str, str] = {}
    if beta:
        known += ["patchesStrategicMerge", "patchesJson6902"]
        ignored["validation"] = "deprecated by Flux"
        ignored["serviceAccount"] = "deprecated by Flux: use serviceAccountName"
    else:
        unavailable = {
            "patchesStrategicMerge": removed, "patchesJson6902": removed,
            "validation": "removed in kustomize.toolkit.fluxcd.io/v1",
        }
    h = _header(m, known, ignored=ignored, unavailable=unavailable)
    spec = h.spec
    if spec is None:
        return None
    spec.require("prune")
    source_ref = _source_ref(spec)
    depends_on = []
    for where, item in spec.items("dependsOn"):
        dep = spec.child(where, item, ("name", "namespace"), ignored={"readyExpr": ""})
        name = _or(dep.string("name", required=True), "")
        depends_on.append(NamespacedRef(name, _or(dep.string("namespace"), ""), origin=dep.pos("name")))
    common = spec.struct("commonMetadata", ("labels", "annotations"))
    post = spec.struct("postBuild", ("substitute", "substituteFrom"))
    return Kustomization(
        name=h.name,
        source_ref=_or(source_ref, SourceRef("")),
        namespace=h.namespace,
        path=_or(spec.string("path"), ""),
        interval=_or(spec.duration("interval", required=True), timedelta(minutes=10)),
        retry_interval=spec.duration("retryInterval"),
        timeout=spec.duration("timeout"),
        prune=bool(spec.boolean("prune")),
        wait=bool(spec.boolean("wait")),
        force=bool(spec.boolean("force")),
        suspend=bool(spec.boolean("suspend")),
        target_namespace=_or(spec.string("targetNamespace"), ""),
        name_prefix=_or(spec.string("namePrefix"), ""),
        name_suffix=_or(spec.string("nameSuffix"), ""),
        service_account_name=_or(spec.string("serviceAccountName"), ""),
        depends_on=tuple(depends_on),
        common_labels=common.str_map("labels") if common else (),
        common_annotations=common.str_map("annotations") if common else (),
        images=tuple(_images(spec)),
        patches=tuple(_patches(spec)),
        substitute=post.str_map("substitute") if post else (),
        substitute_from=tuple(_substitute_from(post)) if post else (),
        health_checks=tuple(_health_checks(spec)),
        components=spec.str_list("components"),
        origin=m.origin,
    )


def _images(spec: Struct) -> Iterable[ImageOverride]:
    for where, item in spec.items("images"):
        sub = spec.child(where, item, ("name", "newName", "newTag", "digest"))
        yield ImageOverride(
            name=_or(sub.string("name", required=True), ""),
            new_name=_or(sub.string("newName"), ""),
            new_tag=_or(sub.string("newTag"), ""),
            digest=_or(sub.string("digest"), ""),
            origin=sub.doc.pos(item),
        )


def _selector(sub: Struct | None) -> Selector | None:
    if sub is None:
        return None
    keys = ("group", "version", "kind", "name", "namespace", "label_selector", "annotation_selector")
    return Selector(**{key: _or(sub.string(field), "") for key, field in zip(keys, _SELECTOR)})


def _patches(spec: Struct) -> Iterable[Patch]:
    for where, item in spec.items("patches"):
        sub = spec.child(where, item, ("patch", "target"))
        text = _or(sub.string("patch", required=True), "")
        yield Patch(text, _selector(sub.struct("target", _SELECTOR)), origin=sub.doc.pos(item))
    deprecated = "deprecated by Flux: read as spec.patches"
    for where, item in spec.items("patchesStrategicMerge"):
        if not isinstance(item, yaml.MappingNode):
            spec.problems.error(f"{where}: expected a mapping (an inline patch)", spec.doc.pos(item))
            continue
        spec.problems.warning(f"{where}: {deprecated}", spec.doc.pos(item))
        yield Patch(_dump_value(spec.doc.to_python(item)), origin=spec.doc.pos(item))
    for where, item in spec.items("patchesJson6902"):
        sub = spec.child(where, item, ("patch", "target"))
        target = _selector(sub.struct("target", _SELECTOR, required=True))
        ops = sub.value("patch", required=True)
        if ops is not None and not isinstance(ops, yaml.SequenceNode):
            sub.error("patch", "expected a list of JSON6902 operations")
            continue
        spec.problems.warning(f"{where}: {deprecated}", spec.doc.pos(item))
        text = _dump_value(spec.doc.to_python(ops)) if ops is not None else ""
        yield Patch(text, target or Selector(), origin=spec.doc.pos(item))


def _substitute_from(post: Struct) -> Iterable[SubstituteFrom]:
    for where, item in post.items("substituteFrom"):
        sub = post.child(where, item, ("kind", "name", "optional"))
        sub.require("kind")
        yield SubstituteFrom(
            kind=_or(sub.enum("kind", ("ConfigMap", "Secret")), ""),
            name=_or(sub.string("name", required=True), ""),
            optional=bool(sub.boolean("optional")),
            origin=sub.doc.pos(item),
        )


def _health_checks(spec: Struct) -> Iterable[HealthCheck]:
    for where, item in spec.items("healthChecks"):
        sub = spec.child(where, item, ("apiVersion", "kind", "name", "namespace"))
        yield HealthCheck(
            api_version=_or(sub.string("apiVersion"), ""),
            kind=_or(sub.string("kind", required=True), ""),
            name=_or(sub.string("name", required=True), ""),
            namespace=_or(sub.string("namespace"), ""),
            origin=sub.doc.pos(item),
        )


def _read_image_repository(m: _Manifest) -> ImageRepository | None:
    h = _header(
        m,
        ("image", "interval", "timeout", "secretRef", "proxySecretRef", "serviceAccountName",
         "certSecretRef", "suspend", "exclusionList", "provider", "insecure"),
        ignored={"accessFrom": "cross-namespace policies are not checked against it"},
        annotations=(PAGE_SIZE_ANNOTATION,),
    )
    spec = h.spec
    if spec is None:
        return None
    image = _or(spec.string("image", required=True), "")
    if image:
        _check_image(spec, image)
    exclusions = spec.str_list("exclusionList")
    if len(exclusions) > _MAX_EXCLUSIONS:
        spec.error("exclusionList", f"at most {_MAX_EXCLUSIONS} patterns (Flux's limit), got {len(exclusions)}")
    page_size = 1000
    if PAGE_SIZE_ANNOTATION in h.annotations:
        text, pos = h.annotations[PAGE_SIZE_ANNOTATION]
        if text.isdigit() and 0 < int(text) <= 1_000_000:
            page_size = int(text)
        else:
            spec.problems.error(f'annotation {PAGE_SIZE_ANNOTATION}: expected a whole number from 1 to 1000000, got "{text}"', pos)
    return ImageRepository(
        name=h.name,
        image=image,
        namespace=h.namespace,
        interval=_or(spec.duration("interval", required=True), timedelta(minutes=5)),
        timeout=spec.duration("timeout", hours=False),
        secret_ref=_local_ref(spec, "secretRef"),
        cert_secret_ref=_local_ref(spec, "certSecretRef"),
        proxy_secret_ref=_local_ref(spec, "proxySecretRef"),
        service_account_name=_or(spec.string("serviceAccountName"), ""),
        provider=_or(spec.enum("provider", ("generic", "aws", "azure", "gcp"), "generic"), "generic"),
        insecure=bool(spec.boolean("insecure")),
        suspend=bool(spec.boolean("suspend")),
        exclusion_list=exclusions or DEFAULT_EXCLUSION_LIST,
        page_size=page_size,
        origin=m.origin,
    )


def _check_image(spec: Struct, image: str) -> None:
    """Flux refuses an image with a scheme, a tag or a digest (ImageURLInvalid)."""
    if "://" in image:
        spec.error("image", f"image '{image}' should not include URL scheme; remove '{image.split('://')[0]}://'")
    elif "@" in image:
        spec.error("image", f"image '{image}' should not include a digest; remove '@{image.split('@', 1)[1]}'")
    elif ":" in image.rsplit("/", 1)[-1]:
        spec.error("image", f"image '{image}' should not include a tag; remove ':{image.rsplit(':', 1)[1]}'")


def _read_image_policy(m: _Manifest) -> ImagePolicy | None:
    h = _header(
        m,
        ("imageRepositoryRef", "policy", "filterTags", "digestReflectionPolicy", "interval", "suspend"),
        unavailable=m.since({"digestReflectionPolicy": "v1beta2", "interval": "v1beta2", "suspend": "v1"}),
        annotations=(HOLD_ANNOTATION, NEVER_DOWNGRADE_ANNOTATION, PIN_ANNOTATION),
    )
    spec = h.spec
    if spec is None:
        return None
    ref = spec.struct("imageRepositoryRef", ("name", "namespace"), required=True)
    repository = NamespacedRef("")
    if ref is not None:
        repository = NamespacedRef(_or(ref.string("name", required=True), ""), _or(ref.string("namespace"), ""), origin=ref.pos("name"))
    choice = _policy_choice(spec)
    filter_ = None
    tags = spec.struct("filterTags", ("pattern", "extract"))
    if tags is not None:
        filter_ = TagFilter(_or(tags.string("pattern"), ""), _or(tags.string("extract"), ""), origin=spec.key_pos("filterTags"))
    reflection = DigestReflection(_or(spec.enum("digestReflectionPolicy", [d.value for d in DigestReflection], "Never"), "Never"))
    interval = spec.duration("interval")
    if spec.has("interval") and reflection is not DigestReflection.ALWAYS:
        spec.error("interval", "only accepted when spec.digestReflectionPolicy is Always")
    elif reflection is DigestReflection.ALWAYS and not spec.has("interval"):
        spec.error("digestReflectionPolicy", "Always needs spec.interval (how often to refresh the digest)")
    return ImagePolicy(
        name=h.name,
        repository=repository,
        choice=_or(choice, PolicyChoice(PolicyKind.SEMVER)),
        namespace=h.namespace,
        filter=filter_,
        digest_reflection=reflection,
        interval=interval,
        suspend=bool(spec.boolean("suspend")),
        hold=_hold(spec, h.annotations),
        never_downgrade=_flag(spec, h.annotations, NEVER_DOWNGRADE_ANNOTATION),
        pin=h.annotations[PIN_ANNOTATION][0] if PIN_ANNOTATION in h.annotations else "",
        origin=m.origin,
    )


def _policy_choice(spec: Struct) -> PolicyChoice | None:
    """Flux takes the first of semver, alphabetical, numerical that is set; each is checked."""
    policy = spec.struct("policy", _POLICY_KINDS, required=True)
    if policy is None or policy.broken:
        return None
    present = [k for k in _POLICY_KINDS if policy.has(k)]
    if not present:
        spec.error("policy", "set one of semver, alphabetical or numerical", at_key=True)
        return None
    if len(present) > 1:
        spec.warning(
            "policy",
            f"sets {' and '.join(present)}: Flux uses {present[0]} (semver, then alphabetical, then numerical)",
            at_key=True,
        )
    choices = []
    for kind in present:
        origin = policy.key_pos(kind)
        if kind == "semver":
            sub = policy.struct(kind, ("range",))
            text = _or(sub.string("range", required=True), "") if sub else ""
            choices.append(PolicyChoice(PolicyKind.SEMVER, Direction.HIGHEST, text, origin=origin))
            continue
        sub = policy.struct(kind, ("order",))
        order = _or(sub.string("order"), "asc") if sub else "asc"
        if sub is not None and order.lower() not in ("asc", "desc"):
            sub.error("order", f'must be asc or desc, got "{order}"')
        elif sub is not None and order not in ("asc", "desc"):
            sub.warning("order", f'Flux reads "{order}" as {order.lower()}, but its CRD only admits lower-case asc or desc')
        choices.append(PolicyChoice(PolicyKind(kind), Direction.from_flux_order(order), origin=origin))
    return choices[0]


def _hold(spec: Struct, notes: dict[str, tuple[str, SourcePos]]) -> timedelta | None:
    if HOLD_ANNOTATION not in notes:
        return None
    text, pos = notes[HOLD_ANNOTATION]
    try:
        return parse_duration(text)
    except DurationError as err:
        spec.problems.error(f"annotation {HOLD_ANNOTATION}: {err}", pos)
        return None


def _flag(spec: Struct, notes: dict[str, tuple[str, SourcePos]], key: str) -> bool:
    if key not in notes:
        return False
    text, pos = notes[key]
    if text not in ("true", "false"):
        spec.problems.error(f'annotation {key}: expected "true" or "false", got "{text}"', pos)
    return text == "true"


def _read_image_update(m: _Manifest) -> ImageUpdate | None:
    h = _header(
        m,
        ("sourceRef", "git", "interval", "policySelector", "update", "suspend"),
        unavailable=m.since({"policySelector": "v1beta2"}),
    )
    spec = h.spec
    if spec is None:
        return None
    source_ref = _source_ref(spec, default_kind=SourceKind.GIT_REPOSITORY.value)
    git = spec.struct("git", ("checkout", "commit", "push"), required=True)
    checkout_ref = None
    author, message, signing = CommitAuthor("", ""), "", ""
    values: tuple[tuple[str, str], ...] = ()
    push_options: tuple[tuple[str, str], ...] = ()
    push_branch, push_refspec = "", ""
    if git is not None:
        checkout = git.struct("checkout", ("ref",))
        checkout_ref = _git_ref(checkout, "ref", required=True) if checkout else None
        commit = git.struct(
            "commit", ("author", "signingKey", "messageTemplate", "messageTemplateValues"), required=True,
            unavailable=m.since({"messageTemplateValues": "v1beta2"}),
        )
        if commit is not None:
            who = commit.struct("author", ("name", "email"), required=True)
            if who is not None:
                author = CommitAuthor(_or(who.string("name"), ""), _or(who.string("email", required=True), ""))
            message = _or(commit.string("messageTemplate"), "")
            values = commit.str_map("messageTemplateValues")
            key = commit.struct("signingKey", ("secretRef", "type"))
            if key is not None:
                signing = _local_ref(key, "secretRef")
                key.require("secretRef")
                if key.enum("type", ("gpg", "ssh")) == "ssh":
                    key.warning("type", "ssh signing keys are not supported by gitward yet (it signs with gpg)")
        push = git.struct("push", ("branch", "refspec", "options"))
        if push is not None:
            push_branch = _or(push.string("branch"), "")
            push_refspec = _or(push.string("refspec"), "")
            if push_refspec[:1] in ("+", ":"):
                push.error("refspec", "refspecs that delete or force-update references are not supported")
            push_options = push.str_map("options")
    update = spec.struct("update", ("strategy", "path"))
    if update is not None:
        update.enum("strategy", ("Setters",))
    selector = spec.struct("policySelector", ("matchLabels",), ignored={"matchExpressions": "only matchLabels selects"})
    return ImageUpdate(
        name=h.name,
        source_ref=_or(source_ref, SourceRef("")),
        author=author,
        namespace=h.namespace,
        interval=_or(spec.duration("interval", required=True), timedelta(minutes=5)),
        suspend=bool(spec.boolean("suspend")),
        path=_or(update.string("path"), "") if update else "",
        checkout_ref=checkout_ref,
        message_template=message or DEFAULT_COMMIT_MESSAGE,
        message_template_values=values,
        push_branch=push_branch,
        push_refspec=push_refspec,
        push_options=push_options,
        policy_selector=selector.str_map("matchLabels") if selector else (),
        signing_key_secret=signing,
        origin=m.origin,
    )


_READERS: dict[tuple[str, str], Callable[[_Manifest], Rule | None]] = {
    (SOURCE_GROUP, GitSource.KIND): _read_git_repository,
    (KUSTOMIZE_GROUP, Kustomization.KIND): _read_kustomization,
    (IMAGE_GROUP, ImageRepository.KIND): _read_image_repository,
    (IMAGE_GROUP, ImagePolicy.KIND): _read_image_policy,
    (IMAGE_GROUP, ImageUpdate.KIND): _read_image_update,
}


# --------------------------------------------------------------------------------------------
# writing


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


def _dump_value(value: object) -> str:
    """A YAML value as block text (patches read from deprecated inline forms)."""
    return str(yaml.dump(value, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True))


def write_flux(rules: Iterable[Rule]) -> str:
    """Flux YAML for the objects Flux can express (`---` before each); MarkerDialect is skipped."""
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
              annotations: dict[str, str] | None = None) -> dict[str, object]:
    metadata: dict[str, object] = {"annotations": annotations} if annotations else {}
    metadata.update(name=name, namespace=namespace)
    return {"apiVersion": f"{group}/v1", "kind": kind, "metadata": metadata, "spec": spec}


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
        "recurseSubmodules": s.recurse_submodules,
        "secretRef": _name_ref(s.secret_ref),
        "suspend": s.suspend,
        "timeout": None if s.timeout == timedelta(seconds=60) else _go_minutes(s.timeout),
        "url": s.url,
    })
    spec["ref"] = _git_ref_doc(s.ref)  # always written: no ref means "master" to Flux
    return _manifest(SOURCE_GROUP, s.KIND, s.name, s.namespace, dict(sorted(spec.items())))


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
    return _manifest(KUSTOMIZE_GROUP, k.KIND, k.name, k.namespace, dict(sorted(spec.items())))


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
    return _manifest(IMAGE_GROUP, r.KIND, r.name, r.namespace, spec, notes)


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
    })
    return _manifest(IMAGE_GROUP, p.KIND, p.name, p.namespace, spec, {k: str(v) for k, v in notes.items()})


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
    return _manifest(IMAGE_GROUP, u.KIND, u.name, u.namespace, spec)


_WRITERS: dict[type, Callable[..., dict[str, object]]] = {
    GitSource: _write_git_source,
    Kustomization: _write_kustomization,
    ImageRepository: _write_image_repository,
    ImagePolicy: _write_image_policy,
    ImageUpdate: _write_image_update,
}
