"""`gitward check`: references, patterns and lints over a loaded repository.

Errors make the rules unusable (a dangling reference, a regex RE2 rejects, a semver range
Masterminds would reject). Warnings are lints: places where Flux would do something the user
almost certainly did not mean, said out loud.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.errors import Problems, SourcePos, did_you_mean
from engine.model import (
    GitSource,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    Kustomization,
    ObjectKey,
    PolicyKind,
    Direction,
    RuleSet,
)
from engine.rules.load import Repo, display_path, load_repo, walk_files
from engine.rules.markers import MarkerRef, dialect_applies, find_markers
from engine.rules.regex import PatternError, compile_pattern, text_of
from engine.rules.semver import ConstraintError, parse_constraint

_TEMPLATE_REF = re.compile(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


@dataclass(frozen=True)
class FoundMarker:
    """A marker and its file's path relative to the repository root (for path scoping)."""

    rel: str
    marker: MarkerRef


def check_repo(repo: Repo, problems: Problems) -> list[FoundMarker]:
    """Run every check on a loaded repository; returns the markers found, for reuse."""
    check_references(repo.rules, problems)
    check_patterns(repo.rules, problems)
    markers = scan_markers(repo)
    lint_policies(repo.rules, problems)
    lint_markers(repo.rules, markers, problems)
    return markers


def check_references(rules: RuleSet, problems: Problems) -> None:
    """Every reference names an object that exists."""
    sources = {s.key for s in rules.sources}
    repos = {r.key for r in rules.image_repositories}
    kustomizations = {k.key for k in rules.kustomizations}
    for k in rules.kustomizations:
        ns, name = k.source_ref.namespace or k.namespace, k.source_ref.name
        _expect(ObjectKey(GitSource.KIND, ns, name), sources, k, k.source_ref.origin, problems)
        for dep in k.depends_on:
            dns, dname = dep.resolve(k.namespace)
            _expect(ObjectKey(Kustomization.KIND, dns, dname), kustomizations, k, dep.origin, problems)
    for p in rules.image_policies:
        _expect(p.repository_key, repos, p, p.repository.origin, problems)
    for u in rules.image_updates:
        ns, name = u.source_ref.namespace or u.namespace, u.source_ref.name
        _expect(ObjectKey(GitSource.KIND, ns, name), sources, u, u.source_ref.origin, problems)


def _expect(
    key: ObjectKey,
    known: set[ObjectKey],
    referrer: Kustomization | ImagePolicy | ImageUpdate,
    pos: SourcePos | None,
    problems: Problems,
) -> None:
    if key in known:
        return
    candidates = [k.ref for k in known if k.kind == key.kind]
    problems.error(
        f"{referrer.KIND} {referrer.key.ref} refers to {key.kind} {key.ref}, which is not defined"
        + did_you_mean(key.ref, candidates),
        pos or referrer.origin,
        code="dangling-reference",
    )


def regex_problem(pattern: str) -> str | None:
    """RE2's complaint about a pattern (the engine Flux uses), or None when it compiles."""
    try:
        compile_pattern(pattern)
    except PatternError as err:
        return err.cause
    return None


def check_patterns(rules: RuleSet, problems: Problems) -> None:
    """Regexes compile in RE2; semver ranges parse as Masterminds/semver v3 reads them."""
    for r in rules.image_repositories:
        for pattern in r.exclusion_list:
            err = regex_problem(pattern)
            if err:
                problems.error(
                    f'ImageRepository {r.key.ref}: invalid exclusion regex "{pattern}": {err}',
                    r.origin,
                    code="invalid-regex",
                )
    for p in rules.image_policies:
        if p.filter is not None:
            err = regex_problem(p.filter.pattern)
            if err:
                problems.error(
                    f'ImagePolicy {p.key.ref}: invalid filter regex "{p.filter.pattern}": {err}',
                    p.filter.origin or p.origin,
                    code="invalid-regex",
                )
        if p.choice.kind is PolicyKind.SEMVER:
            try:
                parse_constraint(p.choice.range)
            except ConstraintError as bad:
                problems.error(
                    f'ImagePolicy {p.key.ref}: invalid semver range "{p.choice.range}": {bad}',
                    p.choice.origin or p.origin,
                    code="invalid-range",
                )
    for d in rules.marker_dialects:
        if d.value_pattern:
            err = regex_problem(d.value_pattern)
            if err:
                problems.error(
                    f'marker dialect {d.name}: invalid value regex "{d.value_pattern}": {err}',
                    d.origin,
                    code="invalid-regex",
                )


def lint_policies(rules: RuleSet, problems: Problems) -> None:
    """Policies that Flux would evaluate in a way their authors rarely intend."""
    for p in rules.image_policies:
        where = p.choice.origin or p.origin
        kind = p.choice.kind
        from_flux = bool(p.origin and p.origin.syntax == "flux")
        if from_flux and kind is not PolicyKind.SEMVER and p.choice.direction is Direction.LOWEST:
            problems.warning(
                f"ImagePolicy {p.key.ref}: {kind.value} order desc selects the LOWEST tag; "
                "the newest timestamp needs asc, the default",
                where,
                code="order-desc",
                hint="in gitward rules this reads `select lowest "
                f"{kind.value}`; write `select highest {kind.value}` for the newest",
            )
        if kind is PolicyKind.NUMERICAL and p.filter is None:
            problems.warning(
                f"ImagePolicy {p.key.ref}: numerical policy without filterTags: in Flux one "
                "non-numeric tag such as `latest` fails the whole policy",
                where,
                code="numerical-unfiltered",
                hint="add a filter with a pattern that keeps only numeric tags (gitward skips "
                "unparsable tags and says so)",
            )
        if p.filter is not None and p.filter.extract:
            _lint_extract(p, problems)


def _lint_extract(p: ImagePolicy, problems: Problems) -> None:
    assert p.filter is not None
    try:
        compiled = compile_pattern(p.filter.pattern)
    except PatternError:  # reported by check_patterns
        return
    groups = {text_of(n) for n in compiled.groupindex} | {str(i) for i in range(compiled.groups + 1)}
    for match in _TEMPLATE_REF.finditer(p.filter.extract.replace("$$", "")):
        name = match.group(1) or match.group(2)
        if name not in groups:
            problems.warning(
                f'ImagePolicy {p.key.ref}: extract "{p.filter.extract}" names group "{name}", '
                "which the pattern does not have; it expands to an empty string"
                + did_you_mean(name, [g for g in groups if not g.isdigit()]),
                p.filter.origin or p.origin,
                code="extract-group",
            )


def scan_markers(repo: Repo) -> list[FoundMarker]:
    """Markers of every dialect in every file of the repository."""
    found: list[FoundMarker] = []
    dialects = repo.rules.marker_dialects
    if not dialects:
        return found
    for path in walk_files(repo.root):
        rel = path.relative_to(repo.root).as_posix()
        applicable = [d for d in dialects if dialect_applies(d, rel)]
        if not applicable:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        screens = [d.screen.encode() for d in applicable if d.screen]
        if screens and not any(s in data for s in screens):
            continue
        text = data.decode("utf-8-sig", errors="replace")
        shown = display_path(path)
        for d in applicable:
            found.extend(FoundMarker(rel, m) for m in find_markers(shown, text, d))
    return found


def _within(rel: str, scope: str) -> bool:
    scope_path = PurePosixPath(scope.strip().lstrip("./") or ".")
    if str(scope_path) in (".", ""):
        return True
    rel_path = PurePosixPath(rel)
    return rel_path == scope_path or scope_path in rel_path.parents


def lint_markers(rules: RuleSet, markers: list[FoundMarker], problems: Problems) -> None:
    """Markers that name nothing, markers no automation applies, policies no marker uses."""
    policies = {p.key: p for p in rules.image_policies}
    used: set[ObjectKey] = set()
    for found in markers:
        m = found.marker
        pos = SourcePos(m.path, m.line, m.column, syntax="marker")
        key = ObjectKey(ImagePolicy.KIND, m.policy_namespace, m.policy_name)
        if key not in policies:
            problems.warning(
                f'marker names ImagePolicy {key.ref}, which is not defined'
                + did_you_mean(key.ref, [k.ref for k in policies]),
                pos,
                code="unknown-policy",
            )
            continue
        used.add(key)
        covering = [u for u in rules.image_updates if _within(found.rel, u.path)]
        if not covering:
            problems.warning(
                f"marker for ImagePolicy {key.ref} is outside every image update's path; "
                "nothing will update it",
                pos,
                code="marker-uncovered",
            )
        elif not any(u.namespace == m.policy_namespace for u in covering):
            names = ", ".join(u.key.ref for u in covering)
            problems.warning(
                f"marker for ImagePolicy {key.ref} is ignored by {names}: an image update "
                "applies only policies in its own namespace (Flux skips it silently)",
                pos,
                code="marker-namespace",
            )
    for key, policy in policies.items():
        if key not in used:
            problems.warning(
                f"ImagePolicy {key.ref} is not used by any marker",
                policy.origin,
                code="unused-policy",
            )


def load_and_check(root: Path) -> tuple[Repo, Problems]:
    """Load a repository and run every check on it."""
    problems = Problems()
    repo = load_repo(root, problems)
    check_repo(repo, problems)
    return repo, problems
