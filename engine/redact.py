"""Keeping secrets out of everything gitward writes: the store, logs, and error messages.

Pure helpers every layer uses: a URL without its credentials, and a text with known secrets and
every URL's credentials removed.
"""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"]+", re.IGNORECASE)


def public_url(url: str) -> str:
    """A URL without credentials: HTTP(S) userinfo dropped, an ssh password dropped (user kept)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.split(":", 1)[0]
    keep_user = parts.scheme in ("ssh", "git+ssh") and user
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if keep_user else host))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with each known secret replaced by `***` and every URL's credentials removed."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL.sub(lambda match: public_url(match.group(0)), text)
