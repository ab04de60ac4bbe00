"""`gitward check`: references, patterns and lints over a loaded repository.

Errors make the rules unusable (a dangling reference, a regex RE2 rejects, a semver range
Masterminds would reject). Warnings are lints: places where Flux would do something the user
almost certainly did not mean, said out loud.
"""

from __future__ import annotations

from engine.errors import Problems, SourcePos, did_you_mean
from engine.model import (
    GitSource,
    ImagePolicy,
    ImageUpdate,
    Kustomization,
    ObjectKey,
    PolicyKind,
    Direction,
    RuleSet,
    SkippedObject,
    SourceKind,
)
from engine.rules.extract import dropped_digits, referenced_groups
from engine.rules.regex import PatternError, compile_pattern, text_of
from engine.rules.semver import ConstraintError, parse_constraint


def check_rules(rules: RuleSet, problems: Problems) -> None:
    """Every check that needs only the rules: references, patterns, policy lints."""
    check_references(rules, problems)
    check_patterns(rules, problems)
    lint_policies(rules, problems)


def check_references(rules: RuleSet, problems: Problems) -> None:
    """Every reference names an object that exists (Flux would fail the referrer otherwise)."""
    sources = _sources(rules)
    repos = {r.key for r in rules.image_repositories}
    kustomizations = {k.key for k in rules.kustomizations}
    for k in rules.kustomizations:
        key = source_key(k)
        if k.source_ref.kind in UNFETCHED_SOURCES:
            problems.warning(f"Kustomization {k.key.ref}: its source is {key.kind} {key.ref}, which "
                             "gitward does not fetch: the Kustomization is listed but not built or "
                             "applied",
                             k.source_ref.origin or k.origin, code="source-not-reconciled")
        else:
            _expect(key, sources, k, k.source_ref.origin, problems)
        for dep in k.depends_on:
            dns, dname = dep.resolve(k.namespace)
            _expect(ObjectKey(Kustomization.KIND, dns, dname), kustomizations, k, dep.origin, problems)
    for p in rules.image_policies:
        _expect(p.repository_key, repos, p, p.repository.origin, problems)
    for u in rules.image_updates:
        ns, name = u.source_ref.namespace or u.namespace, u.source_ref.name
        _expect(ObjectKey(GitSource.KIND, ns, name), sources, u, u.source_ref.origin, problems)


UNFETCHED_SOURCES = (SourceKind.BUCKET, SourceKind.EXTERNAL_ARTIFACT)
"""Source kinds a Kustomization may name that gitward cannot fetch: ExternalArtifacts are made
in the cluster by other controllers, Buckets need cloud storage clients."""


def _sources(rules: RuleSet) -> set[ObjectKey]:
    return ({s.key for s in rules.sources} | {s.key for s in rules.oci_sources}
            | {o.key for o in rules.flux_objects})


def source_key(k: Kustomization) -> ObjectKey:
    """The source a Kustomization names; an empty namespace is the Kustomization's own."""
    ref = k.source_ref
    return ObjectKey(ref.kind.value, ref.namespace or k.namespace, ref.name)


def isolate(rules: RuleSet) -> tuple[RuleSet, tuple[SkippedObject, ...]]:
    """The rules without every object whose references do not resolve, and without what depends
    on those, as Flux would leave them failing; the others stay usable. Each left-out object
    comes back with its reason."""
    sources = _sources(rules)
    repos = {r.key for r in rules.image_repositories}
    skipped: dict[ObjectKey, SkippedObject] = {}

    def skip(rule: Kustomization | ImagePolicy | ImageUpdate, reason: str) -> None:
        skipped.setdefault(rule.key, SkippedObject(rule.key, reason, rule.origin))

    for u in rules.image_updates:
        key = ObjectKey(GitSource.KIND, u.source_ref.namespace or u.namespace, u.source_ref.name)
        if key not in sources:
            skip(u, f"its source {key.kind} {key.ref} is not defined")
    for p in rules.image_policies:
        if p.repository_key not in repos:
            skip(p, f"its ImageRepository {p.repository_key.ref} is not defined")
    present = {k.key for k in rules.kustomizations}
    changed = True
    while changed:  # dependsOn chains: a Kustomization waits on what it depends on
        changed = False
        for k in rules.kustomizations:
            if k.key in skipped:
                continue
            key = source_key(k)
            if k.source_ref.kind not in UNFETCHED_SOURCES and key not in sources:
                skip(k, f"its source {key.kind} {key.ref} is not defined")
                changed = True
                continue
            for dep in k.depends_on:
                dkey = ObjectKey(Kustomization.KIND, *dep.resolve(k.namespace))
                if dkey not in present or dkey in skipped:
                    why = "is not defined" if dkey not in present else "is skipped"
                    skip(k, f"it depends on Kustomization {dkey.ref}, which {why}")
                    changed = True
                    break
    if not skipped:
        return rules, ()
    kept = RuleSet.of([r for r in rules.all() if r.key not in skipped])
    return kept, tuple(skipped[k] for k in sorted(skipped))


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
    where = p.filter.extract_origin or p.filter.origin or p.origin
    groups = {text_of(n) for n in compiled.groupindex} | {str(i) for i in range(compiled.groups + 1)}
    missing = [name for name in referenced_groups(p.filter.extract) if name not in groups]
    for name in missing:
        problems.warning(
            f'ImagePolicy {p.key.ref}: extract "{p.filter.extract}" names group "{name}", '
            "which the pattern does not have; it expands to an empty string"
            + did_you_mean(name, [g for g in groups if not g.isdigit()]),
            where,
            code="extract-group",
        )
    dropped = [] if missing else dropped_digits(p.filter.pattern, p.filter.extract)
    if dropped:
        problems.warning(
            f'ImagePolicy {p.key.ref}: extract "{p.filter.extract}" leaves out digits the pattern '
            f"matches ({', '.join(dropped)}): tags that differ only there, such as two builds "
            "on one day, get the same value and tie; the policy then keeps the byte-smallest "
            "of them (Flux: whichever comes first), not the newest",
            where,
            code="extract-ties",
            hint="capture those digits in a named group too and add it to extract "
                 '(e.g. "(?P<ts>[0-9]{8})-(?P<time>[0-9]{4})" with extract "$ts$time")',
        )
