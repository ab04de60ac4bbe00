"""Reading one field of a rules file: what its keyword means and the values it is given.

A `Spec` says which model attribute a keyword fills, how its values are read and how repeated
lines merge; `Values` is the cursor a reader takes the values with, raising a located `Invalid`
for a missing, extra or wrongly typed one. The keyword tables that use them are in dslschema.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any, Protocol, TypeVar

from engine.errors import Problems, SourcePos, did_you_mean
from engine.rules.fluxapi import IGNORED_FIELD
from engine.rules.duration import DurationError, parse_duration
from engine.rules.syntax import Block, Field, Invalid, Value

_T = TypeVar("_T")


class Merge(Enum):
    ONCE = "once"  # given at most once
    APPEND = "append"  # repeatable: each line adds one item
    EXTEND = "extend"  # repeatable: each line adds its values; None (`none`) is an explicit empty list
    PARTS = "parts"  # (label, field, value) parts gathered into one object (`Spec.parts`), each once


@dataclass(frozen=True)
class Spec:
    attr: str
    read: Callable[[Values], Any]
    merge: Merge = Merge.ONCE
    block: bool = False
    parts: Callable[..., Any] | None = None
    """What `Merge.PARTS` builds from the gathered fields (a GitRef, an OCIRef)."""


class Values:
    """The values after a field's keyword, taken left to right by the field's reader."""

    def __init__(self, reader: BlockReader, keyword: Value, field: Field, keywords: Collection[str]):
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

    def take(self, expected: str) -> Value:
        if not self.more():
            raise Invalid(f"{self.label} expects {expected}", self.keyword.pos)
        value = self._values[self._next]
        self._next += 1
        return value

    @property
    def last(self) -> Value:
        """The value taken most recently (the keyword before any)."""
        return self._values[self._next - 1] if self._next else self.keyword

    def accept(self, word: str) -> Value | None:
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
            raise Invalid(f"too many values for {self.label}: unexpected {extra.shown()}", extra.pos, hint)

    def string(self, expected: str = "a string") -> str:
        value = self.take(expected)
        if not value.quoted:
            hint = f'strings are quoted: "{value.text}"'
            raise Invalid(f"{self.label} expects {expected}, not the bare word {value.shown()}", value.pos, hint)
        return value.text

    def strings(self, expected: str) -> list[str]:
        items = [self.string(expected)]
        while self.more():
            items.append(self.string(expected))
        return items

    def word(self, expected: str) -> Value:
        value = self.take(expected)
        if value.quoted:
            hint = "write it without quotes"
            raise Invalid(f"{self.label} expects {expected}, not the string {value.shown()}", value.pos, hint)
        return value

    def duration(self) -> timedelta:
        value = self.word("a duration")
        try:
            return parse_duration(value.text)
        except DurationError as err:
            raise Invalid(str(err), value.pos) from None

    def flag(self) -> bool:
        """`true` or `false`; the bare keyword means true."""
        if not self.more():
            return True
        value = self.word("true or false")
        if value.text not in ("true", "false"):
            raise Invalid(f"{self.label} expects true or false, not {value.shown()}", value.pos)
        return value.text == "true"

    def integer(self) -> int:
        value = self.word("a positive integer")
        if not re.fullmatch(r"[0-9]{1,9}", value.text) or int(value.text) == 0:
            raise Invalid(f"{self.label} expects a positive integer, not {value.shown()}", value.pos)
        return int(value.text)

    def choice(self, options: Mapping[str, _T], noun: str) -> _T:
        value = self.word(one_of(options))
        if value.text not in options:
            suggestion = did_you_mean(value.text, options)
            message = f"unknown {noun} {value.shown()}: expected {one_of(options)}{suggestion}"
            raise Invalid(message, value.pos)
        return options[value.text]

    def ref(self, expected: str = "NAME or NAMESPACE/NAME") -> tuple[str, str, SourcePos]:
        value = self.word(expected)
        namespace, name = split_ref(value)
        return namespace, name, value.pos

    def ignored(self, message: str) -> None:
        """A warning that gitward reads this field and does not act on it (`message` says what
        it does instead), at the value just taken."""
        self.reader.problems.warning(f"{self.label}: {message}", self.last.pos, code=IGNORED_FIELD)

    def nested(self, specs: Mapping[str, Spec], what: str) -> dict[str, Any]:
        """The fields of this field's `{ ... }` block (empty without one)."""
        return self.reader.fields(self.block, specs, what, pairs=True)[0] if self.block else {}


class BlockReader(Protocol):
    """What reads the fields of a nested block, and collects the problems of the file: the
    parser's reader, reached through `Values`."""

    problems: Problems

    def fields(
        self, block: Block, specs: Mapping[str, Spec], what: str, pairs: bool = False
    ) -> tuple[dict[str, Any], set[str]]: ...


_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def one_of(options: Collection[str]) -> str:
    words = list(options)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def check_name(text: str, pos: SourcePos, what: str = "name") -> None:
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
    raise Invalid(message, pos, hint, code="dsl-name")


def split_ref(value: Value) -> tuple[str, str]:
    """`NAME` -> ("", NAME); `NS/NAME` -> (NS, NAME)."""
    parts = value.text.split("/")
    if len(parts) > 2 or not all(parts):
        message = f"invalid reference {value.shown()}: expected NAME or NAMESPACE/NAME"
        raise Invalid(message, value.pos, code="dsl-name")
    if len(parts) == 2:
        check_name(parts[0], value.pos, "namespace")
    check_name(parts[-1], value.pos)
    return ("", parts[0]) if len(parts) == 1 else (parts[0], parts[1])

