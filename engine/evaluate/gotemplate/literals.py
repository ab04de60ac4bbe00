"""Go's literals as the template parser reads them: integers (`0x1F`, `0o17`, `017`, `0b101`,
`1_000`) and the bodies of interpreted strings and runes (`\\t`, `\\u00e9`, `\\x41`, `\\101`)."""

from __future__ import annotations

import re

_OCTAL = re.compile(r"0[0-7_]+")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "'": "'", '"': '"'}


def parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64) (or ParseUint): 0x, 0o, 0b, a leading 0 for octal, `_`."""
    sign = text[:1] if text[:1] in "+-" else ""
    body = text[len(sign):]
    hexadecimal = body[:2].lower() == "0x"
    if not body or (not hexadecimal and any(c in body for c in ".eEpP")):
        return None
    if _OCTAL.fullmatch(body):
        body = "0o" + body[1:]  # Go reads a leading 0 as octal; Python refuses it
    try:
        value = int(sign + body, 0)
    except ValueError:
        return None
    return value if -(2**63) <= value < 2**64 else None


def unquote_go(body: str, quote_char: str) -> str:
    """The text of a Go interpreted string (or rune) literal's body; ValueError when malformed."""
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == quote_char or char == "\n":
            raise ValueError("invalid syntax")
        if char != "\\":
            out.append(char)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise ValueError("invalid syntax")
        escape = body[i]
        i += 1
        if escape in _ESCAPES:
            if (escape == "'" and quote_char == '"') or (escape == '"' and quote_char == "'"):
                raise ValueError("invalid syntax")
            out.append(_ESCAPES[escape])
        elif escape in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[escape]
            digits = body[i:i + size]
            if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            code = int(digits, 16)
            i += size
            if escape == "x":
                out.append(bytes([code]).decode("latin-1") if code < 0x80 else chr(0xDC00 + code))
            elif code > 0x10FFFF or 0xD800 <= code < 0xE000:
                raise ValueError("invalid syntax")
            else:
                out.append(chr(code))
        elif escape in "01234567":
            digits = body[i - 1:i + 2]
            if len(digits) != 3 or not all(c in "01234567" for c in digits):
                raise ValueError("invalid syntax")
            code = int(digits, 8)
            if code > 255:
                raise ValueError("invalid syntax")
            i += 2
            out.append(chr(code) if code < 0x80 else chr(0xDC00 + code))
        else:
            raise ValueError("invalid syntax")
    return "".join(out)
