"""Verbs whose capability is not built yet: each says what is missing instead of pretending."""

from __future__ import annotations

import click

from engine.errors import GitwardError


class NotBuiltError(GitwardError):
    """A verb exists in the CLI frame but its capability does not yet (exit 1)."""


_MISSING = {
    "run": "the controller loop needs the observers and executors",
}


def _pending(name: str, missing: str) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True,
                                                "allow_extra_args": True},
                   help=f"(not built yet) {missing[0].upper()}{missing[1:]}.")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        raise NotBuiltError(f"`gitward {name}` is not built yet: {missing}.")

    return command


PENDING: tuple[click.Command, ...] = tuple(_pending(n, m) for n, m in _MISSING.items())
