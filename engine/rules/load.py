"""Find and read every rule in a repository: `*.rules` files and Flux manifests.

The walk is cheap on purpose: a YAML file is parsed only when its bytes mention
`toolkit.fluxcd.io`, so a tree of plain Kubernetes manifests costs one read per file.
Problems are collected, never raised, so `gitward check` can show all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterable, Iterator, Mapping

from engine.errors import Problems, SourcePos
from engine.model import Rule, RuleSet, SkippedObject
from engine.rules.confine import LinkRefusal, refusal_message
from engine.rules.flux import read_flux
from engine.rules.ignore import walk_paths, walk_repo
from engine.rules.parse import parse_rules
from engine.shipped import shipped_dir

RULE_SUFFIX = ".rules"
YAML_SUFFIXES = (".yaml", ".yml")
FLUX_SCREEN = b"fluxcd.io"


def builtin_rules_dir() -> Path:
    """The shipped `rules/` folder (marker dialects), in a checkout or an installed wheel."""
    return shipped_dir("rules")


@dataclass(frozen=True)
class Repo:
    """A loaded repository: its root, its rules and the files they came from."""

    root: Path
    rules: RuleSet
    files: tuple[str, ...]


def display_path(path: Path) -> str:
    """A path relative to the working directory when it lies below it, else as given; the
    last component is never resolved, so a symbolic link is shown where it stands."""
    try:
        return str((path.parent.resolve() / path.name).relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):
        return str(path)


def walk_files(root: Path) -> Iterator[Path]:
    """Every file below `root` that counts (Flux's exclusions, `.sourceignore`), in lexical order."""
    for _, path in walk_repo(root):
        yield path


def walk_rule_files(root: Path, problems: Problems) -> Iterator[tuple[str, Path]]:
    """`walk_repo` over a checkout, with each refused symbolic link named `*.rules`, `*.yaml`
    or `*.yml` a located problem at the link: an error for one that loops or resolves outside
    the tree, a warning for one that dangles (nothing is there to read, but a file the user
    meant to be read is not)."""
    refused: dict[str, LinkRefusal] = {}
    yield from rule_files(root, walk_paths(root, refused=refused), refused, problems)


def rule_files(root: Path, files: Iterable[str], refused: Mapping[str, LinkRefusal],
               problems: Problems) -> Iterator[tuple[str, Path]]:
    """`walk_rule_files` over a walk already made: its files, then its refused links (read
    once the files are, as a walk fills them in)."""
    for rel in files:
        yield rel, root / rel
    for rel, refusal in refused.items():
        if rel.endswith((RULE_SUFFIX, *YAML_SUFFIXES)):
            report = problems.warning if refusal is LinkRefusal.DANGLING else problems.error
            report(refusal_message(refusal), SourcePos(display_path(root / rel)), code="symlink")


def rule_files_fingerprint(root: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and mtime of every file `load_repo` would read: equal fingerprints mean the
    rules need no reload (how `gitward run` notices a pulled or edited checkout)."""
    found = []
    for path in walk_files(root):
        if path.suffix == RULE_SUFFIX or path.suffix in YAML_SUFFIXES:
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(found)


def read_text(path: Path, shown: str, problems: Problems) -> str | None:
    """A file's text (UTF-8, BOM tolerated), or None with a located problem."""
    try:
        data = path.read_bytes()
    except OSError as err:
        problems.error(f"cannot read file: {err.strerror or err}", SourcePos(shown))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        problems.error(f"not UTF-8 text: byte 0x{data[err.start]:02x} cannot be decoded",
                       SourcePos(shown, line, column))
        return None


def read_rule_file(path: Path, problems: Problems, *, screen: bool = False,
                   skipped: list[SkippedObject] | None = None) -> list[Rule]:
    """Rules from one file, by its suffix; `screen` skips YAML that mentions no Flux group.

    The screen comes first: a tree of plain manifests costs one read per file, nothing more.
    """
    if path.suffix in YAML_SUFFIXES and screen:
        try:
            if FLUX_SCREEN not in path.read_bytes():
                return []
        except OSError as err:
            problems.error(f"cannot read file: {err.strerror or err}", SourcePos(display_path(path)))
            return []
    shown = display_path(path)
    if path.suffix == RULE_SUFFIX:
        text = read_text(path, shown, problems)
        return parse_rules(shown, text, problems) if text is not None else []
    if path.suffix in YAML_SUFFIXES:
        text = read_text(path, shown, problems)
        return read_flux(shown, text, problems, skipped) if text is not None else []
    problems.error("not a rule file: expected *.rules, *.yaml or *.yml", SourcePos(shown))
    return []


def load_files(paths: Iterable[Path], problems: Problems, *, builtin: bool = True) -> RuleSet:
    """Rules from the given files (plus the built-in ones), duplicates reported."""
    rules: list[Rule] = []
    if builtin:
        rules.extend(builtin_rules(problems))
    for path in paths:
        rules.extend(read_rule_file(path, problems))
    return dedupe(rules, problems)


def load_repo(root: Path, problems: Problems, *, builtin: bool = True) -> Repo:
    """Every rule in the tree below `root`: `*.rules` files and Flux manifests, file by file.

    This is the whole-tree reading; engine/evaluate/discover.py finds Flux objects as Flux does.
    """
    rules: list[Rule] = list(builtin_rules(problems)) if builtin else []
    if not root.is_dir():
        problems.error("repository path is not a directory", SourcePos(display_path(root)))
        return Repo(root, RuleSet(), ())
    rules.extend(load_tree(walk_rule_files(root, problems), problems))
    found = dedupe(rules, problems)
    files = tuple(dict.fromkeys(r.origin.path for r in found.all()
                                if r.origin is not None and r.origin.path and not is_builtin_path(r.origin.path)))
    return Repo(root, found, files)


def load_tree(files: Iterable[tuple[str, Path]], problems: Problems, *, flux: bool = True,
              dsl: bool = True, skip: Collection[str] = (), hidden: bool = True,
              skipped: list[SkippedObject] | None = None) -> list[Rule]:
    """Rules from the given (repo-relative path, path) files: `*.rules` files when `dsl`, Flux
    manifests when `flux`; `skip` names files to pass over, `hidden=False` passes over every
    file under a directory whose name starts with a dot (an archive, a tool's folder). Objects
    left out for an error are named in `skipped` when given."""
    rules: list[Rule] = []
    for rel, path in files:
        if rel in skip or (not hidden and any(part.startswith(".") for part in rel.split("/")[:-1])):
            continue
        if (path.suffix == RULE_SUFFIX and dsl) or (path.suffix in YAML_SUFFIXES and flux):
            rules.extend(read_rule_file(path, problems, screen=True, skipped=skipped))
    return rules


def builtin_rules(problems: Problems) -> list[Rule]:
    folder = builtin_rules_dir()
    if not folder.is_dir():  # a broken install: without them every marker dialect is unknown
        problems.error(f"gitward's built-in rules are missing: expected them in {folder} "
                       "(reinstall gitward)")
        return []
    rules: list[Rule] = []
    for path in sorted(folder.glob(f"*{RULE_SUFFIX}")):
        rules.extend(read_rule_file(path, problems))
    return rules


def dedupe(rules: Iterable[Rule], problems: Problems) -> RuleSet:
    """Keep the first definition of each object; report every later one where it stands."""
    first: dict[object, Rule] = {}
    kept: list[Rule] = []
    for rule in rules:
        seen = first.get(rule.key)
        if seen is None:
            first[rule.key] = rule
            kept.append(rule)
            continue
        where = f" (first defined at {seen.origin})" if seen.origin else ""
        problems.error(
            f"{rule.KIND} {_name(rule)} is defined twice{where}",
            rule.origin,
            code="duplicate",
        )
    return RuleSet.of(kept)


def is_builtin_path(path: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(builtin_rules_dir().resolve())
    except OSError:
        return False


def _name(rule: Rule) -> str:
    return rule.name if not rule.key.namespace else f"{rule.key.namespace}/{rule.name}"
