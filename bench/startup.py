"""Start-up: whole `gitward` commands against `python -c pass` run by the same interpreter.

A command's floor is the interpreter's own start-up; what gitward adds is mostly imports. Each
line times one command as a user runs it (the `gitward` entry point of this environment, run
by this interpreter, `sys.executable`: the venv's python itself, never a shim that would add a
process of its own) against `sys.executable -c pass`, interleaved in the same run. Goals (from
the issue): `--help` <= 5x, `check --repo examples/homelab` <= 10x, `get all -A` and
`plan --offline` on a copy of state.db.example <= 15x.

Commands run with Python's bytecode cache on, as an installed gitward runs (pip compiles a
wheel's modules when it installs them): `PYTHONDONTWRITEBYTECODE`, which some environments set,
is left out of their environment, so the warm-up round writes `__pycache__` and no timed run
compiles gitward's sources.

Three more lines time the floor of the library a store-reading command is built on, against the
same baseline: importing SQLAlchemy's Core, importing its ORM (the store's sessions and mapped
tables), and the least a command could do to read the store through SQLAlchemy at all (import
click and Core, make an engine, read the schema revision). They have no goal: they say how much
of the 15x of `get` and `plan` the library alone takes.

The answers are checked before timing: every command exits 0 and prints what it should. The
note of each line lists the heavy libraries the command imported (SQLAlchemy, Alembic, the
kubernetes client, GitPython, httpx), read from `sys.modules` once the command is done.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import BenchError, Result, interleaved, ready

ROOT = Path(__file__).resolve().parents[1]
HOMELAB = ROOT / "examples" / "homelab"
EXAMPLE_STORE = ROOT / "state.db.example"
RUNS_FACTOR = 3
"""At full size, timed runs per line are this many times `--runs`: a run is short, and noisy."""
HEAVY = ("sqlalchemy", "alembic", "kubernetes", "git", "httpx")
BASELINE_NAME = "`python -c pass` by the same interpreter (sys.executable)"
_IMPORTS_PROGRAM = (
    "import json, sys\n"
    "from engine.cli import main\n"
    "main(sys.argv[1:])\n"
    f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))\n"
)
"""Runs a command as the entry point does, then prints which of the HEAVY libraries it loaded."""


@dataclass(frozen=True)
class Command:
    """One line: the arguments after `gitward`, its goal, and text its output must hold."""

    name: str
    args: tuple[str, ...]
    goal: float
    expect: str


@dataclass(frozen=True)
class Floor:
    """A reference line: a program run by `sys.executable -c`, the floor of part of a command."""

    name: str
    program: str
    what: str


def floors(store: Path) -> list[Floor]:
    """SQLAlchemy's share of a store command's start-up; `store` is the copy the commands read."""
    read = ("import click\n"
            "from sqlalchemy import create_engine, text\n"
            f"engine = create_engine({f'sqlite:///{store}'!r})\n"
            "with engine.connect() as connection:\n"
            "    connection.execute(text('SELECT version_num FROM alembic_version')).one()\n")
    return [
        Floor("startup floor import sqlalchemy", "import sqlalchemy", "`import sqlalchemy` (Core)"),
        Floor("startup floor import sqlalchemy.orm", "import sqlalchemy.orm",
              "`import sqlalchemy.orm` (the store's sessions and mapped tables need it)"),
        Floor("startup floor store read, Core", read,
              "import click and SQLAlchemy Core, open an engine on the copy, read its revision"),
    ]


def commands(store: Path) -> list[Command]:
    """The issue's four commands; `store` is a copy of state.db.example."""
    repo = str(HOMELAB)
    return [
        Command("startup --help", ("--help",), 5.0, "Commands:"),
        Command("startup check homelab", ("check", "--repo", repo), 10.0, "0 errors"),
        Command("startup get all -A", ("--state", str(store), "get", "all", "--repo", repo, "-A"),
                15.0, "kustomizations:"),
        Command("startup plan --offline", ("--state", str(store), "plan", "--offline", "--repo", repo),
                15.0, "Update podinfo image"),
    ]


def entry_point() -> list[str]:
    """How a user runs gitward here: this environment's `gitward` script, by this interpreter
    (`python -m engine` when the package is not installed with its script)."""
    script = Path(sys.executable).parent / "gitward"
    return [sys.executable, str(script)] if script.is_file() else [sys.executable, "-m", "engine"]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)


def imported(command: Command) -> list[str]:
    """The HEAVY libraries `command` imported, in a fresh interpreter."""
    done = _run([sys.executable, "-c", _IMPORTS_PROGRAM, *command.args])
    try:
        return list(json.loads(done.stdout.splitlines()[-1]))
    except (IndexError, json.JSONDecodeError) as err:
        raise BenchError(f"{command.name}: the import check printed no list: {done.stderr.strip()}") from err


def run(runs: int, workdir: Path) -> list[Result]:
    if not HOMELAB.is_dir() or not EXAMPLE_STORE.is_file():
        raise BenchError(f"examples/homelab or state.db.example is missing under {ROOT}")
    store = workdir / "startup-state.db"
    shutil.copy(EXAMPLE_STORE, store)
    gitward = entry_point()
    baseline = [sys.executable, "-c", "pass"]
    results = []
    for command in commands(store):
        done = _run([*gitward, *command.args])
        if done.returncode != 0 or command.expect not in done.stdout:
            raise BenchError(f"`gitward {' '.join(command.args)}` gave a wrong answer (exit "
                             f"{done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}")
        timing = interleaved(ready(lambda: _run([*gitward, *command.args])), ready(lambda: _run(baseline)),
                             runs)
        loaded = ", ".join(imported(command)) or "none of " + ", ".join(HEAVY)
        results.append(Result(command.name, 1, "cmd", timing, f"<= {command.goal:g}x",
                              timing.ratio <= command.goal, BASELINE_NAME, note=f"imported {loaded}"))
    for floor in floors(store):
        program = [sys.executable, "-c", floor.program]
        done = _run(program)
        if done.returncode != 0:
            raise BenchError(f"{floor.name} failed: {done.stderr.strip()[-500:]}")
        timing = interleaved(ready(lambda: _run(program)), ready(lambda: _run(baseline)), runs)
        results.append(Result(floor.name, 1, "cmd", timing, "none: measured", True, BASELINE_NAME,
                              note=floor.what))
    return results
