"""Shared test helpers: where things are, and how a test that needs a real part may skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CORPUS = ROOT / "tests" / "corpus"
HOMELAB_CORPUS = ROOT.parent / "shared" / "corpus" / "homelab"
REALWORLD_CORPUS = ROOT.parent / "shared" / "corpus" / "realworld"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip when a real part is missing on a laptop; fail under CI=true, where all must run."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def require_corpus(present: bool, reason: str) -> None:
    """The corpora in ../shared are optional (a fresh clone has none): skip, even under CI=true."""
    if not present:
        pytest.skip(reason)


@pytest.fixture
def homelab_corpus() -> Path:
    """The user's real GitOps repository (../shared/corpus/homelab), read-only."""
    require_corpus(HOMELAB_CORPUS.is_dir(), f"the homelab corpus is absent ({HOMELAB_CORPUS})")
    return HOMELAB_CORPUS


def realworld_repo(name: str) -> Path:
    """One repository of the realworld corpus (../shared/corpus/realworld/NAME), read-only."""
    path = REALWORLD_CORPUS / name
    require_corpus(path.is_dir(), f"the realworld corpus repository {name} is absent ({path})")
    return path
