"""`gitward export` (Flux YAML, like `flux export`) and `gitward convert` (Flux YAML <-> DSL)."""

from __future__ import annotations

from pathlib import Path

import click

from engine.cli.repo import load_one, repo_option
from engine.cli.kinds import KINDS, find, parse_kind
from engine.errors import Problems, UserError
from engine.model import Rule
from engine.rules.conversion import Syntax, convert as convert_rules, left_out
from engine.rules.flux import write_flux
from engine.rules.load import RULE_SUFFIX, load_files


@click.command(context_settings={"ignore_unknown_options": False})
@repo_option
@click.argument("words", nargs=-1)
@click.option("-n", "--namespace", default="flux-system", show_default=True,
              help="Namespace of the named object.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Objects of every namespace.")
@click.option("--all", "every", is_flag=True, help="Every object of the kind.")
def export(repo: Path, words: tuple[str, ...], namespace: str, all_namespaces: bool,
           every: bool) -> int:
    """Write objects as clean Flux YAML (like `flux export`).

    \b
    Examples:
      gitward export all --repo examples/homelab
      gitward export source git flux-system
      gitward export image policy --all -A
    """
    rules = load_one(repo).rules
    chosen: list[Rule] = []
    if not words or words == ("all",):
        chosen = [r for k in KINDS for r in k.objects(rules)]
    else:
        kind, rest = parse_kind(words)
        if rest:
            chosen = [find(kind, rules, name, namespace) for name in rest]
        elif every or all_namespaces:
            everywhere = list(kind.objects(rules))
            chosen = [r for r in everywhere if all_namespaces or r.key.namespace == namespace]
            if not chosen:
                return _nothing_in(kind.flux_kind, namespace, everywhere, all_namespaces)
        else:
            raise UserError(f"name the {kind.flux_kind} to export, or pass --all")
    click.echo(write_flux(chosen), nl=False)
    return 0


def _nothing_in(kind: str, namespace: str, everywhere: list[Rule], all_namespaces: bool) -> int:
    """Say that nothing was exported: exit 1 when the kind has objects in other namespaces (a
    backup of an empty namespace is almost always a missing `-A`), 0 when it has none at all."""
    if all_namespaces or not everywhere:
        click.echo(f"no {kind} found in any namespace: nothing exported", err=True)
        return 0
    others = sorted({r.key.namespace for r in everywhere})
    click.echo(f"no {kind} in namespace {namespace}: nothing exported; {len(everywhere)} "
               f"{'is' if len(everywhere) == 1 else 'are'} in namespace"
               f"{'s' * (len(others) != 1)} {', '.join(others)}: pass -A for every namespace "
               "(or -n NAMESPACE)", err=True)
    return 1


@click.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "target", type=click.Choice([s.value for s in Syntax]),
              help="Output syntax (default: the other one of the first file's).")
def convert(files: tuple[Path, ...], target: str | None) -> int:
    """Turn Flux YAML into gitward rules, or rules into Flux YAML.

    Flux fields gitward does not model travel too (as `flux` fields in the rules); what cannot
    travel is a warning naming it, and the exit code is then 1.

    \b
    Examples:
      gitward convert cluster/apps/podinfo/image-policy.yaml
      gitward convert cluster/apps/ledger/ledger.rules --to flux
    """
    problems = Problems()
    rules = load_files(files, problems, builtin=False)
    problems.raise_if_errors()
    syntax = Syntax(target or ("flux" if files[0].suffix == RULE_SUFFIX else "dsl"))
    text = convert_rules(rules, syntax, problems)
    for problem in problems:
        click.echo(problem.render(), err=True)
    lost = left_out(problems)
    if lost:
        click.echo(f"{lost} left out of the output: see the warnings above", err=True)
    click.echo(text, nl=False)
    return 1 if lost else 0
