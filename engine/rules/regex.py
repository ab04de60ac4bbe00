"""Regular expressions as Flux reads them: Go RE2 syntax, through google-re2.

The one place that compiles user patterns (exclusion lists, tag filters, marker dialects), so
`gitward check` and the evaluator accept and refuse exactly the same patterns. RE2's own error
logging is off, so a bad pattern yields one clean message and no noise on stderr. Go rejects
`\\C` (RE2's any-byte escape) and group names beyond `[A-Za-z0-9_]`, which google-re2 accepts;
both are refused here. Matching runs on UTF-8 bytes, as Go's does.

For speed, `line_search` gives a pattern of a small subset (literals, simple classes, groups,
`|`, anchors, repeats of one atom) a stdlib program that finds RE2's match of each tag in one
pass over many tags; any other pattern has none, and RE2 matches it tag by tag.

Two places where RE2 and Go differ are made Go's:

- Memory. RE2 refuses a program past its memory budget (8 MiB by default: `\\pL{500}` is too
  large), Go past 128 MiB of 40-byte instructions. The budget here lets RE2 build as many
  instructions as Go's limit counts (RE2 spends 2/3 of it on the program, a quarter of that on
  16-byte instructions). RE2 compiles a Unicode class to hundreds of UTF-8 byte ranges where Go
  has one instruction, so a pattern of many large classes can still be too large for RE2 alone;
  the message says so.
- `\\B`. Go tests word boundaries (ASCII, as RE2 does) only between characters; RE2 also tests
  them between the bytes of one UTF-8 character, where `\\B` always holds. A pattern with `\\B`
  is therefore matched on non-ASCII text by trying each character boundary in turn, leftmost
  first, which is what Go's search does. (`\\b` never holds inside a character.)
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import re2

_GROUP_NAME = re.compile(rb"[A-Za-z0-9_]+")  # Go's rule; RE2 also admits Unicode letters
_PLAIN = frozenset(string.ascii_letters + string.digits + "-_/:@=,")  # never special in RE2
_ESCAPABLE = frozenset(string.punctuation)  # `\` + ASCII punctuation: that character (RE2, Go)
_ANY_PREFIX, _END = "^.*", "$"

GO_MAX_INSTRUCTIONS = (128 << 20) // 40
"""Go's regexp/syntax refuses a program past 128 MiB of 40-byte instructions."""
RE2_MAX_MEM = GO_MAX_INSTRUCTIONS * 16 * 4 * 3 // 2
"""RE2's budget that holds as many (16-byte) instructions: the program gets 2/3, a quarter of it
for instructions (RE2's Compiler::Setup)."""
_TOO_LARGE = "pattern too large - compile failed"


class PatternError(ValueError):
    """A pattern RE2 (or Go, for `\\C`) refuses, in Flux's wording."""

    def __init__(self, pattern: str, cause: str) -> None:
        self.pattern = pattern
        self.cause = cause
        super().__init__(f"invalid regular expression pattern '{pattern}': {cause}")


class Match(Protocol):
    def span(self, group: int) -> tuple[int, int]: ...


class Regex(Protocol):
    @property
    def groups(self) -> int: ...

    @property
    def groupindex(self) -> dict[bytes, int]: ...

    def search(self, text: bytes) -> Match | None: ...


class _Anchored(Protocol):
    groups: int
    groupindex: dict[bytes, int]

    def search(self, text: bytes) -> Match | None: ...

    def match(self, text: bytes, pos: int) -> Match | None: ...


@dataclass(frozen=True)
class CharacterStarts:
    """A pattern with `\\B`: non-ASCII text is searched from character boundaries only (Go's)."""

    program: _Anchored

    @property
    def groups(self) -> int:
        return self.program.groups

    @property
    def groupindex(self) -> dict[bytes, int]:
        return self.program.groupindex

    def search(self, text: bytes) -> Match | None:
        if text.isascii():
            return self.program.search(text)
        for start in rune_starts(text):
            match = self.program.match(text, start)
            if match is not None:
                return match
        return None


def rune_starts(data: bytes) -> Iterator[int]:
    """Where Go's UTF-8 decoding starts a character, end of text included.

    A byte that starts no valid sequence (a stray continuation byte, an encoded surrogate, an
    overlong form) is a character of its own, as Go decodes it.
    """
    i, n = 0, len(data)
    while i < n:
        yield i
        lead = data[i]
        width = 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        if width > 1:
            try:
                data[i : i + width].decode("utf-8")
            except UnicodeDecodeError:
                width = 1
        i += width
    yield n


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def text_of(data: bytes) -> str:
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def compile_pattern(pattern: str) -> Regex:
    """The RE2 program for `pattern`, or PatternError with RE2's reason."""
    escapes = _escapes(pattern)
    if "C" in escapes:
        raise PatternError(pattern, "invalid escape sequence: `\\C`")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = RE2_MAX_MEM
    try:
        program: _Anchored = re2.compile(utf8(pattern), options)
    except re2.error as err:
        detail = err.args[0] if err.args else b""
        cause = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        if cause == _TOO_LARGE:
            cause = (f"{cause}: RE2 needs more than {GO_MAX_INSTRUCTIONS} instructions for it "
                     "(Go's limit; RE2 compiles Unicode classes to many more than Go)")
        raise PatternError(pattern, cause or "rejected by RE2") from None
    for name in program.groupindex:
        if not _GROUP_NAME.fullmatch(name):
            raise PatternError(pattern, f"invalid named capture: `{text_of(name)}`")
    return CharacterStarts(program) if "B" in escapes else program


def suffix_literal(pattern: str) -> str | None:
    """L when `pattern` is exactly `^.*L$`, L plain ASCII text or escaped punctuation, else None.

    Such a pattern, Flux's default exclusion `^.*\\.sig$` among them, matches an ASCII tag
    exactly when the tag ends with L and holds no newline: RE2's `.` matches every ASCII
    character but `\\n` (no `s` flag), `$` is the end of the text (no `m` flag; unlike
    Python's `$`, it never skips a final newline), and L itself holds no newline. Callers use
    it to skip a regex call per tag; any other spelling (flags, classes, `\\Q`) returns None.
    """
    if not (pattern.startswith(_ANY_PREFIX) and pattern.endswith(_END)):
        return None
    body = pattern[len(_ANY_PREFIX) : len(pattern) - len(_END)]
    literal: list[str] = []
    i = 0
    while i < len(body):
        if body[i] in _PLAIN:
            literal.append(body[i])
            i += 1
        elif body[i] == "\\" and i + 1 < len(body) and body[i + 1] in _ESCAPABLE:
            literal.append(body[i + 1])
            i += 2
        else:
            return None
    return "".join(literal)


def _escapes(pattern: str) -> set[str]:
    """The letters escaped with `\\` outside `\\Q...\\E` quotes (classes included)."""
    found: set[str] = set()
    i = 0
    while i < len(pattern) - 1:
        if pattern[i] != "\\":
            i += 1
        elif pattern[i + 1] == "Q":
            end = pattern.find("\\E", i + 2)
            i = len(pattern) if end < 0 else end + 2
        else:
            found.add(pattern[i + 1])
            i += 2
    return found


def line_text(values: Iterable[str]) -> str:
    """The values each after a newline, and a newline at the end: the text `line_search`
    programs and other passes over many tags read (a pattern that starts with a newline lets
    the engine skip from line to line)."""
    return "\n" + "\n".join(values) + "\n"


def plain_lines(text: str, count: int) -> bool:
    """Whether `text`, a `line_text` of `count` values, is ASCII and has no value that is empty
    or holds a newline: the text a pass over lines reads value by value."""
    return text.isascii() and text.count("\n") == count + 1 and "\n\n" not in text


_LITERAL_IN_CLASS = frozenset(string.ascii_letters + string.digits + "._+:@/=,")
_UNBOUNDED_AT_MOST = 3  # stdlib `re` backtracks: more unbounded repeats could take polynomial time


def line_search(pattern: str) -> re.Pattern[str] | None:
    """A stdlib program that finds, in a text of tags each after a newline, what an RE2 search
    of `pattern` finds in each tag alone: None unless the pattern is of a small safe subset.

    The subset: ASCII literals, escaped punctuation, `\\d`, `\\w`, `.`, classes of such
    characters and ranges, groups (capturing, named, `(?:`), `|`, `^`, `$`, and repeats of a
    single atom (`?` also of a group). On ASCII tags without a newline RE2 and Python's
    backtracking engine then find the same leftmost-first match with the same groups (RE2
    follows Perl's submatch rules). No atom matches a newline, so a match stays in its line;
    `^` and `$` become the line's ends.

    Groups of the program: 1 the whole line (empty when not matched), 2 the match (`$0`), the
    pattern's own groups from 3 on, and last the whole line when the pattern does not match it.
    """
    body = _translated(pattern)
    if body is None:
        return None
    # anchored at the start and no `|` outside groups: the match can only start with the line
    anchored = pattern.startswith("^") and not _top_level_alternation(pattern)
    line = rf"(({body})[^\n]*)" if anchored else rf"(?=([^\n]+))[^\n]*?({body})[^\n]*"
    try:
        return re.compile(rf"\n(?:{line}|([^\n]*))(?=\n)")
    except (re.error, RecursionError):
        return None


def _translated(pattern: str) -> str | None:
    """`pattern` in stdlib syntax for `line_search`, or None outside the subset."""
    out: list[str] = []
    unbounded = 0
    i, n = 0, len(pattern)
    atom = False  # the last token can take a repeat
    group_end = False
    while i < n:
        c = pattern[i]
        if c in _PLAIN:
            out.append(c)
            atom, group_end = True, False
            i += 1
        elif c == "\\":
            escaped = _escape(pattern, i, in_class=False)
            if escaped is None:
                return None
            out.append(escaped)
            atom, group_end = True, False
            i += 2
        elif c == ".":
            out.append(r"[^\n]")
            atom, group_end = True, False
            i += 1
        elif c == "[":
            end = _class(pattern, i)
            if end is None:
                return None
            out.append(end[0])
            atom, group_end = True, False
            i = end[1]
        elif c == "(":
            opened = _opening(pattern, i)
            if opened is None:
                return None
            out.append(opened[0])
            atom = group_end = False
            i = opened[1]
        elif c == ")":
            out.append(")")
            atom, group_end = False, True
            i += 1
        elif c == "|":
            out.append("|")
            atom = group_end = False
            i += 1
        elif c == "^":
            out.append(r"(?<=\n)")
            atom = group_end = False
            i += 1
        elif c == "$":
            out.append(r"(?=\n)")
            atom = group_end = False
            i += 1
        elif c in "?*+{":
            repeat = _repeat(pattern, i)
            if repeat is None or not (atom or (group_end and repeat[0] == "?")):
                return None
            text, i, endless = repeat
            unbounded += endless
            out.append(text)
            atom = group_end = False
        else:
            return None
    return "".join(out) if unbounded <= _UNBOUNDED_AT_MOST else None


def _top_level_alternation(pattern: str) -> bool:
    """Whether a `|` of the pattern (of `line_search`'s subset) stands outside every group."""
    depth = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            end = _class(pattern, i)
            i = end[1] if end else i + 1
            continue
        depth += (c == "(") - (c == ")")
        if c == "|" and depth == 0:
            return True
        i += 1
    return False


def _escape(pattern: str, i: int, *, in_class: bool) -> str | None:
    """The stdlib spelling of the escape at `i`, or None outside the subset."""
    if i + 1 >= len(pattern):
        return None
    c = pattern[i + 1]
    if c in _ESCAPABLE:
        return "\\" + c
    if c == "d":
        return "0-9" if in_class else "[0-9]"
    if c == "w":
        return "0-9A-Za-z_" if in_class else "[0-9A-Za-z_]"
    return None


def _class(pattern: str, start: int) -> tuple[str, int] | None:
    """A bracket class at `start` in stdlib syntax (a negated one also refuses the newline,
    which no tag holds) and the index after it, or None outside the subset."""
    i = start + 1
    negated = pattern.startswith("^", i)
    i += negated
    parts: list[str] = []
    first = True
    while i < len(pattern):
        c = pattern[i]
        if c == "]" and not first:
            body = "".join(parts)
            return (f"[^{body}\\n]" if negated else f"[{body}]"), i + 1
        if c == "\\":
            escaped = _escape(pattern, i, in_class=True)
            if escaped is None:
                return None
            parts.append(escaped)
            i += 2
        elif c in string.ascii_letters + string.digits and pattern.startswith("-", i + 1) and (
            i + 2 < len(pattern) and pattern[i + 2] in string.ascii_letters + string.digits
        ):
            low, high = c, pattern[i + 2]
            same_kind = (low.isdigit() and high.isdigit()) or (low.islower() and high.islower()) or (
                low.isupper() and high.isupper())
            if not same_kind or low > high:
                return None
            parts.append(f"{low}-{high}")
            i += 3
        elif c in _LITERAL_IN_CLASS:
            parts.append(c)
            i += 1
        elif c == "-" and (first or pattern.startswith("]", i + 1)):
            parts.append(r"\-")
            i += 1
        else:
            return None
        first = False
    return None


def _opening(pattern: str, start: int) -> tuple[str, int] | None:
    """A group's opening in stdlib syntax and the index after it, or None (flags, look-around)."""
    if not pattern.startswith("(?", start):
        return "(", start + 1
    if pattern.startswith("(?:", start):
        return "(?:", start + 3
    for opener in ("(?P<", "(?<"):
        if pattern.startswith(opener, start):
            close = pattern.find(">", start)
            name = pattern[start + len(opener) : close]
            if close < 0 or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                return None
            return f"(?P<{name}>", close + 1
    return None


_REPEAT = re.compile(r"(?:[?*+]|\{([0-9]{1,4})(,([0-9]{0,4}))?\})\??")


def _repeat(pattern: str, start: int) -> tuple[str, int, bool] | None:
    """A repeat at `start`: its text, the index after it and whether it is unbounded."""
    match = _REPEAT.match(pattern, start)
    if match is None:
        return None
    text = match[0]
    endless = text[0] in "*+" or (match[2] is not None and not match[3])
    return text, match.end(), endless
