"""The part of kustomize that decides which Flux objects a directory renders to, in Python.

Discovery follows Flux's Kustomization graph without a kustomize binary, so it renders each
`spec.path` itself: `build_directory` reads a directory's kustomization (or the one Flux
generates, passed in) and does what kustomize v5 does, in kustomize's order. A kustomization
accumulates its `resources` (files, `*List` kinds expanded, and directories built recursively
as kustomizations of their own), then its generators, then its `components` (which work on
everything accumulated so far), then runs its transformers: strategic-merge patches, `patches`,
`namespace`, `namePrefix`/`nameSuffix`, `labels` and `commonLabels`, `commonAnnotations`,
`patchesJson6902`, `replicas`, `images`. Last, at the top only, generated objects take their
hash and the names that `configurations` declare are rewritten. The pieces: ids and targets in
resid.py, objects in resmap.py, the kustomization file in kustfile.py, patches in
kustpatch.py and patch.py, generators in kustgen.py, name references in kustref.py, the other
transformers in kusttransform.py.

What kustomize can do and this cannot (`replacements`, `transformers`, `crds`, `openapi`,
remote resources, ...) is a located warning naming the field, and the build goes on without
it. What kustomize refuses is a located error, and the build goes on with what it can, so one
broken file does not hide the rest.

`keep` restricts which objects the build carries: the others keep their ids (duplicates,
renames, patch targets and deletions still count) but their contents are never patched or
copied, so a large CRD bundle costs one parse per tree. Parsed files and kustomizations are
cached per tree, for the tree's lifetime.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Problem, Problems, Severity, SourcePos, of_severity
from engine.evaluate import kubeyaml, kustgen, kusttransform
from engine.evaluate.kustfile import NEEDS_KUSTOMIZE, REMOTE, KustFile, KustKind, Tree, reach, read_kust
from engine.evaluate.kustpatch import Parsed, Patcher
from engine.evaluate.kustref import NameReference, fix_references, read_configurations
from engine.evaluate.patch import copy_data
from engine.evaluate.render import LOCAL_CONFIG, Located
from engine.evaluate.resid import split_api_version
from engine.evaluate.resmap import Resource, objects_of
from engine.model import Manifest
from engine.rules.yamldoc import YamlSyntaxError

Keep = Callable[[Mapping[str, Any]], bool]
"""Which objects a build carries (an object as read, then as built)."""

FLUX_GROUP_SUFFIX = "toolkit.fluxcd.io"
UNSUPPORTED_FIELDS = ("openapi", "crds", "generators", "transformers", "validators", "replacements",
                      "vars", "buildMetadata", "inventory")
"""Fields that may change objects and that only the real kustomize applies: a warning each."""
_HELM_FIELDS = ("helmCharts", "helmChartInflationGenerator")
_GENERATORS = (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret"))

def flux_kinds(obj: Mapping[str, Any]) -> bool:
    """Whether an object is one of Flux's (its API group ends in `toolkit.fluxcd.io`)."""
    api = obj.get("apiVersion")
    return isinstance(api, str) and split_api_version(api)[0].endswith(FLUX_GROUP_SUFFIX)


@dataclass(frozen=True)
class Rendered:
    """What a directory renders to: the objects kept, in kustomize's FIFO order, and every
    problem met on the way (errors make the render incomplete, warnings approximate)."""

    objects: tuple[Located, ...]
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return of_severity(self.problems, Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return of_severity(self.problems, Severity.WARNING)


def build_directory(tree: Tree, directory: str, *, kustomization: Mapping[str, Any] | None = None,
                    keep: Keep | None = None, where: SourcePos | None = None) -> Rendered:
    """Render the repo-relative `directory` as `kustomize build` would.

    `kustomization` replaces the directory's kustomization file (Flux's generated or overlaid
    one, engine/evaluate/render.py `flux_kustomization`); its paths are relative to
    `directory`. `keep` restricts the objects carried (the result equals kustomize's output
    filtered by it). `where` is where problems about `kustomization` point when no line of
    the directory's file holds the value (default: the directory).
    """
    problems = Problems()
    place = where or SourcePos(tree.display(directory), syntax="flux")
    build = _Build(tree, keep, problems, _cache_of(tree))
    kust = build.kust(directory, place, given=kustomization)
    resources = build.target(kust, (directory,)) if kust is not None else []
    kustgen.add_hashes(resources)
    fix_references(resources, build.references, problems, lambda r: build.place(r, place))
    objects = []
    for res in resources:
        if not res.kept or _local(res.body) or (keep is not None and not keep(res.body)):
            continue
        objects.append(Located(Manifest(_as_output(res.body), res.where()), build.place(res, place),
                               res.file, res.document))
    return Rendered(tuple(objects), tuple(problems.sorted()))


def _as_output(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a built body as kustomize prints it: `metadata` always there, an empty or null
    `metadata.annotations` gone (kustomize strips its own annotations and then the map)."""
    out: dict[str, Any] = copy_data(body)
    meta = out.setdefault("metadata", {})
    if isinstance(meta, dict) and "annotations" in meta and not meta["annotations"]:
        del meta["annotations"]
    return out


def _local(body: Mapping[str, Any]) -> bool:
    meta = body.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    return isinstance(annotations, dict) and annotations.get(LOCAL_CONFIG, "false") != "false"


# Parsing, once per tree ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    """A file's objects (body, document number, line) and its problems."""

    objects: tuple[tuple[Mapping[str, Any], int, int], ...]
    problems: tuple[Problem, ...]


@dataclass
class _Cache:
    files: dict[str, _Parsed] = field(default_factory=dict)
    kusts: dict[str, tuple[KustFile, tuple[Problem, ...]]] = field(default_factory=dict)
    patches: dict[str, Parsed] = field(default_factory=dict)


_CACHES: weakref.WeakKeyDictionary[Any, _Cache] = weakref.WeakKeyDictionary()


def _cache_of(tree: Tree) -> _Cache:
    try:
        return _CACHES.setdefault(tree, _Cache())
    except TypeError:  # a tree that cannot be weakly referenced is parsed per build
        return _Cache()


def _parse_objects(tree: Tree, rel: str) -> _Parsed:
    problems = Problems()
    shown = tree.display(rel)
    text = tree.text(rel, problems)
    if text is None:
        return _Parsed((), tuple(problems.items))
    try:
        docs = kubeyaml.read_documents(shown, text)
    except YamlSyntaxError as err:
        return _Parsed((), (err.problem,))
    found: list[tuple[Mapping[str, Any], int, int]] = []
    for doc in docs:
        bodies, reason = objects_of(doc.value)
        if reason:
            problems.error(f"document {doc.number}: {reason}", SourcePos(shown, doc.line, 1, syntax="flux"))
        found.extend((body, doc.number, doc.line) for body in bodies)
    return _Parsed(tuple(found), tuple(problems.items))


# The build -----------------------------------------------------------------------------------------


def _contains(outer: str, inner: str) -> bool:
    return outer == "" or inner == outer or inner.startswith(outer + "/")


class _Build:
    """One `build_directory` call: the tree, what to keep, where problems go."""

    def __init__(self, tree: Tree, keep: Keep | None, problems: Problems, cache: _Cache) -> None:
        self.tree, self.keep, self.problems, self.cache = tree, keep, problems, cache
        self.patcher = Patcher(tree, problems, cache.patches)
        self.references: list[NameReference] = []

    def kust(self, directory: str, where: SourcePos, *,
             given: Mapping[str, Any] | None = None) -> KustFile | None:
        """A kustomization, read once per tree (a failed read is repeated, so each reference
        to a directory without one gets its own error)."""
        if given is not None:
            return read_kust(self.tree, directory, self.problems, where, given=given)
        cached = self.cache.kusts.get(directory)
        if cached is None:
            found = Problems()
            kust = read_kust(self.tree, directory, found, where)
            self.problems.extend(found.items)
            if kust is not None:
                self.cache.kusts[directory] = (kust, tuple(found.items))
            return kust
        self.problems.extend(cached[1])
        return cached[0]

    def path(self, kust: KustFile, entry: object, pos: SourcePos, what: str) -> str | None:
        rel, why = reach(self.tree, kust.directory, entry)
        if rel is None:
            self.problems.error(f"{what}: {why}", pos)
        return rel

    def place(self, res: Resource, fallback: SourcePos) -> SourcePos:
        if not res.file:
            return fallback
        return SourcePos(self.tree.display(res.file), res.line, 1, syntax="flux")

    def target(self, kust: KustFile, chain: tuple[str, ...],
               into: list[Resource] | None = None) -> list[Resource]:
        """kustomize's accumulateTarget: `into` is the parent's objects for a component."""
        resources = [] if into is None else into
        index = {r.id.key: r for r in resources}
        for entry, pos in kust.located("resources"):
            self.resource(kust, entry, pos, chain, resources, index)
        self.references.extend(read_configurations(self.tree, kust, self.problems))
        for name, kind in _GENERATORS:
            for entry, pos in kust.located(name):
                made = kustgen.generate(self.tree, kust, kind, entry if isinstance(entry, dict) else {},
                                        pos, self.problems)
                if made is not None:
                    behavior = str(entry.get("behavior") or "create")
                    self.fail([kustgen.absorb(resources, made, behavior, name)], pos)
        for entry, pos in kust.located("components"):
            self.component(kust, entry, pos, chain, resources)
        self.transform(kust, resources)
        return resources

    def resource(self, kust: KustFile, entry: object, pos: SourcePos, chain: tuple[str, ...],
                 resources: list[Resource], index: dict[tuple[str, str, str, str], Resource]) -> None:
        if isinstance(entry, str) and REMOTE.search(entry):
            self.problems.warning(f"resources: remote resource '{entry}' {NEEDS_KUSTOMIZE}: its "
                                  "objects are missing", pos)
            return
        rel = self.path(kust, entry, pos, "resources")
        if rel is None:
            return
        if self.tree.is_file(rel):
            self.append(resources, index, self.read(rel), pos)
        elif self.tree.is_dir(rel):
            sub = self.directory(rel, pos, chain, "resources")
            if sub is None:
                return
            if sub.kind is KustKind.COMPONENT:
                self.problems.error(f"resources: '{entry}' is a Component: list it under "
                                    "components (kustomize: expected kind != 'Component')", pos)
                return
            self.append(resources, index, self.target(sub, (*chain, rel)), pos)
        else:
            self.problems.error(f"resources: '{entry}' is neither a file nor a directory in the "
                                "repository", pos)

    def component(self, kust: KustFile, entry: object, pos: SourcePos, chain: tuple[str, ...],
                  resources: list[Resource]) -> None:
        rel = self.path(kust, entry, pos, "components")
        if rel is None:
            return
        if not self.tree.is_dir(rel):
            self.problems.error(f"components: '{entry}' is not a directory in the repository "
                                "(kustomize: must build at directory)", pos)
            return
        sub = self.directory(rel, pos, chain, "components")
        if sub is None:
            return
        if sub.kind is not KustKind.COMPONENT:
            self.problems.error(f"components: '{entry}' is a {sub.kind.value}, not a Component "
                                "(kustomize: expected kind 'Component')", pos)
            return
        self.target(sub, (*chain, rel), resources)

    def directory(self, rel: str, pos: SourcePos, chain: tuple[str, ...], what: str) -> KustFile | None:
        visited = next((c for c in chain if _contains(rel, c)), None)
        if visited is not None:
            self.problems.error(f"{what}: '{self.tree.display(rel)}' contains "
                                f"'{self.tree.display(visited)}', which is being built: a cycle", pos)
            return None
        return self.kust(rel, pos)

    def read(self, rel: str) -> list[Resource]:
        parsed = self.cache.files.get(rel)
        if parsed is None:
            parsed = self.cache.files[rel] = _parse_objects(self.tree, rel)
        self.problems.extend(parsed.problems)
        return [Resource(body, rel, number, line, self.keep is None or self.keep(body))
                for body, number, line in parsed.objects]

    def append(self, resources: list[Resource], index: dict[tuple[str, str, str, str], Resource],
               new: list[Resource], pos: SourcePos) -> None:
        """Add objects, refusing an id that is already there (kustomize's Append); `index`
        holds the ids of `resources`."""
        for res in new:
            first = index.get(res.id.key)
            if first is not None:
                self.problems.error(f"may not add resource with an already registered id: {res.id} "
                                    f"({res.where()}; first from {first.where()})", self.place(res, pos))
                continue
            index[res.id.key] = res
            resources.append(res)

    def transform(self, kust: KustFile, resources: list[Resource]) -> None:
        """The builtin transformers, in kustomize's order."""
        for entry, pos in kust.located("patchesStrategicMerge"):
            self.patcher.strategic_merge_entry(kust, entry, pos, resources)
        for entry, pos in kust.located("patches"):
            self.patcher.patch_entry(kust, entry if isinstance(entry, dict) else {}, pos, resources)
        self.fail(kusttransform.set_namespace(resources, kust.string("namespace")), kust.pos("namespace"))
        kusttransform.add_affixes(resources, kust.string("namePrefix"), kust.string("nameSuffix"))
        for entry, pos in kust.located("labels"):
            entry = entry if isinstance(entry, dict) else {}
            if entry.get("fields"):
                self.problems.warning(f"labels: fields (where else to put the labels) {NEEDS_KUSTOMIZE}", pos)
            pairs = {k: v or "" for k, v in (entry.get("pairs") or {}).items()}
            self.fail(kusttransform.add_metadata(resources, "labels", pairs), pos)
        self.fail(kusttransform.add_metadata(resources, "labels", kust.string_map("commonLabels")),
                  kust.pos("commonLabels"))
        self.fail(kusttransform.add_metadata(resources, "annotations", kust.string_map("commonAnnotations")),
                  kust.pos("commonAnnotations"))
        for entry, pos in kust.located("patchesJson6902"):
            self.patcher.json6902_entry(kust, entry if isinstance(entry, dict) else {}, pos, resources)
        for entry, pos in kust.located("replicas"):
            entry = entry if isinstance(entry, dict) else {}
            name, count = entry.get("name") or "", entry.get("count") or 0
            self.fail(kusttransform.set_replicas(resources, name, count), pos)
        for entry, pos in kust.located("images"):
            try:
                rule = kusttransform.ImageRule(entry if isinstance(entry, dict) else {})
            except kusttransform.ImageError as err:
                self.problems.error(str(err), pos)
                continue
            self.fail(kusttransform.set_images(resources, rule), pos)
        for name in UNSUPPORTED_FIELDS:
            if kust.fields.get(name):
                self.problems.warning(f"{name} {NEEDS_KUSTOMIZE}: the objects are rendered without it",
                                      kust.pos(name))
        for name in _HELM_FIELDS:
            if kust.fields.get(name):
                self.problems.error(f"{name}: kustomize inflates Helm charts only with --enable-helm, "
                                    "which Flux does not pass (use a HelmRelease)", kust.pos(name))

    def fail(self, errors: list[str], pos: SourcePos) -> None:
        for error in errors:
            if error:
                self.problems.error(error, pos)


__all__ = ["FLUX_GROUP_SUFFIX", "NEEDS_KUSTOMIZE", "UNSUPPORTED_FIELDS", "Keep", "Rendered", "Tree",
           "build_directory", "flux_kinds"]
