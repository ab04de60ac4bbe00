"""A repository checkout as the evaluator sees it: its clusters' rules, and the files markers
may be in.

`load_repository` is how every command reads a checkout: discovery (engine/evaluate/discover.py)
finds each cluster's Flux objects as Flux would, the `*.rules` files join every cluster, and
`isolate` leaves out the objects whose references do not resolve (and what depends on them),
each with its reason, so one broken object never blocks the others.

Reading is here, at the edge; everything after it is pure. A file is read for markers only when
one of the marker dialects applies to its name and its bytes contain the dialect's screen
string, so a large tree of unmarked manifests costs one read each and no YAML parse.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from engine.errors import Problem, Problems, UserError
from engine.evaluate.commitmessage import check_message
from engine.evaluate.discover import Cluster, Origin, SourceHint, discover
from engine.evaluate.markerlint import lint_markers
from engine.evaluate.plan import Scans, deployed_tags, scan_files
from engine.evaluate.rewrite import MarkedValue
from engine.model import (
    DEFAULT_NAMESPACE,
    GitRef,
    GitSource,
    Kustomization,
    MarkerDialect,
    ObjectKey,
    RuleSet,
    SkippedObject,
)
from engine.observe.git import checkout_origin
from engine.rules.check import check_rules, isolate, lint_policies, source_key
from engine.rules.ignore import walk_paths
from engine.rules.load import builtin_rules, display_path
from engine.rules.markers import dialect_applies


def read_marked_files(root: Path, dialects: tuple[MarkerDialect, ...]) -> dict[str, str]:
    """Repo-relative path -> text of every file a dialect could mark (BOM and CRLF kept)."""
    files: dict[str, str] = {}
    screens_of: dict[str, tuple[bytes, ...]] = {}  # file name -> screens of the dialects for it
    for rel in walk_paths(root):
        name = rel.rpartition("/")[2]
        screens = screens_of.get(name)
        if screens is None:  # a tree repeats few names: match each against the patterns once
            screens = screens_of[name] = tuple(d.screen.encode() for d in dialects if dialect_applies(d, name))
        if not screens:
            continue
        data = _read_bytes(os.path.join(root, rel))
        if data is None or not any(screen in data for screen in screens):  # b"": no screen
            continue
        files[rel] = data.decode("utf-8", errors="surrogateescape")
    return files


def _read_bytes(path: str) -> bytes | None:
    """A file's bytes, or None when it cannot be read; without a buffered file object, which
    costs a third of the read on a tree of small manifests."""
    try:
        handle = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(handle, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(handle)


@dataclass(frozen=True)
class MarkedTree:
    """A checkout's marked files, read and located once: the text of each file a dialect could
    mark, its scans (one YAML parse per file and dialect), every marked value, the warnings for
    markers that were ignored, and the tag git deploys for each policy. What `check`, `plan`,
    `images`, `reconcile` and each pass of `gitward run` read a checkout's markers through."""

    root: Path
    files: dict[str, str]
    scans: Scans
    values: tuple[MarkedValue, ...]
    warnings: tuple[Problem, ...]
    deployed: dict[str, str]
    """Policy `namespace/name` -> the tag its markers deploy (engine/evaluate/plan.py)."""


def read_marked_tree(root: Path, rules: RuleSet) -> MarkedTree:
    """Read and locate every marker of the checkout at `root` under `rules`' dialects."""
    files = read_marked_files(root, rules.marker_dialects)
    scans = scan_files(rules, files)
    values = tuple(v for scan in scans.values() for v in scan.values)
    warnings = tuple(w for scan in scans.values() for w in scan.warnings)
    return MarkedTree(root, files, scans, values, warnings, deployed_tags(values))


class MarkedTrees:
    """Marked trees read at most once per checkout, revision and marker dialects: what one pass
    of `gitward run` shares among its image repositories and automations (each pass has its own,
    so files edited in a working tree are seen by the next pass)."""

    def __init__(self) -> None:
        self._read: dict[tuple[Path, str, tuple[MarkerDialect, ...]], MarkedTree] = {}

    def tree(self, root: Path, revision: str, rules: RuleSet) -> MarkedTree:
        """The checkout at `root` (at `revision`: "" for a working tree) as `rules` mark it."""
        key = (root, revision, rules.marker_dialects)
        found = self._read.get(key)
        if found is None:
            found = self._read[key] = read_marked_tree(root, rules)
        return found


_SOURCE = re.compile(r"^(?:(?P<ns>[a-z0-9-]+)/)?(?P<name>[a-z0-9.-]+)=(?P<url>[^#\s]+)(?:#(?P<branch>\S+))?$")


@dataclass(frozen=True)
class RepoSpec:
    """What to read: a checkout, optionally one of its clusters (`--cluster`), and the
    GitRepositories git does not hold (`--source NAME=URL#BRANCH`)."""

    root: Path
    cluster: str | None = None
    sources: tuple[str, ...] = ()

    def at(self, root: Path) -> "RepoSpec":
        """The same reading of another checkout (a fetched revision of the same repository)."""
        return replace(self, root=root)

    def hints(self) -> dict[ObjectKey, SourceHint]:
        """`--source` values as GitRepositories; a malformed one is a UserError."""
        found: dict[ObjectKey, SourceHint] = {}
        for text in self.sources:
            match = _SOURCE.match(text)
            if match is None:
                raise UserError(f"--source {text}: expected NAME=URL#BRANCH (NAME may be NAMESPACE/NAME)")
            ns, name = match["ns"] or DEFAULT_NAMESPACE, match["name"]
            branch = match["branch"] or "main"
            source = GitSource(name, match["url"], ns, GitRef(branch=branch), timedelta(minutes=1))
            found[source.key] = SourceHint(source, f"GitRepository {source.key.ref} taken from "
                                           f"--source as {match['url']}#{branch}")
        return found


@dataclass(frozen=True)
class LoadedCluster:
    """One cluster's rules as commands use them: what references resolve, and what was left out."""

    found: Cluster
    """As discovery found it, before isolation (what `check` checks)."""
    rules: RuleSet
    """Usable objects only: every reference among them resolves."""
    skipped: tuple[SkippedObject, ...]

    @property
    def path(self) -> str:
        return self.found.path

    @property
    def name(self) -> str:
        return self.found.name

    @property
    def everything(self) -> RuleSet:
        return self.found.rules

    @property
    def files(self) -> tuple[str, ...]:
        return self.found.files

    @property
    def entry(self) -> bool:
        return self.found.entry

    @property
    def held(self) -> frozenset[ObjectKey]:
        """GitRepositories whose files this checkout holds."""
        return self.found.held

    @property
    def inferred(self) -> tuple[ObjectKey, ...]:
        """GitRepositories taken from outside git (the bootstrap source, `--source`)."""
        return self.found.inferred

    def buildable(self) -> tuple[Kustomization, ...]:
        """The Kustomizations this checkout renders offline for this cluster: their source is
        this checkout, and they apply here (not to another cluster through spec.kubeConfig)."""
        return tuple(k for k in self.rules.kustomizations
                     if source_key(k) in self.held and not k.remote_cluster)


@dataclass(frozen=True)
class Loaded:
    """A checkout's clusters, and every problem found reading them."""

    root: Path
    clusters: tuple[LoadedCluster, ...]
    problems: Problems = field(default_factory=Problems)

    def one(self) -> LoadedCluster:
        """The cluster a command that acts on one works with; several need `--cluster`."""
        if len(self.clusters) == 1:
            return self.clusters[0]
        names = ", ".join(c.name for c in self.clusters)
        raise UserError(f"{display_path(self.root)} holds {len(self.clusters)} clusters ({names}): "
                        "name one with --cluster")

    @property
    def skipped(self) -> tuple[SkippedObject, ...]:
        return tuple(dict.fromkeys(s for c in self.clusters for s in c.skipped))


def load_repository(spec: RepoSpec, problems: Problems | None = None, *,
                    hints: Mapping[ObjectKey, SourceHint] | None = None) -> Loaded:
    """Every cluster of the checkout, as Flux would see it; problems are collected, never
    raised, except a checkout that cannot be read at all (a UserError)."""
    problems = problems if problems is not None else Problems()
    root = spec.root
    if not root.is_dir():
        raise UserError(f"{display_path(root)}: the repository path is not a directory")
    origin = checkout_origin(root)
    given = {**spec.hints(), **dict(hints or {})}
    clusters = discover(root, problems, cluster=spec.cluster,
                        origin=Origin(origin.url, origin.branch) if origin else None,
                        hints=given, builtin=builtin_rules(problems))
    return Loaded(root, tuple(_usable(c) for c in clusters), problems)


def _usable(cluster: Cluster) -> LoadedCluster:
    rules, skipped = isolate(cluster.rules)
    return LoadedCluster(cluster, rules, (*cluster.broken, *skipped))


def check_repository(spec: RepoSpec) -> tuple[Loaded, Problems]:
    """`gitward check`: load every cluster, check its rules, and lint every marker in the tree."""
    problems = Problems()
    loaded = load_repository(spec, problems)
    for cluster in loaded.clusters:
        found = Problems()
        check_rules(cluster.everything, found)
        for update in cluster.everything.image_updates:
            found.extend(check_message(update))
        marked = read_marked_tree(spec.root, cluster.everything)
        found.extend(marked.warnings)
        lint_markers(cluster.everything, marked.values, found)
        problems.extend(_shown_from(spec.root, p) for p in found.items)
    return loaded, unique(problems.items)


def checkout_lints(root: Path, rules: RuleSet, values: Iterable[MarkedValue]) -> list[Problem]:
    """The Flux-trap lints of `check` that every path that plans says too: policies Flux
    evaluates otherwise than meant (order desc, an extract that ties, ...) and markers that no
    automation updates, or that name no policy, and policies no marker uses."""
    found = Problems()
    lint_policies(rules, found)
    lint_markers(rules, values, found)
    return [_shown_from(root, p) for p in found.warnings]


def unique(items: Iterable[Problem]) -> Problems:
    """Each problem once: a file several clusters read is checked in each."""
    out = Problems()
    seen: set[tuple[str, str, str]] = set()
    for p in items:
        token = (p.severity.value, str(p.pos), p.message)
        if token not in seen:
            seen.add(token)
            out.extend([p])
    return out


def _shown_from(root: Path, problem: Problem) -> Problem:
    """A problem located by a repo-relative path, relocated to the path the user can open."""
    pos = problem.pos
    if pos is None or pos.path.startswith(str(root)):
        return problem
    if not (root / pos.path).exists():
        return problem
    return replace(problem, pos=replace(pos, path=display_path(root / pos.path)))
