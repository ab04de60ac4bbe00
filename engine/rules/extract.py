"""What a filterTags `extract` keeps of a tag, and the digits it leaves out.

Flux compares the extracted value, not the tag. When the pattern matches digits outside every
group the extract names, tags that differ only in those digits get the same value: the user's
`(?P<ts>[0-9]{8})-[0-9]{4}` with `extract: $ts` gives every build of one day the same value, so
the policy cannot tell the 09:30 build from the 16:50 one (gitward keeps the byte-smallest tag,
the first build of the day; Flux keeps whichever its map yields). Letters and hex (a commit sha)
left out are not reported: they name a build, they do not order it.

The pattern is read with Python's regex parser, whose syntax agrees with RE2's for what tag
filters use; a pattern it cannot read is not judged (RE2 has already accepted or refused it).
"""

from __future__ import annotations

import re
import re._constants as op
import re._parser as sre
import warnings
from typing import Any

_TEMPLATE_REF = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")
"""`$name`, `${name}`, `$1`: a reference in a Go template expansion (`$$` is a literal `$`)."""

_DIGITS = frozenset(range(ord("0"), ord("9") + 1))


def referenced_groups(extract: str) -> list[str]:
    """The group names and numbers an extract template names, in order."""
    return [m.group(1) or m.group(2) for m in _TEMPLATE_REF.finditer(extract.replace("$$", ""))]


def dropped_digits(pattern: str, extract: str) -> list[str]:
    """Each run of digits the pattern matches outside the groups `extract` names, described
    (`4 digits`, `1 or more digits`); empty when nothing that orders tags is left out."""
    try:
        with warnings.catch_warnings():  # Python's own syntax warnings (`[[:digit:]]`) are not ours
            warnings.simplefilter("ignore")
            parsed = sre.parse(pattern)
    except (re.error, OverflowError, RecursionError):
        return []
    names = parsed.state.groupdict
    kept: set[int] = set()
    for ref in referenced_groups(extract):
        if ref.isdigit():
            kept.add(int(ref))
        elif ref in names:
            kept.add(names[ref])
    if 0 in kept:
        return []
    found: list[str] = []
    _walk(list(parsed), kept, found)
    return found


def _walk(items: list[tuple[Any, Any]], kept: set[int], found: list[str]) -> None:
    for code, value in items:
        if code is op.SUBPATTERN:
            group, _, _, body = value
            if group not in kept:
                _walk(list(body), kept, found)
        elif code in (op.MAX_REPEAT, op.MIN_REPEAT, op.POSSESSIVE_REPEAT):
            low, high, body = value
            inner = list(body)
            if len(inner) == 1 and _digit_class(*inner[0]):
                found.append(_count(low, high))
            else:
                _walk(inner, kept, found)
        elif code is op.BRANCH:
            for alternative in value[1]:
                _walk(list(alternative), kept, found)
        elif code is op.ATOMIC_GROUP:
            _walk(list(value), kept, found)
        elif _digit_class(code, value):
            found.append("1 digit")


def _digit_class(code: Any, value: Any) -> bool:
    """A character class that matches more than one digit and nothing but digits."""
    if code is not op.IN:
        return False
    digits: set[int] = set()
    for member, arg in value:
        if member is op.LITERAL and arg in _DIGITS:
            digits.add(arg)
        elif member is op.RANGE and arg[0] in _DIGITS and arg[1] in _DIGITS:
            digits.update(range(arg[0], arg[1] + 1))
        elif member is op.CATEGORY and arg is op.CATEGORY_DIGIT:
            digits.update(_DIGITS)
        else:
            return False
    return len(digits) > 1


def _count(low: int, high: int) -> str:
    if low == high:
        return f"{low} digit{'s' * (low != 1)}"
    if high == op.MAXREPEAT:
        return f"{low} or more digits"
    return f"{low} to {high} digits"
