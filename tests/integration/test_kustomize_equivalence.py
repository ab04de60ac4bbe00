"""engine/evaluate/kustomize.py against the real kustomize, over every corpus repository.

For each repository the files that count (Flux's exclusions, `.sourceignore`) are copied once,
and two kinds of build are compared, keeping Flux's objects only:
- every directory holding a kustomization file, as `kubectl kustomize` builds it;
- every Flux Kustomization's `spec.path` that exists in the repository, with the kustomization
  kustomize-controller builds (engine/evaluate/render.py `flux_kustomization`, written into the
  copy as engine/reconcile/build.py does).
Where kustomize succeeds, the Python build must give the same objects, or warn, naming the
field, that it cannot apply something without kustomize; where kustomize fails, the Python
build must report an error.
"""

from __future__ import annotations

import posixpath
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.errors import Problems, Severity
from engine.evaluate import kubeyaml, render
from engine.evaluate.kustomize import NEEDS_KUSTOMIZE, UNSUPPORTED_FIELDS, build_directory, flux_kinds
from engine.model import Kustomization
from engine.observe.kustomize import clean_message
from engine.rules.flux import read_flux
from engine.rules.tree import RepoTree
from tests.conftest import HOMELAB_CORPUS, ROOT, require, require_corpus

REALWORLD = ROOT.parent / "shared" / "corpus" / "realworld"
REPOS = sorted(p.name for p in REALWORLD.iterdir() if p.is_dir()) if REALWORLD.is_dir() else []

Key = tuple[object, object, object, object]


def key(body: Mapping[str, Any]) -> Key:
    meta = body.get("metadata") or {}
    return (body.get("apiVersion"), body.get("kind"), meta.get("namespace") or "", meta.get("name"))


@pytest.fixture(scope="module")
def kustomize_command() -> list[str]:
    binary, kubectl = shutil.which("kustomize"), shutil.which("kubectl")
    require(bool(binary or kubectl), "neither kustomize nor kubectl is on PATH: nothing to compare with")
    return [binary, "build"] if binary else [str(kubectl), "kustomize"]


@dataclass
class Tally:
    """What one repository's comparison found."""

    compared: list[str] = field(default_factory=list)
    equal: list[str] = field(default_factory=list)
    both_failed: list[str] = field(default_factory=list)
    approximate: list[str] = field(default_factory=list)
    """Builds kustomize did and the Python build warned it could not do exactly."""
    mismatches: list[str] = field(default_factory=list)


class Reference:
    """A copy of a repository's files that count, and kustomize run over it."""

    def __init__(self, tree: RepoTree, copy: Path, command: list[str]) -> None:
        self.tree, self.copy, self.command = tree, copy, command
        for rel in tree.files:
            dest = copy / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tree.root / rel, dest)

    def build(self, rel: str, kustomization: Mapping[str, Any] | None = None) -> tuple[bool, Any]:
        """(True, Flux objects by key) or (False, kustomize's message)."""
        target = self.copy / rel
        written, saved = None, None
        if kustomization is not None:
            existing = render.kustomization_in(self.tree.files, rel)
            written = self.copy / (existing or posixpath.join(rel, "kustomization.yaml"))
            saved = written.read_bytes() if existing else None
            written.write_text(render.dump_kustomization(kustomization), encoding="utf-8")
        try:
            run = subprocess.run([*self.command, "--load-restrictor", "LoadRestrictionsNone", str(target)],
                                 capture_output=True, text=True, timeout=300)
        finally:
            if written is not None:
                if saved is None:
                    written.unlink()
                else:
                    written.write_bytes(saved)
        if run.returncode != 0:
            return False, clean_message(run.stderr)
        docs = kubeyaml.read_documents("kustomize output", run.stdout, v2=True)
        return True, {key(d.value): d.value for d in docs if isinstance(d.value, dict) and flux_kinds(d.value)}


def compare(reference: Reference, rel: str, label: str, tally: Tally,
            kustomization: Mapping[str, Any] | None = None) -> None:
    ok, expected = reference.build(rel, kustomization)
    rendered = build_directory(reference.tree, rel, kustomization=kustomization, keep=flux_kinds)
    ours = {key(item.manifest.body): item.manifest.body for item in rendered.objects}
    errors = [p.render(excerpt=False) for p in rendered.errors]
    tally.compared.append(label)
    remote = [p for p in rendered.warnings if p.message.startswith("resources: remote")]
    if not ok:
        if errors:
            tally.both_failed.append(f"{label}: kustomize: {expected[-160:]} | ours: {errors[0][-160:]}")
        elif remote:  # offline here, kustomize cannot fetch it either
            tally.approximate.append(f"{label}: {remote[0].message} (kustomize, offline: {expected[-120:]})")
        else:
            tally.mismatches.append(f"{label}: kustomize fails ({expected}) but the Python build "
                                    "reports no error")
        return
    if errors:
        tally.mismatches.append(f"{label}: kustomize builds it, the Python build fails: {errors}")
        return
    unsupported = [p for p in rendered.warnings if NEEDS_KUSTOMIZE in p.message]
    for warning in unsupported:
        named = warning.message.split(":", 1)[0].split(" ", 1)[0]
        assert named in (*UNSUPPORTED_FIELDS, "configurations", "labels", "resources"), warning.message
        assert warning.pos is not None
    if unsupported:
        tally.approximate.append(f"{label}: {[w.message.split(':', 1)[0] for w in unsupported]} "
                                 f"({'equal' if ours == expected else 'different'})")
        return
    if ours == expected and len(rendered.objects) == len(expected):
        tally.equal.append(label)
        return
    differing = sorted(str(k) for k in set(expected) | set(ours) if expected.get(k) != ours.get(k))
    tally.mismatches.append(f"{label}: objects differ: {differing[:5]}")


def flux_kustomizations(tree: RepoTree) -> Iterator[Kustomization]:
    for rel in tree.files:
        if rel.endswith(render.MANIFEST_SUFFIXES):
            text = tree.text(rel)
            if text and "kustomize.toolkit.fluxcd.io" in text:
                yield from (r for r in read_flux(rel, text, Problems()) if isinstance(r, Kustomization))


def run_corpus(root: Path, tmp_path: Path, command: list[str]) -> Tally:
    tree = RepoTree(root)
    reference = Reference(tree, tmp_path / "copy", command)
    tally = Tally()
    for rel in sorted({posixpath.dirname(f) for f in tree.files
                       if posixpath.basename(f) in render.KUSTOMIZATION_FILES}):
        compare(reference, rel, f"directory {rel or '.'}", tally)
    seen: set[tuple[str, str]] = set()
    for ks in flux_kustomizations(tree):
        rel = posixpath.normpath(ks.path.strip("/") or ".")
        rel = "" if rel == "." else rel
        if not tree.is_dir(rel) or (ks.name, rel) in seen:
            continue
        seen.add((ks.name, rel))
        existing_file = render.kustomization_in(tree.files, rel)
        existing = render.read_kustomization(rel, tree.text(existing_file) or "") if existing_file else None
        resources = [] if existing_file else [f"./{posixpath.relpath(r, rel or '.')}"
                                              for r in render.generated_resources(tree.files, rel)]
        kus = render.flux_kustomization(existing, resources, ks)
        compare(reference, rel, f"Kustomization {ks.name} (path {rel or '.'})", tally, kus)
    def count(labels: list[str]) -> str:
        paths = sum(label.startswith("Kustomization") for label in labels)
        return f"{len(labels)} ({len(labels) - paths} directories, {paths} Flux paths)"

    print(f"\n{root.name}: {count(tally.compared)} builds compared, {count(tally.equal)} equal, "
          f"{count(tally.both_failed)} failed in both, {count(tally.approximate)} approximate "
          f"(warned), {len(tally.mismatches)} mismatched", file=sys.stderr)
    for line in tally.approximate:
        print(f"  approximate: {line}", file=sys.stderr)
    return tally


@pytest.mark.slow
@pytest.mark.parametrize("repo", REPOS or ["(absent)"])
def test_realworld_repository_renders_as_kustomize_does(repo: str, tmp_path: Path,
                                                        kustomize_command: list[str]) -> None:
    require_corpus(bool(REPOS), f"the realworld corpus is absent ({REALWORLD})")
    tally = run_corpus(REALWORLD / repo, tmp_path, kustomize_command)
    assert tally.compared
    assert tally.mismatches == []


@pytest.mark.slow
def test_homelab_renders_as_kustomize_does(tmp_path: Path, kustomize_command: list[str]) -> None:
    require_corpus(HOMELAB_CORPUS.is_dir(), f"the homelab corpus is absent ({HOMELAB_CORPUS})")
    tally = run_corpus(HOMELAB_CORPUS, tmp_path, kustomize_command)
    assert tally.compared
    assert tally.mismatches == []


@pytest.mark.parametrize("repo", REPOS or ["(absent)"])
def test_every_problem_is_located(repo: str) -> None:
    """Whatever a corpus directory holds, each problem points at a file (no kustomize needed)."""
    require_corpus(bool(REPOS), f"the realworld corpus is absent ({REALWORLD})")
    tree = RepoTree(REALWORLD / repo)
    directories = {posixpath.dirname(f) for f in tree.files if posixpath.basename(f) in render.KUSTOMIZATION_FILES}
    problems = [p for rel in directories for p in build_directory(tree, rel, keep=flux_kinds).problems]
    assert all(p.pos is not None and p.pos.path for p in problems), problems
    assert all(p.severity in (Severity.ERROR, Severity.WARNING) for p in problems)
