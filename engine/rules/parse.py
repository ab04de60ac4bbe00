"""The `*.rules` reader: Lark parses the generic shape, a schema pass builds the model.

This is the only module that imports lark. grammar.lark knows statements, fields, values and
blocks; the tables below know which keywords each statement takes and what their values mean,
so an unknown keyword gets a did-you-mean and a bad value a typed, located message. Every problem
goes to the caller's `Problems`; bad input never raises. The language is documented in
docs/dsl.md.
"""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from engine.errors import Problems, SourcePos, did_you_mean
from engine.model import (
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
    MarkerDialect,
    MarkerValue,
    NamespacedRef,
    Patch,
    PolicyChoice,
    PolicyKind,
    Rule,
    Selector,
    SourceRef,
    SubstituteFrom,
    TagFilter,
)
from engine.rules.duration import DurationError, parse_duration

_T = TypeVar("_T")


def parse_rules(path: str, text: str, problems: Problems) -> list[Rule]:
    """Read one rules file; report every problem to `problems` and return the valid rules.

    A syntax error stops the file at the first one (the rest cannot be trusted); a statement
    with a bad field is reported and left out, the others are still returned.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        bad = _syntax_problem(path, text, err)
        problems.error(bad.message, bad.pos, code=bad.code, hint=bad.hint)
        return []
    reader = _Reader(path, problems)
    statements = (node for node in tree.children if isinstance(node, lark.Tree))
    return [rule for node in statements if (rule := reader.statement(node)) is not None]


def decode_literal(text: str) -> str | None:
    """The string a literal denotes, or None unless `text` is exactly one valid string literal.

    The printer uses it to check that the form it chose reads back to the same string.
    """
    for kind in ("STRING", "RAW_STRING", "LONG_STRING"):
        if _terminal(kind).fullmatch(text):
            try:
                return _decode(kind, text)
            except ValueError:
                return None
    return None


# --- Lark -----------------------------------------------------------------------------------


@functools.cache
def _parser() -> lark.Lark:
    grammar = Path(__file__).with_name("grammar.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", lexer="basic", propagate_positions=True)


@functools.cache
def _terminal(name: str) -> re.Pattern[str]:
    return re.compile(_parser().get_terminal(name).pattern.to_regexp())


class _Invalid(Exception):
    """One located problem; raised inside a field or header, reported by the reader."""

    def __init__(self, message: str, pos: SourcePos, hint: str = "", code: str = "dsl-value"):
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.hint = hint
        self.code = code


def _syntax_problem(path: str, text: str, err: UnexpectedInput) -> _Invalid:
    """Turn a Lark error into a message about the user's text, not about the parser."""
    if isinstance(err, UnexpectedCharacters):
        return _bad_character(path, text, err.pos_in_stream or 0, err.line or 0, err.column or 0)
    if isinstance(err, UnexpectedToken) and err.token.type != "$END":
        return _bad_token(path, text, err.token)
    return _end_of_file(path, text)


def _bad_character(path: str, text: str, at: int, line: int, column: int) -> _Invalid:
    end = text.find("\n", at)
    end = len(text) if end < 0 else end
    pos = SourcePos(path, line, column, line, column + max(end - at, 1), syntax="dsl")
    char = text[at]
    if text.startswith('"""', at):
        return _Invalid('unterminated string: no closing """', pos, code="dsl-syntax")
    if char == '"':
        hint = 'a "..." string ends on its line; write """...""" for text over several lines'
        return _Invalid("unterminated string", pos, hint, code="dsl-syntax")
    if char == "'":
        hint = "a '...' string ends on its line and cannot contain '; use \"...\" instead"
        return _Invalid("unterminated string", pos, hint, code="dsl-syntax")
    pos = SourcePos(path, line, column, line, column + 1, syntax="dsl")
    hint = 'quote values that are not plain words, e.g. ">=1.0.0"'
    return _Invalid(f"unexpected character {char!r}", pos, hint, code="dsl-syntax")


@dataclass
class _Context:
    """What was open where a syntax error happened, found by lexing the text up to it."""

    open: list[tuple[str, int, int]] = field(default_factory=list)  # (header, line, column)
    words: list[lark.Token] = field(default_factory=list)  # values since the last separator
    previous: str = ""  # type of the token before the error

    @property
    def line_text(self) -> str:
        return " ".join(_written(t) for t in self.words)


def _scan(text: str, until: int) -> _Context:
    ctx = _Context()
    try:
        for token in _parser().lex(text):
            if token.start_pos is not None and token.start_pos >= until:
                break
            if token.type == "LBRACE":
                first = ctx.words[0] if ctx.words else token
                ctx.open.append((ctx.line_text or "{", first.line or 0, first.column or 0))
                ctx.words = []
            elif token.type == "RBRACE":
                if ctx.open:
                    ctx.open.pop()
                ctx.words = []
            elif token.type == "_SEP":
                ctx.words = []
            else:
                ctx.words.append(token)
            ctx.previous = token.type
    except UnexpectedInput:
        pass
    return ctx


def _end_of_file(path: str, text: str) -> _Invalid:
    body = text.rstrip()
    line = body.count("\n") + 1
    column = len(body) - (body.rfind("\n") + 1) + 1
    pos = SourcePos(path, line, column, line, column + 1, syntax="dsl")
    ctx = _scan(text, len(text))
    if ctx.open:
        header, at_line, at_column = ctx.open[-1]
        message = f"unexpected end of file: expected '}}' to close '{header}' opened at {at_line}:{at_column}"
        return _Invalid(message, pos, code="dsl-syntax")
    if ctx.words:
        return _Invalid(f"unexpected end of file: expected '{{' after '{ctx.line_text}'", pos, code="dsl-syntax")
    return _Invalid("unexpected end of file", pos, code="dsl-syntax")


def _bad_token(path: str, text: str, token: lark.Token) -> _Invalid:
    ctx = _scan(text, token.start_pos or 0)
    pos = _token_pos(path, token)
    shown = _shown_token(token)
    if token.type == "_SEP" and ctx.words:
        hint = "a block opens on the line of its statement: kustomization NAME {"
        return _Invalid(f"expected '{{' at the end of '{ctx.line_text}'", pos, hint, code="dsl-syntax")
    if token.type == "LBRACE" and not ctx.words:
        if ctx.open:
            hint = "a nested block opens on the line of its field: image \"nginx\" {"
            return _Invalid("unexpected '{'", pos, hint, code="dsl-syntax")
        hint = "a statement starts with its kind and name: kustomization NAME {"
        return _Invalid("unexpected '{'", pos, hint, code="dsl-syntax")
    if token.type == "RBRACE" and not ctx.open:
        return _Invalid("unexpected '}': no block is open", pos, code="dsl-syntax")
    if ctx.previous == "RBRACE":
        hint = "start a new line, or separate with ';'"
        return _Invalid(f"unexpected {shown} after '}}'", pos, hint, code="dsl-syntax")
    return _Invalid(f"unexpected {shown}", pos, code="dsl-syntax")


def _written(token: lark.Token) -> str:
    """A token as written, on one line and cut short."""
    text = str(token).replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."


def _shown_token(token: lark.Token) -> str:
    if token.type == "_SEP":
        return "';'" if token.startswith(";") else "end of line"
    return f"'{_written(token)}'" if token.type in ("WORD", "LBRACE", "RBRACE") else _written(token)


def _token_pos(path: str, token: lark.Token) -> SourcePos:
    return SourcePos(
        path,
        token.line or 0,
        token.column or 0,
        token.end_line or 0,
        token.end_column or 0,
        syntax="dsl",
    )


# --- String literals ------------------------------------------------------------------------

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")


def _decode(kind: str, raw: str) -> str:
    if kind == "RAW_STRING":
        return raw[1:-1]
    if kind == "LONG_STRING":
        return _long_string(raw[3:-3])
    return _unescape(raw[1:-1])


def _unescape(body: str) -> str:
    """JSON-style escapes; any other backslash is kept, so regexes read as written."""
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        follower = body[i + 1] if i + 1 < len(body) else ""
        if char == "\\" and follower in _ESCAPES:
            out.append(_ESCAPES[follower])
            i += 2
        elif char == "\\" and follower == "u" and _HEX4.fullmatch(body, i + 2, i + 6):
            code = int(body[i + 2 : i + 6], 16)
            i += 6
            if 0xD800 <= code < 0xDC00 and body.startswith("\\u", i) and _HEX4.fullmatch(body, i + 2, i + 6):
                low = int(body[i + 2 : i + 6], 16)
                if 0xDC00 <= low < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
            if 0xD800 <= code < 0xE000:
                raise ValueError(f"invalid escape \\u{code:04x}: half of a surrogate pair")
            out.append(chr(code))
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _long_string(body: str) -> str:
    """Drop a newline right after the opening quotes, then the common indentation."""
    return textwrap.dedent(body.removeprefix("\n")).replace('\\"""', '"""')


# --- The generic tree -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Value:
    """A bare word or the contents of a string, with where it was written."""

    text: str
    quoted: bool
    pos: SourcePos

    def shown(self) -> str:
        text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        text = text.replace("\n", "\\n")
        return f'"{text}"' if self.quoted else f"'{text}'"


@dataclass(frozen=True)
class _Field:
    values: tuple[_Value, ...]  # values[0] is the keyword
    block: _Block | None


@dataclass(frozen=True)
class _Block:
    fields: tuple[_Field, ...]
    pos: SourcePos  # the '{'


# --- Values ---------------------------------------------------------------------------------

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_KIND_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_AUTHOR = re.compile(r"(?P<name>[^<>]*)<(?P<email>[^<>]*)>")


def _one_of(options: Collection[str]) -> str:
    words = list(options)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _check_name(text: str, pos: SourcePos, what: str = "name") -> None:
    pattern, limit, chars = (
        (_LABEL, 63, "digits and '-'") if what == "namespace" else (_NAME, 253, "digits, '-' and '.'")
    )
    if len(text) <= limit and pattern.fullmatch(text):
        return
    hint = "Kubernetes names are lowercase" if pattern.fullmatch(text.lower()) else ""
    message = (
        f"invalid {what} '{text}': expected lowercase letters, {chars}, "
        f"starting and ending with a letter or digit (at most {limit} characters)"
    )
    raise _Invalid(message, pos, hint, code="dsl-name")


def _split_ref(value: _Value) -> tuple[str, str]:
    """`NAME` -> ("", NAME); `NS/NAME` -> (NS, NAME)."""
    parts = value.text.split("/")
    if len(parts) > 2 or not all(parts):
        message = f"invalid reference {value.shown()}: expected NAME or NAMESPACE/NAME"
        raise _Invalid(message, value.pos, code="dsl-name")
    if len(parts) == 2:
        _check_name(parts[0], value.pos, "namespace")
    _check_name(parts[-1], value.pos)
    return ("", parts[0]) if len(parts) == 1 else (parts[0], parts[1])


class _Values:
    """The values after a field's keyword, taken left to right by the field's reader."""

    def __init__(self, reader: _Reader, keyword: _Value, field: _Field, keywords: Collection[str]):
        self.reader = reader
        self.keyword = keyword
        self.block = field.block
        self._values = field.values[1:]
        self._next = 0
        self._keywords = keywords

    @property
    def label(self) -> str:
        return self.keyword.text

    def more(self) -> bool:
        return self._next < len(self._values)

    def take(self, expected: str) -> _Value:
        if not self.more():
            raise _Invalid(f"{self.label} expects {expected}", self.keyword.pos)
        value = self._values[self._next]
        self._next += 1
        return value

    @property
    def last(self) -> _Value:
        """The value taken most recently (the keyword before any)."""
        return self._values[self._next - 1] if self._next else self.keyword

    def accept(self, word: str) -> _Value | None:
        """Take the next value if it is the bare word `word`."""
        if self.more():
            value = self._values[self._next]
            if not value.quoted and value.text == word:
                self._next += 1
                return value
        return None

    def end(self) -> None:
        if self.more():
            extra = self._values[self._next]
            hint = ""
            if not extra.quoted and extra.text in self._keywords:
                hint = "one field per line, or separate fields with ';'"
            raise _Invalid(f"too many values for {self.label}: unexpected {extra.shown()}", extra.pos, hint)

    def string(self, expected: str = "a string") -> str:
        value = self.take(expected)
        if not value.quoted:
            hint = f'strings are quoted: "{value.text}"'
            raise _Invalid(f"{self.label} expects {expected}, not the bare word {value.shown()}", value.pos, hint)
        return value.text

    def strings(self, expected: str) -> list[str]:
        items = [self.string(expected)]
        while self.more():
            items.append(self.string(expected))
        return items

    def word(self, expected: str) -> _Value:
        value = self.take(expected)
        if value.quoted:
            hint = "write it without quotes"
            raise _Invalid(f"{self.label} expects {expected}, not the string {value.shown()}", value.pos, hint)
        return value

    def duration(self) -> timedelta:
        value = self.word("a duration")
        try:
            return parse_duration(value.text)
        except DurationError as err:
            raise _Invalid(str(err), value.pos) from None
        except OverflowError:
            raise _Invalid(f'invalid duration "{value.text}": too long', value.pos) from None

    def flag(self) -> bool:
        """`true` or `false`; the bare keyword means true."""
        if not self.more():
            return True
        value = self.word("true or false")
        if value.text not in ("true", "false"):
            raise _Invalid(f"{self.label} expects true or false, not {value.shown()}", value.pos)
        return value.text == "true"

    def integer(self) -> int:
        value = self.word("a positive integer")
        if not re.fullmatch(r"[0-9]{1,9}", value.text) or int(value.text) == 0:
            raise _Invalid(f"{self.label} expects a positive integer, not {value.shown()}", value.pos)
        return int(value.text)

    def choice(self, options: Mapping[str, _T], noun: str) -> _T:
        value = self.word(_one_of(options))
        if value.text not in options:
            suggestion = did_you_mean(value.text, options)
            message = f"unknown {noun} {value.shown()}: expected {_one_of(options)}{suggestion}"
            raise _Invalid(message, value.pos)
        return options[value.text]

    def ref(self, expected: str = "NAME or NAMESPACE/NAME") -> tuple[str, str, SourcePos]:
        value = self.word(expected)
        namespace, name = _split_ref(value)
        return namespace, name, value.pos

    def nested(self, specs: Mapping[str, _Spec], what: str) -> dict[str, Any]:
        """The fields of this field's `{ ... }` block (empty without one)."""
        return self.reader.fields(self.block, specs, what, pairs=True)[0] if self.block else {}


# --- Field readers --------------------------------------------------------------------------


class _Merge(Enum):
    ONCE = "once"  # given at most once
    APPEND = "append"  # repeatable: each line adds one item
    EXTEND = "extend"  # repeatable: each line adds its values; None (`none`) is an explicit empty list
    GIT_REF = "git-ref"  # (label, GitRef field, value) parts gathered into one GitRef, each once


@dataclass(frozen=True)
class _Spec:
    attr: str
    read: Callable[[_Values], Any]
    merge: _Merge = _Merge.ONCE
    block: bool = False


def _string(v: _Values) -> str:
    return v.string()


def _duration(v: _Values) -> timedelta:
    return v.duration()


def _flag(v: _Values) -> bool:
    return v.flag()


def _pair(v: _Values) -> tuple[str, str]:
    return v.string("a key and a value"), v.string("a key and a value")


def _source_ref(v: _Values) -> SourceRef:
    kind = v.word("git NAME")
    if kind.text != "git":
        hint = "write: source git NAME"
        raise _Invalid(f"only git sources are supported, not '{kind.text}'", kind.pos, hint)
    namespace, name, pos = v.ref("git NAME")
    return SourceRef(name, namespace, origin=pos)


def _namespaced_ref(v: _Values) -> NamespacedRef:
    namespace, name, pos = v.ref()
    return NamespacedRef(name, namespace, origin=pos)


def _refs(v: _Values) -> list[NamespacedRef]:
    refs = [_namespaced_ref(v)]
    while v.more():
        refs.append(_namespaced_ref(v))
    return refs


_GIT_REF_FIELDS = {"branch": "branch", "tag": "tag", "semver": "semver", "refname": "name", "commit": "commit"}


def _git_ref_part(keyword: str) -> Callable[[_Values], tuple[str, str, str]]:
    return lambda v: (keyword, _GIT_REF_FIELDS[keyword], v.string())


def _checkout(v: _Values) -> tuple[str, str, str]:
    keyword = v.choice({k: k for k in _GIT_REF_FIELDS}, "git reference")
    return f"checkout {keyword}", _GIT_REF_FIELDS[keyword], v.string()


def _image_override(v: _Values) -> ImageOverride:
    name = v.string("an image name")
    return ImageOverride(name, **v.nested(_IMAGE_FIELDS, f'image "{name}"'), origin=v.keyword.pos)


def _patch(v: _Values) -> Patch:
    text = v.string("a patch")
    target = Selector(**v.nested(_TARGET_FIELDS, "patch target")) if v.block else None
    return Patch(text, target, origin=v.keyword.pos)


def _substitute_from(v: _Values) -> SubstituteFrom:
    kind = v.choice({"configmap": "ConfigMap", "secret": "Secret"}, "kind")
    name = v.string("a name")
    return SubstituteFrom(kind, name, v.accept("optional") is not None, origin=v.keyword.pos)


def _health_check(v: _Values) -> HealthCheck:
    expected = 'an API version, a kind and a name: health-check "apps/v1" Deployment NAME'
    api_version = v.string(expected)
    kind = v.word(expected)
    if not _KIND_WORD.fullmatch(kind.text):
        raise _Invalid(f"health-check expects a kind such as Deployment, not {kind.shown()}", kind.pos)
    namespace, name, _ = v.ref(expected)
    return HealthCheck(api_version, kind.text, name, namespace, origin=v.keyword.pos)


def _exclude(v: _Values) -> list[str] | None:
    return None if v.accept("none") else v.strings("one or more regular expressions, or none")


def _select(v: _Values) -> PolicyChoice:
    direction = v.choice({d.value: d for d in Direction}, "direction")
    direction_pos = v.last.pos
    kind = v.choice({k.value: k for k in PolicyKind}, "policy")
    if kind is not PolicyKind.SEMVER:
        return PolicyChoice(kind, direction, origin=v.keyword.pos)
    if direction is Direction.LOWEST:
        hint = 'semver always selects the highest version in range: select highest semver ">=1.0.0"'
        raise _Invalid("'select lowest semver' is not supported", direction_pos, hint)
    value = v.take('a semver range, e.g. ">=1.0.0 <2.0.0"')
    if not value.quoted or not value.text:
        raise _Invalid('select semver expects a range, e.g. ">=1.0.0 <2.0.0"', value.pos)
    return PolicyChoice(kind, direction, value.text, origin=value.pos)


def _filter(v: _Values) -> TagFilter:
    pattern = v.take("a regular expression")
    if not pattern.quoted:
        raise _Invalid(f"filter expects a quoted regular expression, not {pattern.shown()}", pattern.pos)
    extract = v.string('an extract template, e.g. "$ts"') if v.accept("extract") else ""
    return TagFilter(pattern.text, extract, origin=pattern.pos)


def _never(v: _Values) -> bool:
    word = v.word("downgrade")
    if word.text != "downgrade":
        raise _Invalid(f"never expects downgrade, not {word.shown()}", word.pos)
    return True


def _author(v: _Values) -> CommitAuthor:
    text = v.string('"Name <email>"')
    match = _AUTHOR.fullmatch(text.strip())
    email = match["email"] if match else ""
    if match is None or not email or any(c.isspace() for c in email):
        hint = 'write: author "Flux Bot <flux@example.com>"'
        raise _Invalid(f'author expects "Name <email>", not "{text}"', v.keyword.pos, hint)
    return CommitAuthor(match["name"].strip(), email)


def _marker_value(v: _Values) -> tuple[MarkerValue, str]:
    kind = v.choice({m.value: m for m in MarkerValue}, "value kind")
    if kind is not MarkerValue.REGEX:
        return kind, ""
    pattern = v.string('a regular expression with a "value" group')
    if not pattern:
        raise _Invalid("value regex expects a non-empty pattern", v.keyword.pos)
    return kind, pattern


def _page_size(v: _Values) -> int:
    return v.integer()


_PROVIDERS = ("generic", "aws", "azure", "gcp")
_DIGEST = {
    "never": DigestReflection.NEVER,
    "if-not-present": DigestReflection.IF_NOT_PRESENT,
    "always": DigestReflection.ALWAYS,
}

_IMAGE_FIELDS = {
    "new-name": _Spec("new_name", _string),
    "new-tag": _Spec("new_tag", _string),
    "digest": _Spec("digest", _string),
}

_TARGET_FIELDS = {
    "group": _Spec("group", _string),
    "version": _Spec("version", _string),
    "kind": _Spec("kind", _string),
    "name": _Spec("name", _string),
    "namespace": _Spec("namespace", _string),
    "label-selector": _Spec("label_selector", _string),
    "annotation-selector": _Spec("annotation_selector", _string),
}


# --- Statements -----------------------------------------------------------------------------


def _marker_dialect(**attrs: Any) -> MarkerDialect:
    value, pattern = attrs.pop("value", (MarkerValue.YAML_SCALAR, ""))
    return MarkerDialect(value=value, value_pattern=pattern, **attrs)


@dataclass(frozen=True)
class _Kind:
    words: tuple[str, ...]
    build: Callable[..., Rule]
    fields: Mapping[str, _Spec]
    required: Mapping[str, str]  # keyword -> an example line for the hint
    namespaced: bool = True

    @property
    def label(self) -> str:
        return " ".join(self.words)


_KINDS = (
    _Kind(
        ("source", "git"),
        GitSource,
        {
            "url": _Spec("url", _string),
            **{kw: _Spec("ref", _git_ref_part(kw), _Merge.GIT_REF) for kw in _GIT_REF_FIELDS},
            "interval": _Spec("interval", _duration),
            "timeout": _Spec("timeout", _duration),
            "secret": _Spec("secret_ref", _string),
            "ignore": _Spec("ignore", _string),
            "suspend": _Spec("suspend", _flag),
            "recurse-submodules": _Spec("recurse_submodules", _flag),
        },
        {"url": 'url "https://github.com/org/repo"'},
    ),
    _Kind(
        ("kustomization",),
        Kustomization,
        {
            "source": _Spec("source_ref", _source_ref),
            "path": _Spec("path", _string),
            "interval": _Spec("interval", _duration),
            "retry-interval": _Spec("retry_interval", _duration),
            "timeout": _Spec("timeout", _duration),
            "prune": _Spec("prune", _flag),
            "wait": _Spec("wait", _flag),
            "force": _Spec("force", _flag),
            "suspend": _Spec("suspend", _flag),
            "target-namespace": _Spec("target_namespace", _string),
            "name-prefix": _Spec("name_prefix", _string),
            "name-suffix": _Spec("name_suffix", _string),
            "service-account": _Spec("service_account_name", _string),
            "depends-on": _Spec("depends_on", _refs, _Merge.EXTEND),
            "label": _Spec("common_labels", _pair, _Merge.APPEND),
            "annotation": _Spec("common_annotations", _pair, _Merge.APPEND),
            "image": _Spec("images", _image_override, _Merge.APPEND, block=True),
            "patch": _Spec("patches", _patch, _Merge.APPEND, block=True),
            "substitute": _Spec("substitute", _pair, _Merge.APPEND),
            "substitute-from": _Spec("substitute_from", _substitute_from, _Merge.APPEND),
            "health-check": _Spec("health_checks", _health_check, _Merge.APPEND),
            "component": _Spec("components", _string, _Merge.APPEND),
        },
        {"source": "source git NAME"},
    ),
    _Kind(
        ("image", "repository"),
        ImageRepository,
        {
            "image": _Spec("image", _string),
            "interval": _Spec("interval", _duration),
            "timeout": _Spec("timeout", _duration),
            "secret": _Spec("secret_ref", _string),
            "cert-secret": _Spec("cert_secret_ref", _string),
            "proxy-secret": _Spec("proxy_secret_ref", _string),
            "service-account": _Spec("service_account_name", _string),
            "provider": _Spec("provider", lambda v: v.choice({p: p for p in _PROVIDERS}, "provider")),
            "insecure": _Spec("insecure", _flag),
            "suspend": _Spec("suspend", _flag),
            "exclude": _Spec("exclusion_list", _exclude, _Merge.EXTEND),
            "page-size": _Spec("page_size", _page_size),
        },
        {"image": 'image "ghcr.io/org/app"'},
    ),
    _Kind(
        ("image", "policy"),
        ImagePolicy,
        {
            "repository": _Spec("repository", _namespaced_ref),
            "filter": _Spec("filter", _filter),
            "select": _Spec("choice", _select),
            "digest": _Spec("digest_reflection", lambda v: v.choice(_DIGEST, "digest reflection")),
            "interval": _Spec("interval", _duration),
            "suspend": _Spec("suspend", _flag),
            "hold": _Spec("hold", _duration),
            "never": _Spec("never_downgrade", _never),
            "pin": _Spec("pin", _string),
        },
        {"repository": "repository NAME", "select": 'select highest semver ">=1.0.0"'},
    ),
    _Kind(
        ("image", "update"),
        ImageUpdate,
        {
            "source": _Spec("source_ref", _source_ref),
            "path": _Spec("path", _string),
            "interval": _Spec("interval", _duration),
            "suspend": _Spec("suspend", _flag),
            "checkout": _Spec("checkout_ref", _checkout, _Merge.GIT_REF),
            "author": _Spec("author", _author),
            "message": _Spec("message_template", _string),
            "message-value": _Spec("message_template_values", _pair, _Merge.APPEND),
            "push": _Spec("push_branch", _string),
            "push-refspec": _Spec("push_refspec", _string),
            "push-option": _Spec("push_options", _pair, _Merge.APPEND),
            "policy-selector": _Spec("policy_selector", _pair, _Merge.APPEND),
            "signing-key": _Spec("signing_key_secret", _string),
        },
        {"source": "source git NAME", "author": 'author "Flux Bot <flux@example.com>"'},
    ),
    _Kind(
        ("marker", "dialect"),
        _marker_dialect,
        {
            "files": _Spec("files", lambda v: v.strings("one or more file name patterns"), _Merge.EXTEND),
            "key": _Spec("json_key", _string),
            "comment": _Spec("comment", _string),
            "screen": _Spec("screen", _string),
            "value": _Spec("value", _marker_value),
        },
        {"files": 'files "*.yaml" "*.yml"'},
        namespaced=False,
    ),
)

_STATEMENTS_HINT = "statements: " + ", ".join(kind.label for kind in _KINDS)


def _kind_of(header: Sequence[_Value]) -> tuple[_Kind, _Value]:
    """The statement kind and the name value from `KIND-WORDS NAME`."""
    first = header[0]
    if first.quoted:
        message = "a statement starts with its kind, not a string"
        raise _Invalid(message, first.pos, _STATEMENTS_HINT, "dsl-statement")
    words = [v.text if not v.quoted else "" for v in header]
    for kind in _KINDS:
        n = len(kind.words)
        if tuple(words[:n]) != kind.words:
            continue
        if len(header) == n:
            hint = f"write: {kind.label} NAME {{"
            raise _Invalid(f"{kind.label} expects a name", header[n - 1].pos, hint, "dsl-name")
        if len(header) > n + 1:
            extra = header[n + 1]
            message = f"unexpected {extra.shown()} after the name of {kind.label} {header[n].text}"
            raise _Invalid(message, extra.pos, "a name is one word: NAME or NAMESPACE/NAME", "dsl-name")
        if header[n].quoted:
            raise _Invalid(f"the name of {kind.label} is written without quotes", header[n].pos, code="dsl-name")
        return kind, header[n]
    if words[0] == "source" and len(header) > 1:
        hint = "write: source git NAME {"
        message = f"only git sources are supported, not '{header[1].text}'"
        raise _Invalid(message, header[1].pos, hint, "dsl-statement")
    two_word = any(k.words[0] == words[0] and len(k.words) == 2 for k in _KINDS) and len(header) > 1
    phrase = " ".join(words[:2]) if two_word else words[0]
    labels = [kind.label for kind in _KINDS]
    message = f"unknown statement '{phrase}'{did_you_mean(phrase, labels)}"
    raise _Invalid(message, header[1].pos if two_word else first.pos, _STATEMENTS_HINT, "dsl-statement")


def _pairs(line: _Field) -> list[_Field]:
    """Split `kind "Deployment" name "x"` into one field per keyword (nested blocks only)."""
    groups: list[list[_Value]] = [[]]
    for value in line.values:
        if groups[-1] and not value.quoted and groups[-1][-1].quoted:
            groups.append([])
        groups[-1].append(value)
    fields = [_Field(tuple(group), None) for group in groups]
    fields[-1] = _Field(fields[-1].values, line.block)
    return fields


class _Reader:
    """Builds model objects from the tree; counts the errors it reports."""

    def __init__(self, path: str, problems: Problems):
        self.path = path
        self.problems = problems
        self.errors = 0

    def report(self, bad: _Invalid) -> None:
        self.errors += 1
        self.problems.error(bad.message, bad.pos, code=bad.code, hint=bad.hint)

    def value(self, token: lark.Token) -> _Value:
        pos = _token_pos(self.path, token)
        if token.type == "WORD":
            return _Value(str(token), False, pos)
        try:
            return _Value(_decode(token.type, str(token)), True, pos)
        except ValueError as err:
            self.report(_Invalid(str(err), pos, code="dsl-syntax"))
            return _Value(str(token), True, pos)

    def block(self, tree: lark.Tree[lark.Token], depth: int = 1) -> _Block:
        """Fields two levels deep are enough for every statement; deeper blocks stay empty
        (they are rejected as "takes no block"), which also bounds the recursion."""
        opening = tree.children[0]
        assert isinstance(opening, lark.Token)
        fields: list[_Field] = []
        for child in tree.children[1:-1] if depth <= 2 else ():
            assert isinstance(child, lark.Tree)
            values = tuple(self.value(t) for t in child.children if isinstance(t, lark.Token))
            nested = [self.block(t, depth + 1) for t in child.children if isinstance(t, lark.Tree)]
            fields.append(_Field(values, nested[0] if nested else None))
        return _Block(tuple(fields), _token_pos(self.path, opening))

    def statement(self, tree: lark.Tree[lark.Token]) -> Rule | None:
        errors = self.errors
        header = [self.value(t) for t in tree.children if isinstance(t, lark.Token)]
        body = tree.children[-1]
        assert isinstance(body, lark.Tree)
        block = self.block(body)
        try:
            kind, name = _kind_of(header)
            if kind.namespaced:
                namespace, rule_name = _split_ref(name)
            elif "/" in name.text:
                raise _Invalid(f"a {kind.label} has no namespace: {name.shown()}", name.pos, code="dsl-name")
            else:
                namespace, rule_name = "", name.text
                _check_name(rule_name, name.pos)
        except _Invalid as bad:
            self.report(bad)
            return None
        what = f"{kind.label} {name.text}"
        attrs, given = self.fields(block, kind.fields, what)
        for keyword, example in kind.required.items():
            if keyword not in given:
                hint = f"add: {example}"
                self.report(_Invalid(f"{what}: missing required field '{keyword}'", name.pos, hint, "dsl-missing"))
        if self.errors > errors:
            return None
        if kind.namespaced:
            attrs["namespace"] = namespace or DEFAULT_NAMESPACE
        return kind.build(name=rule_name, origin=name.pos, **attrs)

    def fields(
        self, block: _Block, specs: Mapping[str, _Spec], what: str, pairs: bool = False
    ) -> tuple[dict[str, Any], set[str]]:
        """Model attributes from a block's fields, and the keywords given (valid or not)."""
        found: dict[str, Any] = {}
        first: dict[str, SourcePos] = {}
        given: set[str] = set()
        for line in block.fields:
            for one in _pairs(line) if pairs else [line]:
                try:
                    self._field(one, specs, what, found, first, given)
                except _Invalid as bad:
                    self.report(bad)
        return {attr: _frozen(value) for attr, value in found.items()}, given

    def _field(
        self,
        line: _Field,
        specs: Mapping[str, _Spec],
        what: str,
        found: dict[str, Any],
        first: dict[str, SourcePos],
        given: set[str],
    ) -> None:
        keyword = line.values[0]
        if keyword.quoted:
            given.add(keyword.text)  # reported here, so not again as missing
            raise _Invalid(f"expected a keyword, not the string {keyword.shown()}", keyword.pos, code="dsl-keyword")
        spec = specs.get(keyword.text)
        if spec is None:
            raise _unknown_keyword(keyword, specs, what)
        given.add(keyword.text)
        if spec.merge is _Merge.ONCE and spec.attr in first:
            raise _given_twice(keyword.text, keyword.pos, first[spec.attr])
        if line.block is not None and not spec.block:
            raise _Invalid(f"{keyword.text} takes no {{ }} block", line.block.pos, code="dsl-syntax")
        values = _Values(self, keyword, line, specs.keys())
        value = spec.read(values)
        values.end()
        if spec.merge is _Merge.ONCE:
            found[spec.attr] = value
            first[spec.attr] = keyword.pos
        elif spec.merge is _Merge.APPEND:
            found.setdefault(spec.attr, []).append(value)
        elif spec.merge is _Merge.EXTEND:
            empty = f"{keyword.text} none"
            if empty in first or (value is None and spec.attr in found):
                message = f"'{empty}' cannot be combined with other {keyword.text} lines"
                raise _Invalid(message, keyword.pos, code="dsl-duplicate")
            if value is None:
                first[empty] = keyword.pos
            found.setdefault(spec.attr, []).extend(value or ())
        else:
            label, ref_field, text = value
            if label in first:
                raise _given_twice(label, keyword.pos, first[label])
            first[label] = keyword.pos
            found.setdefault(spec.attr, {})[ref_field] = text


def _frozen(value: Any) -> Any:
    """Lists become tuples and gathered git reference parts a GitRef."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return GitRef(**value)
    return value


def _given_twice(label: str, pos: SourcePos, first: SourcePos) -> _Invalid:
    return _Invalid(f"'{label}' given twice (first at {first.line}:{first.column})", pos, code="dsl-duplicate")


def _unknown_keyword(keyword: _Value, specs: Mapping[str, _Spec], what: str) -> _Invalid:
    suggestion = did_you_mean(keyword.text, specs)
    message = f"unknown keyword '{keyword.text}' in {what}{suggestion}"
    owners = [kind.label for kind in _KINDS if keyword.text in kind.fields]
    hint = f"'{keyword.text}' is a field of {_one_of(owners)}" if owners and not suggestion else ""
    return _Invalid(message, keyword.pos, hint, "dsl-keyword")
