"""A repository's files are its own: symbolic links that leave the tree, or loop, are refused.

source-controller builds a source's artifact from regular files and directories only (a
symbolic link is left out), and kustomize-controller builds on a file system confined to the
artifact's root. gitward reads a checkout in place, so it follows a link only while the link
resolves to a file inside the repository; a link that resolves outside (`x.rules ->
/etc/passwd`) or loops is refused where it stands, and its target is never read.
"""

from __future__ import annotations

import errno
import os
from enum import StrEnum
from pathlib import Path


class LinkRefusal(StrEnum):
    """Why a symbolic link of a checkout is not followed."""

    OUTSIDE = "is a symbolic link that resolves outside the repository"
    LOOP = "is a symbolic link loop"
    DANGLING = "is a symbolic link to nothing"


def link_refusal(root: Path, path: Path) -> LinkRefusal | None:
    """Why the symbolic link at `path` (or a link among its parents below `root`) must not be
    followed; None for a path that is no link or stays in the repository (or dangles)."""
    try:
        os.stat(path)
    except OSError as err:
        return LinkRefusal.LOOP if err.errno == errno.ELOOP else None
    real_root = Path(os.path.realpath(root))
    return None if Path(os.path.realpath(path)).is_relative_to(real_root) else LinkRefusal.OUTSIDE


def refusal_message(refusal: LinkRefusal) -> str:
    """How a refused link is reported, at the link: what it is and why it is not read."""
    if refusal is LinkRefusal.LOOP:
        return f"{refusal.value}: refused (it resolves to no file)"
    if refusal is LinkRefusal.DANGLING:
        return f"{refusal.value}: not read (its target does not exist)"
    return (f"{refusal.value}: refused, as source-controller confines a source to its tree "
            "(the target is not read)")


def path_escape(root: Path, rel: str) -> str | None:
    """How a normalized repo-relative POSIX path (a Kustomization's `spec.path`) leaves the
    repository at `root`, said as the end of a sentence about it; None when it stays inside."""
    if rel == ".." or rel.startswith("../"):
        return "leaves the repository"
    refusal = link_refusal(root, root / rel) if rel else None
    return refusal_message(refusal) if refusal is not None else None
