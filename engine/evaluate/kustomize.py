"""The part of kustomize that decides which Flux objects a directory renders to, in Python.

Discovery follows Flux's Kustomization graph without a kustomize binary, so it renders each
`spec.path` itself: `build_directory` reads a directory's kustomization (or the one Flux
generates, passed in) and does what kustomize v5 does, in kustomize's order. A kustomization
accumulates its `resources` (files, `*List` kinds expanded, and directories built recursively
as kustomizations of their own), then its generators, then its `components` (which work on
everything accumulated so far), then runs its transformers: strategic-merge patches, `patches`,
`namespace`, `namePrefix`/`nameSuffix`, `labels` and `commonLabels`, `commonAnnotations`,
`patchesJson6902`, `replicas`, `images`. Patch semantics are in engine/evaluate/patch.py, ids
and targets in engine/evaluate/resid.py, the transformers in engine/evaluate/kusttransform.py.

What kustomize can do and this cannot (`replacements`, `transformers`, `configurations`,
`crds`, `openapi`, remote resources, ...) is a located warning naming the field, and the build
goes on without it. What kustomize refuses is a located error, and the build goes on with what
it can, so one broken file does not hide the rest.

`keep` restricts which objects the build carries: the others keep their ids (duplicates,
renames, patch targets and deletions still count) but their contents are never patched or
copied, so a large CRD bundle costs one parse per tree. Parsed files and kustomizations are
cached per tree, for the tree's lifetime.
"""

from __future__ import annotations

import json
import posixpath
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Problem, Problems, Severity, SourcePos
from engine.evaluate import kubeyaml, kusttransform
from engine.evaluate.kustfile import KustFile, KustKind, Tree, read_kust
from engine.evaluate.patch import Deleted, PatchError, apply_json_patch, copy_data, merge_object
from engine.evaluate.render import LOCAL_CONFIG, Located
from engine.evaluate.resid import ResId, SelectorError, Target, res_id, split_api_version
from engine.evaluate.resmap import Resource, find_by_any_id, select
from engine.model import Manifest
from engine.rules.yamldoc import YamlSyntaxError

Keep = Callable[[Mapping[str, Any]], bool]
"""Which objects a build carries (an object as read, then as built)."""

FLUX_GROUP_SUFFIX = "toolkit.fluxcd.io"
NEEDS_KUSTOMIZE = "cannot be applied without kustomize (install kubectl or kustomize)"
UNSUPPORTED_FIELDS = ("openapi", "crds", "configurations", "generators", "transformers",
                      "validators", "replacements", "vars", "buildMetadata", "inventory")
"""Fields that may change objects and that only the real kustomize applies: a warning each."""
_HELM_FIELDS = ("helmCharts", "helmChartInflationGenerator")
_GENERATORS = (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret"))
_REMOTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git@|git::|(?:github|gitlab|bitbucket)\.(?:com|org)/)"
                     r"|\?(?:ref|version|timeout|submodules)=")


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
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)


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
    if kust is not None and kust.located("vars"):
        problems.warning(f"vars {NEEDS_KUSTOMIZE}: its $(VAR) references are left as written",
                         kust.pos("vars"))
    objects = []
    for res in resources:
        if not res.kept or res.generated or _local(res.body) or (keep is not None and not keep(res.body)):
            continue
        shown = tree.display(res.file)
        objects.append(Located(Manifest(_as_output(res.body), res.where()),
                               SourcePos(shown, res.line, 1, syntax="flux"), res.file, res.document))
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
    kusts: dict[str, tuple[KustFile | None, tuple[Problem, ...]]] = field(default_factory=dict)
    patches: dict[str, tuple[str, Any]] = field(default_factory=dict)
    """Patch text -> its kind and parsed form (see `_classify_patch`)."""


_CACHES: weakref.WeakKeyDictionary[Any, _Cache] = weakref.WeakKeyDictionary()


def _cache_of(tree: Tree) -> _Cache:
    try:
        return _CACHES.setdefault(tree, _Cache())
    except TypeError:  # a tree that cannot be weakly referenced is parsed per build
        return _Cache()


def objects_of(value: Any) -> tuple[list[dict[str, Any]], str]:
    """The objects one YAML document holds as kustomize reads them (`*List` kinds with items
    expanded, recursively), or a reason it refuses the document."""
    if value is None or value == {}:
        return [], ""
    if not isinstance(value, dict):
        return [], "not a Kubernetes object (kustomize: missing Resource metadata)"
    kind = value.get("kind")
    if kind in (None, ""):
        return [], "missing kind"
    if isinstance(kind, str) and kind.endswith("List") and "items" in value:
        items = value["items"]
        if items is None:
            return [], ""
        if not isinstance(items, list):
            return [], f"{kind}.items must be a list"
        found: list[dict[str, Any]] = []
        for item in items:
            more, reason = objects_of(item) if isinstance(item, dict) else ([], "a list item is not an object")
            if reason:
                return [], f"{kind}.items: {reason}"
            found.extend(more)
        return found, ""
    meta = value.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if name in (None, "") and not (isinstance(kind, str) and kind.endswith("List")):
        return [], "missing metadata.name"
    return [value], ""


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

    def kust(self, directory: str, where: SourcePos, *, given: Mapping[str, Any] | None = None) -> KustFile | None:
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
        """A path written in `kust`, repo-relative; None (with an error) when it is not a
        relative path that stays in the repository."""
        if not isinstance(entry, str) or not entry:
            self.problems.error(f"{what}: an empty path", pos)
            return None
        if entry.startswith("/"):
            self.problems.error(f"{what}: '{entry}' is an absolute path: the repository is all "
                                "a build may read", pos)
            return None
        rel = posixpath.normpath(posixpath.join(kust.directory, entry))
        if rel == ".":
            return ""
        if rel == ".." or rel.startswith("../"):
            self.problems.error(f"{what}: '{entry}' is outside the repository", pos)
            return None
        return rel

    def target(self, kust: KustFile, chain: tuple[str, ...],
               into: list[Resource] | None = None) -> list[Resource]:
        """kustomize's accumulateTarget: `into` is the parent's objects for a component."""
        resources = [] if into is None else into
        for entry, pos in kust.located("resources"):
            self.resource(kust, entry, pos, chain, resources)
        self.generators(kust, resources)
        for entry, pos in kust.located("components"):
            self.component(kust, entry, pos, chain, resources)
        self.transform(kust, resources)
        return resources

    def resource(self, kust: KustFile, entry: object, pos: SourcePos, chain: tuple[str, ...],
                 resources: list[Resource]) -> None:
        if isinstance(entry, str) and _REMOTE.search(entry):
            self.problems.warning(f"resources: remote resource '{entry}' {NEEDS_KUSTOMIZE}: its "
                                  "objects are missing", pos)
            return
        rel = self.path(kust, entry, pos, "resources")
        if rel is None:
            return
        if self.tree.is_file(rel):
            self.append(resources, self.read(rel), pos)
        elif self.tree.is_dir(rel):
            sub = self.directory(rel, pos, chain, "resources")
            if sub is None:
                return
            if sub.kind is KustKind.COMPONENT:
                self.problems.error(f"resources: '{entry}' is a Component: list it under "
                                    "components (kustomize: expected kind != 'Component')", pos)
                return
            self.append(resources, self.target(sub, (*chain, rel)), pos)
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

    def append(self, resources: list[Resource], new: list[Resource], pos: SourcePos) -> None:
        """Add objects, refusing an id that is already there (kustomize's Append)."""
        index = {r.id.key: r for r in resources}
        for res in new:
            first = index.get(res.id.key)
            if first is not None:
                self.problems.error(f"may not add resource with an already registered id: {res.id} "
                                    f"({res.where()}; first from {first.where()})", self.place(res, pos))
                continue
            index[res.id.key] = res
            resources.append(res)

    def place(self, res: Resource, fallback: SourcePos) -> SourcePos:
        if not res.file:
            return fallback
        return SourcePos(self.tree.display(res.file), res.line, 1, syntax="flux")

    # generators: ids only ------------------------------------------------------------------

    def generators(self, kust: KustFile, resources: list[Resource]) -> None:
        for name, kind in _GENERATORS:
            for entry, pos in kust.located(name):
                self.generated(kust, name, kind, entry if isinstance(entry, dict) else {}, pos, resources)

    def generated(self, kust: KustFile, field_name: str, kind: str, entry: Mapping[str, Any],
                  pos: SourcePos, resources: list[Resource]) -> None:
        """A generated ConfigMap or Secret: its id joins the build, its contents are never
        made (they are no Flux object), so its source files are only checked to exist."""
        name = entry.get("name")
        if not name:
            self.problems.error(f"{field_name}: a {kind.lower()} must have a name", pos)
            return
        for source in [*(entry.get("files") or []), *(entry.get("envs") or []), entry.get("env") or ""]:
            path = source.split("=", 1)[-1] if isinstance(source, str) else ""
            rel = self.path(kust, path, pos, field_name) if path else None
            if path and rel is not None and not (self.tree.is_file(rel) or self.tree.is_dir(rel)):
                self.problems.error(f"{field_name}: {name}: '{path}' is not a file in the repository", pos)
        meta = {"name": name, **({"namespace": entry["namespace"]} if entry.get("namespace") else {})}
        body = {"apiVersion": "v1", "kind": kind, "metadata": meta}
        if self.keep is None or self.keep(body):
            self.problems.warning(f"{field_name}: {kind} {name} is generated by kustomize and not "
                                  "rendered here", pos)
        res = Resource(body, "", 0, 0, False, generated=True)
        behavior = entry.get("behavior") or "create"
        matches = find_by_any_id(resources, res.id)
        if not matches and behavior in ("merge", "replace"):
            self.problems.error(f"{field_name}: {res.id} does not exist; cannot {behavior} it", pos)
        elif not matches:
            resources.append(res)
        elif len(matches) > 1:
            self.problems.error(f"{field_name}: several objects could take {res.id}", pos)
        elif behavior not in ("merge", "replace"):
            self.problems.error(f"{field_name}: {res.id} already exists ({matches[0].where()}); "
                                "behavior must be merge or replace", pos)
        else:
            resources[resources.index(matches[0])] = res

    # transformers ----------------------------------------------------------------------------

    def transform(self, kust: KustFile, resources: list[Resource]) -> None:
        for entry, pos in kust.located("patchesStrategicMerge"):
            self.strategic_merge_entry(kust, entry, pos, resources)
        for entry, pos in kust.located("patches"):
            self.patch_entry(kust, entry if isinstance(entry, dict) else {}, pos, resources)
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
            self.json6902_entry(kust, entry if isinstance(entry, dict) else {}, pos, resources)
        for entry, pos in kust.located("replicas"):
            entry = entry if isinstance(entry, dict) else {}
            self.fail(kusttransform.set_replicas(resources, entry.get("name") or "", entry.get("count") or 0), pos)
        for entry, pos in kust.located("images"):
            try:
                rule = kusttransform.ImageRule(entry if isinstance(entry, dict) else {})
            except kusttransform.ImageError as err:
                self.problems.error(str(err), pos)
                continue
            self.fail(kusttransform.set_images(resources, rule), pos)
        for name in UNSUPPORTED_FIELDS:
            if name != "vars" and kust.fields.get(name):
                self.problems.warning(f"{name} {NEEDS_KUSTOMIZE}: the objects are rendered without it",
                                      kust.pos(name))
        for name in _HELM_FIELDS:
            if kust.fields.get(name):
                self.problems.error(f"{name}: kustomize inflates Helm charts only with --enable-helm, "
                                    "which Flux does not pass (use a HelmRelease)", kust.pos(name))

    def fail(self, errors: list[str], pos: SourcePos) -> None:
        for error in errors:
            self.problems.error(error, pos)

    def patch_text(self, kust: KustFile, entry: Mapping[str, Any], pos: SourcePos, what: str,
                   inline_key: str) -> str | None:
        inline, path = (entry.get(inline_key) or "").strip(), entry.get("path") or ""
        if not inline and not path:
            self.problems.error(f"{what}: must specify one of patch and path", pos)
            return None
        if inline and path:
            self.problems.error(f"{what}: patch and path can't be set at the same time", pos)
            return None
        if inline:
            return str(inline)
        rel = self.path(kust, path, pos, what)
        text = self.tree.text(rel, self.problems) if rel is not None and self.tree.is_file(rel) else None
        if text is None and rel is not None:
            self.problems.error(f"{what}: failed to get the patch file from path '{path}'", pos)
        return text

    def parsed_patch(self, text: str) -> tuple[str, Any]:
        """("smp", objects) or ("json", operations), or ("error", message): a strategic-merge
        patch is YAML objects, a JSON patch a list of operations (YAML or JSON)."""
        if text not in self.cache.patches:
            self.cache.patches[text] = _classify_patch(text)
        return self.cache.patches[text]

    def patch_entry(self, kust: KustFile, entry: Mapping[str, Any], pos: SourcePos,
                    resources: list[Resource]) -> None:
        text = self.patch_text(kust, entry, pos, "patches", "patch")
        if text is None:
            return
        kind, patch = self.parsed_patch(text)
        if kind == "error":
            self.problems.error(f"patches: {patch}", pos)
            return
        try:
            target = Target.of(entry["target"]) if entry.get("target") else None
        except SelectorError as err:
            self.problems.error(f"patches: target: {err}", pos)
            return
        options = entry.get("options") or {}
        if kind == "json":
            if target is None:
                self.problems.error("patches: must specify a target for a JSON patch", pos)
                return
            for res in select(resources, target):
                self.apply_json(res, patch, pos, remember=True)
            return
        if target is None:
            for body in patch:
                self.untargeted(body, resources, pos, "patches", options)
            return
        if len(patch) > 1:
            self.problems.error("patches: several strategic-merge patches in one entry may not "
                                "have a target", pos)
            return
        for res in select(resources, target):
            self.apply_smp(res, patch[0], resources, pos, options)

    def strategic_merge_entry(self, kust: KustFile, entry: object, pos: SourcePos,
                              resources: list[Resource]) -> None:
        """A `patchesStrategicMerge` item: inline objects, else a file holding them."""
        text = entry if isinstance(entry, str) else ""
        kind, patch = self.parsed_patch(text)
        if kind != "smp" or not patch:
            rel = self.path(kust, text, pos, "patchesStrategicMerge")
            if rel is None:
                return
            loaded = self.tree.text(rel, self.problems) if self.tree.is_file(rel) else None
            if loaded is None:
                self.problems.error(f"patchesStrategicMerge: '{text}' is not a file in the repository", pos)
                return
            kind, patch = self.parsed_patch(loaded)
            if kind != "smp":
                self.problems.error(f"patchesStrategicMerge: {text}: "
                                    f"{patch if kind == 'error' else 'not a strategic-merge patch'}", pos)
                return
        for body in patch:
            self.untargeted(body, resources, pos, "patchesStrategicMerge", {})

    def json6902_entry(self, kust: KustFile, entry: Mapping[str, Any], pos: SourcePos,
                       resources: list[Resource]) -> None:
        target_fields = entry.get("target") or {}
        if not target_fields.get("name"):
            self.problems.error("patchesJson6902: must specify the target name", pos)
            return
        text = self.patch_text(kust, entry, pos, "patchesJson6902", "patch")
        if text is None:
            return
        kind, patch = self.parsed_patch(text)
        if kind != "json" or not patch:
            self.problems.error(f"patchesJson6902: not a JSON patch: {patch if kind == 'error' else text!r}", pos)
            return
        try:
            target = Target.of(target_fields)
        except SelectorError as err:
            self.problems.error(f"patchesJson6902: target: {err}", pos)
            return
        for res in select(resources, target):
            self.apply_json(res, patch, pos, remember=False)

    def untargeted(self, patch: Mapping[str, Any], resources: list[Resource], pos: SourcePos,
                   what: str, options: Mapping[str, Any]) -> None:
        """A strategic-merge patch without a target: it applies to the one object that has or
        had the patch's own id."""
        wanted = res_id(patch)
        found = find_by_any_id(resources, wanted)
        if len(found) != 1:
            many = "multiple matches" if found else "no matches"
            self.problems.error(f"{what}: no resource matches strategic merge patch {wanted} "
                                f"({many} for its id)", pos)
            return
        self.apply_smp(found[0], patch, resources, pos, options)

    def apply_smp(self, res: Resource, patch: Mapping[str, Any], resources: list[Resource],
                  pos: SourcePos, options: Mapping[str, Any]) -> None:
        if not res.kept:
            if patch.get("$patch") == "delete":
                resources.remove(res)
            return
        meta = res.metadata()
        kind, name, namespace = res.body.get("kind"), meta.get("name"), meta.get("namespace")
        rename, rekind = bool(options.get("allowNameChange")), bool(options.get("allowKindChange"))
        if rename or rekind:
            res.remember_id()
        api = res.body.get("apiVersion")
        patch = {**patch, "apiVersion": api} if api is not None else {k: v for k, v in patch.items() if k != "apiVersion"}
        try:
            merged = merge_object(res.body, patch)
        except PatchError as err:
            self.problems.error(f"{err} (patching {res.id}, {res.where()})", pos)
            return
        if isinstance(merged, Deleted):
            resources.remove(res)
            return
        res.body = merged
        restore: dict[str, Any] = {"namespace": namespace}
        if not rename:
            restore["name"] = name
        res.with_metadata(**restore)
        if not rekind:
            res.body = {**res.body, "kind": kind}

    def apply_json(self, res: Resource, operations: list[Any], pos: SourcePos, *, remember: bool) -> None:
        """A JSON patch on one object; `patches` (not `patchesJson6902`) remembers the id."""
        if not res.kept:
            return
        previous = list(res.previous)
        if remember:
            res.remember_id()
        body = res.body
        if res.previous and res.metadata().get("annotations") is None:
            # kustomize keeps previous ids as annotations, so the map exists under the patch
            body = {**body, "metadata": {**res.metadata(), "annotations": {}}}
        try:
            body = apply_json_patch(body, operations)
        except PatchError as err:
            res.previous = previous
            self.problems.error(f"{err} (patching {res.id}, {res.where()})", pos)
            return
        res.body = body


def _classify_patch(text: str) -> tuple[str, Any]:
    """kustomize's test: strategic merge when the text reads as objects, JSON 6902 when it
    reads as a list of operations; both or neither is an error."""
    objects: list[dict[str, Any]] | None = _patch_objects(text)
    operations: list[Any] | None
    try:
        if text.startswith("["):
            loaded = json.loads(text, parse_float=_json_number)
        else:
            docs = kubeyaml.read_documents("patch", text, v2=True)
            loaded = docs[0].value if docs and docs[0].number == 1 else None
        operations = [] if loaded is None else loaded if isinstance(loaded, list) else None
    except (ValueError, YamlSyntaxError):
        operations = None
    if objects is not None and operations is not None:
        return "error", f"illegally qualifies as both an SM and JSON patch: {text!r}"
    if objects is not None:
        return "smp", objects
    if operations is not None:
        return "json", operations
    return "error", f"unable to parse SM or JSON patch from {text!r}"


def _patch_objects(text: str) -> list[dict[str, Any]] | None:
    """The objects of a strategic-merge patch, or None when the text is not objects."""
    objects: list[dict[str, Any]] = []
    try:
        docs = kubeyaml.read_documents("patch", text)
    except YamlSyntaxError:
        return None
    for doc in docs:
        if isinstance(doc.value, list) and not doc.value:
            continue
        found, reason = objects_of(doc.value)
        if reason:
            return None
        objects.extend(found)
    return objects


def _json_number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


__all__ = ["FLUX_GROUP_SUFFIX", "Keep", "NEEDS_KUSTOMIZE", "Rendered", "ResId", "Tree",
           "build_directory", "flux_kinds", "objects_of"]
