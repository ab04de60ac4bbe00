"""Which files of a repository count: Flux's default exclusions and `.sourceignore` files.

source-controller leaves out version-control files, CI configuration, images and archives,
then applies `.sourceignore` files (gitignore syntax; one at the root and any in
sub-directories, each relative to its own directory) and the GitRepository's `spec.ignore`.
gitward applies the same rules everywhere it walks a checkout: loading rules, finding markers,
rendering manifests. Matching is pathspec's gitignore implementation, not our own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pathspec

IGNORE_FILE = ".sourceignore"

FLUX_DEFAULT_EXCLUSIONS: tuple[str, ...] = (
    # version control
    ".git/", ".gitignore", ".gitmodules", ".gitattributes",
    # images and archives
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
    # CI configuration
    ".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml",
    "cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml",
    # tooling
    "**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml",
)


def _spec(lines: list[str]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(lines)


@dataclass(frozen=True)
class IgnoreRules:
    """Ignore specs, each anchored at a directory relative to the repository root ("" = root)."""

    specs: tuple[tuple[str, pathspec.GitIgnoreSpec], ...] = field(default_factory=tuple)

    @staticmethod
    def defaults(extra: str = "") -> "IgnoreRules":
        """Flux's default exclusions plus a GitRepository's `spec.ignore` text."""
        lines = [*FLUX_DEFAULT_EXCLUSIONS, *extra.splitlines()]
        return IgnoreRules((("", _spec(lines)),))

    def with_file(self, directory: str, text: str) -> "IgnoreRules":
        return IgnoreRules((*self.specs, (directory, _spec(text.splitlines()))))

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Whether a repo-relative POSIX path is left out (later specs may re-include)."""
        verdict = False
        for base, spec in self.specs:
            if base and not (rel == base or rel.startswith(base + "/")):
                continue
            local = rel[len(base) + 1:] if base else rel
            candidate = local + "/" if is_dir else local
            result = spec.check_file(candidate)
            if result.include is not None:
                verdict = result.include
        return verdict


def walk_repo(root: Path, rules: IgnoreRules | None = None) -> Iterator[tuple[str, Path]]:
    """(repo-relative POSIX path, path) of every file that counts, in lexical order."""
    base_rules = rules or IgnoreRules.defaults()
    yield from _walk(root, "", base_rules)


def _walk(root: Path, rel_dir: str, rules: IgnoreRules) -> Iterator[tuple[str, Path]]:
    directory = root / rel_dir if rel_dir else root
    ignore_file = directory / IGNORE_FILE
    if ignore_file.is_file():
        try:
            rules = rules.with_file(rel_dir, ignore_file.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            pass
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        if entry.is_dir(follow_symlinks=False):
            if not rules.ignored(rel, is_dir=True):
                yield from _walk(root, rel, rules)
        elif entry.is_file() and not rules.ignored(rel):
            yield rel, Path(entry.path)
