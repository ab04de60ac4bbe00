"""Marked values: find the values that markers govern in a file's text, and rewrite only those.

gitward reads markers the way Flux does (image-setters.md §3-§5) but does not rewrite files the
way Flux does. Flux re-serialises every changed file, which drops CRLF, the BOM, blank lines
and `---`. gitward replaces the characters of the marked scalar and nothing else, so a second
run over its own output changes nothing. Pure: the caller passes the text.

Where a marker may stand in a YAML dialect. This is decided on the real parse (yamlscalars.py),
never by a regex over lines:
- as the line comment of a single-line scalar, plain or quoted, that is a mapping value or a
  block-sequence item: `image: app:1.0 # {...}` or `- app:1.0 # {...}`;
- on the line directly above the line where such a value starts, and then it governs that
  value: `# {...}` over `- app:1.0`, `image: app:1.0` or `- image: app:1.0`. Flux honours this
  form only above a sequence item. gitward honours it above any value, as the markers issue
  asks. When the value also has a marker at the end of its own line, the line marker wins.
Every other placement is ignored with a located warning, where Flux ignores it silently: on a
block scalar (`|`, `>`), a multi-line string, a mapping key, a mapping or list, an alias, a
value tagged other than !!str, an empty value, a document that is one scalar; inside or after
a flow collection; after `key:` whose value is not on that line; a marker line that is not
directly above a value; and JSON followed by more text. A file that does not parse is skipped,
with a warning that names it and the parse error.

A marked file that is plain block YAML (`key: value # marker` lines, no flow collections, anchors,
tags or multi-line scalars) is read by lines instead (yamllines.py), which finds exactly what
the parse finds, ten times faster; anything else, and every warning about a marker's place, is
left to the parse.

A regex dialect (a Dockerfile's FROM line) has no parse. Its marker is the line's own comment
or a comment line directly above, and the dialect's regex finds the `value` group in the text
of the marked line before its comment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from engine.errors import Problem, Severity, SourcePos
from engine.evaluate.yamlscalars import (
    BOM,
    SCALAR_TOKEN,
    Layout,
    LineIndex,
    Node,
    NodeKind,
    Role,
    ScalarStyle,
    Token,
    read_layout,
    render,
)
from engine.evaluate.yamllines import LineComment, NewlineIndex, line_marks
from engine.model import MarkerDialect, MarkerValue
from engine.rules.markers import MarkerPart, MarkerRef, comment_start, dialect_applies, parse_marker_comment
from engine.rules.regex import PatternError, compile_pattern, utf8
from engine.rules.yamldoc import YamlSyntaxError, load_documents

RAW_STYLE = "raw"
"""The style of a value found by a regex dialect: written back exactly as given."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_TAG_PREFIX = "tag:yaml.org,2002:"
_STRING_TAGS = frozenset({"", "!", _TAG_PREFIX + "str"})

_AFTER_TOKEN = {
    "}": "after a flow collection: it governs no single value (write the collection in block style)",
    "]": "after a flow collection: it governs no single value (write the collection in block style)",
    "{": "inside a flow collection: write the collection in block style to mark one of its values",
    "[": "inside a flow collection: write the collection in block style to mark one of its values",
    ",": "inside a flow collection: write the collection in block style to mark one of its values",
    ":": "after a key whose value is not on the same line: write the value before the marker",
    "-": "after a `-` whose item is not on the same line: write the item before the marker",
    "?": "on a mapping key: only values are rewritten",
    "<anchor>": "after an anchor whose value is not on the same line",
    "<tag>": "after a tag whose value is not on the same line",
    "<document start>": "on a document separator: it governs no value",
    "<document end>": "on a document separator: it governs no value",
    "<directive>": "on a directive: it governs no value",
}


@dataclass(frozen=True)
class MarkedValue:
    """A value a marker governs: its 1-based place, its offsets and its decoded text.

    `start`/`end` cover the whole scalar token, quotes included (not an anchor or tag before
    it); `line`/`column` are those of `start`. `style` is a ScalarStyle value, or RAW_STYLE.
    """

    marker: MarkerRef
    line: int
    column: int
    start: int
    end: int
    value: str
    style: str


@dataclass(frozen=True)
class FileScan:
    """Every marked value of one file (in text order), and why any marker was ignored."""

    values: tuple[MarkedValue, ...] = ()
    warnings: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Edit:
    """Write `new` where `value` stands."""

    value: MarkedValue
    new: str


def marker_value(part: MarkerPart, image: str, tag: str, digest: str = "") -> str:
    """What a marker writes, as Flux's setters do (image-setters.md §2).

    `image` is the ImageRepository's image as written. `digest` is given only when the policy
    reflects digests; the whole reference then gains `@digest`, and a `:digest` marker writes ""
    without one.
    """
    if part is MarkerPart.TAG:
        return tag
    if part is MarkerPart.NAME:
        return image
    if part is MarkerPart.DIGEST:
        return digest
    reference = f"{image}:{tag}"
    return f"{reference}@{digest}" if digest else reference


def locate(path: str, text: str, dialect: MarkerDialect) -> FileScan:
    """The values `dialect`'s markers govern in one file's text.

    A file whose name the dialect does not match, or whose text lacks its screen string, is
    not parsed at all.
    """
    if not dialect_applies(dialect, path) or (dialect.screen and dialect.screen not in text):
        return FileScan()
    if dialect.value is MarkerValue.REGEX:
        return _locate_lines(path, text, dialect)
    return _locate_yaml(path, text, dialect)


def render_scalar(old: MarkedValue, new: str) -> str:
    """`new` as it must be written in place of `old`, keeping its quoting style.

    A plain value that YAML would read as anything but a string (`1.10`, `2`, `true`, `~`, `on`,
    `1e3`) or that cannot be plain (`""`, `a: b`) is double-quoted; a single-quoted value that
    needs escapes becomes double-quoted. No tag is ever added.
    """
    if old.style == RAW_STYLE:
        return new
    return render(ScalarStyle(old.style), new)


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """`text` with each edit's value rewritten; edits whose value is already `new` change nothing.

    Raises ValueError for two different edits of one value, or offsets outside the text.
    """
    pending = sorted((e for e in edits if e.new != e.value.value), key=lambda e: e.value.start)
    parts: list[str] = []
    at = 0
    previous: Edit | None = None
    for edit in pending:
        value = edit.value
        if previous is not None and value.start < at:
            if (value.start, value.end, edit.new) == (previous.value.start, previous.value.end, previous.new):
                continue
            raise ValueError(f"two edits overlap at line {value.line}, column {value.column}")
        if not 0 <= value.start <= value.end <= len(text):
            raise ValueError(f"edit at offsets {value.start}-{value.end} lies outside the text")
        parts += [text[at : value.start], render_scalar(value, edit.new)]
        at, previous = value.end, edit
    parts.append(text[at:])
    return "".join(parts)


# -- shared ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    value: MarkedValue
    above: bool


class _Findings:
    """Marked values and warnings of one file, with the line marker winning over the one above."""

    def __init__(self, path: str, lines: LineIndex | NewlineIndex) -> None:
        self.path, self.lines = path, lines
        self.found: list[_Found] = []
        self.warnings: list[Problem] = []

    def pos(self, start: int, end: int) -> SourcePos:
        line, column = self.lines.position(start)
        end_line, end_column = self.lines.position(end)
        return SourcePos(self.path, line, column, end_line, end_column, syntax="marker")

    def warn(self, start: int, end: int, message: str, code: str = "marker-ignored") -> None:
        self.warnings.append(Problem(Severity.WARNING, message, self.pos(start, end), code))

    def marker(self, start: int, parsed: tuple[str, str, MarkerPart], dialect: MarkerDialect) -> MarkerRef:
        line, column = self.lines.position(start)
        return MarkerRef(self.path, line, column, *parsed, dialect.name)

    def add(self, marker: MarkerRef, start: int, end: int, value: str, style: str, above: bool) -> None:
        line, column = self.lines.position(start)
        self.found.append(_Found(MarkedValue(marker, line, column, start, end, value, style), above))

    def scan(self) -> FileScan:
        kept: dict[int, _Found] = {}
        for found in sorted(self.found, key=lambda f: f.above):
            first = kept.setdefault(found.value.start, found)
            if first is not found:
                m = found.value.marker
                self.warnings.append(Problem(
                    Severity.WARNING,
                    f"marker ignored: the value below has its own marker at line {first.value.marker.line}",
                    SourcePos(self.path, m.line, m.column, syntax="marker"),
                    "marker-ignored",
                ))
        values = tuple(f.value for _, f in sorted(kept.items()))
        return FileScan(values, tuple(sorted(self.warnings, key=Problem.sort_key)))


def _text_after_json(comment: str, dialect: MarkerDialect) -> bool:
    """Whether a comment is a marker's JSON object followed by more text (not a marker)."""
    body = comment.lstrip(dialect.comment[:1] or "#").strip()
    if not body.startswith("{"):
        return False
    try:
        data, end = json.JSONDecoder().raw_decode(body)
    except (ValueError, RecursionError):  # as parse_marker_comment: no marker, no crash
        return False
    return isinstance(data, dict) and dialect.json_key in data and bool(body[end:].strip())


_TEXT_AFTER = "not a marker: text follows its JSON object (Flux ignores it too); put the text in another comment"


# -- YAML dialects -----------------------------------------------------------------------------


def _locate_yaml(path: str, text: str, dialect: MarkerDialect) -> FileScan:
    """Read by lines when the file is plain enough for that (yamllines.py), else parsed."""
    marks = line_marks(text, dialect.json_key)
    if marks is not None:
        scan = _locate_read_by_lines(path, text, dialect, marks)
        if scan is not None:
            return scan
    return _locate_parsed(path, text, dialect)


def _locate_read_by_lines(path: str, text: str, dialect: MarkerDialect, marks: list[LineComment]) -> FileScan | None:
    """The scan of a file read by lines; None when a marker's place needs the full parse's rules
    (it governs no single-line value), so that the parse words the warning."""
    out = _Findings(path, NewlineIndex(text))
    for comment in marks:
        marker = _marker(out, text, comment.start, comment.end, dialect)
        if marker is None:
            continue
        target = comment.target
        if target is None:
            return None
        out.add(marker, target.start, target.end, target.value, target.style.value, comment.above)
    return out.scan()


def _locate_parsed(path: str, text: str, dialect: MarkerDialect) -> FileScan:
    try:
        layout = read_layout(text, dialect.json_key)
    except yaml.YAMLError as err:
        return FileScan(warnings=(_unparsable(path, text, err),))
    except UnicodeEncodeError:
        return FileScan(warnings=(_not_unicode(path, text),))
    out = _Findings(path, layout.lines)
    for comment in layout.comments:
        marker = _marker(out, text, comment.start, comment.end, dialect)
        if marker is None:
            continue
        if comment.after is None:
            node, reason = _below(layout, marker.line)
        else:
            node, reason = _after(layout, comment.after)
        reason = reason or _unmarkable(layout, node)
        if reason or node is None or node.token is None or node.style is None:
            out.warn(comment.start, comment.end, f"marker {reason}")
            continue
        out.add(marker, node.token.start, node.token.end, node.value, node.style.value, comment.after is None)
    return out.scan()


def _marker(out: _Findings, text: str, start: int, end: int, dialect: MarkerDialect) -> MarkerRef | None:
    """The marker a comment holds, or None (warned when it is a marker's JSON with text after)."""
    body = text[start:end]
    if dialect.json_key not in body:
        return None
    parsed = parse_marker_comment(body, dialect)
    if parsed is None:
        if _text_after_json(body, dialect):
            out.warn(start, end, _TEXT_AFTER, "marker-text-after")
        return None
    return out.marker(start, parsed, dialect)


def _after(layout: Layout, token: Token) -> tuple[Node | None, str]:
    """The node a line comment follows, or why it follows none that may be rewritten."""
    if token.kind == SCALAR_TOKEN:
        return layout.scalar_of(token), ""
    if token.kind == "<alias>":
        return None, "on an alias: mark the anchored value instead"
    return None, _AFTER_TOKEN.get(token.kind, f"after `{token.kind}`: it governs no value")


def _below(layout: Layout, line: int) -> tuple[Node | None, str]:
    """The value a comment line governs: the one that starts on the next line."""
    below = line + 1
    node = layout.first_on_line(below)
    if node is None:
        return None, "not directly above a value: the next line holds none"
    while node.kind in (NodeKind.MAPPING, NodeKind.SEQUENCE) and not node.flow:
        child = layout.child(node)
        if child is None or layout.lines.line_of(child.start) != below:
            break
        node = child
    if node.role is Role.KEY and node.kind is NodeKind.SCALAR:
        value = layout.value_of(node)
        if value is None:
            return None, "above a key with no value"
        if layout.lines.line_of(value.start) != below:
            return None, "above a key whose value is not on the same line: write the value after the key"
        node = value
    return node, ""


def _unmarkable(layout: Layout, node: Node | None) -> str:
    """Why a node cannot be rewritten, or "" when it can."""
    if node is None:
        return "governs no value"
    if node.kind is NodeKind.ALIAS:
        return f"on an alias (*{node.value}): mark the anchored value instead"
    if node.kind is not NodeKind.SCALAR:
        if node.flow:
            return "on a flow collection: it governs no single value"
        return f"on a {node.kind.value}, not a single value"
    if node.flow:
        return "inside a flow collection: write the collection in block style to mark one of its values"
    if node.role is Role.KEY:
        return "on a mapping key: only values are rewritten"
    if node.role is Role.ROOT:
        return "on a document that is a single value"
    if node.token is None:
        return 'on an empty value: write a placeholder value such as ""'
    if node.style in (ScalarStyle.LITERAL, ScalarStyle.FOLDED):
        return "on a block scalar (| or >): text inside block scalars is never rewritten"
    if layout.is_multiline(node):
        return "on a multi-line string: only single-line values are rewritten"
    if node.tag not in _STRING_TAGS:
        shown = "!!" + node.tag.removeprefix(_TAG_PREFIX) if node.tag.startswith(_TAG_PREFIX) else node.tag
        return f"on a value tagged {shown}: gitward never changes a tag"
    return ""


def _unparsable(path: str, text: str, err: yaml.YAMLError) -> Problem:
    """A warning that names the file and its parse error, worded as `gitward check` words it."""
    lead = "file not rewritten: it is not valid YAML: "
    try:
        load_documents(path, text.removeprefix(BOM))
    except YamlSyntaxError as bad:
        p = bad.problem
        return Problem(Severity.WARNING, lead + p.message, p.pos, "marker-file-invalid", p.hint)
    mark = getattr(err, "problem_mark", None)
    pos = SourcePos(path, mark.line + 1, mark.column + 1, syntax="flux") if mark else SourcePos(path)
    detail = getattr(err, "problem", None) or str(err)
    return Problem(Severity.WARNING, lead + str(detail), pos, "marker-file-invalid")


def _not_unicode(path: str, text: str) -> Problem:
    """A warning for text that holds half of a surrogate pair (bytes that were not UTF-8)."""
    bad = _SURROGATE.search(text)
    line, column = LineIndex(text).position(bad.start()) if bad else (0, 0)
    return Problem(
        Severity.WARNING,
        "file not rewritten: it is not UTF-8 text",
        SourcePos(path, line, column, syntax="flux"),
        "marker-file-invalid",
    )


# -- regex dialects ----------------------------------------------------------------------------


def _locate_lines(path: str, text: str, dialect: MarkerDialect) -> FileScan:
    lines = LineIndex(text)
    where = dialect.origin or SourcePos(path)
    try:
        regex = compile_pattern(dialect.value_pattern)
    except PatternError as err:
        return FileScan(warnings=(_dialect_problem(dialect, str(err), where),))
    group = regex.groupindex.get(b"value")
    if group is None:
        return FileScan(warnings=(_dialect_problem(dialect, "its value regex has no `value` group", where),))
    out = _Findings(path, lines)
    leader = dialect.comment or "#"
    for number in range(1, len(lines) + 1):
        line = lines.line_text(number)
        if dialect.json_key not in line:
            continue
        at = comment_start(line, leader)
        if at is None:
            continue
        start = lines.start(number) + at
        end = lines.content_end(number)
        parsed = parse_marker_comment(line[at:], dialect)
        if parsed is None:
            if _text_after_json(line[at:], dialect):
                out.warn(start, end, _TEXT_AFTER, "marker-text-after")
            continue
        above = not line[:at].strip()
        target = number + 1 if above else number
        if target > len(lines):
            out.warn(start, end, "marker not directly above a value: the file ends")
            continue
        target_text = lines.line_text(target)
        cut = comment_start(target_text, leader)
        segment = utf8(target_text if cut is None else target_text[:cut])
        match = regex.search(segment)
        span = match.span(group) if match is not None else (-1, -1)
        if span[0] < 0 or span[0] == span[1]:
            which = "the line below" if above else "its line"
            out.warn(start, end, f"marker ignored: {which} does not match dialect {dialect.name}'s value regex")
            continue
        base = lines.start(target)
        value_start = base + len(segment[: span[0]].decode("utf-8", "surrogatepass"))
        value_end = base + len(segment[: span[1]].decode("utf-8", "surrogatepass"))
        marker = out.marker(start, parsed, dialect)
        out.add(marker, value_start, value_end, text[value_start:value_end], RAW_STYLE, above)
    return out.scan()


def _dialect_problem(dialect: MarkerDialect, detail: str, where: SourcePos) -> Problem:
    return Problem(
        Severity.WARNING,
        f"marker dialect {dialect.name}: {detail}; its markers are not rewritten",
        where,
        "marker-dialect-invalid",
    )
