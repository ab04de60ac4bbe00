"""YAML documents with positions, and typed reads of their mappings that report located problems.

PyYAML's composer gives every node its start and end mark, which is what located errors need;
libyaml's CSafeLoader composes fast, and the pure SafeLoader is used only to word a syntax error
(its messages are PyYAML's documented ones). Resolution is YAML 1.1, as PyYAML and Kubernetes'
go-yaml read it (`yes` is a boolean, `1.10` a float).

An anchor may be defined again later in a document, and an alias then names the latest
definition: YAML 1.2 allows it and go-yaml (kustomize, Flux) reads it so, while both PyYAML
composers refuse it. `compose_all` therefore composes in libyaml and, only for a stream libyaml
refuses for that reason, again in Python with `AnchorComposer` (about twice as slow).

`Struct` reads one mapping as a record: each getter checks the value's type and, on a mismatch,
records an error at the value and returns None, so one pass over a file reports every problem.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import yaml

from engine.errors import Problem, Problems, Severity, SourcePos, UserError, did_you_mean
from engine.rules.duration import DurationError, parse_duration
from engine.rules.fluxapi import IGNORED_FIELD, NOT_KEPT

_FAST_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_SOPS_CIPHERTEXT = re.compile(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:[a-z]+\]")
"""A value SOPS encrypted in place (`sops --encrypt`): the ciphertext, base64, and its type."""

_TAG = "tag:yaml.org,2002:"
_NULL, _STR, _BOOL, _MERGE = _TAG + "null", _TAG + "str", _TAG + "bool", _TAG + "merge"
_INT, _FLOAT = _TAG + "int", _TAG + "float"
_TAG_NAMES = {
    _NULL: "null",
    _STR: "a string",
    _BOOL: "a boolean",
    _TAG + "int": "an integer",
    _TAG + "float": "a number",
    _TAG + "timestamp": "a timestamp",
    _TAG + "binary": "binary data",
    _TAG + "map": "a mapping",
    _TAG + "seq": "a list",
    _TAG + "set": "a set",
    _TAG + "omap": "an ordered mapping",
    _TAG + "pairs": "a list of pairs",
}


class YamlSyntaxError(UserError):
    """A file (or a value in it) that is not valid YAML; `problem` says where and why."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.render(excerpt=False))


def pos_of(node: yaml.Node, path: str) -> SourcePos:
    """The 1-based start and end of a node, for Flux-syntax problems."""
    start, end = node.start_mark, node.end_mark
    return SourcePos(path, start.line + 1, start.column + 1, end.line + 1, end.column + 1, syntax="flux")


def describe(node: yaml.Node) -> str:
    """What a node holds, in words: "a mapping", "an integer", "null"."""
    if node.tag in _TAG_NAMES:
        return _TAG_NAMES[node.tag]
    if isinstance(node, yaml.MappingNode):
        return f"a mapping tagged {node.tag}"
    if isinstance(node, yaml.SequenceNode):
        return f"a list tagged {node.tag}"
    return f"a value tagged {node.tag}"


def is_null(node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL)


def is_ciphertext(node: yaml.Node) -> bool:
    """Whether `node` is a value SOPS encrypted in place (`ENC[AES256_GCM,...]`)."""
    return (isinstance(node, yaml.ScalarNode) and node.tag == _STR and node.value.startswith("ENC[")
            and _SOPS_CIPHERTEXT.fullmatch(node.value) is not None)


def ciphertext_in(node: yaml.Node) -> yaml.Node | None:
    """The first SOPS-encrypted value at or below `node`, if any."""
    if isinstance(node, yaml.MappingNode):
        items: list[yaml.Node] = [v for _, v in node.value]
    elif isinstance(node, yaml.SequenceNode):
        items = list(node.value)
    else:
        return node if is_ciphertext(node) else None
    return next((found for item in items if (found := ciphertext_in(item)) is not None), None)


@dataclass(frozen=True)
class Document:
    """One document of a multi-document file; `node` is None for an empty (or null) document."""

    path: str
    index: int
    node: yaml.Node | None

    @property
    def number(self) -> int:
        """1-based, as messages count documents."""
        return self.index + 1

    def pos(self, node: yaml.Node) -> SourcePos:
        return pos_of(node, self.path)

    def to_python(self, node: yaml.Node) -> object:
        """The plain value of a node (dicts, lists, scalars), with YAML 1.1 safe construction."""
        try:
            return yaml.constructor.SafeConstructor().construct_document(node)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark or node.start_mark
            raise YamlSyntaxError(self._problem(str(err.problem or err.context), mark)) from err
        except (ValueError, TypeError, OverflowError) as err:
            raise YamlSyntaxError(self._problem(f"invalid value: {err}", node.start_mark)) from err
        except RecursionError as err:
            raise YamlSyntaxError(self._problem("value nested too deeply", node.start_mark)) from err

    def to_json(self, node: yaml.Node) -> object:
        """The value of a node as Kubernetes reads YAML into JSON: mappings (merge keys applied,
        keys as strings), lists, null, booleans and numbers; every other scalar (a timestamp,
        binary, an infinite number, a custom tag) is the string it is written as."""
        if isinstance(node, yaml.MappingNode):
            return {str(key.value): self.to_json(value) for key, value in self.pairs(node)}
        if isinstance(node, yaml.SequenceNode):
            return [self.to_json(item) for item in node.value]
        if node.tag in (_NULL, _BOOL, _INT, _FLOAT):
            value = self.to_python(node)
            if not (isinstance(value, float) and not math.isfinite(value)):
                return value
        return str(node.value)

    def pairs(self, node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
        """A mapping's key/value nodes with merge keys (`<<`) applied: explicit keys win."""
        own = [(k, v) for k, v in node.value if k.tag != _MERGE]
        seen = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            if key.tag != _MERGE:
                continue
            sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise YamlSyntaxError(
                        self._problem(f"a merge key (<<) takes a mapping, got {describe(source)}", source.start_mark)
                    )
                for k, v in self.pairs(source):
                    if isinstance(k, yaml.ScalarNode) and k.value not in seen:
                        seen.add(k.value)
                        merged.append((k, v))
        return own + merged

    def _problem(self, message: str, mark: yaml.Mark) -> Problem:
        pos = SourcePos(self.path, mark.line + 1, mark.column + 1, syntax="flux")
        return Problem(Severity.ERROR, f"document {self.number}: {message}", pos)


class AnchorComposer(yaml.composer.Composer):
    """PyYAML's composer, but a redefined anchor replaces the earlier one (YAML 1.2, go-yaml)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        events: Any = self  # the parser mixed in beside this class supplies the events
        if not events.check_event(yaml.AliasEvent):
            anchor = events.peek_event().anchor
            if anchor is not None:
                self.anchors.pop(anchor, None)
        return super().compose_node(parent, index)


def redefining(loader: type) -> type:
    """`loader` with `AnchorComposer` composing (in Python, whatever parses the events)."""

    class Loader(AnchorComposer, loader):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            base: Any = loader
            base.__init__(self, stream)
            self.anchors = {}

    Loader.__name__ = f"Redefining{loader.__name__}"
    return Loader


def is_redefined_anchor(err: BaseException) -> bool:
    """Whether PyYAML refused a stream only because an anchor was defined twice."""
    return isinstance(err, yaml.composer.ComposerError) and str(err.context or "").startswith(
        "found duplicate anchor"
    )


_REDEFINING_FAST = redefining(_FAST_LOADER)
_REDEFINING_PURE = redefining(yaml.SafeLoader)


def compose_all(text: str) -> Iterator[yaml.Node | None]:
    """The root node of every document of `text`, in order; raises PyYAML's errors as it goes.

    libyaml composes; a stream it refuses only for a redefined anchor is composed again in
    Python, so a caller counting documents never sees one twice.
    """
    nodes: list[yaml.Node | None] = []
    try:
        for node in yaml.compose_all(text, Loader=_FAST_LOADER):
            nodes.append(node)
    except (yaml.YAMLError, RecursionError) as err:
        if is_redefined_anchor(err):
            yield from yaml.compose_all(text, Loader=_REDEFINING_FAST)
            return
        yield from nodes
        raise
    yield from nodes


def load_documents(path: str, text: str) -> list[Document]:
    """Every document of a YAML stream, composed (not constructed); raises YamlSyntaxError."""
    nodes: list[yaml.Node | None] = []
    try:
        for node in compose_all(text):
            nodes.append(node)
    except (yaml.YAMLError, RecursionError) as err:
        raise _syntax_error(path, text, err, len(nodes)) from None
    return [Document(path, i, None if is_null(n) else n) for i, n in enumerate(nodes)]


def _syntax_error(path: str, text: str, fast: BaseException, fast_count: int) -> YamlSyntaxError:
    """Word the error as PyYAML's pure loader does, at its mark; libyaml's words are the fallback."""
    count = 0
    try:
        for _ in yaml.compose_all(text, Loader=_REDEFINING_PURE):
            count += 1
    except yaml.MarkedYAMLError as err:
        return _marked(path, count, err)
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        column = err.position - (text.rfind("\n", 0, err.position) + 1) + 1
        reason = err.reason
        if isinstance(err.character, int):
            reason = f"unacceptable character #x{err.character:04x}: {err.reason}"
        return _located(path, count, reason, SourcePos(path, line, column, syntax="flux"))
    except (yaml.YAMLError, RecursionError):
        pass
    if isinstance(fast, yaml.MarkedYAMLError):
        return _marked(path, fast_count, fast)
    return _located(path, fast_count, "nested too deeply" if isinstance(fast, RecursionError) else str(fast))


def _marked(path: str, count: int, err: yaml.MarkedYAMLError) -> YamlSyntaxError:
    mark = err.problem_mark or err.context_mark
    hint = ""
    if err.context and err.context_mark and mark is not err.context_mark:
        hint = f"{err.context} at line {err.context_mark.line + 1}, column {err.context_mark.column + 1}"
    pos = SourcePos(path, mark.line + 1, mark.column + 1, syntax="flux") if mark else None
    return _located(path, count, str(err.problem or err.context), pos, hint)


def _located(path: str, count: int, message: str, pos: SourcePos | None = None, hint: str = "") -> YamlSyntaxError:
    where = pos or SourcePos(path, syntax="flux")
    return YamlSyntaxError(Problem(Severity.ERROR, f"document {count + 1}: {message}", where, hint=hint))


@dataclass(frozen=True)
class Verbatim:
    """A field kept as written: where it is (`spec.decryption`), its key and its value."""

    path: str
    key: yaml.Node
    value: yaml.Node


def join(where: str, key: str) -> str:
    """`spec` + `url` -> `spec.url`; the top level has no prefix."""
    return f"{where}.{key}" if where else key


class Struct:
    """One YAML mapping read as a record with a fixed set of fields.

    `known` fields are read by the getters; `ignored` ones are valid but have no meaning for
    the reader (a warning each), and are kept verbatim in `verbatim` when a list is given
    (`carry` keeps a known field so); `unavailable` maps a field to the error it is (a field of
    another API version); any other field is an error with a did-you-mean. A node that is
    not a mapping is one error, after which every getter returns None quietly. The structs
    opened from this one share its `verbatim` list.
    """

    def __init__(
        self,
        doc: Document,
        problems: Problems,
        node: yaml.Node,
        where: str,
        known: Collection[str],
        *,
        at: yaml.Node | None = None,
        ignored: Mapping[str, str] | None = None,
        unavailable: Mapping[str, str] | None = None,
        open_keys: bool = False,
        verbatim: list[Verbatim] | None = None,
    ) -> None:
        self.doc, self.problems, self.node, self.where = doc, problems, node, where
        self.at = at or node
        self.verbatim = verbatim
        self.values: dict[str, yaml.Node] = {}
        self.keys: dict[str, yaml.Node] = {}
        self.broken = not isinstance(node, yaml.MappingNode)
        if self.broken:
            self.problems.error(f"{where}: expected a mapping, got {describe(node)}", doc.pos(node))
            return
        try:
            pairs = doc.pairs(node)
        except YamlSyntaxError as err:
            self.problems.extend([err.problem])
            self.broken = True
            return
        for key, value in pairs:
            if not (isinstance(key, yaml.ScalarNode) and key.tag == _STR):
                self.problems.error(f"{where}: field names must be strings, got {describe(key)}", doc.pos(key))
                continue
            name = key.value
            if name in self.keys:
                self.problems.error(f'{join(where, name)}: duplicate field "{name}"', doc.pos(key))
                continue
            if unavailable and name in unavailable:
                self.problems.error(f"{join(where, name)}: {unavailable[name]}", doc.pos(key))
            elif ignored and name in ignored:
                reason = f" ({ignored[name]})" if ignored[name] else ""
                self.problems.warning(f"{join(where, name)} is ignored by gitward{reason}", doc.pos(key),
                                      code=IGNORED_FIELD)
                self._keep(name, key, value)
            elif name in known or open_keys:
                self.keys[name], self.values[name] = key, value
                continue
            else:
                choices = [*known, *(ignored or ())]
                label = f" in {where}" if where else ""
                self.problems.error(f'unknown field "{name}"{label}{did_you_mean(name, choices)}', doc.pos(key))
            self.keys.setdefault(name, key)

    def _keep(self, name: str, key: yaml.Node, value: yaml.Node) -> None:
        if self.verbatim is not None and not is_null(value):
            self.verbatim.append(Verbatim(join(self.where, name), key, value))

    def carry(self, key: str) -> None:
        """Keep a known field verbatim too (one read for its checks, carried as written)."""
        if key in self.values:
            self._keep(key, self.keys[key], self.values[key])

    # -- positions and problems -------------------------------------------------------------

    def pos(self, key: str | None = None) -> SourcePos:
        """Where a field's value is, else its key, else this mapping."""
        if key is not None and key in self.values:
            return self.doc.pos(self.values[key])
        return self.doc.pos(self.at)

    def key_pos(self, key: str) -> SourcePos:
        return self.doc.pos(self.keys[key]) if key in self.keys else self.doc.pos(self.at)

    def error(self, key: str, message: str, *, at_key: bool = False) -> None:
        """An error about a field, at its value (or at its key, for what the whole field means)."""
        self.problems.error(f"{join(self.where, key)}: {message}", self.key_pos(key) if at_key else self.pos(key))

    def warning(self, key: str, message: str, *, at_key: bool = False, code: str = "") -> None:
        self.problems.warning(f"{join(self.where, key)}: {message}",
                              self.key_pos(key) if at_key else self.pos(key), code=code)

    def has(self, key: str) -> bool:
        return key in self.values and not is_null(self.values[key])

    def require(self, key: str) -> None:
        if not self.broken and not self.has(key):
            self.problems.error(f"{join(self.where, key)} is required", self.doc.pos(self.at))

    def names(self) -> list[str]:
        """The fields present, in document order."""
        return list(self.values)

    # -- typed getters ----------------------------------------------------------------------

    def value(self, key: str, required: bool = False) -> yaml.Node | None:
        if required:
            self.require(key)
        node = self.values.get(key)
        if node is None or is_null(node) or self.encrypted(node, join(self.where, key)):
            return None
        return node

    def encrypted(self, node: yaml.Node, where: str) -> bool:
        """Whether `node` is a SOPS-encrypted value: a warning, and the field reads as absent.

        Flux decrypts such values only while kustomize-controller applies the file (with the
        Kustomization's spec.decryption); gitward reads the file as it is in git, so the
        ciphertext is never taken for the value.
        """
        if not is_ciphertext(node):
            return False
        self.problems.warning(
            f"{where} is SOPS-encrypted: gitward does not decrypt, so it reads the field as absent "
            "(Flux decrypts it only where the Kustomization applying this file has spec.decryption)",
            self.doc.pos(node), code=NOT_KEPT,
        )
        return True

    def string(self, key: str, required: bool = False) -> str | None:
        node = self.value(key, required)
        if node is None:
            return None
        return self.scalar_str(node, join(self.where, key))

    def scalar_str(self, node: yaml.Node, where: str) -> str | None:
        if self.encrypted(node, where):
            return None
        if isinstance(node, yaml.ScalarNode) and node.tag == _STR:
            return str(node.value)
        hint = f'quote it: "{node.value}"' if isinstance(node, yaml.ScalarNode) and node.tag != _NULL else ""
        self.problems.error(f"{where}: expected a string, got {describe(node)}", self.doc.pos(node), hint=hint)
        return None

    def boolean(self, key: str) -> bool | None:
        node = self.value(key)
        if node is None:
            return None
        if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL:
            return bool(self.doc.to_python(node))
        self.error(key, f"expected true or false, got {describe(node)}")
        return None

    def duration(self, key: str, required: bool = False, *, hours: bool = True) -> timedelta | None:
        """A Flux duration; `hours=False` for fields whose CRD pattern has no `h` (timeouts)."""
        text = self.string(key, required)
        if text is None:
            return None
        try:
            value = parse_duration(text)
        except DurationError as err:
            self.error(key, str(err))
            return None
        if not hours and "h" in text:
            self.error(key, f'invalid duration "{text}": this field takes no hours (h); write it in minutes')
            return None
        return value

    def enum(self, key: str, choices: Collection[str], default: str = "") -> str | None:
        text = self.string(key)
        if text is None:
            return default if not self.has(key) else None
        if text not in choices:
            self.error(key, f'must be one of {", ".join(choices)}, got "{text}"{did_you_mean(text, choices)}')
            return None
        return text

    def struct(
        self,
        key: str,
        known: Collection[str],
        *,
        required: bool = False,
        ignored: Mapping[str, str] | None = None,
        unavailable: Mapping[str, str] | None = None,
        open_keys: bool = False,
    ) -> Struct | None:
        node = self.value(key, required)
        if node is None:
            return None
        return Struct(
            self.doc, self.problems, node, join(self.where, key), known,
            at=self.keys.get(key), ignored=ignored, unavailable=unavailable, open_keys=open_keys,
            verbatim=self.verbatim,
        )

    def items(self, key: str, required: bool = False) -> Iterator[tuple[str, yaml.Node]]:
        """The elements of a list field, each with its `where` (`spec.patches[0]`)."""
        node = self.value(key, required)
        if node is None:
            return
        if not isinstance(node, yaml.SequenceNode):
            self.error(key, f"expected a list, got {describe(node)}")
            return
        for i, item in enumerate(node.value):
            yield f"{join(self.where, key)}[{i}]", item

    def child(
        self, where: str, node: yaml.Node, known: Collection[str], *, ignored: Mapping[str, str] | None = None
    ) -> Struct:
        """A list element read as a record (`where` comes from `items`)."""
        return Struct(self.doc, self.problems, node, where, known, ignored=ignored, verbatim=self.verbatim)

    def str_list(self, key: str) -> tuple[str, ...]:
        out = [self.scalar_str(item, where) for where, item in self.items(key)]
        return tuple(s for s in out if s is not None)

    def str_map(self, key: str) -> tuple[tuple[str, str], ...]:
        """A map of strings to strings (labels, substitutions), in document order; null is ""."""
        sub = self.struct(key, (), open_keys=True)
        if sub is None:
            return ()
        out: list[tuple[str, str]] = []
        for name, node in sub.values.items():
            text = "" if is_null(node) else sub.scalar_str(node, join(sub.where, name))
            if text is not None:
                out.append((name, text))
        return tuple(out)


def graft(value: object, original: yaml.Node | None, anchor: yaml.Node) -> yaml.Node:
    """A node tree for `value` (an object as a build left it) that points where it was written.

    Where `value`'s structure follows `original` (the document the object came from), each node
    takes its original node's marks; a field a patch or transformer added takes its nearest
    original ancestor's. Readers then report problems of a rendered object at the line a user
    can open, even after kustomize moved it to another namespace or patched its spec.
    """
    representer = yaml.representer.SafeRepresenter()
    representer.ignore_aliases = lambda data: True  # type: ignore[method-assign]
    node = representer.represent_data(value)
    _take_marks(node, original, anchor)
    return node


def _take_marks(node: yaml.Node, original: yaml.Node | None, anchor: yaml.Node) -> None:
    source = original if original is not None else anchor
    node.start_mark, node.end_mark = source.start_mark, source.end_mark
    if isinstance(node, yaml.MappingNode):
        pairs: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        if isinstance(original, yaml.MappingNode):
            pairs = {str(k.value): (k, v) for k, v in original.value if isinstance(k, yaml.ScalarNode)}
        for key, item in node.value:
            was_key, was = pairs.get(str(key.value), (None, None))
            _take_marks(key, was_key, source)
            _take_marks(item, was, source)
    elif isinstance(node, yaml.SequenceNode):
        items = original.value if isinstance(original, yaml.SequenceNode) else []
        for i, item in enumerate(node.value):
            _take_marks(item, items[i] if i < len(items) else None, source)
