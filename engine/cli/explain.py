"""`gitward explain image policy NS/NAME`: the last decision in words and a table."""

from __future__ import annotations

from pathlib import Path

import click

from engine.cli.repo import load_one, repo_option
from engine.cli.kinds import IMAGE_POLICY, find, parse_kind
from engine.cli.output import dump, table
from engine.cli.state import open_for_reading
from engine.errors import UserError
from engine.evaluate.explain import explain as explain_decision, explained
from engine.model import ImagePolicy
from engine.store import decisions as policy_decisions


@click.command()
@click.argument("words", nargs=-1, required=True)
@repo_option
@click.option("-n", "--namespace", default="flux-system", show_default=True)
@click.option("--limit", default=10, show_default=True, help="Ranked candidates to show.")
@click.option("--decision", "decision_id", type=int, metavar="ID",
              help="Explain this recorded decision (a policy_decisions id) instead of the last.")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_context
def explain(ctx: click.Context, words: tuple[str, ...], repo: Path, namespace: str, limit: int,
            decision_id: int | None, fmt: str) -> int:
    """Explain a policy's last decision: the winner, why the runner-up lost, what was dropped.

    \b
    Example:
      gitward explain image policy ledger/ledger --repo examples/homelab
    """
    kind, names = parse_kind(words)
    if kind is not IMAGE_POLICY or len(names) != 1:
        raise UserError("usage: gitward explain image policy NAMESPACE/NAME")
    rules = load_one(repo).rules
    policy = find(IMAGE_POLICY, rules, names[0], namespace)
    assert isinstance(policy, ImagePolicy)
    store = open_for_reading(ctx)
    decision = gate = None
    if store is not None:
        with store:
            if decision_id is not None:
                decision = policy_decisions.decision_by_id(store, policy.key.ref, decision_id)
                if decision is None:
                    raise UserError(f"ImagePolicy {policy.key.ref} has no recorded decision "
                                    f"{decision_id}")
            else:
                decision, gate = explained(policy_decisions.decisions(store, policy.key.ref, limit=20))
            if decision is not None:
                decision = policy_decisions.decision_trace(store, decision)
    if decision is None:
        raise UserError(f"ImagePolicy {policy.key.ref} has no recorded decision yet; run "
                        f"`gitward reconcile image policy {policy.key.ref}`")
    words_ = explain_decision(policy, decision, gate)
    ranked = [t for t in decision.trace if t.rank is not None][:limit]
    if fmt == "json":
        dump({"policy": policy.key.ref, "decided_at": decision.decided_at.isoformat(),
              "scan": decision.scan_id, "selected": decision.selected_tag,
              "previous": decision.previous_tag, "error": decision.error,
              "gate": gate.held if gate else None,
              "counts": dict(decision.verdict_counts), "summary": list(words_.summary),
              "lints": list(words_.lints), "tags": [t.to_json() for t in decision.trace]}, "json")
        return 0
    for line in words_.summary:
        click.echo(line)
    if ranked:
        click.echo()
        table(["RANK", "TAG", "VALUE", "VERDICT", "REASON"],
              [[t.rank, t.tag, t.value or "", t.verdict, t.reason] for t in ranked],
              wrap="REASON")
    for lint in words_.lints:
        click.echo(f"warning: {lint}")
    return 0
