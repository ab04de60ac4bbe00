"""Sprig's template functions, as Flux's image-automation-controller registers them
(`sprig.HermeticTxtFuncMap()`: sprig v3 without its date, random, environment and network
functions), each with sprig's semantics: argument order for piping (`"foo" | contains "f"`),
lenient conversions (`atoi "x"` is 0), and `must*` forms that fail where the plain form
returns a default.

Functions in `UNSUPPORTED` are in Flux's set but not implemented here (dates, crypto, random,
case conversion, semver objects, decimals); a template naming one fails to parse with a
message that says so, never with a wrong result.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from typing import Any

from engine.evaluate.gotemplate.funcs import Func, FuncError, FuncMap, Param, fn
from engine.evaluate.gotemplate.gofmt import show
from engine.evaluate.gotemplate.sprigregex import REGEX_FUNCS
from engine.evaluate.gotemplate.sprigdata import DATA_FUNCS, to_int64, to_float64, strval, strslice
from engine.evaluate.gotemplate.values import MISSING, sort_keys, truth, type_name
from engine.rules.goquote import go_quote as quote
from engine.rules.regex import utf8
from engine.rules.semver import ConstraintError, parse_constraint, parse_version

S, I, A, B = Param.STRING, Param.INT, Param.ANY, Param.BOOL


def _go_slice(text: str, start: int, end: int | None = None) -> str:
    data = text.encode("utf-8", "surrogateescape")
    if start < 0 or (end is not None and (end < start or end > len(data))) or start > len(data):
        stop = len(data) if end is None else end
        raise FuncError(f"runtime error: slice bounds out of range [{start}:{stop}]")
    return data[start:end].decode("utf-8", "surrogateescape")


def _blen(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def _title(text: str) -> str:
    """strings.Title: upper-case each letter that follows a separator."""
    out, previous = [], " "
    for char in text:
        separator = not (previous.isalnum() or previous == "_") if previous.isascii() else previous.isspace()
        out.append(char.title() if separator else char)
        previous = char
    return "".join(out)


def _trunc(count: int, text: str) -> str:
    size = _blen(text)
    if count < 0 and size + count > 0:
        return _go_slice(text, size + count)
    if count >= 0 and size > count:
        return _go_slice(text, 0, count)
    return text


def _substr(start: int, end: int, text: str) -> str:
    if start < 0:
        return _go_slice(text, 0, end)
    if end < 0 or end > _blen(text):
        return _go_slice(text, start)
    return _go_slice(text, start, end)


def _abbrev(width: int, text: str) -> str:
    if width < 4 or len(text) <= width:
        return text
    return text[: width - 3] + "..."


def _abbrevboth(left: int, right: int, text: str) -> str:
    if right < 4 or (left > 0 and right < 7):
        return text
    if len(text) <= right:
        return text
    offset = min(max(left, 0), len(text))
    if len(text) - offset < right - 3:
        offset = len(text) - (right - 3)
    if offset <= 4:
        return text[: right - 3] + "..."
    if right < 7:
        return text
    if offset + right - 3 < len(text):
        return "..." + _abbrev(right - 3, text[offset:])
    return "..." + text[len(text) - (right - 3):]


def _seq(*params: int) -> str:
    if len(params) == 1:
        start, step, end = 1, 1 if params[0] >= 1 else -1, params[0]
    elif len(params) == 2:
        start, end = params
        step = 1 if end >= start else -1
    elif len(params) == 3:
        start, step, end = params
        if step == 0 or (end > start and step < 0) or (end < start and step > 0):
            return ""
    else:
        return ""
    numbers = list(range(start, end + (1 if step > 0 else -1), step))
    return " ".join(str(n) for n in numbers)


def _until_step(start: int, stop: int, step: int) -> list[Any]:
    if step == 0 or (step > 0 and start >= stop) or (step < 0 and start <= stop):
        return []
    return list(range(start, stop, step))


def _split_map(parts: list[str]) -> dict[str, Any]:
    return {f"_{i}": part for i, part in enumerate(parts)}


def _splitn(sep: str, count: int, text: str) -> dict[str, Any]:
    if count == 0:
        return {}
    if count < 0:
        return _split_map(text.split(sep) if sep else list(text))
    return _split_map(text.split(sep, count - 1) if sep else _split_chars(text, count))


def _split_chars(text: str, count: int) -> list[str]:
    return list(text[: count - 1]) + ([text[count - 1:]] if len(text) >= count else [])


def _split_list(sep: str, text: str) -> list[Any]:
    return list(text.split(sep) if sep else list(text))


def _round(value: Any, precision: int, *half: Any) -> float:
    rounding = to_float64(half[0]) if half else 0.5
    number = to_float64(value)
    power = 10.0 ** precision
    digit = power * number
    whole = int(digit) if digit >= 0 else -int(-digit)
    frac = digit - whole
    if digit >= 0:
        rounded = whole + (1 if frac >= rounding else 0)
    else:
        rounded = whole - (1 if -frac >= rounding else 0)
    return rounded / power


def _semver_compare(constraint: str, version: str) -> bool:
    try:
        parsed = parse_constraint(constraint)
    except ConstraintError as err:
        raise FuncError(f"failed to parse constraint {constraint}: {err}") from None
    parsed_version = parse_version(version)
    if parsed_version is None:
        raise FuncError("Invalid Semantic Version")
    return parsed.check(parsed_version)


def _json(value: Any, indent: bool, escape_html: bool) -> str:
    text = json.dumps(_jsonable(value), ensure_ascii=False, indent=2 if indent else None,
                      separators=(",", ": ") if indent else (",", ":"))
    if escape_html:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _jsonable(value: Any) -> Any:
    from engine.evaluate.gotemplate.values import GoMap, Struct

    if value is MISSING or value is None or isinstance(value, (str, bool, int)):
        return None if value is MISSING else value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise FuncError(f"json: unsupported value: {show(value)}")
        return int(value) if value.is_integer() and abs(value) < 1e21 else value
    if isinstance(value, Struct):
        out: dict[str, Any] = {}
        for name, inner in value.fields:
            if name in value.embedded and isinstance(inner, Struct):
                out.update(_jsonable(inner))
            else:
                out[name] = _jsonable(inner)
        return out
    if isinstance(value, dict):
        if isinstance(value, GoMap) and value.key_type != "string":
            raise FuncError(f"json: unsupported type: {type_name(value)}")
        return {str(k): _jsonable(value[k]) for k in sort_keys(value)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    raise FuncError(f"json: unsupported type: {type_name(value)}")


def _must_to_json(value: Any) -> str:
    return _json(value, False, True)


def _to_json(value: Any) -> str:
    try:
        return _json(value, False, True)
    except FuncError:
        return ""


def _from_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as err:
        raise FuncError(str(err)) from None


_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_B32 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def _b64dec(text: str) -> str:
    """base64.StdEncoding.DecodeString, or its error's text (sprig returns that as the value)."""
    bad = _b64_error(text.encode("utf-8", "surrogateescape"))
    if bad is not None:
        return f"illegal base64 data at input byte {bad}"
    clean = text.replace("\r", "").replace("\n", "")
    return base64.b64decode(clean).decode("utf-8", "surrogateescape")


def _b64_error(src: bytes) -> int | None:
    """Where Go's decoder stops on `src`, quantum by quantum (None: it decodes)."""
    si = 0
    while si < len(src):
        j = 0
        while j < 4:
            if si == len(src):
                return None if j == 0 else si - j
            char = chr(src[si])
            si += 1
            if char in _B64:
                j += 1
                continue
            if char in "\r\n":
                continue
            if char != "=" or j < 2:
                return si - 1
            if j == 2:
                si = _skip_newlines(src, si)
                if si == len(src):
                    return len(src)
                if chr(src[si]) != "=":
                    return si - 1
                si += 1
            si = _skip_newlines(src, si)
            return si if si < len(src) else None
    return None


def _skip_newlines(src: bytes, at: int) -> int:
    while at < len(src) and src[at] in b"\r\n":
        at += 1
    return at


def _b32dec(text: str) -> str:
    """base32.StdEncoding.DecodeString; errors at the first bad byte or the short quantum."""
    clean = text.replace("\r", "").replace("\n", "")
    for index, char in enumerate(clean):
        if char not in _B32 and char != "=":
            return f"illegal base32 data at input byte {index}"
    try:
        return base64.b32decode(clean).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError):
        return f"illegal base32 data at input byte {len(clean) // 8 * 8 if len(clean) % 8 else 0}"


def _go_clean(path: str) -> str:
    """path.Clean."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = ("/" if rooted else "") + "/".join(parts)
    return cleaned or ("/" if rooted else ".")


def _go_base(path: str) -> str:
    if not path:
        return "."
    path = path.rstrip("/")
    return path.rsplit("/", 1)[-1] if path else "/"


def _go_dir(path: str) -> str:
    return _go_clean(path[: path.rfind("/") + 1])


def _go_ext(path: str) -> str:
    for i in range(len(path) - 1, -1, -1):
        if path[i] == "/":
            break
        if path[i] == ".":
            return path[i:]
    return ""


def _fail(message: str) -> str:
    raise FuncError(message)


def _repeat(count: int, text: str) -> str:
    if count < 0:
        raise FuncError("strings: negative Repeat count")
    return text * count


STRING_FUNCS: dict[str, Func] = {
    "hello": fn()(lambda: "Hello!"),
    "abbrev": fn(I, S)(_abbrev),
    "abbrevboth": fn(I, I, S)(_abbrevboth),
    "trunc": fn(I, S)(_trunc),
    "trim": fn(S)(lambda s: s.strip(" \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
                                    "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f"
                                    "\u205f\u3000")),
    "upper": fn(S)(str.upper),
    "lower": fn(S)(str.lower),
    "title": fn(S)(_title),
    "substr": fn(I, I, S)(_substr),
    "repeat": fn(I, S)(_repeat),
    "trimall": fn(S, S)(lambda cut, s: s.strip(cut)),
    "trimAll": fn(S, S)(lambda cut, s: s.strip(cut)),
    "trimSuffix": fn(S, S)(lambda suffix, s: s.removesuffix(suffix)),
    "trimPrefix": fn(S, S)(lambda prefix, s: s.removeprefix(prefix)),
    "nospace": fn(S)(lambda s: "".join(c for c in s if not c.isspace())),
    "initials": fn(S)(lambda s: "".join(w[0] for w in s.split())),
    "contains": fn(S, S)(lambda sub, s: sub in s),
    "hasPrefix": fn(S, S)(lambda prefix, s: s.startswith(prefix)),
    "hasSuffix": fn(S, S)(lambda suffix, s: s.endswith(suffix)),
    "quote": fn(A, variadic=True)(lambda *v: " ".join(quote(strval(x)) for x in v if x is not None)),
    "squote": fn(A, variadic=True)(lambda *v: " ".join(f"'{strval(x)}'" for x in v if x is not None)),
    "cat": fn(A, variadic=True)(lambda *v: " ".join(show(x) for x in v if x is not None)),
    "indent": fn(I, S)(lambda n, s: " " * n + s.replace("\n", "\n" + " " * n)),
    "nindent": fn(I, S)(lambda n, s: "\n" + " " * n + s.replace("\n", "\n" + " " * n)),
    "replace": fn(S, S, S)(lambda old, new, s: s.replace(old, new) if old else
                            new + new.join(s) + new if s else new),
    "plural": fn(S, S, I)(lambda one, many, n: one if n == 1 else many),
    "sha1sum": fn(S)(lambda s: hashlib.sha1(s.encode("utf-8", "surrogateescape")).hexdigest()),
    "sha256sum": fn(S)(lambda s: hashlib.sha256(s.encode("utf-8", "surrogateescape")).hexdigest()),
    "adler32sum": fn(S)(lambda s: str(zlib.adler32(s.encode("utf-8", "surrogateescape")))),
    "toString": fn(A)(strval),
    "atoi": fn(S)(lambda s: int(s) if s.strip("+-").isdigit() and s.isascii() else 0),
    "int64": fn(A)(to_int64),
    "int": fn(A)(to_int64),
    "float64": fn(A)(to_float64),
    "seq": fn(I, variadic=True)(_seq),
    "split": fn(S, S)(lambda sep, s: _split_map(_split_list(sep, s))),
    "splitList": fn(S, S)(_split_list),
    "splitn": fn(S, I, S)(_splitn),
    "toStrings": fn(A)(strslice),
    "until": fn(I)(lambda n: _until_step(0, n, 1 if n >= 0 else -1)),
    "untilStep": fn(I, I, I)(_until_step),
    "add1": fn(A)(lambda v: to_int64(v) + 1),
    "add": fn(A, variadic=True)(lambda *v: sum(to_int64(x) for x in v)),
    "sub": fn(A, A)(lambda a, b: to_int64(a) - to_int64(b)),
    "div": fn(A, A)(lambda a, b: _int_div(to_int64(a), to_int64(b))),
    "mod": fn(A, A)(lambda a, b: _int_mod(to_int64(a), to_int64(b))),
    "mul": fn(A, A, variadic=True)(lambda a, *v: _product([to_int64(a), *(to_int64(x) for x in v)])),
    "biggest": fn(A, A, variadic=True)(lambda a, *v: max([to_int64(a), *(to_int64(x) for x in v)])),
    "max": fn(A, A, variadic=True)(lambda a, *v: max([to_int64(a), *(to_int64(x) for x in v)])),
    "min": fn(A, A, variadic=True)(lambda a, *v: min([to_int64(a), *(to_int64(x) for x in v)])),
    "maxf": fn(A, A, variadic=True)(lambda a, *v: max([to_float64(a), *(to_float64(x) for x in v)])),
    "minf": fn(A, A, variadic=True)(lambda a, *v: min([to_float64(a), *(to_float64(x) for x in v)])),
    "ceil": fn(A)(lambda v: float(-((-to_float64(v)) // 1))),
    "floor": fn(A)(lambda v: float(to_float64(v) // 1)),
    "round": fn(A, I, A, variadic=True)(_round),
    "join": fn(S, A)(lambda sep, v: sep.join(strslice(v))),
    "sortAlpha": fn(A)(lambda v: sorted(strslice(v), key=utf8) if isinstance(v, (list, tuple))
                       else [strval(v)]),
    "b64enc": fn(S)(lambda s: base64.b64encode(s.encode("utf-8", "surrogateescape")).decode()),
    "b64dec": fn(S)(_b64dec),
    "b32enc": fn(S)(lambda s: base64.b32encode(s.encode("utf-8", "surrogateescape")).decode()),
    "b32dec": fn(S)(_b32dec),
    "base": fn(S)(_go_base),
    "dir": fn(S)(_go_dir),
    "clean": fn(S)(_go_clean),
    "ext": fn(S)(_go_ext),
    "isAbs": fn(S)(lambda p: p.startswith("/")),
    "osBase": fn(S)(_go_base),
    "osDir": fn(S)(_go_dir),
    "osClean": fn(S)(_go_clean),
    "osExt": fn(S)(_go_ext),
    "osIsAbs": fn(S)(lambda p: p.startswith("/")),
    "fail": fn(S)(_fail),
    "toJson": fn(A)(_to_json),
    "mustToJson": fn(A)(_must_to_json),
    "toPrettyJson": fn(A)(lambda v: _json(v, True, True) if _jsonable_ok(v) else ""),
    "mustToPrettyJson": fn(A)(lambda v: _json(v, True, True)),
    "toRawJson": fn(A)(lambda v: _json(v, False, False) if _jsonable_ok(v) else ""),
    "mustToRawJson": fn(A)(lambda v: _json(v, False, False)),
    "fromJson": fn(S)(lambda s: _from_json_lenient(s)),
    "mustFromJson": fn(S)(_from_json),
    "semverCompare": fn(S, S)(_semver_compare),
    "ternary": fn(A, A, B)(lambda yes, no, cond: yes if cond else no),
    "default": fn(A, A, variadic=True)(lambda d, *given: given[0] if given and truth(given[0]) else d),
    "empty": fn(A)(lambda v: not truth(v)),
    "coalesce": fn(A, variadic=True)(lambda *v: next((x for x in v if truth(x)), None)),
    "all": fn(A, variadic=True)(lambda *v: all(truth(x) for x in v)),
    "any": fn(A, variadic=True)(lambda *v: any(truth(x) for x in v)),
    "typeOf": fn(A)(type_name),
    "typeIs": fn(S, A)(lambda target, v: target == type_name(v)),
    "typeIsLike": fn(S, A)(lambda target, v: target in (type_name(v), "*" + type_name(v))),
    "kindOf": fn(A)(lambda v: _kind_name(v)),
    "kindIs": fn(S, A)(lambda target, v: target == _kind_name(v)),
    "deepEqual": fn(A, A)(lambda a, b: type_name(a) == type_name(b) and a == b),
}


def _product(values: list[int]) -> int:
    result = 1
    for v in values:
        result *= v
    return result


def _int_div(a: int, b: int) -> int:
    if b == 0:
        raise FuncError("runtime error: integer divide by zero")
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


def _int_mod(a: int, b: int) -> int:
    if b == 0:
        raise FuncError("runtime error: integer divide by zero")
    return a - b * _int_div(a, b)


def _jsonable_ok(value: Any) -> bool:
    try:
        _jsonable(value)
    except FuncError:
        return False
    return True


def _from_json_lenient(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _kind_name(value: Any) -> str:
    from engine.evaluate.gotemplate.values import Kind, kind_of

    kind = kind_of(value)
    return {Kind.NIL: "invalid", Kind.INVALID: "invalid"}.get(kind, kind.value)


SPRIG: FuncMap = {**STRING_FUNCS, **DATA_FUNCS, **REGEX_FUNCS}

UNSUPPORTED = frozenset({
    "ago", "duration", "durationRound", "toDate", "mustToDate", "unixEpoch", "must_date_modify",
    "mustDateModify", "untitle", "swapcase", "shuffle", "snakecase", "camelcase", "kebabcase",
    "wrap", "wrapWith", "randSeededNumeric", "randInt", "toDecimal", "add1f", "addf", "subf",
    "divf", "mulf", "bcrypt", "htpasswd", "genPrivateKey", "derivePassword", "buildCustomCert",
    "genCA", "genCAWithKey", "genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert",
    "genSignedCertWithKey", "encryptAES", "decryptAES", "semver", "urlParse", "urlJoin",
    "deepCopy", "mustDeepCopy",
})
"""In Flux's function map, not implemented by gitward: a template naming one is refused."""
