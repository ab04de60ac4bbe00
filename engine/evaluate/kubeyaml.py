"""YAML as kustomize and Flux read and write Kubernetes objects, which is not PyYAML's YAML 1.1.

kustomize parses manifests with go-yaml v3 (`yes` is a string, `1e3` a number, `0o17` octal),
then turns every object into JSON and back, so `1.0` becomes `1` and a timestamp an RFC 3339
string. Flux reads kustomize's output, and the text it substitutes variables into, with
sigs.k8s.io/yaml (go-yaml v2: `yes`, `on` and `y` are booleans there). gitward renders plain
directories without kustomize, so it reads them the way kustomize does: the same objects
whichever path built them. Plain scalars are resolved by Go's rules (`go_tag`); everything
else is PyYAML (libyaml when present), so syntax errors keep PyYAML's wording. A redefined
anchor is read as go-yaml reads it (an alias names the latest definition; see yamldoc.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from engine.errors import Problem, Severity, SourcePos
from engine.rules.yamldoc import YamlSyntaxError, is_redefined_anchor, load_documents, redefining

_TAG = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = _TAG + "str", _TAG + "int", _TAG + "float", _TAG + "bool", _TAG + "null"
TIMESTAMP, MERGE = _TAG + "timestamp", _TAG + "merge"

_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(("true", "True", "TRUE"))
_FALSE = frozenset(("false", "False", "FALSE"))
_OLD_TRUE = frozenset(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"))
_OLD_FALSE = frozenset(("n", "N", "no", "No", "NO", "off", "Off", "OFF"))
_SPECIAL_FLOATS = {
    ".inf": math.inf, ".Inf": math.inf, ".INF": math.inf,
    "+.inf": math.inf, "+.Inf": math.inf, "+.INF": math.inf,
    "-.inf": -math.inf, "-.Inf": -math.inf, "-.INF": -math.inf,
    ".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan,
}
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})"
    r"(?:\.(?P<frac>[0-9]+))?(?P<tz>Z|[-+][0-9]{2}:[0-9]{2})?)?")
_INT64 = (-(2**63), 2**64 - 1)
_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _go_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), then ParseUint: what go-yaml tries first."""
    if not _GO_INT.fullmatch(text):
        return None
    sign = -1 if text[0] == "-" else 1
    body = text.lstrip("+-")
    if len(body) > 1 and body[0] == "0" and body[1] in "xXbBoO":
        value = int(body[2:], {"x": 16, "b": 2, "o": 8}[body[1].lower()])
    elif len(body) > 1 and body[0] == "0":
        value = int(body, 8)
    else:
        value = int(body)
    value *= sign
    return value if _INT64[0] <= value <= _INT64[1] else None


def _timestamp(text: str) -> str | None:
    """An RFC 3339 string for a date or time go-yaml v3 parses, as Go's JSON writes time.Time."""
    m = _TIMESTAMP.fullmatch(text)
    if m is None or (m["h"] is not None and m["sep"] == " " and m["tz"] is not None):
        return None
    if m["h"] is not None and m["sep"] in "Tt" and m["tz"] is None:
        return None
    year, month, day = int(m["y"]), int(m["mo"]), int(m["d"])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= month <= 12 or not 1 <= day <= (_DAYS[month - 1] if month != 2 or leap else 28):
        return None
    if m["h"] is None:
        return f"{year:04d}-{month:02d}-{day:02d}T00:00:00Z"
    hour, minute, second = int(m["h"]), int(m["mi"]), int(m["s"])
    if hour > 23 or minute > 59 or second > 59:
        return None
    frac = (m["frac"] or "")[:9].rstrip("0")
    tz = m["tz"] or "Z"
    if tz in ("+00:00", "-00:00"):
        tz = "Z"
    return (f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
            f"{'.' + frac if frac else ''}{tz}")


def go_tag(value: str, *, v2: bool) -> str:
    """The tag go-yaml gives a plain scalar: v3 as kustomize reads, v2 as sigs.k8s.io/yaml reads."""
    if value in _NULLS:
        return NULL
    if value in _TRUE or value in _FALSE or (v2 and (value in _OLD_TRUE or value in _OLD_FALSE)):
        return BOOL
    if value in _SPECIAL_FLOATS:
        return FLOAT
    if value == "<<":
        return MERGE
    if value[0] not in "0123456789+-.":
        return STR
    if not v2 and _timestamp(value) is not None:
        return TIMESTAMP
    plain = value.replace("_", "") if value[0] != "." else value
    if _go_int(plain) is not None:
        return INT
    if _GO_FLOAT.fullmatch(plain) and math.isfinite(float(plain)):
        return FLOAT
    return STR


class ObjectConstructor(yaml.constructor.SafeConstructor):  # type: ignore[misc]
    """Plain data as Go's JSON round trip leaves it: string keys, integral floats as ints."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[str, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise ConstructorError(None, None, f"expected a mapping, got {node.id}", node.start_mark)
        seen: dict[str, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE:
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConstructorError(None, None, "mapping keys must be strings", key_node.start_mark)
            if key_node.value in seen:
                first = seen[key_node.value].start_mark.line + 1
                raise ConstructorError(None, None, f'mapping key "{key_node.value}" already defined '
                                       f"at line {first}", key_node.start_mark)
            seen[key_node.value] = key_node
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConstructorError(None, None, "mapping keys must be strings", key_node.start_mark)
            mapping[key_node.value] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml_map(self, node: Any) -> Iterator[dict[str, Any]]:
        data: dict[str, Any] = {}
        yield data
        data.update(self.construct_mapping(node))

    def construct_go_int(self, node: Any) -> int | float:
        text = str(self.construct_scalar(node)).replace("_", "")
        value = _go_int(text)
        if value is not None:
            return value
        if not _GO_FLOAT.fullmatch(text):
            raise ConstructorError(None, None, f'invalid integer "{node.value}"', node.start_mark)
        return self._json_float(node, float(text))

    def construct_go_float(self, node: Any) -> int | float:
        text = str(self.construct_scalar(node))
        value = _SPECIAL_FLOATS.get(text)
        if value is None:
            plain = text.replace("_", "")
            if not _GO_FLOAT.fullmatch(plain):
                raise ConstructorError(None, None, f'invalid number "{text}"', node.start_mark)
            value = float(plain)
        return self._json_float(node, value)

    def construct_go_bool(self, node: Any) -> bool:
        return str(self.construct_scalar(node)) in _TRUE | _OLD_TRUE

    def construct_go_timestamp(self, node: Any) -> str:
        text = str(self.construct_scalar(node))
        return _timestamp(text) or text

    def construct_by_kind(self, node: Any) -> Any:
        """A custom or unusual tag: kustomize keeps the value and JSON drops the tag."""
        if isinstance(node, yaml.MappingNode):
            return self.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return self.construct_sequence(node, deep=True)
        return self.construct_scalar(node)

    @staticmethod
    def _json_float(node: Any, value: float) -> int | float:
        if not math.isfinite(value):
            raise ConstructorError(None, None, f"{node.value} cannot be written as JSON "
                                   "(kustomize rejects it)", node.start_mark)
        return int(value) if value.is_integer() and abs(value) < 2**63 else value


ObjectConstructor.add_constructor(_TAG + "map", ObjectConstructor.construct_yaml_map)
ObjectConstructor.add_constructor(INT, ObjectConstructor.construct_go_int)
ObjectConstructor.add_constructor(FLOAT, ObjectConstructor.construct_go_float)
ObjectConstructor.add_constructor(BOOL, ObjectConstructor.construct_go_bool)
ObjectConstructor.add_constructor(TIMESTAMP, ObjectConstructor.construct_go_timestamp)
for _tag in ("binary", "set", "omap", "pairs"):
    ObjectConstructor.add_constructor(_TAG + _tag, ObjectConstructor.construct_by_kind)
ObjectConstructor.add_constructor(None, ObjectConstructor.construct_by_kind)

_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _GoScalars:
    """Plain scalars resolved by go-yaml's rules: v3 as kustomize reads, v2 as Flux reads."""

    v2 = False

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return go_tag(value, v2=self.v2)
        return super().resolve(kind, value, implicit)  # type: ignore[misc]


class _V3Loader(_GoScalars, ObjectConstructor, _SafeLoader):  # type: ignore[misc]
    """go-yaml v3's plain scalars (libyaml parses when present; resolution is ours)."""


class _V2Loader(_V3Loader):
    v2 = True


_REDEFINING = {loader: redefining(loader) for loader in (_V3Loader, _V2Loader)}


@dataclass(frozen=True)
class Doc:
    """One document of a stream: its 1-based number, the line it starts on, its value."""

    number: int
    line: int
    value: object


def read_documents(path: str, text: str, *, v2: bool = False) -> list[Doc]:
    """Every non-empty document of a YAML stream; raises YamlSyntaxError, located.

    `v2=False` reads as kustomize reads a manifest, `v2=True` as Flux reads kustomize's
    output (and substituted text). `path` is only used in messages.
    """
    loader_class = _V2Loader if v2 else _V3Loader
    try:
        return _read(path, text, loader_class)
    except _AnchorRedefined:
        return _read(path, text, _REDEFINING[loader_class])


class _AnchorRedefined(Exception):
    """libyaml refused the stream for a redefined anchor: read it again, composing in Python."""


def _read(path: str, text: str, loader_class: type) -> list[Doc]:
    loader: Any = loader_class(text)
    docs: list[Doc] = []
    number = 0
    try:
        while loader.check_node():
            number += 1
            node = loader.get_node()
            if node is None:
                continue
            value = loader.construct_document(node)
            if value is not None:
                docs.append(Doc(number, node.start_mark.line + 1, value))
    except ConstructorError as err:
        mark = err.problem_mark or err.context_mark
        pos = SourcePos(path, mark.line + 1, mark.column + 1, syntax="flux") if mark else SourcePos(path)
        raise YamlSyntaxError(Problem(Severity.ERROR, f"document {number}: {err.problem}", pos)) from None
    except (yaml.YAMLError, RecursionError) as err:
        if is_redefined_anchor(err):
            raise _AnchorRedefined() from None
        load_documents(path, text)  # words the syntax error as PyYAML's pure loader does
        raise YamlSyntaxError(Problem(Severity.ERROR, f"document {number or 1}: {err}",
                                      SourcePos(path))) from None
    finally:
        loader.dispose()
    return docs


class _Dumper(_SafeDumper):  # type: ignore[misc]
    """Block YAML that go-yaml v2 reads back to the same data: what sigs.k8s.io/yaml writes."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return go_tag(value, v2=True)
        return super().resolve(kind, value, implicit)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar(STR, data, style=style)


_Dumper.add_representer(str, _represent_str)


def dump(data: object) -> str:
    """One object as YAML with sorted keys, multi-line strings as literal blocks."""
    text: str = yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False,
                          allow_unicode=True, width=2**31 - 1)
    return text


def dump_all(items: list[dict[str, object]]) -> str:
    """Objects as a YAML stream, each document introduced by `---`."""
    return "".join(f"---\n{dump(item)}" for item in items)

