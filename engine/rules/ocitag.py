"""What a registry may call a tag: the OCI distribution grammar, and how others are shown.

A tag is `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}` (OCI distribution spec, "tag" in the pull API).
A registry that lists anything else (terminal escapes, a line break, a NUL, a right-to-left
mark, ten thousand characters) is answered by the ledger recording the tag as invalid: never
selected, and never printed as it is, so it can neither paint a terminal nor pose as another
tag or as two rows of a table.
"""

from __future__ import annotations

import re

from engine.rules.goquote import go_quote

TAG_GRAMMAR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
INVALID_TAG = "not a valid OCI tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
"""Why an invalid tag is passed over (a decision's trace, `images tags`)."""
SHOWN_LENGTH = 128
"""The most characters an invalid tag is shown (and stored) in: the ledger's column holds 128."""


def is_valid_tag(tag: str) -> bool:
    """Whether `tag` is a tag the OCI grammar allows."""
    return TAG_GRAMMAR.fullmatch(tag) is not None


def shown_tag(tag: str) -> str:
    """A valid tag as it is; any other quoted with every character past printable ASCII escaped
    (Go's %+q), cut to SHOWN_LENGTH characters with its full length said. An invalid tag the
    ledger recorded is already in this form (printable ASCII in quotes) and is shown as it is."""
    if is_valid_tag(tag) or _escaped(tag):
        return tag
    quoted = go_quote(tag, ascii_only=True)
    if len(quoted) <= SHOWN_LENGTH:
        return quoted
    suffix = f'"... ({len(tag)} characters)'
    pieces = ['"']
    used = 1 + len(suffix)
    for char in tag:
        piece = go_quote(char, ascii_only=True)[1:-1]
        if used + len(piece) > SHOWN_LENGTH:
            break
        pieces.append(piece)
        used += len(piece)
    return "".join(pieces) + suffix


def _escaped(tag: str) -> bool:
    return (tag.startswith('"') and len(tag) <= SHOWN_LENGTH and tag.isascii()
            and tag.isprintable())
