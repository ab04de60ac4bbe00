"""YAML scalars where they stand in a file's text, and how to write a new string in a scalar's style.

A marker rewrite must change one scalar and no other byte, so it needs each scalar's exact
offsets, style and role, and the comments around it. PyYAML's events give the structure and
its tokens the offsets; comments are in neither, but between two tokens the scanner only ever
skips white space, line breaks and comments, so every `#` in such a gap starts a comment. A `#`
inside a quoted or block scalar lies inside a token and is never mistaken for one.

libyaml scans when it is installed (PyYAML's pure scanner otherwise): go-yaml, which Flux and
Kubernetes use, is a port of it, and both accept a tab after `key:` where the pure scanner
does not. libyaml's offsets leave out a leading BOM, so the BOM is cut before scanning and
added back to every offset.

Quoting: a new value stays plain only when YAML 1.1 (PyYAML, go-yaml v2) and YAML 1.2's core
schema (go-yaml v3) both read it as a string; otherwise it is double-quoted, as Flux does,
and never given a `!!str` tag.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from dataclasses import dataclass
from enum import StrEnum

import yaml

_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

BOM = "\ufeff"
SCALAR_TOKEN = "<scalar>"
_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
_BREAK_CHARS = "\n\r\x85\u2028\u2029"


class LineIndex:
    """1-based lines and columns of offsets into a text, counting YAML's line breaks.

    A leading BOM is not counted as a column, as editors show it.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0, *(m.end() for m in _BREAK.finditer(text))]
        self.bom = 1 if text.startswith(BOM) else 0

    def __len__(self) -> int:
        return len(self.starts)

    def line_of(self, offset: int) -> int:
        return bisect_right(self.starts, offset)

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) of an offset, both 1-based."""
        line = self.line_of(offset)
        start = self.starts[line - 1] if line > 1 else min(self.bom, offset)
        return line, offset - start + 1

    def start(self, line: int) -> int:
        return self.starts[line - 1]

    def content_end(self, line: int) -> int:
        """Offset where a line's text ends, before its line break."""
        if line >= len(self.starts):
            return len(self.text)
        end = self.starts[line]
        return end - 2 if self.text.startswith("\r\n", end - 2) else end - 1

    def line_text(self, line: int) -> str:
        return self.text[self.start(line) : self.content_end(line)]

    def has_break(self, start: int, end: int) -> bool:
        return any(ch in _BREAK_CHARS for ch in self.text[start:end])


# -- structure ---------------------------------------------------------------------------------


class NodeKind(StrEnum):
    SCALAR = "scalar"
    ALIAS = "alias"
    MAPPING = "mapping"
    SEQUENCE = "list"


class Role(StrEnum):
    """What a node is to its parent."""

    KEY = "key"
    VALUE = "value"
    ITEM = "item"
    ROOT = "root"


class ScalarStyle(StrEnum):
    PLAIN = "plain"
    SINGLE = "single-quoted"
    DOUBLE = "double-quoted"
    LITERAL = "literal"
    FOLDED = "folded"


_STYLES = {
    None: ScalarStyle.PLAIN,
    "": ScalarStyle.PLAIN,
    "'": ScalarStyle.SINGLE,
    '"': ScalarStyle.DOUBLE,
    "|": ScalarStyle.LITERAL,
    ">": ScalarStyle.FOLDED,
}


@dataclass(frozen=True)
class Token:
    """A scanner token: `kind` is PyYAML's token id (`<scalar>`, `:`, `-`, `,`, `}`, `<alias>`...)."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Node:
    """One node of the document tree, with offsets into the whole text.

    `start` includes an anchor or tag; `token` is a scalar's own token (quotes included) and is
    None for an empty value (`key:`). `first` (collections) and `pair` (keys) are indexes into
    `Layout.nodes`, -1 when absent.
    """

    kind: NodeKind
    role: Role
    start: int
    end: int
    flow: bool
    token: Token | None = None
    style: ScalarStyle | None = None
    value: str = ""
    tag: str = ""
    first: int = -1
    pair: int = -1


@dataclass(frozen=True)
class Comment:
    """A comment from its `#` to the end of its line; `after` is the token before it on its line.

    `after` is None for a comment that fills its line. For a comment on a block scalar's
    header line (`key: | # c`), `after` is the block scalar's token, which encloses it.
    """

    start: int
    end: int
    after: Token | None


class Layout:
    """A YAML file's nodes and comments, located; built by `read_layout`.

    Nodes are made when asked for: a marked manifest has hundreds, and a marker needs two or
    three of them.
    """

    def __init__(self, lines: LineIndex, drafts: list[_Draft], comments: list[Comment]) -> None:
        self.lines = lines
        self.comments = tuple(comments)
        self._drafts = drafts
        self._made: dict[int, Node] = {}
        self._by_token_start: dict[int, int] | None = None
        self._by_line: dict[int, int] | None = None

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Every node, in document order."""
        return tuple(self._node(i) for i in range(len(self._drafts)))

    def _node(self, index: int) -> Node:
        made = self._made.get(index)
        if made is None:
            made = self._made[index] = self._drafts[index].node()
        return made

    def scalar_of(self, token: Token) -> Node | None:
        if self._by_token_start is None:
            self._by_token_start = {d.token.start: i for i, d in enumerate(self._drafts) if d.token is not None}
        index = self._by_token_start.get(token.start)
        return None if index is None else self._node(index)

    def first_on_line(self, line: int) -> Node | None:
        """The outermost node that starts on a line."""
        if self._by_line is None:
            self._by_line = {}
            line_of = self.lines.line_of
            for i, draft in enumerate(self._drafts):
                self._by_line.setdefault(line_of(draft.start), i)
        index = self._by_line.get(line)
        return None if index is None else self._node(index)

    def child(self, node: Node) -> Node | None:
        return self._node(node.first) if node.first >= 0 else None

    def value_of(self, key: Node) -> Node | None:
        return self._node(key.pair) if key.pair >= 0 else None

    def is_multiline(self, node: Node) -> bool:
        return node.token is not None and self.lines.has_break(node.token.start, node.token.end)


def read_layout(text: str, containing: str = "") -> Layout:
    """Parse a whole YAML stream; raises yaml.YAMLError when any document does not parse.

    With `containing`, the layout holds only the comments whose text contains it (a marker's
    key): those are found from the parse's scalars alone when that is certain, so the common
    marked file is not scanned a second time for its tokens.
    """
    return _read_layout(text, containing, quick=bool(containing))


def _read_layout(text: str, containing: str, *, quick: bool) -> Layout:
    shift = len(BOM) if text.startswith(BOM) else 0
    body = text[shift:]
    events = list(yaml.parse(body, Loader=_LOADER))
    lines = LineIndex(text)
    if quick and not (shift or body.startswith("%") or "\n%" in body or "\r%" in body):
        try:
            drafts = _nodes(events, None, shift)
            scalars = [d.token for d in drafts if d.token is not None]
            return Layout(lines, drafts, _comments_containing(lines, scalars, containing))
        except _Unsure:
            pass
    tokens = [
        Token(t.id, t.start_mark.index + shift, t.end_mark.index + shift)
        for t in yaml.scan(body, Loader=_LOADER)
    ]
    comments = [c for c in _comments(lines, tokens, shift) if containing in text[c.start : c.end]]
    return Layout(lines, _nodes(events, tokens, shift), comments)


class _Unsure(Exception):
    """The parse alone cannot tell a comment's or a scalar token's place for certain (a tag,
    an anchor on a scalar, a comment on a block scalar's line or after an indicator): the
    caller scans the tokens. A BOM or a directive is not even tried."""


def _comments_containing(lines: LineIndex, scalars: list[Token], needle: str) -> list[Comment]:
    """The comments that contain `needle`, as `_comments` finds them from every token."""
    text = lines.text
    starts = [t.start for t in scalars]
    found: list[Comment] = []
    at = text.find(needle)
    while at >= 0:
        line = lines.line_of(at)
        comment = _line_comment(lines, scalars, starts, line)
        if comment is not None and needle in text[comment.start : comment.end]:
            found.append(comment)
        at = text.find(needle, lines.content_end(line))
    return found


def _line_comment(lines: LineIndex, scalars: list[Token], starts: list[int], line: int) -> Comment | None:
    """The comment on a line: its first `#` outside every scalar (every other token is a
    one-character indicator, an anchor or an alias, none of which holds a `#`)."""
    text = lines.text
    begin, stop = lines.start(line), lines.content_end(line)
    at = text.find("#", begin, stop)
    while at >= 0:
        index = bisect_right(starts, at) - 1
        if index < 0 or scalars[index].end <= at:
            return Comment(at, stop, _token_before(text, scalars, index, begin, at))
        if text[scalars[index].start : scalars[index].start + 1] in ("|", ">"):
            raise _Unsure  # maybe a comment on a block scalar's header line
        at = text.find("#", at + 1, stop)
    return None


def _token_before(text: str, scalars: list[Token], index: int, begin: int, at: int) -> Token | None:
    """The token a comment at `at` follows on its line (None when it fills the line): a scalar
    ending there, or, for anything else before it, _Unsure."""
    previous = scalars[index] if index >= 0 else None
    before = text[begin:at].rstrip(" \t")
    if not before:
        return previous if previous is not None and previous.end >= begin else None
    if previous is not None and previous.end == begin + len(before):
        return previous
    raise _Unsure


@dataclass
class _Frame:
    index: int
    mapping: bool
    flow: bool
    expect_key: bool = True
    key: int = -1


@dataclass(slots=True)
class _Draft:
    """A node while its collection's end and its links are still unknown."""

    kind: NodeKind
    role: Role
    start: int
    end: int
    flow: bool
    token: Token | None = None
    style: ScalarStyle | None = None
    value: str = ""
    tag: str = ""
    first: int = -1
    pair: int = -1

    def node(self) -> Node:
        return Node(
            self.kind, self.role, self.start, self.end, self.flow, self.token, self.style,
            self.value, self.tag, self.first, self.pair,
        )


_SCALAR_EVENT = yaml.ScalarEvent
_ALIAS_EVENT = yaml.AliasEvent
_MAPPING_START = yaml.MappingStartEvent
_SEQUENCE_START = yaml.SequenceStartEvent
_COLLECTION_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _nodes(events: list[yaml.Event], tokens: list[Token] | None, shift: int) -> list[_Draft]:
    """The nodes of the events, linked. Without `tokens` (a scan's), a scalar's token is its
    event's span, which is certain only when no tag or anchor precedes it (else _Unsure)."""
    scalar_tokens = None if tokens is None else {t.end: t for t in tokens if t.kind == SCALAR_TOKEN}
    drafts: list[_Draft] = []
    stack: list[_Frame] = []
    anchors: set[str] = set()
    for event in events:
        cls = type(event)
        if cls is _SCALAR_EVENT:
            if event.anchor is not None:
                if tokens is None:
                    raise _Unsure
                anchors.add(event.anchor)
            elif tokens is None and event.tag is not None:
                raise _Unsure
        elif cls in _COLLECTION_ENDS:
            drafts[stack.pop().index].end = event.end_mark.index + shift
            continue
        elif cls is _MAPPING_START or cls is _SEQUENCE_START:
            if tokens is None and event.tag is not None:
                raise _Unsure
            if event.anchor:
                anchors.add(event.anchor)
        elif cls is _ALIAS_EVENT:
            if event.anchor not in anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {event.anchor!r}", event.start_mark
                )
        elif cls is yaml.DocumentStartEvent:
            anchors = set()
            continue
        else:
            continue
        parent = stack[-1] if stack else None
        index = len(drafts)
        role = Role.ROOT
        if parent is not None:
            if drafts[parent.index].first < 0:
                drafts[parent.index].first = index
            if not parent.mapping:
                role = Role.ITEM
            elif parent.expect_key:
                role, parent.key = Role.KEY, index
                parent.expect_key = False
            else:
                role = Role.VALUE
                drafts[parent.key].pair = index
                parent.expect_key = True
        draft = _draft(event, role, parent is not None and parent.flow, scalar_tokens, shift)
        drafts.append(draft)
        if cls is _MAPPING_START or cls is _SEQUENCE_START:
            stack.append(_Frame(index, cls is _MAPPING_START, draft.flow))
    return drafts


def _draft(event: yaml.NodeEvent, role: Role, in_flow: bool, scalar_tokens: dict[int, Token] | None,
           shift: int) -> _Draft:
    start, end = event.start_mark.index + shift, event.end_mark.index + shift
    cls = type(event)
    if cls is yaml.ScalarEvent:
        token: Token | None = None
        if end > start:
            if scalar_tokens is None:
                token = Token(SCALAR_TOKEN, start, end)
            else:
                token = scalar_tokens.get(end)
                if token is not None and token.start < start:
                    token = None
        style = _STYLES.get(event.style, ScalarStyle.PLAIN)
        return _Draft(NodeKind.SCALAR, role, start, end, in_flow, token, style, event.value, event.tag or "")
    if cls is yaml.AliasEvent:
        return _Draft(NodeKind.ALIAS, role, start, end, in_flow, value=event.anchor or "")
    kind = NodeKind.MAPPING if cls is yaml.MappingStartEvent else NodeKind.SEQUENCE
    flow = in_flow or bool(getattr(event, "flow_style", False))
    return _Draft(kind, role, start, end, flow, tag=getattr(event, "tag", None) or "")


def _comments(lines: LineIndex, tokens: list[Token], shift: int) -> list[Comment]:
    """Every comment: the `#`s in the gaps between tokens, and on block scalar header lines."""
    text = lines.text
    found: list[Comment] = []
    reach, last = shift, None
    for token in tokens:
        if token.start > reach:
            found.extend(_gap_comments(lines, reach, token.start, last))
        if token.end > token.start and token.end >= reach:
            last = token
        reach = max(reach, token.end)
        if token.kind == SCALAR_TOKEN and text[token.start : token.start + 1] in ("|", ">"):
            header_end = lines.content_end(lines.line_of(token.start))
            hash_at = re.search(r"[ \t]#", text[token.start : header_end])
            if hash_at is not None:
                found.append(Comment(token.start + hash_at.start() + 1, header_end, token))
    if reach < len(text):
        found.extend(_gap_comments(lines, reach, len(text), last))
    return found


def _gap_comments(lines: LineIndex, start: int, end: int, last: Token | None) -> list[Comment]:
    text = lines.text
    found: list[Comment] = []
    at = text.find("#", start, end)
    while at >= 0:
        stop = min(lines.content_end(lines.line_of(at)), end)
        after = last if last is not None and not lines.has_break(last.end, at) else None
        found.append(Comment(at, stop, after))
        at = text.find("#", stop, end)
    return found


# -- quoting -----------------------------------------------------------------------------------

_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()
_YAML11_SHORT_BOOLS = frozenset({"y", "Y", "n", "N"})  # YAML 1.1 booleans PyYAML does not resolve


@functools.cache
def _core_schema() -> re.Pattern[str]:
    """The plain scalars YAML 1.2's core schema resolves to something other than a string.

    This and `_printable` are compiled on first use, not at import: their character ranges take
    milliseconds to compile, and `gitward check` never renders a scalar."""
    return re.compile(
        r"~|null|Null|NULL|true|True|TRUE|false|False|FALSE"
        r"|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
        r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    )


@functools.cache
def _printable() -> re.Pattern[str]:
    """YAML's printable characters."""
    return re.compile("[\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]*")


_PLAIN_NEVER_FIRST = frozenset(",[]{}#&*!|>'\"%@`")
_PLAIN_FIRST_IF_FOLLOWED = frozenset("-?:")
_ESCAPES = {
    "\\": "\\\\", '"': '\\"', "\0": "\\0", "\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n",
    "\v": "\\v", "\f": "\\f", "\r": "\\r", "\x1b": "\\e", "\x85": "\\N", "\u2028": "\\L",
    "\u2029": "\\P",
}


def reads_as_string(text: str) -> bool:
    """Whether a plain scalar with this text is a string to YAML 1.1 and 1.2 readers alike."""
    if _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) != _STR_TAG:
        return False
    return text not in _YAML11_SHORT_BOOLS and not _core_schema().fullmatch(text)


def can_be_plain(value: str) -> bool:
    """Whether `value` can be written as a plain scalar in block context and read back as is."""
    if not value or not _printable().fullmatch(value) or value != value.strip(" "):
        return False
    first = value[0]
    if first in _PLAIN_NEVER_FIRST:
        return False
    if first in _PLAIN_FIRST_IF_FOLLOWED and (len(value) == 1 or value[1] == " "):
        return False
    if ": " in value or " #" in value or value.endswith(":") or value.startswith(("---", "...")):
        return False
    return reads_as_string(value)


def single_quoted(value: str) -> str | None:
    """`'it''s'`, or None when the value needs escapes (a line break, a control character)."""
    if not _printable().fullmatch(value):
        return None
    return "'" + value.replace("'", "''") + "'"


def double_quoted(value: str) -> str:
    """A double-quoted scalar that reads back as `value` exactly."""
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif _printable().fullmatch(ch):
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def render(style: ScalarStyle, value: str) -> str:
    """`value` written in `style`, or double-quoted when that style cannot carry it.

    Only flow scalars are rendered; a block scalar (| or >) is never rewritten.
    """
    if style is ScalarStyle.PLAIN:
        return value if can_be_plain(value) else double_quoted(value)
    if style is ScalarStyle.SINGLE:
        return single_quoted(value) or double_quoted(value)
    if style is ScalarStyle.DOUBLE:
        return double_quoted(value)
    raise ValueError(f"a {style.value} block scalar is never rewritten")
