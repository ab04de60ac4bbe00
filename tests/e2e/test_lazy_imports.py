"""A command imports what it uses: the kubernetes client only to talk to a cluster, SQLAlchemy
only to open a store, Alembic only to migrate one, httpx only to reach a registry, GitPython only
to commit, the metrics server only to serve metrics, rich only to draw a table.

Each command runs in a fresh interpreter, as the `gitward` entry point runs it, and then prints
which of those libraries are in `sys.modules`. No timing is asserted (bench/startup.py measures
what the imports cost).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT

HOMELAB = str(EXAMPLES / "homelab")
WATCHED = ("kubernetes", "sqlalchemy", "alembic", "httpx", "git", "prometheus_client", "rich")
RUNNER = (
    "import json, sys\n"
    "from engine.cli import main\n"
    "code = main(sys.argv[1:])\n"
    f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & {set(WATCHED)!r})\n"
    "print(json.dumps({'code': code, 'loaded': loaded}))\n"
)
"""`gitward ARGS...`, then one JSON line: its exit code and the WATCHED libraries it imported."""


def loaded_by(*args: str, program: str = RUNNER) -> tuple[int, set[str], str]:
    """Run `program` with `args` in a fresh interpreter: (exit code, WATCHED modules, stdout)."""
    done = subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    lines = done.stdout.splitlines()
    assert lines, done.stderr
    result = json.loads(lines[-1])
    return result["code"], set(result["loaded"]), "\n".join(lines[:-1])


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A copy of state.db.example (at the head revision)."""
    target = tmp_path / "state.db"
    shutil.copy(ROOT / "state.db.example", target)
    return str(target)


def test_help_imports_no_store_and_no_cluster_client() -> None:
    code, loaded, out = loaded_by("--help")
    assert code == 0 and "check" in out and "Commands:" in out
    assert loaded == set()


def test_check_imports_no_store_and_no_cluster_client() -> None:
    code, loaded, out = loaded_by("check", "--repo", HOMELAB)
    assert code == 0 and "0 errors" in out
    assert loaded == set()


def test_get_opens_the_store_without_alembic_or_the_cluster_client(store: str) -> None:
    code, loaded, out = loaded_by("--state", store, "get", "all", "--repo", HOMELAB, "-A")
    assert code == 0 and "main@sha1:f079f121bf7a" in out
    assert loaded == {"sqlalchemy", "rich"}  # rich draws its tables


def test_plan_offline_opens_the_store_without_alembic_or_the_cluster_client(store: str) -> None:
    code, loaded, out = loaded_by("--state", store, "plan", "--offline", "--repo", HOMELAB)
    assert code == 0 and "+          image: ghcr.io/stefanprodan/podinfo:6.7.0" in out
    assert loaded == {"sqlalchemy"}


def test_images_check_offline_reaches_no_registry_and_commits_nothing(store: str) -> None:
    code, loaded, out = loaded_by("--state", store, "images", "check", "--offline", "--repo", HOMELAB)
    assert code == 0 and "podinfo" in out
    assert loaded == {"sqlalchemy"}


def test_committing_commands_do_import_git() -> None:
    """The runner sees GitPython when it is there: `apply` commits on a clone of its source."""
    code, loaded, _ = loaded_by("apply", "--help")
    assert code == 0 and "git" in loaded


def test_images_test_imports_no_store_and_no_cluster_client(tmp_path: Path) -> None:
    policy = EXAMPLES / "homelab" / "cluster" / "apps" / "podinfo" / "image-policy.yaml"
    tags = tmp_path / "tags.txt"
    tags.write_text("6.5.1\n6.6.0\n7.0.0\n")
    code, loaded, out = loaded_by("images", "test", "--policy", str(policy), "--tags", str(tags))
    assert code == 0 and "selected: 6.6.0" in out
    assert loaded == {"rich"}  # the verdict table


def test_a_command_that_talks_to_a_cluster_does_import_its_client() -> None:
    """The runner sees an import when there is one: `diff` reads the live cluster."""
    code, loaded, _ = loaded_by("diff", "--help")
    assert code == 0 and "kubernetes" in loaded


OPEN_STORE = (
    "import json, sys\n"
    "from engine.store.db import open_store\n"
    "open_store(sys.argv[1]).close()\n"
    f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & {set(WATCHED)!r})\n"
    "print(json.dumps({'code': 0, 'loaded': loaded}))\n"
)


def test_opening_a_store_at_head_does_not_import_alembic(store: str) -> None:
    _, loaded, _ = loaded_by(f"sqlite:///{store}", program=OPEN_STORE)
    assert loaded == {"sqlalchemy"}


def test_a_new_store_is_migrated_with_alembic_and_then_opens_without_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    _, first, _ = loaded_by(url, program=OPEN_STORE)
    assert first == {"sqlalchemy", "alembic"}
    _, again, _ = loaded_by(url, program=OPEN_STORE)
    assert again == {"sqlalchemy"}


def test_run_without_a_cluster_or_metrics_imports_neither_client(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass of `gitward run` with no cluster configured scans its image repositories (here a
    registry that refuses the connection) and never loads the kubernetes client, nor, with no
    `--metrics-addr`, the metrics library."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "image-repository.yaml").write_text(
        "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\n"
        "metadata: {name: app, namespace: apps}\n"
        "spec: {image: 127.0.0.1:9/app, interval: 1h, insecure: true}\n")
    code, loaded, _ = loaded_by("--state", str(tmp_path / "state.db"), "run", "--once",
                                "--repo", str(repo), "--workdir", str(tmp_path / "cache"))
    assert code == 0
    assert not loaded & {"kubernetes", "prometheus_client"}
    assert {"sqlalchemy", "httpx"} <= loaded
