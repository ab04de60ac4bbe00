"""README's quick start is what CI runs: its test command, pasted, is `.ci/run`'s last line."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def _readme_commands() -> list[str]:
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", quick_start, re.DOTALL)]


def test_the_quick_start_has_two_commands_of_one_line_each() -> None:
    commands = _readme_commands()
    assert len(commands) == 2 and all("\n" not in command for command in commands)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == _readme_commands()[1]


def test_the_test_command_sets_up_the_real_parts_and_forbids_skipping_them() -> None:
    """CI=true turns a missing registry, sshd, PostgreSQL or API server into a failure."""
    command = _readme_commands()[1]
    assert command.startswith("bash tests/env/setup.sh && ") and "CI=true .venv/bin/python -m pytest" in command
    setup = (ROOT / "tests" / "env" / "setup.sh").read_text()
    for package in ("docker-registry", "openssh-server", "postgresql", "gnupg", "tinyproxy"):
        assert package in setup
    assert "tests/env/kube.sh build" in setup
