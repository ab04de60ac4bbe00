"""Public Flux repositories work unchanged: `check`, `get all -A`, `plan --offline` and `build` of
every Kustomization whose source the repository holds, on each repository of the shared corpora.

A command exits 0 or 1 on these repositories, never 2, except where the repository names a file
this copy of it does not hold (the corpus leaves program code out: a generator's `*.sh` or `*.js`
input; the other missing files are named below). Those are errors Flux would report on this tree
too, and the test names each one. A build that needs a remote base fails with exit 1 here (these
machines have no network; kubectl fails the same way). Every build is compared, object by object, with
`kubectl kustomize` over the kustomization Flux generates for the path, followed by the same
post-build steps.
"""

from __future__ import annotations

import json
import posixpath
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.errors import Problems, SourcePos
from engine.evaluate import kubeyaml, postbuild, render
from engine.evaluate.kustfile import known_fields
from engine.evaluate.render import Located
from engine.model import GitSource, Kustomization, Manifest
from engine.reconcile.repo import LoadedCluster, RepoSpec, load_repository
from engine.rules.check import source_key
from engine.rules.ignore import walk_repo
from tests.conftest import HOMELAB_CORPUS, ROOT, require, require_corpus

REALWORLD = ROOT.parent / "shared" / "corpus" / "realworld"
REPOSITORIES = sorted(p.name for p in REALWORLD.iterdir() if p.is_dir()) if REALWORLD.is_dir() else []

MISSING: dict[str, tuple[str, ...]] = {
    # Files the repository's kustomizations name that this copy does not hold, by repository.
    "MTRNord__cluster": ("bookwyrm.sh", "scripts/config.js", "scripts/federation.js",
                         "scripts/health.js", "scripts/smoke.js",
                         "scripts/soak-with-memory-check.js", "synapse.json",
                         "p6d5q6ozbrkcy3cnexq8s8uzh1rk9fbs"),
    "bjw-s__home-ops": ("externalsecret.yaml", "scripts/xseed.sh", "mailbackup.sh",
                        "config/settings.js"),
    "onedr0p__home-ops": ("resources/refresh-series.sh", "resources/tag-resolution.sh"),
}


def corpus(name: str) -> Path:
    if name == "homelab":
        require_corpus(HOMELAB_CORPUS.is_dir(), f"the homelab corpus is absent ({HOMELAB_CORPUS})")
        return HOMELAB_CORPUS
    require_corpus(REALWORLD.is_dir(), f"the realworld corpus is absent ({REALWORLD})")
    return REALWORLD / name


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def names_a_missing_file(text: str, repository: str) -> bool:
    return any(name in text for name in MISSING.get(repository, ()))


@pytest.mark.parametrize("repository", [*REPOSITORIES, "homelab"])
def test_check_get_and_plan_accept_the_repository(repository: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = corpus(repository)
    code, out, err = run(capsys, "check", "--repo", str(root), "-o", "json")
    report = json.loads(out)
    errors = [p for p in report["problems"] if p["severity"] == "error"]
    assert "Traceback" not in err
    unexplained = [p["message"] for p in errors if not names_a_missing_file(p["message"], repository)]
    assert unexplained == []
    assert code == (2 if errors else 0)
    assert bool(errors) == bool(MISSING.get(repository)), "a named missing file is no longer reported"

    state = str(tmp_path / "none.db")
    code, out, err = run(capsys, "--state", state, "get", "all", "-A", "--repo", str(root))
    assert code == 0, err
    code, out, err = run(capsys, "--state", state, "plan", "--offline", "--repo", str(root))
    assert code in (0, 1), err
    assert "Traceback" not in err and not (tmp_path / "none.db").exists()


def buildable(repository: str) -> Iterator[tuple[Path, LoadedCluster, Kustomization]]:
    root = corpus(repository)
    for cluster in load_repository(RepoSpec(root), Problems()).clusters:
        for ks in cluster.buildable():
            yield root, cluster, ks


@pytest.mark.slow
@pytest.mark.parametrize("repository", [*REPOSITORIES, "homelab"])
def test_every_build_equals_kubectl_kustomize(repository: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    kubectl = shutil.which("kubectl")
    require(kubectl is not None, "kubectl is not on PATH")
    assert kubectl is not None
    built = 0
    for root, cluster, ks in buildable(repository):
        args = ["build", "kustomization", ks.name, "-n", ks.namespace, "--repo", str(root),
                "-o", "json"]
        if cluster.path:
            args += ["--cluster", str(root / cluster.path)]
        code, out, err = run(capsys, *args)
        expected = kubectl_build(kubectl, root, cluster, ks, tmp_path / f"{ks.namespace}-{ks.name}")
        if isinstance(expected, str) and "Could not resolve host" in expected:
            # a remote base: this machine has no network, kubectl fails too; not the repository's fault
            assert code == 1 and "Could not resolve host" in err, (ks.key, err)
            continue
        if isinstance(expected, str):
            assert code == 2 and names_a_missing_file(err, repository), (ks.key, err)
            assert names_a_missing_file(expected, repository), (ks.key, expected)
            continue
        assert code == 0, (ks.key, err)
        assert by_identity(json.loads(out)) == by_identity(expected), ks.key
        built += 1
    if repository != "stefanprodan__podinfo":  # its paths hold no Flux Kustomization
        assert built > 0


def kubectl_build(kubectl: str, root: Path, cluster: LoadedCluster, ks: Kustomization,
                  work: Path) -> list[dict[str, Any]] | str:
    """The objects `kubectl kustomize` builds from Flux's kustomization for the path (a copy of
    the files the source holds), with Flux's post-build steps; its error text when it fails."""
    source = cluster.rules.get(source_key(ks))
    ignore = source.ignore if isinstance(source, GitSource) else ""
    files = dict(walk_repo(root, ignore))
    for rel, path in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, work / rel)
    rel = posixpath.normpath(ks.path.strip("/") or ".")
    rel = "" if rel == "." else rel
    kfile = render.kustomization_in(files, rel)
    existing = None
    if kfile is not None:
        existing = known_fields(render.read_kustomization(kfile, (work / kfile).read_text()))
    resources = [] if kfile else render.generated_resources(list(files), rel)
    kus = render.flux_kustomization(
        existing, [f"./{posixpath.relpath(r, rel or '.')}" for r in resources], ks)
    target = kfile or posixpath.join(rel, "kustomization.yaml")
    (work / target).write_text(render.dump_kustomization(kus))
    done = subprocess.run([kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone",
                           str(work / rel)], capture_output=True, text=True)
    if done.returncode != 0:
        return done.stderr
    problems = Problems()
    where = SourcePos("kubectl")
    items = [Located(Manifest(body, "kubectl"), where)
             for doc in kubeyaml.read_documents("kubectl", done.stdout, v2=True)
             for body in render.read_objects(doc.value, "kubectl", where, problems)]
    finished = postbuild.finish(items, ks, problems)
    assert problems.errors == [], [p.message for p in problems.errors]
    return [item.manifest.body for item in finished]


def by_identity(bodies: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    out = {}
    for body in bodies:
        meta = body.get("metadata") or {}
        key = (str(body.get("apiVersion")), str(body.get("kind")), str(meta.get("namespace", "")),
               str(meta.get("name")))
        assert key not in out, key
        out[key] = body
    return out
