"""Flux's post-build variable substitution: bash-like `${var}` expansion over an object's YAML.

This follows fluxcd/pkg/envsubst (Flux's fork of drone/envsubst) in its default, non-strict
mode, the one kustomize-controller runs unless the StrictPostBuildSubstitutions feature gate
is on: an unset variable expands to the empty string. Only `${...}` is an expansion (`$var`
is left alone); `$$` writes one `$`, so `$${var}` keeps `${var}` literally. Inside the braces:
`${var:=default}` and `${var=default}` (also `:-`, `:+`, `:?`, all of which Flux maps to
"the value, or the default when the value is empty"), `${#var}`, `${var^}` `${var^^}`
`${var,}` `${var,,}`, `${var:offset}` `${var:offset:length}`, `${var/from/to}` (also `//`,
`/#`, `/%`) and `${var#glob}` `${var##glob}` `${var%glob}` `${var%%glob}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

VAR_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
"""Flux's rule for substitution variable names: `^[_[:alpha:]][_[:alpha:][:digit:]]*$`."""


class SubstitutionError(ValueError):
    """Text that is not a valid substitution template (Flux's parse errors, same words)."""


@dataclass
class _Func:
    name: str
    param: str
    args: list[list[_Node]] = field(default_factory=list)


_Node = str | _Func


def _is_ident(ch: str) -> bool:
    return ch.isalpha() or ch.isdigit() or ch == "_"


class _Parser:
    """A recursive-descent reading of the template, one character at a time."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def parse(self) -> list[_Node]:
        nodes: list[_Node] = []
        chunk: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "$" and self.peek(1) == "{":
                if chunk:
                    nodes.append("".join(chunk))
                    chunk = []
                self.pos += 2
                nodes.append(self.func())
            elif ch == "$" and self.peek(1) == "$":
                chunk.append("$")
                self.pos += 2
            else:
                chunk.append(ch)
                self.pos += 1
        if chunk:
            nodes.append("".join(chunk))
        return nodes

    def ident(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and _is_ident(self.text[self.pos]):
            self.pos += 1
        return self.text[start:self.pos]

    def expect_close(self, message: str = "bad substitution") -> None:
        if self.peek() != "}":
            raise SubstitutionError(message)
        self.pos += 1

    def func(self) -> _Func:
        """After `${`: a name and what follows it, up to the closing brace."""
        if self.peek() == "#":
            self.pos += 1
            name = self.ident()
            if not name:
                raise SubstitutionError("bad substitution")
            self.expect_close()
            return _Func("#", name)
        name = self.ident()
        if not name:
            raise SubstitutionError("unable to parse variable name")
        ch = self.peek()
        if ch == ":":
            if self.peek(1) in ("=", "-", "?", "+"):
                return self.default(name, ":" + self.peek(1), 2)
            return self.substring(name)
        if ch == "=":
            return self.default(name, "=", 1)
        if ch in (",", "^"):
            op = ch + (self.peek(1) if self.peek(1) in (",", "^") else "")
            self.pos += len(op)
            self.expect_close()
            return _Func(op, name)
        if ch == "/":
            return self.replace(name)
        if ch in ("#", "%"):
            op = ch * (2 if self.peek(1) == ch else 1)
            self.pos += len(op)
            node = _Func(op, name, [self.param(lambda c: c != "}")])
            self.expect_close()
            return node
        self.expect_close("missing closing brace")
        return _Func("", name)

    def default(self, name: str, op: str, width: int) -> _Func:
        self.pos += width
        node = _Func(op, name)
        while self.peek() != "}":
            if not self.peek():
                raise SubstitutionError("unable to parse substitution within function")
            node.args.append(self.param(lambda c: c != "}"))
        self.pos += 1
        return node

    def substring(self, name: str) -> _Func:
        self.pos += 1
        node = _Func(":", name, [self.param(lambda c: c not in (":", "}"))])
        if self.peek() == "}":
            self.pos += 1
            return node
        if self.peek() != ":":
            raise SubstitutionError("bad substitution")
        self.pos += 1
        node.args.append(self.param(lambda c: c != "}"))
        self.expect_close()
        return node

    def replace(self, name: str) -> _Func:
        self.pos += 1
        op = "/"
        if self.peek() in ("/", "#", "%"):
            op += self.peek()
            self.pos += 1
        node = _Func(op, name)
        node.args.append([""] if self.peek() == "/" else self.param(lambda c: c != "/", escapes=True))
        if self.peek() != "/":
            raise SubstitutionError("bad substitution")
        self.pos += 1
        if self.peek() == "}":
            self.pos += 1
            return node
        node.args.append(self.param(lambda c: c != "}", escapes=True))
        self.expect_close()
        return node

    def param(self, accept: Callable[[str], bool], *, escapes: bool = False) -> list[_Node]:
        """A function argument: text (and nested `${...}`) while `accept` holds."""
        if self.peek() == "$" and self.peek(1) == "{":
            self.pos += 2
            return [self.func()]
        chunk: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "$" and self.peek(1) == "{":
                break
            if escapes and ((ch == "$" and self.peek(1) == "$")
                            or (ch == "\\" and self.peek(1) in ("/", "\\"))):
                chunk.append(self.peek(1))
                self.pos += 2
                continue
            if not accept(ch):
                break
            chunk.append(ch)
            self.pos += 1
        if not chunk:
            raise SubstitutionError("unable to parse substitution within function")
        return ["".join(chunk)]


def _glob(pattern: str) -> re.Pattern[str] | None:
    """The fork's path.Match as a regex (its `*` and `?` match `/` too); None for a bad pattern."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            if i + 1 >= len(pattern):
                return None
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                return None
            body = pattern[i + 1:end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out), re.S)
    except re.error:
        return None


def _trim_prefix(value: str, pattern: str, longest: bool) -> str:
    compiled = _glob(pattern)
    if compiled is None:
        return value
    match = ""
    for end in range(len(value), 0, -1):
        if compiled.fullmatch(value[:end]):
            match = value[:end]
            if longest:
                break
    return value[len(match):]


def _trim_suffix(value: str, pattern: str, longest: bool) -> str:
    return _trim_prefix(value[::-1], pattern[::-1], longest)[::-1]


_GO_ATOI = re.compile(r"[-+]?[0-9]+")


def _substring(value: str, args: list[str]) -> str:
    if not _GO_ATOI.fullmatch(args[0]):
        return value
    start = int(args[0])
    if start < 0:
        start = max(len(value) + start, 0)
    if len(args) == 1:
        return value[start:]
    if not _GO_ATOI.fullmatch(args[1]):
        return value
    length = int(args[1])
    if length < 0:
        end = len(value) + length
        return value[start:end] if end >= start else ""
    return value[start:start + length]


def _apply(op: str, value: str, args: list[str]) -> str:
    if op == "#" and not args:
        return str(len(value.encode("utf-8")))
    if op in (",", "^"):
        change = str.lower if op == "," else str.upper
        return change(value[:1]) + value[1:]
    if op in (",,", "^^"):
        return value.lower() if op == ",," else value.upper()
    if op == ":":
        return _substring(value, args)
    if op in ("#", "##"):
        return _trim_prefix(value, args[0], op == "##")
    if op in ("%", "%%"):
        return _trim_suffix(value, args[0], op == "%%")
    if op in ("/", "//"):
        new = args[1] if len(args) > 1 else ""
        return value.replace(args[0], new, 1 if op == "/" else -1)
    if op == "/#":
        return args[1] + value[len(args[0]):] if len(args) == 2 and value.startswith(args[0]) else value
    if op == "/%":
        if len(args) == 2 and value.endswith(args[0]):
            return value[:len(value) - len(args[0])] + args[1]
        return value
    return value if value or not args else "".join(args)


def _evaluate(nodes: list[_Node], variables: Mapping[str, str]) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
            continue
        args = [_evaluate(arg, variables) for arg in node.args]
        out.append(_apply(node.name, variables.get(node.param, ""), args))
    return "".join(out)


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Expand every `${...}` in `text`; raises SubstitutionError for a malformed one."""
    if "$" not in text:
        return text
    return _evaluate(_Parser(text).parse(), variables)
