"""The `*.rules` writer: canonical DSL text for model objects.

Statements come in the order given, separated by a blank line; fields come in a fixed order
(the order of docs/dsl.md) and a field equal to its default is left out; the Flux fields
gitward does not model come last, as `flux` fields. Every string is written in a form that
reads back to exactly the same string, so `parse_rules(print_rules(rules))` gives the rules
back (origins aside).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import timedelta

from engine.model import (
    DEFAULT_NAMESPACE,
    Alert,
    DigestReflection,
    FluxField,
    GitRef,
    GitSource,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    LayerOperation,
    LayerSelector,
    MarkerDialect,
    MarkerValue,
    OCISource,
    PolicyKind,
    Rule,
    Selector,
    SourceRef,
)
from engine.rules.dslflux import value_text
from engine.rules.dslschema import SOURCE_WORDS
from engine.rules.duration import format_short
from engine.rules.parse import decode_literal
from engine.rules.syntax import is_word

_INDENT = "  "
_JSON_ESCAPES = {'"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}
_ESCAPED_AFTER_BACKSLASH = frozenset('"\\/bfnrtu')
_DIGEST_WORDS = {
    DigestReflection.NEVER: "never",
    DigestReflection.IF_NOT_PRESENT: "if-not-present",
    DigestReflection.ALWAYS: "always",
}


def dsl_expressible(rule: Rule) -> bool:
    """Whether the DSL has a statement for `rule`: it has none for the Flux kinds gitward does
    not reconcile (FluxObject)."""
    return type(rule) in _WRITERS


def print_rules(rules: Iterable[Rule]) -> str:
    """Canonical DSL text for `rules`, one statement per rule (each `dsl_expressible`)."""
    return "\n".join(_statement(rule) for rule in rules)


def quote(text: str, indent: str = "") -> str:
    """The literal for `text`: a multi-line string as \"\"\"...\"\"\", a regex-like one as '...'
    when that avoids escapes, otherwise "..."; each form is checked to read back unchanged.
    `indent` is the indentation of the lines a \"\"\" string continues on."""
    if "\n" in text and all(c.isprintable() or c in "\n\t" for c in text):
        long = _long_literal(text, indent)
        if decode_literal(long) == text:
            return long
    double = _double_literal(text)
    if ("\\\\" in double or '\\"' in double) and "'" not in text and text.isprintable():
        raw = f"'{text}'"
        if decode_literal(raw) == text:
            return raw
    return double


def _double_literal(text: str) -> str:
    out = ['"']
    for i, char in enumerate(text):
        if char == "\\":
            follower = text[i + 1] if i + 1 < len(text) else ""
            keep = bool(follower) and follower not in _ESCAPED_AFTER_BACKSLASH and follower.isprintable()
            out.append("\\" if keep else "\\\\")
        elif char in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[char])
        elif not char.isprintable():
            out.append(_unicode_escape(char))
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _unicode_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _long_literal(text: str, indent: str) -> str:
    lines = text.replace('"""', '\\"""').split("\n")
    body = "\n".join(indent + line if line else "" for line in lines)
    closing = indent if text.endswith("\n") else ""
    return f'"""\n{body}{closing}"""'


def _ref(namespace: str, name: str, default: str = "") -> str:
    return name if namespace == default else f"{namespace}/{name}"


class _Block:
    """Field lines of one block, each a keyword and its rendered values."""

    def __init__(self, depth: int = 1):
        self.indent = _INDENT * depth
        self.lines: list[str] = []

    def add(self, keyword: str, *values: str, block: _Block | None = None) -> None:
        line = " ".join((self.indent + keyword, *values))
        if block is not None:
            line += " " + block.render(self.indent)
        self.lines.append(line)

    def string(self, keyword: str, text: str, *, default: str | None = "") -> None:
        if text != default:
            self.add(keyword, self.quote(text))

    def strings(self, keyword: str, pairs: Iterable[tuple[str, str]]) -> None:
        for key, value in pairs:
            self.add(keyword, self.quote(key), self.quote(value))

    def duration(self, keyword: str, value: timedelta | None, default: timedelta | None = None) -> None:
        if value is not None and value != default:
            self.add(keyword, format_short(value))

    def flag(self, keyword: str, value: bool) -> None:
        if value:
            self.add(keyword, "true")

    def quote(self, text: str) -> str:
        return quote(text, self.indent + _INDENT)

    def render(self, outer: str) -> str:
        if not self.lines:
            return "{}"
        return "{\n" + "".join(line + "\n" for line in self.lines) + outer + "}"


def _default(rule: Rule, attr: str) -> object:
    """The model's default for a field, so "defaults omitted" follows the model."""
    return next(f.default for f in dataclasses.fields(rule) if f.name == attr)


def _default_duration(rule: Rule, attr: str) -> timedelta | None:
    value = _default(rule, attr)
    return value if isinstance(value, timedelta) else None


def _git_ref(block: _Block, ref: GitRef, prefix: str = "") -> None:
    for keyword, value in (
        ("branch", ref.branch),
        ("tag", ref.tag),
        ("semver", ref.semver),
        ("refname", ref.name),
        ("commit", ref.commit),
    ):
        if value:
            block.add(prefix + keyword, block.quote(value))


_SOURCE_WORDS = {kind: word for word, kind in SOURCE_WORDS.items()}


def _source_ref(block: _Block, ref: SourceRef) -> None:
    block.add("source", _SOURCE_WORDS[ref.kind], _ref(ref.namespace, ref.name))


def _flux_fields(block: _Block, fields: Iterable[FluxField]) -> None:
    for field in fields:
        path = field.path if is_word(field.path) else block.quote(field.path)
        block.add("flux", path, block.quote(value_text(field)))


def _git_source(rule: GitSource, b: _Block) -> None:
    b.string("url", rule.url, default=None)
    if rule.ref != _default(rule, "ref"):
        _git_ref(b, rule.ref)
    b.duration("interval", rule.interval, _default_duration(rule, "interval"))
    b.duration("timeout", rule.timeout, _default_duration(rule, "timeout"))
    b.string("secret", rule.secret_ref)
    b.string("proxy-secret", rule.proxy_secret_ref)
    b.string("ignore", rule.ignore)
    if rule.suspend:
        b.add("suspend")
    b.flag("recurse-submodules", rule.recurse_submodules)
    _flux_fields(b, rule.flux_fields)


def _oci_source(rule: OCISource, b: _Block) -> None:
    b.string("url", rule.url, default=None)
    ref = rule.ref
    for keyword, value in (("tag", ref.tag), ("semver", ref.semver), ("semver-filter", ref.semver_filter),
                           ("digest", ref.digest)):
        b.string(keyword, value)
    b.duration("interval", rule.interval, _default_duration(rule, "interval"))
    b.duration("timeout", rule.timeout, _default_duration(rule, "timeout"))
    _registry_access(rule, b)
    layer = rule.layer_selector
    if layer != LayerSelector():
        copy = (layer.operation.value,) if layer.operation is not LayerOperation.EXTRACT else ()
        b.add("layer", b.quote(layer.media_type), *copy)
    b.string("ignore", rule.ignore)
    if rule.suspend:
        b.add("suspend")
    _flux_fields(b, rule.flux_fields)


def _kustomization(rule: Kustomization, b: _Block) -> None:
    _source_ref(b, rule.source_ref)
    b.string("path", rule.path)
    b.duration("interval", rule.interval, _default_duration(rule, "interval"))
    b.duration("retry-interval", rule.retry_interval)
    b.duration("timeout", rule.timeout)
    b.flag("prune", rule.prune)
    b.flag("wait", rule.wait)
    b.flag("force", rule.force)
    if rule.suspend:
        b.add("suspend")
    b.string("target-namespace", rule.target_namespace)
    b.string("name-prefix", rule.name_prefix)
    b.string("name-suffix", rule.name_suffix)
    b.string("service-account", rule.service_account_name)
    if rule.depends_on:
        b.add("depends-on", *(_ref(d.namespace, d.name) for d in rule.depends_on))
    b.strings("label", rule.common_labels)
    b.strings("annotation", rule.common_annotations)
    for image in rule.images:
        inner = _Block(2)
        inner.string("new-name", image.new_name)
        inner.string("new-tag", image.new_tag)
        inner.string("digest", image.digest)
        b.add("image", b.quote(image.name), block=inner if inner.lines else None)
    for patch in rule.patches:
        b.add("patch", b.quote(patch.patch), block=_selector(patch.target))
    b.strings("substitute", rule.substitute)
    for source in rule.substitute_from:
        kind = "configmap" if source.kind == "ConfigMap" else "secret"
        optional = ("optional",) if source.optional else ()
        b.add("substitute-from", kind, b.quote(source.name), *optional)
    for check in rule.health_checks:
        b.add("health-check", b.quote(check.api_version), check.kind, _ref(check.namespace, check.name))
    for component in rule.components:
        b.add("component", b.quote(component))
    _flux_fields(b, rule.flux_fields)


def _selector(target: Selector | None) -> _Block | None:
    if target is None:
        return None
    inner = _Block(2)
    inner.string("group", target.group)
    inner.string("version", target.version)
    inner.string("kind", target.kind)
    inner.string("name", target.name)
    inner.string("namespace", target.namespace)
    inner.string("label-selector", target.label_selector)
    inner.string("annotation-selector", target.annotation_selector)
    return inner


def _registry_access(rule: ImageRepository | OCISource, b: _Block) -> None:
    """How an image or OCI repository reaches its registry."""
    b.string("secret", rule.secret_ref)
    b.string("cert-secret", rule.cert_secret_ref)
    b.string("proxy-secret", rule.proxy_secret_ref)
    b.string("service-account", rule.service_account_name)
    if rule.provider != _default(rule, "provider"):
        b.add("provider", rule.provider)
    b.flag("insecure", rule.insecure)


def _image_repository(rule: ImageRepository, b: _Block) -> None:
    b.string("image", rule.image, default=None)
    b.duration("interval", rule.interval, _default_duration(rule, "interval"))
    b.duration("timeout", rule.timeout)
    _registry_access(rule, b)
    if rule.suspend:
        b.add("suspend")
    if not rule.exclusion_list:
        b.add("exclude", "none")
    elif rule.exclusion_list != _default(rule, "exclusion_list"):
        b.add("exclude", *(b.quote(p) for p in rule.exclusion_list))
    if rule.page_size != _default(rule, "page_size"):
        b.add("page-size", str(rule.page_size))
    _flux_fields(b, rule.flux_fields)


def _image_policy(rule: ImagePolicy, b: _Block) -> None:
    b.add("repository", _ref(rule.repository.namespace, rule.repository.name))
    if rule.filter is not None:
        extract = ("extract", b.quote(rule.filter.extract)) if rule.filter.extract else ()
        b.add("filter", b.quote(rule.filter.pattern), *extract)
    choice = rule.choice
    if choice.kind is PolicyKind.SEMVER:
        b.add("select", "highest", "semver", b.quote(choice.range))
    else:
        b.add("select", choice.direction.value, choice.kind.value)
    if rule.digest_reflection is not DigestReflection.NEVER:
        b.add("digest", _DIGEST_WORDS[rule.digest_reflection])
    b.duration("interval", rule.interval)
    if rule.suspend:
        b.add("suspend")
    b.duration("hold", rule.hold)
    if rule.never_downgrade:
        b.add("never", "downgrade")
    b.string("pin", rule.pin)
    if rule.allow_rollback:
        b.add("allow", "rollback")
    _flux_fields(b, rule.flux_fields)


def _image_update(rule: ImageUpdate, b: _Block) -> None:
    _source_ref(b, rule.source_ref)
    b.string("path", rule.path)
    b.duration("interval", rule.interval, _default_duration(rule, "interval"))
    if rule.suspend:
        b.add("suspend")
    if rule.checkout_ref is not None:
        _git_ref(b, rule.checkout_ref, prefix="checkout ")
    b.string("author", str(rule.author), default=None)
    b.string("message", rule.message_template, default=str(_default(rule, "message_template")))
    b.strings("message-value", rule.message_template_values)
    b.string("push", rule.push_branch)
    b.string("push-refspec", rule.push_refspec)
    b.strings("push-option", rule.push_options)
    b.strings("policy-selector", rule.policy_selector)
    b.string("signing-key", rule.signing_key_secret)
    _flux_fields(b, rule.flux_fields)


def _marker_dialect(rule: MarkerDialect, b: _Block) -> None:
    b.add("files", *(b.quote(f) for f in rule.files))
    b.string("key", rule.json_key, default=str(_default(rule, "json_key")))
    b.string("comment", rule.comment, default=str(_default(rule, "comment")))
    b.string("screen", rule.screen, default=str(_default(rule, "screen")))
    if rule.value is MarkerValue.REGEX:
        b.add("value", "regex", b.quote(rule.value_pattern))


def _alert(rule: Alert, b: _Block) -> None:
    b.add("on", *(event.value for event in rule.on))
    b.add(rule.kind.value, b.quote(rule.target))


_WRITERS: dict[type, tuple[str, Callable[..., None]]] = {
    GitSource: ("source git", _git_source),
    OCISource: ("source oci", _oci_source),
    Kustomization: ("kustomization", _kustomization),
    ImageRepository: ("image repository", _image_repository),
    ImagePolicy: ("image policy", _image_policy),
    ImageUpdate: ("image update", _image_update),
    MarkerDialect: ("marker dialect", _marker_dialect),
    Alert: ("alert", _alert),
}


def _statement(rule: Rule) -> str:
    label, write = _WRITERS[type(rule)]
    block = _Block()
    write(rule, block)
    name = rule.name if isinstance(rule, (MarkerDialect, Alert)) else _ref(rule.namespace, rule.name, DEFAULT_NAMESPACE)
    return f"{label} {name} {block.render('')}\n"

