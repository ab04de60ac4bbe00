"""Which files of a repository count: the files source-controller puts in a GitRepository's artifact.

source-controller (fluxcd/pkg sourceignore, whose matcher is go-git v5.16's gitignore) decides
it this way, and gitward applies the same everywhere it walks a checkout (loading rules, finding
markers, rendering, telling a dirty checkout):

- Patterns come from every `.sourceignore` in the tree (the root's first, then each directory's
  in byte order of names, depth first; every directory but `.git` is searched, excluded ones
  too), each scoped to its own directory, then from the GitRepository's `spec.ignore`.
- When there are none, the version-control exclusions and Flux's defaults apply (images,
  archives, CI files, `.sops.yaml`...). When there are any, only the version-control ones stay
  under them: a `.sourceignore` or `spec.ignore` REPLACES the default list.
- Every path is judged on its own by the last pattern that matches it; an excluded directory
  does not hide what is below it, so `!dir/keep.yaml` (or `!keep.yaml`) brings back a file under
  an excluded `dir/`, which git would not. Nothing is skipped for being hidden.
- Matching is go-git's, not git's: a pattern without `/` matches any component of the path
  (so every file below a directory it names); a pattern with `/` matches from its directory
  and takes everything below what it matched (`/*` is every path, `!/kubernetes` the whole
  tree below kubernetes/); `**` is a whole component; a component is matched as Go's
  filepath.Match does (`[^a]` negates, `[!a]` does not; a malformed pattern never matches).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path

from engine.rules.confine import LinkRefusal, link_refusal

IGNORE_FILE = ".sourceignore"

VCS_EXCLUSIONS: tuple[str, ...] = (".git/", ".gitignore", ".gitmodules", ".gitattributes")
"""Always applied, beneath every other pattern."""

DEFAULT_EXCLUSIONS: tuple[str, ...] = (
    # images and archives
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
    # CI configuration
    ".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml",
    "cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml",
    # tooling
    "**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml",
)
"""Applied only when neither a `.sourceignore` nor `spec.ignore` gives a pattern."""

_ANY_DEPTH = "**"


class Outcome(StrEnum):
    """How one pattern (or the last that matches) judges a path."""

    NONE = "none"
    EXCLUDE = "exclude"
    INCLUDE = "include"


class _BadGlob(ValueError):
    """A component pattern Go's filepath.Match calls malformed (ErrBadPattern)."""


def _glob_regex(glob: str) -> re.Pattern[str] | None:
    """A component pattern as a regex with filepath.Match's meaning; None when malformed."""
    try:
        return re.compile("".join(_glob_pieces(glob)), re.DOTALL)
    except _BadGlob:
        return None


def _glob_pieces(glob: str) -> Iterator[str]:
    i = 0
    while i < len(glob):
        c = glob[i]
        if c == "*":
            yield "[^/]*"
        elif c == "?":
            yield "[^/]"
        elif c == "\\":
            if i + 1 == len(glob):
                raise _BadGlob(glob)
            i += 1
            yield re.escape(glob[i])
        elif c == "[":
            piece, i = _glob_class(glob, i + 1)
            yield piece
            continue
        else:
            yield re.escape(c)
        i += 1


def _glob_class(glob: str, i: int) -> tuple[str, int]:
    """A `[...]` class starting after its `[`: the regex for it and where the glob goes on."""
    negated = glob.startswith("^", i)
    i += negated
    ranges: list[str] = []
    count = 0
    while True:
        if glob.startswith("]", i) and count > 0:
            break
        lo, i = _class_char(glob, i)
        hi = lo
        if glob.startswith("-", i):
            hi, i = _class_char(glob, i + 1)
        if lo <= hi:  # Go's reversed range matches nothing
            ranges.append(f"{re.escape(lo)}-{re.escape(hi)}")
        count += 1
    body = "".join(ranges)
    if negated:
        return (f"[^{body}]" if body else "(?s:.)"), i + 1
    return (f"[{body}]" if body else "(?!)"), i + 1


def _class_char(glob: str, i: int) -> tuple[str, int]:
    """One character of a class range (Go's getEsc): escapes allowed, `-` and `]` not."""
    if i >= len(glob) or glob[i] in "-]":
        raise _BadGlob(glob)
    if glob[i] == "\\":
        i += 1
        if i >= len(glob):
            raise _BadGlob(glob)
    if i + 1 >= len(glob):  # a class must be closed after this character
        raise _BadGlob(glob)
    return glob[i], i + 1


@dataclass(frozen=True)
class Pattern:
    """One line of a `.sourceignore` or `spec.ignore`, scoped to `domain` (a directory's parts)."""

    domain: tuple[str, ...]
    parts: tuple[str, ...]
    negated: bool
    dir_only: bool
    has_slash: bool

    @staticmethod
    def parse(line: str, domain: tuple[str, ...] = ()) -> Pattern:
        negated = line.startswith("!")
        if negated:
            line = line[1:]
        if not line.endswith("\\ "):
            line = line.rstrip(" ")
        dir_only = line.endswith("/")
        if dir_only:
            line = line[:-1]
        return Pattern(domain, tuple(line.split("/")), negated, dir_only, "/" in line)

    def match(self, path: Sequence[str], is_dir: bool) -> Outcome:
        """How this pattern judges a repo-relative path given as its components."""
        depth = len(self.domain)
        if len(path) <= depth or tuple(path[:depth]) != self.domain:
            return Outcome.NONE
        rest = path[depth:]
        hit = self._glob_match(rest, is_dir) if self.has_slash else self._name_match(rest, is_dir)
        if not hit:
            return Outcome.NONE
        return Outcome.INCLUDE if self.negated else Outcome.EXCLUDE

    def _name_match(self, path: Sequence[str], is_dir: bool) -> bool:
        """No `/`: any component may match; a `dir/` pattern needs the last one to be a directory."""
        regex = _component(self.parts[0])
        if regex is None:
            return False
        for i, name in enumerate(path):
            if not regex.fullmatch(name):
                continue
            return not (self.dir_only and not is_dir and i == len(path) - 1)
        return False

    def _glob_match(self, path: Sequence[str], is_dir: bool) -> bool:
        """With `/`: components in sequence from the domain; what is left below is taken too."""
        matched = traverse = False
        rest = list(path)
        for i, part in enumerate(self.parts):
            if part == "":
                traverse = False
                continue
            if part == _ANY_DEPTH:
                if i == len(self.parts) - 1:
                    break
                traverse = True
                continue
            if _ANY_DEPTH in part or not rest:
                return False
            regex = _component(part)
            if regex is None:
                return False
            if traverse:
                traverse = False
                while rest:
                    name = rest.pop(0)
                    if regex.fullmatch(name):
                        matched = True
                        break
                    if not rest:
                        matched = False
            else:
                if not regex.fullmatch(rest[0]):
                    return False
                matched = True
                rest.pop(0)
        if matched and self.dir_only and not is_dir and not rest:
            return False
        return matched

    def may_match_below(self, directory: Sequence[str]) -> bool:
        """Whether some path below `directory` could match (False only when it surely cannot)."""
        depth = min(len(self.domain), len(directory))
        if tuple(directory[:depth]) != self.domain[:depth]:
            return False
        if not self.has_slash or len(self.domain) >= len(directory):
            return True
        first = next((p for p in self.parts if p), "")
        if first == _ANY_DEPTH or first == "":
            return True
        regex = _component(first)
        return regex is not None and regex.fullmatch(directory[len(self.domain)]) is not None

    def on_files_in(self, directory: Sequence[str]) -> tuple[Outcome, re.Pattern[str] | None] | None:
        """How this pattern judges the files of `directory`, worked out once for all of them:
        (NONE, None) when it matches none, (its outcome, None) when it matches every one, (its
        outcome, regex) when it matches those whose name the regex matches, and None when only
        `match` on each file's whole path can tell."""
        depth = len(self.domain)
        if depth > len(directory) or tuple(directory[:depth]) != self.domain:
            return Outcome.NONE, None
        glob = self._any_component()
        if glob is None:
            return None
        regex = _component(glob)
        if regex is None:
            return Outcome.NONE, None
        outcome = Outcome.INCLUDE if self.negated else Outcome.EXCLUDE
        if any(regex.fullmatch(name) for name in directory[depth:]):
            return outcome, None
        return (Outcome.NONE, None) if self.dir_only else (outcome, regex)

    def _any_component(self) -> str | None:
        """The one component glob of a pattern that matches any component of a path (`name`,
        or `**/name`, which go-git matches alike); None for any other pattern."""
        if not self.has_slash:
            return self.parts[0]
        if len(self.parts) == 2 and self.parts[0] == _ANY_DEPTH and self.parts[1] and _ANY_DEPTH not in self.parts[1]:
            return self.parts[1]
        return None


_COMPONENTS: dict[str, re.Pattern[str] | None] = {}


def _component(glob: str) -> re.Pattern[str] | None:
    if glob not in _COMPONENTS:
        _COMPONENTS[glob] = _glob_regex(glob)
    return _COMPONENTS[glob]


def read_patterns(text: str, domain: tuple[str, ...] = ()) -> list[Pattern]:
    """The patterns of an ignore file: one a line, `#` lines and blank lines skipped."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [
        Pattern.parse(line, domain)
        for line in (raw.removesuffix("\r") for raw in lines)
        if not line.startswith("#") and line.strip()
    ]


@dataclass(frozen=True)
class IgnoreRules:
    """Every pattern applied to one checkout, lowest priority first."""

    patterns: tuple[Pattern, ...]

    @staticmethod
    def of(files: Sequence[tuple[str, str]] = (), spec_ignore: str = "") -> IgnoreRules:
        """The rules from `.sourceignore` texts, as (directory, text) in source-controller's
        order (see `load`), and the GitRepository's `spec.ignore`."""
        found: list[Pattern] = []
        for directory, text in files:
            found += read_patterns(text, tuple(directory.split("/")) if directory else ())
        found += read_patterns(spec_ignore)
        base = VCS_EXCLUSIONS if found else VCS_EXCLUSIONS + DEFAULT_EXCLUSIONS
        return IgnoreRules((*(Pattern.parse(p) for p in base), *found))

    @staticmethod
    def load(root: Path, spec_ignore: str = "") -> IgnoreRules:
        """The rules of the checkout at `root`: every `.sourceignore` in it, then `spec_ignore`."""
        return IgnoreRules.of(list(_ignore_files(_Listing(root))), spec_ignore)

    def judge(self, path: Sequence[str], is_dir: bool) -> tuple[int, Outcome]:
        """The index of the last pattern that matches, and its outcome ((-1, NONE) if none)."""
        for i in range(len(self.patterns) - 1, -1, -1):
            outcome = self.patterns[i].match(path, is_dir)
            if outcome is not Outcome.NONE:
                return i, outcome
        return -1, Outcome.NONE

    def ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Whether a repo-relative POSIX path is left out of the artifact."""
        return self.judge(rel.split("/"), is_dir)[1] is Outcome.EXCLUDE

    def files_in(self, rel_dir: str) -> FileJudge:
        """How the rules judge the files of one directory (`ignored` for each, at a fraction of
        the cost: the patterns are narrowed to the directory once, and a directory no pattern
        names a component of shares one judge with the root)."""
        directory = tuple(rel_dir.split("/")) if rel_dir else ()
        if self._unnamed(directory):
            return self._root_files
        return self._narrowed(directory)

    @cached_property
    def _root_files(self) -> FileJudge:
        return self._narrowed(())

    @cached_property
    def _components(self) -> re.Pattern[str] | None:
        """Any component a pattern could match, when every pattern is a name pattern (see
        `Pattern.on_files_in`) of the root's scope; None otherwise."""
        globs = [p._any_component() for p in self.patterns]
        if any(g is None for g in globs) or any(p.domain for p in self.patterns):
            return None
        regexes = [r for r in (_component(g) for g in globs if g is not None) if r is not None]
        return _alternation(regexes) if regexes else re.compile("(?!)")

    def _unnamed(self, directory: Sequence[str]) -> bool:
        """Whether every pattern judges what lies in `directory` as it judges what lies in the
        root: all are name patterns of the root's scope, and none matches a component."""
        components = self._components
        return components is not None and not any(components.fullmatch(name) for name in directory)

    def _narrowed(self, directory: tuple[str, ...]) -> FileJudge:
        checks: list[tuple[re.Pattern[str] | Pattern, Outcome]] = []
        verdict = Outcome.NONE
        for pattern in reversed(self.patterns):
            found = pattern.on_files_in(directory)
            if found is None:
                checks.append((pattern, Outcome.INCLUDE if pattern.negated else Outcome.EXCLUDE))
                continue
            outcome, regex = found
            if outcome is Outcome.NONE:
                continue
            if regex is None:
                verdict = outcome
                break
            checks.append((regex, outcome))
        return FileJudge(tuple(_merged(checks)), verdict)

    def prunable(self, rel_dir: str) -> bool:
        """Whether no file below an (excluded) directory can be brought back, so a walk may skip it."""
        path = rel_dir.split("/")
        if self._unnamed(path):
            return False
        index, outcome = self.judge(path, True)
        if outcome is not Outcome.EXCLUDE:
            return False
        later = self.patterns[index + 1 :]
        return not any(p.negated and p.may_match_below(path) for p in later)


@dataclass(frozen=True)
class FileJudge:
    """The rules narrowed to the files of one directory: name checks (and whole patterns, for
    the few `match` must judge), highest priority first, and the verdict when none matches."""

    checks: tuple[tuple[re.Pattern[str] | Pattern, Outcome], ...]
    otherwise: Outcome

    def ignored(self, rel: str) -> bool:
        """Whether the file at `rel`, in this judge's directory, is left out (as
        `IgnoreRules.ignored`)."""
        name = rel.rpartition("/")[2]
        for check, outcome in self.checks:
            if isinstance(check, Pattern):
                if check.match(rel.split("/"), False) is not Outcome.NONE:
                    return outcome is Outcome.EXCLUDE
            elif check.fullmatch(name):
                return outcome is Outcome.EXCLUDE
        return self.otherwise is Outcome.EXCLUDE


_Check = tuple[re.Pattern[str] | Pattern, Outcome]


def _merged(checks: list[_Check]) -> Iterator[_Check]:
    """Adjacent name checks with the same outcome as one regex: which of them matches does not
    change the verdict."""
    run: list[re.Pattern[str]] = []
    run_outcome = Outcome.NONE
    for check, outcome in checks:
        if isinstance(check, re.Pattern) and (not run or outcome is run_outcome):
            run.append(check)
            run_outcome = outcome
            continue
        if run:
            yield _alternation(run), run_outcome
            run = []
        if isinstance(check, re.Pattern):
            run, run_outcome = [check], outcome
        else:
            yield check, outcome
    if run:
        yield _alternation(run), run_outcome


def _alternation(regexes: list[re.Pattern[str]]) -> re.Pattern[str]:
    if len(regexes) == 1:
        return regexes[0]
    return re.compile("|".join(f"(?:{r.pattern})" for r in regexes), re.DOTALL)


class _Listing:
    """Directory entries of a checkout, each directory listed once and in byte order of names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, list[tuple[str, bool, bool]]] = {}
        self.refused: dict[str, LinkRefusal] = {}
        """Symbolic links that loop, resolve outside the root or dangle, by repo-relative path."""

    def entries(self, rel_dir: str) -> list[tuple[str, bool, bool]]:
        """(name, is a directory, is a file) of each entry: a symlink to a file in the tree is a
        file, a symlinked directory is not entered (both as gitward has always walked), and a
        symlink that loops, leaves the tree or dangles is neither (it is noted in `refused`)."""
        if rel_dir not in self.cache:
            directory = self.root / rel_dir if rel_dir else self.root
            try:
                found = [self._entry(rel_dir, e) for e in os.scandir(directory)]
            except OSError:
                found = []
            self.cache[rel_dir] = sorted(found, key=lambda entry: entry[0].encode("utf-8", "surrogateescape"))
        return self.cache[rel_dir]

    def _entry(self, rel_dir: str, entry: os.DirEntry[str]) -> tuple[str, bool, bool]:
        if entry.is_symlink():
            refusal = link_refusal(self.root, Path(entry.path))
            if refusal is None and not os.path.exists(entry.path):
                refusal = LinkRefusal.DANGLING
            if refusal is not None:
                self.refused[f"{rel_dir}/{entry.name}" if rel_dir else entry.name] = refusal
                return entry.name, False, False
        return entry.name, entry.is_dir(follow_symlinks=False), entry.is_file()


def _ignore_files(listing: _Listing, rel_dir: str = "") -> Iterator[tuple[str, str]]:
    """(directory, text) of every `.sourceignore`, in source-controller's order (see module doc)."""
    entries = listing.entries(rel_dir)
    if any(name == IGNORE_FILE and is_file for name, _, is_file in entries):
        try:
            path = listing.root / rel_dir / IGNORE_FILE
            yield rel_dir, path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            pass
    for name, is_dir, _ in entries:
        if is_dir and name != ".git":
            yield from _ignore_files(listing, f"{rel_dir}/{name}" if rel_dir else name)


def walk_repo(root: Path, spec_ignore: str = "",
              refused: dict[str, LinkRefusal] | None = None) -> Iterator[tuple[str, Path]]:
    """(repo-relative POSIX path, path) of every file that counts, in lexical order (see
    `walk_paths`)."""
    for rel in walk_paths(root, spec_ignore, refused):
        yield rel, root / rel


def walk_paths(root: Path, spec_ignore: str = "",
               refused: dict[str, LinkRefusal] | None = None) -> Iterator[str]:
    """The repo-relative POSIX path of every file that counts, in lexical order.

    `spec_ignore` is the GitRepository's `spec.ignore`. Excluded directories are entered only
    when a later `!` pattern could bring a file below them back. A symbolic link that loops,
    resolves outside `root` or dangles is never yielded; when `refused` is given, each one the ignore
    rules do not exclude is put there with the reason.
    """
    listing = _Listing(root)
    rules = IgnoreRules.of(list(_ignore_files(listing)), spec_ignore)
    yield from _walk(listing, "", rules, refused)


def _walk(listing: _Listing, rel_dir: str, rules: IgnoreRules,
          refused: dict[str, LinkRefusal] | None) -> Iterator[str]:
    files = rules.files_in(rel_dir)
    for name, is_dir, is_file in listing.entries(rel_dir):
        rel = f"{rel_dir}/{name}" if rel_dir else name
        if is_dir:
            if not rules.prunable(rel):
                yield from _walk(listing, rel, rules, refused)
        elif is_file and not files.ignored(rel):
            yield rel
        elif refused is not None and rel in listing.refused and not files.ignored(rel):
            refused[rel] = listing.refused[rel]
