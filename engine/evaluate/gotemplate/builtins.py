"""The functions every Go template has (text/template's builtins), with Go's semantics.

`and`/`or` return an argument, not a bool, and stop at the first that decides (the executor
evaluates them lazily); `eq` takes several right-hand sides; `lt` and friends compare basic
values of one kind only; `index` gives a map's zero value for a missing key; `html`, `js` and
`urlquery` escape the printed form of their arguments.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from engine.evaluate.gotemplate.funcs import Func, FuncError, FuncMap, Param, fn
from engine.evaluate.gotemplate.gofmt import show, sprint, sprintf, sprintln
from engine.evaluate.gotemplate.values import MISSING, GoMap, Kind, Struct, kind_of, truth, type_name

V = Param.VALUE


def _and_or(*args: Any) -> Any:  # evaluated by the executor, which short-circuits
    raise AssertionError("and/or are evaluated lazily")


@fn(V)
def _not(value: Any) -> bool:
    return not truth(value)


@fn(V)
def _len(value: Any) -> int:
    if value is MISSING or value is None:
        raise FuncError("len of nil pointer")
    if isinstance(value, (str, list, tuple, dict)):
        return len(value.encode("utf-8", "surrogateescape")) if isinstance(value, str) else len(value)
    raise FuncError(f"len of type {type_name(value)}")


@fn(V, V, variadic=True)
def _index(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise FuncError("index of untyped nil")
    for index in indexes:
        if index is MISSING:
            index = None
        if isinstance(item, (str, list, tuple)):
            if index is None:
                raise FuncError("cannot index slice/array with nil")
            if not isinstance(index, int) or isinstance(index, bool):
                raise FuncError(f"cannot index slice/array with type {type_name(index)}")
            size = len(item.encode("utf-8", "surrogateescape")) if isinstance(item, str) else len(item)
            if not 0 <= index < size:
                raise FuncError(f"index out of range: {index}")
            item = item.encode("utf-8", "surrogateescape")[index] if isinstance(item, str) else item[index]
        elif isinstance(item, dict):
            key_type = item.key_type if isinstance(item, GoMap) else "string"
            if index is None:
                if key_type != "interface {}":
                    raise FuncError(f"value is nil; should be of type {key_type}")
            elif type_name(index) != key_type and key_type != "interface {}":
                raise FuncError(f"value has type {type_name(index)}; should be {key_type}")
            if index in item:
                item = item[index]
            else:
                item = item.zero() if isinstance(item, GoMap) else None
        else:
            raise FuncError(f"can't index item of type {type_name(item)}")
    return item


@fn(Param.ANY, variadic=True)
def _print(*args: Any) -> str:
    return sprint(list(args))


@fn(Param.STRING, Param.ANY, variadic=True)
def _printf(format_: str, *args: Any) -> str:
    return sprintf(format_, list(args))


@fn(Param.ANY, variadic=True)
def _println(*args: Any) -> str:
    return sprintln(list(args))


def _evaluated(args: tuple[Any, ...]) -> str:
    """Go's evalArgs: one string argument as it is, else fmt.Sprint of them all."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint([None if a is MISSING else a for a in args])


@fn(Param.ANY, variadic=True)
def _html(*args: Any) -> str:
    text = _evaluated(args)
    out = []
    for char in text:
        out.append({"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;",
                    ">": "&gt;"}.get(char, char))
    return "".join(out)


@fn(Param.ANY, variadic=True)
def _js(*args: Any) -> str:
    text = _evaluated(args)
    out = []
    for char in text:
        code = ord(char)
        if char in "\\'\"":
            out.append("\\" + char)
        elif char in "<>&=":
            out.append(f"\\u{code:04X}")
        elif code < 0x20 or (not char.isprintable() and code >= 0x80):
            out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return "".join(out)


@fn(Param.ANY, variadic=True)
def _urlquery(*args: Any) -> str:
    return quote_plus(_evaluated(args).encode("utf-8", "surrogateescape"), safe="-_.~")


@fn(V, V, variadic=True)
def _call(function: Any, *args: Any) -> Any:
    if function is MISSING or function is None:
        raise FuncError("call of nil")
    raise FuncError(f"non-function of type {type_name(function)}")


_INT, _FLOAT, _STRING, _BOOL = "int", "float", "string", "bool"


def _nil(value: Any) -> bool:
    return value is None or value is MISSING


def _basic(value: Any) -> str | None:
    kind = kind_of(value)
    return {Kind.INT: _INT, Kind.FLOAT: _FLOAT, Kind.STRING: _STRING, Kind.BOOL: _BOOL}.get(kind)


def _equal(a: Any, b: Any) -> bool:
    """Go's eq for one pair: basic values of one kind by value (else "incompatible types"),
    nil (or no value) equal only to nil, structs by value, slices and maps not comparable."""
    ka, kb = _basic(a), _basic(b)
    if ka != kb:
        if not _nil(a) and not _nil(b):
            raise FuncError("incompatible types for comparison")
        return False
    if ka is not None:
        return bool(a == b)
    if _nil(a) or _nil(b):
        return _nil(a) and _nil(b)
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        raise FuncError(f"non-comparable type {show(a)}: {type_name(a)}")
    if isinstance(a, Struct) and isinstance(b, Struct) and a.type_name != b.type_name:
        raise FuncError("incompatible types for comparison")
    return bool(a == b)


@fn(V, V, variadic=True)
def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    return any(_equal(first, other) for other in others)


@fn(V, V)
def _ne(a: Any, b: Any) -> bool:
    return not _equal(a, b)


def _less(a: Any, b: Any) -> bool:
    ka, kb = _basic(a), _basic(b)
    if ka is None or kb is None or ka == _BOOL or kb == _BOOL:
        raise FuncError("invalid type for comparison")
    if ka != kb:
        raise FuncError("incompatible types for comparison")
    if ka == _STRING:
        return bool(a.encode("utf-8", "surrogatepass") < b.encode("utf-8", "surrogatepass"))
    return bool(a < b)


@fn(V, V)
def _lt(a: Any, b: Any) -> bool:
    return _less(a, b)


@fn(V, V)
def _le(a: Any, b: Any) -> bool:
    return _less(a, b) or _equal(a, b)


@fn(V, V)
def _gt(a: Any, b: Any) -> bool:
    return not (_less(a, b) or _equal(a, b))


@fn(V, V)
def _ge(a: Any, b: Any) -> bool:
    return not _less(a, b)


BUILTINS: FuncMap = {
    "and": Func(_and_or, (V, V), variadic=True),
    "or": Func(_and_or, (V, V), variadic=True),
    "not": _not,
    "len": _len,
    "index": _index,
    "print": _print,
    "printf": _printf,
    "println": _println,
    "html": _html,
    "js": _js,
    "urlquery": _urlquery,
    "call": _call,
    "eq": _eq,
    "ne": _ne,
    "lt": _lt,
    "le": _le,
    "gt": _gt,
    "ge": _ge,
}
"""Go's builtins but `slice`, which Flux's sprig functions replace with their own."""
