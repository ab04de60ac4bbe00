"""`read_layout` with a marker key finds the comments that hold it from the parse's scalars
alone; it must find exactly what a full token scan finds (the comments, the token each follows,
every node), and scan whenever it cannot be sure (tags, anchored scalars, directives, a BOM,
comments on block scalar lines or after an indicator)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from engine.evaluate import yamlscalars
from engine.evaluate.yamlscalars import Layout, read_layout
from tests.conftest import CORPUS, EXAMPLES, HOMELAB_CORPUS, REALWORLD_CORPUS, ROOT

KEY = "$imagepolicy"
M = '{"$imagepolicy": "apps:web"}'

CASES = [
    f"image: ghcr.io/a/web:1.0 # {M}\n",
    f"image: 'ghcr.io/a/web:1.0'   # {M}\r\nnext: x\r\n",
    f"# {M}\nimage: ghcr.io/a/web:1.0\n",
    f"spec:\n  containers:\n    - name: web\n      # {M}\n      image: a:1\n",
    f"a: |\n  text # {M}\n  more\n# {M}\nb: x\n",
    f"a: | # {M}\n  text\nb: x # {M}\n",
    f"a: >-\n  folded\n\n  # {M}\nb: x\n",
    f"key: # {M}\n  value\n",
    f"- # {M}\n  x\n- y # {M}\n",
    f"list: [a, b] # {M}\nmap: {{a: b}} # {M}\n",
    f"tagged: !!str a:1 # {M}\nother: b # {M}\n",
    f"anchored: &x a:1 # {M}\nalias: *x # {M}\nplain: c # {M}\n",
    f"base: &b\n  image: a:1 # {M}\nuse: *b\n",
    f"%YAML 1.1\n---\nimage: a:1 # {M}\n",
    f"\ufeffimage: a:1 # {M}\n",
    f'quoted: "a # {M}" # {M}\n',
    f"hash: a#b # {M}\n",
    f"multi: \"first\n  second\" # {M}\nnext: c\n",
    f"plain: first\n  second # {M}\nnext: c\n",
    f"one: a\n---\n# {M}\ntwo: b:1 # {M}\n...\n# {M}\n",
    f"empty: # {M}\nv: ''   # {M}\n",
    f"text: 'not a marker {M}'\n",
    f"x: a:1\t# {M}\n",
    f"? complex # {M}\n: value # {M}\n",
    f"k: v # first {KEY} # {M}\n",
]


def _same(quick: Layout, full: Layout) -> None:
    assert quick.comments == full.comments
    assert quick.nodes == full.nodes


def _check(text: str) -> None:
    try:
        full = yamlscalars._read_layout(text, KEY, quick=False)
    except (yaml.YAMLError, UnicodeEncodeError):
        with pytest.raises((yaml.YAMLError, UnicodeEncodeError)):
            read_layout(text, KEY)
        return
    _same(read_layout(text, KEY), full)


@pytest.mark.parametrize("text", CASES)
def test_quick_comments_are_the_scanned_ones(text: str) -> None:
    _check(text)


def test_the_marker_cases_find_their_comments() -> None:
    """The cases are not vacuous: the plain ones hold markers a scan finds."""
    assert len(read_layout(CASES[0], KEY).comments) == 1
    assert read_layout(CASES[0], KEY).comments[0].after is not None
    assert read_layout(CASES[2], KEY).comments[0].after is None
    assert read_layout(CASES[0]).comments == yamlscalars._read_layout(CASES[0], "", quick=False).comments
    drafts = yamlscalars._nodes(list(yaml.parse(CASES[3])), None, 0)  # raises when unsure
    scalars = [d.token for d in drafts if d.token is not None]
    assert len(yamlscalars._comments_containing(yamlscalars.LineIndex(CASES[3]), scalars, KEY)) == 1


def _marked_files(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.y*ml")):
            if ".git" in path.parts or not path.is_file():
                continue
            try:
                if KEY.encode() in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def test_quick_comments_on_every_marked_file_in_the_tests_and_corpora() -> None:
    files = _marked_files(ROOT / "tests", EXAMPLES, CORPUS, HOMELAB_CORPUS, REALWORLD_CORPUS)
    assert files, "no marked YAML file in tests/ or examples/"
    for path in files:
        _check(path.read_bytes().decode("utf-8", errors="surrogateescape"))
