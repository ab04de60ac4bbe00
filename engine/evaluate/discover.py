"""Which Flux objects a repository holds, found the way Flux finds them.

`flux bootstrap --path <cluster>` applies `<cluster>/flux-system/` (gotk-components.yaml,
gotk-sync.yaml); the flux-system Kustomization it creates reconciles its path, whose Kustomizations
reconcile theirs, and so on. An object is live when one of those builds emits it, as the build
leaves it: kustomize's namespace, prefixes, patches and components, then the Kustomization's own
overlays (targetNamespace, patches, ...) and its `postBuild.substitute` variables. Discovery walks
the same graph, rendering each path with gitward's Python kustomize subset
(engine/evaluate/kustomize.py), so no kustomize binary is needed.

An entry point is a directory holding `flux-system/gotk-sync.yaml`, or the directory given with
`--cluster`. Several entry points are several clusters, each with names of its own. A repository
with no entry point is read whole (every Flux manifest outside hidden directories and kustomize
patch files), then corrected where the graph reaches: an object a Kustomization renders is taken
as rendered, and one in a file under a rendered path that no build emits is not live.
`*.rules` files are gitward's own rules and are always read.

Only the paths of sources this checkout holds are followed: the bootstrap source, and
GitRepositories of the same URL and branch (or the checkout's own remote). A Kustomization on
another repository, branch, OCI artifact or bucket is listed, its objects unknown, and said so.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import yaml

from engine.errors import Problem, Problems, Severity, SourcePos, UserError
from engine.evaluate import postbuild, render
from engine.evaluate.kustfile import known_fields
from engine.evaluate.kustomize import build_directory, flux_kinds
from engine.evaluate.render import Located
from engine.model import (
    DEFAULT_NAMESPACE,
    GitRef,
    GitSource,
    Kustomization,
    ObjectKey,
    Rule,
    RuleSet,
    SkippedObject,
    SourceKind,
    SourceRef,
)
from engine.rules.confine import path_escape
from engine.rules.fluxread import read_object
from engine.rules.load import dedupe, is_builtin_path, load_tree, rule_files
from engine.rules.tree import RepoTree
from engine.rules.yamldoc import Document, YamlSyntaxError, graft, load_documents

SYNC_FILE = "flux-system/gotk-sync.yaml"
"""What `flux bootstrap` writes below the cluster path it is given."""
BOOTSTRAP_SOURCE = ObjectKey(GitSource.KIND, DEFAULT_NAMESPACE, "flux-system")
"""The GitRepository `flux bootstrap` creates in the cluster (it need not be in git)."""

_VARIABLE = re.compile(r"(?<!\$)\$\{([_A-Za-z][_A-Za-z0-9]*)")


@dataclass(frozen=True)
class SourceHint:
    """A GitRepository gitward takes from outside git (`--source`, the live cluster, the
    checkout's remote), with the words that say where it came from."""

    source: GitSource
    said: str


@dataclass(frozen=True)
class Origin:
    """The checkout's remote URL and branch, when it has them (sources of the same URL are this
    checkout)."""

    url: str
    branch: str


@dataclass(frozen=True)
class Cluster:
    """The Flux objects one entry point leads to (or the whole repository's, without one)."""

    path: str
    """The entry directory, repo-relative; "" when the repository was read whole."""
    rules: RuleSet
    files: tuple[str, ...]
    entry: bool
    inferred: tuple[ObjectKey, ...] = ()
    """Sources taken from outside git (bootstrap, `--source`)."""
    broken: tuple[SkippedObject, ...] = ()
    """Objects left out for an error of their own (located in the problems)."""
    held: frozenset[ObjectKey] = frozenset()
    """GitRepositories whose files this checkout holds (their Kustomizations build from it)."""

    @property
    def name(self) -> str:
        return self.path or "."


def find_entries(tree: RepoTree) -> list[str]:
    """Every directory holding `flux-system/gotk-sync.yaml`, repo-relative, in walk order."""
    suffix = "/" + SYNC_FILE
    return [rel[: -len(suffix)] if rel != SYNC_FILE else "" for rel in tree.files
            if rel == SYNC_FILE or rel.endswith(suffix)]


def same_repository(a: str, b: str) -> bool:
    """Whether two Git URLs name one repository (scheme, user, `.git` and case of host aside)."""
    return _repo_id(a) == _repo_id(b) != ""


def _repo_id(url: str) -> str:
    text = url.strip().rstrip("/")
    text = re.sub(r"^[a-z+]+://", "", text)
    text = re.sub(r"^[^@/]+@", "", text)
    host, _, path = text.partition("/")
    host = host.split(":")[0].lower()
    path = path.removesuffix(".git").strip("/")
    return f"{host}/{path}" if path else ""


def discover(root: Path, problems: Problems, *, cluster: str | None = None,
             origin: Origin | None = None, hints: Mapping[ObjectKey, SourceHint] | None = None,
             builtin: Sequence[Rule] = ()) -> tuple[Cluster, ...]:
    """The clusters of the repository at `root`, each with its Flux objects and the `*.rules`
    files' rules; every problem goes to `problems`, located. `cluster` names one entry
    directory (repo-relative or under `root`); `hints` supply GitRepositories git does not hold.
    """
    walk = _Discovery(root, problems, origin, dict(hints or {}))
    tree = walk.tree("")
    dsl = load_tree(rule_files(root, tree.files, tree.refused, problems), problems, flux=False)
    entries = [_entry_path(root, cluster, tree)] if cluster is not None else find_entries(tree)
    if not entries:
        return (walk.whole_repository([*builtin, *dsl]),)
    return tuple(walk.entry(path, [*builtin, *dsl]) for path in entries)


def _entry_path(root: Path, cluster: str, tree: RepoTree) -> str:
    """`--cluster`: a directory of the repository, given from the working directory or the root."""
    given = Path(cluster)
    path = given if given.is_absolute() else Path.cwd() / given
    if not path.exists():
        path = root / cluster
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = None
    rel = "" if rel == "." else rel
    if rel is None or not tree.is_dir(rel):
        raise UserError(f"--cluster {cluster}: not a directory of the repository {tree.display('')}")
    return rel


@dataclass
class _Found:
    rule: Rule
    owner: ObjectKey | None
    """The Kustomization whose build emitted it; None for what bootstrap or a file read gave."""


@dataclass
class _Graph:
    """One walk's state: objects found so far, Kustomizations done and waiting for a source."""

    found: dict[ObjectKey, _Found] = field(default_factory=dict)
    done: set[ObjectKey] = field(default_factory=set)
    rendered: dict[str, tuple[ObjectKey, bool]] = field(default_factory=dict)
    """Each built path -> the Kustomization that built it, and whether its build succeeded."""
    held: set[ObjectKey] = field(default_factory=set)
    files: dict[str, None] = field(default_factory=dict)
    broken: dict[ObjectKey, SkippedObject] = field(default_factory=dict)


class _Discovery:
    def __init__(self, root: Path, problems: Problems, origin: Origin | None,
                 hints: dict[ObjectKey, SourceHint]) -> None:
        self.root, self.problems, self.origin, self.hints = root, problems, origin, hints
        self.trees: dict[str, RepoTree] = {}
        self.documents: dict[tuple[str, str], list[Document]] = {}
        self.reported: set[tuple[str, str]] = set()
        self.file_sets: dict[int, frozenset[str]] = {}

    def _file_set(self, tree: RepoTree) -> frozenset[str]:
        if id(tree) not in self.file_sets:
            self.file_sets[id(tree)] = frozenset(tree.files)
        return self.file_sets[id(tree)]

    def tree(self, ignore: str) -> RepoTree:
        """The files a source with this `spec.ignore` holds (one tree per distinct text)."""
        if ignore not in self.trees:
            self.trees[ignore] = RepoTree(self.root, ignore)
        return self.trees[ignore]

    # -- the two ways in ----------------------------------------------------------------------

    def entry(self, path: str, gitward_rules: list[Rule]) -> Cluster:
        """What bootstrap applies from the entry directory, and everything it leads to."""
        tree = self.tree("")
        graph = _Graph()
        for rule in gitward_rules:
            self._add(graph, rule, None)
        seed_dir = posixpath.join(path, "flux-system") if tree.is_dir(posixpath.join(path, "flux-system")) else path
        seeds = [rule for rule, _ in self._objects(graph, tree, self._render_dir(tree, seed_dir, None) or ())]
        for rule in seeds:
            self._add(graph, rule, None)
        if not any(isinstance(r, (GitSource, Kustomization)) for r in seeds):  # a placeholder
            self._add(graph, self._bootstrap_kustomization(path), None)
        graph.held |= {self._source_key(k) for k in self._kustomizations(graph)
                       if k.source_ref.kind is SourceKind.GIT_REPOSITORY}
        self._walk(graph)
        return self._cluster(path, graph, entry=True)

    def whole_repository(self, gitward_rules: list[Rule]) -> Cluster:
        """Every Flux manifest outside hidden directories, corrected by the graph's renders."""
        tree = self.tree("")
        graph = _Graph()
        skip = _patch_files(tree, self.problems)
        broken: list[SkippedObject] = []
        files = ((rel, self.root / rel) for rel in tree.files)  # the walk the tree made
        read = load_tree(files, self.problems, flux=True, dsl=False, skip=skip, hidden=False,
                         skipped=broken)
        graph.broken.update((b.key, b) for b in broken)
        if any(isinstance(r, Kustomization) for r in read):
            self.problems.note("no entry point (a directory holding flux-system/gotk-sync.yaml): "
                               "every Flux manifest of the repository was read, and the "
                               "Kustomizations followed from there; name one with --cluster",
                               code="no-entry")
        for rule in [*gitward_rules, *read]:
            self._add(graph, rule, None)
        for k in self._kustomizations(graph):
            source = self._source(graph, k)
            if isinstance(source, GitSource) and self._path_held(tree, k) and (
                    self.origin is None or same_repository(self.origin.url, source.url)):
                graph.held.add(source.key)
        self._walk(graph)
        for key, found in list(graph.found.items()):
            cover = None if found.owner is not None else self._covering(graph, found.rule)
            if cover is None:
                continue
            del graph.found[key]
            built, ok = cover
            why = (f"the build of Kustomization {built.ref}, whose path holds its file, fails"
                   if not ok else f"no kustomization under the path of Kustomization {built.ref} "
                   "lists its file")
            self.problems.note(f"{found.rule.KIND} {key.ref} is not applied: {why}",
                               found.rule.origin, code="not-applied")
        return self._cluster("", graph, entry=False)

    # -- the walk ----------------------------------------------------------------------------

    def _walk(self, graph: _Graph) -> None:
        """Build each Kustomization whose source this checkout holds, until nothing new appears;
        one whose source is defined by a later build waits for it."""
        progress = True
        while progress:
            progress = False
            for k in self._kustomizations(graph):
                if k.key in graph.done:
                    continue
                source = self._source(graph, k)
                if source is None and k.source_ref.kind is SourceKind.GIT_REPOSITORY:
                    continue  # perhaps a later build defines it
                graph.done.add(k.key)
                progress = True
                if not isinstance(source, GitSource) or not self._held(graph, source):
                    self._say_not_followed(k, source)
                    continue
                if k.remote_cluster:  # its reader warned: applied to another cluster, not read
                    continue
                tree = self.tree(source.ignore)
                items = self._render_kustomization(tree, k)
                graph.rendered[_normal(k.path)] = (k.key, items is not None)
                for rule, _ in self._objects(graph, tree, items or ()):
                    self._add(graph, rule, k.key)

    def _say_not_followed(self, k: Kustomization, source: Rule | None) -> None:
        if source is None:
            return  # a dangling reference: `check` reports it
        kind = source.KIND
        what = {"OCIRepository": "an OCI artifact", "GitRepository": "another repository or branch"}
        self.problems.note(f"Kustomization {k.key.ref}: its source {kind} {source.key.ref} is "
                           f"{what.get(kind, 'not this checkout')}: the Flux objects it renders "
                           "are not read", k.source_ref.origin or k.origin, code="source-not-held")

    def _add(self, graph: _Graph, rule: Rule, owner: ObjectKey | None) -> None:
        """Record an object; a second build emitting the same document is the same object,
        another document with the same identity is defined twice."""
        for key, found in list(graph.found.items()):
            if found.owner is None and owner is not None and found.rule.origin == rule.origin \
                    and key != rule.key and rule.origin is not None:
                del graph.found[key]  # the file's own reading, now corrected by a build
        seen = graph.found.get(rule.key)
        if seen is not None and seen.rule.origin != rule.origin:
            where = f" (first defined at {seen.rule.origin})" if seen.rule.origin else ""
            self.problems.error(f"{rule.KIND} {rule.key.ref} is defined twice{where}", rule.origin,
                                code="duplicate")
            return
        if seen is None or owner is not None:
            graph.found[rule.key] = _Found(rule, owner if seen is None or owner else seen.owner)
        if rule.origin is not None:
            graph.files[rule.origin.path] = None

    # -- sources -----------------------------------------------------------------------------

    @staticmethod
    def _kustomizations(graph: _Graph) -> list[Kustomization]:
        return [f.rule for f in graph.found.values() if isinstance(f.rule, Kustomization)]

    @staticmethod
    def _source_key(k: Kustomization) -> ObjectKey:
        ref = k.source_ref
        return ObjectKey(ref.kind.value, ref.namespace or k.namespace, ref.name)

    def _source(self, graph: _Graph, k: Kustomization) -> Rule | None:
        key = self._source_key(k)
        found = graph.found.get(key)
        if found is not None:
            return found.rule
        if key in self.hints:
            hint = self.hints[key]
            graph.found[key] = _Found(hint.source, None)
            self._say_once(str(key), hint.said)
            graph.held.add(key)
            return hint.source
        if key == BOOTSTRAP_SOURCE:
            source = self._bootstrap_source()
            graph.found[key] = _Found(source, None)
            graph.held.add(key)
            return source
        return None

    def _bootstrap_source(self) -> GitSource:
        """flux-system/flux-system, which `flux bootstrap` creates in the cluster, as this checkout."""
        if self.origin is not None:
            url, branch = self.origin.url, self.origin.branch or "main"
            said = f"taken as {url}#{branch}, the checkout's remote and branch"
        else:
            url, branch = self.root.resolve().as_uri(), "main"
            said = f"taken as this checkout ({url}#{branch}): it has no remote"
        self._say_once(str(BOOTSTRAP_SOURCE),
                       f"GitRepository {BOOTSTRAP_SOURCE.ref} is not in git (flux bootstrap "
                       f"creates it in the cluster): {said}; override with "
                       "--source flux-system=URL#BRANCH")
        return GitSource("flux-system", url, DEFAULT_NAMESPACE, GitRef(branch=branch),
                         timedelta(minutes=1))

    def _bootstrap_kustomization(self, path: str) -> Kustomization:
        """flux-system/flux-system as `flux bootstrap --path PATH` creates it, for an entry whose
        gotk-sync.yaml does not define it (a placeholder, as in Flux's example repositories)."""
        ks = Kustomization("flux-system", SourceRef("flux-system"), DEFAULT_NAMESPACE,
                           path=f"./{path}" if path else "./", prune=True)
        self._say_once(f"{ks.key} {path}", f"Kustomization {ks.key.ref} is not in git (flux "
                   f"bootstrap creates it): taken as `flux bootstrap --path {path or '.'}` would "
                   f"create it, with path {ks.path}")
        return ks

    def _say_once(self, token: str, said: str) -> None:
        if ("inferred", token) not in self.reported:
            self.reported.add(("inferred", token))
            self.problems.note(said, code="inferred-source")

    def _held(self, graph: _Graph, source: GitSource) -> bool:
        """Whether this checkout holds the source's files: a source bootstrap or a hint gave,
        or one with the same URL and branch as such a source or as the checkout's remote."""
        if source.key in graph.held:
            return True
        branch = source.ref.branch or "master"
        for key in graph.held:
            held = graph.found.get(key)
            if isinstance(held, _Found) and isinstance(held.rule, GitSource) \
                    and same_repository(held.rule.url, source.url) and held.rule.ref == source.ref:
                return True
        return self.origin is not None and same_repository(self.origin.url, source.url) \
            and branch == self.origin.branch and not (source.ref.tag or source.ref.commit
                                                       or source.ref.semver or source.ref.name)

    def _path_held(self, tree: RepoTree, k: Kustomization) -> bool:
        """Without an entry point: a Kustomization whose path exists here is taken to be on
        this checkout (unless the checkout's remote says its source is another repository)."""
        rel = _normal(k.path)
        return not rel.startswith("..") and tree.is_dir(rel)

    # -- rendering ---------------------------------------------------------------------------

    def _render_dir(self, tree: RepoTree, directory: str, kus: Mapping[str, object] | None,
                    where: SourcePos | None = None) -> list[Located] | None:
        """The Flux objects kustomize would emit for the directory; None when its build fails
        (Flux applies nothing of a build that fails)."""
        if kus is None and render.kustomization_in(self._file_set(tree), directory) is None:
            resources = render.generated_resources(tree.files, directory)
            kus = {"apiVersion": render.KUSTOMIZE_API, "kind": "Kustomization",
                   "resources": [f"./{posixpath.relpath(r, directory or '.')}" for r in resources]}
        result = build_directory(tree, directory, kustomization=kus, keep=flux_kinds, where=where)
        self._report(result.problems)
        if any(p.severity is Severity.ERROR for p in result.problems):
            return None
        return list(result.objects)

    def _render_kustomization(self, tree: RepoTree, k: Kustomization) -> list[Located] | None:
        """The Flux objects a Kustomization's build emits, with its post-build variables; None
        when the build fails."""
        rel = _normal(k.path)
        escape = path_escape(tree.root, rel)
        if escape is not None:
            self._error_once(f"Kustomization {k.key.ref}: spec.path {k.path!r} {escape}", k.origin)
            return None
        if not tree.is_dir(rel):
            self._error_once(f"Kustomization {k.key.ref}: spec.path {k.path or '.'!r} is not a "
                             "directory of the repository", k.origin)
            return None
        kfile = render.kustomization_in(self._file_set(tree), rel)
        existing = None
        if kfile is not None:  # kustomize-controller rewrites it, dropping unknown fields
            try:
                existing = known_fields(render.read_kustomization(tree.display(kfile),
                                                                  tree.text(kfile) or ""))
            except YamlSyntaxError as err:
                self._report([err.problem])
                return None
        resources = [] if kfile else render.generated_resources(tree.files, rel)
        relative = [f"./{posixpath.relpath(r, rel or '.')}" for r in resources]
        kus = render.flux_kustomization(existing, relative, k)
        items = self._render_dir(tree, rel, kus, k.origin)
        if items is None:
            return None
        variables = postbuild.check_variables(k, self.problems)
        if k.substitute_from:  # read from the cluster: unknown here, so left as written
            for item in items:
                for name in _VARIABLE.findall(repr(item.manifest.body)):
                    variables.setdefault(name, "${" + name + "}")
        return postbuild.substitute_variables(items, variables, self.problems)

    def _objects(self, graph: _Graph, tree: RepoTree,
                 items: Iterable[Located]) -> list[tuple[Rule, Located]]:
        """Rules from rendered Flux objects, read at the lines they were written on."""
        out: list[tuple[Rule, Located]] = []
        for item in items:
            shown = tree.display(item.file) if item.file else item.pos.path
            docs = self._documents(tree, item.file) if item.file else []
            original = docs[item.document - 1].node if 0 < item.document <= len(docs) else None
            anchor = original if original is not None else _node_at(item.pos)
            node = graft(item.manifest.body, original, anchor)
            found = Problems()
            result = read_object(Document(shown, max(item.document - 1, 0), node), found)
            self._report(found.items)
            if isinstance(result, SkippedObject):
                graph.broken[result.key] = result
            elif result is not None:
                out.append((result, item))
        return out

    def _documents(self, tree: RepoTree, rel: str) -> list[Document]:
        key = (tree.display(""), rel)
        if key not in self.documents:
            try:
                self.documents[key] = load_documents(tree.display(rel), tree.text(rel) or "")
            except YamlSyntaxError:
                self.documents[key] = []
        return self.documents[key]

    def _report(self, found: Iterable[Problem]) -> None:
        """Problems once each: a file several builds read is reported once."""
        for p in found:
            token = (str(p.pos), p.message)
            if token not in self.reported:
                self.reported.add(token)
                self.problems.extend([p])

    def _error_once(self, message: str, pos: SourcePos | None) -> None:
        self._report([Problem(Severity.ERROR, message, pos)])

    # -- the result --------------------------------------------------------------------------

    def _covering(self, graph: _Graph, rule: Rule) -> tuple[ObjectKey, bool] | None:
        """The build whose path holds the file a rule was read from (the deepest such path)."""
        if rule.origin is None or rule.origin.syntax != "flux":
            return None
        rel = _relative(self.root, rule.origin.path)
        if rel is None:
            return None
        paths = [p for p in graph.rendered if p == "" or rel.startswith(p + "/")]
        return graph.rendered[max(paths, key=len)] if paths else None

    def _cluster(self, path: str, graph: _Graph, *, entry: bool) -> Cluster:
        rules = dedupe([f.rule for f in graph.found.values()], self.problems)
        inferred = tuple(k for k, f in graph.found.items()
                         if f.owner is None and f.rule.origin is None and isinstance(f.rule, GitSource))
        files = tuple(path for path in dict.fromkeys(r.origin.path for r in rules.all()
                                                     if r.origin is not None and r.origin.path)
                      if not is_builtin_path(path))  # a path resolved once, not once per rule
        broken = tuple(b for k, b in sorted(graph.broken.items()) if k not in graph.found)
        held = frozenset(k for k, f in graph.found.items()
                         if isinstance(f.rule, GitSource) and self._held(graph, f.rule))
        return Cluster(path, rules, files, entry, inferred, broken, held)


def _normal(path: str) -> str:
    rel = posixpath.normpath(path.replace("\\", "/").strip("/") or ".")
    return "" if rel == "." else rel


def _relative(root: Path, shown: str) -> str | None:
    try:
        return Path(shown).resolve().relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return None


def _node_at(pos: SourcePos) -> yaml.Node:
    mark = yaml.Mark(pos.path, 0, max(pos.line - 1, 0), max(pos.column - 1, 0), "", 0)
    return yaml.ScalarNode("tag:yaml.org,2002:null", "", mark, mark)


def _patch_files(tree: RepoTree, problems: Problems) -> set[str]:
    """Files kustomization files use as patches: partial objects, never objects of their own."""
    found: set[str] = set()
    for rel in tree.files:
        if posixpath.basename(rel) not in render.KUSTOMIZATION_FILES:
            continue
        try:
            kus = render.read_kustomization(tree.display(rel), tree.text(rel) or "")
        except YamlSyntaxError:
            continue
        base = posixpath.dirname(rel)
        entries: list[object] = []
        for key in ("patches", "patchesStrategicMerge", "patchesJson6902"):
            value = kus.get(key)
            if isinstance(value, list):
                entries.extend(value)
        for entry in entries:
            target = entry.get("path") if isinstance(entry, dict) else entry
            if isinstance(target, str) and "\n" not in target:
                found.add(posixpath.normpath(posixpath.join(base, target)))
    return found
