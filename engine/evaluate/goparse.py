"""Go's `strconv.ParseFloat(s, 64)`, the reader behind Flux's numerical policy.

Python's `float()` reads a different language: it strips whitespace, takes `-nan`, turns `1e400`
into inf and refuses `0x1p4`. So the syntax is checked here by hand, as Go checks it (an optional
sign; `inf`/`infinity`/`nan` in any case, `nan` unsigned; decimal or `0x` hex digits with one
optional dot; an exponent, mandatory `p` for hex; `_` only between digits or after the base
prefix), and only a normalised spelling reaches `float()`/`float.fromhex()`, which round
correctly to nearest-even as Go does. Overflow is an error (Go's ErrRange); underflow gives 0.
Go stops adding exponent digits once the exponent reaches 10000; that is kept too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SYNTAX = "invalid syntax"
RANGE = "value out of range"

_DECIMAL = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_EXPONENT_CAP = 10_000


class ParseFloatError(ValueError):
    """What Go's `*strconv.NumError` says: the text and SYNTAX or RANGE."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f'parsing "{text}": {reason}')


@dataclass(frozen=True)
class _Number:
    """A syntactically valid number: value = int(digits, base) * (10 or 2) ** exponent."""

    negative: bool
    hexadecimal: bool
    digits: str  # significant digits: no leading zeros, no underscores
    exponent: int


def parse_float(text: str) -> float:
    """The float64 Go's ParseFloat returns for `text`, or ParseFloatError where Go errs."""
    if text.isascii() and text.isdigit():
        return _plain_integer(text)
    special = _special(text)
    if special is not None:
        return special
    number = _read(text)
    if number is None:
        raise ParseFloatError(text, SYNTAX)
    value = _convert(number, text)
    return -value if number.negative else value


def _plain_integer(text: str) -> float:
    """A run of ASCII digits (timestamps, build numbers), the common case, read without `_read`.

    `float()` reads such a run as `_convert` would read its significant digits: the same
    integer, rounded correctly to nearest-even. A run too long for float64 is Go's range error.
    (Python's `float()` also takes `_`, spaces and non-ASCII digits: the caller's check keeps
    them on the slow path.)
    """
    value = float(text)
    if math.isinf(value):
        raise ParseFloatError(text, RANGE)
    return value


def _special(text: str) -> float | None:
    """`inf`, `infinity` (optionally signed) and unsigned `nan`, case-insensitive."""
    if not text.isascii():
        return None
    signed = text[:1] in ("+", "-")
    word = (text[1:] if signed else text).lower()
    if word in ("inf", "infinity"):
        return -math.inf if text[:1] == "-" else math.inf
    if word == "nan" and not signed:
        return math.nan
    return None


def _read(s: str) -> _Number | None:
    """Go's readFloat, required to consume the whole text; None on a syntax error."""
    i, n = 0, len(s)
    negative = s[:1] == "-"
    if s[:1] in ("+", "-"):
        i = 1
    hexadecimal = i + 2 < n and s[i] == "0" and s[i + 1] in "xX"
    if hexadecimal:
        i += 2
    digit_chars = _HEX if hexadecimal else _DECIMAL
    digits: list[str] = []
    saw_dot = saw_digits = False
    point = 0  # where the point sits, counted in significant digits
    while i < n:
        c = s[i]
        if c == ".":
            if saw_dot:
                break
            saw_dot, point = True, len(digits)
        elif c in digit_chars:
            saw_digits = True
            if c == "0" and not digits:
                point -= 1  # a leading zero only moves the point
            else:
                digits.append(c)
        elif c != "_":
            break
        i += 1
    if not saw_digits:
        return None
    if not saw_dot:
        point = len(digits)
    if hexadecimal:
        point *= 4  # hex digits are 4 bits; a p-exponent counts bits
    if i < n and s[i] in ("pP" if hexadecimal else "eE"):
        exponent, i = _read_exponent(s, i + 1)
        if exponent is None:
            return None
        point += exponent
    elif hexadecimal:
        return None
    if i != n or not _underscores_ok(s):
        return None
    scale = 4 if hexadecimal else 1
    return _Number(negative, hexadecimal, "".join(digits), point - scale * len(digits))


def _read_exponent(s: str, i: int) -> tuple[int | None, int]:
    """The signed exponent after `e`/`p` and where it ends; None when no digit follows."""
    n = len(s)
    sign = -1 if s[i : i + 1] == "-" else 1
    if s[i : i + 1] in ("+", "-"):
        i += 1
    if i >= n or s[i] not in _DECIMAL:
        return None, i
    value = 0
    while i < n and (s[i] in _DECIMAL or s[i] == "_"):
        if s[i] != "_" and value < _EXPONENT_CAP:
            value = value * 10 + ord(s[i]) - ord("0")
        i += 1
    return sign * value, i


def _underscores_ok(s: str) -> bool:
    """Go's rule: `_` only between digits, or between a base prefix and a digit."""
    body = s[1:] if s[:1] in ("+", "-") else s
    last = "^"  # ^ start, 0 digit or base prefix, _ underscore, ! anything else
    digit_chars = _DECIMAL
    if len(body) >= 2 and body[0] == "0" and body[1] in "bBoOxX":
        last = "0"
        digit_chars = _HEX if body[1] in "xX" else _DECIMAL
        body = body[2:]
    for c in body:
        if c in digit_chars:
            last = "0"
        elif c == "_":
            if last != "0":
                return False
            last = "_"
        elif last == "_":
            return False
        else:
            last = "!"
    return last != "_"


def _convert(number: _Number, text: str) -> float:
    """Round to the nearest float64 (ties to even); overflow is Go's range error."""
    if not number.digits:
        return 0.0
    try:
        if number.hexadecimal:
            value = float.fromhex(f"0x{number.digits}p{number.exponent}")
        else:
            value = float(f"{number.digits}e{number.exponent}")
    except OverflowError:
        raise ParseFloatError(text, RANGE) from None
    if math.isinf(value):
        raise ParseFloatError(text, RANGE)
    return value
