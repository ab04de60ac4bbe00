"""The steps before a policy: the repository's exclusion list and the policy's `filterTags`.

Both are Go RE2 regexes used as unanchored searches; google-re2 is the same engine. Matching
runs on the tag's UTF-8 bytes, as Go's does, so group offsets and `extract` work on bytes too.
`extract` is Go's `Regexp.ExpandString` template, not Python's `\\1`:

- `$name` and `${name}` name a group by name or number; `$0` is the whole match;
- the name is as long as possible: `$1x` is the group called `1x` (absent, so empty);
- `$$` is a `$`; a `$` that starts no valid reference (`$-`, `a$`, `${1`) stays literal;
- an absent or non-participating group expands to "";
- only the expanded template is the value: text outside the match is dropped.

Patterns are compiled by engine/rules/regex.py, the one place that reads Go RE2 syntax.
"""

from __future__ import annotations

from dataclasses import dataclass
import re
from itertools import compress, repeat
from operator import itemgetter
from typing import Collection, Iterable, Sequence, Union

from engine.model import TagFilter
from engine.rules.regex import (
    Regex,
    compile_pattern,
    line_search,
    line_text,
    plain_lines,
    suffix_literal,
    text_of,
    utf8,
)

_MAX_NUMBER_DIGITS = 9  # Go reads a longer digit run as a name, not a group number


@dataclass(frozen=True)
class Exclusions:
    """A repository's exclusion list, compiled; a tag is excluded when any pattern matches.

    `suffixes` holds, per pattern, the literal L of a `^.*L$` pattern (see `suffix_literal`)
    or None: the default `^.*\\.sig$` is then an `endswith` on ASCII tags instead of one RE2
    call per tag, with the same answer. Other patterns go to RE2, and so do non-ASCII tags
    (never valid registry tags): what RE2's `.` does with the lone surrogates `utf8` can
    write is observed, not documented.
    """

    patterns: tuple[tuple[str, Regex], ...]
    suffixes: tuple[str | None, ...]

    @staticmethod
    def compile(patterns: Sequence[str]) -> Exclusions:
        compiled = tuple((p, compile_pattern(p)) for p in patterns)
        return Exclusions(compiled, tuple(suffix_literal(p) for p in patterns))

    def excluded(self, tags: Collection[str], text: str | None = None) -> dict[str, str]:
        """`excluding_pattern` of many tags at once: {tag: pattern} for the excluded ones.

        The same answers, pattern by pattern in list order (the first match wins). A suffix
        pattern is one substring search of the joined tags, then (if some tag may end with it)
        one `endswith` pass over the list: a tag without the suffix cannot match `^.*L$`, and a
        non-ASCII tag with it goes to RE2. `text` is the tags' `line_text`, when the caller
        has it.
        """
        out: dict[str, str] = {}
        if text is None and any(s is not None for s in self.suffixes):
            text = line_text(tags)
        for (pattern, regex), suffix in zip(self.patterns, self.suffixes):
            if suffix is not None and text is not None and suffix + "\n" not in text:
                continue  # no tag ends with it (one substring search, in C)
            if suffix is None:
                hits = [t for t in tags if regex.search(utf8(t)) is not None]
            else:  # the endswith pass runs in C; the few tags with the suffix are looked at
                ending = compress(tags, map(str.endswith, tags, repeat(suffix)))
                hits = [
                    t
                    for t in ending
                    if ("\n" not in t if t.isascii() else regex.search(utf8(t)) is not None)
                ]
            for tag in hits:
                out.setdefault(tag, pattern)
        return out

    def excluding_pattern(self, tag: str) -> str | None:
        """The first pattern that matches `tag`, or None when the tag is kept."""
        ascii_tag = tag.isascii()
        for (pattern, regex), suffix in zip(self.patterns, self.suffixes):
            if suffix is not None and ascii_tag:
                matched = tag.endswith(suffix) and "\n" not in tag
            else:
                matched = regex.search(utf8(tag)) is not None
            if matched:
                return pattern
        return None


@dataclass(frozen=True)
class _Group:
    """A template reference: the groups it names, in order; the first that took part counts."""

    indices: tuple[int, ...]


_Piece = Union[bytes, _Group]


def parse_template(template: str, pattern: str, regex: Regex) -> tuple[_Piece, ...]:
    """Go's template syntax, resolved against the pattern's groups once for all tags."""
    names = _group_names(pattern, regex)
    pieces: list[_Piece] = []
    literal: list[str] = []
    i = 0
    while (dollar := template.find("$", i)) >= 0:
        literal.append(template[i:dollar])
        i = dollar + 1
        if template.startswith("$", i):
            literal.append("$")
            i += 1
            continue
        reference = _reference(template, i)
        if reference is None:
            literal.append("$")
            continue
        name, i = reference
        if "".join(literal):
            pieces.append(utf8("".join(literal)))
        literal = []
        pieces.append(_Group(_group_indices(name, names)))
    literal.append(template[i:])
    if "".join(literal):
        pieces.append(utf8("".join(literal)))
    return tuple(pieces)


def _reference(template: str, start: int) -> tuple[str, int] | None:
    """The name after a `$` (`name` or `{name}`) and where it ends; None if malformed."""
    braced = template.startswith("{", start)
    i = start + 1 if braced else start
    end = i
    while end < len(template) and _is_name_char(template[end]):
        end += 1
    if end == i:
        return None
    if braced:
        if not template.startswith("}", end):
            return None
        return template[i:end], end + 1
    return template[i:end], end


def _is_name_char(c: str) -> bool:
    """Go's unicode.IsLetter, unicode.IsDigit or `_`."""
    return c.isalpha() or c.isdecimal() or c == "_"


def _group_indices(name: str, names: Sequence[str]) -> tuple[int, ...]:
    """`$3` is group 3 (if it exists); a name is every group so called, in order."""
    number = name.isascii() and name.isdigit() and len(name) <= _MAX_NUMBER_DIGITS
    if number and (name == "0" or name[0] != "0"):
        return (int(name),) if int(name) <= len(names) else ()
    return tuple(i for i, n in enumerate(names, start=1) if n == name)


def _group_names(pattern: str, regex: Regex) -> list[str]:
    """The name of each capturing group ("" when unnamed), by index from 1.

    Go allows one name on several groups (`^v(?P<n>\\d+)$|^r(?P<n>\\d+)$`) and `$n` takes the
    first that matched, while google-re2's `groupindex` keeps only one index per name, so the
    names are read from the pattern itself (which RE2 has already accepted).
    """
    names: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if pattern.startswith("Q", i + 1):
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
            else:
                i += 2
        elif c == "[":
            i = _class_end(pattern, i)
        elif c == "(":
            name, i = _group_open(pattern, i)
            if name is not None:
                names.append(name)
        else:
            i += 1
    if len(names) != regex.groups:  # a pattern this scanner misreads: trust RE2's own map
        names = [""] * regex.groups
        for key, index in regex.groupindex.items():
            names[index - 1] = text_of(key)
    return names


def _class_end(pattern: str, start: int) -> int:
    """The index after the `]` that closes the class opened at `start`."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1  # a leading `]` is literal
    while i < len(pattern) and pattern[i] != "]":
        if pattern[i] == "\\":
            i += 2
        elif pattern.startswith("[:", i) and (close := pattern.find(":]", i + 2)) >= 0:
            i = close + 2
        else:
            i += 1
    return i + 1


def _group_open(pattern: str, start: int) -> tuple[str | None, int]:
    """At a `(`: the group's name ("" unnamed; None for non-capturing) and where to go on."""
    for opener in ("(?P<", "(?<"):
        if pattern.startswith(opener, start):
            close = pattern.find(">", start)
            return pattern[start + len(opener) : close], close + 1
    if pattern.startswith("(?", start):
        return None, start + 2
    return "", start + 1


@dataclass(frozen=True)
class CompiledFilter:
    """A policy's `filterTags`: `value(tag)` is the extracted value, or None when filtered out."""

    pattern: str
    regex: Regex
    template: tuple[_Piece, ...] | None  # None: no extract, the tag itself is the value
    lines: re.Pattern[str] | None = None  # `line_search` of the pattern, when it has one

    @property
    def extracts(self) -> bool:
        """Whether values come from an `extract` template (else each value is its tag)."""
        return self.template is not None

    @staticmethod
    def compile(spec: TagFilter) -> CompiledFilter:
        regex = compile_pattern(spec.pattern)
        template = parse_template(spec.extract, spec.pattern, regex) if spec.extract else None
        return CompiledFilter(spec.pattern, regex, template, line_search(spec.pattern))

    def split(self, tags: Collection[str], text: str | None = None) -> tuple[list[str], list[str] | None, list[str]]:
        """Many tags at once: (tags that match, their values or None without an extract, tags
        that do not match). ASCII tags, none empty or with a newline, go through `lines` in one
        pass when the pattern has it: the same matches as RE2's, tag by tag. `text` is the
        tags' `line_text`, when the caller has it."""
        if self.lines is not None:
            text = text if text is not None else line_text(tags)
        if (
            self.lines is not None
            and text is not None
            and plain_lines(text, len(tags))
            and all(isinstance(p, bytes) or len(p.indices) < 2 for p in self.template or ())
        ):
            return _split_lines(self.lines, self.template, text)
        passed: list[str] = []
        values: list[str] = []
        unmatched: list[str] = []
        for tag in tags:
            value = self.value(tag)
            if value is None:
                unmatched.append(tag)
            else:
                passed.append(tag)
                values.append(value)
        return passed, (values if self.template is not None else None), unmatched

    def value(self, tag: str) -> str | None:
        """The extracted value of one tag (the tag itself without an extract), None unmatched."""
        data = utf8(tag)
        match = self.regex.search(data)
        if match is None:
            return None
        if self.template is None:
            return tag
        out = bytearray()
        for piece in self.template:
            if isinstance(piece, bytes):
                out += piece
                continue
            for index in piece.indices:
                begin, end = match.span(index)
                if begin >= 0:
                    out += data[begin:end]
                    break
        return text_of(bytes(out))


def _split_lines(
    program: re.Pattern[str], template: tuple[_Piece, ...] | None, text: str
) -> tuple[list[str], list[str] | None, list[str]]:
    """`CompiledFilter.split` by one `line_search` pass over the tags' `line_text`."""
    rows = program.findall(text)
    matched = list(compress(rows, map(itemgetter(0), rows)))
    passed = list(map(itemgetter(0), matched))
    unmatched = list(filter(None, map(itemgetter(-1), rows)))
    return passed, (None if template is None else _expanded(template, matched)), unmatched


def _expanded(template: tuple[_Piece, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """The template over `line_search` rows, column by column: a group's text is in the row
    one past its number (row[0] is the line); a group that took no part reads as ""."""
    columns: list[Iterable[str]] = []
    for piece in template:
        if isinstance(piece, bytes):
            columns.append(repeat(text_of(piece), len(rows)))
        elif piece.indices:
            columns.append(map(itemgetter(piece.indices[0] + 1), rows))
        else:
            columns.append(repeat("", len(rows)))
    if len(columns) == 1:
        return list(columns[0])
    return list(map("".join, zip(*columns)))
