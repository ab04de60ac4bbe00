"""Go's strconv.Quote, for messages that must read byte for byte as Go's (semver constraints,
templates): Go's escapes, printable characters kept, raw bytes (surrogate-escaped) as `\\xNN`."""

from __future__ import annotations

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
            "\\": "\\\\", '"': '\\"'}


def go_quote(text: str, ascii_only: bool = False) -> str:
    """`%q` of a string (`%+q` with `ascii_only`: only ASCII is kept as it is)."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code < 0xE000:
            out.append("\\ufffd" if ascii_only else "\ufffd")
        elif char.isprintable() and (not ascii_only or code < 0x80):
            out.append(char)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
