"""The rule model: what a user declares, whichever syntax they wrote it in.

Both readers (the `*.rules` DSL and Flux YAML) produce these frozen dataclasses, and both
writers print them back, so a rule round-trips between the two syntaxes. Field names follow
Flux's spec fields in snake_case; defaults are Flux's, except where a docstring says otherwise.
`origin` records where a rule was written, for located errors; it never takes part in equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Union

from engine.errors import Problem, SourcePos

DEFAULT_NAMESPACE = "flux-system"
"""Namespace of a rule that names none: the Flux CLI's default namespace."""

DEFAULT_EXCLUSION_LIST: tuple[str, ...] = (r"^.*\.sig$",)
"""Flux's ImageRepository exclusion default (cosign signature tags)."""


def _origin() -> SourcePos | None:
    return field(default=None, compare=False, repr=False)


def _ignored() -> tuple[Problem, ...]:
    """A Flux kind's `ignored`: what gitward reads of the object and does not act on, as the
    located warnings its reader gave (code `ignored-field`), each saying what gitward does
    instead. `plan` prints them and `gitward run` records them as the object's events."""
    return field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class FluxField:
    """A Flux field gitward does not model, kept verbatim so that nothing is lost between Flux
    YAML and the DSL (`gitward convert`, `gitward export`).

    `path` says where it sits in the object (`spec.decryption`, `metadata.labels`,
    `spec.dependsOn[0].readyExpr`, `apiVersion`); `value` is its JSON text, keys sorted, so two
    equal values compare equal.
    """

    path: str
    value: str
    origin: SourcePos | None = _origin()


KUBE_CONFIG_PATH = "spec.kubeConfig"
"""Where a Kustomization names another cluster; gitward carries it and does not apply there."""


@dataclass(frozen=True, order=True)
class ObjectKey:
    """Identity of a rule object: kind, namespace and name."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def ref(self) -> str:
        """`namespace/name`, the form the CLI and the DSL use."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class NamespacedRef:
    """A reference to another object; an empty namespace means the referrer's own."""

    name: str
    namespace: str = ""
    origin: SourcePos | None = _origin()

    def resolve(self, default_namespace: str) -> tuple[str, str]:
        return (self.namespace or default_namespace, self.name)


class SourceKind(StrEnum):
    """The source kinds a Flux Kustomization may name; gitward fetches GitRepository itself."""

    GIT_REPOSITORY = "GitRepository"
    OCI_REPOSITORY = "OCIRepository"
    BUCKET = "Bucket"
    EXTERNAL_ARTIFACT = "ExternalArtifact"


@dataclass(frozen=True)
class SourceRef:
    """Kustomization/automation -> source (an automation's is always a GitRepository)."""

    name: str
    namespace: str = ""
    kind: SourceKind = SourceKind.GIT_REPOSITORY
    origin: SourcePos | None = _origin()


@dataclass(frozen=True)
class GitRef:
    """Flux's GitRepositoryRef; precedence when several are set: commit > name > semver > tag > branch."""

    branch: str = ""
    tag: str = ""
    semver: str = ""
    name: str = ""
    commit: str = ""

    def is_empty(self) -> bool:
        return not (self.branch or self.tag or self.semver or self.name or self.commit)

    def describe(self) -> str:
        for label, value in (
            ("commit", self.commit),
            ("name", self.name),
            ("semver", self.semver),
            ("tag", self.tag),
            ("branch", self.branch),
        ):
            if value:
                return f"{label} {value}"
        return "default branch"


@dataclass(frozen=True)
class GitSource:
    """Flux GitRepository (source.toolkit.fluxcd.io)."""

    name: str
    url: str
    namespace: str = DEFAULT_NAMESPACE
    ref: GitRef = GitRef(branch="main")
    interval: timedelta = timedelta(minutes=1)
    timeout: timedelta = timedelta(seconds=60)
    secret_ref: str = ""
    proxy_secret_ref: str = ""
    ignore: str = ""
    suspend: bool = False
    recurse_submodules: bool = False
    flux_fields: tuple[FluxField, ...] = ()
    origin: SourcePos | None = _origin()
    ignored: tuple[Problem, ...] = _ignored()

    KIND = "GitRepository"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, self.namespace, self.name)


DEFAULT_OCI_TAG = "latest"
"""The tag an OCIRepository pulls when `spec.ref` names nothing (Flux's default)."""


@dataclass(frozen=True)
class OCIRef:
    """Flux's OCIRepositoryRef; precedence when several are set: digest > semver > tag, else `latest`.

    `semver_filter` is an RE2 pattern a tag must match to be a semver candidate.
    """

    tag: str = ""
    semver: str = ""
    semver_filter: str = ""
    digest: str = ""

    def describe(self) -> str:
        if self.digest:
            return f"digest {self.digest}"
        if self.semver:
            matching = f" matching {self.semver_filter!r}" if self.semver_filter else ""
            return f"semver {self.semver}{matching}"
        return f"tag {self.tag or DEFAULT_OCI_TAG}"


class LayerOperation(StrEnum):
    """What becomes of the selected layer: unpacked into a directory, or kept as the tarball."""

    EXTRACT = "extract"
    COPY = "copy"


@dataclass(frozen=True)
class LayerSelector:
    """Flux's `layerSelector`: the first layer of `media_type` (else the first layer)."""

    media_type: str = ""
    operation: LayerOperation = LayerOperation.EXTRACT


@dataclass(frozen=True)
class OCISource:
    """Flux OCIRepository (source.toolkit.fluxcd.io): an artifact in an OCI registry.

    `url` is `oci://host[:port]/repository` (no tag, no digest). `provider` and
    `service_account_name` are read so that gitward can say what it does instead: it never
    fetches cloud credentials. `spec.verify` is carried in `flux_fields` (no signature is
    verified).
    """

    name: str
    url: str
    namespace: str = DEFAULT_NAMESPACE
    ref: OCIRef = OCIRef()
    interval: timedelta = timedelta(minutes=1)
    timeout: timedelta = timedelta(seconds=60)
    secret_ref: str = ""
    cert_secret_ref: str = ""
    proxy_secret_ref: str = ""
    insecure: bool = False
    provider: str = "generic"
    service_account_name: str = ""
    layer_selector: LayerSelector = LayerSelector()
    ignore: str = ""
    suspend: bool = False
    flux_fields: tuple[FluxField, ...] = ()
    origin: SourcePos | None = _origin()
    ignored: tuple[Problem, ...] = _ignored()

    KIND = "OCIRepository"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, self.namespace, self.name)


Source = Union[GitSource, OCISource]
"""What a Kustomization's `sourceRef` may name."""


@dataclass(frozen=True)
class Selector:
    """kustomize/Flux patch target selector."""

    group: str = ""
    version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""
    label_selector: str = ""
    annotation_selector: str = ""

    def is_empty(self) -> bool:
        return not any(
            (self.group, self.version, self.kind, self.name, self.namespace,
             self.label_selector, self.annotation_selector)
        )


@dataclass(frozen=True)
class Patch:
    """A strategic-merge or JSON6902 patch, with an optional target."""

    patch: str
    target: Selector | None = None
    origin: SourcePos | None = _origin()


@dataclass(frozen=True)
class ImageOverride:
    """Kustomization `images:` entry (kustomize's image transformer)."""

    name: str
    new_name: str = ""
    new_tag: str = ""
    digest: str = ""
    origin: SourcePos | None = _origin()


@dataclass(frozen=True)
class SubstituteFrom:
    """`postBuild.substituteFrom`: a ConfigMap or Secret of variables."""

    kind: str  # "ConfigMap" | "Secret"
    name: str
    optional: bool = False
    origin: SourcePos | None = _origin()


@dataclass(frozen=True)
class HealthCheck:
    """An object whose readiness gates the Kustomization's Ready condition."""

    api_version: str
    kind: str
    name: str
    namespace: str = ""
    origin: SourcePos | None = _origin()


@dataclass(frozen=True)
class Kustomization:
    """Flux Kustomization (kustomize.toolkit.fluxcd.io)."""

    name: str
    source_ref: SourceRef
    namespace: str = DEFAULT_NAMESPACE
    path: str = ""
    interval: timedelta = timedelta(minutes=10)
    retry_interval: timedelta | None = None
    timeout: timedelta | None = None
    prune: bool = False
    wait: bool = False
    force: bool = False
    suspend: bool = False
    target_namespace: str = ""
    name_prefix: str = ""
    name_suffix: str = ""
    service_account_name: str = ""
    depends_on: tuple[NamespacedRef, ...] = ()
    common_labels: tuple[tuple[str, str], ...] = ()
    common_annotations: tuple[tuple[str, str], ...] = ()
    images: tuple[ImageOverride, ...] = ()
    patches: tuple[Patch, ...] = ()
    substitute: tuple[tuple[str, str], ...] = ()
    substitute_from: tuple[SubstituteFrom, ...] = ()
    health_checks: tuple[HealthCheck, ...] = ()
    components: tuple[str, ...] = ()
    flux_fields: tuple[FluxField, ...] = ()
    origin: SourcePos | None = _origin()
    ignored: tuple[Problem, ...] = _ignored()

    KIND = "Kustomization"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, self.namespace, self.name)

    @property
    def remote_cluster(self) -> bool:
        """Whether `spec.kubeConfig` names another cluster to apply to."""
        return any(f.path == KUBE_CONFIG_PATH for f in self.flux_fields)

    @property
    def effective_retry_interval(self) -> timedelta:
        """Flux: retryInterval defaults to interval."""
        return self.retry_interval or self.interval

    @property
    def effective_timeout(self) -> timedelta:
        """Flux: timeout defaults to interval."""
        return self.timeout or self.interval


@dataclass(frozen=True)
class ImageRepository:
    """Flux ImageRepository (image.toolkit.fluxcd.io). `page_size` is gitward's own."""

    name: str
    image: str
    namespace: str = DEFAULT_NAMESPACE
    interval: timedelta = timedelta(minutes=5)
    timeout: timedelta | None = None
    secret_ref: str = ""
    cert_secret_ref: str = ""
    proxy_secret_ref: str = ""
    service_account_name: str = ""
    provider: str = "generic"
    insecure: bool = False
    suspend: bool = False
    exclusion_list: tuple[str, ...] = DEFAULT_EXCLUSION_LIST
    page_size: int = 1000
    flux_fields: tuple[FluxField, ...] = ()
    origin: SourcePos | None = _origin()
    ignored: tuple[Problem, ...] = _ignored()

    KIND = "ImageRepository"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, self.namespace, self.name)

    @property
    def effective_timeout(self) -> timedelta:
        """Flux: timeout defaults to interval, with a minimum of one second."""
        return max(self.timeout or self.interval, timedelta(seconds=1))


class PolicyKind(StrEnum):
    SEMVER = "semver"
    ALPHABETICAL = "alphabetical"
    NUMERICAL = "numerical"


class Direction(StrEnum):
    """Which end of the ordering a policy selects. Flux `order: asc` is HIGHEST, `desc` LOWEST."""

    HIGHEST = "highest"
    LOWEST = "lowest"

    @property
    def flux_order(self) -> str:
        return "asc" if self is Direction.HIGHEST else "desc"

    @staticmethod
    def from_flux_order(order: str) -> "Direction":
        return Direction.LOWEST if order.lower() == "desc" else Direction.HIGHEST


@dataclass(frozen=True)
class PolicyChoice:
    """`select highest semver ">=1.0.0"` / `select lowest alphabetical` / ...

    Semver always selects the highest version in range (Flux has no order for semver).
    """

    kind: PolicyKind
    direction: Direction = Direction.HIGHEST
    range: str = ""
    origin: SourcePos | None = _origin()


@dataclass(frozen=True)
class TagFilter:
    """Flux `filterTags`: an RE2 search pattern and a Go-template `extract`."""

    pattern: str
    extract: str = ""
    origin: SourcePos | None = _origin()
    extract_origin: SourcePos | None = _origin()
    """Where `extract` is written, for lints about it (None: at `origin`)."""


class DigestReflection(StrEnum):
    NEVER = "Never"
    IF_NOT_PRESENT = "IfNotPresent"
    ALWAYS = "Always"


@dataclass(frozen=True)
class ImagePolicy:
    """Flux ImagePolicy. `hold`, `never_downgrade`, `pin` and `allow_rollback` are gitward's
    gates (no Flux field): `allow_rollback` lets an update move git to an older image."""

    name: str
    repository: NamespacedRef
    choice: PolicyChoice
    namespace: str = DEFAULT_NAMESPACE
    filter: TagFilter | None = None
    digest_reflection: DigestReflection = DigestReflection.NEVER
    interval: timedelta | None = None
    suspend: bool = False
    hold: timedelta | None = None
    never_downgrade: bool = False
    pin: str = ""
    allow_rollback: bool = False
    flux_fields: tuple[FluxField, ...] = ()
    origin: SourcePos | None = _origin()
    ignored: tuple[Problem, ...] = _ignored()

    KIND = "ImagePolicy"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, self.namespace, self.name)

    @property
    def repository_key(self) -> ObjectKey:
        ns, name = self.repository.resolve(self.namespace)
        return ObjectKey(ImageRepository.KIND, ns, name)


@dataclass(frozen=True)
class CommitAuthor:
    name: str
    email: str

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else f"<{self.email}>"


DEFAULT_COMMIT_MESSAGE = "Update from image update automation"
"""Flux's default commit message template."""


@dataclass(frozen=True)
class ImageUpdate:
    """Flux ImageUpdateAutomation (strategy Setters)."""

    name: str
    source_ref: SourceRef
    author: CommitAuthor
    namespace: str = DEFAULT_NAMESPACE
    interval: timedelta = timedelta(minutes=5)
    suspend: bool = False
    path: str = ""
    checkout_ref: GitRef | None = None
    message_template: str = DEFAULT_COMMIT_MESSAGE
    message_template_values: tuple[tuple[str, str], ...] = ()
    push_branch: str = ""
    push_refspec: str = ""
    push_options: tuple[tuple[str, str], ...] = ()
    policy_selector: tuple[tuple[str, str], ...] = ()
    signing_key_secret: str = ""
    flux_fields: tuple[FluxField, ...] = ()
    origin: SourcePos | None = _origin()
    ignored: tuple[Problem, ...] = _ignored()
    message_origin: SourcePos | None = _origin()
    """Where the message template is written (its YAML value or DSL string), for its errors."""

    KIND = "ImageUpdateAutomation"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, self.namespace, self.name)


class MarkerValue(StrEnum):
    """Where a dialect finds the value a marker governs."""

    YAML_SCALAR = "yaml-scalar"  # the YAML scalar the comment belongs to
    REGEX = "regex"  # the `value` group of a regex over the marked line


@dataclass(frozen=True)
class MarkerDialect:
    """How markers are written in a family of files (the built-in one is Flux's `$imagepolicy`).

    A marker is a comment (after `comment`) whose text is a JSON object with the key `json_key`;
    its value names `NS:NAME[:part]`. `files` are glob patterns on the file name; `screen` is a
    byte string a file must contain to be parsed at all (files without it cost no parse).
    """

    name: str
    files: tuple[str, ...]
    json_key: str = "$imagepolicy"
    comment: str = "#"
    screen: str = '"$imagepolicy"'
    value: MarkerValue = MarkerValue.YAML_SCALAR
    value_pattern: str = ""
    origin: SourcePos | None = _origin()

    KIND = "MarkerDialect"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, "", self.name)


class AlertEvent(StrEnum):
    """What an alert is sent on: an image update pushed, or any reconcile that failed."""

    UPDATE = "update"
    FAILURE = "failure"


class AlertKind(StrEnum):
    WEBHOOK = "webhook"  # a JSON body POSTed to `url`
    NTFY = "ntfy"  # a plain-text message POSTed to `url`/`topic` (https://docs.ntfy.sh/publish/)


@dataclass(frozen=True)
class Alert:
    """Where `gitward run` reports events (gitward's own; Flux splits this into Alert + Provider).

    For ntfy, `url` is the server (with any path prefix) and `topic` the last path segment of the
    URL written in the rule, so the topic can be shown on its own.
    """

    name: str
    on: tuple[AlertEvent, ...]
    kind: AlertKind
    url: str
    topic: str = ""
    origin: SourcePos | None = _origin()

    KIND = "Alert"

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.KIND, "", self.name)

    @property
    def target(self) -> str:
        """The URL a message is POSTed to."""
        return f"{self.url}/{self.topic}" if self.kind is AlertKind.NTFY else self.url


@dataclass(frozen=True)
class FluxObject:
    """A Flux object gitward does not reconcile (HelmRelease, HelmRepository, Bucket, ...).

    Flux's controllers would act on it; gitward applies it as the object it is, lists it, and
    says it does not reconcile it, so nothing a repository holds is dropped in silence.
    """

    kind: str
    name: str
    namespace: str = DEFAULT_NAMESPACE
    api_version: str = ""
    origin: SourcePos | None = _origin()

    @property
    def KIND(self) -> str:  # noqa: N802 - the attribute every rule kind has
        return self.kind

    @property
    def key(self) -> ObjectKey:
        return ObjectKey(self.kind, self.namespace, self.name)


Rule = Union[GitSource, OCISource, Kustomization, ImageRepository, ImagePolicy, ImageUpdate,
             MarkerDialect, Alert, FluxObject]


@dataclass(frozen=True)
class SkippedObject:
    """An object gitward read but cannot use, and why: it, and what depends on it, are left
    out while every other object loads, builds and plans."""

    key: ObjectKey
    reason: str
    origin: SourcePos | None = _origin()

    def to_json(self) -> dict[str, object]:
        return {"kind": self.key.kind, "namespace": self.key.namespace, "name": self.key.name,
                "reason": self.reason, "origin": str(self.origin) if self.origin else None}


@dataclass(frozen=True)
class RuleSet:
    """Every rule object of a repository, in a deterministic order (kind, namespace, name)."""

    sources: tuple[GitSource, ...] = ()
    kustomizations: tuple[Kustomization, ...] = ()
    image_repositories: tuple[ImageRepository, ...] = ()
    image_policies: tuple[ImagePolicy, ...] = ()
    image_updates: tuple[ImageUpdate, ...] = ()
    marker_dialects: tuple[MarkerDialect, ...] = ()
    alerts: tuple[Alert, ...] = ()
    flux_objects: tuple[FluxObject, ...] = ()
    oci_sources: tuple[OCISource, ...] = ()

    @staticmethod
    def of(rules: "list[Rule] | tuple[Rule, ...]") -> "RuleSet":
        def pick(cls: type) -> tuple:  # type: ignore[type-arg]
            return tuple(sorted((r for r in rules if isinstance(r, cls)), key=lambda r: r.key))

        return RuleSet(
            sources=pick(GitSource),
            kustomizations=pick(Kustomization),
            image_repositories=pick(ImageRepository),
            image_policies=pick(ImagePolicy),
            image_updates=pick(ImageUpdate),
            marker_dialects=pick(MarkerDialect),
            alerts=pick(Alert),
            flux_objects=pick(FluxObject),
            oci_sources=pick(OCISource),
        )

    def all(self) -> tuple[Rule, ...]:
        return (
            *self.sources,
            *self.kustomizations,
            *self.image_repositories,
            *self.image_policies,
            *self.image_updates,
            *self.marker_dialects,
            *self.alerts,
            *self.flux_objects,
            *self.oci_sources,
        )

    def ignored(self) -> tuple[Problem, ...]:
        """What gitward reads of these objects and does not act on (each object's `ignored`),
        in file order."""
        found = {(p.pos, p.message): p for rule in self.all() for p in getattr(rule, "ignored", ())}
        return tuple(sorted(found.values(), key=Problem.sort_key))

    def get(self, key: ObjectKey) -> Rule | None:
        return self._by_key.get(key)

    @cached_property
    def _by_key(self) -> dict[ObjectKey, Rule]:
        """The first rule of each key in `all()` order: `get` is asked once per marked value."""
        found: dict[ObjectKey, Rule] = {}
        for rule in self.all():
            found.setdefault(rule.key, rule)
        return found

    def __len__(self) -> int:
        return len(self.all())


# Facts ---------------------------------------------------------------------------------------
# What gitward observed, as the store records it and the evaluator reads it. Times are
# timezone-aware UTC; object names are `namespace/name`.


@dataclass(frozen=True)
class GitRevision:
    """A commit a source's branch pointed at when gitward fetched it (credentials never kept)."""

    source: str
    url: str
    branch: str
    sha: str
    fetched_at: datetime
    author: str = ""
    message: str = ""
    committed_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class OCIRevision:
    """An artifact an OCIRepository resolved to when gitward pulled it (credentials never kept).

    `revision` is Flux's (`<tag>@sha256:<digest>`, or the digest alone for a digest reference);
    `digest` is the manifest's, `layer_digest` the selected layer's; `origin_source`,
    `origin_revision` and `created` are the manifest's org.opencontainers.image.* annotations.
    """

    source: str
    url: str
    tag: str
    digest: str
    revision: str
    layer_digest: str
    media_type: str
    operation: LayerOperation
    fetched_at: datetime
    origin_source: str = ""
    origin_revision: str = ""
    created: str = ""
    id: int | None = None


class ScanStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class ImageScan:
    """One listing of an image repository's tags; a failed scan carries its error."""

    repository: str
    started_at: datetime
    finished_at: datetime
    status: ScanStatus
    tag_count: int = 0
    error: str | None = None
    id: int | None = None
    new_tags: tuple[str, ...] = ()
    """Tags this scan found that were not in the repository before (or had gone and came back),
    sorted; known only to the writer of the scan (never read back from the store)."""


@dataclass(frozen=True)
class ListedTag:
    """A tag as a registry listed it, before the store gives it a history."""

    tag: str
    digest: str | None = None
    excluded: bool = False


@dataclass(frozen=True)
class RegistryTag:
    """A tag with its history: `gone_at` is set once a successful scan stops listing it."""

    repository: str
    tag: str
    first_seen: datetime
    last_seen: datetime
    digest: str | None = None
    gone_at: datetime | None = None
    excluded: bool = False


@dataclass(frozen=True)
class ImageFacts:
    """What gitward knows of one image of a repository, named by its tag (or by its digest
    alone): the manifest digest (an image index's for a multi-platform image), when the image
    was built (its configuration's `created`), and when the ledger first saw the tag.

    `missing` says why `created` is not known ("the registry was not asked: offline", the
    registry's error), so a gate can say so instead of guessing.
    """

    tag: str
    digest: str = ""
    created: datetime | None = None
    first_seen: datetime | None = None
    missing: str = ""


@dataclass(frozen=True)
class TagVerdict:
    """One tag's line in a decision's trace.

    `verdict` is one of selected, candidate, lower, excluded, filtered, unparsable,
    out-of-range, prerelease-excluded; `value` is what the policy compared (the extracted value,
    or the tag itself); `rank` is 1 for the selected tag, 2 for the runner-up, and None for tags
    that were never candidates; `reason` says why in words.
    """

    tag: str
    verdict: str
    value: str | None = None
    rank: int | None = None
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        return {"tag": self.tag, "verdict": str(self.verdict), "value": self.value,
                "rank": self.rank, "reason": self.reason}

    @staticmethod
    def from_json(data: dict[str, object]) -> "TagVerdict":
        rank = data.get("rank")
        value = data.get("value")
        return TagVerdict(
            tag=str(data["tag"]),
            verdict=str(data["verdict"]),
            value=None if value is None else str(value),
            rank=rank if isinstance(rank, int) else None,
            reason=str(data.get("reason") or ""),
        )


class Gate(StrEnum):
    """A rule that held an update back (or, for pin, chose its tag)."""

    HOLD = "hold"
    NEVER_DOWNGRADE = "never-downgrade"
    PIN = "pin"
    ROLLBACK = "rollback"  # the selected image is older than the one git deploys, or may be
    DIGEST = "digest"  # the value pins a digest and the new tag's digest is not known


class DecisionOutcome(StrEnum):
    """What a recorded decision says, as a user tells them apart."""

    SELECTED = "selected"  # a tag was selected
    HELD = "held"  # a gate's record: it held `selected_tag` out of git
    REFUSED = "refused"  # the scan guard did not trust the scan; nothing was evaluated
    FAILED = "failed"  # evaluated, and no tag could be selected


REFUSED = "refused: "
"""Prefix of a decision's error when the scan guard refused to evaluate."""


@dataclass(frozen=True)
class Decision:
    """Which tag a policy selected from which scan, and why every candidate won or lost.

    A decision with a `gate` is that gate's record of holding `selected_tag` out of git, its
    reason (and the marked value's `file:line`) in `error`.
    """

    policy: str
    decided_at: datetime
    selected_tag: str | None = None
    previous_tag: str | None = None
    candidates: int = 0
    verdict_counts: tuple[tuple[str, int], ...] = ()
    trace: tuple[TagVerdict, ...] = ()
    error: str | None = None
    scan_id: int | None = None
    id: int | None = None
    gate: Gate | None = None

    @property
    def outcome(self) -> DecisionOutcome:
        if self.gate is not None:
            return DecisionOutcome.HELD
        if self.error is not None and self.error.startswith(REFUSED):
            return DecisionOutcome.REFUSED
        if self.selected_tag and self.error is None:
            return DecisionOutcome.SELECTED
        return DecisionOutcome.FAILED

    @property
    def held(self) -> str:
        """A gate's record in words (`hold: 1.3.0 was first seen 2m ago (app.yaml:7)`), or ""."""
        return f"{self.gate.value}: {self.error}" if self.gate is not None else ""

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "policy": self.policy, "decided_at": self.decided_at.isoformat(),
                "selected": self.selected_tag, "previous": self.previous_tag,
                "candidates": self.candidates, "counts": dict(self.verdict_counts),
                "error": self.error, "gate": self.gate.value if self.gate else None,
                "scan": self.scan_id}


# Actions -------------------------------------------------------------------------------------
# What the evaluator plans and the executors carry out. A plan is data: printed by `plan`,
# executed by `apply`, recorded in the `actions` table.


class ActionStatus(StrEnum):
    """What became of an action in `actions`: `planned` until its executor finishes it."""

    PLANNED = "planned"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class FileChange:
    """One marked value to rewrite: `old` -> `new` at `path:line` (repo-relative path)."""

    path: str
    line: int
    old: str
    new: str
    policy: str
    setter: str

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "line": self.line, "old": self.old, "new": self.new,
                "policy": self.policy}


@dataclass(frozen=True)
class GateDecision:
    """An update a gate changed or held back, with the reason in words."""

    policy: str
    gate: Gate
    path: str
    line: int
    current: str
    proposed: str
    reason: str
    applied: bool = False

    def to_json(self) -> dict[str, object]:
        return {"policy": self.policy, "gate": self.gate.value, "path": self.path,
                "line": self.line, "current": self.current, "proposed": self.proposed,
                "reason": self.reason, "applied": self.applied}


@dataclass(frozen=True)
class CommitAction:
    """Every marker change for one (repository, push branch), from every automation targeting it."""

    source: ObjectKey
    url: str
    checkout_branch: str
    push_branch: str
    automations: tuple[str, ...]
    author: CommitAuthor
    message: str
    files: tuple[FileChange, ...]
    decisions: tuple[int, ...] = ()

    TYPE = "commit"

    @property
    def target(self) -> str:
        return f"{self.source.ref}@{self.push_branch}"

    def to_json(self) -> dict[str, object]:
        return {"type": self.TYPE, "repository": self.source.ref, "url": self.url,
                "branch": self.push_branch, "checkout": self.checkout_branch,
                "automations": list(self.automations), "author": str(self.author),
                "message": self.message, "files": [f.to_json() for f in self.files],
                "decisions": list(self.decisions)}


@dataclass(frozen=True)
class PlanError:
    """An automation whose commit cannot be planned (its message template fails), and why."""

    automation: str
    problem: Problem


@dataclass(frozen=True)
class UnknownPolicy:
    """A policy a marker needs whose selection gitward does not know: its repository was never
    scanned, its latest scan failed, or its decision was refused or failed. Such a marker is
    never reported as current. `path:line` is the first marker that uses it."""

    policy: str
    reason: str
    path: str = ""
    line: int = 0

    def to_json(self) -> dict[str, object]:
        return {"policy": self.policy, "reason": self.reason, "path": self.path or None,
                "line": self.line or None}


@dataclass(frozen=True)
class Plan:
    """What gitward would do, and what it decided not to do, with the reasons. An automation
    in `errors` plans no commit: its changes are left for when the error is fixed. A policy in
    `unknown` may plan nothing, or a change to the last selection it could trust: either way
    its markers are not known to be current."""

    actions: tuple[CommitAction, ...] = ()
    gates: tuple[GateDecision, ...] = ()
    skipped: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()
    errors: tuple[PlanError, ...] = ()
    unknown: tuple[UnknownPolicy, ...] = ()


# Rendered objects ----------------------------------------------------------------------------
# What a Kustomization renders to: Kubernetes objects as plain data, with where they came from.


@dataclass(frozen=True, order=True)
class ObjectId:
    """A Kubernetes object's identity: group, kind, namespace ("" when cluster-scoped), name."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind}/{self.namespace}/{self.name}" if self.namespace else f"{kind}/{self.name}"


@dataclass(frozen=True)
class Manifest:
    """One rendered object: its body as JSON-like data, and the file and document it came from."""

    body: dict[str, object] = field(hash=False, compare=True)
    origin: str = field(default="", compare=False)

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def metadata(self) -> dict[str, object]:
        meta = self.body.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "")

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def id(self) -> ObjectId:
        return ObjectId(self.group, self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class ClusterObject:
    """An object in a Kustomization's inventory (a `cluster_objects` row).

    `revision` and `checksum` are those of the rendering gitward last applied (or confirmed
    unchanged); `pruned_at` is set once gitward deleted the object because it left the source.
    """

    kustomization: str
    object: ObjectId
    version: str
    revision: str
    checksum: str
    applied_at: datetime
    pruned_at: datetime | None = None

    @property
    def api_version(self) -> str:
        return f"{self.object.group}/{self.version}" if self.object.group else self.version
