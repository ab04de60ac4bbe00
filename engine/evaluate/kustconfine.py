"""What a kustomization reads stays in the repository: the check before the real kustomize runs.

kustomize-controller builds with no per-directory load restriction but on a file system
confined to the source's root (fluxcd/pkg/kustomize's secure file system), so a kustomization
may use `../base` yet never `/etc/passwd`, `../../outside` past the root, or a symbolic link
that leaves the tree. gitward's own kustomize subset refuses these as it reads; the real
kustomize runs over a copy of the tree with no such confinement, so every path a reachable
kustomization names is checked here first, and each one that leaves the tree is a located error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from engine.errors import Problem, Problems, SourcePos
from engine.evaluate.kustfile import REMOTE, KustFile, Tree, reach, read_kust

_PATH_LISTS = ("resources", "components", "crds", "configurations", "generators", "transformers",
               "validators", "patchesStrategicMerge")
"""Fields whose items are paths (an item holding a line break is inline YAML, not a path)."""
_ENTERED = ("resources", "components")
"""Fields whose directories are kustomizations of their own, checked in turn."""
_PATCH_LISTS = ("patches", "patchesJson6902")
_GENERATORS = ("configMapGenerator", "secretGenerator")


def outside_reads(tree: Tree, directory: str, *, kustomization: Mapping[str, Any] | None = None,
                  where: SourcePos | None = None) -> tuple[Problem, ...]:
    """Every path that the kustomization of `directory` (or `kustomization`, Flux's generated or
    overlaid one), and each kustomization it reaches, names outside the repository."""
    problems = Problems()
    place = where or SourcePos(tree.display(directory), syntax="flux")
    pending: list[tuple[str, Mapping[str, Any] | None]] = [(directory, kustomization)]
    seen: set[str] = set()
    while pending:
        current, given = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        kust = read_kust(tree, current, Problems(), place, given=given)
        if kust is None:
            continue
        for name, entry, pos in _paths(kust):
            rel, why = reach(tree, current, entry)
            if rel is None:
                problems.error(f"{name}: {why}", pos, code="outside")
            elif name in _ENTERED and tree.is_dir(rel):
                pending.append((rel, None))
    return tuple(problems.sorted())


def _paths(kust: KustFile) -> Iterator[tuple[str, str, SourcePos]]:
    """(field, path as written, where) of every local path the kustomization names."""
    for name in _PATH_LISTS:
        for entry, pos in kust.located(name):
            if isinstance(entry, str) and entry and "\n" not in entry and not REMOTE.search(entry):
                yield name, entry, pos
    for name in _PATCH_LISTS:
        for entry, pos in kust.located(name):
            if isinstance(entry, dict) and isinstance(entry.get("path"), str) and entry["path"]:
                yield name, entry["path"], pos
    for name in _GENERATORS:
        for entry, pos in kust.located(name):
            if not isinstance(entry, dict):
                continue
            files = [f.partition("=")[2] or f for f in entry.get("files") or () if isinstance(f, str)]
            envs = [e for e in [*(entry.get("envs") or ()), entry.get("env")] if isinstance(e, str)]
            yield from ((name, path, pos) for path in [*files, *envs] if path)
