"""Sprig's regular expression functions, on RE2 as Go's regexp (Flux's own engine for tags).

`regexMatch` is false for a bad pattern; the others fail with Go's `error parsing regexp`.
Replacements expand `$1`, `${1}`, `$name` and `${name}` as Go's `Regexp.Expand` does.
"""

from __future__ import annotations

from typing import Any

from engine.evaluate.gotemplate.funcs import Func, FuncError, Param, fn
from engine.rules.regex import PatternError, compile_pattern, text_of, utf8

S, I = Param.STRING, Param.INT


def _regex(pattern: str) -> Any:
    try:
        return compile_pattern(pattern)
    except PatternError as err:
        raise FuncError(f"error parsing regexp: {err.cause}") from None


def _find_all(regex: Any, text: str, limit: int) -> list[tuple[int, int, Any]]:
    data = utf8(text)
    found: list[tuple[int, int, Any]] = []
    at, previous_end = 0, -1
    while at <= len(data) and (limit < 0 or len(found) < limit):
        match = regex.search(data, at)
        if match is None:
            break
        start, end = match.span(0)
        if start == end == previous_end:
            at = end + 1
            continue
        found.append((start, end, match))
        previous_end = end
        at = end if end > start else end + 1
    return found


def _expand(template: str, match: Any, regex: Any, data: bytes) -> str:
    """regexp.Expand: `$1`, `${1}`, `$name`, `${name}`, `$$`."""
    out: list[str] = []
    i = 0
    names = {text_of(k): v for k, v in regex.groupindex.items()}
    while i < len(template):
        char = template[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        if template.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        braced = template.startswith("${", i)
        j = i + (2 if braced else 1)
        k = j
        while k < len(template) and (template[k].isalnum() or template[k] == "_"):
            k += 1
        if k == j or (braced and not template.startswith("}", k)):
            out.append("$")
            i += 1
            continue
        name = template[j:k]
        i = k + (1 if braced else 0)
        index = int(name) if name.isdigit() else names.get(name)
        if index is not None and index <= regex.groups:
            start, end = match.span(index)
            if start >= 0:
                out.append(text_of(data[start:end]))
    return "".join(out)


def _replace_all(pattern: str, text: str, replacement: str, literal: bool) -> str:
    regex = _regex(pattern)
    data = utf8(text)
    out: list[str] = []
    last = 0
    for start, end, match in _find_all(regex, text, -1):
        out.append(text_of(data[last:start]))
        out.append(replacement if literal else _expand(replacement, match, regex, data))
        last = end
    out.append(text_of(data[last:]))
    return "".join(out)


def _regex_split(pattern: str, text: str, count: int) -> list[Any]:
    """regexp.Split: the text between matches, at most `count` pieces (all when negative)."""
    regex = _regex(pattern)
    if count == 0:
        return []
    if pattern and not text:
        return [""]
    data = utf8(text)
    parts: list[Any] = []
    begin = end = 0
    for start, stop, _ in _find_all(regex, text, count):
        if count > 0 and len(parts) == count - 1:
            break
        end = start
        if stop != 0:
            parts.append(text_of(data[begin:end]))
        begin = stop
    if end != len(data):
        parts.append(text_of(data[begin:]))
    return parts


def _valid(pattern: str) -> bool:
    try:
        compile_pattern(pattern)
    except PatternError:
        return False
    return True


def _find_strings(pattern: str, text: str, limit: int) -> list[Any]:
    data = utf8(text)
    return [text_of(data[s:e]) for s, e, _ in _find_all(_regex(pattern), text, limit)]


REGEX_FUNCS: dict[str, Func] = {
    "regexMatch": fn(S, S)(lambda r, s: _find_all(_regex(r), s, 1) != [] if _valid(r) else False),
    "mustRegexMatch": fn(S, S)(lambda r, s: _find_all(_regex(r), s, 1) != []),
    "regexFindAll": fn(S, S, I)(lambda r, s, n: _find_strings(r, s, n)),
    "mustRegexFindAll": fn(S, S, I)(lambda r, s, n: _find_strings(r, s, n)),
    "regexFind": fn(S, S)(lambda r, s: (_find_strings(r, s, 1) or [""])[0]),
    "mustRegexFind": fn(S, S)(lambda r, s: (_find_strings(r, s, 1) or [""])[0]),
    "regexReplaceAll": fn(S, S, S)(lambda r, s, repl: _replace_all(r, s, repl, False)),
    "mustRegexReplaceAll": fn(S, S, S)(lambda r, s, repl: _replace_all(r, s, repl, False)),
    "regexReplaceAllLiteral": fn(S, S, S)(lambda r, s, repl: _replace_all(r, s, repl, True)),
    "mustRegexReplaceAllLiteral": fn(S, S, S)(lambda r, s, repl: _replace_all(r, s, repl, True)),
    "regexSplit": fn(S, S, I)(_regex_split),
    "mustRegexSplit": fn(S, S, I)(_regex_split),
    "regexQuoteMeta": fn(S)(lambda s: "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in s)),
}
