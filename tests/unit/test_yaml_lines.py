"""The line reading of marked YAML (engine/evaluate/yamllines.py) against the full parse.

`locate` reads a file by lines when `line_marks` accepts it and parses it otherwise; whatever it
reads, the scan must be exactly the full parse's (`_locate_parsed`): the same values, offsets,
styles, markers and warnings. Checked on tricky cases, on every YAML file of the corpora with
markers added to its lines, and on generated YAML; and the line reading must be taken on the
plain manifests it is for, and refused where a line does not tell the structure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.evaluate import rewrite
from engine.evaluate.rewrite import locate
from engine.evaluate.yamllines import line_marks
from engine.model import MarkerDialect
from tests.conftest import CORPUS, EXAMPLES, HOMELAB_CORPUS, REALWORLD_CORPUS, require_corpus

KEY = "$imagepolicy"
FLUX = MarkerDialect("flux", ("*.yaml", "*.yml"))
M = '{"$imagepolicy": "apps:web"}'
MT = '{"$imagepolicy": "apps:web:tag"}'


def read_by_lines(text: str, path: str = "f.yaml") -> rewrite.FileScan | None:
    """The scan the line reading gives, or None when it leaves the file to the parse."""
    marks = line_marks(text, KEY)
    return None if marks is None else rewrite._locate_read_by_lines(path, text, FLUX, marks)


def agrees(text: str, path: str = "f.yaml") -> bool:
    """Whether the line reading took the file; when it did, its scan must be the parse's."""
    scan = read_by_lines(text, path)
    if scan is None:
        return False
    assert scan == rewrite._locate_parsed(path, text, FLUX), text
    return True


READ_BY_LINES = [
    f"image: ghcr.io/a/web:1.0 # {M}\n",
    f"spec:\n  containers:\n    - name: web\n      image: a:1 # {M}\n      args:\n        - --x=:80\n",
    f"- a:1 # {M}\n- - b:2 # {MT}\n",
    f"# {M}\nimage: a:1\n",
    f"spec:\n  # {M}\n  - image: a:1\n",
    f"  # {M}\n- a:1 # {MT}\n",
    f"q: 'it''s' # {MT}\nd: \"a # b\" # {M}\n",
    f"n: 2 # {MT}\nt: true # {MT}\ne: '' # {M}\n",
    f"a: 1\n---\nkind: X\nimage: a:1   # {M}   \n...\n",
    f"note: |\n  text\n  # {{not}}\nimage: a:1 # {M}\n",
    f"note: >-\n  folded\n\n\nlist:\n  - a:1 # {M}\n",
    f"image: a:1 # {M} and text\n",
    "image: a:1 # see $imagepolicy docs\n",
    f"hash: a#b # {M}\ncolon: a:b:c # {M}\n",
    f"- --flag # {M}\n- ?x # {M}\n- :y # {M}\n",
]

REFUSED = [
    f"a: |\n  text # {M}\n  more\n",
    f"a: |\n  text\n# {M}\nb: x\n",
    f"a: |\n# {M}\nb: x\n",
    f"a: | # {M}\n  text\n",
    f"multi: \"first\n  second # {M}\"\nnext: c\n",
    f"a: 'x\nb: y # {M}\n  z'\n",
    f"- a\n  - b # {M}\n",
    f"k: a\n\n  - b # {M}\n",
    f"list: [a, b] # {M}\n",
    f"map: {{a: b,\n  c: d}} # {M}\n",
    f"anchored: &x a:1 # {M}\n",
    f"alias: *x # {M}\nx: &x 1\n",
    f"tagged: !!str a:1 # {M}\n",
    f"x: a:1\t# {M}\n",
    f"x: a:1 # {M}\r\n",
    f"\ufeffimage: a:1 # {M}\n",
    f"%YAML 1.1\n---\nimage: a:1 # {M}\n",
    f"? complex # {M}\n: value\n",
    f"'quoted key': a:1 # {M}\n",
    f"esc: \"a\\tb\" # {M}\n",
    f"bare # {M}\n",
    f"image: a:1 # {M}\n  bad: [\n",
    f"x: \"a$imagepolicy\" # {M}\n",
    f"a: b: c # {M}\n",
    f"--- # {M}\nx: y\n",
    # markers that govern no single-line value: the parse words the warning
    f"# {M}\n# {M}\nimage: a:1\n",
    f"# {M}\n",
    f"key: # {M}\n  value\n",
    f"- # {M}\n  x\n",
]


@pytest.mark.parametrize("text", READ_BY_LINES)
def test_plain_files_are_read_by_lines_as_the_parse_reads_them(text: str) -> None:
    assert agrees(text), "the line reading refused a file it is for"


@pytest.mark.parametrize("text", READ_BY_LINES + REFUSED)
def test_locate_gives_the_parse_scan_either_way(text: str) -> None:
    assert rewrite._locate_yaml("f.yaml", text, FLUX) == rewrite._locate_parsed("f.yaml", text, FLUX)


@pytest.mark.parametrize("text", REFUSED)
def test_files_lines_cannot_tell_are_left_to_the_parse(text: str) -> None:
    assert not agrees(text), "the line reading took a file whose lines do not tell its structure"


def test_the_cases_are_not_vacuous() -> None:
    """The plain cases hold values the reading finds, and warnings it words as the parse does."""
    found = [read_by_lines(text) for text in READ_BY_LINES]
    assert sum(len(scan.values) for scan in found if scan is not None) >= 20
    assert any(scan is not None and scan.warnings for scan in found)
    above = read_by_lines(READ_BY_LINES[4])
    assert above is not None and above.values[0].value == "a:1" and above.values[0].line == 3


def test_a_value_with_two_markers_keeps_its_line_marker() -> None:
    text = f"# {M}\nimage: a:1 # {MT}\n"
    assert agrees(text)
    scan = locate("f.yaml", text, FLUX)
    assert [v.marker.line for v in scan.values] == [2]
    assert [w.pos.line for w in scan.warnings] == [1]


def _yaml_files(*roots: Path) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        if root.is_dir():
            found += [p for p in sorted(root.rglob("*.y*ml")) if p.is_file() and ".git" not in p.parts]
    return found


def _variants(text: str) -> list[str]:
    """The file, a marker at the end of every third line, a marker line above every fourth."""
    lines = text.split("\n")
    at_end = [f"{line} # {M}" if i % 3 == 0 else line for i, line in enumerate(lines)]
    above = [
        f"{' ' * (len(line) - len(line.lstrip(' ')))}# {MT}\n{line}" if i % 4 == 1 else line
        for i, line in enumerate(lines)
    ]
    return [text, "\n".join(at_end), "\n".join(above)]


def test_the_corpora_with_markers_added_read_as_the_parse_reads_them() -> None:
    require_corpus(HOMELAB_CORPUS.is_dir() or REALWORLD_CORPUS.is_dir(),
                   f"neither corpus is present ({HOMELAB_CORPUS}, {REALWORLD_CORPUS})")
    read = valued = 0
    for path in _yaml_files(HOMELAB_CORPUS, REALWORLD_CORPUS, CORPUS, EXAMPLES):
        for text in _variants(path.read_bytes().decode("utf-8", errors="surrogateescape")):
            if agrees(text, path.name):
                read += 1
                valued += bool(rewrite._locate_parsed(path.name, text, FLUX).values)
    assert read >= 100 and valued >= 100, f"the line reading took {read} files, {valued} with values"


FRAGMENTS = [
    "k: v", "key: a:1", "- x", "- k: v", "- - y", "k:", "-", "k: |", "k: >-", "k: |+", "- |", "text",
    "  more", "k: 'q''s'", 'k: "dq"', 'k: "multi', 'end"', "k: 'open", "k: [a, b]", "k: {a: b}",
    "k: [a,", "b]", "k: &a v", "k: *a", "k: !!str v", "? k", ": v", "---", "...", "--- # c", "# c",
    "", "  ", "k: a #b", "k: a# b", "k: 1", "k: ''", 'k: ""', "<<: *a", "k: - x", "k: -x", "k: :x",
    "k: a: b", "k: @x", "%YAML 1.1", "k:\tv", "k: |2", "a b: c", "'q': v", "k: x]", "- - k: v",
]

lines = st.tuples(
    st.sampled_from(FRAGMENTS),
    st.sampled_from(["", "", " ", "  ", "    ", "      "]),
    st.sampled_from(["", "", "", f" # {M}", f" # {MT}", f" # {M} x", f" {M}", "line"]),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines, min_size=1, max_size=10), st.booleans())
def test_generated_yaml_reads_as_the_parse_reads_it(parts: list[tuple[str, str, str]], newline: bool) -> None:
    out = []
    for fragment, indent, mark in parts:
        if mark == "line":
            out.append(f"{indent}# {M}")
            mark = ""
        out.append(indent + fragment + mark)
    agrees("\n".join(out) + ("\n" if newline else ""))
