"""Reading the Flux image automation kinds (image.toolkit.fluxcd.io) into the model.

ImageRepository, ImagePolicy and ImageUpdateAutomation; the gitward gates Flux has no field for
(page size, hold, never-downgrade, pin, allow-rollback) are read from their `gitward.dev/*` annotations.
"""

from __future__ import annotations

from datetime import timedelta

from engine.errors import SourcePos
from engine.model import (
    DEFAULT_COMMIT_MESSAGE,
    DEFAULT_EXCLUSION_LIST,
    CommitAuthor,
    DigestReflection,
    Direction,
    GitRef,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    NamespacedRef,
    PolicyChoice,
    PolicyKind,
    SourceKind,
    SourceRef,
    TagFilter,
)
from engine.rules.duration import DurationError, parse_duration
from engine.rules.fluxapi import (
    ALLOW_ROLLBACK_ANNOTATION,
    HOLD_ANNOTATION,
    IGNORED_FIELD,
    NEVER_DOWNGRADE_ANNOTATION,
    PAGE_SIZE_ANNOTATION,
    PIN_ANNOTATION,
)
from engine.rules.fluxmanifest import (
    Manifest,
    or_else,
    read_git_ref,
    read_header,
    read_local_ref,
    read_source_ref,
)
from engine.rules.fluxsource import read_registry_identity
from engine.rules.yamldoc import Struct

_POLICY_KINDS = ("semver", "alphabetical", "numerical")  # Flux's precedence
DIGEST_WHEN_PLANNED = ("gitward reads the tag's digest each time it plans an update, not on "
                       "this interval")
"""What a digest refresh interval (digestReflectionPolicy Always) does in gitward."""
_MAX_EXCLUSIONS = 25


def read_image_repository(m: Manifest) -> ImageRepository | None:
    h = read_header(
        m,
        ("image", "interval", "timeout", "secretRef", "proxySecretRef", "serviceAccountName",
         "certSecretRef", "suspend", "exclusionList", "provider", "insecure"),
        ignored={"accessFrom": "cross-namespace policies are not checked against it"},
        annotations=(PAGE_SIZE_ANNOTATION,),
    )
    spec = h.spec
    if spec is None:
        return None
    image = or_else(spec.string("image", required=True), "")
    if image:
        _check_image(spec, image)
    provider, account = read_registry_identity(spec)
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
        interval=or_else(spec.duration("interval", required=True), timedelta(minutes=5)),
        timeout=spec.duration("timeout", hours=False),
        secret_ref=read_local_ref(spec, "secretRef"),
        cert_secret_ref=read_local_ref(spec, "certSecretRef"),
        proxy_secret_ref=read_local_ref(spec, "proxySecretRef"),
        service_account_name=account,
        provider=provider,
        insecure=bool(spec.boolean("insecure")),
        suspend=bool(spec.boolean("suspend")),
        exclusion_list=exclusions or DEFAULT_EXCLUSION_LIST,
        page_size=page_size,
        flux_fields=h.carried.flux_fields(),
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


def read_image_policy(m: Manifest) -> ImagePolicy | None:
    h = read_header(
        m,
        ("imageRepositoryRef", "policy", "filterTags", "digestReflectionPolicy", "interval", "suspend"),
        unavailable=m.since({"digestReflectionPolicy": "v1beta2", "interval": "v1beta2", "suspend": "v1beta2"}),
        annotations=(HOLD_ANNOTATION, NEVER_DOWNGRADE_ANNOTATION, PIN_ANNOTATION,
                     ALLOW_ROLLBACK_ANNOTATION),
    )
    spec = h.spec
    if spec is None:
        return None
    ref = spec.struct("imageRepositoryRef", ("name", "namespace"), required=True)
    repository = NamespacedRef("")
    if ref is not None:
        repository = NamespacedRef(or_else(ref.string("name", required=True), ""), or_else(ref.string("namespace"), ""), origin=ref.pos("name"))
    choice = _policy_choice(spec)
    filter_ = None
    tags = spec.struct("filterTags", ("pattern", "extract"))
    if tags is not None:
        filter_ = TagFilter(or_else(tags.string("pattern"), ""), or_else(tags.string("extract"), ""), origin=spec.key_pos("filterTags"),
                            extract_origin=tags.pos("extract") if tags.has("extract") else None)
    reflection = DigestReflection(or_else(spec.enum("digestReflectionPolicy", [d.value for d in DigestReflection], "Never"), "Never"))
    interval = spec.duration("interval")
    if spec.has("interval") and reflection is not DigestReflection.ALWAYS:
        spec.error("interval", "only accepted when spec.digestReflectionPolicy is Always")
    elif reflection is DigestReflection.ALWAYS and not spec.has("interval"):
        spec.error("digestReflectionPolicy", "Always needs spec.interval (how often to refresh the digest)")
    elif interval is not None:
        spec.warning("interval", DIGEST_WHEN_PLANNED, code=IGNORED_FIELD)
    return ImagePolicy(
        name=h.name,
        repository=repository,
        choice=or_else(choice, PolicyChoice(PolicyKind.SEMVER)),
        namespace=h.namespace,
        filter=filter_,
        digest_reflection=reflection,
        interval=interval,
        suspend=bool(spec.boolean("suspend")),
        hold=_hold(spec, h.annotations),
        never_downgrade=_flag(spec, h.annotations, NEVER_DOWNGRADE_ANNOTATION),
        pin=h.annotations[PIN_ANNOTATION][0] if PIN_ANNOTATION in h.annotations else "",
        allow_rollback=_flag(spec, h.annotations, ALLOW_ROLLBACK_ANNOTATION),
        flux_fields=h.carried.flux_fields(),
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
        for unused in present[1:]:
            policy.carry(unused)
    choices = []
    for kind in present:
        origin = policy.key_pos(kind)
        if kind == "semver":
            sub = policy.struct(kind, ("range",))
            text = or_else(sub.string("range", required=True), "") if sub else ""
            choices.append(PolicyChoice(PolicyKind.SEMVER, Direction.HIGHEST, text, origin=origin))
            continue
        sub = policy.struct(kind, ("order",))
        order = or_else(sub.string("order"), "asc") if sub else "asc"
        if sub is not None and order.lower() not in ("asc", "desc"):
            sub.error("order", f'must be asc or desc, got "{order}"')
        elif sub is not None and order not in ("asc", "desc"):
            sub.warning("order", f'Flux reads "{order}" as {order.lower()}, but its CRD only admits lower-case asc or desc')
        choices.append(PolicyChoice(PolicyKind(kind), Direction.from_flux_order(order), origin=origin))
    return choices[0]


def _checkout_note(sub: Struct, ref: GitRef) -> None:
    """gitward checks out a branch's head: a checkout ref naming anything else is said."""
    instead = (f"gitward checks out the head of branch {ref.branch}" if ref.branch
               else "gitward checks out branches only: this automation plans nothing")
    for field in ("commit", "name", "semver", "tag"):
        if getattr(ref, field):
            sub.warning(field, instead, at_key=True, code=IGNORED_FIELD)


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


def read_image_update(m: Manifest) -> ImageUpdate | None:
    h = read_header(
        m,
        ("sourceRef", "git", "interval", "policySelector", "update", "suspend"),
        unavailable=m.since({"policySelector": "v1beta2"}),
    )
    spec = h.spec
    if spec is None:
        return None
    source_ref = read_source_ref(spec, default_kind=SourceKind.GIT_REPOSITORY.value)
    git = spec.struct("git", ("checkout", "commit", "push"), required=True)
    checkout_ref = None
    author, message, signing = CommitAuthor("", ""), "", ""
    message_origin = None
    values: tuple[tuple[str, str], ...] = ()
    push_options: tuple[tuple[str, str], ...] = ()
    push_branch, push_refspec = "", ""
    if git is not None:
        checkout = git.struct("checkout", ("ref",))
        if checkout is not None:
            checkout_ref, ref = read_git_ref(checkout, "ref", required=True)
            if checkout_ref is not None and ref is not None:
                _checkout_note(ref, checkout_ref)
        commit = git.struct(
            "commit", ("author", "signingKey", "messageTemplate", "messageTemplateValues"), required=True,
            unavailable=m.since({"messageTemplateValues": "v1beta2"}),
        )
        if commit is not None:
            who = commit.struct("author", ("name", "email"), required=True)
            if who is not None:
                author = CommitAuthor(or_else(who.string("name"), ""), or_else(who.string("email", required=True), ""))
            message = or_else(commit.string("messageTemplate"), "")
            message_origin = commit.pos("messageTemplate") if message else None
            values = commit.str_map("messageTemplateValues")
            key = commit.struct("signingKey", ("secretRef", "type"))
            if key is not None:
                signing = read_local_ref(key, "secretRef")
                key.require("secretRef")
                if key.enum("type", ("gpg", "ssh")) == "ssh":
                    key.warning("type", "ssh signing keys are not supported by gitward yet (it signs with gpg)")
                key.carry("type")
        push = git.struct("push", ("branch", "refspec", "options"))
        if push is not None:
            push_branch = or_else(push.string("branch"), "")
            push_refspec = or_else(push.string("refspec"), "")
            if push_refspec[:1] in ("+", ":"):
                push.error("refspec", "refspecs that delete or force-update references are not supported")
            push_options = push.str_map("options")
    update = spec.struct("update", ("strategy", "path"))
    if update is not None:
        update.enum("strategy", ("Setters",))
    selector = spec.struct("policySelector", ("matchLabels",), ignored={
        "matchExpressions": "only matchLabels selects the policies gitward applies"})
    return ImageUpdate(
        name=h.name,
        source_ref=or_else(source_ref, SourceRef("")),
        author=author,
        namespace=h.namespace,
        interval=or_else(spec.duration("interval", required=True), timedelta(minutes=5)),
        suspend=bool(spec.boolean("suspend")),
        path=or_else(update.string("path"), "") if update else "",
        checkout_ref=checkout_ref,
        message_template=message or DEFAULT_COMMIT_MESSAGE,
        message_template_values=values,
        push_branch=push_branch,
        push_refspec=push_refspec,
        push_options=push_options,
        policy_selector=selector.str_map("matchLabels") if selector else (),
        signing_key_secret=signing,
        flux_fields=h.carried.flux_fields(),
        origin=m.origin,
        message_origin=message_origin,
    )
