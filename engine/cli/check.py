"""`gitward check`: load every rule and manifest, resolve references, print located problems."""

from __future__ import annotations

import json
from pathlib import Path

import click

from engine.errors import Problems
from engine.reconcile.repo import check_repository

repo_option = click.option(
    "--repo",
    "repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The repository checkout to read rules and manifests from.",
)


@click.command()
@repo_option
@click.option("--strict", is_flag=True, help="Treat warnings (lints) as errors.")
@click.option("-o", "--output", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text for people, json for scripts.")
def check(repo: Path, strict: bool, fmt: str) -> int:
    """Check rule files and Flux manifests: syntax, references, regexes, ranges, lints.

    Prints `path:line:col: error: message` with the offending line; exits 0 when clean,
    2 on errors (or on warnings with --strict).

    \b
    Example:
      gitward check --repo examples/homelab
    """
    loaded, problems = check_repository(repo)
    failed = bool(problems.errors) or (strict and bool(problems.warnings))
    if fmt == "json":
        click.echo(json.dumps(_as_json(problems, len(loaded.rules), failed), indent=2))
    else:
        for problem in problems:
            click.echo(problem.render(), err=True)
        click.echo(_summary(problems, len(loaded.rules), len(loaded.files)), err=True)
    return 2 if failed else 0


def _summary(problems: Problems, objects: int, files: int) -> str:
    errors, warnings = len(problems.errors), len(problems.warnings)
    verdict = "✗" if errors else "✔"
    return (
        f"{verdict} {objects} objects from {files} files: "
        f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    )


def _as_json(problems: Problems, objects: int, failed: bool) -> dict[str, object]:
    return {
        "ok": not failed,
        "objects": objects,
        "errors": len(problems.errors),
        "warnings": len(problems.warnings),
        "problems": [p.to_json() for p in problems],
    }
