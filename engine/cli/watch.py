"""`gitward watch PATH`: re-plan a local checkout on every save, and print what would change."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from engine.cli.output import console
from engine.cli.state import open_for_reading, open_for_writing
from engine.observe.cluster import ClusterError, KubeconfigError
from engine.reconcile.order import Reconciled
from engine.reconcile.watch import APPLY_TIMEOUT, DEBOUNCE_SECONDS, LiveCluster, ObjectDiff, WatchReport
from engine.reconcile.watch import watch as watch_checkout

DRIFT_LINES = 8
"""Field changes shown per drifted object on screen (`-o json` carries them all)."""


@click.command("watch")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".")
@click.option("--write", is_flag=True,
              help="Apply the planned marker updates to the working tree (never committed).")
@click.option("--cluster", "live", is_flag=True,
              help="Compare with the live cluster (server-side dry-runs, never a write) instead "
                   "of the store's last recorded objects.")
@click.option("--apply", "apply", is_flag=True,
              help="After each plan without errors, apply every Kustomization that is not "
                   "suspended, rendered from the working tree, to the cluster (implies --cluster; "
                   f"health waits at most {APPLY_TIMEOUT.total_seconds():g}s). Recorded in the "
                   "store as revision worktree@sha256:<12 hex>.")
@click.option("--kubeconfig", type=click.Path(dir_okay=False, path_type=Path),
              help="With --cluster/--apply: the kubeconfig (else KUBECONFIG, ~/.kube/config, "
                   "in-cluster).")
@click.option("--context", "kube_context", help="With --cluster/--apply: the kubeconfig context.")
@click.option("--debounce", type=click.FloatRange(min=0), default=DEBOUNCE_SECONDS,
              show_default=True, metavar="SECONDS", help="Quiet time after the last change.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for a terminal; json: one object per line per plan.")
@click.pass_context
def watch(ctx: click.Context, path: Path, write: bool, live: bool, apply: bool,
          kubeconfig: Path | None, kube_context: str | None, debounce: float, fmt: str) -> int:
    """Watch a checkout and re-plan on every change to its rules or manifests.

    Each plan checks the rules, decides every image policy on the recorded tags (nothing is
    recorded), lists the marker updates they imply, and renders every Kustomization to compare
    it with the objects the store last recorded as applied: created, changed, pruned. Problems
    are printed with their file:line:col and the watcher keeps running; Ctrl-C stops it.
    Ignored: .git/, editor swap files, and paths Flux and .sourceignore leave out.

    With --cluster the objects are compared with the live cluster instead, as `gitward diff
    kustomization` does (with each drifted field); an API server that is down or refuses is
    that plan's problem, and the next save connects again. With --apply, each plan without
    errors is then applied: the working tree's rendering of every Kustomization not suspended,
    dependencies first, pruning as the Kustomization says. A dev loop: a `gitward run` on the
    same cluster puts git's version back on its next interval unless the Kustomization is
    suspended there (`gitward suspend kustomization NAME`), as with `flux build | kubectl apply`.

    \b
    Examples:
      gitward --state state.db.example watch examples/homelab
      gitward watch . --write -o json | jq -c .updates
      gitward watch . --cluster --context kind-dev
      gitward --state dev.db watch . --apply --write
    """
    if (kubeconfig or kube_context) and not (live or apply):
        raise click.UsageError("--kubeconfig and --context need --cluster or --apply")
    cluster = LiveCluster(kubeconfig, kube_context, apply=apply) if live or apply else None
    store = open_for_writing(ctx) if apply else open_for_reading(ctx)
    show = _json_line if fmt == "json" else _Screen(console(), path, applying=apply).show
    try:
        if cluster is not None:
            try:
                cluster.client()  # a wrong kubeconfig is bad input (exit 2); a server down is not
            except KubeconfigError:
                raise
            except ClusterError:
                pass  # each plan reports it and connects again
        watch_checkout(path, store, show, write=write, debounce=debounce, cluster=cluster)
    finally:
        if cluster is not None:
            cluster.close()
        if store is not None:
            store.close()
    return 0


def _json_line(report: WatchReport) -> None:
    sys.stdout.write(json.dumps(report.to_json(), separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


class _Screen:
    """One block per plan: a rule with the time and the trigger, then what would change."""

    def __init__(self, out: Console, root: Path, *, applying: bool = False) -> None:
        self.out = out
        self.root = root
        self.applying = applying

    def show(self, report: WatchReport) -> None:
        out = self.out
        when = report.at.astimezone().strftime("%H:%M:%S")
        cause = ", ".join(report.trigger[:3]) + (" …" if len(report.trigger) > 3 else "")
        title = f"{when}  {cause or f'watching {self.root}'}  ({report.seconds * 1000:.0f} ms)"
        out.print(Rule(title, style="green" if report.ok else "red", align="left"))
        for problem in (*report.errors, *report.warnings):
            out.print(Text(problem.render(), style="red" if problem in report.errors else "yellow"))
        if not report.planned:
            out.print(Text("✗ not planned: fix the errors above", style="bold red"))
            return
        if not report.ok:
            out.print(Text("✗ nothing applied: fix the errors above" if self.applying
                           else "✗ the plan below is incomplete: fix the errors above", style="bold red"))
        written = set(report.written)
        for change in report.updates:
            mark = "✔ wrote" if change.path in written else "→"
            out.print(Text.assemble((f"{mark} ", "cyan"), f"{change.path}:{change.line}  ",
                                    (change.policy, "bold"), f"  {change.old} -> {change.new}"))
        for gate in report.gates:
            state = "applied" if gate.applied else "held"
            out.print(Text(f"{state}: {gate.path}:{gate.line}  {gate.policy}  {gate.gate.value}: "
                           f"{gate.reason}", style="dim"))
        if not report.updates:
            out.print(Text("no marker updates", style="dim"))
        for diff in report.objects:
            self._objects(diff)
        for outcome in report.applied:
            self._applied(outcome)
        for note in report.skipped:
            out.print(Text(f"skipped: {note}", style="dim"))

    def _objects(self, diff: ObjectDiff) -> None:
        out = self.out
        where = "the cluster" if diff.against == "cluster" else "the store"
        if diff.empty:
            out.print(Text(f"Kustomization {diff.kustomization}: no object changes against {where} "
                           f"({diff.unchanged} unchanged)", style="dim"))
            return
        out.print(Text(f"Kustomization {diff.kustomization} against {where}:", style="bold"))
        drift = {a.object: a for a in diff.drift}
        for label, style, ids in (("created", "green", diff.created),
                                  ("changed", "yellow", diff.changed),
                                  ("pruned", "red", diff.pruned),
                                  ("released", "magenta", diff.released)):
            for obj in ids:
                out.print(Text.assemble(("  ► ", style), f"{obj} {label}"))
                action = drift.get(obj)
                if action is None:
                    continue
                if action.reason:
                    out.print(Text(f"      {action.reason}", style="dim"))
                for change in action.diff[:DRIFT_LINES]:
                    out.print(Text(f"      {change}", style="dim"))
                if len(action.diff) > DRIFT_LINES:
                    out.print(Text(f"      … {len(action.diff) - DRIFT_LINES} more (-o json has all)",
                                   style="dim"))

    def _applied(self, outcome: Reconciled) -> None:
        out, ref = self.out, outcome.kustomization.key.ref
        if outcome.skipped:
            out.print(Text(f"• {outcome.skipped}", style="dim"))
            return
        if outcome.blocked or outcome.error:
            out.print(Text(f"✗ Kustomization {ref} not applied: {outcome.blocked or outcome.error}",
                           style="red"))
            return
        if outcome.result is None:
            return
        ok = outcome.result.ok
        out.print(Text(f"{'✔ applied' if ok else '✗ applied with failures:'} Kustomization {ref} "
                       f"at {outcome.revision}", style="green" if ok else "bold red"))
        for line in outcome.result.summary().splitlines():
            out.print(Text(f"  {line}", style="" if ok else "red"))
