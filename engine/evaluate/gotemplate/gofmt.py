"""Go's fmt for template values: `print`, `println`, `printf` and how an action prints a value.

`%v` of a slice is `[a b]`, of a map `map[k:v]` (keys sorted), of a struct `{a b}`, of nil
`<nil>`; a value with a `String()` method prints that. printf takes the verbs commit messages
use (%v %s %q %d %x %X %o %b %c %U %t %e %f %g and %%) with flags, width and precision, and
says what went wrong inside the text as Go does: `%!d(string=x)`, `%!s(MISSING)`,
`%!(EXTRA int=1)`.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from engine.evaluate.gotemplate.values import MISSING, Struct, sort_keys, type_name
from engine.rules.goquote import go_quote as quote


def sprint(args: list[Any]) -> str:
    """fmt.Sprint: a space between two operands when neither is a string."""
    out: list[str] = []
    previous_string = False
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not previous_string:
            out.append(" ")
        out.append(format_value(arg, _Spec("v")))
        previous_string = is_string
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    """fmt.Sprintln: spaces between every operand, and a newline."""
    return " ".join(format_value(a, _Spec("v")) for a in args) + "\n"


def show(value: Any) -> str:
    """`%v` of one value."""
    return format_value(value, _Spec("v"))


class _Spec:
    """One parsed verb: flags, width, precision."""

    def __init__(self, verb: str, flags: str = "", width: int | None = None,
                 precision: int | None = None) -> None:
        self.verb = verb
        self.minus = "-" in flags
        self.plus = "+" in flags
        self.sharp = "#" in flags
        self.space = " " in flags
        self.zero = "0" in flags and not self.minus
        self.width = width
        self.precision = precision

    def pad(self, text: str, numeric: bool = False) -> str:
        width = self.width or 0
        if len(text) >= width:
            return text
        if self.minus:
            return text + " " * (width - len(text))
        if self.zero and numeric:
            sign = text[0] if text[:1] in ("-", "+", " ") else ""
            return sign + "0" * (width - len(text)) + text[len(sign):]
        if self.zero and not numeric:
            return "0" * (width - len(text)) + text
        return " " * (width - len(text)) + text


def sprintf(fmt: str, args: list[Any]) -> str:
    """fmt.Sprintf with Go's in-band error reports."""
    out: list[str] = []
    i, n, used = 0, len(fmt), 0
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        flags = ""
        while i < n and fmt[i] in "-+# 0":
            flags += fmt[i]
            i += 1
        width: int | None = None
        if i < n and fmt[i] == "*":
            i += 1
            width, used, bad = _star(args, used)
            if bad:
                out.append("%!(BADWIDTH)")
            if width is not None and width < 0:
                flags += "-"
                width = -width
        else:
            width, i = _digits(fmt, i)
        precision: int | None = None
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                i += 1
                precision, used, bad = _star(args, used)
                if bad or (precision is not None and precision < 0):
                    out.append("%!(BADPREC)")
                    precision = None
            else:
                precision, i = _digits(fmt, i)
                precision = precision or 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(format_value(args[used], _Spec(verb, flags, width, precision)))
        used += 1
    if used < len(args):
        extra = ", ".join(f"{type_name(a)}={show(a)}" if a is not None else "<nil>"
                          for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _digits(fmt: str, i: int) -> tuple[int | None, int]:
    start = i
    while i < len(fmt) and fmt[i].isdigit() and fmt[i].isascii():
        i += 1
    return (int(fmt[start:i]) if i > start else None), i


def _star(args: list[Any], used: int) -> tuple[int | None, int, bool]:
    if used >= len(args):
        return None, used, True
    value = args[used]
    if isinstance(value, int) and not isinstance(value, bool):
        return value, used + 1, False
    return None, used + 1, True


def format_value(value: Any, spec: _Spec, depth: int = 0) -> str:
    verb = spec.verb
    if value is None or value is MISSING:
        if verb in "vT":
            return spec.pad("<nil>")
        return f"%!{verb}(<nil>)"
    if verb == "T":
        return spec.pad(type_name(value))
    if isinstance(value, Struct):
        stringer = value.stringer()
        if stringer is not None and verb in "vsxXq":
            return _string(stringer(), spec)
        inner = " ".join(format_value(v, spec, depth + 1) for _, v in value.fields)
        return spec.pad("{" + inner + "}") if depth == 0 else "{" + inner + "}"
    if isinstance(value, bool):
        if verb in "vt":
            return spec.pad("true" if value else "false")
        return _bad(value, spec)
    if isinstance(value, int):
        return _integer(value, spec)
    if isinstance(value, float):
        return _float(value, spec)
    if isinstance(value, str):
        if verb in "vsqxX":
            return _string(value, spec)
        return _bad(value, spec)
    if isinstance(value, dict):
        inner = " ".join(f"{format_value(k, spec, depth + 1)}:{format_value(value[k], spec, depth + 1)}"
                         for k in sort_keys(value))
        text = f"map[{inner}]"
        return spec.pad(text) if depth == 0 else text
    if isinstance(value, (list, tuple)):
        inner = " ".join(format_value(v, spec, depth + 1) for v in value)
        text = f"[{inner}]"
        return spec.pad(text) if depth == 0 else text
    return spec.pad(f"%!{verb}({type_name(value)})")


def _bad(value: Any, spec: _Spec) -> str:
    return f"%!{spec.verb}({type_name(value)}={show(value)})"


def _string(text: str, spec: _Spec) -> str:
    verb = spec.verb
    if spec.precision is not None and verb in "vsq":
        text = text[: spec.precision]
    if verb in "vs":
        return spec.pad(text)
    if verb == "q":
        if spec.sharp and _can_backquote(text):
            return spec.pad(f"`{text}`")
        return spec.pad(quote(text, ascii_only=spec.plus))
    data = text.encode("utf-8", "surrogateescape")
    if spec.precision is not None:
        data = data[: spec.precision]
    digits = "0123456789abcdef" if verb == "x" else "0123456789ABCDEF"
    parts = ["".join(digits[b >> 4] + digits[b & 15] for b in [byte]) for byte in data]
    prefix = ("0x" if verb == "x" else "0X") if spec.sharp else ""
    if spec.space:
        return spec.pad(" ".join(prefix + p for p in parts))
    return spec.pad(prefix + "".join(parts) if parts else "")


def _can_backquote(text: str) -> bool:
    return all(c == "\t" or (c != "`" and c != "\ufeff" and c.isprintable()) for c in text)


def _integer(value: int, spec: _Spec) -> str:
    verb = spec.verb
    if verb in "vd":
        body = str(abs(value))
    elif verb == "x":
        body = f"{abs(value):x}"
    elif verb == "X":
        body = f"{abs(value):X}"
    elif verb in "oO":
        body = f"{abs(value):o}"
    elif verb == "b":
        body = f"{abs(value):b}"
    elif verb == "c":
        return spec.pad(_rune(value))
    elif verb == "q":
        char = _rune(value)
        return spec.pad("'" + quote(char)[1:-1].replace("'", "\\'").replace('\\"', '"') + "'")
    elif verb == "U":
        text = f"U+{value:04X}"
        return spec.pad(text + (f" '{_rune(value)}'" if spec.sharp else ""))
    elif verb in "eEfFgG":
        return _float(float(value), spec)
    else:
        return _bad(value, spec)
    if spec.precision is not None:
        body = body.rjust(spec.precision, "0") if spec.precision or value else ""
    if spec.sharp:
        body = {"x": "0x", "X": "0X", "o": "0", "b": "0b"}.get(verb, "") + body
    if verb == "O":
        body = "0o" + body
    sign = "-" if value < 0 else "+" if spec.plus else " " if spec.space else ""
    zero = spec.zero and spec.precision is None
    return _Spec(verb, "0" if zero else ("-" if spec.minus else ""), spec.width).pad(sign + body, True)


def _rune(value: int) -> str:
    return chr(value) if 0 <= value <= 0x10FFFF and not 0xD800 <= value < 0xE000 else "\ufffd"


def _float(value: float, spec: _Spec) -> str:
    verb = spec.verb
    if verb not in "vbeEfFgGxX":
        return _bad(value, spec)
    if math.isinf(value) or math.isnan(value):
        text = "NaN" if math.isnan(value) else "-Inf" if value < 0 else "+Inf"
        return _Spec(verb, "-" if spec.minus else "", spec.width).pad(text)
    if verb in "vgG":
        body = format_g(value, spec.precision)
        if verb == "G":
            body = body.upper()
    elif verb in "eE":
        body = f"{value:.{6 if spec.precision is None else spec.precision}{verb}}"
    elif verb in "fF":
        body = f"{value:.{6 if spec.precision is None else spec.precision}f}"
    else:
        return _bad(value, spec)
    if spec.plus and not body.startswith("-"):
        body = "+" + body
    elif spec.space and not body.startswith("-"):
        body = " " + body
    return spec.pad(body, True)


def format_g(value: float, precision: int | None = None) -> str:
    """strconv.FormatFloat(f, 'g', prec, 64): the shortest digits unless a precision is given;
    an exponent below -4 or from the precision up (6 for the shortest) is written `e+NN`."""
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    if precision is None:
        exact = Decimal(repr(abs(value)))
        limit = 6
    else:
        limit = max(precision, 1)
        exact = Decimal(f"{abs(value):.{limit - 1}e}")
    digits = "".join(map(str, exact.as_tuple().digits)).rstrip("0") or "0"
    exponent = exact.adjusted()
    sign = "-" if value < 0 else ""
    if exponent < -4 or exponent >= limit:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if exponent >= len(digits) - 1:
        return sign + digits + "0" * (exponent - len(digits) + 1)
    if exponent >= 0:
        return sign + digits[: exponent + 1] + "." + digits[exponent + 1:]
    return sign + "0." + "0" * (-exponent - 1) + digits
