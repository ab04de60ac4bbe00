"""Sprig's list and dict functions, and the lenient conversions every sprig function uses.

Lists are `[]interface {}` (Python lists) and dicts `map[string]interface {}` (Python dicts);
a dict function given another map type fails as Go's argument check does. The plain forms
panic on a value of the wrong kind (`Cannot find first on type string`), reported as the
call's error; `must*` forms return the same error.
"""

from __future__ import annotations

import re
from typing import Any

from engine.evaluate.gotemplate.funcs import Func, FuncError, Param, fn
from engine.evaluate.gotemplate.gofmt import show
from engine.evaluate.gotemplate.values import MISSING, Kind, Struct, kind_of, truth

A, I, S, D = Param.ANY, Param.INT, Param.STRING, Param.DICT

_INT_TEXT = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[oO]?[0-7_]*|0[bB][01_]+|[1-9][0-9_]*)")


def strval(value: Any) -> str:
    """Sprig's strval: strings as they are, a `String()` method's text, else `%v`."""
    if isinstance(value, str):
        return value
    if isinstance(value, Struct) and value.stringer() is not None:
        return value.stringer()()  # type: ignore[misc]
    return show(None if value is MISSING else value)


def strslice(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [strval(v) for v in value if v is not None]
    if value is None or value is MISSING:
        return []
    return [strval(value)]


def to_int64(value: Any) -> int:
    """spf13/cast ToInt64: numbers truncated, booleans 0/1, numeric strings parsed, else 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value == value and abs(value) < 2**63 else -(2**63)
    if isinstance(value, str):
        text = value[:-2] if value.endswith(".0") else value
        if _INT_TEXT.fullmatch(text):
            try:
                parsed = int(text.replace("0", "0o", 1) if re.fullmatch(r"[+-]?0[0-7_]+", text) else text, 0)
            except ValueError:
                return 0
            return parsed if -(2**63) <= parsed < 2**63 else 0
    return 0


def to_float64(value: Any) -> float:
    if isinstance(value, (bool, int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


def _list(value: Any, what: str, must: bool = False) -> list[Any]:
    if kind_of(value) is Kind.SLICE:
        return list(value)
    kind = _kind(value)
    raise FuncError(f"Cannot {what} on type {kind}" if not must else f"Cannot {what} on type {kind}")


def _kind(value: Any) -> str:
    kind = kind_of(value)
    return "invalid" if kind in (Kind.NIL, Kind.INVALID) else kind.value


def _first(value: Any) -> Any:
    items = _list(value, "find first")
    return items[0] if items else None


def _last(value: Any) -> Any:
    items = _list(value, "find last")
    return items[-1] if items else None


def _rest(value: Any) -> Any:
    items = _list(value, "find rest")
    return items[1:] if items else None


def _initial(value: Any) -> Any:
    items = _list(value, "find initial")
    return items[:-1] if items else None


def _uniq(value: Any) -> list[Any]:
    out: list[Any] = []
    for item in _list(value, "uniq"):
        if not any(_deep_equal(item, seen) for seen in out):
            out.append(item)
    return out


def _deep_equal(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


def _has(needle: Any, haystack: Any) -> bool:
    if haystack is None or haystack is MISSING:
        return False
    return any(_deep_equal(needle, item) for item in _list(haystack, "find has"))


def _without(value: Any, *omit: Any) -> list[Any]:
    return [item for item in _list(value, "find without") if not any(_deep_equal(item, o) for o in omit)]


def _slice(value: Any, *indexes: Any) -> Any:
    items = _list(value, "slice")
    if not items:
        return items
    start = int(indexes[0]) if len(indexes) > 0 else 0
    end = int(indexes[1]) if len(indexes) > 1 else len(items)
    if not 0 <= start <= end <= len(items):
        raise FuncError(f"runtime error: slice bounds out of range [{start}:{end}]")
    return items[start:end]


def _concat(*lists: Any) -> list[Any]:
    out: list[Any] = []
    for value in lists:
        out.extend(_list(value, "concat"))
    return out


def _chunk(size: int, value: Any) -> list[Any]:
    items = _list(value, "chunk")
    if size <= 0:
        return []
    return [items[i:i + size] for i in range(0, len(items), size)]


def _dict(*pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(pairs), 2):
        key = strval(pairs[i])
        out[key] = pairs[i + 1] if i + 1 < len(pairs) else ""
    return out


def _dig(*args: Any) -> Any:
    if len(args) < 3:
        raise FuncError("dig needs at least three arguments")
    *keys, default, data = args
    current = data
    for key in keys:
        if not isinstance(current, dict) or not isinstance(key, str) or key not in current:
            return default
        current = current[key]
    return current


def _merge(target: Any, *sources: Any) -> Any:
    for source in sources:
        for key, value in (source or {}).items():
            target.setdefault(key, value)
    return target


def _merge_overwrite(target: Any, *sources: Any) -> Any:
    for source in sources:
        target.update(source or {})
    return target


def _set(target: Any, key: str, value: Any) -> Any:
    target[key] = value
    return target


def _unset(target: Any, key: str) -> Any:
    target.pop(key, None)
    return target


DATA_FUNCS: dict[str, Func] = {
    "list": fn(A, variadic=True)(lambda *v: list(v)),
    "tuple": fn(A, variadic=True)(lambda *v: list(v)),
    "dict": fn(A, variadic=True)(_dict),
    "get": fn(D, S)(lambda d, k: (d or {}).get(k, "")),
    "set": fn(D, S, A)(_set),
    "unset": fn(D, S)(_unset),
    "hasKey": fn(D, S)(lambda d, k: k in (d or {})),
    "pluck": fn(S, D, variadic=True)(lambda k, *ds: [d[k] for d in ds if d and k in d]),
    "keys": fn(D, variadic=True)(lambda *ds: [k for d in ds for k in (d or {})]),
    "pick": fn(D, S, variadic=True)(lambda d, *ks: {k: v for k, v in (d or {}).items() if k in ks}),
    "omit": fn(D, S, variadic=True)(lambda d, *ks: {k: v for k, v in (d or {}).items() if k not in ks}),
    "merge": fn(D, D, variadic=True)(_merge),
    "mustMerge": fn(D, D, variadic=True)(_merge),
    "mergeOverwrite": fn(D, D, variadic=True)(_merge_overwrite),
    "mustMergeOverwrite": fn(D, D, variadic=True)(_merge_overwrite),
    "values": fn(D)(lambda d: list((d or {}).values())),
    "append": fn(A, A)(lambda v, x: [*_list(v, "append"), x]),
    "push": fn(A, A)(lambda v, x: [*_list(v, "append"), x]),
    "mustAppend": fn(A, A)(lambda v, x: [*_list(v, "append", True), x]),
    "mustPush": fn(A, A)(lambda v, x: [*_list(v, "append", True), x]),
    "prepend": fn(A, A)(lambda v, x: [x, *_list(v, "prepend")]),
    "mustPrepend": fn(A, A)(lambda v, x: [x, *_list(v, "prepend", True)]),
    "first": fn(A)(_first),
    "mustFirst": fn(A)(_first),
    "rest": fn(A)(_rest),
    "mustRest": fn(A)(_rest),
    "last": fn(A)(_last),
    "mustLast": fn(A)(_last),
    "initial": fn(A)(_initial),
    "mustInitial": fn(A)(_initial),
    "reverse": fn(A)(lambda v: list(reversed(_list(v, "reverse")))),
    "mustReverse": fn(A)(lambda v: list(reversed(_list(v, "reverse", True)))),
    "uniq": fn(A)(_uniq),
    "mustUniq": fn(A)(_uniq),
    "without": fn(A, A, variadic=True)(_without),
    "mustWithout": fn(A, A, variadic=True)(_without),
    "has": fn(A, A)(_has),
    "mustHas": fn(A, A)(_has),
    "slice": fn(A, A, variadic=True)(_slice),
    "mustSlice": fn(A, A, variadic=True)(_slice),
    "concat": fn(A, variadic=True)(_concat),
    "compact": fn(A)(lambda v: [x for x in _list(v, "compact") if truth(x)]),
    "mustCompact": fn(A)(lambda v: [x for x in _list(v, "compact", True) if truth(x)]),
    "chunk": fn(I, A)(_chunk),
    "mustChunk": fn(I, A)(_chunk),
    "dig": fn(A, variadic=True)(_dig),
}
