"""A repository checkout as the evaluator sees it: its rules, and the files markers may be in.

Reading is here, at the edge; everything after it is pure. A file is read only when one of
the marker dialects applies to its name and its bytes contain the dialect's screen string, so
a large tree of unmarked manifests costs one read each and no YAML parse.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from engine.errors import Problem, Problems
from engine.evaluate.commitmessage import check_message
from engine.evaluate.markerlint import lint_markers
from engine.evaluate.plan import scan_files
from engine.evaluate.rewrite import MarkedValue
from engine.model import MarkerDialect, RuleSet
from engine.rules.check import check_rules
from engine.rules.ignore import walk_repo
from engine.rules.load import Repo, display_path, load_repo
from engine.rules.markers import dialect_applies


def read_marked_files(root: Path, dialects: tuple[MarkerDialect, ...]) -> dict[str, str]:
    """Repo-relative path -> text of every file a dialect could mark (BOM and CRLF kept)."""
    files: dict[str, str] = {}
    for rel, path in walk_repo(root):
        applicable = [d for d in dialects if dialect_applies(d, rel)]
        if not applicable:
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if not any(not d.screen or d.screen.encode() in data for d in applicable):
            continue
        files[rel] = data.decode("utf-8", errors="surrogateescape")
    return files


def locate_all(rules: RuleSet, files: dict[str, str]) -> tuple[list[MarkedValue], list[Problem]]:
    """Every marked value of every file, and the warnings for markers that were ignored."""
    values: list[MarkedValue] = []
    warnings: list[Problem] = []
    for scan in scan_files(rules, files).values():
        values.extend(scan.values)
        warnings.extend(scan.warnings)
    return values, warnings


def check_repository(root: Path) -> tuple[Repo, Problems]:
    """`gitward check`: load the rules, check them, and lint every marker in the tree."""
    problems = Problems()
    repo = load_repo(root, problems)
    check_rules(repo.rules, problems)
    for update in repo.rules.image_updates:
        problems.extend(check_message(update))
    values, warnings = locate_all(repo.rules, read_marked_files(root, repo.rules.marker_dialects))
    found = Problems()
    found.extend(warnings)
    lint_markers(repo.rules, values, found)
    problems.extend(_shown_from(root, p) for p in found.items)
    return repo, problems


def _shown_from(root: Path, problem: Problem) -> Problem:
    """A problem located by a repo-relative path, relocated to the path the user can open."""
    pos = problem.pos
    if pos is None or pos.path.startswith(str(root)):
        return problem
    if not (root / pos.path).exists():
        return problem
    return replace(problem, pos=replace(pos, path=display_path(root / pos.path)))
