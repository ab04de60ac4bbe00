"""The overview's drift column: the revision a Kustomization applied against its source's."""

from __future__ import annotations

from engine.ui.pages import drift


def test_drift_compares_the_revision_applied_with_the_one_fetched() -> None:
    applied = "main@sha1:" + "a" * 40
    assert drift(applied, applied) == "in sync with its source"
    assert drift(applied, "main@sha1:" + "b" * 40) == \
        "behind: its source is at main@sha1:bbbbbbbbbbbb, not applied yet"
    assert drift("", applied) == drift(applied, "") == ""
