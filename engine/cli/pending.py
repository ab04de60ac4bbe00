"""What the CLI names but gitward cannot do yet says so, instead of pretending."""

from __future__ import annotations

from engine.errors import GitwardError


class NotBuiltError(GitwardError):
    """A verb or kind the CLI accepts whose capability is not built yet (exit 1)."""
