"""`gitward images import` and `gitward images tags`: the tag ledger in the state store."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import click

from engine.cli.images import read_tag_file
from engine.cli.repo import load_one, repo_option
from engine.cli.kinds import IMAGE_REPOSITORY, find
from engine.cli.output import dump, table
from engine.cli.state import open_for_reading, open_for_writing
from engine.clock import utcnow
from engine.errors import UserError
from engine.evaluate.ledger import in_policy_order
from engine.model import Decision, ImageRepository, RuleSet
from engine.reconcile.images import record_tags
from engine.rules.duration import DurationError, parse_age
from engine.rules.ocitag import shown_tag
from engine.store import decisions as policy_decisions, queries


@click.command("import")
@click.argument("repository")
@click.option("--tags", "tag_file", required=True, metavar="FILE",
              help="One tag per line; - reads standard input.")
@repo_option
@click.option("-n", "--namespace", default="flux-system", show_default=True)
@click.pass_context
def import_tags(ctx: click.Context, repository: str, tag_file: str, repo: Path,
                namespace: str) -> int:
    """Record a scan of an ImageRepository from a file instead of its registry.

    For air-gapped clusters, replays and offline tests; the ledger treats it as any scan.

    \b
    Example:
      gitward images import podinfo/podinfo --tags tags.txt
    """
    rules = _rules(repo)
    target = find(IMAGE_REPOSITORY, rules, repository, namespace)
    assert isinstance(target, ImageRepository)
    tags = read_tag_file(tag_file)
    now = utcnow()
    with open_for_writing(ctx) as store:
        scan = record_tags(store, target, tags, started_at=now, finished_at=now)
    click.echo(f"✔ recorded scan #{scan.id} of ImageRepository {target.key.ref}: "
               f"{len(set(tags))} tags ({scan.tag_count} after exclusions)")
    return 0


@click.command("tags")
@click.argument("repository")
@click.option("--since", metavar="DURATION", help="Only tags first seen within this long (e.g. 24h).")
@click.option("--all", "include_gone", is_flag=True, help="Include tags the registry no longer lists.")
@click.option("--policy", metavar="NAME",
              help="List in this ImagePolicy's order (default: the one policy that decides on "
                   "the repository).")
@click.option("-n", "--namespace", default="flux-system", show_default=True)
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json", "yaml"]),
              default="table", show_default=True)
@click.pass_context
def list_ledger(ctx: click.Context, repository: str, since: str | None, include_gone: bool,
                policy: str | None, namespace: str, fmt: str) -> int:
    """List an ImageRepository's tag ledger in its policy's order: the selected tag first, the
    other candidates by rank, then the tags the policy passed over, the excluded ones last.

    The order is that of the policy's latest decision (as `gitward explain` shows it); without
    one, newest first by first seen.

    \b
    Example:
      gitward --state state.db.example images tags ledger/ledger --since 30d
    """
    ref = _ref(repository, namespace)
    cutoff = utcnow() - _age(since) if since else None
    store = open_for_reading(ctx)
    if store is None:
        raise UserError("no state store yet: scan or import tags first")
    with store:
        found = queries.tags(store, ref, include_gone=include_gone)
        decisions = policy_decisions.evaluated_by_policy(store, ref)
        chosen = _ordering(ref, decisions, _ref(policy, namespace) if policy else None)
        ordering = (policy_decisions.decision_verdicts(store, decisions[chosen])
                    if chosen else None)
    rows = in_policy_order([t for t in found if cutoff is None or t.first_seen >= cutoff], ordering)
    if fmt != "table":
        dump([{"tag": r.tag.tag, "rank": r.rank, "verdict": r.verdict or None,
               "first_seen": r.tag.first_seen.isoformat(), "last_seen": r.tag.last_seen.isoformat(),
               "gone_at": r.tag.gone_at.isoformat() if r.tag.gone_at else None,
               "excluded": r.tag.excluded, "digest": r.tag.digest} for r in rows], fmt)
        return 0
    if not rows:
        click.echo(f"no tags recorded for ImageRepository {ref}", err=True)
        return 0
    table(["RANK", "VERDICT", "FIRST SEEN", "LAST SEEN", "TAG"],
          [[r.rank or "", r.verdict, _stamp(r.tag.first_seen), _stamp(r.tag.last_seen), shown_tag(r.tag.tag)]
           for r in rows], wrap="TAG")
    return 0


def _ref(name: str, namespace: str) -> str:
    ns, _, short = name.rpartition("/")
    return f"{ns or namespace}/{short}"


def _ordering(repository: str, decisions: dict[str, Decision], wanted: str | None) -> str | None:
    """The policy whose latest decision orders the list, said on stderr; None: newest first."""
    if wanted is not None and wanted not in decisions:
        click.echo(f"ImagePolicy {wanted} has no decision on ImageRepository {repository}: "
                   "newest first", err=True)
        return None
    chosen = wanted or (next(iter(decisions)) if len(decisions) == 1 else None)
    if chosen is not None:
        made = decisions[chosen].decided_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        click.echo(f"in the order of ImagePolicy {chosen}, decided {made}", err=True)
    elif decisions:
        click.echo(f"ImagePolicies {', '.join(sorted(decisions))} decide on ImageRepository "
                   f"{repository}: pass --policy for one's order; newest first", err=True)
    else:
        click.echo(f"no policy has decided on ImageRepository {repository} yet: newest first",
                   err=True)
    return chosen


def _stamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _rules(repo: Path) -> RuleSet:
    rules = load_one(repo).rules
    return rules


def _age(text: str) -> timedelta:
    try:
        return parse_age(text)
    except DurationError as err:
        raise UserError(f"--since: {err}") from None
