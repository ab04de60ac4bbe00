"""Click groups whose commands are imported when they run, not when the CLI starts.

A command's module imports what the command uses (SQLAlchemy, the kubernetes client, GitPython,
httpx), and those libraries cost more than the rest of a start-up. `gitward check` must not pay
for the kubernetes client it never calls, and `gitward --help` for nothing but click. So a
`LazyGroup` names its commands by `module:attribute` and imports one only when it is run or its
own help is asked for. The group's help lists each command with the summary kept beside its
name (the first paragraph of its docstring, which click would show): listing them must not
import them. tests/unit/test_cli_lazy.py keeps the summaries equal to the docstrings.

A command's imports run with the cyclic garbage collector paused (`import_quietly`): they
allocate a few hundred thousand objects that live as long as the process, and the collector
would walk them again and again while they pile up (about a quarter of the CPU time of
`get` and `plan`, bench/README.md). They are then moved out of its sight for good
(`gc.freeze`), so a long-running command (`gitward run`, `ui`) does not walk them at every
full collection either.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import click


@dataclass(frozen=True)
class LazyCommand:
    """Where a command is (`engine.cli.check:check`) and what the group's help says of it."""

    target: str
    summary: str

    def load(self) -> click.Command:
        module, _, attribute = self.target.partition(":")
        command = getattr(import_quietly(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.target} is not a click command")
        return command


def import_quietly(name: str) -> ModuleType:
    """`importlib.import_module(name)` with the garbage collector paused, and what it loaded
    frozen (the module docstring says why); a collector a caller had paused stays paused."""
    if not gc.isenabled():
        return importlib.import_module(name)
    gc.disable()
    try:
        return importlib.import_module(name)
    finally:
        gc.freeze()
        gc.enable()


class LazyGroup(click.Group):
    """A click group that imports each command of `lazy` when it is first asked for by name."""

    def __init__(self, *args: Any, lazy: Mapping[str, LazyCommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.lazy[cmd_name].load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's listing of commands and their short help, from the summaries of the commands
        not imported yet (click's own would import every one)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, text) for name in names if (text := self._short_help(name, limit)) is not None]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def _short_help(self, name: str, limit: int) -> str | None:
        """What the listing says of `name`; None for a hidden command."""
        if name not in self.commands:
            return click.Command(name, help=self.lazy[name].summary).get_short_help_str(limit)
        command = self.commands[name]
        return None if command.hidden else command.get_short_help_str(limit)

