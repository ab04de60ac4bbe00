"""Which files count, as source-controller builds a GitRepository's artifact.

Each table pins one behaviour of source-controller (fluxcd/pkg sourceignore over go-git v5.16's
gitignore matcher, whose components go through Go's filepath.Match). The component matching
and the pattern cases were checked with Go; the expected values are recorded here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import Problems
from engine.model import GitSource
from engine.rules.flux import read_flux
from engine.rules.ignore import DEFAULT_EXCLUSIONS, VCS_EXCLUSIONS, IgnoreRules, Pattern, walk_repo
from tests.conftest import realworld_repo


def judge(lines: list[tuple[str, str]], path: str, kind: str = "file", spec: str = "") -> bool:
    """Excluded? `lines` are (directory, pattern) as .sourceignore files give them."""
    files: list[tuple[str, str]] = []
    for directory, line in lines:
        if files and files[-1][0] == directory:
            files[-1] = (directory, files[-1][1] + line + "\n")
        else:
            files.append((directory, line + "\n"))
    return IgnoreRules.of(files, spec).ignored(path, is_dir=kind == "dir")


# Flux's defaults apply only while no .sourceignore and no spec.ignore gives a pattern; the
# version-control exclusions always apply. (pattern source, path, excluded)
REPLACES_DEFAULTS = [
    ([], "logo.png", True),
    ([], ".github/workflows/ci.yaml", True),
    ([], "apps/.sops.yaml", True),
    ([], ".git/config", True),
    ([("", "*.md")], "logo.png", False),  # any pattern drops the defaults...
    ([("", "*.md")], ".github/workflows/ci.yaml", False),
    ([("", "*.md")], ".git/config", True),  # ...but never the version-control ones
    ([("", "*.md")], ".gitignore", True),
    ([("deep/dir", "nothing-here")], "logo.png", False),  # even a pattern far away
]


@pytest.mark.parametrize(("lines", "path", "excluded"), REPLACES_DEFAULTS)
def test_any_pattern_replaces_the_default_exclusions(
    lines: list[tuple[str, str]], path: str, excluded: bool
) -> None:
    assert judge(lines, path) is excluded


def test_spec_ignore_replaces_the_defaults_too() -> None:
    rules = IgnoreRules.of((), spec_ignore="*.md\n")
    assert not rules.ignored("logo.png")
    assert rules.ignored("README.md")
    assert rules.ignored(".git/HEAD")
    assert [p.parts for p in IgnoreRules.of().patterns] == [
        Pattern.parse(line).parts for line in (*VCS_EXCLUSIONS, *DEFAULT_EXCLUSIONS)
    ]


# A .sourceignore applies below its own directory, relative to it; deeper files come later and
# win over shallower ones, spec.ignore comes last and wins over all. (lines, spec, path, excluded)
SCOPES = [
    ([("apps", "*.md")], "", "apps/README.md", True),
    ([("apps", "*.md")], "", "README.md", False),  # not above its directory
    ([("apps", "/drafts")], "", "apps/drafts/x.yaml", True),  # anchored at apps/
    ([("apps", "/drafts")], "", "drafts/x.yaml", False),
    ([("apps", "/drafts")], "", "apps/team/drafts/x.yaml", False),
    ([("", "*.yaml"), ("apps", "!keep.yaml")], "", "apps/keep.yaml", False),  # deeper wins
    ([("", "*.yaml"), ("apps", "!keep.yaml")], "", "keep.yaml", True),
    ([("apps", "!*.md")], "*.md", "apps/README.md", True),  # spec.ignore wins
    ([("apps", "*.md")], "!apps/README.md", "apps/README.md", False),
]


@pytest.mark.parametrize(("lines", "spec", "path", "excluded"), SCOPES)
def test_sourceignore_files_apply_relative_to_their_directory(
    lines: list[tuple[str, str]], spec: str, path: str, excluded: bool
) -> None:
    assert judge(lines, path, spec=spec) is excluded


# Every path is judged on its own (the archive walk does not prune excluded directories), so a
# negation brings back a file under an excluded directory, which git would not.
REINCLUDE = [
    (["dir/", "!dir/keep.yaml"], "dir/keep.yaml", False),
    (["dir/", "!dir/keep.yaml"], "dir/other.yaml", True),
    (["dir/", "!keep.yaml"], "dir/sub/keep.yaml", False),
    (["/*", "!/kubernetes"], "kubernetes/apps/x/ks.yaml", False),
    (["/*", "!/kubernetes"], "docs/index.md", True),
    (["/*", "!/kubernetes"], "README.md", True),
    (["/*", "!/deploy", "/deploy/**/*.md"], "deploy/a/b/notes.md", True),  # Flux's docs example
    (["/*", "!/deploy", "/deploy/**/*.md"], "deploy/a/b/app.yaml", False),
]


@pytest.mark.parametrize(("lines", "path", "excluded"), REINCLUDE)
def test_a_negation_reincludes_below_an_excluded_directory(lines: list[str], path: str, excluded: bool) -> None:
    assert judge([("", line) for line in lines], path) is excluded


# go-git's matching: a name pattern matches any component; a pattern with `/` matches from its
# directory and takes what is below; `dir/` needs a directory; components use filepath.Match.
# (pattern, path, kind, excluded) - each checked with Go.
MATCHING = [
    ("foo", "a/foo/b.yaml", "file", True),  # a component anywhere
    ("foo/", "a/foo", "file", False),  # dir-only, and foo is a file
    ("foo/", "a/foo", "dir", True),
    ("foo/", "a/foo/b.yaml", "file", True),
    ("a/b", "a/b/c/d.yaml", "file", True),  # a prefix match takes what is below
    ("a/b", "x/a/b", "file", False),  # with a slash: from the top of its directory
    ("**/b", "x/y/b/c.yaml", "file", True),
    ("a/**/c", "a/c", "file", True),
    ("a/**/c", "a/x/y/c", "file", True),
    ("a/**", "a", "file", True),  # go-git's trailing ** also takes a itself
    ("/**", "a", "file", False),  # and a lone /** takes nothing
    ("foo**", "foo1", "file", True),  # without a slash, ** is two stars of filepath.Match
    ("a/foo**", "a/foo1", "file", False),  # with one, a component holding ** never matches
    ("[^a]*.yaml", "b.yaml", "file", True),  # Go negates with ^ ...
    ("[^a]*.yaml", "a.yaml", "file", False),
    ("[!a]*.yaml", "a.yaml", "file", True),  # ... not with !: [!a] is the set {!, a}
    ("[!a]*.yaml", "b.yaml", "file", False),
    ("\\#notes", "#notes", "file", True),
    ("\\!keep", "!keep", "file", True),
    ("a\\*", "a*", "file", True),
    ("a\\*", "ab", "file", False),
    ("[z-a]x", "bx", "file", False),  # a reversed range matches nothing
    ("[a-", "a-", "file", False),  # malformed: never matches
    ("a[", "a[", "file", False),
    ("trailing\\", "trailing\\", "file", False),
    ("?.yaml", "é.yaml", "file", True),  # ? is one character
    ("name  ", "name", "file", True),  # trailing spaces go
    ("name\\ ", "name ", "file", True),  # unless escaped
    ("  lead", "lead", "file", False),  # leading ones stay
]


@pytest.mark.parametrize(("pattern", "path", "kind", "excluded"), MATCHING)
def test_patterns_match_as_go_git_does(pattern: str, path: str, kind: str, excluded: bool) -> None:
    assert judge([("", pattern)], path, kind) is excluded


def test_comments_blank_lines_and_crlf() -> None:
    rules = IgnoreRules.of([("", "# a comment\r\n\r\n   \r\n*.md\r\n #x\n")])
    assert rules.ignored("README.md")
    assert rules.ignored(" #x")  # only a line starting with # is a comment
    assert not rules.ignored("# a comment")


# -- the walk ------------------------------------------------------------------------------------


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_walk_reads_every_sourceignore_and_skips_nothing_for_being_hidden(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        ".hidden/app.yaml": "", ".github/workflows/ci.yaml": "", "logo.png": "",
        "apps/.sourceignore": "*.md\n", "apps/README.md": "", "apps/app.yaml": "",
        ".git/HEAD": "", "docs/.sourceignore": "!*.png\n",
    })
    assert [rel for rel, _ in walk_repo(root)] == [
        ".github/workflows/ci.yaml",  # a .sourceignore exists: no default exclusions
        ".hidden/app.yaml",  # hidden directories count
        "apps/.sourceignore",
        "apps/app.yaml",
        "docs/.sourceignore",
        "logo.png",
    ]


def test_walk_without_patterns_uses_the_defaults(tmp_path: Path) -> None:
    root = tree(tmp_path, {".hidden/app.yaml": "", ".github/workflows/ci.yaml": "", "logo.png": "", "a.yaml": ""})
    assert [rel for rel, _ in walk_repo(root)] == [".hidden/app.yaml", "a.yaml"]


def test_walk_enters_an_excluded_directory_only_for_a_negation(tmp_path: Path) -> None:
    root = tree(tmp_path, {"vendor/keep.yaml": "", "vendor/drop.yaml": "", "app.yaml": ""})
    assert [r for r, _ in walk_repo(root, "vendor/\n")] == ["app.yaml"]
    assert [r for r, _ in walk_repo(root, "vendor/\n!vendor/keep.yaml\n")] == ["app.yaml", "vendor/keep.yaml"]
    rules = IgnoreRules.of((), "vendor/\n!/other\n")
    assert rules.prunable("vendor")
    assert not IgnoreRules.of((), "vendor/\n!keep.yaml\n").prunable("vendor")


def test_a_sourceignore_inside_an_excluded_directory_still_counts(tmp_path: Path) -> None:
    # source-controller searches every directory but .git for .sourceignore files
    root = tree(tmp_path, {"build/.sourceignore": "x\n", "logo.png": "", "build/out.yaml": ""})
    assert [r for r, _ in walk_repo(root, "/build\n")] == ["logo.png"]


def test_bjw_s_home_ops_spec_ignore_yields_only_the_kubernetes_tree() -> None:
    # its flux-system GitRepository's spec.ignore: `/*` then `!/kubernetes`, with comments
    root = realworld_repo("bjw-s__home-ops")
    problems = Problems()
    rel = "kubernetes/main/flux/config/cluster.yaml"
    [source] = [r for r in read_flux(rel, (root / rel).read_text(), problems) if isinstance(r, GitSource)]
    assert "!/kubernetes" in source.ignore
    files = [rel for rel, _ in walk_repo(root, source.ignore)]
    assert files and all(rel.startswith("kubernetes/") for rel in files)
    everything = {p.relative_to(root).as_posix() for p in (root / "kubernetes").rglob("*") if p.is_file()}
    assert set(files) == everything


# A directory's file judge (what the walk asks for each file) must give `ignored`'s verdict.
_COMPONENTS = ["a", "b", "ab", "x.yaml", "*", "a*", "*.yaml", "?", "[ab]", "[^a]*", "**", "\\*", "[a-"]


@st.composite
def _patterns(draw: st.DrawFn) -> tuple[str, str]:
    parts = draw(st.lists(st.sampled_from(_COMPONENTS), min_size=1, max_size=3))
    line = "/".join(parts)
    if draw(st.booleans()):
        line = "/" + line
    if draw(st.booleans()):
        line += "/"
    if draw(st.booleans()):
        line = "!" + line
    return draw(st.sampled_from(["", "a", "a/b"])), line


@given(
    lines=st.lists(_patterns(), max_size=6),
    path=st.lists(st.sampled_from(["a", "b", "ab", "x.yaml", "c", "*", ".git"]), min_size=1, max_size=4),
    defaults=st.booleans(),
)
@settings(max_examples=400, deadline=None)
def test_a_directory_judges_its_files_as_ignored_does(lines: list[tuple[str, str]], path: list[str],
                                                      defaults: bool) -> None:
    rules = IgnoreRules.of([] if defaults else lines)
    rel = "/".join(path)
    directory, _, name = rel.rpartition("/")
    assert rules.files_in(directory).ignored(rel) is rules.ignored(rel)
    if rules.prunable(rel):
        assert rules.ignored(rel, is_dir=True)


def test_the_default_exclusions_judge_files_by_name_alone() -> None:
    """The defaults need no whole-path match per file: every pattern is a name check or decided
    for the whole directory (the point of narrowing the rules per directory)."""
    rules = IgnoreRules.of()
    judge_ = rules.files_in("cluster/apps")
    assert all(not isinstance(check, Pattern) for check, _ in judge_.checks)
    assert judge_ is rules.files_in("")
    assert judge_.ignored("cluster/apps/logo.png") and judge_.ignored("cluster/apps/.sops.yaml")
    assert not judge_.ignored("cluster/apps/app.yaml")
    assert IgnoreRules.of().files_in(".github/workflows").ignored(".github/workflows/ci.yaml")
