"""The tokens of a Go text/template, as Go's text/template/parse lexer cuts them.

Text runs outside `{{ }}`; inside an action: spaces, fields (`.Name`), variables (`$x`),
identifiers and keywords, literals, `|`, `(`, `)`, `=`, `:=` and single characters such as
`,`. Trim markers (`{{- ` and ` -}}`) remove the white space (space, tab, CR, LF) next to an
action here, so the parser never sees it; comments (`{{/* */}}`) become COMMENT tokens.
A lexing error stops the stream with one ERROR token carrying Go's wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from engine.rules.goquote import go_quote

LEFT, RIGHT = "{{", "}}"
LEFT_COMMENT, RIGHT_COMMENT = "/*", "*/"
SPACE_CHARS = " \t\r\n"


class Tok(StrEnum):
    ERROR = "error"
    EOF = "EOF"
    TEXT = "text"
    COMMENT = "comment"
    LEFT_DELIM = "left delim"
    RIGHT_DELIM = "right delim"
    SPACE = "space"
    ASSIGN = "="
    DECLARE = ":="
    PIPE = "|"
    LEFT_PAREN = "("
    RIGHT_PAREN = ")"
    CHAR = "char"
    STRING = "string"
    RAW_STRING = "raw string"
    CHAR_CONSTANT = "char constant"
    NUMBER = "number"
    BOOL = "bool"
    FIELD = "field"
    VARIABLE = "variable"
    IDENTIFIER = "identifier"
    DOT = "."
    NIL = "nil"
    # keywords
    BLOCK = "block"
    BREAK = "break"
    CONTINUE = "continue"
    DEFINE = "define"
    ELSE = "else"
    END = "end"
    IF = "if"
    RANGE = "range"
    TEMPLATE = "template"
    WITH = "with"


KEYWORDS = {t.value: t for t in (Tok.BLOCK, Tok.BREAK, Tok.CONTINUE, Tok.DEFINE, Tok.ELSE, Tok.END,
                                  Tok.IF, Tok.RANGE, Tok.TEMPLATE, Tok.WITH, Tok.NIL)}
_KEYWORD_KINDS = frozenset(KEYWORDS.values()) | {Tok.DOT}

_NUMBER = re.compile(
    r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])*\.?(?:_?[0-9a-fA-F])*(?:[pP][+-]?[0-9_]+)?"
    r"|0[oO](?:_?[0-7])*|0[bB](?:_?[01])*"
    r"|[0-9_]*\.?[0-9_]*(?:[eE][+-]?[0-9_]+)?)i?")


class _StateFn(Protocol):
    """A lexer state: it consumes some input and returns the next state (None at the end)."""

    def __call__(self) -> _StateFn | None: ...


@dataclass(frozen=True)
class Token:
    kind: Tok
    text: str
    pos: int  # offset in the template text
    line: int

    def __str__(self) -> str:
        """How Go's parser names a token in "unexpected X" messages."""
        if self.kind is Tok.EOF:
            return "EOF"
        if self.kind is Tok.ERROR:
            return self.text
        if self.kind in _KEYWORD_KINDS:
            return f"<{self.text}>"
        if len(self.text) > 10:
            return go_quote(self.text[:10]) + "..."
        return go_quote(self.text)


def is_alphanumeric(char: str) -> bool:
    return char == "_" or char.isalpha() or char.isdigit()


class Lexer:
    """Cuts a template into tokens; `tokens()` ends with EOF or one ERROR."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.paren_depth = 0
        self.out: list[Token] = []

    def tokens(self) -> list[Token]:
        state: _StateFn | None = self._text
        while state is not None:
            state = state()
        return self.out

    # -- helpers -----------------------------------------------------------------------------

    def _emit(self, kind: Tok) -> None:
        self.out.append(Token(kind, self.text[self.start:self.pos], self.start, self.start_line))
        self._ignore()

    def _ignore(self) -> None:
        self.line += self.text.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def _error(self, message: str) -> None:
        self.out.append(Token(Tok.ERROR, message, self.start, self.start_line))

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _at_right_delim(self) -> tuple[bool, bool]:
        rest = self.text[self.pos:]
        if len(rest) >= 2 and rest[0] in SPACE_CHARS and rest[1] == "-" and rest.startswith(RIGHT, 2):
            return True, True
        return rest.startswith(RIGHT), False

    def _at_terminator(self) -> bool:
        char = self._peek()
        if char == "" or char in SPACE_CHARS or char in ".,|:()":
            return True
        return self.text.startswith(RIGHT, self.pos)

    # -- states --------------------------------------------------------------------------------

    def _text(self) -> _StateFn | None:
        at = self.text.find(LEFT, self.pos)
        if at < 0:
            self.pos = len(self.text)
            if self.pos > self.start:
                self._emit(Tok.TEXT)
            self._emit(Tok.EOF)
            return None
        after = at + len(LEFT)
        end = at
        if _left_trim(self.text, after):
            end = len(self.text[self.start:at].rstrip(SPACE_CHARS)) + self.start
        self.pos = end
        if self.pos > self.start:
            self._emit(Tok.TEXT)
        self.pos = at
        self._ignore()
        return self._left_delim

    def _left_delim(self) -> _StateFn | None:
        self.pos += len(LEFT)
        trim = _left_trim(self.text, self.pos)
        after = 2 if trim else 0
        if self.text.startswith(LEFT_COMMENT, self.pos + after):
            self.pos += after
            self._ignore()
            return self._comment
        self._emit(Tok.LEFT_DELIM)
        self.pos += after
        self._ignore()
        self.paren_depth = 0
        return self._inside

    def _comment(self) -> _StateFn | None:
        self.pos += len(LEFT_COMMENT)
        end = self.text.find(RIGHT_COMMENT, self.pos)
        if end < 0:
            self._error("unclosed comment")
            return None
        self.pos = end + len(RIGHT_COMMENT)
        delim, trim = self._at_right_delim()
        if not delim:
            self._error("comment ends before closing delimiter")
            return None
        self._emit(Tok.COMMENT)
        if trim:
            self.pos += 2
        self.pos += len(RIGHT)
        if trim:
            self.pos = _skip_space(self.text, self.pos)
        self._ignore()
        return self._text

    def _right_delim(self) -> _StateFn | None:
        _, trim = self._at_right_delim()
        if trim:
            self.pos += 2
            self._ignore()
        self.pos += len(RIGHT)
        self._emit(Tok.RIGHT_DELIM)
        if trim:
            self.pos = _skip_space(self.text, self.pos)
            self._ignore()
        return self._text

    def _inside(self) -> _StateFn | None:
        delim, _ = self._at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self._right_delim
            self._error("unclosed left paren")
            return None
        char = self._peek()
        if char == "":
            self._error("unclosed action")
            return None
        if char in SPACE_CHARS:
            return self._space
        self.pos += 1
        if char == "=":
            self._emit(Tok.ASSIGN)
        elif char == ":":
            if self._peek() != "=":
                self._error("expected :=")
                return None
            self.pos += 1
            self._emit(Tok.DECLARE)
        elif char == "|":
            self._emit(Tok.PIPE)
        elif char == '"':
            return self._quote
        elif char == "`":
            return self._raw_quote
        elif char == "$":
            return self._variable
        elif char == "'":
            return self._char
        elif char == "." and not ("0" <= self._peek() <= "9"):
            return self._field
        elif char in "+-." or "0" <= char <= "9":
            self.pos -= 1
            return self._number
        elif is_alphanumeric(char):
            self.pos -= 1
            return self._identifier
        elif char == "(":
            self.paren_depth += 1
            self._emit(Tok.LEFT_PAREN)
        elif char == ")":
            self.paren_depth -= 1
            if self.paren_depth < 0:
                self._error("unexpected right paren")
                return None
            self._emit(Tok.RIGHT_PAREN)
        elif char.isascii() and char.isprintable():
            self._emit(Tok.CHAR)
        else:
            self._error(f"unrecognized character in action: {_unicode_name(char)}")
            return None
        return self._inside

    def _space(self) -> _StateFn | None:
        count = 0
        while self._peek() and self._peek() in SPACE_CHARS:
            self.pos += 1
            count += 1
        if self.text.startswith("-" + RIGHT, self.pos):
            self.pos -= 1  # the last space belongs to " -}}"
            if count == 1:
                return self._inside
        self._emit(Tok.SPACE)
        return self._inside

    def _identifier(self) -> _StateFn | None:
        while self._peek() and is_alphanumeric(self._peek()):
            self.pos += 1
        if not self._at_terminator():
            self._error(f"bad character {_unicode_name(self._peek())}")
            return None
        word = self.text[self.start:self.pos]
        if word in KEYWORDS:
            self._emit(KEYWORDS[word])
        elif word in ("true", "false"):
            self._emit(Tok.BOOL)
        else:
            self._emit(Tok.IDENTIFIER)
        return self._inside

    def _field(self) -> _StateFn | None:
        return self._field_or_variable(Tok.FIELD)

    def _variable(self) -> _StateFn | None:
        return self._field_or_variable(Tok.VARIABLE)

    def _field_or_variable(self, kind: Tok) -> _StateFn | None:
        if self._at_terminator():
            self._emit(Tok.VARIABLE if kind is Tok.VARIABLE else Tok.DOT)
            return self._inside
        while self._peek() and is_alphanumeric(self._peek()):
            self.pos += 1
        if not self._at_terminator():
            self._error(f"bad character {_unicode_name(self._peek())}")
            return None
        self._emit(kind)
        return self._inside

    def _char(self) -> _StateFn | None:
        return self._quoted("'", Tok.CHAR_CONSTANT, "unterminated character constant")

    def _number(self) -> _StateFn | None:
        match = _NUMBER.match(self.text, self.pos)
        end = match.end() if match else self.pos
        if end == self.pos or (end < len(self.text) and is_alphanumeric(self.text[end])):
            bad_end = end + 1 if end < len(self.text) else end
            self.pos = max(bad_end, self.pos + 1)
            self._error(f"bad number syntax: {go_quote(self.text[self.start:self.pos])}")
            return None
        self.pos = end
        self._emit(Tok.NUMBER)
        return self._inside

    def _quote(self) -> _StateFn | None:
        return self._quoted('"', Tok.STRING, "unterminated quoted string")

    def _quoted(self, closing: str, kind: Tok, unterminated: str) -> _StateFn | None:
        """A literal up to `closing`, a backslash escaping the next character; one line only."""
        while True:
            char = self._peek()
            self.pos += 1
            if char == "\\":
                if self._peek() not in ("", "\n"):
                    self.pos += 1
                    continue
                char = self._peek()
            if char in ("", "\n"):
                self._error(unterminated)
                return None
            if char == closing:
                break
        self._emit(kind)
        return self._inside

    def _raw_quote(self) -> _StateFn | None:
        end = self.text.find("`", self.pos)
        if end < 0:
            self._error("unterminated raw quoted string")
            return None
        self.pos = end + 1
        self._emit(Tok.RAW_STRING)
        return self._inside


def _left_trim(text: str, at: int) -> bool:
    return len(text) >= at + 2 and text[at] == "-" and text[at + 1] in SPACE_CHARS


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in SPACE_CHARS:
        at += 1
    return at


def _unicode_name(char: str) -> str:
    """Go's `%#U`: U+0041 'A'."""
    if not char:
        return "U+FFFFFFFF"
    code = ord(char)
    return f"U+{code:04X} '{char}'" if char.isprintable() else f"U+{code:04X}"
