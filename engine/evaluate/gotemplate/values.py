"""Go values as a template sees them: typed data, nil, the missing value, truth and key order.

Python values stand for Go's: `str` is a string, `bool` a bool, `int` an int, `float` a float64,
`None` nil. Data handed to a template is typed where Go's messages and zero values depend on
the type: `Struct` (a named struct with fields, methods and maybe a `String` method), `GoList`
(a slice with its element type) and `GoMap` (a map with its key and element types). A plain
`list` or `dict` is what template functions build: `[]interface {}` and
`map[string]interface {}`. `MISSING` is Go's invalid reflect.Value: what a map lookup without
a key gives, printed as `<no value>`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Missing:
    """The one missing value (Go's invalid reflect.Value)."""

    _instance: Missing | None = None

    def __new__(cls) -> Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()

Method = Callable[..., Any]


@dataclass(frozen=True)
class Struct:
    """A Go struct value: named fields in declaration order, some embedded (their fields are
    promoted), value-receiver methods a template may call, and its `String()` if it has one."""

    type_name: str
    fields: tuple[tuple[str, Any], ...]
    embedded: frozenset[str] = frozenset()
    methods: tuple[tuple[str, Method], ...] = field(default=(), compare=False, hash=False)
    string: Callable[[], str] | None = field(default=None, compare=False, hash=False)

    def method(self, name: str) -> Method | None:
        """A method of the struct or of an embedded struct (Go promotes both)."""
        for own, fn in self.methods:
            if own == name:
                return fn
        for inner in self._embedded():
            found = inner.method(name)
            if found is not None:
                return found
        return None

    def field_value(self, name: str) -> tuple[bool, Any]:
        """(found, value) for a field of the struct or a promoted one; the shallowest wins."""
        for own, value in self.fields:
            if own == name:
                return True, value
        for inner in self._embedded():
            found, value = inner.field_value(name)
            if found:
                return True, value
        return False, None

    def stringer(self) -> Callable[[], str] | None:
        if self.string is not None:
            return self.string
        for inner in self._embedded():
            found = inner.stringer()
            if found is not None:
                return found
        return None

    def _embedded(self) -> Iterator[Struct]:
        for name, value in self.fields:
            if name in self.embedded and isinstance(value, Struct):
                yield value


class GoList(list[Any]):
    """A slice whose element type is known (`[]update.Change`)."""

    def __init__(self, elem_type: str, items: Iterable[Any] = ()) -> None:
        super().__init__(items)
        self.elem_type = elem_type


class GoMap(dict[Any, Any]):
    """A map whose key and element types are known, and the zero value `index` gives."""

    def __init__(self, key_type: str, elem_type: str, items: Iterable[tuple[Any, Any]] = (),
                 zero: Callable[[], Any] = lambda: None) -> None:
        super().__init__(items)
        self.key_type = key_type
        self.elem_type = elem_type
        self.zero = zero


class Kind(StrEnum):
    """Go's reflect kinds, as far as templates tell them apart."""

    INVALID = "invalid"
    NIL = "nil"
    BOOL = "bool"
    INT = "int"
    FLOAT = "float64"
    STRING = "string"
    SLICE = "slice"
    MAP = "map"
    STRUCT = "struct"
    FUNC = "func"


def kind_of(value: Any) -> Kind:
    if value is MISSING:
        return Kind.INVALID
    if value is None:
        return Kind.NIL
    if isinstance(value, bool):
        return Kind.BOOL
    if isinstance(value, int):
        return Kind.INT
    if isinstance(value, float):
        return Kind.FLOAT
    if isinstance(value, str):
        return Kind.STRING
    if isinstance(value, (list, tuple)):
        return Kind.SLICE
    if isinstance(value, dict):
        return Kind.MAP
    if isinstance(value, Struct):
        return Kind.STRUCT
    return Kind.FUNC


def type_name(value: Any) -> str:
    """The Go type a value has, as `%T` and error messages write it."""
    if value is None or value is MISSING:
        return "<nil>"
    if isinstance(value, Struct):
        return value.type_name
    if isinstance(value, GoList):
        return f"[]{value.elem_type}"
    if isinstance(value, GoMap):
        return f"map[{value.key_type}]{value.elem_type}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    kind = kind_of(value)
    return "func" if kind is Kind.FUNC else kind.value


def truth(value: Any) -> bool:
    """Go's `if`: false, 0, nil, the missing value and empty strings, slices and maps are false."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return bool(value)
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    return True


def sort_keys(keys: Iterable[Any]) -> list[Any]:
    """Map keys in the order Go prints and ranges them (internal/fmtsort)."""
    return sorted(keys, key=_SortKey)


class _SortKey:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _SortKey) -> bool:
        return compare_keys(self.value, other.value) < 0


def compare_keys(a: Any, b: Any) -> int:
    """fmtsort's order: numbers by value (NaN first), strings by bytes, false before true,
    structs field by field, nil before anything."""
    if a is None or b is None:
        return (b is None) - (a is None)
    if isinstance(a, Struct) and isinstance(b, Struct):
        for (_, x), (_, y) in zip(a.fields, b.fields):
            c = compare_keys(x, y)
            if c:
                return c
        return 0
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return (not math.isnan(a)) - (not math.isnan(b))
    if isinstance(a, str) and isinstance(b, str):
        x, y = a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
        return (x > y) - (x < y)
    if type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        return int(a > b) - int(a < b)
    return (type_name(a) > type_name(b)) - (type_name(a) < type_name(b))
