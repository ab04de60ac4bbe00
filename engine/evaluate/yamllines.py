"""Marker comments located by reading lines, in YAML files plain enough that lines tell the structure.

A marked manifest is almost always block YAML: `image: app:1.0 # {"$imagepolicy": ...}` in
block mappings and sequences. Where such a marker's value stands does not need the file's full
layout (yamlscalars.py: every event as a Python object, about 1 ms for a 2 KB manifest): libyaml
checks the whole stream without building objects (`CParser.raw_parse`, 0.1 ms), and a small
grammar reads each line. A file is read this way only when every line is one whose tokens cannot
mean anything else; `line_marks` returns None otherwise and the caller takes the full parse.

What the grammar accepts, line by line: blank lines, comment lines, `---` and `...`, and
`indent (- )* (key: )? value? comment?` where a key is a plain word of `[A-Za-z0-9_./-]`, and a
value is a one-line plain scalar, a one-line quoted scalar without escapes, or a block scalar
header (`|`, `>-`...) whose content lines are skipped. Refused, so read by the full parse: tabs,
CR, NEL/LS/PS, a BOM, directives; flow collections; anchors, aliases and tags; explicit keys;
quoted keys; escapes; a plain value that the next line might continue; a line that is a bare
value; block scalars with an indentation indicator or content indented unevenly.

Why a line then means what it shows: libyaml accepted the stream, so its tokens exist; outside
block scalar content (tracked by indentation as libyaml does) and without multi-line scalars or
flow collections, each token starts on the line it shows on, and in block context only `: `
and ` #` end a plain scalar. tests/unit/test_yaml_lines.py holds the reading to the full parse
on the corpora and on generated YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from engine.evaluate.yamlscalars import ScalarStyle

_CParser: type | None = getattr(getattr(yaml, "cyaml", None), "CParser", None)
"""libyaml's parser; None in a PyYAML without libyaml, where every file takes the full parse."""

_REFUSED_CHARS = ("\t", "\r", "\x85", "\u2028", "\u2029", "\ufeff")

# One line of the grammar, every quantifier possessive (so that a file is checked in one linear
# pass). A plain scalar: a first character that starts no other token, then no `: `, no ` #`, no
# `:` at the end, no trailing space; a quoted one on one line, without escapes.
_EOL = r"(?=\n|\Z)"
_KEY = r"[A-Za-z0-9_][A-Za-z0-9_./-]*+"
_PLAIN = (
    r"(?:[^\s#'\"&*!|>%@`,\[\]{}?:-]|[?:-](?=[^ \n]))"
    r"[^ :\n]*+(?:(?::(?=[^ \n])|[ ]++(?=[^ #\n]))[^ :\n]*+)*+"
)
_LINE_PATTERN = (
    r"[ ]*+(?:"
    r"(?:(?P<dashes>(?:-(?:[ ]++|" + _EOL + r"))++)(?:(?P<key>" + _KEY + r"):(?:[ ]++|" + _EOL + r"))?+"
    r"|(?P<key2>" + _KEY + r"):(?:[ ]++|" + _EOL + r"))"
    r"(?:(?P<plain>" + _PLAIN + r")|(?P<single>'(?:[^'\n]|'')*+')|(?P<double>\"[^\"\\\n]*+\")"
    r"|(?P<block>[|>][+-]?+))?+"
    r"[ ]*+(?:(?<=[ ])(?P<comment>\#[^\n]*+))?+"
    r"|(?P<alone>\#[^\n]*+)"
    r")?+"
    r"|(?P<separator>(?:---|\.\.\.)[ ]*+)"  # column 0 only: the alternative above takes the indent
)
_LINE = re.compile(_LINE_PATTERN)
_UNNAMED = re.sub(r"\(\?P<\w+>", "(?:", _LINE_PATTERN)
_FILE = re.compile(f"(?:(?:{_UNNAMED})\\n)*+(?:{_UNNAMED})")
_BLOCK_HEADER = re.compile(r"[ :-][|>][+-]?[ ]*(?:#.*)?$", re.MULTILINE)
_DASH_ITEM = re.compile(r"\n([ ]*+)(?:-(?:[ ]++|(?=\n|\Z)))++(?!" + _KEY + r":(?:[ ]|\n|\Z))")


@dataclass(frozen=True)
class LineScalar:
    """A one-line flow scalar: its offsets (quotes included), decoded value and style."""

    start: int
    end: int
    value: str
    style: ScalarStyle


@dataclass(frozen=True)
class LineComment:
    """A comment holding the searched text, to the end of its line.

    `above`: the comment fills its line. `target`: the value it governs (the value ending
    before it on its line, or, when `above`, the last value of the next line); None when a
    rule of the full parse decides (no value there, a block scalar, a key on its own).
    """

    start: int
    end: int
    above: bool
    target: LineScalar | None


class NewlineIndex:
    """1-based lines and columns of offsets into a text `line_marks` accepted (`\\n` its only line
    break, no BOM), counted per offset asked for: a marked file needs two or three of them."""

    def __init__(self, text: str) -> None:
        self.text = text

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) of an offset, both 1-based."""
        return self.text.count("\n", 0, offset) + 1, offset - self.text.rfind("\n", 0, offset)


class _Refused(Exception):
    """The file is not plain enough for the line reading."""


@dataclass(frozen=True)
class _Line:
    """What one line holds: where its comment starts (-1: none), whether that comment fills the
    line, the one-line value that ends it, the column of the key or `-` that owns that value,
    and whether a plain value ends the line (the next line may continue it) or a block scalar
    header does."""

    comment: int
    alone: bool
    scalar: LineScalar | None = None
    owner: int = -1
    open_plain: bool = False
    block: bool = False


_NOTHING = _Line(-1, False)


def line_marks(text: str, containing: str) -> list[LineComment] | None:
    """Every comment that holds `containing` and what it governs, or None when only the full
    parse can tell: the file is not valid YAML, or some line is not of the simple kinds, or the
    text occurs anywhere but in a comment."""
    if _CParser is None or any(ch in text for ch in _REFUSED_CHARS) or text.startswith("%") or "\n%" in text:
        return None
    try:
        _CParser(text).raw_parse()
    except (yaml.YAMLError, UnicodeEncodeError):  # the full parse words the warning
        return None
    try:
        if ("|" in text or ">" in text) and _BLOCK_HEADER.search(text):
            return _Reader(text, containing).read()
        if _FILE.fullmatch(text) is None:
            return None
        _no_continued_plain(text)
        return _marks_at_needles(text, containing)
    except _Refused:
        return None


def _no_continued_plain(text: str) -> None:
    """Refuse a `- ...` line that may continue the plain value ending the line above it (the
    only continuation a valid file can hold when no line is a bare value: a key would make the
    continued scalar an error)."""
    for item in _DASH_ITEM.finditer(text):
        column = len(item[1])
        end = item.start()
        while end > 0:
            begin = text.rfind("\n", 0, end) + 1
            above = _read(text[begin:end], begin, False)
            if above is not None:
                if above.open_plain and column > above.owner:
                    raise _Refused
                break
            end = begin - 1


def _marks_at_needles(text: str, needle: str) -> list[LineComment]:
    """The comments holding `needle` in a file whose every line is of the grammar's kinds and
    that holds no block scalar."""
    found: list[LineComment] = []
    at = text.find(needle)
    while at >= 0:
        begin = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        line = _read(text[begin:end], begin, True)
        if line is None or line.comment < 0 or line.comment > at:
            raise _Refused  # the text is in a value, a key or a separator
        target = line.scalar
        if line.alone:
            below = text.find("\n", end + 1)
            below = len(text) if below < 0 else below
            next_line = _read(text[end + 1 : below], end + 1, True) if end < len(text) else None
            target = next_line.scalar if next_line is not None else None
        found.append(LineComment(line.comment, end, line.alone, target))
        at = text.find(needle, end)
    return found


def _read(line: str, start: int, wanted: bool) -> _Line | None:
    """One line of the grammar (at offset `start`), None for a blank line or a separator; its
    scalar only when `wanted`. Raises _Refused for a line the grammar does not know."""
    match = _LINE.fullmatch(line)
    if match is None:
        raise _Refused
    if match["alone"] is not None:
        return _Line(start + match.start("alone"), True)
    dashes, key = match["dashes"], match["key"] or match["key2"]
    if dashes is None and key is None:
        return None
    comment = start + match.start("comment") if match["comment"] is not None else -1
    if key is not None:
        owner = match.start("key") if match["key"] is not None else match.start("key2")
    else:
        owner = match.start("dashes") + dashes.rstrip(" ").rfind("-")
    if match["block"] is not None:
        return _Line(comment, False, owner=owner, block=True)
    for group, style in _STYLES:
        token = match[group]
        if token is None:
            continue
        scalar = None
        if wanted:
            value = token if style is ScalarStyle.PLAIN else token[1:-1]
            if style is ScalarStyle.SINGLE:
                value = value.replace("''", "'")
            scalar = LineScalar(start + match.start(group), start + match.end(group), value, style)
        return _Line(comment, False, scalar, owner, style is ScalarStyle.PLAIN and comment < 0)
    return _Line(comment, False, owner=owner) if comment >= 0 else _NOTHING


_STYLES = (("plain", ScalarStyle.PLAIN), ("single", ScalarStyle.SINGLE), ("double", ScalarStyle.DOUBLE))


class _Reader:
    """The line reading of a file with block scalars: one pass that keeps what libyaml's scanner
    keeps, whether a block scalar's content is running (and its indentation), and whether a
    plain value may continue."""

    def __init__(self, text: str, needle: str) -> None:
        self.text, self.needle = text, needle
        self.block_parent = -1  # column of the key or `-` owning a running block scalar, -1: none
        self.block_indent = -1  # its content's indentation, -1 until its first non-blank line
        self.block_blanks = 0  # most spaces on a blank line before that first line
        self.after_block = False  # the next non-blank line is where a block scalar's token ends
        self.open_plain = -1  # a plain value ended its line: a line indented past this continues it

    def read(self) -> list[LineComment]:
        text, needle = self.text, self.needle
        found: list[LineComment] = []
        above: tuple[int, int] | None = None  # a comment line holding the text, just read
        start = 0
        previous_hit = False
        for line in text.split("\n"):
            hit = needle in line
            read = self._line(line, start, hit or previous_hit)
            if above is not None:
                found.append(LineComment(*above, True, read.scalar if read is not None else None))
                above = None
            if hit:
                if read is None or read.comment < 0 or needle in line[: read.comment - start]:
                    raise _Refused  # the text is in a value, a key or a block scalar's content
                if read.alone:
                    above = (read.comment, start + len(line))
                else:
                    found.append(LineComment(read.comment, start + len(line), False, read.scalar))
            previous_hit = hit
            start += len(line) + 1
        if above is not None:
            found.append(LineComment(*above, True, None))
        return found

    def _line(self, line: str, start: int, wanted: bool) -> _Line | None:
        stripped = line.lstrip(" ")
        column = len(line) - len(stripped)
        if self.block_parent >= 0 and self._in_block(stripped, column):
            return None
        if not stripped:
            return None
        after_block, self.after_block = self.after_block, False
        if self.open_plain >= 0:
            if stripped[0] != "#" and column > self.open_plain:
                raise _Refused  # it may continue the plain value above
            self.open_plain = -1
        read = _read(line, start, wanted)
        if read is None:
            return None
        if read.alone and after_block:
            # A block scalar's token ends where the next line starts: the full parse takes a
            # comment there as following the block scalar, not as a line of its own.
            return _Line(read.comment, False)
        if read.block:
            self.block_parent, self.block_indent, self.block_blanks = read.owner, -1, 0
        elif read.open_plain:
            self.open_plain = read.owner
        return read

    def _in_block(self, stripped: str, column: int) -> bool:
        """Whether a line is content (or a blank line) of the running block scalar; ends it at
        the first line that is not, as libyaml does."""
        if not stripped:
            if self.block_indent < 0:
                self.block_blanks = max(self.block_blanks, column)
            return True
        if self.block_indent < 0 and column > self.block_parent:
            if self.block_blanks > column:
                raise _Refused
            self.block_indent = column
            return True
        if self.block_indent >= 0 and column >= self.block_indent:
            return True
        if column > self.block_parent:
            raise _Refused  # less indented than the content, more than its owner
        self.block_parent = -1
        self.after_block = True
        return False
