"""`gitward check`: load every rule and manifest, resolve references, print located problems."""

from __future__ import annotations

import json
from pathlib import Path

import click

from engine.cli.repo import repo_option, spec
from engine.errors import Problems
from engine.reconcile.repo import Loaded, check_repository


@click.command()
@repo_option
@click.option("--strict", is_flag=True, help="Treat warnings (lints) as errors.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for scripts.")
def check(repo: Path, strict: bool, fmt: str) -> int:
    """Check rule files and Flux manifests: syntax, references, regexes, ranges, lints.

    The report goes to standard output: each problem as `path:line:col: error: message` with
    the offending line, the objects Flux would fail, and a summary line (`gitward check >
    report.txt` keeps all of it). Standard error carries only what stops the check itself (an
    unreadable --repo, a bad option). Exits 0 when clean, 2 on errors (or on warnings with
    --strict).

    \b
    Example:
      gitward check --repo examples/homelab
    """
    loaded, problems = check_repository(spec(repo))
    failed = bool(problems.errors) or (strict and bool(problems.warnings))
    if fmt == "json":
        click.echo(json.dumps(_as_json(loaded, problems, failed), indent=2))
    else:
        for problem in problems:
            click.echo(problem.render())
        for line in _failing(loaded):
            click.echo(line)
        click.echo(_summary(loaded, problems))
    return 2 if failed else 0


def _failing(loaded: Loaded) -> list[str]:
    """The objects Flux would fail, and why (their errors are above)."""
    return [f"✗ {s.key.kind} {s.key.ref}: {s.reason}" for s in loaded.skipped]


def _summary(loaded: Loaded, problems: Problems) -> str:
    errors, warnings = len(problems.errors), len(problems.warnings)
    verdict = "✗" if errors else "✔"
    objects = sum(len(c.everything) for c in loaded.clusters)
    files = len({f for c in loaded.clusters for f in c.files})
    where = ""
    if len(loaded.clusters) > 1 or loaded.clusters[0].entry:
        where = " in " + ", ".join(f"cluster {c.name}" for c in loaded.clusters)
    return (
        f"{verdict} {objects} objects from {files} files{where}: "
        f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    )


def _as_json(loaded: Loaded, problems: Problems, failed: bool) -> dict[str, object]:
    return {
        "ok": not failed,
        "objects": sum(len(c.everything) for c in loaded.clusters),
        "clusters": [{"path": c.name, "objects": len(c.everything),
                      "skipped": [s.to_json() for s in c.skipped]} for c in loaded.clusters],
        "errors": len(problems.errors),
        "warnings": len(problems.warnings),
        "problems": [p.to_json() for p in problems],
    }
