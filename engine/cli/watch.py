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
from engine.cli.state import open_for_reading
from engine.reconcile.watch import DEBOUNCE_SECONDS, WatchReport, watch as watch_checkout


@click.command("watch")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".")
@click.option("--write", is_flag=True,
              help="Apply the planned marker updates to the working tree (never committed).")
@click.option("--debounce", type=click.FloatRange(min=0), default=DEBOUNCE_SECONDS,
              show_default=True, metavar="SECONDS", help="Quiet time after the last change.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for a terminal; json: one object per line per plan.")
@click.pass_context
def watch(ctx: click.Context, path: Path, write: bool, debounce: float, fmt: str) -> int:
    """Watch a checkout and re-plan on every change to its rules or manifests.

    Each plan checks the rules, decides every image policy on the recorded tags (nothing is
    recorded), lists the marker updates they imply, and renders every Kustomization to compare
    it with the objects the store last recorded as applied: created, changed, pruned. Problems
    are printed with their file:line:col and the watcher keeps running; Ctrl-C stops it.
    The live cluster is not consulted (the comparison is with the store's inventory).
    Ignored: .git/, editor swap files, and paths Flux and .sourceignore leave out.

    \b
    Examples:
      gitward --state state.db.example watch examples/homelab
      gitward watch . --write -o json | jq -c .updates
    """
    store = open_for_reading(ctx)
    show = _json_line if fmt == "json" else _Screen(console(), path).show
    try:
        watch_checkout(path, store, show, write=write, debounce=debounce)
    finally:
        if store is not None:
            store.close()
    return 0


def _json_line(report: WatchReport) -> None:
    sys.stdout.write(json.dumps(report.to_json(), separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


class _Screen:
    """One block per plan: a rule with the time and the trigger, then what would change."""

    def __init__(self, out: Console, root: Path) -> None:
        self.out = out
        self.root = root

    def show(self, report: WatchReport) -> None:
        out = self.out
        when = report.at.astimezone().strftime("%H:%M:%S")
        cause = ", ".join(report.trigger[:3]) + (" …" if len(report.trigger) > 3 else "")
        title = f"{when}  {cause or f'watching {self.root}'}  ({report.seconds * 1000:.0f} ms)"
        out.print(Rule(title, style="green" if report.ok else "red", align="left"))
        for problem in (*report.errors, *report.warnings):
            out.print(Text(problem.render(), style="red" if problem in report.errors else "yellow"))
        if not report.ok:
            out.print(Text("✗ not planned: fix the errors above", style="bold red"))
            return
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
            if diff.empty:
                out.print(Text(f"Kustomization {diff.kustomization}: no object changes "
                               f"({diff.unchanged} unchanged)", style="dim"))
                continue
            out.print(Text(f"Kustomization {diff.kustomization}:", style="bold"))
            for label, style, ids in (("created", "green", diff.created),
                                      ("changed", "yellow", diff.changed),
                                      ("pruned", "red", diff.pruned),
                                      ("released", "magenta", diff.released)):
                for obj in ids:
                    out.print(Text.assemble(("  ► ", style), f"{obj} {label}"))
        for note in report.skipped:
            out.print(Text(f"skipped: {note}", style="dim"))
