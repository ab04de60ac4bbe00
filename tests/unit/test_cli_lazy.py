"""Lazy command groups: the listing `--help` prints from the kept summaries is the one click
prints from the commands themselves, and each name leads to the command it lists."""

from __future__ import annotations

import gc
import sys

import click
import pytest

from engine.cli import COMMANDS, cli
from engine.cli.images import COMMANDS as IMAGE_COMMANDS, images
from engine.cli.lazy import LazyCommand, LazyGroup, import_quietly

GROUPS = [("gitward", cli, COMMANDS), ("images", images, IMAGE_COMMANDS)]


def _listing(group: click.Group, width: int) -> str:
    formatter = click.HelpFormatter(width=width)
    group.format_commands(click.Context(group), formatter)
    return formatter.getvalue()


@pytest.mark.parametrize("name, group, lazy", GROUPS, ids=[g[0] for g in GROUPS])
def test_each_summary_is_its_commands_first_paragraph(name: str, group: click.Group,
                                                      lazy: dict[str, LazyCommand]) -> None:
    for command_name, entry in lazy.items():
        command = entry.load()
        assert command.name == command_name, f"{name} {command_name} loads {entry.target}"
        kept = click.Command(command_name, help=entry.summary)
        for limit in range(10, 400, 7):
            assert kept.get_short_help_str(limit) == command.get_short_help_str(limit), \
                f"`{name} {command_name}`: the summary in its LazyCommand differs from its docstring"


@pytest.mark.parametrize("name, group, lazy", GROUPS, ids=[g[0] for g in GROUPS])
def test_the_listing_is_what_click_prints_from_the_commands(name: str, group: click.Group,
                                                            lazy: dict[str, LazyCommand]) -> None:
    fresh = LazyGroup(name, lazy=lazy, commands=[c for n, c in group.commands.items() if n not in lazy])
    eager = click.Group(name, commands={**group.commands, **{n: e.load() for n, e in lazy.items()}})
    for width in (60, 80, 100, 140):
        listed = _listing(fresh, width)
        assert listed == _listing(eager, width)
        assert "Commands:" in listed
    assert not set(fresh.commands) & set(lazy), "listing the commands imported them"


def test_a_command_is_imported_when_named() -> None:
    fresh = LazyGroup("gitward", lazy=COMMANDS)
    check = fresh.get_command(click.Context(fresh), "check")
    assert check is not None and check.name == "check" and "check" in fresh.commands
    assert fresh.get_command(click.Context(fresh), "chekc") is None


def test_a_command_is_imported_with_the_collector_paused_and_left_as_it_was() -> None:
    target = "tests.unit.lazy_probe_module"
    sys.modules.pop(target, None)
    assert import_quietly(target).COLLECTOR_ENABLED_AT_IMPORT is False
    assert gc.isenabled(), "the collector stays off after a command's import"
    gc.disable()
    try:
        sys.modules.pop(target, None)
        import_quietly(target)
        assert not gc.isenabled(), "a collector the caller paused was turned on"
    finally:
        gc.enable()
