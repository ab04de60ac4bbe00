"""The object kinds the CLI names, spelled as the Flux CLI spells them.

One table serves `get`, `export`, `suspend`, `resume` and `reconcile`, so every verb accepts the
same nouns: `source git|oci`, `kustomization`, `image repository|policy|update`.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import UserError
from engine.model import (
    FluxObject,
    GitSource,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    OCISource,
    Rule,
    RuleSet,
)


@dataclass(frozen=True)
class Kind:
    """A CLI noun: its words, the model class and the RuleSet attribute holding its objects.

    A kind gitward does not reconcile names its Flux kind in `flux` and lists FluxObjects."""

    words: tuple[str, ...]
    model: type
    attr: str
    title: str
    flux: str = ""

    @property
    def flux_kind(self) -> str:
        return self.flux or str(self.model.KIND)  # type: ignore[attr-defined]

    @property
    def cli_name(self) -> str:
        return " ".join(self.words)

    def objects(self, rules: RuleSet) -> tuple[Rule, ...]:
        found: tuple[Rule, ...] = tuple(getattr(rules, self.attr))
        return tuple(r for r in found if r.KIND == self.flux) if self.flux else found


SOURCE_GIT = Kind(("source", "git"), GitSource, "sources", "git sources")
SOURCE_OCI = Kind(("source", "oci"), OCISource, "oci_sources", "oci sources")
KUSTOMIZATION = Kind(("kustomization",), Kustomization, "kustomizations", "kustomizations")
IMAGE_REPOSITORY = Kind(("image", "repository"), ImageRepository, "image_repositories",
                        "image repositories")
IMAGE_POLICY = Kind(("image", "policy"), ImagePolicy, "image_policies", "image policies")
IMAGE_UPDATE = Kind(("image", "update"), ImageUpdate, "image_updates", "image update automations")

KINDS: tuple[Kind, ...] = (SOURCE_GIT, SOURCE_OCI, KUSTOMIZATION, IMAGE_REPOSITORY, IMAGE_POLICY, IMAGE_UPDATE)


def _listed(words: tuple[str, ...], flux: str, title: str) -> Kind:
    return Kind(words, FluxObject, "flux_objects", title, flux)


LISTED_KINDS: tuple[Kind, ...] = (
    _listed(("source", "helm"), "HelmRepository", "helm sources"),
    _listed(("source", "chart"), "HelmChart", "chart sources"),
    _listed(("source", "bucket"), "Bucket", "bucket sources"),
    _listed(("source", "external"), "ExternalArtifact", "external artifacts"),
    _listed(("helmrelease",), "HelmRelease", "helm releases"),
    _listed(("alert",), "Alert", "alerts"),
    _listed(("alert-provider",), "Provider", "alert providers"),
    _listed(("receiver",), "Receiver", "receivers"),
)
"""Flux kinds `get` lists although gitward does not reconcile them."""

_ALIASES = {"sources": "source", "kustomizations": "kustomization", "ks": "kustomization",
            "images": "image", "repositories": "repository", "policies": "policy",
            "updates": "update", "helmreleases": "helmrelease", "hr": "helmrelease",
            "alerts": "alert", "alert-providers": "alert-provider", "receivers": "receiver"}


def parse_kind(words: tuple[str, ...], kinds: tuple[Kind, ...] = KINDS) -> tuple[Kind, tuple[str, ...]]:
    """Split `("image", "policy", "podinfo/podinfo")` into the Kind and the remaining words."""
    normal = tuple(_ALIASES.get(w, w) for w in words)
    for kind in sorted(kinds, key=lambda k: -len(k.words)):
        if normal[: len(kind.words)] == kind.words:
            return kind, words[len(kind.words):]
    if kinds is KINDS:
        for kind in LISTED_KINDS:
            if normal[: len(kind.words)] == kind.words:
                raise UserError(f"{kind.flux_kind} is not reconciled by gitward: `gitward get "
                                f"{kind.cli_name}` lists them")
    choices = ", ".join(k.cli_name for k in kinds)
    raise UserError(f"unknown kind {' '.join(words[:2]) or '(none)'!r}: expected one of {choices}")


def split_ref(ref: str, namespace: str) -> tuple[str, str]:
    """`ns/name` or `name` (in the given namespace) -> (namespace, name)."""
    if "/" in ref:
        ns, _, name = ref.partition("/")
        return ns, name
    return namespace, ref


def find(kind: Kind, rules: RuleSet, ref: str, namespace: str) -> Rule:
    """The object a user named, or a UserError listing the names that exist."""
    ns, name = split_ref(ref, namespace)
    for obj in kind.objects(rules):
        if obj.key.namespace == ns and obj.name == name:
            return obj
    known = ", ".join(o.key.ref for o in kind.objects(rules)) or "none"
    raise UserError(f"{kind.flux_kind} {ns}/{name} not found (defined: {known})")
