"""The rules-file syntax: the only module that imports lark.

grammar.lark knows statements, fields, values and blocks, nothing about keywords. This module
parses a file with it into a generic tree (`Statement`, `Block`, `Field`, `Value`), turns Lark's
errors into located messages about the user's text, and decodes string literals. What the words
mean is the schema pass's business (parse.py), which never sees a Lark object.
"""

from __future__ import annotations

import functools
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from engine.errors import SourcePos


def read_statements(path: str, text: str) -> list[Statement]:
    """The statements of a rules file; raises `Invalid` at the first syntax error."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        raise _syntax_problem(path, text, err) from None
    return [_statement(path, node) for node in tree.children if isinstance(node, lark.Tree)]


def is_word(text: str) -> bool:
    """Whether `text` may be written unquoted, as a bare word."""
    return _terminal("WORD").fullmatch(text) is not None


def decode_literal(text: str) -> str | None:
    """The string a literal denotes, or None unless `text` is exactly one valid string literal.

    The printer uses it to check that the form it chose reads back to the same string.
    """
    for kind in ("STRING", "RAW_STRING", "LONG_STRING"):
        if _terminal(kind).fullmatch(text):
            try:
                return _decode(kind, text)
            except ValueError:
                return None
    return None


class Invalid(Exception):
    """One located problem: a syntax error, or a bad header or field (raised there, reported by the reader)."""

    def __init__(self, message: str, pos: SourcePos, hint: str = "", code: str = "dsl-value"):
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.hint = hint
        self.code = code


# --- The generic tree -----------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """A bare word or the contents of a string, with where it was written."""

    text: str
    quoted: bool
    pos: SourcePos

    def shown(self) -> str:
        text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        text = text.replace("\n", "\\n")
        return f'"{text}"' if self.quoted else f"'{text}'"


@dataclass(frozen=True)
class Field:
    values: tuple[Value, ...]  # values[0] is the keyword
    block: Block | None


@dataclass(frozen=True)
class Block:
    fields: tuple[Field, ...]
    pos: SourcePos  # the '{'


@dataclass(frozen=True)
class Statement:
    """`KIND-WORDS NAME { ... }` as written; its undecodable literals are for the reader to report."""

    header: tuple[Value, ...]
    block: Block
    bad_literals: tuple[Invalid, ...]  # in written order; each kept in the tree as written


def _statement(path: str, tree: lark.Tree[lark.Token]) -> Statement:
    bad: list[Invalid] = []
    header = tuple(_value(path, t, bad) for t in tree.children if isinstance(t, lark.Token))
    body = tree.children[-1]
    assert isinstance(body, lark.Tree)
    return Statement(header, _block(path, body, bad), tuple(bad))


def _value(path: str, token: lark.Token, bad: list[Invalid]) -> Value:
    pos = _token_pos(path, token)
    if token.type == "WORD":
        return Value(str(token), False, pos)
    try:
        return Value(_decode(token.type, str(token)), True, pos)
    except ValueError as err:
        bad.append(Invalid(str(err), pos, code="dsl-syntax"))
        return Value(str(token), True, pos)


def _block(path: str, tree: lark.Tree[lark.Token], bad: list[Invalid], depth: int = 1) -> Block:
    """Fields two levels deep are enough for every statement; deeper blocks stay empty
    (they are rejected as "takes no block"), which also bounds the recursion."""
    opening = tree.children[0]
    assert isinstance(opening, lark.Token)
    fields: list[Field] = []
    for child in tree.children[1:-1] if depth <= 2 else ():
        assert isinstance(child, lark.Tree)
        values = tuple(_value(path, t, bad) for t in child.children if isinstance(t, lark.Token))
        nested = [_block(path, t, bad, depth + 1) for t in child.children if isinstance(t, lark.Tree)]
        fields.append(Field(values, nested[0] if nested else None))
    return Block(tuple(fields), _token_pos(path, opening))


# --- Lark -----------------------------------------------------------------------------------


@functools.cache
def _parser() -> lark.Lark:
    """The LALR parser, its tables loaded from the user's cache when they were built before.

    Building them takes longer than parsing every rules file of a repository, and every
    command that reads rules does it. Lark keys the cache by the grammar, the options, Lark's
    and Python's versions (a stale or unreadable file is rebuilt); without a cache directory
    the tables are built each time."""
    grammar = Path(__file__).with_name("grammar.lark").read_text(encoding="utf-8")
    cache = _cache_file()
    return lark.Lark(grammar, parser="lalr", lexer="basic", propagate_positions=True,
                     cache=str(cache) if cache is not None else False)


def _cache_file() -> Path | None:
    """Where the parser's tables are kept: $XDG_CACHE_HOME/gitward, else ~/.cache/gitward.

    The cache is a pickle, so it is used only from a directory this user owns and no one else
    may write to (as a `.pyc` beside code only its owner can change); else the tables are built."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = Path(base) / "gitward"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = directory.stat()
    except OSError:
        return None
    if mode.st_uid != os.getuid() or mode.st_mode & 0o022:
        return None
    return directory / "rules-grammar.lark-cache"


@functools.cache
def _terminal(name: str) -> re.Pattern[str]:
    return re.compile(_parser().get_terminal(name).pattern.to_regexp())


def _syntax_problem(path: str, text: str, err: UnexpectedInput) -> Invalid:
    """Turn a Lark error into a message about the user's text, not about the parser."""
    if isinstance(err, UnexpectedCharacters):
        return _bad_character(path, text, err.pos_in_stream or 0, err.line or 0, err.column or 0)
    if isinstance(err, UnexpectedToken) and err.token.type != "$END":
        return _bad_token(path, text, err.token)
    return _end_of_file(path, text)


def _bad_character(path: str, text: str, at: int, line: int, column: int) -> Invalid:
    end = text.find("\n", at)
    end = len(text) if end < 0 else end
    pos = SourcePos(path, line, column, line, column + max(end - at, 1), syntax="dsl")
    char = text[at]
    if text.startswith('"""', at):
        return Invalid('unterminated string: no closing """', pos, code="dsl-syntax")
    if char == '"':
        hint = 'a "..." string ends on its line; write """...""" for text over several lines'
        return Invalid("unterminated string", pos, hint, code="dsl-syntax")
    if char == "'":
        hint = "a '...' string ends on its line and cannot contain '; use \"...\" instead"
        return Invalid("unterminated string", pos, hint, code="dsl-syntax")
    pos = SourcePos(path, line, column, line, column + 1, syntax="dsl")
    hint = 'quote values that are not plain words, e.g. ">=1.0.0"'
    return Invalid(f"unexpected character {char!r}", pos, hint, code="dsl-syntax")


@dataclass
class _Context:
    """What was open where a syntax error happened, found by lexing the text up to it."""

    open: list[tuple[str, int, int]] = field(default_factory=list)  # (header, line, column)
    words: list[lark.Token] = field(default_factory=list)  # values since the last separator
    previous: str = ""  # type of the token before the error

    @property
    def line_text(self) -> str:
        return " ".join(_written(t) for t in self.words)


def _scan(text: str, until: int) -> _Context:
    ctx = _Context()
    try:
        for token in _parser().lex(text):
            if token.start_pos is not None and token.start_pos >= until:
                break
            if token.type == "LBRACE":
                first = ctx.words[0] if ctx.words else token
                ctx.open.append((ctx.line_text or "{", first.line or 0, first.column or 0))
                ctx.words = []
            elif token.type == "RBRACE":
                if ctx.open:
                    ctx.open.pop()
                ctx.words = []
            elif token.type == "_SEP":
                ctx.words = []
            else:
                ctx.words.append(token)
            ctx.previous = token.type
    except UnexpectedInput:
        pass
    return ctx


def _end_of_file(path: str, text: str) -> Invalid:
    body = text.rstrip()
    line = body.count("\n") + 1
    column = len(body) - (body.rfind("\n") + 1) + 1
    pos = SourcePos(path, line, column, line, column + 1, syntax="dsl")
    ctx = _scan(text, len(text))
    if ctx.open:
        header, at_line, at_column = ctx.open[-1]
        message = f"unexpected end of file: expected '}}' to close '{header}' opened at {at_line}:{at_column}"
        return Invalid(message, pos, code="dsl-syntax")
    if ctx.words:
        return Invalid(f"unexpected end of file: expected '{{' after '{ctx.line_text}'", pos, code="dsl-syntax")
    return Invalid("unexpected end of file", pos, code="dsl-syntax")


def _bad_token(path: str, text: str, token: lark.Token) -> Invalid:
    ctx = _scan(text, token.start_pos or 0)
    pos = _token_pos(path, token)
    shown = _shown_token(token)
    if token.type == "_SEP" and ctx.words:
        hint = "a block opens on the line of its statement: kustomization NAME {"
        return Invalid(f"expected '{{' at the end of '{ctx.line_text}'", pos, hint, code="dsl-syntax")
    if token.type == "LBRACE" and not ctx.words:
        if ctx.open:
            hint = "a nested block opens on the line of its field: image \"nginx\" {"
            return Invalid("unexpected '{'", pos, hint, code="dsl-syntax")
        hint = "a statement starts with its kind and name: kustomization NAME {"
        return Invalid("unexpected '{'", pos, hint, code="dsl-syntax")
    if token.type == "RBRACE" and not ctx.open:
        return Invalid("unexpected '}': no block is open", pos, code="dsl-syntax")
    if ctx.previous == "RBRACE":
        hint = "start a new line, or separate with ';'"
        return Invalid(f"unexpected {shown} after '}}'", pos, hint, code="dsl-syntax")
    return Invalid(f"unexpected {shown}", pos, code="dsl-syntax")


def _written(token: lark.Token) -> str:
    """A token as written, on one line and cut short."""
    text = str(token).replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."


def _shown_token(token: lark.Token) -> str:
    if token.type == "_SEP":
        return "';'" if token.startswith(";") else "end of line"
    return f"'{_written(token)}'" if token.type in ("WORD", "LBRACE", "RBRACE") else _written(token)


def _token_pos(path: str, token: lark.Token) -> SourcePos:
    return SourcePos(
        path,
        token.line or 0,
        token.column or 0,
        token.end_line or 0,
        token.end_column or 0,
        syntax="dsl",
    )

# --- String literals ------------------------------------------------------------------------

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")


def _decode(kind: str, raw: str) -> str:
    """The string a literal denotes; a NUL is refused (no URL, path, regex or name holds one,
    and git, the registry and C libraries would cut the string there)."""
    if kind == "RAW_STRING":
        text = raw[1:-1]
    elif kind == "LONG_STRING":
        text = _long_string(raw[3:-3])
    else:
        text = _unescape(raw[1:-1])
    if "\0" in text:
        raise ValueError("a string may not hold a NUL character (\\u0000)")
    return text


def _unescape(body: str) -> str:
    """JSON-style escapes; any other backslash is kept, so regexes read as written."""
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        follower = body[i + 1] if i + 1 < len(body) else ""
        if char == "\\" and follower in _ESCAPES:
            out.append(_ESCAPES[follower])
            i += 2
        elif char == "\\" and follower == "u" and _HEX4.fullmatch(body, i + 2, i + 6):
            code = int(body[i + 2 : i + 6], 16)
            i += 6
            if 0xD800 <= code < 0xDC00 and body.startswith("\\u", i) and _HEX4.fullmatch(body, i + 2, i + 6):
                low = int(body[i + 2 : i + 6], 16)
                if 0xDC00 <= low < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
            if 0xD800 <= code < 0xE000:
                raise ValueError(f"invalid escape \\u{code:04x}: half of a surrogate pair")
            out.append(chr(code))
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _long_string(body: str) -> str:
    """Drop a newline right after the opening quotes, then the common indentation."""
    return textwrap.dedent(body.removeprefix("\n")).replace('\\"""', '"""')

