"""Image updates -> commit actions: which marked values change, held back by which gates.

`plan_updates(rules, files, selections, now)` is pure: the caller reads the checkout (only
files its dialects could mark), the store gives each policy's current selection, and the time
is an argument. The same function re-runs on a fresh checkout when a push races, so the
markers are found again wherever they moved.

Per image update automation (Flux's ImageUpdateAutomation):
- only files under its `path`, only markers naming a policy of its own namespace;
- the value a marker writes is Flux's (the repository's image as written, `:tag`, `:name`,
  `:digest`), computed from the policy's selection, or its `pin`;
- gates, gitward's own: `hold` (the tag must have been in the ledger that long), `never
  downgrade` (the new image must not be older than the one in the file: by time when the facts
  tell, else by the policy's own ordering), `rollback` (the new image must be known not to be
  older, engine/evaluate/chronology.py, unless the policy says `allow rollback`), `digest` (a
  value that pins a digest moves only with the new tag's digest: never stripped nor blanked);
- changes for one (repository, push branch) from every automation become one CommitAction,
  with a templated message and `Gitward-Decision: <id>` trailers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import PurePosixPath
from typing import Mapping, Sequence

from engine.errors import Problem, Severity, SourcePos
from engine.evaluate.chronology import Age, Comparison, compare, pinned_digest
from engine.evaluate.commitmessage import MessageChange, object_at, render_message, template_problem
from engine.evaluate.gotemplate import TemplateError
from engine.evaluate.policy import evaluate_policy
from engine.evaluate.rewrite import (
    Edit,
    FileScan,
    MarkedValue,
    apply_edits,
    locate,
    marker_value,
)
from engine.model import (
    DEFAULT_COMMIT_MESSAGE,
    CommitAction,
    DigestReflection,
    Direction,
    FileChange,
    Gate,
    GateDecision,
    GitSource,
    ImageFacts,
    ImagePolicy,
    ImageRepository,
    ImageUpdate,
    ObjectKey,
    Plan,
    PlanError,
    PolicyKind,
    RuleSet,
)
from engine.rules.markers import MarkerPart

TRAILER = "Gitward-Decision"


@dataclass(frozen=True)
class Selection:
    """A policy's current pick, from the store: the tag, and when the ledger first saw it.

    `images` are the facts gathered for the images a change involves (the selected tag, and
    each tag or digest git deploys for the policy), for the rollback and digest gates.
    """

    tag: str
    digest: str = ""
    decision_id: int | None = None
    first_seen: datetime | None = None
    images: tuple[ImageFacts, ...] = ()

    def image(self, tag: str, digest: str = "") -> ImageFacts:
        """The facts of the image `tag` names (pinned to `digest`, when given)."""
        for facts in self.images:
            if facts.tag == tag and (not digest or facts.digest == digest):
                return facts
        for facts in self.images:
            if digest and facts.digest == digest:
                return replace(facts, tag=tag or facts.tag)
        if tag == self.tag and (not digest or digest == self.digest):
            return ImageFacts(tag, self.digest, first_seen=self.first_seen)
        return ImageFacts(tag, digest)


@dataclass(frozen=True)
class _Change:
    change: FileChange
    edit: Edit
    decision: int | None
    image: str  # the policy's latest reference, for the commit message's legacy `.Updated`


Scans = dict[tuple[str, str], FileScan]
"""Marked values per (path, dialect name): one YAML parse per file and run, shared by every
step (deployed tags, planning, rewriting)."""


def scan_files(rules: RuleSet, files: Mapping[str, str], scans: Scans | None = None) -> Scans:
    """Every file's scan under every dialect, computing only those not already in `scans`."""
    found: Scans = dict(scans or {})
    for path in sorted(files):
        for dialect in rules.marker_dialects:
            if (path, dialect.name) not in found:
                found[(path, dialect.name)] = locate(path, files[path], dialect)
    return found


def in_scope(path: str, scope: str) -> bool:
    """Whether a repo-relative path lies under an automation's `update.path` (or is it)."""
    base = _scope_base(scope)
    return base == "." or path == base or path.startswith(base + "/")


@lru_cache(maxsize=256)
def _scope_base(scope: str) -> str:
    """An `update.path` as a normalized repo-relative POSIX path ("." for the whole tree)."""
    return str(PurePosixPath(scope.strip().removeprefix("./").strip("/") or "."))


def plan_updates(rules: RuleSet, files: Mapping[str, str], selections: Mapping[str, Selection],
                 now: datetime, suspended: frozenset[str] = frozenset(),
                 scans: Scans | None = None) -> Plan:
    """Commit actions for every automation, and what held any update back."""
    scans = scan_files(rules, files, scans)
    skipped: list[str] = []
    gates: list[GateDecision] = []
    warnings: dict[tuple[str, int, str], Problem] = {}
    groups: dict[tuple[ObjectKey, str], list[tuple[ImageUpdate, GitSource, str, list[_Change]]]] = {}
    for update in rules.image_updates:
        if update.suspend or update.key.ref in suspended:
            skipped.append(f"ImageUpdateAutomation {update.key.ref} is suspended: it plans nothing")
            continue
        source = rules.get(ObjectKey(GitSource.KIND, update.source_ref.namespace or update.namespace,
                                     update.source_ref.name))
        if not isinstance(source, GitSource):
            skipped.append(f"ImageUpdateAutomation {update.key.ref}: its source is not defined")
            continue
        checkout = _checkout_branch(update, source)
        if not checkout:
            skipped.append(f"ImageUpdateAutomation {update.key.ref}: its checkout ref names no "
                           "branch (checking out a tag or commit is not supported yet)")
            continue
        changes = _changes(update, rules, files, scans, selections, now, gates, warnings)
        push = update.push_branch or checkout
        groups.setdefault((source.key, push), []).append((update, source, checkout, changes))
    actions: list[CommitAction] = []
    errors: list[PlanError] = []
    for key, members in sorted(groups.items()):
        action = _action(key, members, files, errors)
        if action is not None:
            actions.append(action)
    return Plan(
        actions=tuple(actions),
        gates=tuple(gates),
        skipped=tuple(skipped),
        warnings=tuple(sorted(warnings.values(), key=Problem.sort_key)),
        errors=tuple(errors),
    )


def edits_for(rules: RuleSet, files: Mapping[str, str], selections: Mapping[str, Selection],
              now: datetime, action: CommitAction, scans: Scans | None = None) -> dict[str, str]:
    """The new text of every file the action changes, planned afresh on `files`.

    Used after a push race: the same automations, re-planned on the new head.
    """
    scans = scan_files(rules, files, scans)
    scoped = RuleSet.of([*rules.sources, *rules.image_repositories, *rules.image_policies,
                         *rules.marker_dialects,
                         *(u for u in rules.image_updates if u.key.ref in action.automations)])
    gates: list[GateDecision] = []
    warnings: dict[tuple[str, int, str], Problem] = {}
    per_file: dict[str, dict[int, Edit]] = {}
    for update in scoped.image_updates:
        for c in _changes(update, scoped, files, scans, selections, now, gates, warnings):
            per_file.setdefault(c.change.path, {})[c.edit.value.start] = c.edit
    return {path: apply_edits(files[path], list(edits.values()))
            for path, edits in sorted(per_file.items())}


def _checkout_branch(update: ImageUpdate, source: GitSource) -> str:
    """The branch to check out: the automation's checkout ref, else the source's ref."""
    ref = update.checkout_ref if update.checkout_ref is not None else source.ref
    return ref.branch


def _changes(update: ImageUpdate, rules: RuleSet, files: Mapping[str, str], scans: Scans,
             selections: Mapping[str, Selection], now: datetime, gates: list[GateDecision],
             warnings: dict[tuple[str, int, str], Problem]) -> list[_Change]:
    found: list[_Change] = []
    deployed = deployed_tags([v for scan in scans.values() for v in scan.values])
    for path in sorted(files):
        if not in_scope(path, update.path):
            continue
        for dialect in rules.marker_dialects:
            scan = scans[(path, dialect.name)]
            for w in scan.warnings:
                pos = w.pos or SourcePos(path)
                warnings.setdefault((pos.path, pos.line, w.message), w)
            for value in scan.values:
                change = _change(update, rules, value, selections, now, gates, warnings, deployed)
                if change is not None:
                    found.append(change)
    return found


def _change(update: ImageUpdate, rules: RuleSet, value: MarkedValue,
            selections: Mapping[str, Selection], now: datetime, gates: list[GateDecision],
            warnings: dict[tuple[str, int, str], Problem],
            deployed: Mapping[str, str]) -> _Change | None:
    marker = value.marker
    if marker.policy_namespace != update.namespace:
        return None  # Flux applies only its own namespace's policies; `gitward check` says so
    policy = rules.get(ObjectKey(ImagePolicy.KIND, marker.policy_namespace, marker.policy_name))
    if not isinstance(policy, ImagePolicy):
        return None
    repository = rules.get(policy.repository_key)
    if not isinstance(repository, ImageRepository):
        return None
    path, line = value.marker.path, value.line
    selection = selections.get(policy.key.ref)
    current_tag = tag_of(value.value, marker.part)
    if policy.pin:
        if selection is None or selection.tag != policy.pin:
            gates.append(GateDecision(policy.key.ref, Gate.PIN, path, line, current_tag or value.value,
                                      policy.pin, f"pinned to {policy.pin}"
                                      + (f" (the policy selects {selection.tag})" if selection else ""),
                                      applied=True))
        selection = Selection(policy.pin, images=selection.images if selection else ())
    if selection is None:
        return None
    pinned = pinned_digest(value.value, marker.part)
    git_tag = deployed.get(policy.key.ref) if marker.part is MarkerPart.DIGEST else current_tag
    digest = _digest(policy, selection, pinned, git_tag)
    new = marker_value(marker.part, repository.image, selection.tag, digest or "")
    if new == value.value:
        return None
    held = _held(policy, repository, selection, current_tag, now,
                 _age(selection, marker.part, git_tag, pinned, digest))
    if held is None and digest is None:
        missing = selection.image(selection.tag).missing or "not in the ledger"
        held = Gate.DIGEST, (f"the digest of {selection.tag} is not known ({missing}); the "
                             "value keeps its pin until it is (a pin is never stripped)")
    if held is not None:
        gate, reason = held
        gates.append(GateDecision(policy.key.ref, gate, path, line, current_tag or value.value,
                                  selection.tag, reason))
        return None
    if pinned and digest != pinned and policy.digest_reflection is DigestReflection.NEVER:
        _warn_pin(warnings, value, policy, selection.tag)
    change = FileChange(path, line, value.value, new, policy.key.ref, marker.setter)
    image = marker_value(MarkerPart.IMAGE, repository.image, selection.tag, digest or "")
    return _Change(change, Edit(value, new), selection.decision_id, image)


def _digest(policy: ImagePolicy, selection: Selection, pinned: str, git_tag: str | None) -> str | None:
    """The digest a marked value gets: "" for none, None when it needs one that is not known.

    As Flux, a policy that reflects digests writes the selected tag's. Unlike Flux, a value that
    pins a digest keeps a pin under `Never` (Flux strips or blanks it): the same one while the
    tag stays, the new tag's when it moves.
    """
    reflects = policy.digest_reflection is not DigestReflection.NEVER
    if not reflects and not pinned:
        return ""
    if not reflects and git_tag == selection.tag:
        return pinned
    known = selection.image(selection.tag).digest
    if known:
        return known
    return pinned if git_tag == selection.tag else None


def _age(selection: Selection, part: MarkerPart, git_tag: str | None, pinned: str,
         digest: str | None) -> Comparison | None:
    """The selected image's age next to the one the value deploys; None when no image version
    moves: the value deploys none (a `:name` marker, an empty or untagged placeholder), or it
    keeps its tag and its pin (a new image name, a digest added to an unpinned reference)."""
    if part is MarkerPart.NAME or not (git_tag or pinned):
        return None
    if git_tag == selection.tag and (not pinned or not digest or digest == pinned):
        return None
    return compare(selection.image(git_tag or "", pinned), selection.image(selection.tag))


def _warn_pin(warnings: dict[tuple[str, int, str], Problem], value: MarkedValue,
              policy: ImagePolicy, tag: str) -> None:
    """A pinned digest that Flux would drop (digestReflectionPolicy Never) and gitward moves."""
    m = value.marker
    flux = "blank it" if m.part is MarkerPart.DIGEST else "strip it from the reference"
    message = (f"ImagePolicy {policy.key.ref} does not reflect digests (digestReflectionPolicy "
               f"Never): Flux would {flux}; gitward keeps the pin, with the digest of {tag}")
    pos = SourcePos(m.path, m.line, m.column, syntax="marker")
    warnings.setdefault((m.path, m.line, message), Problem(
        Severity.WARNING, message, pos, "digest-pin-never",
        "set digestReflectionPolicy: IfNotPresent (DSL: digest if-not-present) so Flux does the same"))


def _held(policy: ImagePolicy, repository: ImageRepository, selection: Selection,
          current: str | None, now: datetime, age: Comparison | None) -> tuple[Gate, str] | None:
    """The gate that holds this update back, and why; None when it may go ahead."""
    if policy.pin:
        return None
    if policy.hold is not None and selection.first_seen is not None:
        ready = selection.first_seen + policy.hold
        if now < ready:
            return Gate.HOLD, (f"{selection.tag} was first seen {_ago(now - selection.first_seen)}"
                               f" ago; hold {_ago(policy.hold)} lasts until "
                               f"{ready:%Y-%m-%dT%H:%M:%SZ}")
    if policy.never_downgrade and age is not None and age.age is Age.OLDER:
        return Gate.NEVER_DOWNGRADE, f"{age.basis} (never downgrade)"
    timed = age is not None and age.age is not Age.UNKNOWN
    if policy.never_downgrade and not timed and current and current != selection.tag:
        ranked = evaluate_policy(policy, repository, [current, selection.tag])
        if ranked.selected == current:
            return Gate.NEVER_DOWNGRADE, (f"{selection.tag} ranks below {current}, the tag git "
                                          "has now (never downgrade, by the policy's order: the "
                                          "images' ages are not known)")
    if age is not None and age.age in (Age.OLDER, Age.UNKNOWN) and not policy.allow_rollback:
        return Gate.ROLLBACK, _rollback_reason(policy, age)
    return None


def _rollback_reason(policy: ImagePolicy, age: Comparison) -> str:
    choice = policy.choice
    lowest = ("; the policy selects the LOWEST value (Flux: order desc), the oldest for date or "
              "build-number tags" if choice.kind is not PolicyKind.SEMVER
              and choice.direction is Direction.LOWEST else "")
    held = ": a rollback" if age.age is Age.OLDER else "; held as a possible rollback until it can"
    return (f"{age.basis}{held}{lowest}; to roll back on purpose, write `allow rollback` "
            '(Flux: annotation gitward.dev/allow-rollback: "true")')


def tag_of(value: str, part: MarkerPart) -> str | None:
    """The tag in a marked value: the value itself for `:tag`, after the last `:` of the name."""
    if part is MarkerPart.TAG:
        return value
    if part is not MarkerPart.IMAGE:
        return None
    name = value.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def deployed_tags(values: Sequence[MarkedValue]) -> dict[str, str]:
    """Policy `ns/name` -> the tag git deploys now, read from its first tag-bearing marker."""
    found: dict[str, str] = {}
    for v in values:
        key = f"{v.marker.policy_namespace}/{v.marker.policy_name}"
        tag = tag_of(v.value, v.marker.part)
        if key not in found and tag is not None:
            found[key] = tag
    return found


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60}m" if minutes >= 60 else f"{minutes}m"


Member = tuple[ImageUpdate, GitSource, str, list[_Change]]


def _action(key: tuple[ObjectKey, str], members: list[Member], files: Mapping[str, str],
            errors: list[PlanError]) -> CommitAction | None:
    """One commit for every automation of the group whose message renders; the others are
    reported in `errors` and their changes left out."""
    messages: list[str] = []
    rendered: list[Member] = []
    for member in members:
        update, _, _, changes = member
        if not changes:
            continue
        try:
            messages.append(_message(update, changes, files))
        except TemplateError as err:
            errors.append(PlanError(update.key.ref, template_problem(update, err)))
            continue
        rendered.append(member)
    unique: dict[tuple[str, int], _Change] = {}
    for _, _, _, changes in rendered:
        for c in changes:
            unique.setdefault((c.change.path, c.edit.value.start), c)
    if not unique:
        return None
    ordered = [unique[k] for k in sorted(unique)]
    first_update, source, checkout, _ = rendered[0]
    decisions = tuple(sorted({c.decision for c in ordered if c.decision is not None}))
    trailers = "".join(f"\n{TRAILER}: {d}" for d in decisions)
    message = "\n\n".join(messages) + ("\n" + trailers if trailers else "")
    return CommitAction(
        source=source.key,
        url=source.url,
        checkout_branch=checkout,
        push_branch=key[1],
        automations=tuple(u.key.ref for u, _, _, _ in rendered),
        author=first_update.author,
        message=message,
        files=tuple(c.change for c in ordered),
        decisions=decisions,
    )


def default_message(changes: list[FileChange]) -> str:
    """`Update images` and one `- old -> new (policy)` line per distinct change."""
    lines = sorted({f"- {c.old} -> {c.new} ({c.policy})" for c in changes})
    return "Update images\n\n" + "\n".join(lines)


def _message(update: ImageUpdate, changes: list[_Change], files: Mapping[str, str]) -> str:
    """The automation's message template rendered as Flux renders it (engine/evaluate/
    commitmessage.py); Flux's default text keeps gitward's list of changes."""
    if update.message_template == DEFAULT_COMMIT_MESSAGE:
        return default_message([c.change for c in changes])
    base = update.path.strip().removeprefix("./").strip("/")
    shown = [MessageChange(
        file=str(PurePosixPath(c.change.path).relative_to(base)) if base not in ("", ".") else c.change.path,
        obj=object_at(files.get(c.change.path, ""), c.change.path, c.change.line),
        old=c.change.old, new=c.change.new, setter=c.change.setter, policy=c.change.policy,
        image=c.image) for c in changes]
    return render_message(update, shown).rstrip()


def rewrite_all(rules: RuleSet, files: Mapping[str, str], selections: Mapping[str, Selection],
                now: datetime, actions: tuple[CommitAction, ...],
                scans: Scans | None = None) -> dict[str, str]:
    """The new text of every file any of the actions changes (for a local checkout).

    `scans` of the original texts are reused until an action rewrites a file.
    """
    current = dict(files)
    cache = dict(scans or {})
    keys_of: dict[str, list[tuple[str, str]]] = {}
    for key in cache:
        keys_of.setdefault(key[0], []).append(key)
    changed: dict[str, str] = {}
    for action in actions:
        for path, text in edits_for(rules, current, selections, now, action, cache).items():
            current[path] = changed[path] = text
            for key in keys_of.get(path, ()):
                cache.pop(key, None)
    return changed
