"""A plain (non-editable) install works: the wheel carries `migrations/` and `rules/`.

The wheel is built from a copy of the source (the shared tree gets no build/ folder) and
installed into a fresh venv that reuses this .venv's dependencies through a .pth path entry.
A path entry does not run the .venv's own .pth files, so the editable install's finder cannot
serve `engine` from the source tree; the commands run from a temp directory for the same reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

SOURCES = ("pyproject.toml", "README.md", "engine", "migrations", "rules")
NO_CACHE = shutil.ignore_patterns("__pycache__", "*.pyc")
IN_WHEEL = "engine/_shipped"


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GITWARD_STATE")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def source_files(folder: str, patterns: tuple[str, ...]) -> set[str]:
    base = ROOT / folder
    return {str(p.relative_to(base)) for pattern in patterns for p in base.rglob(pattern)
            if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=NO_CACHE)
        else:
            shutil.copy2(ROOT / name, src / name)
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", src,
                cwd=tmp)
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = (tmp / "dist").glob("gitward-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding only the wheel, with this .venv's site-packages on its path: its bin/."""
    venv = tmp_path_factory.mktemp("install") / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv.parent)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
               "--no-index", "-q", wheel, cwd=venv.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                  cwd=venv.parent).stdout.strip()
    (Path(purelib) / "gitward_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv / "bin"


def test_wheel_carries_every_module_the_migrations_and_the_rules(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    engine = {f"engine/{p}" for p in source_files("engine", ("*.py", "*.lark", "py.typed"))}
    engine |= {f"engine/ui/{p}" for p in source_files("engine/ui", ("templates/*", "static/*"))}
    assert "engine/ui/templates/base.html" in engine and "engine/ui/static/ui.css" in engine
    migrations = {f"{IN_WHEEL}/migrations/{p}" for p in source_files("migrations", ("*.py", "*.mako"))}
    rules = {f"{IN_WHEEL}/rules/{p}" for p in source_files("rules", ("*.rules",))}
    assert f"{IN_WHEEL}/migrations/env.py" in migrations
    assert f"{IN_WHEEL}/rules/markers.rules" in rules
    # a subpackage missing from pyproject.toml's explicit `packages` shows up here
    assert engine | migrations | rules <= names, sorted((engine | migrations | rules) - names)
    assert not [n for n in names if n.split("/")[0] in ("migrations", "rules")]


def test_installed_gitward_runs_without_the_source_tree(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    where = run(installed / "python", "-c", "import engine; print(engine.__file__)", cwd=work)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.parent), where.stdout
    assert not Path(where.stdout.strip()).is_relative_to(ROOT)

    repo = work / "homelab"
    shutil.copytree(EXAMPLES / "homelab", repo)
    # --strict: without the built-in marker dialect every ImagePolicy would be "not used"
    checked = run(installed / "gitward", "check", "--strict", "-o", "json", "--repo", repo, cwd=work)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert (report["errors"], report["warnings"]) == (0, 0), report

    state = work / "s.db"
    upgraded = run(installed / "gitward", "--state", state, "db", "upgrade", cwd=work)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    current = run(installed / "gitward", "--state", state, "db", "current", cwd=work)
    assert current.returncode == 0, current.stdout + current.stderr
    assert "up to date" in current.stdout
