"""A checkout's files that count, read at most once each.

Discovery renders many kustomizations over one checkout, and kustomizations share files (a
base, a component, a large CRD bundle), so every reader goes through one `RepoTree`: the
files source-controller's artifact would hold (Flux's exclusions, `.sourceignore`, the
GitRepository's `spec.ignore`), each read once and kept. It is pure data access: paths and
text, no YAML.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from engine.errors import Problem, Problems
from engine.rules.confine import LinkRefusal, refusal_message
from engine.rules.ignore import walk_paths
from engine.rules.load import display_path, read_text


class RepoTree:
    """The files of a checkout that count, as repo-relative POSIX paths ("" is the root)."""

    __slots__ = ("root", "files", "_paths", "_dirs", "_texts", "_problems", "_shown", "_refused",
                 "_places", "__weakref__")

    def __init__(self, root: Path, spec_ignore: str = "") -> None:
        self.root = root
        self._refused: dict[str, LinkRefusal] = {}
        self.files: tuple[str, ...] = tuple(walk_paths(root, spec_ignore, self._refused))
        """Every file that counts, in walk order (lexical, depth first)."""
        self._paths = frozenset(self.files)
        dirs = {""}
        for rel in self.files:
            parent = posixpath.dirname(rel)
            while parent not in dirs:
                dirs.add(parent)
                parent = posixpath.dirname(parent)
        self._dirs = frozenset(dirs)
        self._texts: dict[str, str | None] = {}
        self._problems: dict[str, tuple[Problem, ...]] = {}
        self._shown: dict[str, str] = {}
        self._places: tuple[str, str] | None = None

    def path(self, rel: str) -> Path | None:
        """Where a file of the tree is on disk; None when it is not one."""
        return self.root / rel if rel in self._paths else None

    def is_file(self, rel: str) -> bool:
        return rel in self._paths

    def is_dir(self, rel: str) -> bool:
        """Whether `rel` is the root or a directory holding at least one file that counts."""
        return rel in self._dirs

    def text(self, rel: str, problems: Problems | None = None) -> str | None:
        """A file's text (UTF-8, BOM tolerated), read once; None when it is not in the tree or
        cannot be read, and then the located reason goes to `problems` (each time it is asked)."""
        if rel not in self._texts:
            path = self.path(rel)
            found = Problems()
            self._texts[rel] = read_text(path, self.display(rel), found) if path else None
            self._problems[rel] = tuple(found.items)
        if problems is not None:
            problems.extend(self._problems[rel])
        return self._texts[rel]

    def data(self, rel: str) -> bytes | None:
        """A file's bytes, read anew (for the few readers that need them exactly: kustomize's
        generators); None when it is not in the tree or cannot be read."""
        path = self.path(rel)
        try:
            return path.read_bytes() if path is not None else None
        except OSError:
            return None

    @property
    def refused(self) -> Mapping[str, LinkRefusal]:
        """The symbolic links the walk refused (engine/rules/confine.py), in walk order."""
        return MappingProxyType(self._refused)

    def refusal(self, rel: str) -> str | None:
        """Why `rel` is no file of the tree when it is a symbolic link that loops, resolves
        outside the repository or dangles (engine/rules/confine.py); None otherwise."""
        refused = self._refused.get(rel)
        return refusal_message(refused) if refused is not None else None

    def display(self, rel: str) -> str:
        """The path to show users: relative to the working directory when below it."""
        shown = self._shown.get(rel)
        if shown is None:
            shown = self._shown[rel] = self._shown_file(rel) if rel in self._paths else \
                display_path(self.root / rel if rel else self.root)
        return shown

    def _shown_file(self, rel: str) -> str:
        """`display_path` of a file of the tree, without resolving its directories anew: the walk
        enters no symbolic link, so they resolve to the resolved root and the same names."""
        if self._places is None:
            try:
                self._places = (str(self.root.resolve()), str(Path.cwd().resolve()))
            except (OSError, RuntimeError):
                return display_path(self.root / rel)
        real_root, cwd = self._places
        where = posixpath.join(real_root, rel)
        prefix = cwd if cwd.endswith("/") else cwd + "/"
        return where[len(prefix):] if where.startswith(prefix) else str(self.root / rel)
