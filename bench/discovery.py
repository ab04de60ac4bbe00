"""`gitward check` of the largest corpus repository against `kubectl kustomize` over its paths.

The subject is the real command, `python -m engine check --repo bjw-s__home-ops -o json`, as a
whole process: interpreter start, discovery (every Kustomization of the graph rendered by
gitward's kustomize subset), the reference checks and the marker lints. The baseline is the
least a tool must do to render the same paths with kustomize: `kubectl kustomize` once per
Kustomization path that has a kustomization file (92 of its 96), one after another, as whole
processes. Goal (from the issue): `check` within 2x the baseline.

The answer is checked before timing: `check` finds the repository's 96 buildable
Kustomizations and no error besides the files this copy of the repository does not hold.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from bench import BenchError, Result, interleaved, ready
from engine.errors import Problems
from engine.evaluate import render
from engine.reconcile.repo import RepoSpec, load_repository

REALWORLD = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "realworld"
FULL_REPOSITORY = "bjw-s__home-ops"
QUICK_REPOSITORY = "tinyrack-net__homelab"
"""`--quick` checks a smaller repository (about 20 Kustomizations)."""
GOAL_RATIO = 2.0
BASELINE_NAME = "`kubectl kustomize` of each Kustomization path with a kustomization file, in turn"
CORPUS_GAPS = ("externalsecret.yaml", "xseed.sh", "mailbackup.sh", "settings.js")
"""Files the repository names that the corpus copy does not hold (program code left out)."""


def paths(root: Path) -> list[Path]:
    """The Kustomization paths kubectl can build as they are (they hold a kustomization file)."""
    loaded = load_repository(RepoSpec(root), Problems())
    found = []
    for ks in loaded.one().buildable():
        directory = root / ks.path
        if any((directory / name).is_file() for name in render.KUSTOMIZATION_FILES):
            found.append(directory)
    return found


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", "check", "--repo", str(root), "-o", "json"],
                          capture_output=True, text=True)


def run(repository: str, runs: int) -> list[Result]:
    root = REALWORLD / repository
    if not root.is_dir():
        raise BenchError(f"the realworld corpus is absent ({root})")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise BenchError("kubectl is not on PATH")
    directories = paths(root)
    done = _check(root)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError as err:
        raise BenchError(f"gitward check printed no report: {done.stderr.strip()}") from err
    errors = [p["message"] for p in report["problems"] if p["severity"] == "error"]
    unexplained = [m for m in errors if not any(gap in m for gap in CORPUS_GAPS)]
    if unexplained or not directories:
        raise BenchError(f"check gave a wrong answer: {len(directories)} paths, errors {unexplained}")

    def baseline() -> None:
        for directory in directories:
            subprocess.run([kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone",
                            str(directory)], capture_output=True, check=False)

    timing = interleaved(ready(lambda: _check(root)), ready(baseline), runs)
    return [Result(f"check {repository}", len(directories), "paths", timing,
                   f"<= {GOAL_RATIO:g}x", timing.ratio <= GOAL_RATIO, BASELINE_NAME)]
