"""The facts the rollback and digest gates need, gathered before a plan.

For each policy whose marked values may move: the selected tag's image and each image git
deploys (a tag, a pinned digest), with its digest, when it was built and when the ledger first
saw it. The store answers first (the ledger's digests and first-seen times, `image_configs`).
A plan that may go online (`RegistryAccess`) asks the registry for the rest, for these images
only: a HEAD for a tag's digest when the ledger has none (every plan for the selected tag of a
policy that reflects digests `Always`, as Flux re-reads it every interval), then the manifest and
configuration blob of a digest never read before; both are kept, so no image is read twice. A
registry that cannot answer is a fact too: the reason becomes the gate's, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from engine.evaluate.chronology import pinned_digest
from engine.evaluate.plan import Selection, deployed_tags, tag_of
from engine.evaluate.rewrite import MarkedValue
from engine.model import (
    DigestReflection,
    ImageFacts,
    ImagePolicy,
    ImageRepository,
    ObjectKey,
    RuleSet,
)
from engine.observe.dockerconfig import Credentials
from engine.observe.transport import SecretReader
from engine.rules.markers import MarkerPart
from engine.store import images as stored
from engine.store import queries
from engine.store.db import Store

OFFLINE = "the registry was not asked (offline)"
SUSPENDED = "the registry was not asked (ImageRepository {} is suspended)"
NO_CREATED = "its configuration records no creation time"

ImageRef = tuple[str, str]
"""(tag, pinned digest): an image as a marked value names it; either part may be ""."""


class Registry(Protocol):
    """What the facts of a repository's images ask its registry: a tag's digest and when an
    image was built, each with why it is not known when it is not."""

    def digest(self, tag: str) -> tuple[str, str]: ...

    def created(self, digest: str) -> tuple[datetime | None, str]: ...


@dataclass(frozen=True)
class RegistryAccess:
    """How a plan may reach registries: credentials given, else a repository's `secretRef`
    Secret (through `read_secret`, when a cluster is configured), else the docker config.json."""

    credentials: Credentials | None = None
    read_secret: SecretReader | None = None


def gather_images(store: Store, rules: RuleSet, selections: Mapping[str, Selection],
                  values: Sequence[MarkedValue], now: datetime,
                  access: RegistryAccess | None) -> dict[str, Selection]:
    """`selections` with the facts of every image their changes involve (`Selection.images`)."""
    gathered = dict(selections)
    for ref, images in involved(rules, values, selections).items():
        policy = rules.get(ObjectKey(ImagePolicy.KIND, *ref.split("/", 1)))
        assert isinstance(policy, ImagePolicy)
        repository = rules.get(policy.repository_key)
        if not isinstance(repository, ImageRepository):
            continue
        selection = selections[ref]
        always = policy.digest_reflection is DigestReflection.ALWAYS
        suspended = repository.suspend or queries.is_suspended(store, repository.KIND,
                                                               repository.key.ref)
        with ExitStack() as stack:
            registry: Registry
            if suspended or access is None:
                registry = _Unasked(SUSPENDED.format(repository.key.ref) if suspended else OFFLINE)
            else:
                # the registry client (httpx) only when the plan goes online: an offline plan
                # never imports it (tests/e2e/test_lazy_imports.py)
                from engine.reconcile.imagereads import RegistryImages
                registry = stack.enter_context(RegistryImages(repository, access))
            facts = _Facts(store, repository, registry, now).of(images, images[0][0] if always else "")
        own = facts[0].digest if facts[0].tag == selection.tag else selection.digest
        gathered[ref] = replace(selection, images=facts, digest=own)
    return gathered


def involved(rules: RuleSet, values: Sequence[MarkedValue],
             selections: Mapping[str, Selection]) -> dict[str, list[ImageRef]]:
    """Per policy, the images a plan may compare: the selected (or pinned) tag first, then each
    image git deploys. A policy whose values cannot move (it reflects no digest, and every value
    is at the selected tag) needs none."""
    git_tags = deployed_tags(values)
    found: dict[str, list[ImageRef]] = {}
    for value in values:
        marker = value.marker
        ref = f"{marker.policy_namespace}/{marker.policy_name}"
        policy = rules.get(ObjectKey(ImagePolicy.KIND, marker.policy_namespace, marker.policy_name))
        selection = selections.get(ref)
        if not isinstance(policy, ImagePolicy) or selection is None or marker.part is MarkerPart.NAME:
            continue
        tag = git_tags.get(ref) if marker.part is MarkerPart.DIGEST else tag_of(value.value, marker.part)
        images = found.setdefault(ref, [(policy.pin or selection.tag, "")])
        image = (tag or "", pinned_digest(value.value, marker.part))
        if image not in images and image != ("", ""):
            images.append(image)
    return {ref: images for ref, images in found.items() if _moves(rules, ref, images)}


def _moves(rules: RuleSet, ref: str, images: list[ImageRef]) -> bool:
    policy = rules.get(ObjectKey(ImagePolicy.KIND, *ref.split("/", 1)))
    assert isinstance(policy, ImagePolicy)
    target = images[0][0]
    return (policy.digest_reflection is not DigestReflection.NEVER
            or any(tag != target for tag, _ in images[1:]))


class _Unasked:
    """The registry of a plan that does not ask it (offline, or its repository is suspended):
    every image it would be asked about is not known, for `reason`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def digest(self, tag: str) -> tuple[str, str]:
        return "", self.reason

    def created(self, digest: str) -> tuple[datetime | None, str]:
        return None, self.reason


class _Facts:
    """The facts of one repository's images: the store's, then its registry's (kept)."""

    def __init__(self, store: Store, repository: ImageRepository, registry: Registry,
                 now: datetime) -> None:
        self.store, self.registry, self.now = store, registry, now
        self.repository = repository.key.ref
        self.ledger = {t.tag: t for t in queries.tags(store, self.repository, include_gone=True)}

    def of(self, images: Iterable[ImageRef], refresh: str) -> tuple[ImageFacts, ...]:
        """The facts of each image; the tag `refresh` has its digest asked again."""
        named = [(tag, pinned, *self.digest(tag, pinned, tag == refresh)) for tag, pinned in images]
        built = stored.image_created(self.store, [digest for _, _, digest, _ in named if digest])
        facts = []
        for tag, _, digest, missing in named:
            created: datetime | None = None
            if digest in built:
                created = built[digest]
                missing = "" if created is not None else NO_CREATED
            elif digest:
                created, missing = self.registry.created(digest)
                if missing in ("", NO_CREATED):
                    stored.record_image_created(self.store, digest, created, self.now)
                    built[digest] = created
            facts.append(ImageFacts(tag, digest, created, self.first_seen(tag, digest), missing))
        return tuple(facts)

    def digest(self, tag: str, pinned: str, refresh: bool) -> tuple[str, str]:
        """(the image's digest, why it is not known): the pinned one, the ledger's, else (or to
        refresh it) the registry's."""
        if pinned or not tag:
            return pinned, ""
        row = self.ledger.get(tag)
        if row is not None and row.digest and not refresh:
            return row.digest, ""
        digest, missing = self.registry.digest(tag)
        if digest:
            stored.record_tag_digest(self.store, self.repository, tag, digest)
            return digest, ""
        if row is not None and row.digest:
            return row.digest, ""
        return "", missing

    def first_seen(self, tag: str, digest: str) -> datetime | None:
        """When the ledger first saw the tag (for a bare digest, a tag that names it)."""
        row = self.ledger.get(tag)
        if row is None and digest:
            row = next((t for t in self.ledger.values() if t.digest == digest), None)
        return row.first_seen if row is not None else None
