"""The statements of the rule language and the keywords each takes: the DSL's schema as data.

`KINDS` lists every statement (`source git`, `kustomization`, ...) with its keyword table: each
keyword maps to a `Spec` naming the model attribute and the reader of its values. Adding a field
to the language is adding a line here (and to docs/dsl.md, which a test checks). `kind_of` is the
one lookup from a statement's header to its kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from engine.errors import SourcePos, did_you_mean
from engine.model import (
    Alert,
    AlertEvent,
    AlertKind,
    CommitAuthor,
    DigestReflection,
    Direction,
    FluxField,
    GitRef,
    GitSource,
    HealthCheck,
    ImageOverride,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    LayerOperation,
    LayerSelector,
    MarkerDialect,
    MarkerValue,
    NamespacedRef,
    OCIRef,
    OCISource,
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
from engine.rules.dslfield import Merge, Spec, Values
from engine.rules.dslflux import read_flux_field
from engine.rules.fluximage import DIGEST_WHEN_PLANNED
from engine.rules.fluxsource import REGISTRY_PROVIDERS, SERVICE_ACCOUNT_NOTE, provider_note
from engine.rules.syntax import Invalid, Value

_KIND_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_AUTHOR = re.compile(r"(?P<name>[^<>]*)<(?P<email>[^<>]*)>")


# --- Field readers --------------------------------------------------------------------------


def _string(v: Values) -> str:
    return v.string()


def _duration(v: Values) -> timedelta:
    return v.duration()


def _flag(v: Values) -> bool:
    return v.flag()


def _pair(v: Values) -> tuple[str, str]:
    return v.string("a key and a value"), v.string("a key and a value")


SOURCE_WORDS = {
    "git": SourceKind.GIT_REPOSITORY,
    "oci": SourceKind.OCI_REPOSITORY,
    "bucket": SourceKind.BUCKET,
    "external-artifact": SourceKind.EXTERNAL_ARTIFACT,
}
"""The word for each kind of source a Kustomization may name (`source oci NAME`)."""


def _source_ref(v: Values) -> SourceRef:
    kind = v.choice(SOURCE_WORDS, "source kind")
    namespace, name, pos = v.ref(f"{v.last.text} NAME")
    return SourceRef(name, namespace, kind, origin=pos)


def _git_source_ref(v: Values) -> SourceRef:
    """An image update's source: the git repository it pushes to."""
    kind = v.word("git NAME")
    if kind.text != "git":
        hint = "write: source git NAME"
        raise Invalid(f"an image update pushes to a git source, not '{kind.text}'", kind.pos, hint)
    namespace, name, pos = v.ref("git NAME")
    return SourceRef(name, namespace, origin=pos)


def _flux(v: Values) -> FluxField:
    path = v.take("a Flux field path and its YAML value, e.g. spec.deletionPolicy \"Delete\"")
    value = v.take("a YAML value (a string), e.g. \"Delete\"")
    if not value.quoted:
        raise Invalid(f"flux expects its value as a string of YAML, not the bare word {value.shown()}",
                      value.pos, f'strings are quoted: "{value.text}"')
    return read_flux_field(path.text, path.pos, value.text, value.pos)


def _namespaced_ref(v: Values) -> NamespacedRef:
    namespace, name, pos = v.ref()
    return NamespacedRef(name, namespace, origin=pos)


def _refs(v: Values) -> list[NamespacedRef]:
    refs = [_namespaced_ref(v)]
    while v.more():
        refs.append(_namespaced_ref(v))
    return refs


_GIT_REF_FIELDS = {"branch": "branch", "tag": "tag", "semver": "semver", "refname": "name", "commit": "commit"}


def _git_ref_part(keyword: str) -> Callable[[Values], tuple[str, str, str]]:
    return lambda v: (keyword, _GIT_REF_FIELDS[keyword], v.string())


_OCI_REF_FIELDS = {"tag": "tag", "semver": "semver", "semver-filter": "semver_filter", "digest": "digest"}


def _oci_ref_part(keyword: str) -> Callable[[Values], tuple[str, str, str]]:
    return lambda v: (keyword, _OCI_REF_FIELDS[keyword], v.string())


def _layer(v: Values) -> LayerSelector:
    media_type = v.string('a media type, e.g. "application/vnd.cncf.flux.content.v1.tar+gzip"')
    if not v.more():
        return LayerSelector(media_type)
    return LayerSelector(media_type, v.choice({op.value: op for op in LayerOperation}, "layer operation"))


def _checkout(v: Values) -> tuple[str, str, str]:
    keyword = v.choice({k: k for k in _GIT_REF_FIELDS}, "git reference")
    text = v.string()
    if keyword != "branch":
        v.ignored(f"gitward checks out the head of a branch, not a {keyword}; without a branch "
                  "this automation plans nothing")
    return f"checkout {keyword}", _GIT_REF_FIELDS[keyword], text


def _image_override(v: Values) -> ImageOverride:
    name = v.string("an image name")
    return ImageOverride(name, **v.nested(_IMAGE_FIELDS, f'image "{name}"'), origin=v.keyword.pos)


def _patch(v: Values) -> Patch:
    text = v.string("a patch")
    target = Selector(**v.nested(_TARGET_FIELDS, "patch target")) if v.block else None
    return Patch(text, target, origin=v.keyword.pos)


def _substitute_from(v: Values) -> SubstituteFrom:
    kind = v.choice({"configmap": "ConfigMap", "secret": "Secret"}, "kind")
    name = v.string("a name")
    return SubstituteFrom(kind, name, v.accept("optional") is not None, origin=v.keyword.pos)


def _health_check(v: Values) -> HealthCheck:
    expected = 'an API version, a kind and a name: health-check "apps/v1" Deployment NAME'
    api_version = v.string(expected)
    kind = v.word(expected)
    if not _KIND_WORD.fullmatch(kind.text):
        raise Invalid(f"health-check expects a kind such as Deployment, not {kind.shown()}", kind.pos)
    namespace, name, _ = v.ref(expected)
    return HealthCheck(api_version, kind.text, name, namespace, origin=v.keyword.pos)


def _exclude(v: Values) -> list[str] | None:
    return None if v.accept("none") else v.strings("one or more regular expressions, or none")


def _select(v: Values) -> PolicyChoice:
    direction = v.choice({d.value: d for d in Direction}, "direction")
    direction_pos = v.last.pos
    kind = v.choice({k.value: k for k in PolicyKind}, "policy")
    if kind is not PolicyKind.SEMVER:
        return PolicyChoice(kind, direction, origin=v.keyword.pos)
    if direction is Direction.LOWEST:
        hint = 'semver always selects the highest version in range: select highest semver ">=1.0.0"'
        raise Invalid("'select lowest semver' is not supported", direction_pos, hint)
    value = v.take('a semver range, e.g. ">=1.0.0 <2.0.0"')
    if not value.quoted or not value.text:
        raise Invalid('select semver expects a range, e.g. ">=1.0.0 <2.0.0"', value.pos)
    return PolicyChoice(kind, direction, value.text, origin=value.pos)


def _filter(v: Values) -> TagFilter:
    pattern = v.take("a regular expression")
    if not pattern.quoted:
        raise Invalid(f"filter expects a quoted regular expression, not {pattern.shown()}", pattern.pos)
    extract = v.string('an extract template, e.g. "$ts"') if v.accept("extract") else ""
    return TagFilter(pattern.text, extract, origin=pattern.pos,
                     extract_origin=v.last.pos if extract else None)


def _never(v: Values) -> bool:
    word = v.word("downgrade")
    if word.text != "downgrade":
        raise Invalid(f"never expects downgrade, not {word.shown()}", word.pos)
    return True


def _allow(v: Values) -> bool:
    word = v.word("rollback")
    if word.text != "rollback":
        raise Invalid(f"allow expects rollback, not {word.shown()}", word.pos)
    return True


def _author(v: Values) -> CommitAuthor:
    text = v.string('"Name <email>"')
    match = _AUTHOR.fullmatch(text.strip())
    email = match["email"] if match else ""
    if match is None or not email or any(c.isspace() for c in email):
        hint = 'write: author "Flux Bot <flux@example.com>"'
        raise Invalid(f'author expects "Name <email>", not "{text}"', v.keyword.pos, hint)
    return CommitAuthor(match["name"].strip(), email)


def _message(v: Values) -> tuple[str, SourcePos]:
    value = v.take("a string")
    if not value.quoted:
        raise Invalid(f"{v.label} expects a string, not the bare word {value.shown()}", value.pos,
                      f'strings are quoted: "{value.text}"')
    return value.text, value.pos


def _marker_value(v: Values) -> tuple[MarkerValue, str]:
    kind = v.choice({m.value: m for m in MarkerValue}, "value kind")
    if kind is not MarkerValue.REGEX:
        return kind, ""
    pattern = v.string('a regular expression with a "value" group')
    if not pattern:
        raise Invalid("value regex expects a non-empty pattern", v.keyword.pos)
    return kind, pattern


def _page_size(v: Values) -> int:
    return v.integer()


_NTFY_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")


def _alert_events(v: Values) -> list[AlertEvent]:
    events = [v.choice({e.value: e for e in AlertEvent}, "event")]
    while v.more():
        event = v.choice({e.value: e for e in AlertEvent}, "event")
        if event in events:
            raise Invalid(f"on: '{event.value}' given twice", v.last.pos, code="dsl-duplicate")
        events.append(event)
    return events


def _http_url(v: Values, example: str) -> tuple[str, Value]:
    text = v.string(f'a URL, e.g. "{example}"')
    value = v.last
    try:
        parts = urlsplit(text)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        hint = f'write: {v.label} "{example}"'
        raise Invalid(f"{v.label} expects an http(s) URL with a host, not {value.shown()}", value.pos, hint)
    return text, value


def _webhook(v: Values) -> tuple[AlertKind, str, str]:
    url, _ = _http_url(v, "https://hooks.example.com/gitward")
    return AlertKind.WEBHOOK, url, ""


def _ntfy(v: Values) -> tuple[AlertKind, str, str]:
    url, value = _http_url(v, "https://ntfy.sh/my-topic")
    parts = urlsplit(url)
    server_path, _, topic = parts.path.rstrip("/").rpartition("/")
    if parts.query or parts.fragment or not _NTFY_TOPIC.fullmatch(topic):
        hint = 'the URL ends with the topic: ntfy "https://ntfy.sh/my-topic"'
        raise Invalid(f"ntfy expects a topic URL, not {value.shown()}", value.pos, hint)
    return AlertKind.NTFY, urlunsplit((parts.scheme, parts.netloc, server_path, "", "")), topic


def _alert(**attrs: Any) -> Alert:
    kind, url, topic = attrs.pop("destination")
    return Alert(kind=kind, url=url, topic=topic, **attrs)


_DIGEST = {
    "never": DigestReflection.NEVER,
    "if-not-present": DigestReflection.IF_NOT_PRESENT,
    "always": DigestReflection.ALWAYS,
}

_IMAGE_FIELDS = {
    "new-name": Spec("new_name", _string),
    "new-tag": Spec("new_tag", _string),
    "digest": Spec("digest", _string),
}

_TARGET_FIELDS = {
    "group": Spec("group", _string),
    "version": Spec("version", _string),
    "kind": Spec("kind", _string),
    "name": Spec("name", _string),
    "namespace": Spec("namespace", _string),
    "label-selector": Spec("label_selector", _string),
    "annotation-selector": Spec("annotation_selector", _string),
}


def _provider(v: Values) -> str:
    provider = v.choice({p: p for p in REGISTRY_PROVIDERS}, "provider")
    if provider != "generic":
        v.ignored(provider_note(provider))
    return provider


def _pull_account(v: Values) -> str:
    account = v.string()
    v.ignored(SERVICE_ACCOUNT_NOTE)
    return account


def _digest_reflection(v: Values) -> DigestReflection:
    return v.choice(_DIGEST, "digest reflection")


def _digest_interval(v: Values) -> timedelta:
    interval = v.duration()
    v.ignored(DIGEST_WHEN_PLANNED)
    return interval


_REGISTRY_ACCESS = {
    "secret": Spec("secret_ref", _string),
    "cert-secret": Spec("cert_secret_ref", _string),
    "proxy-secret": Spec("proxy_secret_ref", _string),
    "service-account": Spec("service_account_name", _pull_account),
    "provider": Spec("provider", _provider),
    "insecure": Spec("insecure", _flag),
}
"""How an image repository or an OCI source reaches its registry."""

_FLUX = Spec("flux_fields", _flux, Merge.APPEND)
"""`flux PATH "YAML"`: a Flux field gitward does not model (dslflux.py), on every Flux kind."""


# --- Statements -----------------------------------------------------------------------------


def _image_update(**attrs: Any) -> ImageUpdate:
    """`message` keeps where its template is written, for the template's errors."""
    if "message" in attrs:
        attrs["message_template"], attrs["message_origin"] = attrs.pop("message")
    return ImageUpdate(**attrs)


def _marker_dialect(**attrs: Any) -> MarkerDialect:
    value, pattern = attrs.pop("value", (MarkerValue.YAML_SCALAR, ""))
    return MarkerDialect(value=value, value_pattern=pattern, **attrs)


@dataclass(frozen=True)
class Kind:
    """One statement: the words that start it, what it builds and the keywords it takes."""

    words: tuple[str, ...]
    build: Callable[..., Rule]
    fields: Mapping[str, Spec]
    required: Mapping[str, str]  # keyword (or `a|b`: one of them) -> an example line for the hint
    namespaced: bool = True

    @property
    def label(self) -> str:
        return " ".join(self.words)


KINDS = (
    Kind(
        ("source", "git"),
        GitSource,
        {
            "url": Spec("url", _string),
            **{kw: Spec("ref", _git_ref_part(kw), Merge.PARTS, parts=GitRef) for kw in _GIT_REF_FIELDS},
            "interval": Spec("interval", _duration),
            "timeout": Spec("timeout", _duration),
            "secret": Spec("secret_ref", _string),
            "proxy-secret": Spec("proxy_secret_ref", _string),
            "ignore": Spec("ignore", _string),
            "suspend": Spec("suspend", _flag),
            "recurse-submodules": Spec("recurse_submodules", _flag),
            "flux": _FLUX,
        },
        {"url": 'url "https://github.com/org/repo"'},
    ),
    Kind(
        ("source", "oci"),
        OCISource,
        {
            "url": Spec("url", _string),
            **{kw: Spec("ref", _oci_ref_part(kw), Merge.PARTS, parts=OCIRef) for kw in _OCI_REF_FIELDS},
            "interval": Spec("interval", _duration),
            "timeout": Spec("timeout", _duration),
            **_REGISTRY_ACCESS,
            "layer": Spec("layer_selector", _layer),
            "ignore": Spec("ignore", _string),
            "suspend": Spec("suspend", _flag),
            "flux": _FLUX,
        },
        {"url": 'url "oci://ghcr.io/org/manifests"'},
    ),
    Kind(
        ("kustomization",),
        Kustomization,
        {
            "source": Spec("source_ref", _source_ref),
            "path": Spec("path", _string),
            "interval": Spec("interval", _duration),
            "retry-interval": Spec("retry_interval", _duration),
            "timeout": Spec("timeout", _duration),
            "prune": Spec("prune", _flag),
            "wait": Spec("wait", _flag),
            "force": Spec("force", _flag),
            "suspend": Spec("suspend", _flag),
            "target-namespace": Spec("target_namespace", _string),
            "name-prefix": Spec("name_prefix", _string),
            "name-suffix": Spec("name_suffix", _string),
            "service-account": Spec("service_account_name", _string),
            "depends-on": Spec("depends_on", _refs, Merge.EXTEND),
            "label": Spec("common_labels", _pair, Merge.APPEND),
            "annotation": Spec("common_annotations", _pair, Merge.APPEND),
            "image": Spec("images", _image_override, Merge.APPEND, block=True),
            "patch": Spec("patches", _patch, Merge.APPEND, block=True),
            "substitute": Spec("substitute", _pair, Merge.APPEND),
            "substitute-from": Spec("substitute_from", _substitute_from, Merge.APPEND),
            "health-check": Spec("health_checks", _health_check, Merge.APPEND),
            "component": Spec("components", _string, Merge.APPEND),
            "flux": _FLUX,
        },
        {"source": "source git NAME"},
    ),
    Kind(
        ("image", "repository"),
        ImageRepository,
        {
            "image": Spec("image", _string),
            "interval": Spec("interval", _duration),
            "timeout": Spec("timeout", _duration),
            **_REGISTRY_ACCESS,
            "suspend": Spec("suspend", _flag),
            "exclude": Spec("exclusion_list", _exclude, Merge.EXTEND),
            "page-size": Spec("page_size", _page_size),
            "flux": _FLUX,
        },
        {"image": 'image "ghcr.io/org/app"'},
    ),
    Kind(
        ("image", "policy"),
        ImagePolicy,
        {
            "repository": Spec("repository", _namespaced_ref),
            "filter": Spec("filter", _filter),
            "select": Spec("choice", _select),
            "digest": Spec("digest_reflection", _digest_reflection),
            "interval": Spec("interval", _digest_interval),
            "suspend": Spec("suspend", _flag),
            "hold": Spec("hold", _duration),
            "never": Spec("never_downgrade", _never),
            "pin": Spec("pin", _string),
            "allow": Spec("allow_rollback", _allow),
            "flux": _FLUX,
        },
        {"repository": "repository NAME", "select": 'select highest semver ">=1.0.0"'},
    ),
    Kind(
        ("image", "update"),
        _image_update,
        {
            "source": Spec("source_ref", _git_source_ref),
            "path": Spec("path", _string),
            "interval": Spec("interval", _duration),
            "suspend": Spec("suspend", _flag),
            "checkout": Spec("checkout_ref", _checkout, Merge.PARTS, parts=GitRef),
            "author": Spec("author", _author),
            "message": Spec("message", _message),
            "message-value": Spec("message_template_values", _pair, Merge.APPEND),
            "push": Spec("push_branch", _string),
            "push-refspec": Spec("push_refspec", _string),
            "push-option": Spec("push_options", _pair, Merge.APPEND),
            "policy-selector": Spec("policy_selector", _pair, Merge.APPEND),
            "signing-key": Spec("signing_key_secret", _string),
            "flux": _FLUX,
        },
        {"source": "source git NAME", "author": 'author "Flux Bot <flux@example.com>"'},
    ),
    Kind(
        ("marker", "dialect"),
        _marker_dialect,
        {
            "files": Spec("files", lambda v: v.strings("one or more file name patterns"), Merge.EXTEND),
            "key": Spec("json_key", _string),
            "comment": Spec("comment", _string),
            "screen": Spec("screen", _string),
            "value": Spec("value", _marker_value),
        },
        {"files": 'files "*.yaml" "*.yml"'},
        namespaced=False,
    ),
    Kind(
        ("alert",),
        _alert,
        {
            "on": Spec("on", _alert_events),
            "webhook": Spec("destination", _webhook),
            "ntfy": Spec("destination", _ntfy),
        },
        {"on": "on update failure", "webhook|ntfy": 'webhook "https://hooks.example.com/gitward"'},
        namespaced=False,
    ),
)

_STATEMENTS_HINT = "statements: " + ", ".join(kind.label for kind in KINDS)


def kind_of(header: Sequence[Value]) -> tuple[Kind, Value]:
    """The statement kind and the name value from `KIND-WORDS NAME`."""
    first = header[0]
    if first.quoted:
        message = "a statement starts with its kind, not a string"
        raise Invalid(message, first.pos, _STATEMENTS_HINT, "dsl-statement")
    words = [v.text if not v.quoted else "" for v in header]
    for kind in KINDS:
        n = len(kind.words)
        if tuple(words[:n]) != kind.words:
            continue
        if len(header) == n:
            hint = f"write: {kind.label} NAME {{"
            raise Invalid(f"{kind.label} expects a name", header[n - 1].pos, hint, "dsl-name")
        if len(header) > n + 1:
            extra = header[n + 1]
            message = f"unexpected {extra.shown()} after the name of {kind.label} {header[n].text}"
            raise Invalid(message, extra.pos, "a name is one word: NAME or NAMESPACE/NAME", "dsl-name")
        if header[n].quoted:
            raise Invalid(f"the name of {kind.label} is written without quotes", header[n].pos, code="dsl-name")
        return kind, header[n]
    if words[0] == "source" and len(header) > 1:
        hint = "write: source git NAME { or source oci NAME {"
        message = f"unknown source '{header[1].text}': gitward fetches git and oci sources"
        raise Invalid(message, header[1].pos, hint, "dsl-statement")
    two_word = any(k.words[0] == words[0] and len(k.words) == 2 for k in KINDS) and len(header) > 1
    phrase = " ".join(words[:2]) if two_word else words[0]
    labels = [kind.label for kind in KINDS]
    message = f"unknown statement '{phrase}'{did_you_mean(phrase, labels)}"
    raise Invalid(message, header[1].pos if two_word else first.pos, _STATEMENTS_HINT, "dsl-statement")

