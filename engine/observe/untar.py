"""Unpacking a gzip'd tar (an OCI artifact's layer) into a directory, refusing what could escape it.

An artifact comes from a registry, so its archive is untrusted input: every member is checked
before a byte is written. Names must be relative and stay inside (no absolute path, no `..`, no
backslash, as fluxcd/pkg/tar refuses them); device files and FIFOs are refused; a symlink or
hard link whose target leaves the tree is refused. Symlinks that stay inside are left out, as
source-controller leaves every symlink out of an OCI artifact; a hard link to a file unpacked
earlier becomes a copy of it. The unpacked size and the number of members are capped, so a
small layer cannot expand into a disk-filling one.

`extract` works in a temporary sibling of the target and renames it into place at the end: the
target directory exists complete, or not at all.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from engine.errors import GitwardError

MAX_UNPACKED_BYTES = 100 << 20
"""The most an archive may unpack to (fluxcd/pkg/tar's default limit, 100 MiB)."""
MAX_MEMBERS = 100_000
"""The most members (files, directories, links) an archive may hold."""
_CHUNK = 1 << 16


class ArchiveError(GitwardError):
    """An archive that is not a gzip'd tar, or that holds something gitward will not unpack."""


@dataclass(frozen=True)
class Unpacked:
    """What an archive held: regular files written, their bytes, and the symlinks left out."""

    files: int
    size: int
    skipped_links: tuple[str, ...] = ()


def extract(archive: Path, target: Path, *, max_bytes: int = MAX_UNPACKED_BYTES,
            max_members: int = MAX_MEMBERS) -> Unpacked:
    """Unpack the gzip'd tar `archive` into the directory `target`, which must not exist yet.

    Raises ArchiveError (and leaves no `target`) when the archive is broken or unsafe.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        unpacked = _Unpacker(temp, max_bytes, max_members).run(archive)
        temp.rename(target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return unpacked


def member_path(name: str) -> str:
    """A member's name as a path relative to the archive's root ("" for the root itself).

    Raises ArchiveError for a name that is absolute, climbs out with `..`, or has a backslash.
    """
    if name.startswith("/"):
        raise ArchiveError(f"the archive holds an absolute path, '{name}'")
    if "\\" in name:
        raise ArchiveError(f"the archive holds a path with a backslash, '{name}'")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"the archive holds a path that leaves its root, '{name}'")
    return "/".join(parts)


def _inside(rel: str) -> bool:
    return rel != ".." and not rel.startswith("../") and not posixpath.isabs(rel)


class _Unpacker:
    """One archive being unpacked into `root`, with the running totals the limits check."""

    def __init__(self, root: Path, max_bytes: int, max_members: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.size = 0
        self.members = 0
        self.files: set[str] = set()
        self.skipped: list[str] = []

    def run(self, archive: Path) -> Unpacked:
        try:
            with tarfile.open(archive, mode="r|gz") as tar:
                for member in tar:
                    self.member(tar, member)
        except (tarfile.TarError, EOFError, zlib.error) as err:
            raise ArchiveError(f"the layer is not a valid gzip'd tar archive: {err}") from None
        except OSError as err:  # gzip.BadGzipFile is an OSError; so is a full disk
            raise ArchiveError(f"the layer could not be unpacked: {err}") from None
        return Unpacked(len(self.files), self.size, tuple(self.skipped))

    def member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise ArchiveError(f"the archive holds more than {self.max_members} members")
        rel = member_path(member.name)
        if member.isdir():
            if rel:
                (self.root / rel).mkdir(parents=True, exist_ok=True)
        elif member.isreg():
            self.count(member.size, rel)
            source = tar.extractfile(member)
            assert source is not None  # a regular member always has data
            self.write(rel, source, member.mode)
        elif member.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), member.linkname))
            if posixpath.isabs(member.linkname) or not _inside(target):
                raise ArchiveError(f"the symlink '{member.name}' points outside the archive "
                                   f"('{member.linkname}')")
            self.skipped.append(rel)
        elif member.islnk():
            self.hard_link(member, rel)
        else:
            kind = "a device file" if member.isdev() else "a special file"
            raise ArchiveError(f"the archive holds {kind}, '{member.name}'")

    def count(self, size: int, rel: str) -> None:
        self.size += size
        if self.size > self.max_bytes:
            raise ArchiveError(f"the archive unpacks to more than {self.max_bytes} bytes (at "
                               f"'{rel}'): refused, as a compressed archive that large may be a bomb")

    def write(self, rel: str, source: IO[bytes], mode: int) -> None:
        if not rel:
            raise ArchiveError("the archive holds a file with no name")
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise ArchiveError(f"the archive holds '{rel}' both as a directory and as a file")
        with path.open("wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
        os.chmod(path, 0o755 if mode & 0o111 else 0o644)
        self.files.add(rel)

    def hard_link(self, member: tarfile.TarInfo, rel: str) -> None:
        """A hard link to a file unpacked earlier is a copy of it; any other is refused."""
        try:
            target = member_path(member.linkname)
        except ArchiveError:
            target = ""
        if target not in self.files:
            raise ArchiveError(f"the hard link '{member.name}' points outside the archive's files "
                               f"('{member.linkname}')")
        source = self.root / target
        self.count(source.stat().st_size, rel)
        with source.open("rb") as data:
            self.write(rel, data, source.stat().st_mode)
