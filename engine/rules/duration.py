"""Durations as Flux writes them (`1m0s`, `1h30m`, `500ms`, `1.5h`).

One parser for both syntaxes: the DSL and Flux share Kubernetes' pattern
`^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$`. The DSL prints the short form (`1h30m`), Flux YAML the Go
form (`1h30m0s`), which is what `flux export` writes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_WHOLE = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+$")
_UNIT_MS = {"ms": Decimal(1), "s": Decimal(1000), "m": Decimal(60_000), "h": Decimal(3_600_000)}

DURATION_HELP = "a duration such as 30s, 5m, 1h30m or 500ms"
_GO_MAX_MS = Decimal(2**63 - 1) / Decimal(1_000_000)
"""The longest duration Go's time.ParseDuration accepts (int64 nanoseconds, about 292 years)."""


class DurationError(ValueError):
    """Raised with a message fit for the user."""


def parse_duration(text: str) -> timedelta:
    """`"1h30m"` -> timedelta(hours=1, minutes=30); raises DurationError for anything else."""
    if not _WHOLE.match(text):
        raise DurationError(f'invalid duration "{text}": expected {DURATION_HELP}')
    total = sum(Decimal(n) * _UNIT_MS[u] for n, u in _PART.findall(text))
    if total > _GO_MAX_MS:
        raise DurationError(f'invalid duration "{text}": longer than the 2562047h47m16s Flux '
                            "(Go) accepts")
    return timedelta(milliseconds=int(total))


def _split(value: timedelta) -> tuple[int, int, int, int]:
    ms = round(value.total_seconds() * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    seconds, ms = divmod(ms, 1000)
    return hours, minutes, seconds, ms


def format_short(value: timedelta) -> str:
    """The DSL form: `1h30m`, `30s`, `1m30s`, `500ms`, `0s`."""
    hours, minutes, seconds, ms = _split(value)
    parts = [f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (seconds, "s"), (ms, "ms")) if n]
    return "".join(parts) or "0s"


def format_go(value: timedelta) -> str:
    """Go's time.Duration.String(): `1m0s`, `1h30m0s`, `500ms`, `1.5s`, `0s`."""
    hours, minutes, seconds, ms = _split(value)
    if not (hours or minutes or seconds):
        return f"{ms}ms" if ms else "0s"
    sec = f"{seconds}.{ms:03d}".rstrip("0").rstrip(".") if ms else str(seconds)
    if hours:
        return f"{hours}h{minutes}m{sec}s"
    if minutes:
        return f"{minutes}m{sec}s"
    return f"{sec}s"


def parse_age(text: str) -> timedelta:
    """A `--since` value: a duration (`30m`, `1h30m`) or whole days (`7d`), for looking back."""
    if text.endswith("d") and text[:-1].isdigit():
        return timedelta(days=int(text[:-1]))
    try:
        return parse_duration(text)
    except DurationError:
        raise DurationError(f'invalid age "{text}": expected {DURATION_HELP}, or days such as 7d') from None
