"""`gitward images`: offline policy tests here; the tag ledger (import, tags, engine/cli/tags.py)
and marker updates (check, engine/cli/updates.py; update, engine/cli/commits.py) are imported
when they run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine.cli.lazy import LazyCommand, LazyGroup
from engine.cli.output import table
from engine.errors import Problems, UserError
from engine.evaluate.explain import decision_lints
from engine.evaluate.policy import Evaluation, evaluate_policy
from engine.model import ImagePolicy, ImageRepository, RuleSet
from engine.rules.check import check_patterns, lint_policies
from engine.rules.load import load_files
from engine.rules.ocitag import is_valid_tag, shown_tag

COMMANDS = {
    "check": LazyCommand(
        "engine.cli.updates:check_updates",
        "List the marker updates that would be made: `file:line  policy  old -> new`."),
    "import": LazyCommand(
        "engine.cli.tags:import_tags",
        "Record a scan of an ImageRepository from a file instead of its registry."),
    "tags": LazyCommand(
        "engine.cli.tags:list_ledger",
        "List an ImageRepository's tag ledger in its policy's order: the selected tag first, the "
        "other candidates by rank, then the tags the policy passed over, the excluded ones last."),
    "update": LazyCommand(
        "engine.cli.commits:update_images",
        "Rewrite marked values in the checkout, commit them, and optionally push."),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
def images() -> None:
    """Image repositories and policies: the tag ledger and offline policy tests."""


def read_tag_file(name: str) -> list[str]:
    """One tag per line (`-` for stdin); blank lines and `#` comments are skipped."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read tags from {name}: {err}") from None
    return [t for line in text.splitlines() if (t := line.split("#", 1)[0].strip())]


RUNNERS_UP = 5
"""How many ranked tags after the selected one `images test` shows without --all."""


@images.command("test")
@click.option("--policy", "policy_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A Flux ImagePolicy manifest or a rules file holding one image policy.")
@click.option("--tags", "tag_file", required=True, metavar="FILE",
              help="One tag per line; - reads standard input.")
@click.option("--all", "show_all", is_flag=True,
              help="Print every tag's line, not just the selected tag and the runners-up.")
@click.option("-o", "--output", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def test_policy(policy_file: Path, tag_file: str, show_all: bool, fmt: str) -> int:
    """Evaluate one policy against a tag list: no store, no network.

    Prints the selected tag and the runners-up, then how many tags got each verdict; --all
    prints every tag's line. JSON always holds every tag, written as it goes. Exit 0 when a
    tag is selected, 1 when none is, 2 when the policy is invalid. An ImageRepository in the
    same file supplies the exclusion list (else Flux's default).

    \b
    Example:
      gitward images test --policy image-policy.yaml --tags tags.txt -o json
    """
    problems = Problems()
    rules = load_files([policy_file], problems, builtin=False)
    problems.raise_if_errors()
    if len(rules.image_policies) != 1:
        raise UserError(f"{policy_file} holds {len(rules.image_policies)} image policies; "
                        "images test needs exactly one")
    policy = rules.image_policies[0]
    repository = rules.get(policy.repository_key)
    repo = repository if isinstance(repository, ImageRepository) else None
    check_patterns(RuleSet.of([policy, *([repo] if repo else [])]), problems)
    problems.raise_if_errors()
    tags = read_tag_file(tag_file)
    invalid = [tag for tag in tags if not is_valid_tag(tag)]
    evaluation = evaluate_policy(policy, repo, [tag for tag in tags if is_valid_tag(tag)] if invalid else tags)
    chosen = evaluation.top(1)
    lints = _lints(policy, evaluation.selected, chosen[0].value if chosen and evaluation.selected else None)
    if invalid:
        lints.append(_invalid_lint(invalid))
    if fmt == "json":
        _stream_json(evaluation, lints)
    else:
        shown = evaluation.tags if show_all else evaluation.top(1 + RUNNERS_UP)
        if shown:
            table(["RANK", "TAG", "VALUE", "VERDICT", "REASON"],
                  [[t.rank or "", shown_tag(t.tag), t.value if t.value is not None else "", t.verdict,
                    t.reason] for t in shown], wrap="REASON")
        click.echo(_summary(evaluation, len(shown), show_all))
        click.echo(f"selected: {shown_tag(evaluation.selected)}" if evaluation.selected
                   else f"no tag selected: {evaluation.error}")
        for lint in lints:
            click.echo(f"warning: {lint}", err=True)
    if evaluation.invalid:
        return 2
    return 0 if evaluation.selected else 1


def _summary(evaluation: Evaluation, shown: int, show_all: bool) -> str:
    """`100000 tags: 1 selected, 13802 lower, ...` (verdicts with no tag left out)."""
    counts = [f"{n} {verdict}" for verdict, n in evaluation.counts.items() if n]
    total = sum(evaluation.counts.values())
    line = f"{total} {'tag' if total == 1 else 'tags'}: {', '.join(counts) or 'none'}"
    if not show_all and shown < total:
        line += f" ({shown} shown; --all prints every tag)"
    return line


def _stream_json(evaluation: Evaluation, lints: list[str]) -> None:
    """The report as one JSON object, its `tags` written one line at a time as they come."""
    write = sys.stdout.write
    head = {"selected": evaluation.selected, "error": evaluation.error,
            "counts": evaluation.counts, "lints": lints}
    write(json.dumps(head, indent=2)[:-2] + ',\n  "tags": [')
    separator = "\n    "
    for line in evaluation.trace_json():
        write(separator + json.dumps(line))
        separator = ",\n    "
    write("\n  ]\n}\n" if separator != "\n    " else "]\n}\n")


def _invalid_lint(invalid: list[str]) -> str:
    """Why tags of the list were not weighed: a scan records such tags invalid and no decision
    weighs them, so a test that did would select what the daemon never could."""
    first = ", ".join(shown_tag(tag) for tag in invalid[:3])
    more = f" and {len(invalid) - 3} more" if len(invalid) > 3 else ""
    return (f"{len(invalid)} {'tag is' if len(invalid) == 1 else 'tags are'} outside the OCI tag "
            f"grammar and not weighed, as a scan records them invalid: {first}{more}")


def _lints(policy: ImagePolicy, selected: str | None, value: str | None) -> list[str]:
    """Static lints from `gitward check` plus the ones about this selection, without repeats."""
    problems = Problems()
    lint_policies(RuleSet.of([policy]), problems)
    found = decision_lints(policy, selected, value)
    codes = {code for code, _ in found}
    return [m for _, m in found] + [p.message for p in problems.warnings if p.code not in codes]
