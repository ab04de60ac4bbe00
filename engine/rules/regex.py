"""Regular expressions as Flux reads them: Go RE2 syntax, through google-re2.

One place compiles every user pattern (exclusion lists, tag filters, marker dialects), with
RE2's own error logging off so a bad pattern yields one clean message and no noise on stderr.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2


class RegexError(ValueError):
    """A pattern RE2 rejects; the message is RE2's own (`missing ]: [a-f`)."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    return options


_OPTIONS = _options()


@lru_cache(maxsize=1024)
def compile_re2(pattern: str) -> Any:
    """The compiled pattern, or RegexError with RE2's reason (cached: rules reuse patterns)."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as err:
        raise RegexError(_message(err)) from None
    except (TypeError, ValueError) as err:
        raise RegexError(str(err) or "invalid pattern") from None


def _message(err: Exception) -> str:
    arg = err.args[0] if err.args else ""
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text or "invalid pattern"
