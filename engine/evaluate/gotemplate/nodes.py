"""The parse tree of a Go template: one frozen node type per construct, each with its offset.

`str(node)` writes the node back as Go's parse package does, which is what execution errors
quote (`executing "commit message" at <.Changed.Foo>: ...`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from engine.rules.goquote import go_quote as quote


@dataclass(frozen=True)
class Text:
    pos: int
    text: str


@dataclass(frozen=True)
class Comment:
    pos: int
    text: str


@dataclass(frozen=True)
class Field:
    """`.A.B`: a chain of field names evaluated from dot."""

    pos: int
    idents: tuple[str, ...]

    def __str__(self) -> str:
        return "".join(f".{i}" for i in self.idents)


@dataclass(frozen=True)
class Variable:
    """`$x` or `$x.A.B`."""

    pos: int
    idents: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass(frozen=True)
class Identifier:
    """A function name."""

    pos: int
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Dot:
    pos: int

    def __str__(self) -> str:
        return "."


@dataclass(frozen=True)
class Nil:
    pos: int

    def __str__(self) -> str:
        return "nil"


@dataclass(frozen=True)
class Bool:
    pos: int
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(frozen=True)
class Number:
    """A number constant; `is_int`/`is_float` say which Go types it can be."""

    pos: int
    text: str
    int_value: int | None
    float_value: float | None
    is_char: bool = False

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class String:
    pos: int
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(frozen=True)
class Chain:
    """`(pipeline).A.B`: fields applied to a term that is not dot or a variable."""

    pos: int
    node: Node
    fields: tuple[str, ...]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return inner + "".join(f".{f}" for f in self.fields)


@dataclass(frozen=True)
class Command:
    pos: int
    args: tuple[Node, ...]

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


@dataclass(frozen=True)
class Pipe:
    pos: int
    line: int
    decl: tuple[Variable, ...]
    is_assign: bool
    cmds: tuple[Command, ...]

    def __str__(self) -> str:
        text = ""
        if self.decl:
            text = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return text + " | ".join(str(c) for c in self.cmds)


@dataclass(frozen=True)
class Action:
    pos: int
    line: int
    pipe: Pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(frozen=True)
class Branch:
    """`if`, `with` or `range`, with its else list (an `else if` is an If inside it)."""

    keyword: str
    pos: int
    line: int
    pipe: Pipe
    body: tuple[Node, ...]
    else_body: tuple[Node, ...] | None

    def __str__(self) -> str:
        return "{{" + f"{self.keyword} {self.pipe}" + "}}"


@dataclass(frozen=True)
class Break:
    pos: int
    line: int

    def __str__(self) -> str:
        return "{{break}}"


@dataclass(frozen=True)
class Continue:
    pos: int
    line: int

    def __str__(self) -> str:
        return "{{continue}}"


@dataclass(frozen=True)
class TemplateCall:
    """`{{template "name" pipeline}}` (also what a `block` leaves in place)."""

    pos: int
    line: int
    name: str
    pipe: Pipe | None

    def __str__(self) -> str:
        tail = f" {self.pipe}" if self.pipe is not None else ""
        return "{{" + f"template {quote(self.name)}{tail}" + "}}"


Node = Union[Text, Comment, Field, Variable, Identifier, Dot, Nil, Bool, Number, String, Chain,
             Command, Pipe, Action, Branch, Break, Continue, TemplateCall]
