"""`gitward completion`: the script a real bash sources completes gitward's commands and options
by asking the installed `gitward` (the venv's console script) for them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine.cli import main
from tests.conftest import ROOT, require

BIN = Path(sys.executable).parent


def completions(*words: str) -> list[str]:
    """What bash offers after `words` (the last one the word being completed)."""
    script = subprocess.run([sys.executable, "-m", "engine", "completion", "bash"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    quoted = " ".join(f"'{w}'" for w in words)
    probe = (f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
             "_gitward_completion gitward 2>/dev/null; printf '%s\\n' \"${COMPREPLY[@]}\"")
    done = subprocess.run(["bash", "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                               "PYTHONPATH": str(ROOT)},
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_and_options() -> None:
    require(shutil.which("bash") is not None, "bash is not installed")
    require((BIN / "gitward").exists(), f"no gitward console script beside {sys.executable}")
    assert completions("gitward", "re") == ["reconcile", "resume"]
    assert completions("gitward", "comp") == ["completion"]
    assert {"--repo", "--output", "--all-namespaces"} <= set(completions("gitward", "get", "--"))


def test_zsh_and_fish_scripts_ask_gitward(capsys: object) -> None:
    for shell in ("zsh", "fish"):
        assert main(["completion", shell]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "_GITWARD_COMPLETE=zsh_complete" in out and "_GITWARD_COMPLETE=fish_complete" in out


def test_an_unknown_shell_is_a_usage_error(capsys: object) -> None:
    assert main(["completion", "tcsh"]) == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in capsys.readouterr().err  # type: ignore[attr-defined]
