"""Every `gitward ...` line in the deploy and troubleshooting docs names a real command and real
options, so the docs cannot rot when the CLI changes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from engine.cli import cli
from tests.conftest import ROOT

DOCS = (ROOT / "docs" / "troubleshooting.md", ROOT / "docs" / "deploy.md")
SHELL_BLOCK = re.compile(r"^\s*```(?:bash|sh)\n(.*?)^\s*```", re.DOTALL | re.MULTILINE)
SEPARATORS = {"|", "||", "&&", ";", ">", ">>", "<"}
COMMAND_STARTS = SEPARATORS | {"--"}


def gitward_commands(markdown: str) -> list[list[str]]:
    """The argument lists of each `gitward` command in the shell code blocks of `markdown`: the
    word starts a line, follows a separator, or follows `--` (as in `kubectl exec ... --`)."""
    commands = []
    for block in SHELL_BLOCK.findall(markdown):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            for start, word in enumerate(words):
                if word == "gitward" and (start == 0 or words[start - 1] in COMMAND_STARTS):
                    rest = words[start + 1:]
                    end = next((i for i, w in enumerate(rest) if w in SEPARATORS), len(rest))
                    commands.append(rest[:end])
    return commands


def _option_names(command: click.Command) -> set[str]:
    return {name for param in command.params if isinstance(param, click.Option)
            for name in (*param.opts, *param.secondary_opts)} | {"-h", "--help"}


def resolve(args: list[str]) -> str:
    """The command path `args` names, e.g. "images tags"; AssertionError when a verb or an
    option does not exist. Values of options are skipped; positional words are not checked."""
    command: click.Command = cli
    path: list[str] = []
    options = _option_names(cli)
    words = iter(args)
    for word in words:
        name = word.split("=", 1)[0]
        if word.startswith("-") and word != "-":
            assert name in options, f"gitward {' '.join(path)}: no option {name}"
            param = next(p for p in command.params if name in (*p.opts, *p.secondary_opts)) \
                if name not in ("-h", "--help") else None
            if param is not None and not getattr(param, "is_flag", False) and "=" not in word:
                next(words, None)
        elif isinstance(command, click.Group):
            found = command.get_command(click.Context(command), word)
            assert found is not None, f"`gitward {' '.join([*path, word])}`: no such command"
            command = found
            path.append(word)
            options = _option_names(command)
    assert path or "--version" in args or "--help" in args, f"gitward {args}: no command"
    return " ".join(path)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_documented_command_exists(doc: Path) -> None:
    commands = gitward_commands(doc.read_text())
    assert len(commands) >= 5, f"{doc.name}: too few gitward commands found; is the parser broken?"
    for args in commands:
        resolve(args)


def test_troubleshooting_uses_the_audit_views() -> None:
    text = (ROOT / "docs" / "troubleshooting.md").read_text()
    paths = {resolve(args) for args in gitward_commands(text)}
    assert {"explain", "images tags", "images test", "events", "logs", "sql", "trace",
            "diff kustomization", "get"} <= paths
    for view in ("v_image_updates", "v_policy_latest", "v_object_history", "v_tag_lead_time"):
        assert f"FROM {view}" in text, view


@pytest.mark.parametrize("args, message", [
    (["images", "frobnicate", "x"], "no such command"),
    (["events", "--bogus"], "no option --bogus"),
    (["--state", "x.db"], "no command"),
    (["sql", "SELECT 1", "--outptu", "csv"], "no option --outptu"),
])
def test_resolve_rejects_what_the_cli_lacks(args: list[str], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        resolve(args)


def test_extraction_follows_pipes_continuations_and_kubectl_exec() -> None:
    markdown = ("```bash\n"
                "kubectl exec deploy/gitward -- gitward --state /s.db events --since 1h | head\n"
                "gitward sql \\\n  \"SELECT 1\" -o csv  # a comment\n"
                "ssh-keygen -C gitward\n"
                "```\n```yaml\ngitward: not a command\n```\n")
    assert gitward_commands(markdown) == [["--state", "/s.db", "events", "--since", "1h"],
                                          ["sql", "SELECT 1", "-o", "csv"]]
    assert resolve(["--state", "/s.db", "events", "--since", "1h"]) == "events"
