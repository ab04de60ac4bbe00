"""A checkout's marked files are read once per pass and revision, and afresh in the next pass."""

from __future__ import annotations

from pathlib import Path

from engine.errors import Problems
from engine.model import RuleSet
from engine.reconcile.repo import MarkedTrees, read_marked_tree
from engine.rules.load import load_repo

RULES = """image repository apps/web {
  image "registry.example.com/apps/web"
}

image policy apps/web {
  repository web
  select highest semver ">=1.0.0"
}
"""


def deployment(tag: str) -> str:
    return ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n"
            "    spec:\n      containers:\n        - name: web\n"
            f'          image: registry.example.com/apps/web:{tag} # {{"$imagepolicy": "apps:web"}}\n')


def checkout(root: Path, tag: str) -> RuleSet:
    (root / "apps").mkdir(parents=True, exist_ok=True)
    (root / "apps.rules").write_text(RULES)
    (root / "apps" / "web.yaml").write_text(deployment(tag))
    (root / "apps" / "plain.yaml").write_text("kind: ConfigMap\n")
    problems = Problems()
    rules = load_repo(root, problems).rules
    assert not problems.errors
    return rules


def test_a_marked_tree_holds_the_marked_files_their_values_and_the_deployed_tags(tmp_path: Path) -> None:
    rules = checkout(tmp_path, "1.2.0")
    marked = read_marked_tree(tmp_path, rules)
    assert marked.root == tmp_path
    assert sorted(marked.files) == ["apps/web.yaml"]  # no marker screen: not kept, not parsed
    assert [(v.marker.path, v.line, v.value) for v in marked.values] == [
        ("apps/web.yaml", 10, "registry.example.com/apps/web:1.2.0")]
    assert marked.deployed == {"apps/web": "1.2.0"}
    assert marked.warnings == ()


def test_a_pass_reads_a_checkout_once_per_revision(tmp_path: Path) -> None:
    rules = checkout(tmp_path, "1.2.0")
    trees = MarkedTrees()
    first = trees.tree(tmp_path, "main@sha1:aaa", rules)
    (tmp_path / "apps" / "web.yaml").write_text(deployment("1.3.0"))
    assert trees.tree(tmp_path, "main@sha1:aaa", rules) is first  # the same pass and revision
    assert first.deployed == {"apps/web": "1.2.0"}
    assert trees.tree(tmp_path, "main@sha1:bbb", rules).deployed == {"apps/web": "1.3.0"}
    assert MarkedTrees().tree(tmp_path, "main@sha1:aaa", rules).deployed == {"apps/web": "1.3.0"}


def test_other_marker_dialects_read_the_checkout_again(tmp_path: Path) -> None:
    rules = checkout(tmp_path, "1.2.0")
    trees = MarkedTrees()
    first = trees.tree(tmp_path, "", rules)
    without = RuleSet.of([r for r in rules.all() if r.KIND != "MarkerDialect"])
    assert without.marker_dialects != rules.marker_dialects
    other = trees.tree(tmp_path, "", without)
    assert other is not first and other.values == ()
