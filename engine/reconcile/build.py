"""Render a Kustomization's path from a checkout, offline: `gitward build kustomization`.

The walk honours the source's ignore rules (Flux's default exclusions, `.sourceignore`, the
source's `spec.ignore`), since kustomize-controller only ever sees the artifact they
leave. A tree of plain manifests is rendered in Python (engine/evaluate/render.py, no
process). A tree that needs kustomize (a kustomization file anywhere under the path, or an
overlay Flux applies through kustomize) is copied to a temporary directory, the kustomization
Flux would build is written there, and the real kustomize runs once over it; the checkout is
never written to. Either way Flux's post-build steps follow: substitution, labels, metadata.

`postBuild.substituteFrom` reads ConfigMaps and Secrets from the cluster. The cluster paths
(reconcile, run, diff, watch --cluster/--apply) pass a `VariablesReader` that reads them from
the Kustomization's namespace; an offline build has none, and skips them with a warning (as
`flux build --dry-run` does). SOPS decryption and Helm are out of scope: a HelmRelease renders
as the object it is.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import GitwardError, Problem, Problems, RuleError, Severity, SourcePos, UserError
from engine.evaluate import postbuild, render
from engine.evaluate.kustconfine import outside_reads
from engine.evaluate.kustfile import known_fields
from engine.evaluate.postbuild import Fetched
from engine.evaluate.render import DocumentIndex, Located
from engine.model import GitSource, Kustomization, Manifest, ObjectKey, RuleSet, Source, SubstituteFrom
from engine.observe.kustomize import KustomizeFailed, Kustomizer, build, find_kustomizer
from engine.rules.confine import path_escape
from engine.rules.load import display_path, read_text
from engine.rules.tree import RepoTree
from engine.rules.yamldoc import YamlSyntaxError

_REGISTERED = re.compile(
    r"already registered id: (?P<kind>[^.\s]+)\.\S*?/(?P<name>\S+)\.(?P<ns>[^.\s'\"]+)")
"""kustomize's duplicate error: `Kind.version.group/name.namespace`."""

VariablesReader = Callable[[SubstituteFrom, str], dict[str, str] | None]
"""Reads a `substituteFrom` object in a namespace: its variables (engine/evaluate/postbuild.py
`live_variables`), or None when it does not exist. Raises GitwardError when it cannot be read
(forbidden, unreachable): the build then fails at the reference."""


@dataclass(frozen=True)
class BuildResult:
    """A Kustomization's rendered objects, warnings about the build, and how it was built."""

    kustomization: Kustomization
    manifests: tuple[Manifest, ...]
    warnings: tuple[Problem, ...]
    kustomize: str = ""
    """The kustomize command that ran, or "" when the tree was rendered in Python."""


def kustomization_path(root: Path, ks: Kustomization) -> str:
    """`spec.path` as a repo-relative POSIX path ("" for the root); it must stay in the repo."""
    rel = posixpath.normpath(ks.path.replace("\\", "/").strip("/") or ".")
    if rel == ".":
        rel = ""
    escape = path_escape(root, rel)
    if escape is not None:
        raise RuleError([Problem(Severity.ERROR, f"Kustomization {ks.key.ref}: spec.path {ks.path!r} "
                                 f"{escape}", ks.origin)])
    if not (root / rel).is_dir():
        raise UserError(f"Kustomization {ks.key.ref}: spec.path {ks.path or '.'!r} is not a "
                        f"directory in {display_path(root)}")
    return rel


def checkout_source(rules: RuleSet, ks: Kustomization) -> GitSource | None:
    """The GitRepository a Kustomization names, whose ignore rules a render of its checkout
    follows (None for another kind of source, or one the rules do not hold)."""
    ref = ks.source_ref
    source = rules.get(ObjectKey(GitSource.KIND, ref.namespace or ks.namespace, ref.name))
    return source if isinstance(source, GitSource) else None


def build_kustomization(root: Path, ks: Kustomization, *, source: Source | None = None,
                        kustomizer: Kustomizer | None = None,
                        variables_from: VariablesReader | None = None) -> BuildResult:
    """Every object the Kustomization renders from the checkout at `root`, as Flux would apply it.

    With `variables_from`, `postBuild.substituteFrom` objects are read through it and their
    variables substituted; without, they are skipped with a warning (offline).

    Raises RuleError (located problems in manifests, a `substituteFrom` object that is missing
    or unreadable), KustomizeFailed (kustomize's own error, with the directory named) or
    KustomizeNotFound.
    """
    rel = kustomization_path(root, ks)
    tree = RepoTree(root, source.ignore if source else "")
    files = {name: path for name in tree.files if (path := tree.path(name)) is not None}
    order = list(files)
    problems = Problems()

    shown: dict[str, str] = {}

    def show(name: str) -> str:
        if name not in shown:
            shown[name] = display_path(root / name) if name else display_path(root)
        return shown[name]

    root_file = render.kustomization_in(files, rel)
    resources = [] if root_file else render.generated_resources(order, rel)
    plain: list[Located] = []
    for name in resources:
        if name in files:
            text = read_text(files[name], show(name), problems)
            if text is not None:
                plain.extend(render.read_manifests(name, show(name), text, problems))
    problems.raise_if_errors()

    warnings: list[Problem] = []
    command = ""
    if root_file or any(name not in files for name in resources) or render.needs_kustomize(ks):
        run = _KustomizeRun(tree, rel, files, show, kustomizer)
        items = run.build(ks, root_file, resources, plain, problems)
        warnings.extend(run.warnings)
        command = run.kustomizer.name
    else:
        items = plain
    fetched: list[Fetched] | None = None
    if variables_from is None:
        for ref in ks.substitute_from:
            warnings.append(Problem(Severity.WARNING, f"postBuild.substituteFrom {ref.kind}/{ref.name} "
                                    "is read from the cluster: not applied by an offline build",
                                    ref.origin))
    elif ks.substitute_from and postbuild.wants_substitution(items):
        fetched = _read_variables(ks, variables_from, problems)
    done = postbuild.finish(items, ks, problems, fetched)
    problems.raise_if_errors()
    return BuildResult(ks, tuple(item.manifest for item in done), tuple(warnings), command)


def _read_variables(ks: Kustomization, read: VariablesReader, problems: Problems) -> list[Fetched]:
    """Each `substituteFrom` object of `ks`, read from its namespace; a read that fails is an
    error at the reference, worded as kustomize-controller words it."""
    fetched: list[Fetched] = []
    for ref in ks.substitute_from:
        try:
            fetched.append((ref, read(ref, ks.namespace)))
        except GitwardError as err:
            problems.error(f"substitute from '{ref.kind}/{ref.name}' error: {err}", ref.origin)
    return fetched


class _KustomizeRun:
    """One kustomize build of the path, over a copy of the checkout's files that count."""

    def __init__(self, tree: RepoTree, rel: str, files: dict[str, Path], show: Callable[[str], str],
                 kustomizer: Kustomizer | None) -> None:
        self.tree, self.root, self.rel, self.files, self.show = tree, tree.root, rel, files, show
        self.kustomizer = kustomizer or find_kustomizer()
        self.warnings: list[Problem] = []
        self.indexes: dict[str, DocumentIndex | None] = {}

    def build(self, ks: Kustomization, root_file: str | None, resources: list[str],
              plain: list[Located], problems: Problems) -> list[Located]:
        existing = None
        if root_file is not None:
            text = read_text(self.files[root_file], self.show(root_file), problems)
            problems.raise_if_errors()
            try:
                existing = known_fields(render.read_kustomization(self.show(root_file), text or ""))
            except YamlSyntaxError as err:
                problems.extend([err.problem])
                problems.raise_if_errors()
        self.indexes.update(render.indexes_of(plain))
        relative = [f"./{posixpath.relpath(name, self.rel or '.')}" for name in resources]
        kus, strip_origin = render.with_build_options(render.flux_kustomization(existing, relative, ks))
        problems.extend(outside_reads(self.tree, self.rel, kustomization=kus, where=ks.origin))
        problems.raise_if_errors()
        target = root_file or posixpath.join(self.rel, "kustomization.yaml")
        with tempfile.TemporaryDirectory(prefix="gitward-build-") as temp:
            copy = Path(temp)
            for name, path in self.files.items():
                dest = copy / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
            (copy / target).write_text(render.dump_kustomization(kus), encoding="utf-8")
            shown = self.show(self.rel)
            try:
                built = build(copy / self.rel, shown=shown, kustomizer=self.kustomizer)
            except KustomizeFailed as err:
                raise KustomizeFailed(shown, self._explain(err.detail, copy, plain)) from None
        self.warnings.extend(Problem(Severity.WARNING, f"kustomize: {w}", SourcePos(shown))
                             for w in built.warnings)
        return render.read_built(built.yaml, self.rel, f"{shown} (kustomize output)", problems,
                                 strip_origin=strip_origin, show=self.show, index=self._index)

    def _index(self, name: str) -> DocumentIndex | None:
        """Where the objects of a manifest file start, read once per build."""
        if name not in self.indexes:
            path = self.files.get(name)
            index = None
            if path is not None and name.endswith(render.MANIFEST_SUFFIXES):
                try:
                    index = render.document_index(path.read_text(encoding="utf-8-sig",
                                                                 errors="replace"))
                except OSError:
                    index = None
            self.indexes[name] = index
        return self.indexes[name]

    def _explain(self, detail: str, copy: Path, plain: list[Located]) -> str:
        """kustomize's message with the checkout's paths, and where a duplicate is defined."""
        shown_root = display_path(self.root)
        for prefix in sorted({str(copy.resolve()), str(copy)}, key=len, reverse=True):
            detail = detail.replace(prefix + "/", "" if shown_root == "." else shown_root + "/")
            detail = detail.replace(prefix, shown_root)
        match = _REGISTERED.search(detail)
        if match:
            origins = [item.manifest.origin for item in plain
                       if item.manifest.kind == match["kind"] and item.manifest.name == match["name"]]
            if origins:
                detail += f"\n  {match['kind']}/{match['name']} is defined in {', '.join(origins)}"
        return detail
